"""Text-to-image nets (Reed et al. 2016, GAN-CLS, at digit scale): a GRU text encoder, a
DCGAN generator on (z, text code), a matching-aware D with tiled text features and a
projection term. `CaptionG` is what a text-to-image run saves and samples: the frozen encoder,
the generator, and the caption statistics of its training data (tercile cuts, per-class
attribute mean and std) as buffers, so a run folder alone can caption, sample and be scored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..data.captions import ATTRIBUTES, DIGITS, VOCAB, all_captions, parse, tokens
from ..errors import ConfigError
from .registry import models


class TextEncoder(nn.Module):
    """Word embedding (32) + one-layer GRU (64); the last real word's hidden state is the code.
    The heads read the digit and each attribute's level (low / none / high) from it while the
    encoder is trained; afterwards only `forward` is used."""

    dim = 64

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), 32, padding_idx=0)
        self.gru = nn.GRU(32, self.dim, batch_first=True)
        self.digit_head = nn.Linear(self.dim, 10)
        self.level_head = nn.Linear(self.dim, 3 * 3)

    def forward(self, ids: Tensor) -> Tensor:
        lengths = (ids != 0).sum(1).clamp(min=1)
        out, _ = self.gru(self.embed(ids))
        return out[torch.arange(len(ids)), lengths - 1]


class TextG(nn.Module):
    """(z, text code) -> 28x28 digit: a DCGAN generator whose input is z and the code side by side."""

    def __init__(self, nz: int, w: int, tdim: int = TextEncoder.dim) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(nz + tdim, 2 * w * 7 * 7, bias=False), nn.BatchNorm1d(2 * w * 7 * 7),
                                nn.ReLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())
        self.w = w

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        return self.body(self.fc(torch.cat([z, t], 1)).view(len(z), 2 * self.w, 7, 7))


class TextD(nn.Module):
    """Reed et al.'s matching D: image features at 7x7, the text code projected and tiled over
    them, a 1x1 convolution over both, then one logit. No BatchNorm: GAN-CLS batches mix real,
    fake and mismatched pairs, and batch statistics would tell them apart."""

    def __init__(self, w: int, tdim: int = TextEncoder.dim) -> None:
        super().__init__()
        self.img = nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2))
        self.txt = nn.Sequential(nn.Linear(tdim, w // 2), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Conv2d(2 * w + w // 2, 2 * w, 1), nn.LeakyReLU(0.2), nn.Flatten())
        self.out = nn.Linear(2 * w * 7 * 7, 1)
        # projection term (Miyato & Koyama 2018): <W t, features>; without it the caption reached
        # D only through the tiled concat and G drew the named digit far less often (measured)
        self.proj = nn.Linear(tdim, 2 * w * 7 * 7, bias=False)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.img(x)
        tt = self.txt(t)[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        f = self.joint(torch.cat([h, tt], 1))
        return self.out(f).squeeze(1) + (self.proj(t) * f).sum(1)


class CaptionG(nn.Module):
    """G(z, text code) with its frozen encoder. `forward(z)` alone sweeps the digits with bare
    captions ("a zero", "a one", ...: sample i gets digit i mod 10), so grids, FLOP counts and
    unconditional metrics need no special case; `forward(z, codes)` is the training call."""

    def __init__(self, nz: int, width: int) -> None:
        super().__init__()
        self.enc, self.body, self.nz = TextEncoder(), TextG(nz, width), nz
        self.enc.requires_grad_(False)  # trained before the GAN (families/text2image.py), then fixed
        k = len(ATTRIBUTES)
        self.register_buffer("cuts", torch.zeros(k, len(DIGITS), 2))  # per attribute and class: terciles
        self.register_buffer("stats", torch.zeros(k, len(DIGITS), 2))  # per attribute and class: mean, std

    def forward(self, z: Tensor, codes: Tensor | None = None) -> Tensor:
        if codes is None:
            digits = torch.arange(len(z), device=z.device) % len(DIGITS)
            codes = self.encode(digits, torch.zeros(len(z), len(ATTRIBUTES), dtype=torch.long, device=z.device))
        return self.body(z, codes)

    @torch.no_grad()
    def encode(self, digits: Tensor, lv: Tensor) -> Tensor:
        """(N,) digits and (N, 3) levels -> (N, 64) text codes (the encoder in eval mode)."""
        was = self.enc.training
        self.enc.eval()
        try:  # fp32 whatever the run's autocast: the codes are computed once and reused
            with torch.autocast(self.cuts.device.type, enabled=False):
                return self.enc(tokens(digits.cpu(), lv.cpu()).to(self.cuts.device))
        finally:
            self.enc.train(was)

    @torch.no_grad()
    def all_codes(self) -> Tensor:
        """The codes of all 270 captions, in `caption_index` order (the encoder is frozen)."""
        return self.encode(*all_captions())

    @torch.no_grad()
    def generate(self, digits: Tensor, lv: Tensor, z: Tensor) -> Tensor:
        return self.body(z, self.encode(digits, lv))

    def sample_text(self, text: str, n: int, seed: int = 0) -> Tensor:
        """n samples of one caption (GankitError for unknown words), z from the seed."""
        d, lv = parse(text)
        z = torch.randn(n, self.nz, generator=torch.Generator().manual_seed(seed)).to(self.cuts.device)
        return self.generate(torch.full((n,), d), torch.tensor([lv] * n), z)


@models.register("text2image", "text-to-image (GAN-CLS): GRU caption encoder, DCGAN G on (z, code), matching D")
def build_text2image(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    if tuple(shape) != (1, 28, 28):
        raise ConfigError(f"text2image draws 28x28 grey digits; the data holds {tuple(shape)}")
    return CaptionG(cfg.z_dim, cfg.width), TextD(cfg.width)
