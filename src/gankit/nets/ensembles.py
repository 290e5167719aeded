"""Several discriminators or several generators, the seeds' third remedy for mode collapse.

- MultiD (GMAN, Durugkar et al. 2017): N discriminators judge the same batch; each is trained on
  its own loss, and G's loss combines theirs (mean, or GMAN's soft-max weighting, in the step).
  Its logits have shape (N, B).
- MixtureG (a uniform mixture of K generators, as in MIX+GAN / MGAN without their extra
  terms): sample i comes from generator i mod K, so a batch covers every component and each
  component can specialise on a part of the data.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .conditional import default_labels


class MultiD(nn.Module):
    def __init__(self, ds: list[nn.Module]) -> None:
        super().__init__()
        self.ds = nn.ModuleList(ds)

    def forward(self, x: Tensor, *label: Tensor) -> Tensor:
        return torch.stack([d(x, *label) for d in self.ds])


class MixtureG(nn.Module):
    def __init__(self, gs: list[nn.Module]) -> None:
        super().__init__()
        self.gs = nn.ModuleList(gs)
        self.n_classes = getattr(gs[0], "n_classes", 0)  # a mixture of conditional Gs is conditional

    def forward(self, z: Tensor, *label: Tensor) -> Tensor:
        k = len(self.gs)
        if self.n_classes and not label:  # the same balanced class sweep a single conditional G uses
            label = (default_labels(len(z), self.n_classes, z.device),)
        parts = [g(z[i::k], *(y[i::k] for y in label)) for i, g in enumerate(self.gs) if len(z[i::k])]
        out = z.new_empty(len(z), *parts[0].shape[1:])
        for i, p in enumerate(parts):
            out[i::k] = p
        return out
