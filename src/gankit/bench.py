"""Benchmarks a reader can rerun: `gankit bench modes` (2-D mode collapse) and `gankit bench stacked`
(stacked MNIST, 1000 modes), each training one recipe over several seeds."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import GankitError

# Published figures our protocols are comparable to, as quoted in the evaluation issue: PacGAN
# (Lin et al. 2018) Table 1 for the 2-D mixtures (modes and HQ % only; reverse KL is left out until
# checked against the paper) and Table 3 for stacked MNIST (following the VEEGAN set-up).
PUBLISHED = {
    "ring": {"GAN (PacGAN Table 1)": {"modes": 6.3, "hq_percent": 98.2},
             "PacGAN4 (PacGAN Table 1)": {"modes": 7.8, "hq_percent": 95.9}},
    "grid": {"GAN (PacGAN Table 1)": {"modes": 17.3, "hq_percent": 94.8},
             "PacGAN4 (PacGAN Table 1)": {"modes": 24.8, "hq_percent": 93.6}},
    "stacked_mnist": {"DCGAN (PacGAN Table 3)": {"modes": 99.0, "kl_uniform": 3.4},
                      "PacDCGAN2 (PacGAN Table 3)": {"modes": 1000.0, "kl_uniform": 0.06}},
}
COLUMNS = {"modes": ("modes", "hq_percent", "reverse_kl"), "stacked": ("modes", "kl_uniform")}
HEADERS = {"modes": "modes", "hq_percent": "HQ %", "reverse_kl": "reverse KL", "kl_uniform": "KL to uniform"}


def _mean_std(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs, dtype=np.float64)  # reverse KL is inf for a seed with no HQ sample: keep it visible
    return {"mean": float(a.mean()), "std": float(a.std()) if np.isfinite(a).all() else float("nan")}


def _over_seeds(kind: str, data: str, recipe: str, seeds: int, steps: int | None, seconds: float | None,
                out: Path | None, overrides: list[str], score: Callable[[Any, int], dict[str, Any]],
                protocol: str) -> dict[str, Any]:
    """Train `recipe` on `data` once per seed; `score(generator, seed)` gives each run's numbers."""
    from . import api

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(out) if out else Path(tmp)
        for seed in range(seeds):
            run = api.train(recipe, data=data, seed=seed, steps=steps, seconds=seconds, out=root / f"seed{seed}",
                            overrides=[*overrides, "train.tensorboard=false", "train.sample_every=0"],
                            progress=False)  # the table is the output; a bar per seed would bury it
            s = score(api.load(run.out), seed)
            rows.append({"seed": seed, "steps": run.step, "seconds": round(run.seconds, 1),
                         **{k: s[k] for k in COLUMNS[kind]}})
    summary = {k: _mean_std([float(r[k]) for r in rows]) for k in COLUMNS[kind]}
    return {"kind": kind, "data": data, "recipe": recipe, "seeds": seeds, "protocol": protocol, "runs": rows,
            "summary": summary, "published": PUBLISHED[data]}


def modes(data: str = "ring", recipe: str | None = None, seeds: int = 10, steps: int | None = None,
          seconds: float | None = None, out: Path | None = None, overrides: list[str] = ()) -> dict[str, Any]:
    """Train `recipe` (default toy_<data>) once per seed and count modes on 2500 samples each."""
    from .data import build as build_data
    from .metrics.toy import mode_stats

    if data not in ("ring", "grid"):
        raise GankitError(f"bench modes runs on ring or grid, not {data!r}")

    def score(g: Any, seed: int) -> dict[str, Any]:
        meta = build_data(g.cfg.data).meta
        return mode_stats(g.sample(2500, seed=10_000 + seed), meta["centres"], meta["std"])

    return _over_seeds("modes", data, recipe or f"toy_{data}", seeds, steps, seconds, out, list(overrides), score,
                       "PacGAN: 2500 samples, HQ = within 3 std")


def stacked(recipe: str | None = None, seeds: int = 10, steps: int | None = None, seconds: float | None = None,
            out: Path | None = None, overrides: list[str] = ()) -> dict[str, Any]:
    """Train `recipe` (default dcgan_stacked) on stacked MNIST once per seed; 26 000 samples each,
    every channel classified by the project's digit CNN: modes covered of 1000, KL to uniform."""
    from .metrics.classes import kl_to_uniform
    from .metrics.classifier import load_digit_classifier, stacked_modes

    net = load_digit_classifier()

    def score(g: Any, seed: int) -> dict[str, Any]:
        hist = torch.zeros(1000, dtype=torch.long)
        for i in range(0, 26_000, 2000):  # in chunks: 26 000 RGB samples at once is 245 MB
            x = g.sample(2000, seed=10_000 + 1000 * seed + i // 2000)
            if x.shape[1:] != (3, 28, 28):
                raise GankitError(f"bench stacked needs a recipe that makes (3, 28, 28) samples, got "
                                  f"{tuple(x.shape[1:])}")
            hist += torch.bincount(stacked_modes(net, x), minlength=1000)
        return {"modes": int((hist > 0).sum()), "kl_uniform": kl_to_uniform(hist)}

    return _over_seeds("stacked", "stacked_mnist", recipe or "dcgan_stacked", seeds, steps, seconds, out,
                       list(overrides), score, "26 000 samples, each channel classified by mnistcnn")


# the remedies the seeds name, each on the vanilla toy recipe, then our best recipe for the mixture
VARIANTS = {
    "vanilla": ("toy_{data}", []),
    "unrolled (k=5)": ("toy_{data}", ["train.unroll=5"]),
    "PacGAN (m=4)": ("toy_{data}", ["model.pack=4"]),
    "minibatch discrimination": ("toy_{data}", ["model.minibatch=disc"]),
    "GMAN (3 Ds, mean)": ("toy_{data}", ["model.n_d=3"]),
    "{data}_best": ("{data}_best", []),
}


def remedies(data: str = "ring", seeds: int = 10, steps: int | None = None, seconds: float | None = None,
             out: Path | None = None, only: list[str] | None = None) -> dict[str, Any]:
    """`modes` for each remedy in VARIANTS under the same budget: one side-by-side table."""
    names = [n for n in VARIANTS if not only or any(o.lower() in n.lower().format(data=data) for o in only)]
    if not names:
        raise GankitError(f"--only {','.join(only or [])} matches none of: {', '.join(VARIANTS)}")
    rows = []
    for name in names:
        recipe, sets = VARIANTS[name]
        sub = Path(out) / name.split(" ")[0].format(data=data) if out else None
        res = modes(data, recipe.format(data=data), seeds, steps, seconds, sub, sets)
        rows.append({"variant": name.format(data=data), "recipe": res["recipe"], "set": sets, "runs": res["runs"],
                     "summary": res["summary"]})
    return {"kind": "remedies", "data": data, "seeds": seeds, "steps": steps, "seconds": seconds, "rows": rows,
            "protocol": "PacGAN: 2500 samples, HQ = within 3 std", "published": PUBLISHED[data]}


def format_remedies(res: dict[str, Any]) -> str:
    cols = COLUMNS["modes"]
    budget = f"{res['seconds']:g} s" if res["seconds"] else f"{res['steps']} steps"
    lines = [f"{res['data']}: {res['seeds']} seeds, {budget} each ({res['protocol']})",
             f"| variant | {' | '.join(HEADERS[k] for k in cols)} | command |", "|---" * (len(cols) + 2) + "|"]
    for r in res["rows"]:
        s = r["summary"]
        sets = "".join(f" --set {x}" for x in r["set"])
        lines.append(f"| {r['variant']} | " + " | ".join(f"{s[k]['mean']:.2f} ± {s[k]['std']:.2f}" for k in cols)
                     + f" | `gankit bench modes --data {res['data']} --recipe {r['recipe']}{sets}` |")
    for name, p in res["published"].items():
        lines.append(f"| {name} | " + " | ".join(f"{p[k]:.2f}" if k in p else "-" for k in cols) + " | published |")
    return "\n".join(lines)


def format_table(res: dict[str, Any]) -> str:
    cols = COLUMNS[res["kind"]]
    lines = [f"{res['data']}: {res['recipe']}, {res['seeds']} seeds ({res['protocol']})",
             f"{'':32s} " + " ".join(f"{HEADERS[k]:>16s}" for k in cols)]
    s = res["summary"]
    lines.append(f"{res['recipe'] + ' (measured)':32s} " + " ".join(
        f"{s[k]['mean']:8.2f} ± {s[k]['std']:5.2f}" for k in cols))
    for name, p in res["published"].items():
        lines.append(f"{name:32s} " + " ".join(f"{p[k]:16.2f}" if k in p else f"{'-':>16s}" for k in cols))
    return "\n".join(lines)
