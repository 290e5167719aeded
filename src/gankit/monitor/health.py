"""Signals that a run is failing silently: non-finite losses and collapsing sample diversity."""

from __future__ import annotations

import torch
from torch import Tensor


def diversity(x: Tensor, max_n: int = 64) -> float:
    """Mean pairwise L2 distance between examples of a batch (flattened)."""
    f = x[:max_n].detach().flatten(1).float()
    if len(f) < 2:
        return 0.0
    dist = torch.cdist(f, f)
    n = len(f)
    return float(dist.sum() / (n * (n - 1)))


def collapse_ratio(fake: Tensor, real: Tensor) -> float:
    """Diversity of fakes relative to real data: about 1 when healthy, near 0 when G collapses."""
    r = diversity(real)
    return diversity(fake) / r if r > 0 else float("nan")
