"""Training throughput of recipes: images/s of the full gankit step (D + G + EMA), fp32.

    .venv/bin/python benchmarks/train_throughput.py dcgan_mnist mlp_mnist --batch 64

Warm-up steps are excluded; the figure is the median of several timed windows. Threads are
pinned to the free cores. Prints one row per recipe and the CPU capability it ran on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gankit.api import make_config
from gankit.training.loop import prepare
from gankit.training.state import new_state
from gankit.training.step import train_step
from gankit.training.threads import cores as free_cores


def measure(recipe: str, batch: int, warmup: int, windows: int, steps: int) -> dict:
    cfg, data = prepare(make_config(recipe, batch=batch, overrides=["train.tensorboard=false"]))
    state = new_state(cfg, data.shape, len(data))
    for _ in range(warmup):
        train_step(state, data.x)
    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            train_step(state, data.x)
        rates.append(steps * batch / (time.perf_counter() - t0))
    return {"recipe": recipe, "batch": batch, "images_per_s": round(statistics.median(rates), 1),
            "min": round(min(rates), 1), "max": round(max(rates), 1), "threads": torch.get_num_threads(),
            "cpu": torch.backends.cpu.get_cpu_capability()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("recipes", nargs="+")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(free_cores())
    for r in a.recipes:
        print(json.dumps(measure(r, a.batch, a.warmup, a.windows, a.steps)))


if __name__ == "__main__":
    main()
