from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data import Dataset
from ..errors import GankitError
from ..registry import Registry
from . import cache, classes, distances, toy

metrics: Registry[Callable[[EvalContext], dict[str, Any]]] = Registry("metric")


def count_tag(n: int) -> str:
    """5000 -> '5k', 2500 -> '2.5k', 700 -> '700'."""
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


@dataclass
class EvalContext:
    fake: Tensor
    reference: Dataset
    extractor: nn.Module | None
    seed: int = 0
    labels: Tensor | None = None  # the class each fake was asked for (conditional runs)

    @property
    def n(self) -> str:
        return count_tag(len(self.fake))

    @property
    def ext(self) -> str:
        return getattr(self.extractor, "name", type(self.extractor).__name__.lower())

    @functools.cached_property
    def real_feats(self) -> tuple[Tensor, Tensor | None]:
        sha = getattr(self.extractor, "weights_sha", None)
        if sha is None:  # a user module: its weights are unknown, so nothing can be cached safely
            return self._extract(self.reference.x)

        def compute() -> dict[str, Tensor]:
            f, p = self._extract(self.reference.x)
            return {"features": f} | ({"probs": p} if p is not None else {})

        out = cache.cached(self.reference.x, f"{self.ext}-{sha}", compute)
        return out["features"], out.get("probs")

    @functools.cached_property
    def fake_feats(self) -> tuple[Tensor, Tensor | None]:
        return self._extract(self.fake)

    @torch.no_grad()
    def _extract(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        if self.extractor is None:
            raise GankitError("this metric needs images and a feature extractor")
        self.extractor.eval()
        feats, probs = [], []
        for i in range(0, len(x), 500):
            part = x[i: i + 500]
            if hasattr(self.extractor, "features_and_probs"):
                f, p = self.extractor.features_and_probs(part)
                probs.append(p)
            else:
                f = self.extractor(part)
            feats.append(f.flatten(1))
        return torch.cat(feats), (torch.cat(probs) if probs else None)

    def probs(self) -> Tensor:
        p = self.fake_feats[1]
        if p is None:
            raise GankitError(f"extractor {self.ext} gives no class probabilities (IS and class stats need them)")
        return p


@metrics.register("fid", "Fréchet distance of extractor features (float64, scipy sqrtm)")
def _fid(c: EvalContext) -> dict[str, Any]:
    return {f"fid_{c.ext}_{c.n}": distances.fid(c.real_feats[0], c.fake_feats[0])}


@metrics.register("kid", "kernel distance: unbiased cubic-kernel MMD^2 over 100 subsets, mean and std")
def _kid(c: EvalContext) -> dict[str, Any]:
    mean, std = distances.kid(c.real_feats[0], c.fake_feats[0], seed=c.seed)
    return {f"kid_{c.ext}_{c.n}": mean, f"kid_{c.ext}_{c.n}_std": std}


@metrics.register("is", "Inception Score of the extractor's class probabilities, 10 splits")
def _is(c: EvalContext) -> dict[str, Any]:
    mean, std = classes.inception_score(c.probs())
    return {f"is_{c.ext}_{c.n}": mean, f"is_{c.ext}_{c.n}_std": std}


@metrics.register("prdc", "precision/recall (k=3) and density/coverage (k=5) in feature space")
def _prdc(c: EvalContext) -> dict[str, Any]:
    # k-NN over all pairs is O(N^2) memory: capped at 5000 per side, stated in the names
    real, fake = c.real_feats[0][:5000], c.fake_feats[0][:5000]
    nr = count_tag(min(len(real), len(fake)))
    both = distances.prdc_multi(real, fake, (3, 5))
    pr, dc = both[3], both[5]
    return {f"precision_{c.ext}_k3_{nr}": pr["precision"], f"recall_{c.ext}_k3_{nr}": pr["recall"],
            f"density_{c.ext}_k5_{nr}": dc["density"], f"coverage_{c.ext}_k5_{nr}": dc["coverage"]}


@metrics.register("classes", "class histogram, classes covered (>= 1/10 of a uniform share), KL to uniform")
def _classes(c: EvalContext) -> dict[str, Any]:
    s = classes.class_stats(c.probs())
    return {f"{k}_{c.ext}_{c.n}": v for k, v in s.items()}


@metrics.register("modes", "toy 2-D mode counting (PacGAN protocol): modes, high-quality %, reverse KL")
def _modes(c: EvalContext) -> dict[str, Any]:
    meta = c.reference.meta
    if "centres" not in meta:
        raise GankitError(f"mode counting needs a toy mixture (ring, grid), not {c.reference.name}")
    s = toy.mode_stats(c.fake, meta["centres"], meta["std"])
    return {f"{k}_pacgan_{c.n}": v for k, v in s.items()}


@metrics.register("stacked", "stacked MNIST: each channel classified by the digit CNN -> 1000 modes, KL to uniform")
def _stacked(c: EvalContext) -> dict[str, Any]:
    from .classifier import load_digit_classifier, stacked_modes

    if c.fake.shape[1:] != (3, 28, 28):
        raise GankitError(f"stacked MNIST scoring needs (3, 28, 28) samples, got {tuple(c.fake.shape[1:])}")
    hist = torch.bincount(stacked_modes(load_digit_classifier(), c.fake), minlength=1000)
    return {f"modes_stacked_{c.n}": int((hist > 0).sum()), f"kl_uniform_stacked_{c.n}": classes.kl_to_uniform(hist)}


@metrics.register("cond", "conditional runs: accuracy of samples for the class asked (classifier), intra-class FID")
def _cond(c: EvalContext) -> dict[str, Any]:
    if c.labels is None:
        raise GankitError("metric cond needs the class each sample was asked for (a conditional run)")
    pred = c.probs().argmax(1)
    per_class, intra = [], []
    ref_y = c.reference.y
    for k in range(int(c.labels.max()) + 1):
        mine = c.labels == k
        per_class.append(float((pred[mine] == k).float().mean()) if mine.any() else float("nan"))
        if ref_y is not None and mine.sum() > 1 and (ref_y == k).sum() > 1:
            intra.append(distances.fid(c.real_feats[0][ref_y == k], c.fake_feats[0][mine]))
    out = {f"cond_acc_{c.ext}_{c.n}": float((pred == c.labels).float().mean()),
           f"cond_acc_per_class_{c.ext}_{c.n}": [round(a, 4) for a in per_class]}
    if intra:  # Frechet distance per class, real class k vs fakes asked for k, then averaged
        out[f"intra_fid_{c.ext}_{c.n}"] = float(sum(intra) / len(intra))
    return out


IMAGE_DEFAULT = ["fid", "kid", "is", "prdc", "classes"]
TOY_DEFAULT = ["modes"]


class CenterCrop(nn.Module):
    """An extractor seen through a centre crop: 32x32 padded digits (data.pad=2, as ProGAN grows
    to) are scored by the 28x28 digit CNN on their middle 28x28, which undoes the padding exactly.
    Its name says so (`mnistcnn_crop28`), so these numbers are never mixed with 28x28 ones."""

    def __init__(self, net: nn.Module, size: int) -> None:
        super().__init__()
        self.net, self.size = net, size
        self.name = f"{getattr(net, 'name', 'net')}_crop{size}"
        self.weights_sha = getattr(net, "weights_sha", None)

    def _crop(self, x: Tensor) -> Tensor:
        top, left = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
        return x[..., top: top + self.size, left: left + self.size]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self._crop(x))

    def features_and_probs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net.features_and_probs(self._crop(x))


def default_extractor(shape: tuple[int, ...]) -> nn.Module:
    from .classifier import load_digit_classifier

    if tuple(shape) == (1, 28, 28):
        return load_digit_classifier()
    if tuple(shape) == (1, 32, 32):
        return CenterCrop(load_digit_classifier(), 28)
    raise GankitError(f"no default feature extractor for images of shape {tuple(shape)}: the project's digit "
                      "classifier needs 1x28x28 (or 1x32x32, centre-cropped); pass InceptionV3 weights "
                      "(--inception FILE) or your own module")


def evaluate(fake: Tensor, reference: Dataset, names: list[str] | None = None, extractor: nn.Module | None = None,
             seed: int = 0, labels: Tensor | None = None) -> dict[str, Any]:
    """Score samples `fake` against the real `reference` data; returns {result name: value}.
    `labels`: the class each sample was asked for, when a conditional G made them."""
    for name in names or []:  # unknown names fail (with suggestions) before any work
        metrics.get(name)
    reference = reference.in_memory()
    if fake.shape[1:] != reference.x.shape[1:]:
        raise GankitError(f"samples have shape {tuple(fake.shape[1:])} but the reference data "
                          f"{reference.name} has {tuple(reference.x.shape[1:])}")
    if not torch.isfinite(fake).all():
        raise GankitError("samples contain NaN or infinite values")
    if labels is not None and labels.shape != (len(fake),):
        raise GankitError(f"labels must have one entry per sample ({len(fake)}), got shape {tuple(labels.shape)}")
    if not names:
        stacked = reference.meta.get("stacked", False)
        names = ["stacked"] if stacked else (IMAGE_DEFAULT if reference.is_image else TOY_DEFAULT)
        if labels is not None and reference.is_image and not stacked:
            names = [*names, "cond"]
    if reference.is_image and extractor is None and any(m != "stacked" for m in names):
        extractor = default_extractor(reference.shape)
    ctx = EvalContext(fake.float(), reference, extractor, seed, labels)
    out: dict[str, Any] = {}
    for name in names:
        out.update(metrics.get(name)(ctx))
    protocol: dict[str, Any] = {"n_fake": len(fake), "n_real": len(reference), "reference": reference.name,
                                "seed": seed}
    if extractor is not None:
        protocol["extractor"] = ctx.ext
        protocol["extractor_weights"] = getattr(extractor, "weights_sha", "user-supplied")
    out["protocol"] = protocol
    return out
