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


class CollapseMonitor:
    """Diversity of fakes relative to a fixed real batch: about 1 when healthy, near 0 when G collapses.

    The real batch's diversity is computed once. `check` says when a collapse episode starts or
    ends (so a warning is given once per episode), and returns the ratio for every log row.
    """

    def __init__(self, real: Tensor, threshold: float, after: int) -> None:
        self.real_diversity = diversity(real)
        self.threshold, self.after = threshold, after
        self.collapsed = False

    def check(self, fake: Tensor, step: int) -> tuple[float, bool, str | None]:
        r = self.real_diversity
        ratio = diversity(fake) / r if r > 0 else float("nan")
        collapsed = ratio < self.threshold and step >= self.after
        msg = None
        if collapsed and not self.collapsed:
            msg = (f"possible mode collapse at step {step}: fake samples are {ratio:.3f}x as diverse "
                   f"as real ones (threshold {self.threshold})")
        elif self.collapsed and not collapsed:
            msg = f"sample diversity recovered at step {step} ({ratio:.3f}x real)"
        self.collapsed = collapsed
        return ratio, collapsed, msg
