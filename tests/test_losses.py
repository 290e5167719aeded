"""Exact values of every loss on hand-computed inputs, and f-GAN bounds against closed forms."""

import math

import pytest
import torch

from gankit import losses as L

Z = torch.zeros(4)


def test_bce_at_zero_logits_is_two_log_two():
    assert L.bce_d(real=Z, fake=Z).item() == pytest.approx(2 * math.log(2))
    assert L.nonsaturating_g(fake=Z).item() == pytest.approx(math.log(2))
    assert L.minimax_g(fake=Z).item() == pytest.approx(-math.log(2))


def test_bce_values_on_known_logits():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    want = (sp(-2.0) + sp(1.0)) / 2 + (sp(0.5) + sp(-3.0)) / 2
    assert L.bce_d(real=real, fake=fake).item() == pytest.approx(want, rel=1e-6)
    assert L.nonsaturating_g(fake=fake).item() == pytest.approx((sp(-0.5) + sp(3.0)) / 2, rel=1e-6)


def test_one_sided_label_smoothing_optimum_is_logit_of_target():
    x = torch.tensor([math.log(0.9 / 0.1)], requires_grad=True)
    L.bce_real(x, 0.9).backward()
    assert abs(x.grad.item()) < 1e-6  # the smoothed loss is minimised at D(x) = 0.9, not at 1
    # and it equals t*softplus(-x) + (1-t)*softplus(x)
    v = torch.tensor([1.5])
    want = 0.9 * math.log1p(math.exp(-1.5)) + 0.1 * math.log1p(math.exp(1.5))
    assert L.bce_real(v, 0.9).item() == pytest.approx(want)


def test_bce_is_stable_for_huge_logits():
    big = torch.tensor([1e4, -1e4])
    for v in (L.bce_d(real=big, fake=big), L.nonsaturating_g(fake=big), L.minimax_g(fake=big)):
        assert torch.isfinite(v)
    assert L.bce_d(real=torch.tensor([1e4]), fake=torch.tensor([-1e4])).item() == pytest.approx(0.0, abs=1e-6)


def test_wasserstein_hinge_lsgan_exact():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-0.5, 1.5])
    assert L.wasserstein_d(real=real, fake=fake).item() == pytest.approx(0.5 - 1.0)
    assert L.wasserstein_g(fake=fake).item() == pytest.approx(-0.5)
    # hinge: relu(1-2)=0, relu(1-0)=1 -> 0.5; relu(1-0.5)=0.5, relu(1+1.5)=2.5 -> 1.5
    assert L.hinge_d(real=real, fake=fake).item() == pytest.approx(0.5 + 1.5)
    # lsgan: 0.5*mean((1, 1)) + 0.5*mean((0.25, 2.25)) = 0.5 + 0.625
    assert L.lsgan_d(real=real, fake=fake).item() == pytest.approx(0.5 + 0.625)
    assert L.lsgan_g(fake=fake).item() == pytest.approx(0.5 * (2.25 + 0.25) / 2)


def test_ragan_exact_and_symmetric():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    # real - mean(fake) = (2, 4); fake - mean(real) = (-2, -4)
    want_d = (sp(-2) + sp(-4)) / 2 + (sp(-2) + sp(-4)) / 2
    assert L.ragan_d(real=real, fake=fake).item() == pytest.approx(want_d, rel=1e-6)
    assert L.ragan_g(fake=fake, real=real).item() == pytest.approx(L.ragan_d(real=fake, fake=real).item())
    with pytest.raises(ValueError):
        L.ragan_g(fake=fake)


# f-divergences f(u) and the optimal critic's raw output v* with g_f(v*) = f'(p/q)
FDIVS = {
    "kl": (lambda u: u * math.log(u), lambda u: 1 + math.log(u)),
    "rkl": (lambda u: -math.log(u), lambda u: math.log(u)),
    "pearson": (lambda u: (u - 1) ** 2, lambda u: 2 * (u - 1)),
    "hellinger": (lambda u: (math.sqrt(u) - 1) ** 2, lambda u: 0.5 * math.log(u)),
    "js": (lambda u: u * math.log(u) - (u + 1) * math.log((u + 1) / 2), lambda u: math.log(u)),
}


@pytest.mark.parametrize("name", sorted(FDIVS))
def test_fgan_bound_is_tight_at_optimal_critic(name):
    """On discrete P, Q the bound with the optimal critic equals sum_x q(x) f(p(x)/q(x))."""
    f, v_star = FDIVS[name]
    p, q = [0.5, 0.25, 0.25], [0.25, 0.25, 0.5]
    want = sum(qi * f(pi / qi) for pi, qi in zip(p, q, strict=True))
    # samples in proportion to the probabilities (4 draws each), so means are exact expectations
    xs_p = [0, 0, 1, 2]
    xs_q = [0, 1, 2, 2]
    v = [v_star(pi / qi) for pi, qi in zip(p, q, strict=True)]
    real = torch.tensor([v[i] for i in xs_p], dtype=torch.float64)
    fake = torch.tensor([v[i] for i in xs_q], dtype=torch.float64)
    got = L.fgan_bound(name, real=real, fake=fake).item()
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    # any other critic gives a smaller bound (it is a lower bound)
    worse = L.fgan_bound(name, real=real * 0.5, fake=fake * 0.5).item()
    assert worse < want + 1e-12


def test_fgan_js_output_activation_matches_definition():
    v = torch.linspace(-5, 5, 11, dtype=torch.float64)
    act, conj = L.FDIV["js"]
    t = act(v)
    assert torch.allclose(t, math.log(2) - torch.log1p(torch.exp(-v)))
    assert torch.allclose(conj(v), -torch.log(2 - torch.exp(t)))


@pytest.mark.parametrize("name", L.losses.names())
def test_every_registered_loss_is_finite_and_differentiable(name):
    spec = L.losses.get(name)
    real = torch.randn(8, requires_grad=True)
    fake = torch.randn(8, requires_grad=True)
    d = spec.d(real=real, fake=fake)
    g = spec.g(fake=fake, real=real.detach() if spec.g_needs_real else None)
    assert d.dim() == 0 and g.dim() == 0 and torch.isfinite(d) and torch.isfinite(g)
    (d + g).backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    # D wants real scored higher than fake: raising real logits must not increase D's loss
    assert real.grad.sum() <= 1e-6
