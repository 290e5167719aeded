"""Training callbacks: `Callback`, the hooks a run calls, and `Progress`, the progress bar that
both `gankit train` and `gankit.train()` show.

    class Losses(gankit.Callback):
        def on_start(self, state, info): self.rows = []
        def on_log(self, row): self.rows.append((row["step"], row["d_loss"], row["g_loss"]))

    gankit.train("toy_ring", steps=200, callbacks=[Losses()], progress=False)
"""

from __future__ import annotations

import sys
from typing import IO, Any

from .training.loop import Callback, RunResult

__all__ = ["Callback", "Progress", "RunResult"]


class Progress(Callback):
    """A progress bar: steps done of the run's total, D and G losses, images/s and the ETA (tqdm
    computes it). `tqdm.auto`: a widget in Jupyter (when ipywidgets is installed), text elsewhere,
    written to `file` (default: sys.stderr at the run's start). Warnings in log rows (mode
    collapse) are written above the bar."""

    def __init__(self, file: IO[str] | None = None, mininterval: float = 0.5) -> None:
        self.file, self.mininterval, self.bar = file, mininterval, None

    def on_start(self, state: Any, info: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        t = state.cfg.train
        desc = state.cfg.recipe or "train"
        if t.seconds:
            desc = f"{desc} ({t.seconds:g}s budget)"
        self.bar = tqdm(total=t.steps or None, initial=state.step, unit="step", dynamic_ncols=True, desc=desc,
                        file=self.file or sys.stderr, mininterval=self.mininterval)

    def on_step(self, state: Any) -> None:
        self.bar.update(1)

    def on_log(self, row: dict[str, Any]) -> None:
        shown = {"d": row.get("d_loss"), "g": row.get("g_loss"), "img_s": row.get("images_per_s")}
        self.bar.set_postfix({k: f"{v:.0f}" if k == "img_s" else f"{v:.3f}" for k, v in shown.items()
                              if isinstance(v, (int, float))}, refresh=False)
        if "warning" in row:
            self.bar.write(f"warning: {row['warning']}", file=self.file or sys.stderr)

    def on_error(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_end(self, result: RunResult) -> None:
        if self.bar is not None:
            self.bar.close()
