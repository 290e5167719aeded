"""Mode counting on the 2-D mixtures, following the PacGAN protocol (Lin et al. 2018)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .classes import kl_to_uniform


def mode_stats(samples: Tensor, centres: Tensor, std: float) -> dict[str, float | list[int]]:
    """A sample is high quality (HQ) if within 3 std of its nearest centre; a mode is captured if at
    least one HQ sample is nearest to it; reverse KL compares the HQ samples' mode histogram q with
    the uniform p: KL(q || p) = sum q log(q K)."""
    d = torch.cdist(samples.double(), centres.double())
    dist, nearest = d.min(1)
    hq = dist <= 3 * std
    hist = torch.bincount(nearest[hq], minlength=len(centres))
    rkl = kl_to_uniform(hist) if hist.sum() > 0 else math.inf
    return {"modes": int((hist > 0).sum()), "hq_percent": 100.0 * float(hq.double().mean()),
            "reverse_kl": rkl, "mode_hist": hist.tolist()}
