"""The autotuner: `train.precision=auto` / `train.channels_last=auto` resolved for this machine.

Precision matters more on CPUs than anywhere else: with native bf16 (AVX-512 BF16 / AMX) bf16
autocast is 1.3-1.6x faster than fp32 on our conv nets; without it bf16 is emulated and 8-26x
*slower*. So `auto` never assumes: it checks the CPU, times a few real training steps of each
candidate and keeps the fastest (fp32 is always a candidate, so auto is never slower than fp32
beyond timing noise). The choice is frozen into the run's saved config, so a resumed run
computes exactly what the original did.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import Config
from .precision import device_of, native_bf16, to_layout

log = logging.getLogger("gankit")


def candidates(cfg: Config, convs: bool, device: torch.device) -> list[tuple[str, str]]:
    """(precision, channels_last) pairs worth timing for this config on this device; `convs`:
    do the nets have convolutions (the only layers a memory layout changes)?"""
    t = cfg.train
    if t.precision != "auto":
        precisions = [t.precision]
    elif device.type == "cuda":
        precisions = ["bf16" if native_bf16(device) else "fp16"]  # tensor cores: always faster than fp32
        if precisions == ["fp16"] and (cfg.reg.gp_weight > 0 or cfg.reg.r1_gamma > 0 or t.unroll):
            precisions = ["fp32"]
    else:
        # emulated bf16 is never worth timing (measured 8-26x slower than fp32)
        precisions = ["fp32", "bf16"] if native_bf16(device) else ["fp32"]
    if t.channels_last != "auto":
        layouts = [t.channels_last]
    else:
        layouts = ["off", "on"] if convs else ["off"]
    return [(p, c) for p in precisions for c in layouts]


def time_steps(step: Callable[[], Any], device: torch.device, warmup: int = 2, timed: int = 3) -> float:
    """Median seconds per call of `step` after warm-up."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(timed):
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _rng_kept() -> Iterator[None]:
    """Timing trial steps must not move any RNG the real run will draw from."""
    import random

    import numpy as np

    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _has_convs(cfg: Config, shape: tuple[int, ...]) -> bool:
    from ..nets import build as build_nets

    if len(shape) != 3:
        return False
    with _rng_kept():
        nets = build_nets(cfg.model, shape)
    return any(isinstance(m, nn.modules.conv._ConvNd) for net in nets for m in net.modules())


# choices already made in this process, so repeated runs of one config (tests, seeds of a
# benchmark) agree with each other and do not pay for timing again
_CHOSEN: dict[str, tuple[str, str, int, dict[str, float]]] = {}


def machine() -> dict[str, Any]:
    """What a timing depends on besides the model: CPU model, its vector ISA, usable cores, torch."""
    from . import threads

    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        import platform

        name = platform.processor()
    out = {"cpu": name, "isa": torch.backends.cpu.get_cpu_capability(), "cores": threads.cores(),
           "torch": torch.__version__}
    if torch.cuda.is_available():
        out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return out


def _cache_path(key: str) -> Path:
    from ..metrics.cache import root

    return root() / "autotune" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def _read(path: Path, key: str) -> tuple[str, str, int, dict[str, float]] | None:
    try:
        d = json.loads(path.read_text())
        if d["key"] == key:
            return d["precision"], d["channels_last"], int(d["threads"]), d["ms_per_step"]
    except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: time again
        pass
    return None


def _write(path: Path, key: str, choice: tuple[str, str, int, dict[str, float]]
           ) -> tuple[str, str, int, dict[str, float]]:
    """Keep `choice` at `path` unless another process got there first; the choice that holds."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"key": key, "precision": choice[0], "channels_last": choice[1],
                                   "threads": choice[2], "ms_per_step": choice[3],
                                   "timed": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1) + "\n")
        os.link(tmp, path)  # atomic and exclusive: fails if the file exists
    except FileExistsError:
        return _read(path, key) or choice
    except OSError:  # a read-only cache: the choice holds for this process only
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return choice


def _label(prec: str, layout: str, n: int) -> str:
    return f"{prec}/{'channels_last' if layout == 'on' else 'contiguous'}/{n} thread{'s' if n > 1 else ''}"


def autotune(cfg: Config, data_x: Tensor, labels: Tensor | None, inputs: Tensor | None = None,
             cond: Tensor | None = None, thread_options: list[int] | None = None) -> dict[str, Any]:
    """Replace `auto` in train.device/precision/channels_last, and train.threads 0, by concrete
    choices (in place); return {"precision", "channels_last", "threads", "ms_per_step":
    {candidate: ms}, "cached": bool}. `thread_options`: the thread counts to time (default
    `threads.options`: 1 and all usable cores but one, unless train.threads or OMP_NUM_THREADS
    fixes one).

    A choice is timed once per machine and model and kept in the cache folder (`autotune/`), like
    cuDNN's benchmark mode: timing inside every run made the same command pick bf16 on a quiet
    machine and fp32 on a busy one, so its samples differed. Delete the file to time again, or
    fix the choice with train.precision / train.channels_last / train.threads."""
    from ..notes import note
    from . import threads
    from .state import model_hash, new_state
    from .step import train_step

    t = cfg.train
    device = device_of(t.device)
    t.device = str(device)
    shape = tuple(data_x.shape[1:])
    if thread_options is None:
        thread_options = threads.options(t.threads)
    if device.type == "cuda":  # the GPU computes; host threads only feed it
        thread_options = thread_options[-1:]
    cands = [(p, c, n) for p, c in candidates(cfg, _has_convs(cfg, shape), device) for n in thread_options]
    if len(cands) == 1:
        t.precision, t.channels_last, t.threads = cands[0]
        return {"precision": t.precision, "channels_last": t.channels_last, "threads": t.threads,
                "ms_per_step": {}, "cached": False}
    # what the step's cost depends on (not steps, seeds or logging, so a 5-step and a 10-step run agree)
    work = ("batch", "g_batch", "n_critic", "unroll", "d_update", "g_fresh_z", "ema_beta", "precision",
            "channels_last")
    from .. import __version__

    key = json.dumps([model_hash(cfg, shape), [getattr(t, k) for k in work], repr(vars(cfg.reg)),
                      repr(vars(cfg.loss)), repr(vars(cfg.text)), repr(vars(cfg.anomaly)), cfg.optim.impl,
                      str(device), thread_options, machine(), __version__])
    path = _cache_path(key)
    cached = key in _CHOSEN
    if not cached:
        hit = _read(path, key)
        cached = hit is not None
        if hit is not None:
            _CHOSEN[key] = hit
        else:
            path.unlink(missing_ok=True)  # a damaged file (written files appear whole): time again
            note(f"autotune: timing {len(cands)} candidates (precision x memory layout x threads), a few steps "
                 "each; once per machine and model")
            timed = _time(cfg, cands, data_x, labels, inputs, cond, shape, device, new_state, train_step)
            # two first runs timing at once: the first to write wins, and both take its choice
            _CHOSEN[key] = _write(path, key, timed)
    t.precision, t.channels_last, t.threads, timings = _CHOSEN[key]
    how = f"this machine's cached choice ({path}; delete it to time again)" if cached else \
        f"the fastest of {len(cands)} (kept in {path})"
    note(f"autotune: {_label(t.precision, t.channels_last, t.threads)}, {how}")
    log.info("autotune on %s: %s", device, timings)
    return {"precision": t.precision, "channels_last": t.channels_last, "threads": t.threads,
            "ms_per_step": timings, "cached": cached}


def _time(cfg: Config, cands: list[tuple[str, str, int]], data_x: Tensor, labels: Tensor | None,
          inputs: Tensor | None, cond: Tensor | None, shape: tuple[int, ...], device: torch.device,
          new_state: Callable, train_step: Callable) -> tuple[str, str, int, dict[str, float]]:
    t = cfg.train
    timings: dict[str, float] = {}
    x = data_x[: max(t.batch, t.g_batch) * (t.n_critic + t.unroll)]  # enough for one step's batches
    y = labels[: len(x)] if labels is not None else None
    before = torch.get_num_threads()
    try:
        with _rng_kept():
            for prec, layout, n in cands:
                torch.set_num_threads(n)
                trial = copy.deepcopy(cfg)
                trial.train.precision, trial.train.channels_last = prec, layout
                trial.train.compile = False  # timing compiled candidates would cost minutes each
                s = new_state(trial, shape, len(x))
                if inputs is not None:  # image-to-image: the A images of the same rows
                    s.inputs = to_layout(inputs[: len(x)].to(device), layout)
                if cond is not None:
                    s.cond = cond[: len(x)].to(device)
                xs = to_layout(x.to(device), layout)
                ys = y.to(device) if y is not None else None
                timings[_label(prec, layout, n)] = round(
                    1e3 * time_steps(lambda s=s, xs=xs, ys=ys: train_step(s, xs, labels=ys), device), 2)
                del s
    finally:
        torch.set_num_threads(before)
    # within 3 %, fewer threads win: as fast, and kinder to everything else on the machine
    ms = list(timings.values())
    best = min(range(len(cands)), key=lambda i: (ms[i] > 1.03 * min(ms), cands[i][2], ms[i]))
    return (*cands[best], timings)
