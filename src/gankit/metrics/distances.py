"""Distribution distances between two feature sets: FID, KID, and k-NN precision/recall/density/coverage.

All take feature matrices (N, D); they know nothing about images or extractors.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from scipy import linalg

log = logging.getLogger("gankit")


def _np64(f: torch.Tensor | np.ndarray) -> np.ndarray:
    a = f.detach().cpu().numpy() if isinstance(f, torch.Tensor) else np.asarray(f)
    return a.astype(np.float64)


def gaussian_stats(f: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = _np64(f)
    return a.mean(0), np.cov(a, rowvar=False)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) in float64 (Heusel et al. 2017).

    sqrtm of a product of covariances can pick up tiny imaginary parts from rounding; they are
    dropped, and a warning is logged when they are not tiny (the covariances are then ill-conditioned).
    """
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    if caught or not np.isfinite(covmean).all():
        # singular product (e.g. ReLU features that are always 0): regularise both covariances
        # with 1e-6 on the diagonal, as the reference TTUR/pytorch-fid code does
        log.info("FID: singular covariance product; adding 1e-6 to the diagonals")
        eps = 1e-6 * np.eye(len(s1))
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    if np.iscomplexobj(covmean):
        imag = float(np.abs(covmean.imag).max())
        if imag > 1e-3:
            log.warning("FID: discarded an imaginary part of %.3g in sqrtm (ill-conditioned covariances; "
                        "use more samples)", imag)
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def kid(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
    kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets; returns (mean, std)."""
    a, b = torch.from_numpy(_np64(real)), torch.from_numpy(_np64(fake))
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)

    def kernel(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        g = u @ v.T / d + 1
        return g * g * g  # float64 torch: 3x faster than numpy's generic pow for the cube

    vals = []
    for _ in range(subsets):
        x = a[torch.from_numpy(rng.choice(len(a), m, replace=False))]
        y = b[torch.from_numpy(rng.choice(len(b), m, replace=False))]
        kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
        off_diag = (kxx.sum() - kxx.diagonal().sum()) + (kyy.sum() - kyy.diagonal().sum())
        vals.append(float(off_diag / (m * (m - 1)) - 2 * kxy.mean()))
    return float(np.mean(vals)), float(np.std(vals))


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020)
    with k-NN balls around each point. The issue protocol uses k=3 for P/R and k=5 for D/C."""
    return prdc_multi(real, fake, (k,))[k]


def prdc_multi(real: torch.Tensor, fake: torch.Tensor, ks: tuple[int, ...]) -> dict[int, dict[str, float]]:
    """prdc for several k from one set of pairwise distances (they dominate the cost)."""
    real, fake = real.double(), fake.double()
    kmax = max(ks)
    if len(real) <= kmax or len(fake) <= kmax:
        raise ValueError(f"precision/recall with k={kmax} needs more than {kmax} samples per set, "
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
