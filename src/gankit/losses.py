"""Adversarial losses as pure functions of discriminator outputs (logits, or raw critic scores).

Each `*_d` returns the discriminator's loss to minimise, each `*_g` the generator's. Real and
fake are keyword-only so they cannot be swapped by accident. Sigmoids live here, never in D:
`softplus(-x) = -log(sigmoid(x))` is the numerically stable form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .registry import Registry

LOG2 = math.log(2.0)


# --- the original GAN (Goodfellow et al. 2014) -------------------------------------------------

def bce_real(real: Tensor, real_label: float = 1.0) -> Tensor:
    """-t log D(x) - (1-t) log(1 - D(x)), D = sigmoid(logit); t < 1 is one-sided label smoothing."""
    return (real_label * F.softplus(-real) + (1.0 - real_label) * F.softplus(real)).mean()


def bce_fake(fake: Tensor) -> Tensor:
    """-log(1 - D(G(z))) = softplus(fake)."""
    return F.softplus(fake).mean()


def bce_d(*, real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    """-t log D(x) - (1-t) log(1-D(x)) - log(1 - D(G(z))), D = sigmoid(logit), t = real_label.

    t = 1 is the standard loss; t = 0.9 is one-sided label smoothing (only the real side).
    """
    return bce_real(real, real_label) + bce_fake(fake)


def minimax_g(*, fake: Tensor, real: Tensor | None = None) -> Tensor:
    """log(1 - D(G(z))) = -softplus(fake): the saturating minimax generator loss."""
    return -F.softplus(fake).mean()


def nonsaturating_g(*, fake: Tensor, real: Tensor | None = None) -> Tensor:
    """-log D(G(z)) = softplus(-fake): the 'modified minimax' loss, strong gradients early on."""
    return F.softplus(-fake).mean()


# --- Wasserstein (Arjovsky et al. 2017) ----------------------------------------------------------

def wasserstein_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """E[C(G(z))] - E[C(x)]: the critic maximises the gap; needs a Lipschitz constraint (clip or GP)."""
    return fake.mean() - real.mean()


def wasserstein_g(*, fake: Tensor, real: Tensor | None = None) -> Tensor:
    """-E[C(G(z))]."""
    return -fake.mean()


# --- least squares (Mao et al. 2017, a=0, b=c=1) ---------------------------------------------

def lsgan_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] on raw outputs."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def lsgan_g(*, fake: Tensor, real: Tensor | None = None) -> Tensor:
    """1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


# --- hinge (Lim & Ye 2017; Miyato et al. 2018) -----------------------------------------------

def hinge_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


# hinge G is the Wasserstein G loss, -E[D(G(z))]


# --- relativistic average (Jolicoeur-Martineau 2019) -----------------------------------------

def ragan_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """-log sigmoid(C(x) - E C(G(z))) - log(1 - sigmoid(C(G(z)) - E C(x)))."""
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def ragan_g(*, fake: Tensor, real: Tensor | None = None) -> Tensor:
    """The D loss with real and fake swapped: G also pushes real data to look 'less real'."""
    if real is None:
        raise ValueError("ragan_g needs the real logits")
    return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()


# --- f-GAN (Nowozin et al. 2016) ---------------------------------------------------------------
# D's raw output v passes through an output activation g_f into the domain of the conjugate f*.
# D maximises F = E_P[g_f(v(x))] - E_Q[f*(g_f(v(G(z))))], a lower bound on D_f(P || Q) that is
# tight at the optimal D. G uses the paper's alternative update: maximise E_Q[g_f(v(G(z)))].
# Each pair below is (g_f(v), f*(g_f(v))) written in closed, overflow-safe form.

FDIV: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    # KL: f(u) = u log u, g_f(v) = v, f*(t) = exp(t - 1)
    "kl": (lambda v: v, lambda v: torch.exp(v - 1.0)),
    # reverse KL: f(u) = -log u, g_f(v) = -exp(-v), f*(t) = -1 - log(-t)  ->  v - 1
    "rkl": (lambda v: -torch.exp(-v), lambda v: v - 1.0),
    # Jensen-Shannon: g_f(v) = log 2 - softplus(-v), f*(t) = -log(2 - e^t)  ->  softplus(v) - log 2
    "js": (lambda v: LOG2 - F.softplus(-v), lambda v: F.softplus(v) - LOG2),
    # Pearson chi^2: f(u) = (u-1)^2, g_f(v) = v, f*(t) = t^2/4 + t
    "pearson": (lambda v: v, lambda v: 0.25 * v * v + v),
    # squared Hellinger: f(u) = (sqrt u - 1)^2, g_f(v) = 1 - e^-v, f*(t) = t/(1-t)  ->  e^v - 1
    "hellinger": (lambda v: 1.0 - torch.exp(-v), lambda v: torch.exp(v) - 1.0),
}


def fgan_d(divergence: str) -> Callable[..., Tensor]:
    act, conj = FDIV[divergence]

    def loss(*, real: Tensor, fake: Tensor) -> Tensor:
        return -(act(real).mean() - conj(fake).mean())

    loss.__doc__ = f"-(E_P[g_f(v)] - E_Q[f*(g_f(v))]) for the {divergence} divergence (f-GAN)."
    return loss


def fgan_g(divergence: str) -> Callable[..., Tensor]:
    act, _ = FDIV[divergence]

    def loss(*, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -act(fake).mean()

    loss.__doc__ = f"-E_Q[g_f(v)] for the {divergence} divergence (f-GAN's alternative G update)."
    return loss


def fgan_bound(divergence: str, *, real: Tensor, fake: Tensor) -> Tensor:
    """The variational lower bound F itself, = D_f(P||Q) at the optimal D (tested in closed form)."""
    return -fgan_d(divergence)(real=real, fake=fake)


# --- the registry -----------------------------------------------------------------------------

# --- the semi-supervised GAN (Salimans et al. 2016): D's K logits, the fake class implicit --------

def semisup_unsupervised_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """D's unsupervised term on K-class logits (N, K), the fake class's logit fixed at 0, so
    D(x) = Z / (Z + 1) = sigmoid(lse(l)), lse = logsumexp over the K classes:
    0.5 * [-log D(x) - log(1 - D(G(z)))] = 0.5 * [softplus(-lse(real)) + softplus(lse(fake))]
    (openai/improved-gan writes the real half as -lse + softplus(lse), the same value)."""
    return 0.5 * (F.softplus(-torch.logsumexp(real, 1)).mean() + F.softplus(torch.logsumexp(fake, 1)).mean())


def feature_matching(*, real: Tensor, fake: Tensor) -> Tensor:
    """G's feature-matching loss: mean over features of (E f(x) - E f(G(z)))^2, f (N, F) an
    intermediate layer of D, the expectations over the batch (Salimans et al. 2016, sec. 3.1)."""
    return (real.mean(0) - fake.mean(0)).pow(2).mean()


@dataclass(frozen=True)
class LossSpec:
    d: Callable[..., Tensor]
    g: Callable[..., Tensor]
    doc: str
    g_needs_real: bool = False  # G's loss also needs D(x) (relativistic losses)
    label_smoothing: bool = False  # accepts real_label (BCE losses)
    implies: dict[str, float] = field(default_factory=dict)  # config defaults this loss needs


losses: Registry[LossSpec] = Registry("loss")

for _name, _spec in {
    "minimax": LossSpec(bce_d, minimax_g, "original minimax: G minimises log(1 - D(G(z))) (saturates)",
                        label_smoothing=True),
    "nonsaturating": LossSpec(bce_d, nonsaturating_g, "non-saturating: G minimises -log D(G(z))",
                              label_smoothing=True),
    "wasserstein": LossSpec(wasserstein_d, wasserstein_g, "Wasserstein critic loss, no constraint (add one)"),
    "wgan": LossSpec(wasserstein_d, wasserstein_g, "WGAN: Wasserstein loss + weight clipping 0.01",
                     implies={"reg.weight_clip": 0.01}),
    "wgan_gp": LossSpec(wasserstein_d, wasserstein_g, "WGAN-GP: Wasserstein loss + gradient penalty 10",
                        implies={"reg.gp_weight": 10.0}),
    "lsgan": LossSpec(lsgan_d, lsgan_g, "least squares (LSGAN), targets 0/1"),
    "hinge": LossSpec(hinge_d, wasserstein_g, "hinge loss (SNGAN, BigGAN)"),
    "ragan": LossSpec(ragan_d, ragan_g, "relativistic average GAN (RaGAN, BCE form)", g_needs_real=True),
    **{f"fgan_{k}": LossSpec(fgan_d(k), fgan_g(k), f"f-GAN, {label} divergence")
       for k, label in [("kl", "KL"), ("rkl", "reverse KL"), ("js", "Jensen-Shannon"),
                        ("pearson", "Pearson chi^2"), ("hellinger", "squared Hellinger")]},
}.items():
    losses.add(_name, _spec, _spec.doc)
