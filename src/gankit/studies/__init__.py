"""Measured experiments a reader can rerun: `gankit study augment|anomaly`."""

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
