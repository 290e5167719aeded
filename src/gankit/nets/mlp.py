"""Fully connected nets: the Keras tutorials' MLP GAN and a small MLP for 2-D toy data."""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from .layers import Logit, Reshape, activation, finish, norm1d
from .registry import models


def _stack(sizes: list[int], norm: str, act: str, slope: float, dropout: float, momentum: float) -> list:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        # no norm on D's input layer or anywhere a batch statistic would mix real and fake
        layers += [nn.Linear(sizes[i], sizes[i + 1]), norm1d(norm, sizes[i + 1], momentum),
                   activation(act, slope)]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


@models.register("mlp", "MLP G z->256->512->1024->image (tanh), D image->512->256->1 (Keras tutorials)")
def build_mlp(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    n = math.prod(shape)
    w = cfg.width  # 64 gives the tutorials' 256/512/1024 and 512/256
    g = nn.Sequential(
        *_stack([cfg.z_dim, 4 * w, 8 * w, 16 * w], cfg.norm_g, cfg.act_g, cfg.leaky_slope, 0.0, cfg.bn_momentum),
        nn.Linear(16 * w, n), nn.Tanh(), Reshape(*shape),
    )
    d = nn.Sequential(
        nn.Flatten(),
        *_stack([n, 8 * w, 4 * w], cfg.norm_d, cfg.act_d, cfg.leaky_slope, cfg.dropout_d, cfg.bn_momentum),
        Logit(4 * w),
    )
    return finish(g, cfg.init, cfg.norm_g), finish(d, cfg.init, cfg.norm_d)


@models.register("toy_mlp", "MLP for 2-D points: `depth` hidden layers of `width` units in G and D")
def build_toy(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    if len(shape) != 1:
        raise ValueError(f"toy_mlp models points (N,D), got examples of shape {shape}")
    n = shape[0]
    hidden = [cfg.width] * cfg.depth
    g = nn.Sequential(
        *_stack([cfg.z_dim, *hidden], cfg.norm_g, cfg.act_g, cfg.leaky_slope, 0.0, cfg.bn_momentum),
        nn.Linear(cfg.width, n),
    )
    d = nn.Sequential(
        *_stack([n, *hidden], cfg.norm_d, cfg.act_d, cfg.leaky_slope, cfg.dropout_d, cfg.bn_momentum),
        Logit(cfg.width),
    )
    return finish(g, cfg.init, cfg.norm_g), finish(d, cfg.init, cfg.norm_d)
