"""StyleGAN-lite: the StyleGAN2 generator's ideas in plain PyTorch (no custom CUDA ops).

- Mapping network: z -> w, an MLP with pixel-normed input and a 100x smaller learning rate.
- Synthesis from a learned constant: modulated convolutions (each sample's style scales the
  weights' input channels) with demodulation (each output channel renormalised to unit norm),
  per-pixel noise inputs with learned per-channel strength, and skip connections through
  per-resolution toRGB layers (Karras et al. 2020).
- Style mixing regularisation: in training, with probability model.style_mix, the layers after a
  random crossover point take the w of a second z.
- Truncation trick at sampling: w' = w_avg + psi (w - w_avg), with w_avg tracked during training;
  psi = 0 gives the average image. Set it with `Generator.sample(..., truncation=psi)` or the
  net's `truncation` attribute.
- Noise: fresh in training mode; in eval mode fixed buffers drawn at build time (StyleGAN2's
  "const" noise), so sampling is a function of the seed alone.

Lite means: bilinear up-sampling instead of transposed conv + blur, no lazy path-length
regulariser, and the residual D of nets/resnet.py. Use it with the non-saturating loss and R1.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dcgan import _levels
from .progan import EqualizedLinear, PixelNorm
from .registry import image_shape, models
from .resnet import resnet_d


class ModulatedConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, w_dim: int, demodulate: bool = True, up: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.scale = 1.0 / math.sqrt(cin * k * k)
        self.affine = EqualizedLinear(w_dim, cin, gain=1.0, bias_init=1.0)  # styles start at 1
        self.demodulate, self.up, self.pad = demodulate, up, k // 2

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        b, cin, _, _ = x.shape
        style = self.affine(w)  # (B, Cin)
        wgt = self.weight[None] * self.scale * style[:, None, :, None, None]  # (B, Cout, Cin, k, k)
        if self.demodulate:  # unit-norm output channels per sample: replaces AdaIN's normalisation
            wgt = wgt * torch.rsqrt(wgt.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        h, wd = x.shape[-2:]
        # one grouped convolution applies every sample's own weights
        out = F.conv2d(x.reshape(1, b * cin, h, wd), wgt.reshape(-1, cin, *wgt.shape[-2:]), padding=self.pad, groups=b)
        return out.view(b, -1, h, wd)


class StyleLayer(nn.Module):
    """Modulated 3x3 conv, scaled per-pixel noise, bias, leaky ReLU."""

    def __init__(self, cin: int, cout: int, w_dim: int, size: int, up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("const_noise", torch.randn(1, 1, size, size))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = self.conv(x, w)
        noise = torch.randn_like(x[:, :1]) if self.training else self.const_noise
        x = x + self.noise_strength * noise + self.bias.view(1, -1, 1, 1)
        return F.leaky_relu(x, 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    def __init__(self, cin: int, c: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, c, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1)


def mix_styles(w1: Tensor, w2: Tensor, n_layers: int, cutoff: Tensor) -> Tensor:
    """(B, L, w_dim) styles: layer l < cutoff[b] takes w1[b], the others w2[b]."""
    layer = torch.arange(n_layers, device=w1.device).view(1, -1, 1)
    return torch.where(layer < cutoff.view(-1, 1, 1), w1[:, None], w2[:, None])


class StyleGenerator(nn.Module):
    def __init__(self, z_dim: int, c: int, s0: int, k: int, width: int, mapping: int, style_mix: float,
                 w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.z_dim, self.style_mix, self.w_avg_beta = z_dim, style_mix, w_avg_beta
        layers: list[nn.Module] = [PixelNorm()]
        for _ in range(mapping):
            layers += [EqualizedLinear(z_dim, z_dim, lr_mul=0.01), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*layers)
        self.register_buffer("w_avg", torch.zeros(z_dim))
        self.const = nn.Parameter(torch.randn(1, width, s0, s0))
        self.first = StyleLayer(width, width, z_dim, s0)
        self.rgb0 = ToRGB(width, c, z_dim)
        self.blocks = nn.ModuleList()
        self.rgbs = nn.ModuleList()
        for i in range(1, k + 1):
            size = s0 * 2**i
            self.blocks.append(nn.ModuleList([StyleLayer(width, width, z_dim, size, up=True),
                                              StyleLayer(width, width, z_dim, size)]))
            self.rgbs.append(ToRGB(width, c, z_dim))
        self.n_layers = 2 + 3 * k  # first conv + its toRGB, then two convs and a toRGB per block
        self.truncation = 1.0  # psi, applied in eval mode only

    def styles(self, z: Tensor) -> Tensor:
        """(B, n_layers, w_dim): one w per layer, mixed with a second z's in training."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():  # the running mean of w, the truncation trick's centre
                self.w_avg.lerp_(w.detach().mean(0).to(self.w_avg.dtype), 1.0 - self.w_avg_beta)
            if self.style_mix > 0:
                w2 = self.mapping(torch.randn_like(z))
                mixed = torch.rand(len(z), device=z.device) < self.style_mix
                cutoff = torch.randint(1, self.n_layers, (len(z),), device=z.device)
                cutoff = torch.where(mixed, cutoff, torch.full_like(cutoff, self.n_layers))
                return mix_styles(w, w2, self.n_layers, cutoff)
        elif self.truncation != 1.0:
            w = self.w_avg + self.truncation * (w - self.w_avg)
        return w[:, None].expand(-1, self.n_layers, -1)

    def forward(self, z: Tensor) -> Tensor:
        ws = self.styles(z)
        # repeat, not expand: a view of a parameter made under no_grad would still claim requires_grad
        # z.shape[0], not len(z): a traced G (gankit export --format) keeps its batch size free
        x = self.first(self.const.repeat(z.shape[0], 1, 1, 1), ws[:, 0])
        img = self.rgb0(x, ws[:, 1])
        for i, ((up, conv), rgb) in enumerate(zip(self.blocks, self.rgbs, strict=True)):
            j = 2 + 3 * i
            x = conv(up(x, ws[:, j]), ws[:, j + 1])
            img = F.interpolate(img, scale_factor=2.0, mode="bilinear", align_corners=False) + rgb(x, ws[:, j + 2])
        return torch.tanh(img)


@models.register("stylegan", "StyleGAN-lite: mapping net, modulated/demodulated convs, noise, style mixing, truncation")
def build_stylegan(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, s = image_shape(shape, "stylegan")
    s0, k = _levels(s)
    g = StyleGenerator(cfg.z_dim, c, s0, k, cfg.width, cfg.mapping, cfg.style_mix)
    return g, resnet_d(c, [s0 * 2**i for i in range(k + 1)], cfg.width)
