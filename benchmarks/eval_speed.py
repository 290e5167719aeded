"""How long scoring samples takes: 10 000 28x28 samples against mnist5k with every default metric.

    .venv/bin/python benchmarks/eval_speed.py [--n 10000]

Times each metric alone and all together (median of 3 runs after a warm-up), with the reference
features cached on disk (the normal case after a run's first eval), and once "cold" with an empty
cache, where the 5000 real images are extracted too. The fake samples are always extracted anew.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from gankit.config import DataConfig
from gankit.data import build
from gankit.metrics import evaluate
from gankit.metrics.classifier import load_digit_classifier
from gankit.training.threads import cores as free_cores


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10000)
    a = p.parse_args()
    torch.set_num_threads(free_cores())
    ref = build(DataConfig(source="mnist5k"))
    g = torch.Generator().manual_seed(0)
    fake = ref.x[torch.randint(len(ref), (a.n,), generator=g)] + 0.2 * torch.randn(a.n, 1, 28, 28, generator=g)
    net = load_digit_classifier()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANKIT_CACHE"] = tmp  # starts empty: the first evaluation is the cold one
        t0 = time.perf_counter()
        evaluate(fake, ref, None, extractor=net)
        rows["all, cold cache"] = round(time.perf_counter() - t0, 2)
        for names in (["fid"], ["kid"], ["is"], ["prdc"], ["classes"], ["fid", "kid", "is", "prdc", "classes"]):
            evaluate(fake[:500], ref, names, extractor=net)  # warm-up
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                evaluate(fake, ref, names, extractor=net)
                times.append(time.perf_counter() - t0)
            rows["+".join(names)] = round(statistics.median(times), 2)
    print(json.dumps({"n_fake": a.n, "n_real": len(ref), "seconds": rows, "threads": torch.get_num_threads(),
                      "cpu": torch.backends.cpu.get_cpu_capability()}))


if __name__ == "__main__":
    main()
