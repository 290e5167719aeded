"""Is speed traded for quality? The same recipe trained for a fixed number of steps on the plain
path (fp32, contiguous, for-loop Adam) and on the fast path gankit picks (train.precision=auto,
channels_last=auto, fused Adam), several seeds each, scored by FID (project digit CNN, 5000
samples against mnist5k).

    .venv/bin/python benchmarks/fast_path_quality.py --recipe dcgan_mnist_fast --steps 1500 --seeds 3

Prints one JSON line per run and a summary (mean ± std per path).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from gankit import api

PATHS = {
    "plain (fp32, contiguous, loop Adam)": ["train.precision=fp32", "train.channels_last=off", "optim.impl=loop"],
    "fast (auto precision/layout, fused Adam)": ["train.precision=auto", "train.channels_last=auto",
                                                 "optim.impl=fused"],
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", default="dcgan_mnist_fast")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seeds", type=int, default=3)
    a = p.parse_args()
    results: dict[str, list[float]] = {k: [] for k in PATHS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.seeds):
            for name, sets in PATHS.items():
                out = Path(tmp) / f"{seed}-{len(results[name])}-{name.split()[0]}"
                run = api.train(a.recipe, steps=a.steps, seed=seed, out=out,
                                overrides=[*sets, "train.tensorboard=false", "train.sample_every=0"])
                cfg = json.loads((out / "log.jsonl").read_text().splitlines()[0])
                scores = api.evaluate(out, metrics=["fid"], n=5000)
                fid = next(v for k, v in scores.items() if k.startswith("fid"))
                results[name].append(fid)
                print(json.dumps({"path": name, "seed": seed, "steps": run.step, "seconds": round(run.seconds, 1),
                                  "images_per_s": round(run.images_per_s, 1), "precision": cfg["precision"],
                                  "channels_last": cfg["channels_last"], "fid": round(fid, 3)}), flush=True)
    for name, fids in results.items():
        sd = statistics.stdev(fids) if len(fids) > 1 else 0.0
        print(f"{name}: FID {statistics.mean(fids):.2f} ± {sd:.2f} over {len(fids)} seeds "
              f"({a.recipe}, {a.steps} steps)")


if __name__ == "__main__":
    main()
