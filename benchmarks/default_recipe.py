"""The default recipe as `make demo` runs it, over seeds: docs/benchmarks.md "The default recipe".

    .venv/bin/python benchmarks/default_recipe.py [--seconds 180] [--seeds 0,1,2] [RECIPE ...]

Each cell is `gankit train RECIPE --seconds S --seed K` (the autotuner's choice of precision,
layout and threads, as the demo gets it) and `gankit eval` of 5000 EMA samples in the digit CNN's
space: FID, the class histogram's smallest and largest class, mean classifier confidence. Run it
on a quiet machine: a `--seconds` budget measures the machine as much as the recipe.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from gankit import api
from gankit.config import DEFAULT_RECIPE


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("recipes", nargs="*", default=[DEFAULT_RECIPE])
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default="runs/default-recipe")
    p.add_argument("--json", help="append one JSON row per run to this file")
    a = p.parse_args()
    for recipe in a.recipes:
        rows = []
        for seed in (int(s) for s in a.seeds.split(",")):
            out = Path(a.out) / f"{recipe}-seed{seed}"
            run = api.train(recipe, seconds=a.seconds, seed=seed, out=out, progress=False,
                            overrides=["train.tensorboard=false"])
            res = api.evaluate(out)
            get = {k.rsplit("_mnistcnn", 1)[0]: v for k, v in res.items() if "_mnistcnn_" in k}
            hist = get["class_hist"]
            row = {"recipe": recipe, "seed": seed, "steps": run.step, "seconds": round(run.seconds, 1),
                   "fid": round(get["fid"], 2), "confidence": round(get["confidence"], 3),
                   "class_min": min(hist), "class_max": max(hist), "class_hist": hist,
                   "cpu": torch.backends.cpu.get_cpu_capability()}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps(row) + "\n")
        fids = [r["fid"] for r in rows]
        print(f"{recipe}: FID {statistics.mean(fids):.2f} (seeds {', '.join(f'{f:.2f}' for f in fids)}), "
              f"confidence {statistics.mean(r['confidence'] for r in rows):.3f}, classes "
              f"{min(r['class_min'] for r in rows)}..{max(r['class_max'] for r in rows)} of 5000, "
              f"steps {min(r['steps'] for r in rows)}..{max(r['steps'] for r in rows)}", flush=True)


if __name__ == "__main__":
    main()
