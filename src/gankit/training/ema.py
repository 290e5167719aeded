"""Exponential moving average of G's weights (Karras et al. 2018; Yazıcı et al. 2019)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(g: nn.Module) -> nn.Module:
    ema = copy.deepcopy(g).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


def ema_beta(step: int, beta: float) -> float:
    """Warm-up: early on average over about `step` steps, so the EMA is not stuck near init."""
    return min(beta, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, g: nn.Module, beta: float) -> None:
    ema_p = [p for p in ema.parameters()]
    g_p = [p.detach() for p in g.parameters()]
    torch._foreach_lerp_(ema_p, g_p, 1.0 - beta)
    # buffers (BatchNorm running statistics, spectral-norm vectors) are copied, not averaged
    for be, bg in zip(ema.buffers(), g.buffers(), strict=True):
        be.copy_(bg)
