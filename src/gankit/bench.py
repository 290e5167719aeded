"""Benchmarks a reader can rerun: `gankit bench modes` (2-D mode collapse over seeds)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GankitError

# PacGAN (Lin et al. 2018), Table 1, as quoted in our evaluation issue: modes and HQ % only
# (reverse KL is left out until checked against the paper)
PUBLISHED = {
    "ring": {"GAN (PacGAN Table 1)": {"modes": 6.3, "hq_percent": 98.2},
             "PacGAN4 (PacGAN Table 1)": {"modes": 7.8, "hq_percent": 95.9}},
    "grid": {"GAN (PacGAN Table 1)": {"modes": 17.3, "hq_percent": 94.8},
             "PacGAN4 (PacGAN Table 1)": {"modes": 24.8, "hq_percent": 93.6}},
}


def _mean_std(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs, dtype=np.float64)  # reverse KL is inf for a seed with no HQ sample: keep it visible
    return {"mean": float(a.mean()), "std": float(a.std()) if np.isfinite(a).all() else float("nan")}


def modes(data: str = "ring", recipe: str | None = None, seeds: int = 10, steps: int | None = None,
          seconds: float | None = None, out: Path | None = None, overrides: list[str] = ()) -> dict[str, Any]:
    """Train `recipe` (default toy_<data>) once per seed and count modes on 2500 samples each."""
    from . import api
    from .data import build as build_data
    from .metrics.toy import mode_stats

    if data not in ("ring", "grid"):
        raise GankitError(f"bench modes runs on ring or grid, not {data!r}")
    recipe = recipe or f"toy_{data}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(out) if out else Path(tmp)
        for seed in range(seeds):
            run = api.train(recipe, data=data, seed=seed, steps=steps, seconds=seconds, out=root / f"seed{seed}",
                            overrides=[*overrides, "train.tensorboard=false", "train.sample_every=0"])
            g = api.load(run.out)
            ds = build_data(g.cfg.data)
            s = mode_stats(g.sample(2500, seed=10_000 + seed), ds.meta["centres"], ds.meta["std"])
            rows.append({"seed": seed, "steps": run.step, "seconds": round(run.seconds, 1),
                         **{k: s[k] for k in ("modes", "hq_percent", "reverse_kl")}})
    summary = {k: _mean_std([float(r[k]) for r in rows]) for k in ("modes", "hq_percent", "reverse_kl")}
    return {"data": data, "recipe": recipe, "seeds": seeds, "protocol": "PacGAN: 2500 samples, HQ = within 3 std",
            "runs": rows, "summary": summary, "published": PUBLISHED[data]}


def format_modes(res: dict[str, Any]) -> str:
    lines = [f"mode collapse on {res['data']}: {res['recipe']}, {res['seeds']} seeds ({res['protocol']})",
             f"{'':32s} {'modes':>14s} {'HQ %':>14s} {'reverse KL':>14s}"]
    s = res["summary"]
    lines.append(f"{res['recipe'] + ' (measured)':32s} " + " ".join(
        f"{s[k]['mean']:7.2f} ± {s[k]['std']:4.2f}" for k in ("modes", "hq_percent", "reverse_kl")))
    for name, p in res["published"].items():
        lines.append(f"{name:32s} " + " ".join(f"{p[k]:14.2f}" if k in p else f"{'-':>14s}"
                                               for k in ("modes", "hq_percent", "reverse_kl")))
    return "\n".join(lines)
