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
import logging
import statistics
import time
from collections.abc import Callable, Iterator
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
_CHOSEN: dict[tuple, tuple[str, str, dict[str, float]]] = {}


def autotune(cfg: Config, data_x: Tensor, labels: Tensor | None, inputs: Tensor | None = None,
             cond: Tensor | None = None) -> dict[str, Any]:
    """Replace `auto` in train.device/precision/channels_last by concrete choices (in place) and
    return what was timed: {"precision", "channels_last", "ms_per_step": {candidate: ms}}."""
    from .state import model_hash, new_state
    from .step import train_step

    t = cfg.train
    device = device_of(t.device)
    t.device = str(device)
    shape = tuple(data_x.shape[1:])
    cands = candidates(cfg, _has_convs(cfg, shape), device)
    if len(cands) == 1:
        t.precision, t.channels_last = cands[0]
        return {"precision": t.precision, "channels_last": t.channels_last, "ms_per_step": {}}
    # what the step's cost depends on (not steps, seeds or logging, so a 5-step and a 10-step run agree)
    work = ("batch", "g_batch", "n_critic", "unroll", "d_update", "g_fresh_z", "ema_beta", "precision",
            "channels_last")
    key = (model_hash(cfg, shape), tuple(getattr(t, k) for k in work), repr(vars(cfg.reg)), cfg.loss.name,
           cfg.optim.impl, str(device), torch.get_num_threads())
    if key not in _CHOSEN:
        timings: dict[str, float] = {}
        x = data_x[: max(t.batch, t.g_batch) * (t.n_critic + t.unroll)]  # enough for one step's batches
        y = labels[: len(x)] if labels is not None else None
        with _rng_kept():
            for prec, layout in cands:
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
                timings[f"{prec}/{'channels_last' if layout == 'on' else 'contiguous'}"] = round(
                    1e3 * time_steps(lambda s=s, xs=xs, ys=ys: train_step(s, xs, labels=ys), device), 2)
                del s
        best = min(range(len(cands)), key=lambda i: list(timings.values())[i])
        _CHOSEN[key] = (*cands[best], timings)
    t.precision, t.channels_last, timings = _CHOSEN[key]
    log.info("autotune on %s: %s -> %s/%s", device, timings, t.precision, t.channels_last)
    return {"precision": t.precision, "channels_last": t.channels_last, "ms_per_step": timings}
