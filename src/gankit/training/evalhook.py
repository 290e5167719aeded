"""Periodic evaluation during training, keeping the best checkpoint by one metric.

Cheap by design: a few thousand samples, the reference features come from the on-disk cache,
and nothing here touches the training RNGs (samples use their own generator), so a run with
evaluation trains exactly like one without.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import save_atomic
from ..data import Dataset
from ..errors import GankitError
from ..monitor.log import RunLog
from .state import TrainState

LOWER_IS_BETTER = ("fid", "kid", "reverse_kl", "kl_uniform")


def _pick(result: dict, wanted: str) -> tuple[str, float]:
    names = [k for k in result if k != "protocol" and isinstance(result[k], (int, float))]
    match = [k for k in names if k.startswith(wanted + "_") or k == wanted]
    if not match:
        raise GankitError(f"train.best_metric={wanted!r} is not among the eval results ({', '.join(names)})")
    return match[0], float(result[match[0]])


def periodic_eval(state: TrainState, data: Dataset, out: Path, runlog: RunLog) -> dict:
    from ..metrics import evaluate

    t = state.cfg.train
    n = t.eval_n or (2000 if data.is_image else 2500)
    fake = state.generate(torch.randn(n, state.cfg.model.z_dim, generator=torch.Generator().manual_seed(t.seed + 3)))
    names = ["fid", "classes"] if data.is_image else ["modes"]
    result = evaluate(fake, data, names)
    key, value = _pick(result, t.best_metric or ("fid" if data.is_image else "reverse_kl"))
    lower = key.startswith(LOWER_IS_BETTER)
    best = state.meta.get("best")
    improved = best is None or (value < best["value"] if lower else value > best["value"])
    row = {"event": "eval", "step": state.step, **{k: v for k, v in result.items() if k != "protocol"},
           "best_metric": key, "improved": improved}
    runlog.write(row)
    if improved:
        state.meta["best"] = {"metric": key, "value": value, "step": state.step}
        save_atomic(state.state_dict(), out / "checkpoints" / "best.pt")
    return row
