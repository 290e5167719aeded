"""The metric registry and `evaluate()`: every metric declares what it needs (Needs), checked before
any work; a metric that cannot be computed is skipped with its reason, one that is unreliable at
this size says so in `warnings`, and the others are still computed."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..data import Dataset
from ..errors import GankitError
from ..registry import Registry
from . import cache, classes, distances, toy

metrics: Registry[Callable[[EvalContext], dict[str, Any]]] = Registry("metric")


@dataclass(frozen=True)
class Needs:
    """What a metric needs; `evaluate()` checks it before any work and skips the metric, with the
    reason, when it is not met."""

    samples: int = 1  # samples to score, at least
    reference: int = 0  # reference examples, at least (0: the metric does not compare with them)
    why: str = ""  # the reason for the minimum, said with it
    features: bool = False  # extractor features of images
    probs: bool = False  # class probabilities from the extractor
    labels: bool = False  # the class each sample was asked for (a conditional run)


NEEDS: dict[str, Needs] = {}


def register(name: str, doc: str, needs: Needs) -> Callable:
    """`metrics.register` with the metric's needs: every metric declares them."""
    NEEDS[name] = needs
    return metrics.register(name, doc)


def count_tag(n: int) -> str:
    """5000 -> '5k', 2500 -> '2.5k', 700 -> '700'."""
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass
class EvalContext:
    fake: Tensor
    reference: Dataset
    extractor: nn.Module | None
    seed: int = 0
    labels: Tensor | None = None  # the class each fake was asked for (conditional runs)
    warnings: list[str] = field(default_factory=list)  # "metric: what makes its value unreliable"
    protocol: dict[str, Any] = field(default_factory=dict)  # how values were computed, beyond the names

    def warn(self, metric: str, text: str) -> None:
        self.warnings.append(f"{metric}: {text}")

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

    @functools.cached_property
    def identical(self) -> bool:
        """The samples are the reference's examples, bit for bit in any order (a set against itself).
        Compared as images, not features: an extractor's features can differ in the last bits with
        the batch size (oneDNN picks kernels by shape), the images the user passed do not."""
        return distances.identical_sets(self.reference.x.float(), self.fake)

    @functools.cached_property
    def shared(self) -> int:
        """How many samples are copies, bit for bit, of a reference example."""
        return distances.shared_rows(self.reference.x.float(), self.fake)

    def frechet(self, metric: str, real: Tensor, fake: Tensor) -> distances.Frechet:
        """`distances.fid_stats` with what makes the value unreliable said as warnings of `metric`."""
        f = distances.fid_stats(real, fake)
        for w in distances.fid_warnings(f, min(len(real), len(fake)), real.shape[1]):
            self.warn(metric, w)
        return f


@register("fid", "Fréchet distance of extractor features (float64, scipy sqrtm as pytorch-fid)",
          Needs(distances.FID_MIN, distances.FID_MIN, "a covariance needs two", features=True))
def _fid(c: EvalContext) -> dict[str, Any]:
    if c.identical:  # 0 by definition; computed it would be 0 up to rounding (said in a warning)
        return {f"fid_{c.ext}_{c.n}": 0.0}
    f = c.frechet("fid", c.real_feats[0], c.fake_feats[0])
    c.protocol.update(fid_zero_tolerance=f.tolerance, fid_diagonal_offset=f.offset)
    return {f"fid_{c.ext}_{c.n}": f.value}


@register("fd_dinov2", "FD_DINOv2 (Stein et al. 2023): Fréchet distance of DINOv2 class-token features "
          "(gankit eval --features dinov2)",
          Needs(distances.FID_MIN, distances.FID_MIN, "a covariance needs two", features=True))
def _fd_dinov2(c: EvalContext) -> dict[str, Any]:
    # the same Fréchet distance as fid, named for its features: the architecture stays in the name
    # (dinov2_vits14), since the paper's values are ViT-L/14's
    if not c.ext.startswith("dinov2"):
        raise GankitError(f"needs DINOv2 features (--features dinov2), not {c.ext}")
    if c.identical:
        return {f"fd_{c.ext}_{c.n}": 0.0}
    f = c.frechet("fd_dinov2", c.real_feats[0], c.fake_feats[0])
    c.protocol.update(fd_zero_tolerance=f.tolerance, fd_diagonal_offset=f.offset)
    return {f"fd_{c.ext}_{c.n}": f.value}


@register("kid", "kernel distance: unbiased cubic-kernel MMD^2 over 100 subsets, mean and std",
          Needs(distances.KID_MIN, distances.KID_MIN, "its unbiased estimate averages over pairs of distinct "
                "samples", features=True))
def _kid(c: EvalContext) -> dict[str, Any]:
    if c.identical:  # the unbiased estimate of a set against itself is negative by construction (see kid)
        return {f"kid_{c.ext}_{c.n}": 0.0, f"kid_{c.ext}_{c.n}_std": None}
    mean, std = distances.kid(c.real_feats[0], c.fake_feats[0], seed=c.seed)
    nr, nf = len(c.reference), len(c.fake)
    m = min(distances.KID_SUBSET_SIZE, nr, nf)
    c.protocol["kid_subset_size"] = m
    if m == nr == nf:
        c.warn("kid", f"the subset size ({m}) is both set sizes, so every subset is both whole sets and the std "
                      "over subsets (~1e-15) is no spread: reported as null")
    elif std is None:  # different images, identical features (distances.kid's own check)
        c.warn("kid", "the samples' features are the reference's, row for row: 0 by definition")
    elif m in (nr, nf):
        side = "samples" if m == nf else f"reference examples ({c.reference.name})"
        c.warn("kid", f"all {m} {side} are in every subset, so the std over subsets shows only the choice of "
                      "the other set's subsets and understates the uncertainty")
    return {f"kid_{c.ext}_{c.n}": mean, f"kid_{c.ext}_{c.n}_std": std}


IS_SPLITS = 10


@register("is", f"Inception Score of the extractor's class probabilities, {IS_SPLITS} splits",
          Needs(2 * IS_SPLITS, 0, f"2 in each of its {IS_SPLITS} splits: a split of one sample scores exactly 1",
                probs=True))
def _is(c: EvalContext) -> dict[str, Any]:
    p = c.probs()
    split = len(p) // IS_SPLITS
    if split < p.shape[1]:
        c.warn("is", f"{IS_SPLITS} splits of {split} samples: a split's score cannot exceed its size (it is exp of "
                     f"a mutual information with the sample index), so with fewer than the {p.shape[1]} classes "
                     f"IS is capped at {split}")
    mean, std = classes.inception_score(p, IS_SPLITS, seed=c.seed)
    return {f"is_{c.ext}_{c.n}": mean, f"is_{c.ext}_{c.n}_std": std}


PRDC_K = (3, 5)


@register("prdc", "precision/recall (k=3) and density/coverage (k=5) in feature space",
          Needs(max(PRDC_K) + 1, max(PRDC_K) + 1, f"a k-th nearest neighbour other than itself, k up to "
                f"{max(PRDC_K)}", features=True))
def _prdc(c: EvalContext) -> dict[str, Any]:
    # k-NN over all pairs is O(N^2) memory: capped at 5000 per side, stated in the names
    real, fake = c.real_feats[0][:5000], c.fake_feats[0][:5000]
    nr = count_tag(min(len(real), len(fake)))
    both = distances.prdc_multi(real, fake, PRDC_K)
    pr, dc = both[3], both[5]
    return {f"precision_{c.ext}_k3_{nr}": pr["precision"], f"recall_{c.ext}_k3_{nr}": pr["recall"],
            f"density_{c.ext}_k5_{nr}": dc["density"], f"coverage_{c.ext}_k5_{nr}": dc["coverage"]}


@register("classes", "class histogram, classes covered (>= 1/10 of a uniform share), KL to uniform",
          Needs(1, 0, "", probs=True))
def _classes(c: EvalContext) -> dict[str, Any]:
    s = classes.class_stats(c.probs())
    real_p = c.real_feats[1]
    if real_p is not None:
        real_hist = torch.bincount(real_p.argmax(1), minlength=real_p.shape[1]).tolist()
        if flag := classes.uneven(s["class_hist"], real_hist):
            c.warn("classes", flag)
    return {f"{k}_{c.ext}_{c.n}": v for k, v in s.items()}


@register("modes", "toy 2-D mode counting (PacGAN protocol): modes, high-quality %, reverse KL", Needs(1, 0, ""))
def _modes(c: EvalContext) -> dict[str, Any]:
    meta = c.reference.meta
    if "centres" not in meta:
        raise GankitError(f"mode counting needs a toy mixture (ring, grid), not {c.reference.name}")
    s = toy.mode_stats(c.fake, meta["centres"], meta["std"])
    out = {f"{k}_pacgan_{c.n}": v for k, v in s.items()}
    if math.isinf(s["reverse_kl"]):  # kept inf here: it ranks worst when training keeps the best checkpoint
        c.warn("modes", f"no sample lies within 3 std of a mode, so reverse_kl_pacgan_{c.n} (KL of the "
                        "high-quality samples' modes) is undefined: inf in Python, null in JSON")
    return out


@register("stacked", "stacked MNIST: each channel classified by the digit CNN -> 1000 modes, KL to uniform",
          Needs(1, 0, ""))
def _stacked(c: EvalContext) -> dict[str, Any]:
    from .classifier import load_digit_classifier, stacked_modes

    if c.fake.shape[1:] != (3, 28, 28):
        raise GankitError(f"stacked MNIST scoring needs (3, 28, 28) samples, got {tuple(c.fake.shape[1:])}")
    hist = torch.bincount(stacked_modes(load_digit_classifier(), c.fake), minlength=1000)
    return {f"modes_stacked_{c.n}": int((hist > 0).sum()), f"kl_uniform_stacked_{c.n}": classes.kl_to_uniform(hist)}


@register("cond", "conditional runs: accuracy of samples for the class asked (classifier), intra-class FID",
          Needs(1, 0, "", probs=True, labels=True))
def _cond(c: EvalContext) -> dict[str, Any]:
    assert c.labels is not None  # Needs(labels=True), checked by evaluate()
    pred = c.probs().argmax(1)
    per_class: list[float | None] = []
    never, few, offset, negative = [], [], [], []  # classes never asked for, too small, regularised, wrong
    intra: list[float] = []
    smallest = None
    ref_y = c.reference.y
    for k in range(int(c.labels.max()) + 1):
        mine = c.labels == k
        if not mine.any():
            never.append(k)
        # NaN is no accuracy: a class never asked for has none (null in JSON, said in a warning)
        per_class.append(round(float((pred[mine] == k).float().mean()), 4) if mine.any() else None)
        if ref_y is None:
            continue
        theirs = ref_y == k
        n_k = min(int(mine.sum()), int(theirs.sum()))
        if n_k < distances.FID_MIN:
            few.append(k)
            continue
        f = distances.fid_stats(c.real_feats[0][theirs], c.fake_feats[0][mine])
        intra.append(f.value)
        smallest = n_k if smallest is None else min(smallest, n_k)
        offset += [k] if f.offset else []
        negative += [k] if f.clearly_negative else []
    if never:
        c.warn("cond", f"classes {never} were never asked for among {len(c.labels)} samples: their accuracy is null")
    out: dict[str, Any] = {f"cond_acc_{c.ext}_{c.n}": float((pred == c.labels).float().mean()),
                           f"cond_acc_per_class_{c.ext}_{c.n}": per_class}
    if few:
        c.warn("cond", f"intra-class FID leaves out classes {few}: fewer than {distances.FID_MIN} samples of the "
                       "class in the samples or the reference")
    if smallest is not None and (small := distances.fid_sample_warning(smallest, c.real_feats[0].shape[1])):
        c.warn("cond", f"intra-class FID: the smallest class has {small}")
    if offset:
        c.warn("cond", f"intra-class FID: singular covariance products in classes {offset}: "
                       f"{distances.FID_OFFSET:g} added to their diagonals (pytorch-fid's rule)")
    if negative:
        c.warn("cond", f"intra-class FID of classes {negative} is below 0 by more than rounding explains: a bug, "
                       "please report it")
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
    """The project's digit CNN for 1x28x28 images (1x32x32: their centre 28x28), the FID InceptionV3
    with pytorch-fid's weights (fetched once, verified; `inception.fetched_inception`) for any other
    image. Raises GankitError (one line) when those weights cannot be fetched."""
    from .classifier import load_digit_classifier

    if tuple(shape) == (1, 28, 28):
        return load_digit_classifier()
    if tuple(shape) == (1, 32, 32):
        return CenterCrop(load_digit_classifier(), 28)
    from .inception import fetched_inception

    return fetched_inception()


def _cannot(need: Needs, c: EvalContext) -> str | None:
    """Why a metric with these needs cannot be computed here, or None."""
    if need.labels and c.labels is None:
        return "needs the class each sample was asked for (a conditional run)"
    if (need.features or need.probs) and c.extractor is None:
        return f"needs image features; {c.reference.name} holds {tuple(c.reference.x.shape[1:])} points, not images"
    if need.probs and not hasattr(c.extractor, "features_and_probs"):
        return f"needs class probabilities; extractor {c.ext} gives none"
    nf, nr = len(c.fake), len(c.reference)
    short = ([_plural(nf, "sample")] if nf < need.samples else []) + \
        ([f"{nr} in the reference {c.reference.name}"] if nr < need.reference else [])
    if short:
        per_set = " per set" if need.reference else ""
        why = f" ({need.why})" if need.why else ""
        return f"needs at least {_plural(need.samples, 'sample')}{per_set}{why}, got {' and '.join(short)}"
    return None


def _same_data_warning(c: EvalContext, done: list[str]) -> str | None:
    """A set scored against itself, or samples that copy reference examples (the features say so)."""
    if c.identical:
        zero = [m for m in ("fid", "fd_dinov2", "kid") if m in done]
        return (f"{', '.join(done)}: the samples are the reference {c.reference.name} itself (the same "
                f"{len(c.fake)} examples, in any order)" + (f": {' and '.join(zero)} are 0 by definition"
                                                             if zero else ""))
    if c.shared and {"kid", "prdc"} & set(done):
        return (f"{', '.join(m for m in done if m in ('kid', 'prdc'))}: {c.shared} of the {len(c.fake)} samples "
                f"are copies of reference examples ({c.reference.name}): KID assumes independent "
                "sets (shared rows bias it downwards) and precision/coverage count a copy as a match")
    return None


def evaluate(fake: Tensor, reference: Dataset, names: list[str] | None = None, extractor: nn.Module | None = None,
             seed: int = 0, labels: Tensor | None = None) -> dict[str, Any]:
    """Score samples `fake` (N, ...) against the real `reference` data; returns {result name: value}
    plus "protocol" (how it was computed), "warnings" (list: "metric: why its value is unreliable")
    and "skipped" ({metric: why it could not be computed}) when there are any.
    `labels`: the class each sample was asked for (N,), when a conditional G made them.

    Each metric's Needs (NEEDS[name]: samples per set, features, class probabilities, labels) is
    checked before any work; a metric that cannot be computed, or that raises GankitError, is
    skipped and the others computed. Raises GankitError (one line) for bad input (shape, NaN, no
    samples, unknown names) and when no requested metric could be computed. Values are never NaN
    (None instead, with a warning); `reverse_kl` is inf when no sample is near a mode (see
    `json_ready` for JSON)."""
    for name in names or []:  # unknown names fail (with suggestions) before any work
        metrics.get(name)
    reference = reference.in_memory()
    if len(fake) == 0 or len(reference) == 0:
        raise GankitError(f"nothing to score: {len(fake)} samples against {len(reference)} reference examples "
                          f"({reference.name})")
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
    skipped = {name: why for name in names if (why := _cannot(NEEDS[name], ctx))}
    out: dict[str, Any] = {}
    done = []
    for name in names:
        if name in skipped:
            continue
        try:
            out.update(metrics.get(name)(ctx))
            done.append(name)
        except GankitError as e:  # this metric's own limit (e.g. an ill-conditioned FID): the others go on
            skipped[name] = str(e)
    if not done:
        raise GankitError("; ".join(f"{n}: {why}" for n, why in skipped.items()))
    if {"fid", "fd_dinov2", "kid", "prdc"} & set(done) and (same := _same_data_warning(
            ctx, [m for m in done if m in ("fid", "fd_dinov2", "kid", "prdc")])):
        ctx.warnings.append(same)
    base = real_vs_real(ctx, [m for m in done if m in REAL_VS_REAL], out)
    if base:
        out["real_vs_real"] = base
    protocol: dict[str, Any] = {"n_fake": len(fake), "n_real": len(reference), "reference": reference.name,
                                "seed": seed}
    if base:
        half = min(len(reference) // 2, len(fake))
        protocol["real_vs_real"] = (f"the same metrics between two disjoint sets of {half} examples of "
                                    f"{reference.name} (interleaved): what real data scores against itself "
                                    f"at {'this size' if half == len(fake) else 'half the reference'}")
    if extractor is not None:
        protocol["extractor"] = ctx.ext
        protocol["extractor_weights"] = getattr(extractor, "weights_sha", "user-supplied")
        for attr in ("weights_sha256", "weights_source"):  # the full hash and URL where known (Inception)
            if hasattr(extractor, attr):
                protocol[f"extractor_{attr}"] = getattr(extractor, attr)
    out["protocol"] = protocol | ctx.protocol
    if ctx.warnings:
        out["warnings"] = ctx.warnings
    if skipped:
        out["skipped"] = skipped
    return out


REAL_VS_REAL = ("fid", "fd_dinov2", "kid", "is", "prdc", "classes")


def real_vs_real(ctx: EvalContext, names: list[str], result: dict[str, Any]) -> dict[str, Any]:
    """What real data scores against itself: each metric in `names` between the even and the odd
    examples of the reference (interleaved: built-in sets are sorted by class), in the same
    features, keyed by the result's own names. A distance of generated samples means little
    without it (a digit-CNN KID of 3e6 may be near the real-vs-real value or far from it).
    Halves hold N/2 examples, so FID and KID of the halves are biased up a little against an
    N-sample score; said in the protocol. Empty when the reference is too small to halve."""
    if not names or ctx.extractor is None or not ctx.reference.is_image or len(ctx.reference) < 4:
        return {}
    feats, probs = ctx.real_feats
    # halves as large as the sample set where the reference allows: the value "at this size"
    # (FID and KID depend on the count), and a small eval stays quick
    half = min(len(feats) // 2, len(ctx.fake))
    step = len(feats) // (2 * half)  # spread over the whole reference (built-ins are sorted by class)
    even, odd = torch.arange(0, 2 * half * step, 2 * step), torch.arange(step, 2 * half * step, 2 * step)
    ref = EvalContext(ctx.reference.x[odd], Dataset(ctx.reference.x[even], None, ctx.reference.name),
                      ctx.extractor, ctx.seed)
    # the halves' features are rows of the cached ones: nothing is extracted again
    ref.__dict__["real_feats"] = (feats[even], probs[even] if probs is not None else None)
    ref.__dict__["fake_feats"] = (feats[odd], probs[odd] if probs is not None else None)
    ref.__dict__["identical"] = False
    out: dict[str, Any] = {}
    for name in names:
        if _cannot(NEEDS[name], ref):
            continue
        try:
            theirs = metrics.get(name)(ref)
        except GankitError:
            continue
        # the same function names the same results; only their count tags differ
        by_stem = {_stem(k): v for k, v in theirs.items()}
        out.update({k: by_stem[_stem(k)] for k in result if _stem(k) in by_stem})
    return out


def _stem(key: str) -> str:
    """A result name without its count tag: fid_mnistcnn_5k -> fid_mnistcnn, kid_x_2.5k_std -> kid_x_std."""
    parts = key.split("_")
    return "_".join(p for p in parts if not re.fullmatch(r"\d+(\.\d+)?k?", p))


def _not_finite(v: Any, path: str, found: list[tuple[str, float]]) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        found.append((path, v))
        return None
    if isinstance(v, dict):
        return {k: _not_finite(x, f"{path}.{k}" if path else k, found) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_not_finite(x, f"{path}[{i}]", found) for i, x in enumerate(v)]
    return v


def json_ready(result: dict[str, Any]) -> dict[str, Any]:
    """The result with every NaN or infinite float (at any depth) replaced by None: JSON has no such
    numbers (Python's json would write the invalid tokens NaN/Infinity). Each replacement is said in
    result["warnings"] unless a warning already names its key."""
    found: list[tuple[str, float]] = []
    out = _not_finite(result, "", found)
    said = " ".join(out.get("warnings", []))
    new = [f"{path}: {v} is not a number JSON can hold; written as null" for path, v in found
           if path.split("[")[0].split(".")[0] not in said]
    if new:
        out["warnings"] = [*out.get("warnings", []), *new]
    return out
