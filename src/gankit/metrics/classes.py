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
