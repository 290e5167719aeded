"""Statistics of a classifier's predictions on samples: Inception Score and class coverage."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def kl_to_uniform(hist: Tensor) -> float:
    """KL(q || uniform) of a histogram's normalised counts: sum q log(q K); 0 when even, log K for one bin.
    Used for classes, toy modes and stacked-MNIST modes alike."""
    q = hist.double() / hist.sum()
    q = q[q > 0]
    return float((q * torch.log(q * len(hist))).sum())


def inception_score(probs: Tensor, splits: int = 10, seed: int | None = 0) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split (Salimans et al. 2016) of probabilities (N, K), N >=
    splits; returns (mean, std over splits).

    The rows are shuffled (by `seed`) before splitting, as torch-fidelity does: contiguous splits of
    a class-sorted file (mnist5k is sorted) each hold one class, and IS is then ~1 whatever the
    samples. seed=None keeps the order (the original code's contiguous splits)."""
    p = probs.double()
    if seed is not None:
        p = p[torch.randperm(len(p), generator=torch.Generator().manual_seed(seed))]
    scores = []
    for part in torch.tensor_split(p, splits):  # exactly `splits` parts (torch.chunk can give fewer)
        py = part.mean(0, keepdim=True)
        kl = (part * (torch.log(part.clamp_min(1e-12)) - torch.log(py.clamp_min(1e-12)))).sum(1).mean()
        scores.append(math.exp(float(kl)))
    t = torch.tensor(scores, dtype=torch.float64)  # the default float32 would round the mean to 7 digits
    return float(t.mean()), float(t.std(unbiased=False))


def class_stats(probs: Tensor, min_share: float = 0.1) -> dict[str, float | list[int]]:
    """Histogram of predicted classes, how many are covered, KL(hist || uniform), mean confidence.

    A class counts as covered when it holds at least min_share of its uniform share (10 %: with
    10 classes, 1 % of the samples), so a handful of stray predictions does not count as a mode.
    """
    k = probs.shape[1]
    pred = probs.argmax(1)
    hist = torch.bincount(pred, minlength=k)
    covered = int((hist.double() / len(pred) >= min_share / k).sum())
    return {"class_hist": hist.tolist(), "classes_covered": covered, "kl_uniform": kl_to_uniform(hist),
            "confidence": float(probs.max(1).values.double().mean())}


def uneven(hist: list[int], real_hist: list[int], factor: float = 2.0, floor: float = 0.01,
           least: int = 20) -> str | None:
    """A line naming the classes whose share of the samples is more than `factor` times above or
    below their share of the real data, or None when the histogram is as even as the real one.
    Classes under `floor` of the real data, or expecting fewer than `least` samples (counts that
    small are mostly chance), are not judged. Mode collapse often shows here first:
    a few classes crowd out the rest while FID still looks moderate."""
    n, nr = sum(hist), sum(real_hist)
    if not n or not nr:
        return None
    off = []
    for k, (h, r) in enumerate(zip(hist, real_hist, strict=True)):
        share, real = h / n, r / nr
        if real >= floor and real * n >= least and not 1 / factor <= share / real <= factor:
            off.append((abs(math.log(max(share, 1e-9) / real)), k, h, real))
    if not off:
        return None
    shown = ", ".join(f"class {k}: {h} ({100 * real:.0f} % of real data expects {round(real * n)})"
                      for _, k, h, real in sorted(off, reverse=True)[:4])
    return (f"uneven class histogram: {len(off)} of {len(hist)} classes drawn more than {factor:g}x above or below "
            f"their real share ({shown}{', ...' if len(off) > 4 else ''}), of {n} samples")
