"""ProGAN (Karras et al. 2018): progressive growing with fade-in, equalised learning rate, pixel
norm, and a minibatch standard-deviation map in D.

Both nets grow from s0 x s0 to the data size (32: 4 -> 8 -> 16 -> 32; 28: 7 -> 14 -> 28). The first
stage trains for model.grow_steps steps; each later stage fades in over grow_steps (alpha 0 -> 1)
and then trains stably for grow_steps. To keep one data pipeline, one train step and one set of
metrics, G always returns full-size images (its current-resolution output up-sampled, nearest) and D
always takes full-size images and average-pools them to its current resolution, which is how
ProGAN down-samples its reals; for fakes the two resamplings cancel exactly.

The stage lives in a buffer (`progress`: stage + fade alpha), set from the step count by the train
step, saved in checkpoints and copied to the EMA generator, so a loaded G samples at the
resolution it had reached. Output is tanh-bounded to match the [-1, 1] data contract (the paper's
G is linear).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .dcgan import _levels
from .registry import image_shape, models
from .remedies import MinibatchStd


class EqualizedLinear(nn.Module):
    """Weights drawn N(0, 1) and scaled by He's constant at every forward, so Adam's per-parameter
    step sizes are equal across layers of different fan-in (the paper's equalised learning rate)."""

    def __init__(self, n_in: int, n_out: int, gain: float = math.sqrt(2), lr_mul: float = 1.0,
                 bias_init: float = 0.0) -> None:
        super().__init__()
        # lr_mul < 1 slows this layer's effective learning rate (StyleGAN's mapping net: 0.01)
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), bias_init / lr_mul))
        self.scale, self.lr_mul = gain / math.sqrt(n_in) * lr_mul, lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualizedConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale, self.pad = gain / math.sqrt(cin * k * k), k // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class PixelNorm(nn.Module):
    """Each pixel's feature vector scaled to unit RMS (replaces BatchNorm in ProGAN's G)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def progress_at(step: int, stages: int, grow_steps: int) -> float:
    """Stage index + fade alpha after `step` G steps: stage 0 for grow_steps, then for each new
    stage a fade of grow_steps (alpha 0 -> 1) and grow_steps of stable training."""
    if step < grow_steps:
        return 0.0
    done, r = divmod(step - grow_steps, 2 * grow_steps)
    return min(float(stages - 1), done + min(1.0, r / grow_steps))


class _Growing(nn.Module):
    def __init__(self, stages: int, grow_steps: int) -> None:
        super().__init__()
        self.stages, self.grow_steps = stages, grow_steps
        self.register_buffer("progress", torch.zeros(()))

    def set_step(self, step: int) -> None:
        self.progress.fill_(progress_at(step, self.stages, self.grow_steps))

    def _stage(self) -> tuple[int, float]:
        p = float(self.progress)
        s = int(p)
        return s, p - s


def _conv_act(cin: int, cout: int, k: int, pixel_norm: bool) -> list[nn.Module]:
    return [EqualizedConv2d(cin, cout, k), nn.LeakyReLU(0.2), *([PixelNorm()] if pixel_norm else [])]


class ProGenerator(_Growing):
    def __init__(self, z_dim: int, c: int, s0: int, chans: list[int], grow_steps: int) -> None:
        super().__init__(len(chans), grow_steps)
        self.s0, self.size = s0, s0 * 2 ** (len(chans) - 1)
        self.first = nn.Sequential(PixelNorm(), EqualizedLinear(z_dim, chans[0] * s0 * s0, gain=math.sqrt(2) / 4),
                                   nn.LeakyReLU(0.2), PixelNorm())
        self.c0 = chans[0]
        self.blocks = nn.ModuleList([nn.Sequential(*_conv_act(chans[0], chans[0], 3, True))])
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            self.blocks.append(nn.Sequential(nn.Upsample(scale_factor=2.0), *_conv_act(cin, cout, 3, True),
                                             *_conv_act(cout, cout, 3, True)))
        self.to_rgb = nn.ModuleList([EqualizedConv2d(ch, c, 1, gain=1.0) for ch in chans])

    def forward(self, z: Tensor) -> Tensor:
        s, alpha = self._stage()
        h = self.first(z).view(z.shape[0], self.c0, self.s0, self.s0)  # not len(z): a traced G keeps its batch free
        for i in range(s + 1):
            h = self.blocks[i](h)
        img = self.to_rgb[s](h)
        if alpha > 0:  # fade-in: the new, higher-resolution stage blends in over the old one
            img = torch.lerp(F.interpolate(img, scale_factor=2.0), self.to_rgb[s + 1](self.blocks[s + 1](h)), alpha)
        img = torch.tanh(img)
        return F.interpolate(img, size=(self.size, self.size)) if img.shape[-1] != self.size else img


class ProDiscriminator(_Growing):
    def __init__(self, c: int, s0: int, chans: list[int], grow_steps: int) -> None:
        super().__init__(len(chans), grow_steps)
        self.size = s0 * 2 ** (len(chans) - 1)
        self.from_rgb = nn.ModuleList([nn.Sequential(EqualizedConv2d(c, ch, 1), nn.LeakyReLU(0.2)) for ch in chans])
        # blocks[i] takes stage i's resolution down to stage i-1's; blocks[0] is the final one
        self.blocks = nn.ModuleList([nn.Sequential(
            MinibatchStd(), *_conv_act(chans[0] + 1, chans[0], 3, False), nn.Flatten(),
            EqualizedLinear(chans[0] * s0 * s0, chans[0]), nn.LeakyReLU(0.2), EqualizedLinear(chans[0], 1, gain=1.0))])
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            self.blocks.append(nn.Sequential(*_conv_act(cout, cout, 3, False), *_conv_act(cout, cin, 3, False),
                                             nn.AvgPool2d(2)))

    def _at(self, x: Tensor, stage: int) -> Tensor:
        f = 2 ** (len(self.blocks) - 1 - stage)  # full size / stage's size
        return F.avg_pool2d(x, f) if f > 1 else x

    def forward(self, x: Tensor) -> Tensor:
        s, alpha = self._stage()
        if alpha > 0:  # fade-in mirrored: the new stage's path blends in over the pooled old one
            new = self.blocks[s + 1](self.from_rgb[s + 1](self._at(x, s + 1)))
            h = torch.lerp(self.from_rgb[s](self._at(x, s)), new, alpha)
        else:
            h = self.from_rgb[s](self._at(x, s))
        for i in range(s, -1, -1):
            h = self.blocks[i](h)
        return h.squeeze(1)


@models.register("progan", "ProGAN: progressive growing with fade-in, equalised LR, pixel norm, minibatch-std map")
def build_progan(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, s = image_shape(shape, "progan")
    s0, k = _levels(s)
    if cfg.grow_steps < 1:
        raise ConfigError(f"model.grow_steps must be >= 1 for progan, got {cfg.grow_steps}")
    # channels halve as resolution doubles, from 4x width at s0 (e.g. width 32: 128, 64, 32, 32)
    chans = [max(cfg.width, cfg.width * 4 // 2**i) for i in range(k + 1)]
    return (ProGenerator(cfg.z_dim, c, s0, chans, cfg.grow_steps),
            ProDiscriminator(c, s0, chans, cfg.grow_steps))
