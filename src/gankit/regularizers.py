"""Regularisers and constraints, separate from the losses and from the train step.

The step adds these to D's loss (and MSGAN's `mode_seeking` to G's); it does not know their internals.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def gradient_penalty(d: nn.Module, real: Tensor, fake: Tensor, center: float = 1.0) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z) (Gulrajani et al. 2017).

    eps is drawn per sample (one scalar for each pair), not per pixel and not per batch.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), dtype=real.dtype, device=real.device)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = d(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    # a PacGAN D's input is a pack of m samples: the norm is taken per pack, D's actual input
    norms = grad.reshape(len(out), -1).norm(2, dim=1)
    return ((norms - center) ** 2).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """E[||grad_x D(x)||^2] on real data (Mescheder et al. 2018); multiply by gamma/2 outside.

    `real` must have requires_grad=True before D saw it.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).reshape(len(real_logits), -1).sum(1).mean()  # per D input (a PacGAN pack)


def mode_seeking(fake1: Tensor, fake2: Tensor, z1: Tensor, z2: Tensor, eps: float = 1e-5) -> Tensor:
    """MSGAN's term for G (Mao et al. 2019): 1 / (mean|G(z1,c) - G(z2,c)| / mean|z1 - z2| + eps).

    Two noises under the same condition should give images as far apart as the noises are; a
    conditional G that ignores z (one image per caption or class) makes this term large.
    """
    ratio = (fake1 - fake2).abs().mean() / (z1 - z2).abs().mean()
    return 1.0 / (ratio + eps)


@torch.no_grad()
def clip_weights(d: nn.Module, c: float) -> None:
    """WGAN's Lipschitz constraint: clamp every D parameter to [-c, c] after each D step."""
    for p in d.parameters():
        p.clamp_(-c, c)


def instance_noise_std(step: int, std0: float, anneal_steps: int) -> float:
    """Annealed instance noise (Sønderby et al. 2017): std falls linearly from std0 to 0."""
    if std0 <= 0:
        return 0.0
    if anneal_steps <= 0:
        return std0
    return std0 * max(0.0, 1.0 - step / anneal_steps)
