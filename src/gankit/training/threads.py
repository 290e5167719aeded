"""How many compute threads a run may use, and how long they spin.

A laptop always has other busy processes. On 2 cores, beside one busy process, OpenMP's threads
spin-wait for each other at every parallel region while one of them waits for a core: measured
here, `dcgan_mnist_fast` with 2 threads went from 17 ms to 1100 ms per step, `toy_ring` from 3 to
112 ms (the issue measured 472 ms); with 1 thread both stayed within 2x. Three defences:

- `cores()`: the cores this process may really use: its CPU affinity mask (taskset, cpusets) and
  a cgroup CPU quota (a container given 1.5 CPUs of 16) cap the count, not `os.cpu_count()`.
- `options()`: without `OMP_NUM_THREADS` (the standard variable) or `train.threads`, the
  autotuner times 1 thread against all cores but one: one core stays free for the rest of the
  machine (on 2 cores that is 1 thread: 1.6x slower than 2 on an idle machine, but never 60x
  slower on a busy one; set train.threads=2 for an idle machine).
- `short_spin()`: waiting threads spin 3000 times before they sleep (`GOMP_SPINCOUNT`; libgomp's
  default is 300 000), set by the CLI before torch loads. Measured: the same speed alone, and far
  less time burnt when a core is taken. A passive policy (no spinning) made every step 2.3x slower.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def cores() -> int:
    """Cores this process may use: the affinity mask, capped by a cgroup (v2 or v1) CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    quota = cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota + 1e-9)))
    return max(1, n)


def _own_cgroup() -> str:
    """The process's cgroup v2 path ("/user.slice/..."), from the `0::` line of /proc/self/cgroup."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:].strip()
    except OSError:
        pass
    return "/"


def cgroup_quota(root: Path = Path("/sys/fs/cgroup"), own: str | None = None) -> float | None:
    """CPUs' worth of time the process's cgroup may use per period (1.5 = one and a half cores):
    the smallest quota on the way from its own cgroup (`own`, default from /proc/self/cgroup) up
    to `root` (a systemd slice or a pod sets it below the root), or None when unlimited or unknown."""
    own = _own_cgroup() if own is None else own
    parts = [p for p in own.strip("/").split("/") if p and p != ".."]
    limits = []
    for depth in range(len(parts), -1, -1):
        try:  # cgroup v2: "max 100000" or "150000 100000"
            quota, period = (root.joinpath(*parts[:depth]) / "cpu.max").read_text().split()[:2]
            if quota != "max":
                limits.append(int(quota) / int(period))
        except (OSError, ValueError):
            continue
    if limits:
        return min(limits)
    if (root / "cpu.max").exists():
        return None
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())  # cgroup v1: -1 = unlimited
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def requested(cfg_threads: int) -> int:
    """A thread count the user fixed: train.threads (> 0) first, then OMP_NUM_THREADS; 0 = none."""
    if cfg_threads > 0:
        return cfg_threads
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()  # "4,2" is nested parallelism: outer level
    return int(env) if env.isdigit() and int(env) > 0 else 0


def options(cfg_threads: int) -> list[int]:
    """The thread counts the autotuner times: the one the user fixed, else 1 and all cores but one."""
    fixed = requested(cfg_threads)
    return [fixed] if fixed else sorted({1, max(1, cores() - 1)})


def short_spin() -> None:
    """Let OpenMP's waiting threads spin briefly, then sleep (unless the user chose a policy or a
    spin count). Only has an effect before torch is imported (the runtime reads it once)."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = "3000"


def process_age() -> float | None:
    """Seconds since this process started (Linux; None elsewhere): start-up time in the run log."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return round(uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError):
        return None


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD = -1, -2


def keep_freed_memory(trim: int = 1 << 30, top_pad: int = 128 << 20) -> bool:
    """Ask glibc's malloc to keep up to `trim` bytes of freed heap instead of returning it to the
    system after every step, and to grow the heap `top_pad` bytes at a time (mallopt; True when
    applied, False off glibc). Why: after a large dataset was decoded (a 60 000-image IDX file's
    temporary arrays), glibc's dynamic thresholds made each step's activations be freed back to the
    system and faulted in again: `gankit train` measured 13-16 % slower per step than on mnist5k
    with the same nets; with these settings it was not slower (19.2-19.5 against 19.1-19.3 ms), and
    mnist5k runs got faster too (21 -> 19 ms). The cost: a training process may hold up to `trim`
    bytes it no longer uses. Setting the values explicitly also stops glibc adjusting them."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, trim)) and bool(mallopt(_M_TOP_PAD, top_pad))
