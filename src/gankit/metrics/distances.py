"""Distribution distances between two feature sets: FID, KID, and k-NN precision/recall/density/coverage.

All take feature matrices (N, D); they know nothing about images or extractors. Each has a
minimum sample count per set (FID_MIN, KID_MIN, `prdc`: more than k) that `evaluate()` checks
before any work; called directly with fewer, they raise TooFewSamples, a GankitError with a
one-line message, never a LinAlgError from deep inside scipy.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import linalg

from ..errors import GankitError

FID_MIN = 2  # a sample covariance needs two samples (one gives 0/0)
KID_MIN = 2  # the unbiased MMD^2 averages k(x_i, x_j) over pairs i != j
KID_SUBSET_SIZE = 1000  # Binkowski et al. 2018; torch-fidelity and torchmetrics use the same default
FID_OFFSET = 1e-6  # pytorch-fid's `eps`, added to both covariance diagonals when sqrtm fails


class TooFewSamples(GankitError):
    """A distance asked of fewer samples than it is defined for."""


class FidError(GankitError):
    """The covariances are too ill-conditioned for a trustworthy matrix square root."""


def _np64(f: torch.Tensor | np.ndarray) -> np.ndarray:
    a = f.detach().cpu().numpy() if isinstance(f, torch.Tensor) else np.asarray(f)
    return a.astype(np.float64)


def _need(what: str, least: int, a: int, b: int) -> None:
    if min(a, b) < least:
        raise TooFewSamples(f"{what} needs at least {least} samples per set, got {a} and {b}")


def gaussian_stats(f: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of features (N, D) in float64; N >= 2."""
    a = _np64(f)
    _need("a covariance", FID_MIN, len(a), len(a))
    return a.mean(0), np.cov(a, rowvar=False)


@dataclass(frozen=True)
class Frechet:
    """One Fréchet distance and how it was computed.

    value: the distance; 0.0 when `raw` is negative by no more than `tolerance` (rounding), else raw.
    raw: ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)) as computed in float64.
    tolerance: bound on the rounding error of `raw` (see `frechet`).
    offset: FID_OFFSET when it was added to both diagonals (the square root was not finite), else 0.0.
    """

    value: float
    raw: float
    tolerance: float
    offset: float

    @property
    def clearly_negative(self) -> bool:
        """Below 0 by more than rounding explains: a bug, never a property of the data."""
        return self.raw < -self.tolerance


def frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> Frechet:
    """Fréchet distance of two Gaussians (Heusel et al. 2017) in float64, computed as pytorch-fid's
    `calculate_frechet_distance` does (src/pytorch_fid/fid_score.py): scipy's sqrtm of S1 S2;
    only when that is not finite, FID_OFFSET is added to both diagonals and the root taken again;
    an imaginary part whose diagonal is not within 1e-3 of 0 raises FidError (pytorch-fid raises
    ValueError), a smaller one is dropped. scipy >= 1.16 warns "Matrix is singular" for nearly every
    sample covariance of CNN features (dead ReLU units give zero rows); the warning is not the test.

    Rounding tolerance, from float64 arithmetic (unit roundoff u = 2^-53): sqrtm is backward stable,
    so it returns the exact root of S1 S2 + E with ||E|| <~ D u ||S1 S2|| (Deadman et al. 2013). An
    eigenvalue moved by |E| moves its square root by at most sqrt(|E|) (|sqrt a - sqrt b| <=
    sqrt|a - b|), and ||S1 S2|| <= Tr(S1) Tr(S2) <= ((Tr S1 + Tr S2) / 2)^2, so the D roots, doubled,
    are off by at most

        tolerance = D^1.5 sqrt(u) (Tr S1 + Tr S2)     (+ 2 D FID_OFFSET when the offset was added:
                                                       it lowers FID by at least that much)

    e.g. 1.5e-5 (Tr S1 + Tr S2) for 128 features. Measured on the digit CNN's features the error
    stays 100x below it (self-distances -1e-7 from 5000 samples, -5e-5 from 2). A raw value in
    [-tolerance, 0) is reported as 0.0; one below -tolerance is kept and `clearly_negative`.
    Raises FidError when the covariances are not finite or the root stays non-finite.
    """
    if not (np.isfinite(s1).all() and np.isfinite(s2).all()):
        raise FidError("FID: the feature covariances are not finite (features too large for float64?)")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # see the docstring: finiteness decides
        covmean = linalg.sqrtm(s1 @ s2)
        offset = 0.0
        if not np.isfinite(covmean).all():
            # singular product (e.g. a feature constant in both sets, few samples): scipy's Schur
            # method divides 0 by 0; pytorch-fid's remedy, applied only here, as there
            offset = FID_OFFSET
            eye = offset * np.eye(len(s1))
            covmean = linalg.sqrtm((s1 + eye) @ (s2 + eye))
    if not np.isfinite(covmean).all():
        raise FidError("FID: the matrix square root is not finite even with 1e-6 on the diagonals")
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise FidError(f"FID: the matrix square root has an imaginary part of "
                           f"{float(np.abs(covmean.imag).max()):.3g} (ill-conditioned covariances; use more "
                           "samples)")
        covmean = covmean.real
    tr1, tr2 = float(np.trace(s1)), float(np.trace(s2))
    raw = float(diff @ diff + tr1 + tr2 - 2 * np.trace(covmean))
    d = len(s1)
    tol = d**1.5 * math.sqrt(np.finfo(np.float64).eps / 2) * (tr1 + tr2) + 2 * d * offset
    return Frechet(0.0 if -tol <= raw < 0 else raw, raw, tol, offset)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): `frechet(...).value`."""
    return frechet(mu1, s1, mu2, s2).value


def fid_stats(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray) -> Frechet:
    """`frechet` of features (N, D) and (M, D), N, M >= FID_MIN (else TooFewSamples). Two identical
    sets (the same rows, in any order) are 0.0 by definition, without rounding."""
    _need("FID", FID_MIN, len(real), len(fake))
    if identical_sets(real, fake):
        return Frechet(0.0, 0.0, 0.0, 0.0)
    return frechet(*gaussian_stats(real), *gaussian_stats(fake))


def fid(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray) -> float:
    """FID of features (N, D) and (M, D): `fid_stats(real, fake).value`."""
    return fid_stats(real, fake).value


def fid_sample_warning(n: int, d: int) -> str | None:
    """What a set of n samples in d features does to FID, or None when nothing worth saying.

    n <= d: the sample covariance has rank <= n - 1 < d (singular); pytorch-fid's README asks for
    at least as many samples as features (2048 for Inception). n < 10 d: FID is biased upwards, the
    bias falling roughly like 1/n (Chong & Forsyth 2020); between two disjoint halves of mnist5k the
    digit CNN's 128-feature FID is +3.8 from 1000 samples each, +1.6 from 2000, +1.5 from 2500.
    """
    if n <= d:
        return (f"{n} samples for {d} features: the covariance has rank at most {n - 1} < {d} (singular), so "
                f"the value is mostly estimation error; use at least {d + 1} samples, better {10 * d}")
    if n < 10 * d:
        return (f"{n} samples for {d} features: FID is biased upwards at this size (the bias falls like "
                f"1/N); compare only FIDs from the same sample count, and use {10 * d} or more to keep it small")
    return None


def fid_warnings(f: Frechet, n: int, d: int) -> list[str]:
    """What makes a Fréchet distance from n samples (the smaller set) in d features unreliable."""
    out = [w] if (w := fid_sample_warning(n, d)) else []
    if f.offset:
        out.append(f"the covariance product is singular: {f.offset:g} added to both diagonals (pytorch-fid's "
                   f"rule), which lowers FID by at least 2 x {d} x {f.offset:g}")
    if f.clearly_negative:
        out.append(f"{f.raw:.6g} is below 0 by more than rounding ({f.tolerance:.3g}) explains: a bug in the "
                   "computation, please report it; kept as computed")
    return out


def fid_report(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray) -> tuple[float | None, list[str],
                                                                                          str | None]:
    """For scorers that report FID among other numbers: (value, warnings, None), or (None, [], why)
    when it cannot be computed (too few samples, an ill-conditioned square root)."""
    try:
        f = fid_stats(real, fake)
    except GankitError as e:
        return None, [], str(e)
    return f.value, fid_warnings(f, min(len(real), len(fake)), real.shape[1]), None


def fid_noted(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, notes: dict[str, Any] | None,
              name: str) -> float | None:
    """FID of two feature sets for a family's own scores. With `notes` ({"warnings": [], "skipped":
    {}}) its warnings go there under `name`, and a reason it cannot be computed too (None then);
    without, TooFewSamples is raised."""
    if notes is None:
        return fid(real, fake)
    value, warns, why = fid_report(real, fake)
    notes["warnings"] += [f"{name}: {w}" for w in warns]
    if why:
        notes["skipped"][name] = why
    return value


def _flat(a: torch.Tensor | np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a)
    return x.reshape(len(x), -1)


def _matches(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """For each row of `fake`, the index of a bit-identical row of `real`, else -1. Rows are hashed
    by their bytes (no copy of the sets: 10 000 images of 3x32x32 in 0.03 s), and every hash match
    is confirmed by comparing the rows."""
    first: dict[int, int] = {}
    for i, row in enumerate(real):
        first.setdefault(hash(row.tobytes()), i)
    out = np.full(len(fake), -1)
    for j, row in enumerate(fake):
        i = first.get(hash(row.tobytes()), -1)
        if i >= 0 and np.array_equal(real[i], row):
            out[j] = i
    return out


def shared_rows(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray) -> int:
    """How many rows of `fake` also occur, bit for bit, in `real` (same dtype)."""
    if real.shape[1:] != fake.shape[1:] or real.dtype != fake.dtype:
        return 0
    return int((_matches(_flat(real), _flat(fake)) >= 0).sum())


def identical_sets(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray) -> bool:
    """True when both hold the same rows bit for bit, in any order and with the same multiplicities
    (a set against itself); linear in the data, cheap next to the covariances."""
    if real.shape != fake.shape or real.dtype != fake.dtype:
        return False
    r, f = _flat(real), _flat(fake)
    if not ((m := _matches(r, f)) >= 0).all():
        return False
    # every fake row is some real row; equal multisets iff the real rows, matched the same way, agree
    return bool(np.array_equal(np.sort(m), np.sort(_matches(r, r))))


def kid(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, subsets: int = 100,
        subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float | None]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
    kernel k(x, y) = (x.y / d + 1)^3, averaged over `subsets` random subsets of
    m = min(subset_size, N, M) samples from each set (features (N, D), (M, D), N, M >= KID_MIN, else
    TooFewSamples). Returns (mean, std over subsets).

    std is None where it would be no spread at all: with one subset, or when m equals both set sizes
    (every subset is then both whole sets; the std over them is rounding, ~1e-15). The unbiased
    estimate assumes independent sets: of a set against itself it is negative by construction (k_xy
    then holds every k(x, x)), so two identical sets give (0.0, None), 0 by definition.
    """
    _need("KID", KID_MIN, len(real), len(fake))
    if identical_sets(real, fake):
        return 0.0, None
    a, b = torch.from_numpy(_np64(real)), torch.from_numpy(_np64(fake))
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    whole = m == len(a) == len(b)
    rng = np.random.default_rng(seed)

    def kernel(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        g = u @ v.T / d + 1
        return g * g * g  # float64 torch: 3x faster than numpy's generic pow for the cube

    vals = []
    for _ in range(1 if whole else subsets):  # whole sets: every subset is the same, compute it once
        x = a[torch.from_numpy(rng.choice(len(a), m, replace=False))]
        y = b[torch.from_numpy(rng.choice(len(b), m, replace=False))]
        kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
        off_diag = (kxx.sum() - kxx.diagonal().sum()) + (kyy.sum() - kyy.diagonal().sum())
        vals.append(float(off_diag / (m * (m - 1)) - 2 * kxy.mean()))
    return float(np.mean(vals)), (float(np.std(vals)) if len(vals) > 1 else None)


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020)
    with k-NN balls around each point. The issue protocol uses k=3 for P/R and k=5 for D/C."""
    return prdc_multi(real, fake, (k,))[k]


def prdc_multi(real: torch.Tensor, fake: torch.Tensor, ks: tuple[int, ...]) -> dict[int, dict[str, float]]:
    """prdc for several k from one set of pairwise distances (they dominate the cost). Each set needs
    more than max(ks) samples (a k-th neighbour other than the point itself), else TooFewSamples."""
    real, fake = real.double(), fake.double()
    kmax = max(ks)
    if len(real) <= kmax or len(fake) <= kmax:
        raise TooFewSamples(f"precision/recall with k={kmax} needs more than {kmax} samples per set, "
                            f"got {len(real)} real and {len(fake)} fake")
    # k-th neighbour radii, +1 for the zero distance of each point to itself
    rr = torch.cdist(real, real).topk(kmax + 1, dim=1, largest=False).values
    rf = torch.cdist(fake, fake).topk(kmax + 1, dim=1, largest=False).values
    d = torch.cdist(real, fake)  # (R, F)
    d_min_real = d.min(1).values
    out = {}
    for k in ks:
        r_real, r_fake = rr[:, k], rf[:, k]
        inside_real = d <= r_real[:, None]  # fake j inside real i's ball
        out[k] = {"precision": float(inside_real.any(0).double().mean()),
                  "recall": float((d <= r_fake[None, :]).any(1).double().mean()),
                  "density": float(inside_real.sum(0).double().mean() / k),
                  "coverage": float((d_min_real <= r_real).double().mean())}
    return out
