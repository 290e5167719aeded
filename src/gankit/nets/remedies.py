"""Mode-collapse remedies that change what the discriminator sees, as wrappers around any D.

- PacGAN (Lin et al. 2018): D judges m samples at once, all real or all fake, concatenated
  along channels (images) or features (points); a collapsed G's packs look alike, which D can see.
- Minibatch discrimination (Salimans et al. 2016) and the minibatch standard deviation feature
  (Karras et al. 2018): D's last layer also sees statistics of the other samples in the batch.
- DiffAugment (Zhao et al. 2020): the same differentiable augmentation of reals and fakes, in
  the D and G steps, so D cannot memorise a small training set.

The train step and the losses do not know about any of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .layers import Logit

# Every mode-collapse remedy and variant switch, with the config keys that turn it on (`gankit list
# remedies`; a test applies each setting to a real recipe, so the keys cannot go stale).
REMEDIES = {
    "pacgan": ("model.pack=4", "PacGAN: D judges packs of m samples (Lin et al. 2018)"),
    "minibatch_disc": ("model.minibatch=disc", "minibatch discrimination (Salimans et al. 2016)"),
    "minibatch_std": ("model.minibatch=stddev", "minibatch standard-deviation feature (Karras et al. 2018)"),
    "unrolled": ("train.unroll=5", "unrolled GAN: G sees D after k differentiable steps (Metz et al. 2017)"),
    "gman": ("model.n_d=3 loss.gman_lambda=1", "several discriminators, GMAN soft-max mean (Durugkar et al. 2017)"),
    "mixture_g": ("model.n_g=4", "a uniform mixture of generators"),
    "diffaugment": ("reg.diffaug=color,translation,cutout", "DiffAugment for small data (Zhao et al. 2020)"),
    "conditional": ("model.cond=projection model.cond_g=cbn", "class-conditional G and D (also concat, acgan)"),
    "self_attention": ("model.attention=14", "SAGAN self-attention block in dcgan/resnet (Zhang et al. 2019)"),
    "spectral_norm": ("model.norm_d=spectral", "spectral normalisation of D (Miyato et al. 2018)"),
}


class Packed(nn.Module):
    """PacGAN: (B, C, ...) -> (B/m, m*C, ...) before D, so D gives one logit per pack of m."""

    def __init__(self, d: nn.Module, m: int) -> None:
        super().__init__()
        self.d, self.pack = d, m

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        if b % self.pack:
            raise ValueError(f"PacGAN with pack={self.pack} needs a batch divisible by {self.pack}, got {b}")
        # consecutive samples form a pack: the sampler already shuffles, so packs are random
        return self.d(x.reshape(b // self.pack, self.pack * x.shape[1], *x.shape[2:]))


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, section 3.2: o(x_i)_b = sum_j exp(-||M_i,b - M_j,b||_1), M = f(x) T.

    Appends `kernels` features that are large when a sample has many near twins in its batch,
    as a collapsed generator's samples do.
    """

    mixes_batch = True  # real and fake must not share one D forward

    def __init__(self, n_in: int, kernels: int, dim: int) -> None:
        super().__init__()
        self.kernels, self.dim = kernels, dim
        self.t = nn.Parameter(torch.randn(n_in, kernels * dim) * 0.1)

    def forward(self, f: Tensor) -> Tensor:
        m = (f @ self.t).view(-1, self.kernels, self.dim)  # (B, K, D)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # (B, B, K)
        o = torch.exp(-l1).sum(1) - 1  # minus exp(0) = 1: a sample is not its own neighbour
        return torch.cat([f, o], dim=1)


class MinibatchStd(nn.Module):
    """Karras et al. 2018 (ProGAN): one extra feature, the mean over features of their std over the
    batch. A collapsed G's batch has a small std, and D sees it. On (B, F) features it is one more
    feature; on (B, C, H, W) maps, one more constant map, as ProGAN appends it (over the whole batch;
    the paper uses groups of 4)."""

    mixes_batch = True

    def forward(self, f: Tensor) -> Tensor:
        std = f.var(0, unbiased=False).add(1e-8).sqrt().mean()  # +1e-8: finite gradient at std 0
        return torch.cat([f, std.expand(f.shape[0], 1, *f.shape[2:])], dim=1)


def with_minibatch_layer(d: nn.Module, kind: str, kernels: int = 50, dim: int = 5) -> nn.Module:
    """Insert a minibatch layer before D's final Logit (every D in gankit ends with one)."""
    if kind == "none":
        return d
    last = d[-1] if isinstance(d, nn.Sequential) else None
    if not isinstance(last, Logit):
        raise ConfigError(f"model.minibatch={kind} needs a D that ends with a Logit layer")
    n_in = last.fc.in_features
    layer = MinibatchDiscrimination(n_in, kernels, dim) if kind == "disc" else MinibatchStd()
    extra = kernels if kind == "disc" else 1
    d[-1] = nn.Sequential(nn.Flatten(), layer, Logit(n_in + extra))
    return d


# --- DiffAugment ------------------------------------------------------------------------------

def _color(x: Tensor) -> Tensor:
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    if x.shape[1] > 1:  # saturation needs colour channels
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean((1, 2, 3), keepdim=True)  # contrast
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio * size pixels, filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    gi, gj = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    # index into a 1-pixel zero border: every out-of-range index clamps onto the border
    gi = (gi + tx + 1).clamp(0, h + 1)
    gj = (gj + ty + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[torch.arange(b, device=x.device)[:, None, None], gi, gj].permute(0, 3, 1, 2)


def _cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one square of side ratio * size at a random place in each image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device) - ch // 2
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device) - cw // 2
    i = torch.arange(h, device=x.device)[None, :, None]
    j = torch.arange(w, device=x.device)[None, None, :]
    inside = (i >= oy) & (i < oy + ch) & (j >= ox) & (j < ox + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}


def parse_policy(policy: str) -> list[str]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    for n in names:
        if n not in AUGMENTS:
            raise ConfigError(f"reg.diffaug: unknown augmentation {n!r}; choose from {', '.join(AUGMENTS)}")
    return names


def diff_augment(x: Tensor, names: list[str]) -> Tensor:
    for n in names:
        x = AUGMENTS[n](x)
    return x


class Augmented(nn.Module):
    """DiffAugment around D: in training mode every input (real or fake, D or G step) is augmented."""

    def __init__(self, d: nn.Module, policy: str) -> None:
        super().__init__()
        self.d, self.names = d, parse_policy(policy)

    def forward(self, x: Tensor, *label: Tensor, **kw: bool) -> Tensor:
        if self.training and x.dim() == 4:
            x = diff_augment(x, self.names)
        return self.d(x, *label, **kw)
