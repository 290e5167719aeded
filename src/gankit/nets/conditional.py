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
    return ConditionalG(g, k, cfg.cond_g), d


def wrap_d(d: nn.Module, cfg: Any, shape: tuple[int, ...]) -> nn.Module:
    return ConditionalD(d, cfg.n_classes, cfg.cond, shape, cfg.norm_d == "spectral")
