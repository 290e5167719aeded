"""Measured experiments a reader can rerun: `gankit study augment|anomaly`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn


def write_tables(res: dict[str, Any], out: Path, name: str, markdown: str) -> Any:
    """NAME.md (the table), NAME.json (everything), NAME.csv (one row per cell and seed); returns
    matplotlib's pyplot (headless) for the study's plot, NAME.png."""
    import csv
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(markdown)
    (out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    with open(out / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(res["rows"][0]))
        w.writeheader()
        w.writerows(res["rows"])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_std(v: list[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; NaN for a single value): every study's table cell."""
    import math

    import numpy as np

    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan


def summarize_by(rows: list[dict[str, Any]], key: str, metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """One summary per value of rows[key] (first-seen order): the seed count and `mean_std` of
    each metric."""
    out = []
    for v in dict.fromkeys(r[key] for r in rows):
        rs = [r for r in rows if r[key] == v]
        out.append({key: v, "seeds": len(rs), **{m: mean_std([r[m] for r in rs]) for m in metrics}})
    return out


def read_model_file(path: str | Path, fmt: str, what: str, hint: str,
                    default_name: str | None = None) -> tuple[dict[str, Any], Path]:
    """A study's weights-only model file (or DIR/default_name) as a dict with format `fmt`, and
    the file's path; one-line CheckpointErrors for a missing, unreadable or foreign file."""
    from ..errors import CheckpointError

    path = Path(path)
    if default_name and path.is_dir():
        path = path / default_name
    if not path.is_file():
        raise CheckpointError(f"{path}: no {what} (write one with {hint})")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a foreign file
        raise CheckpointError(f"{path}: cannot read {what} ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        raise CheckpointError(f"{path}: not a gankit {what}")
    return ck, path


def cgan_update(g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                z: Tensor, cond: Tensor, d_loss: Callable[[Tensor], Tensor], mode_seeking_weight: float,
                noise: torch.Generator, what: str) -> None:
    """One D step, then one G step, of a conditional GAN G(z, cond), D(x, cond) (the text-to-image
    and speech studies). `d_loss(fake)` builds D's loss from a detached fake batch; G's loss is the
    non-saturating one on D(G(z, cond), cond) plus MSGAN's term when its weight is not 0."""
    from ..errors import GankitError
    from ..losses import nonsaturating_g
    from ..regularizers import mode_seeking

    g.train()
    fake = g(z, cond)
    loss_d = d_loss(fake.detach())
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    d.requires_grad_(False)
    loss_g = nonsaturating_g(fake=d(fake, cond))
    if mode_seeking_weight:
        z2 = torch.randn(z.shape, generator=noise)
        loss_g = loss_g + mode_seeking_weight * mode_seeking(fake, g(z2, cond), z, z2)
    d.requires_grad_(True)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    if not (torch.isfinite(loss_d) and torch.isfinite(loss_g)):
        raise GankitError(f"{what}: loss became NaN/inf")
