"""Run logs: one JSON object per line (log.jsonl) and TensorBoard events (tb/): every numeric value
of the log rows, periodic eval scores, the sample grids as images and the run's config as
hyper-parameters (the hparams dashboard)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger("gankit")

# numbers of other rows than the per-step log rows, under TensorBoard tags grouped by prefix
_OTHER_ROWS = {"eval": "eval/", "end": "run/", "compiled": "run/compile_"}
_NOT_SCALARS = {"step", "event", "steps"}


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN; keep the fact visible as a string
    if isinstance(v, dict):  # eval rows nest their results (a toy run's reverse_kl may be inf)
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"width": 8}} -> {"model.width": 8}; values the hparams plugin cannot show
    (None, lists) as text."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v if isinstance(v, (bool, int, float, str)) else str(v)
    return out


class RunLog:
    def __init__(self, out: Path, tensorboard: bool, purge_step: int | None = None) -> None:
        self.path = out / "log.jsonl"
        self._f = open(self.path, "a", buffering=1)  # line-buffered: a crash loses at most one row
        self._tb = None
        self._hparams: dict[str, Any] | None = None
        self._last: dict[str, float] = {}  # the last value of each scalar tag: the hparams metrics
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(out / "tb"), purge_step=purge_step)
            except ImportError as e:  # a core dependency, so a broken install: say it once, keep training
                log.warning("train.tensorboard is on but TensorBoard cannot be imported (%s), so %s is not "
                            "written (log.jsonl is); reinstall it (pip install 'tensorboard>=2.17.1') or set "
                            "train.tensorboard=false", e, out / "tb")

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(json.dumps(_clean(row), allow_nan=False) + "\n")
        if self._tb is None or "step" not in row:
            return
        event = row.get("event")
        prefix = "" if event == "log" else _OTHER_ROWS.get(str(event))
        if prefix is None:
            return
        for k, v in row.items():
            # a row's numbers: losses, the family's stats, lr, speed, diversity, eval scores; "collapsed"
            # as 0/1 (bools are ints). Lists (a class histogram) and text stay in log.jsonl only.
            if k not in _NOT_SCALARS and isinstance(v, (int, float)):
                tag = f"{prefix}{k}"
                self._tb.add_scalar(tag, float(v), row["step"])
                self._last[tag] = float(v)

    def image(self, tag: str, path: Path, step: int) -> None:
        """A PNG written by the run (a sample grid) as a TensorBoard image at `step`."""
        if self._tb is None or not Path(path).exists():
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
        self._tb.add_image(tag, a, step, dataformats="HWC")

    def hparams(self, config: dict[str, Any]) -> None:
        """The run's config (nested sections) as hyper-parameters; written when the log closes, with
        the last value of each scalar as the run's metrics (TensorBoard's hparams dashboard)."""
        self._hparams = _flat(config)

    def _write_hparams(self) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {k: v for k, v in self._last.items() if math.isfinite(v)}
        for summary in hparams(self._hparams, metrics):  # experiment, session start, session end
            self._tb.file_writer.add_summary(summary)

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            if self._hparams is not None:
                self._write_hparams()
            self._tb.close()
