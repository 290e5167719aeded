"""A run folder's life: one writer at a time, never two runs in one folder, nothing stale left.

- `RunLock`: while a process trains into a folder it holds an exclusive `flock` on `.lock`
  there. The kernel drops the lock when the process dies (kill -9 included), so a lock is never
  stale; the file also names its owner (pid, host, command) for the refusal message.
- `check_new`: a new run refuses a folder that holds another run's files, finished or not.
- `tidy_for_resume`: before a resume, temp files of an interrupted checkpoint write are deleted,
  and log rows and sample grids written after the checkpoint (which the resumed run writes
  again, identically) are dropped, so log.jsonl holds each step once.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError

RUN_FILES = ("config.yaml", "log.jsonl", "checkpoints", "samples", "tb")
# rows about steps: after a resume from step k the run writes those of steps > k again
STEP_EVENTS = {"log", "eval", "checkpoint", "diverged", "compiled"}


class RunLock:
    """An exclusive lock on `folder/.lock`, held until `release()` or the process ends."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".lock"
        self._f: Any = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX (Windows): no advisory locks; one run per folder is then on the user
            return self
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            owner = _describe(f.read())
            f.close()
            raise ConfigError(f"{self.path.parent} is in use by another gankit run ({owner}); wait for it to "
                              "finish or choose another --out") from None
        f.seek(0)
        f.truncate()
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "command": " ".join(["gankit", *sys.argv[1:]])[:300]}
        f.write(json.dumps(owner) + "\n")
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        if self._f is not None:
            self._f.close()  # closing the file drops the flock
            self._f = None


def _describe(text: str) -> str:
    try:
        d = json.loads(text)
        return f"pid {d['pid']} on {d['host']} since {d['since']}: {d['command']}"
    except (ValueError, KeyError, TypeError):
        return "owner unknown"


def check_new(out: Path) -> None:
    """Refuse a folder that holds another run's files (ConfigError naming them)."""
    if (out / "checkpoints" / "latest.pt").exists():
        raise ConfigError(f"{out} already holds a run; resume it with --resume {out} or choose another --out")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        last = _last_event(out / "log.jsonl")
        why = f" (its log ends with: {last})" if last else ""
        raise ConfigError(f"{out} holds files of an earlier run that stopped before its first checkpoint "
                          f"({', '.join(found)}){why}; delete the folder or choose another --out")


def _last_event(log: Path) -> str:
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("event") != "log":
            return f"{row.get('event')} at step {row.get('step')}"
    return ""


def tidy_for_resume(run_dir: Path, step: int) -> int:
    """Delete temp files of interrupted checkpoint writes and sample grids of steps after `step`
    (the checkpoint being resumed); drop log rows of those steps. Returns the number of rows
    dropped. Call with the lock held. (`checkpoints/best.pt` from after `step` stays: it is a
    real evaluated state of the same, deterministic run.)"""
    for tmp in (run_dir / "checkpoints").glob(".*.tmp*"):
        tmp.unlink(missing_ok=True)
    for grid in (run_dir / "samples").glob("step-*.png"):  # drawn after the checkpoint: drawn again
        try:
            if int(grid.stem.split("-")[1]) > step:
                grid.unlink()
        except (ValueError, IndexError, OSError):
            continue
    log = run_dir / "log.jsonl"
    if not log.exists():
        return 0
    kept, dropped = [], 0
    for line in log.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # half a line from a kill mid-write: the run writes that step again
            dropped += 1
            continue
        if row.get("event") in STEP_EVENTS and isinstance(row.get("step"), int) and row["step"] > step:
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        tmp = log.with_name(".log.jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, log)
    return dropped
