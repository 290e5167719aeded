"""docs/benchmarks.md's recipe table: train every shipped recipe for the same wall-clock budget, then score it.

    .venv/bin/python benchmarks/recipes.py --seconds 180 [--out runs/recipes] [recipe ...]

Each row is what `gankit train RECIPE --seconds S --out DIR && gankit eval DIR` gives: steps reached,
images/s over the whole run (checkpoints and sample grids included), and the default metrics of the
run's data (digits: FID/KID in the project classifier's feature space and class coverage; ring/grid:
PacGAN mode counts; stacked MNIST: modes of 1000 and KL to uniform). One seed per recipe; the mode
benchmarks over 10 seeds are `gankit bench modes|stacked`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gankit import api
from gankit.config import recipe_names
from gankit.training.threads import cores as free_cores


def pick(result: dict) -> dict:
    keep = ("fid_", "kid_mnistcnn_5k", "classes_covered", "kl_uniform_mnistcnn", "modes", "hq_percent",
            "kl_uniform_stacked")
    return {k: v for k, v in result.items()
            if k.startswith(keep) and not k.endswith("_std") and not isinstance(v, list)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("recipes", nargs="*", help="default: every shipped recipe")
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--out", default="runs/recipes")
    a = p.parse_args()
    torch.set_num_threads(free_cores())
    rows = []
    for recipe in a.recipes or recipe_names():
        run = api.train(recipe, seconds=a.seconds, out=Path(a.out) / recipe,
                        overrides=["train.tensorboard=false"])
        res = api.evaluate(run.out)
        row = {"recipe": recipe, "steps": run.step, "seconds": round(run.seconds), "images_per_s":
               round(run.images_per_s), **pick(res), "cpu": torch.backends.cpu.get_cpu_capability()}
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
