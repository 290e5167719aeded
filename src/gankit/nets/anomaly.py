"""Anomaly-detection nets on 28x28 grey digits (GANomaly, f-AnoGAN, D-feature k-NN): a conv
encoder, its mirrored decoder, and a D with a feature layer. GANomaly's and f-AnoGAN's G keep their
own `score(x, d)` (higher = more anomalous) so a run folder alone can score images; the D-feature
k-NN scores with `knn_distance` against its training digits' features.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .registry import models


def encoder(nz: int, w: int) -> nn.Sequential:
    """28x28 -> (nz,): two stride-2 convs, then a 7x7 conv to the code."""
    return nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
                         nn.Conv2d(2 * w, nz, 7), nn.Flatten())


def decoder(nz: int, w: int) -> nn.Sequential:
    """(nz,) -> 28x28 in [-1, 1]: the encoder mirrored (also the f-AnoGAN generator)."""
    return nn.Sequential(nn.Unflatten(1, (nz, 1, 1)), nn.ConvTranspose2d(nz, 2 * w, 7), nn.BatchNorm2d(2 * w),
                         nn.ReLU(), nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),
                         nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())


class Critic(nn.Module):
    """D with a feature layer (feature matching, f-AnoGAN's f) and a logit."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
                                      nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())
        self.head = nn.Linear(2 * w * 49, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return self.head(f).squeeze(1), f


class GANomalyG(nn.Module):
    """Akcay et al. 2018: encoder -> z, decoder -> x_hat, second encoder -> z_hat. `forward(z)`
    decodes (so grids and sample-based metrics see the decoder's images)."""

    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.enc, self.dec, self.enc2 = encoder(nz, w), decoder(nz, w), encoder(nz, w)

    def forward(self, z: Tensor) -> Tensor:
        return self.dec(z)

    def reconstruct(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = self.enc(x)
        x_hat = self.dec(z)
        return z, x_hat, self.enc2(x_hat)

    @torch.no_grad()
    def score(self, x: Tensor, d: nn.Module | None = None) -> Tensor:
        """|z - z_hat|^2 per image (mean over the code); D is not needed."""
        z, _, z_hat = self.reconstruct(x)
        return ((z - z_hat) ** 2).mean(1)


class FAnoGANG(nn.Module):
    """Schlegl et al. 2019: a DCGAN generator `g` and the encoder `e` that learns to invert it
    (izi_f) once the GAN is trained."""

    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.g, self.e = decoder(nz, w), encoder(nz, w)

    def forward(self, z: Tensor) -> Tensor:
        return self.g(z)

    @torch.no_grad()
    def score(self, x: Tensor, d: nn.Module) -> Tensor:
        """|x - G(E(x))|^2 + |f(x) - f(G(E(x)))|^2 per image, f = D's features."""
        rec = self.g(self.e(x))
        return ((x - rec) ** 2).flatten(1).mean(1) + ((d(x)[1] - d(rec)[1]) ** 2).mean(1)


class AutoEncoderG(nn.Module):
    """An autoencoder whose decoder is also the GAN's generator (OCGAN's visual discriminator
    judges decodings of random codes, Perera et al. 2019): `forward(z)` decodes, `reconstruct(x)`
    encodes then decodes. Used by the D-feature k-NN detector, which scores with D alone."""

    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.enc, self.dec = encoder(nz, w), decoder(nz, w)

    def forward(self, z: Tensor) -> Tensor:
        return self.dec(z)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.dec(self.enc(x))


def knn_distance(f: Tensor, bank: Tensor, k: int, exclude_self: bool = False) -> Tensor:
    """Mean Euclidean distance of each row of `f` (N,F) to its k nearest rows of `bank` (M,F), (N,).
    `exclude_self`: f is the bank itself (leave-one-out: each row's zero distance to itself is
    dropped, so training scores are not biased low). ConfigError when the bank is too small."""
    drop = int(exclude_self)
    if len(bank) < k + drop:
        raise ConfigError(f"k-NN needs at least {k + drop} training examples, got {len(bank)}")
    d = torch.cdist(f.float(), bank.float())
    return d.topk(k + drop, largest=False).values[:, drop:].mean(1)


def _digits(shape: tuple[int, ...], name: str) -> None:
    if tuple(shape) != (1, 28, 28):
        raise ConfigError(f"{name} works on 28x28 grey digits; the data holds {tuple(shape)}")


@models.register("ganomaly", "GANomaly: encoder-decoder-encoder G, feature-matching D (anomaly detection)")
def build_ganomaly(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    _digits(shape, "ganomaly")
    return GANomalyG(cfg.z_dim, cfg.width), Critic(cfg.width)


@models.register("fanogan", "f-AnoGAN: DCGAN G and D, then an encoder inverting G (anomaly detection)")
def build_fanogan(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    _digits(shape, "fanogan")
    return FAnoGANG(cfg.z_dim, cfg.width), Critic(cfg.width)


@models.register("dknn", "D-feature k-NN: an autoencoder whose decoder is the GAN's G, a D with a feature layer "
                 "(anomaly detection)")
def build_dknn(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    _digits(shape, "dknn")
    return AutoEncoderG(cfg.z_dim, cfg.width), Critic(cfg.width)
