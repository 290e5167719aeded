"""Class-conditional GANs as wrappers around any registered G and D.

G, conditioned on a label y (model.cond_g):
- concat: the one-hot label is appended to z (Mirza & Osindero 2014).
- cbn: every BatchNorm of G becomes a conditional BatchNorm whose gain and bias are looked up
  per class (de Vries et al. 2017; Miyato & Koyama 2018).

D, conditioned on the label it is asked to judge (model.cond):
- concat: one-hot label maps appended to the input channels (features, for points).
- projection: logit = psi(h) + <embed(y), h> on D's penultimate features h (Miyato & Koyama 2018).
- acgan: an unconditional D plus an auxiliary classifier head on h; the train step adds the
  class cross-entropy to both losses (Odena et al. 2017).

Every conditional G takes `g(z, y=None)`; y=None asks for a balanced sweep of classes
(row i gets class i mod K), so code that only knows z (FLOP counts, sample grids, unconditional
metrics) still runs. Every conditional D takes `d(x, y)`.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import ConfigError
from .layers import replace_module


def default_labels(n: int, k: int, device: torch.device | None = None) -> Tensor:
    return torch.arange(n, device=device) % k


def _check(y: Tensor, n: int, k: int) -> None:
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        raise ValueError(f"labels must lie in [0, {k}), got {int(y.min())}..{int(y.max())}")


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine; gain and bias come from per-class embeddings.

    The label is handed over by the owning ConditionalG just before its forward (`self.y`):
    that keeps every registered generator usable as it is, without threading y through its layers.
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, k: int) -> None:
        super().__init__()
        self.bn = type(bn)(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=False)
        self.gain = nn.Embedding(k, bn.num_features)
        self.bias = nn.Embedding(k, bn.num_features)
        nn.init.ones_(self.gain.weight)  # starts as plain BatchNorm
        nn.init.zeros_(self.bias.weight)
        self.y: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.y is None:
            raise RuntimeError("ConditionalBatchNorm called outside a ConditionalG forward")
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)  # x.shape, not len(x): a traced G keeps its batch free
        return self.bn(x) * self.gain(self.y).view(shape) + self.bias(self.y).view(shape)


class ConditionalG(nn.Module):
    def __init__(self, g: nn.Module, k: int, mode: str) -> None:
        super().__init__()
        self.g, self.n_classes, self.mode = g, k, mode
        self.cbn = []
        if mode == "cbn":
            for name, m in list(g.named_modules()):
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    self.cbn.append(ConditionalBatchNorm(m, k))
                    replace_module(g, name, self.cbn[-1])
            if not self.cbn:
                raise ConfigError("model.cond_g=cbn needs a generator with BatchNorm (model.norm_g=batch)")

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        y = default_labels(len(z), self.n_classes, z.device) if y is None else y
        _check(y, len(z), self.n_classes)
        if self.mode == "concat":
            return self.g(torch.cat([z, F.one_hot(y, self.n_classes).to(z.dtype)], dim=1))
        for m in self.cbn:
            m.y = y
        try:
            return self.g(z)
        finally:
            for m in self.cbn:
                m.y = None


def _phi(x: Tensor) -> Tensor:
    """The standard normal CDF, written with erf: ONNX has erf, not torch.special.ndtr."""
    return 0.5 * (1 + torch.erf(x * 0.7071067811865476))


class SelfConditionedG(ConditionalG):
    """A conditional G on clusters of the training images (`model.clusters`), sampled as an
    unconditional one: G(z) reads its cluster from z.

    Self-conditioned GAN (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs"):
    conditioning G and D on clusters found without labels keeps G from dropping or starving modes,
    as class labels would. Here the clusters are fixed (k-means of the pixels at the start; the
    paper re-clusters D's features). The cluster is a function of z: with u = Phi(z[0]) uniform,
    cluster c owns the slice cdf[c-1] <= u < cdf[c] (`cdf`: cumulative cluster frequencies, a
    buffer), so G(z) draws each cluster as often as the data holds it; training moves z[0] into
    the slice of the cluster it asks for (`place`), so G never sees a z outside its cluster."""

    def __init__(self, g: nn.Module, k: int, mode: str) -> None:
        super().__init__(g, k, mode)
        self.register_buffer("cdf", torch.arange(1, k + 1, dtype=torch.float32) / k)  # uniform until set

    def set_frequencies(self, counts: Tensor) -> None:
        """Cluster sizes (k,) of the training data -> `cdf`."""
        c = counts.double().cumsum(0)
        self.cdf.copy_((c / c[-1]).float())

    def cluster_of(self, z: Tensor) -> Tensor:
        """(n,) cluster of each z (n, z_dim): the slice that Phi(z[:, 0]) falls in."""
        u = _phi(z[:, 0].float())
        # a count, not bucketize: traceable and exportable to ONNX
        return (u.unsqueeze(1) >= self.cdf[:-1].unsqueeze(0)).sum(1)

    def place(self, z: Tensor, y: Tensor) -> Tensor:
        """z with z[:, 0] moved into cluster y's slice (Phi(z0) rescaled into it): a z that
        `cluster_of` maps to y, as random within the cluster as z was."""
        cdf = self.cdf.double()  # float64: a slice of 1/200 must keep its margins (float32 rounds them away)
        hi = cdf[y]
        lo = torch.where(y > 0, cdf[(y - 1).clamp(min=0)], torch.zeros_like(hi))
        u = lo + _phi(z[:, 0].double()) * (hi - lo)
        eps = 1e-3  # keep ndtri finite and the point inside its slice after rounding to z's float32
        z = z.clone()
        u = u.clamp(lo + eps * (hi - lo), hi - eps * (hi - lo)).clamp(eps, 1 - eps)
        z[:, 0] = torch.special.ndtri(u).to(z.dtype)
        return z

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return super().forward(z, self.cluster_of(z) if y is None else y)


class ConditionalD(nn.Module):
    def __init__(self, d: nn.Module, k: int, mode: str, shape: tuple[int, ...], spectral: bool) -> None:
        super().__init__()
        self.d, self.n_classes, self.mode = d, k, mode
        if mode == "concat":
            return
        if not (isinstance(d, nn.Sequential) and len(d) > 1):
            raise ConfigError(f"model.cond={mode} needs a D built as layers ending in a Logit")
        n_feat = _feature_dim(d[:-1], shape)
        if mode == "projection":
            self.embed = nn.Embedding(k, n_feat)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)  # starts as the unconditional D
            if spectral:
                self.embed = spectral_norm(self.embed)
        else:
            self.classifier = nn.Linear(n_feat, k)
            if spectral:
                self.classifier = spectral_norm(self.classifier)

    def forward(self, x: Tensor, y: Tensor, aux: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        _check(y, len(x), self.n_classes)
        if self.mode == "concat":
            onehot = F.one_hot(y, self.n_classes).to(x.dtype)
            maps = onehot.view(*onehot.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
            return self.d(torch.cat([x, maps], dim=1))
        h = self.d[:-1](x)
        logits = self.d[-1](h)
        if self.mode == "projection":
            return logits + (self.embed(y) * h.flatten(1)).sum(1)
        return (logits, self.classifier(h.flatten(1))) if aux else logits


@torch.no_grad()
def _feature_dim(body: nn.Module, shape: tuple[int, ...]) -> int:
    # one throw-away forward in eval mode: no BatchNorm statistics or spectral-norm vectors move
    was = body.training
    body.eval()
    try:
        return int(body(torch.zeros(2, *shape)).flatten(1).shape[1])
    finally:
        body.train(was)


def conditional(builder: Any, cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """G and D of `builder` made class-conditional as model.cond_g / model.cond say."""
    k = cfg.n_classes
    if k < 2:
        raise ConfigError(f"a conditional model needs model.n_classes >= 2, got {k}")
    g_cfg = copy.copy(cfg)
    if cfg.cond_g == "concat":
        g_cfg.z_dim = cfg.z_dim + k
    g, _ = builder(g_cfg, shape)
    d_shape = (shape[0] + k, *shape[1:]) if cfg.cond == "concat" else shape
    _, d = builder(cfg, d_shape)
    return (SelfConditionedG if getattr(cfg, "clusters", 0) else ConditionalG)(g, k, cfg.cond_g), d


def wrap_d(d: nn.Module, cfg: Any, shape: tuple[int, ...]) -> nn.Module:
    return ConditionalD(d, cfg.n_classes, cfg.cond, shape, cfg.norm_d == "spectral")
