"""Measured experiments a reader can rerun: `gankit study augment|anomaly|text2image|speech`.

Studies are experiments over ordinary recipes through the public API (`gankit.train`,
`gankit.load`, `gankit.evaluate`); they own no GAN nets or training loops."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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


def mean_std(v: list[float | None]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; NaN for a single value) of the values that are not None (a
    metric that could not be computed; NaN, NaN when none could): every study's table cell."""
    import math

    import numpy as np

    v = [x for x in v if x is not None]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan


def summarize_by(rows: list[dict[str, Any]], key: str, metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """One summary per value of rows[key] (first-seen order): the seed count and `mean_std` of
    each metric."""
    out = []
    for v in dict.fromkeys(r[key] for r in rows):
        rs = [r for r in rows if r[key] == v]
        out.append({key: v, "seeds": len(rs), **{m: mean_std([r[m] for r in rs]) for m in metrics}})
    return out
