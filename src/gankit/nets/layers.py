"""Building blocks shared by the nets: normalisation, activation, initialisation, spectral norm."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import ConfigError


def activation(name: str, slope: float = 0.2) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(slope)
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}")


def norm1d(name: str, n: int, momentum: float = 0.1) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm1d(n, momentum=momentum)
    if name == "layer":
        return nn.LayerNorm(n)
    return nn.Identity()  # none, or spectral (applied to the weights, not as a layer)


def norm2d(name: str, c: int, momentum: float = 0.1) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(c, momentum=momentum)
    if name == "layer":
        return nn.GroupNorm(1, c)  # one group = layer norm over (C,H,W)
    if name == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    return nn.Identity()


def init_weights(net: nn.Module, scheme: str) -> None:
    """default: PyTorch's own; dcgan: N(0, 0.02) (Radford et al. 2016); glorot: Keras' default."""
    if scheme == "default":
        return
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
                if isinstance(m, nn.ConvTranspose2d):  # Keras counts fans with in/out swapped
                    fan_in, fan_out = fan_out, fan_in
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and scheme == "dcgan":
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def replace_module(net: nn.Module, name: str, new: nn.Module) -> None:
    """Put `new` where the submodule called `name` (dotted, as named_modules gives it) was."""
    parent, _, leaf = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, new)


def finish(net: nn.Module, init: str, norm: str) -> nn.Module:
    """Initialise, then wrap every weight layer with spectral norm when norm == 'spectral'."""
    init_weights(net, init)
    if norm == "spectral":
        for name, m in list(net.named_modules()):
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                replace_module(net, name, spectral_norm(m))
    return net


class Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return str(self.shape)


class Logit(nn.Module):
    """Last layer of every D: one unnormalised score per example, shape (B,)."""

    def __init__(self, n_in: int, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)).squeeze(1)


class SelfAttention(nn.Module):
    """SAGAN's self-attention block (Zhang et al. 2019): y = x + gamma * W_o(h(x) softmax(f(x)^T g(x))).

    Every position attends to every other, so distant parts of an image can agree (a digit's
    loop and its tail). gamma starts at 0: the block begins as the identity and the net learns
    how much non-local evidence to mix in.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        ck, cv = max(1, c // 8), max(1, c // 2)
        self.f, self.g = nn.Conv2d(c, ck, 1, bias=False), nn.Conv2d(c, ck, 1, bias=False)
        self.h, self.o = nn.Conv2d(c, cv, 1, bias=False), nn.Conv2d(cv, c, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        q, k, v = self.f(x).flatten(2), self.g(x).flatten(2), self.h(x).flatten(2)  # (B, C', N)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N): row i = where position i looks
        out = (v @ attn.transpose(1, 2)).view(b, -1, hh, ww)
        return x + self.gamma * self.o(out)


def attention_at(want: int, size: int, ch: int) -> list[nn.Module]:
    """[a SAGAN block] at the feature-map size model.attention chose, else []."""
    return [SelfAttention(ch)] if want and size == want else []


def check_attention(want: int, sizes: list[int]) -> None:
    if want and want not in sizes:
        raise ConfigError(f"model.attention={want} is not a feature-map size of this net ({sizes})")


class SumPool(nn.Module):
    """Sum over the spatial positions, (B, C, H, W) -> (B, C): the SNGAN ResNet D's pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3))
