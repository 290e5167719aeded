"""SpecGAN-style nets (Donahue et al. 2019) for 64x64 log-mel images of spoken words, natively
conditional on the word: G(z, word) a DCGAN with a learned word embedding beside z, D(x, word)
strided convolutions with a projection term (Miyato & Koyama 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .registry import models


class SpecG(nn.Module):
    """(z, word) -> 64x64 log-mel: a DCGAN generator (4x4 -> 64x64), the word as a learned
    32-dim embedding beside z."""

    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 32)
        self.fc = nn.Sequential(nn.Linear(nz + 32, 8 * w * 16, bias=False), nn.BatchNorm1d(8 * w * 16), nn.ReLU())

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(*up(8 * w, 4 * w), *up(4 * w, 2 * w), *up(2 * w, w),
                                  nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())
        self.w, self.n_classes = w, 10

    def forward(self, z: Tensor, word: Tensor | None = None) -> Tensor:
        if word is None:  # sweep the words (sample i says word i mod 10), like every conditional G
            word = torch.arange(len(z), device=z.device) % self.n_classes
        return self.body(self.fc(torch.cat([z, self.embed(word)], 1)).view(len(z), 8 * self.w, 4, 4))


class SpecD(nn.Module):
    """64x64 -> 4x4 strided convolutions, then a linear logit plus the projection of the word's
    embedding on the features (Miyato & Koyama 2018)."""

    def __init__(self, w: int) -> None:
        super().__init__()

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]

        self.body = nn.Sequential(*down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w),
                                  nn.Flatten())
        self.out = nn.Linear(8 * w * 16, 1)
        self.embed = nn.Embedding(10, 8 * w * 16)

    def forward(self, x: Tensor, word: Tensor) -> Tensor:
        f = self.body(x)
        return self.out(f).squeeze(1) + (self.embed(word) * f).sum(1)


def build_specgan(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    if tuple(shape) != (1, 64, 64):
        raise ConfigError(f"specgan draws 64x64 log-mel images (data espeak_digits); the data holds {tuple(shape)}")
    if cfg.cond != "projection" or cfg.n_classes not in (0, 10):
        raise ConfigError("specgan is conditional on the word by its own projection D: model.cond=projection, "
                          "10 classes")
    return SpecG(cfg.z_dim, cfg.width), SpecD(cfg.width)


build_specgan.conditional = True  # nets/registry.build must not wrap it in the generic conditioning
models.add("specgan", build_specgan, "SpecGAN: DCGAN G(z, word) on 64x64 log-mel, projection D (spoken digits)")
