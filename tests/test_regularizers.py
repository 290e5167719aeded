"""Penalties and constraints: exact values on nets whose gradients are known, and their effect."""

import pytest
import torch
from torch import nn

from gankit import losses as L
from gankit import regularizers as R


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_gradient_penalty_exact_for_linear_critic():
    d = Linear([3.0, 4.0])  # grad norm 5 everywhere -> (5 - 1)^2 = 16
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert R.gradient_penalty(d, real, fake).item() == pytest.approx(16.0)


def test_gradient_penalty_interpolates_per_sample():
    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen["x"] = x.detach().clone()
            return (x**2).flatten(1).sum(1)

    real = torch.ones(5, 1, 3, 3)
    fake = torch.zeros(5, 1, 3, 3)
    R.gradient_penalty(Spy(), real, fake)
    x = seen["x"]
    per_sample = x.flatten(1)
    # within a sample every pixel has the same eps; across samples the eps differ
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))
    assert per_sample[:, 0].unique().numel() == 5
    assert ((per_sample >= 0) & (per_sample <= 1)).all()


def test_r1_exact_for_linear_critic():
    d = Linear([1.0, 2.0])
    real = torch.randn(4, 2, requires_grad=True)
    assert R.r1_penalty(d(real), real).item() == pytest.approx(5.0)


def test_weight_clipping_bounds_every_parameter():
    net = nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(100)
    R.clip_weights(net, 0.01)
    assert max(p.abs().max().item() for p in net.parameters()) <= 0.01


def test_instance_noise_anneals_linearly_to_zero():
    assert R.instance_noise_std(0, 0.5, 100) == 0.5
    assert R.instance_noise_std(50, 0.5, 100) == pytest.approx(0.25)
    assert R.instance_noise_std(100, 0.5, 100) == 0.0
    assert R.instance_noise_std(500, 0.5, 100) == 0.0
    assert R.instance_noise_std(500, 0.5, 0) == 0.5  # constant when not annealed
    assert R.instance_noise_std(3, 0.0, 100) == 0.0


def _train_critic(gp: float, r1: float = 0.0, steps: int = 150):
    """Train a small MLP critic alone (Wasserstein loss) between two fixed point clouds."""
    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    real = torch.randn(256, 2) * 0.2 + 1.0
    fake = torch.randn(256, 2) * 0.2 - 1.0
    for _ in range(steps):
        x = real.clone().requires_grad_(r1 > 0)
        out_r = d(x).squeeze(1)
        loss = L.wasserstein_d(real=out_r, fake=d(fake).squeeze(1))
        if gp:
            loss = loss + gp * R.gradient_penalty(lambda v: d(v).squeeze(1), real, fake)
        if r1:
            loss = loss + r1 * R.r1_penalty(out_r, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x_hat = (0.5 * real + 0.5 * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(d(x_hat).sum(), x_hat)
    return g.norm(dim=1).mean().item()


def test_gradient_penalty_keeps_critic_near_1_lipschitz():
    unconstrained = _train_critic(gp=0.0)
    penalised = _train_critic(gp=10.0)
    assert unconstrained > 3.0  # without a constraint the critic's slope keeps growing
    assert 0.6 < penalised < 1.4


def test_r1_shrinks_critic_slope():
    # R1 penalises the slope at real points; the critic's slope there shrinks well below the unpenalised one
    torch.manual_seed(0)
    assert _train_critic(gp=0.0, r1=10.0) < 0.5 * _train_critic(gp=0.0)
