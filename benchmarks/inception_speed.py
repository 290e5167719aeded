"""How fast the FID InceptionV3 extracts features on the CPU, by execution layout, and how far each
layout's features are from plain fp32's: 2000 28x28 grayscale mnist5k digits (resized to 299x299).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/inception_speed.py [--n 2000] [--batch 100]
        [--weights pt_inception.pth] [--threads 1]

Layouts: fp32 NCHW (gankit's default), fp32 channels_last, fp32 with each BatchNorm folded into its
conv (+ channels_last), bf16 autocast (NCHW and channels_last). The layouts take turns batch by
batch, so a machine whose load drifts slows them alike. Without --weights the network gets seeded
random weights (inception.random_state(0): He-scaled convs, random BatchNorm statistics, activations
of order 1 throughout); speed does not depend on the values, agreement may.
Prints one JSON object: images/s and the difference to fp32 NCHW: max |f - f32| / max |f32|, the
largest per-feature |f - f32| / |f32| over features above 1e-3, 1e-2 and 1e-1 of the max, and the
relative difference of the FID between the two halves of the set.
"""

import argparse
import copy
import json
import platform
import subprocess
import time

import torch


def machine() -> dict:
    try:
        model = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    return {"cpu": model, "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--weights")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from gankit.config import DataConfig
    from gankit.data import build
    from gankit.metrics.inception import InceptionV3FID, load_inception, random_state

    x = build(DataConfig(source="mnist5k")).x[: a.n].float()
    if a.weights:
        base = load_inception(a.weights, for_inference=False)
    else:
        base = InceptionV3FID()
        base.load_state_dict(random_state(0))
    base.eval()
    cl = torch.channels_last
    fold = copy.deepcopy(base).for_inference()  # what load_inception gives evaluation
    layouts = {  # name: (net, channels_last input, bf16 autocast)
        "fp32": (base, False, False),
        "fp32_channels_last": (base, True, False),
        "fp32_folded_channels_last": (fold, True, False),
        "bf16": (base, False, True),
        "bf16_channels_last": (base, True, True),
    }
    nets_cl = {id(base): None, id(fold): None}
    feats = {k: [] for k in layouts}
    secs = dict.fromkeys(layouts, 0.0)
    with torch.no_grad():
        for i in range(0, len(x), a.batch):
            part = x[i: i + a.batch]
            for name, (net, channels_last, bf16) in layouts.items():
                # the same module serves both layouts: its weights are moved to this layout first
                # (untimed), as a default would store them once
                layout = cl if channels_last else torch.contiguous_format
                if nets_cl.get(id(net)) != layout:
                    net.to(memory_format=layout)
                    nets_cl[id(net)] = layout
                t = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    f = net(part.contiguous(memory_format=layout) if channels_last else part).float()
                secs[name] += time.perf_counter() - t
                feats[name].append(f)
    from gankit.metrics.distances import fid

    ref = torch.cat(feats["fp32"])
    half = len(x) // 2
    fid_ref = fid(ref[:half], ref[half:])
    rows = {}
    for name in layouts:
        f = torch.cat(feats[name])
        d = (f - ref).abs()
        rows[name] = {"images_per_s": round(len(x) / secs[name], 2), "seconds": round(secs[name], 1),
                      "max_rel_diff": float(d.max() / ref.abs().max())}
        for above in (1e-3, 1e-2, 1e-1):  # per feature, over features above this fraction of the max
            big = ref.abs() > above * ref.abs().max()
            rows[name][f"per_feature_rel_diff_above_{above:g}"] = float((d[big] / ref.abs()[big]).max())
        # FID of the first half against the second: what a user reads
        rows[name]["fid_halves_rel_diff"] = abs(fid(f[:half], f[half:]) - fid_ref) / fid_ref
    print(json.dumps({"machine": machine(), "n": len(x), "batch": a.batch, "fid_halves_fp32": fid_ref,
                      "weights": a.weights or "random (seed 0)", "layouts": rows}, indent=1))


if __name__ == "__main__":
    main()
