"""Run logs: one JSON object per line (log.jsonl) and, optionally, TensorBoard scalars."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger("gankit")


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN; keep the fact visible as a string
    return v


class RunLog:
    def __init__(self, out: Path, tensorboard: bool, purge_step: int | None = None) -> None:
        self.path = out / "log.jsonl"
        self._f = open(self.path, "a", buffering=1)  # line-buffered: a crash loses at most one row
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(out / "tb"), purge_step=purge_step)
            except ImportError:  # tensorboard is optional; the JSONL log is the record
                log.info("tensorboard not installed; logging to log.jsonl only")

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")
        if self._tb is not None and row.get("event") == "log":
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("step", "event"):
                    self._tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()
