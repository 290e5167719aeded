"""Train the digit classifier shipped in src/gankit/weights/ (the default FID/class extractor).

    .venv/bin/python scripts/train_digit_classifier.py [--epochs 30] [--out PATH]

Prints the held-out accuracy (1000 mnist5k digits never seen in training).
"""

import argparse
import json
import time
from pathlib import Path

import torch

from gankit.metrics.classifier import train_digit_classifier, weights_path
from gankit.training.loop import free_cores

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=weights_path())
    a = p.parse_args()
    torch.set_num_threads(free_cores())
    t0 = time.perf_counter()
    info = train_digit_classifier(a.out, a.epochs, a.seed)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(info))
