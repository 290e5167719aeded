"""SNGAN-style ResNet G and D (Miyato et al. 2018, appendix B), for any size s0 * 2**k.

G: z -> s0 x s0 x C, k up-sampling residual blocks (BatchNorm, ReLU, nearest x2, 3x3 convs),
BatchNorm, ReLU, 3x3 conv, tanh. D: k down-sampling residual blocks (the first one "optimised":
no ReLU before its first conv), one more block, ReLU, sum over positions, linear. Pair it with
model.norm_d=spectral and the hinge loss, as SNGAN does. model.attention=R adds a SAGAN block
at the R x R feature maps of both nets.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .dcgan import _levels
from .layers import Logit, Reshape, SumPool, attention_at, check_attention, finish, norm2d
from .registry import image_shape, models


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str, momentum: float) -> None:
        super().__init__()
        self.n1, self.c1 = norm2d(norm, cin, momentum), nn.Conv2d(cin, cout, 3, 1, 1)
        self.n2, self.c2 = norm2d(norm, cout, momentum), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.n1(x)), scale_factor=2.0)
        h = self.c2(F.relu(self.n2(self.c1(h))))
        return h + self.skip(F.interpolate(x, scale_factor=2.0))


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool, first: bool) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if (cin != cout or down) else nn.Identity()
        self.down, self.first = down, first

    def forward(self, x: Tensor) -> Tensor:
        h = self.c1(x if self.first else F.relu(x))  # the first block sees the image, not ReLU(image)
        h = self.c2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        # optimised first block: pool, then 1x1 (cheaper, and the same map for a linear skip)
        s = self.skip(F.avg_pool2d(x, 2)) if (self.first and self.down) else self.skip(x)
        if self.down and not self.first:
            s = F.avg_pool2d(s, 2)
        return h + s


@models.register("resnet", "SNGAN-style ResNet G and D for sizes s0*2^k; optional SAGAN self-attention")
def build_resnet(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, s = image_shape(shape, "resnet")
    s0, k = _levels(s)
    sizes = [s0 * 2**i for i in range(k + 1)]
    check_attention(cfg.attention, sizes)
    if cfg.norm_d not in ("none", "spectral"):
        raise ConfigError(f"the resnet D takes model.norm_d=spectral or none, not {cfg.norm_d}")
    w = cfg.width
    gl: list[nn.Module] = [nn.Linear(cfg.z_dim, w * s0 * s0), Reshape(w, s0, s0), *attention_at(cfg.attention, s0, w)]
    for i in range(k):
        gl += [GBlock(w, w, cfg.norm_g, cfg.bn_momentum), *attention_at(cfg.attention, sizes[i + 1], w)]
    gl += [norm2d(cfg.norm_g, w, cfg.bn_momentum), nn.ReLU(), nn.Conv2d(w, c, 3, 1, 1), nn.Tanh()]

    d = resnet_d(c, sizes, w, cfg.attention)
    return finish(nn.Sequential(*gl), cfg.init, cfg.norm_g), finish(d, cfg.init, cfg.norm_d)


def resnet_d(c: int, sizes: list[int], w: int, attention: int = 0) -> nn.Sequential:
    """The residual D, from the image size sizes[-1] down to sizes[0]; also StyleGAN-lite's D."""
    k = len(sizes) - 1
    dl: list[nn.Module] = []
    cin = c
    for i in range(k):
        dl += [DBlock(cin, w, down=True, first=i == 0), *attention_at(attention, sizes[k - 1 - i], w)]
        cin = w
    dl += [DBlock(w, w, down=False, first=False), nn.ReLU(), SumPool(), Logit(w)]
    return nn.Sequential(*dl)
