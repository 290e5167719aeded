"""`gankit bench speed`: gankit's training step against the step a tutorial reader writes, side
by side in one process, and both against what this machine can do at all.

The reference step is the obvious code: fp32, eager, default-layout tensors, Adam as PyTorch
builds it by default on a CPU (a Python loop over parameters), D judging reals and fakes in
two forwards, a fresh fake batch for the G step, D's weight gradients computed in the G step
too (nobody freezes D), and the losses read with `.item()` every step. It computes the same
algorithm as the recipe (same nets and initialisation, loss, n_critic, gradient penalty).

The two steps alternate window by window, so a VM that speeds up or slows down during the run
affects both alike; each figure is the median over windows, after warm-up.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .errors import GankitError

RECIPES = ["dcgan_mnist", "mlp_mnist", "wgan_gp_mnist", "sngan_mnist"]


def _rate(fn: Callable[[], Any], flops: float, seconds: float = 0.6) -> float:
    """GFLOP/s of fn (median of 5 timings, each at least `seconds` / 5 long)."""
    for _ in range(2):
        fn()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 5:
        fn()
        reps += 1
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t0) / reps)
    return flops / statistics.median(times) / 1e9


def machine_rates(dtypes: list[str]) -> dict[str, float]:
    """Measured matmul GFLOP/s (2048 x 2048 x 2048) for each dtype: this machine's practical limit."""
    out = {}
    for name in dtypes:
        dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
        a, b = torch.randn(2048, 2048).to(dt), torch.randn(2048, 2048).to(dt)
        out[f"matmul_{name}"] = round(_rate(lambda a=a, b=b: a @ b, 2 * 2048**3), 1)
    return out


def biggest_conv(g: nn.Module, d: nn.Module, x: Tensor, z: Tensor, dtypes: list[str]) -> dict[str, Any]:
    """The model's most expensive convolution (by forward FLOPs at this batch), timed alone in
    each dtype: the rate the model's own shapes allow."""
    from torch.utils.flop_counter import FlopCounterMode

    seen: list[tuple[nn.Module, Tensor]] = []
    hooks = [m.register_forward_hook(lambda m, inp, out: seen.append((m, inp[0].detach())))
             for m in (*g.modules(), *d.modules()) if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            d(x)
            g(z)
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        return {}
    best, flops = None, 0.0
    for m, inp in seen:
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            m(inp)
        if fc.get_total_flops() > flops:
            best, flops = (m, inp), float(fc.get_total_flops())
    m, inp = best
    out: dict[str, Any] = {"conv": f"{type(m).__name__} {m.in_channels}->{m.out_channels} "
                                   f"k{m.kernel_size[0]} s{m.stride[0]} on {tuple(inp.shape)}",
                           "conv_gflop": round(flops / 1e9, 3)}
    for name in dtypes:
        with torch.no_grad():
            if name == "fp32":
                out["conv_fp32"] = round(_rate(lambda: m(inp), flops), 1)
            else:
                dt = {"bf16": torch.bfloat16, "fp16": torch.float16}[name]
                with torch.autocast("cpu", dt):
                    out[f"conv_{name}"] = round(_rate(lambda: m(inp), flops), 1)
    return out


def reference_step(cfg: Any, x: Tensor, real_batch: Callable[[int], Tensor] | None = None,
                   z_batch: Callable[[int], Tensor] | None = None,
                   ) -> tuple[Callable[[], tuple[float, float]], nn.Module, nn.Module]:
    """The recipe's algorithm written the obvious way (see the module docstring). Batches are
    `x[torch.randint(...)]` and `torch.randn(...)`; `real_batch(n)` and `z_batch(n)` replace
    them (tests feed both steps the same batches)."""
    from . import regularizers as R
    from .losses import losses
    from .nets import build as build_nets

    t, o, reg, m = cfg.train, cfg.optim, cfg.reg, cfg.model
    unsupported = [k for k, bad in (("model.cond", m.cond != "none"), ("train.unroll", t.unroll),
                                    ("train.d_update=split", t.d_update == "split"), ("reg.r1_gamma", reg.r1_gamma),
                                    ("model.n_d", m.n_d > 1), ("reg.diffaug", reg.diffaug)) if bad]
    if unsupported:
        raise GankitError(f"bench speed has no reference step for recipes with {', '.join(unsupported)}")
    torch.manual_seed(t.seed)
    g, d = build_nets(m, tuple(x.shape[1:]))
    opt_g = torch.optim.Adam(g.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2), eps=o.eps)
    opt_d = torch.optim.Adam(d.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2), eps=o.eps,
                             weight_decay=o.weight_decay_d)
    spec = losses.get(cfg.loss.name)
    kw = {"real_label": cfg.loss.real_label} if spec.label_smoothing else {}
    b = t.batch
    real_batch = real_batch or (lambda n: x[torch.randint(len(x), (n,))])
    z_batch = z_batch or (lambda n: torch.randn(n, m.z_dim))

    def step() -> tuple[float, float]:
        for _ in range(t.n_critic):
            real = real_batch(b)
            fake = g(z_batch(b))
            loss_d = spec.d(real=d(real), fake=d(fake.detach()), **kw)
            if reg.gp_weight:
                loss_d = loss_d + reg.gp_weight * R.gradient_penalty(d, real, fake)
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            if reg.weight_clip:
                R.clip_weights(d, reg.weight_clip)
        fake = g(z_batch(b))
        loss_g = spec.g(fake=d(fake), real=d(real) if spec.g_needs_real else None)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_d.item(), loss_g.item()

    return step, g, d


def _flops_per_image(step: Callable[[], Any], batch: int) -> float:
    """FLOPs of one call of `step` (forward, backward, penalties) by PyTorch's per-op formulas.
    Not FlopCounterMode itself: its module hooks fail inside autograd.grad (gradient penalties)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Count.total += formula(*args, **kwargs, out_val=out)
            return out

    with Count():
        step()
    return Count.total / batch


def measure(recipe: str, batch: int = 64, windows: int = 7, steps: int = 0, warmup: int = 3,
            overrides: list[str] = (), compile_too: bool = False) -> dict[str, Any]:
    """One recipe: reference and gankit images/s (median over alternating windows), FLOPs per
    image of each step, and the achieved GFLOP/s."""
    from .api import make_config
    from .training import autotune, precision
    from .training.loop import prepare
    from .training.state import new_state
    from .training.step import train_step

    cfg, data = prepare(make_config(recipe, batch=batch, overrides=[*overrides, "train.tensorboard=false"]))
    x = data.x
    ref, g_ref, d_ref = reference_step(cfg, x)
    # the reference runs on every usable core: gankit is timed on the same number
    tuned = autotune.autotune(cfg, x, None, thread_options=[torch.get_num_threads()])
    s = new_state(cfg, data.shape, len(data))
    xs = precision.to_layout(x.to(s.device), cfg.train.channels_last)

    def ours() -> None:
        train_step(s, xs)

    if not steps:  # windows of about 1.5 s at the reference's speed
        t0 = time.perf_counter()
        ref()
        steps = max(2, min(200, int(1.5 / max(time.perf_counter() - t0, 1e-4))))
    for _ in range(warmup):
        ref()
        ours()
    rates: dict[str, list[float]] = {"reference": [], "gankit": []}
    for _ in range(windows):
        for name, fn in (("reference", ref), ("gankit", ours)):
            autotune.sync(s.device)
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            autotune.sync(s.device)
            rates[name].append(steps * batch / (time.perf_counter() - t0))
    ips = {k: statistics.median(v) for k, v in rates.items()}
    flops = {"reference": _flops_per_image(ref, batch), "gankit": _flops_per_image(ours, batch)}
    row: dict[str, Any] = {
        "recipe": recipe, "batch": batch, "precision": cfg.train.precision, "channels_last": cfg.train.channels_last,
        "optimizer": cfg.optim.impl, "autotune_ms": tuned["ms_per_step"], "steps_per_window": steps,
        "windows": windows,
        "reference_images_per_s": round(ips["reference"], 1), "gankit_images_per_s": round(ips["gankit"], 1),
        "speedup": round(ips["gankit"] / ips["reference"], 2),
        "spread": {k: [round(min(v), 1), round(max(v), 1)] for k, v in rates.items()},
        "reference_gflop_per_image": round(flops["reference"] / 1e9, 4),
        "gankit_gflop_per_image": round(flops["gankit"] / 1e9, 4),
        # the useful work is the algorithm's (the reference's FLOPs); what gankit skips is a gain, not lost work
        "reference_gflops": round(ips["reference"] * flops["reference"] / 1e9, 1),
        "gankit_effective_gflops": round(ips["gankit"] * flops["reference"] / 1e9, 1),
        "gankit_executed_gflops": round(ips["gankit"] * flops["gankit"] / 1e9, 1),
    }
    if data.is_image and s.device.type == "cpu":
        dts = ["fp32"] + (["bf16"] if precision.native_bf16(s.device) else [])
        row.update(biggest_conv(g_ref, d_ref, x[:batch], torch.randn(batch, cfg.model.z_dim), dts))
    if compile_too:
        row.update(_compiled(cfg, data, batch, steps, windows))
    return row


def _compiled(cfg: Any, data: Any, batch: int, steps: int, windows: int) -> dict[str, Any]:
    """gankit's step with train.compile=true: images/s and the compile time (first steps)."""
    import copy

    from .training import precision
    from .training.state import new_state
    from .training.step import train_step

    c = copy.deepcopy(cfg)
    c.train.compile = True
    s = new_state(c, data.shape, len(data))
    xs = precision.to_layout(data.x.to(s.device), c.train.channels_last)
    t0 = time.perf_counter()
    for _ in range(3):  # the first calls compile (and recompile once for the G step's graph)
        train_step(s, xs)
    compile_s = time.perf_counter() - t0
    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            train_step(s, xs)
        rates.append(steps * batch / (time.perf_counter() - t0))
    return {"compiled_images_per_s": round(statistics.median(rates), 1), "compile_seconds": round(compile_s, 1)}


def run(recipes: list[str] | None = None, batch: int = 64, windows: int = 7, steps: int = 0,
        overrides: list[str] = (), compile_too: bool = False) -> dict[str, Any]:
    from .training import precision, threads

    torch.set_num_threads(threads.cores())
    dev = precision.device_of("auto")
    dts = ["fp32"] + (["bf16"] if precision.native_bf16(dev) else [])
    return {
        "machine": {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "native_bf16": precision.native_bf16(dev),
                    "device": str(dev), "threads": torch.get_num_threads(), "torch": torch.__version__,
                    **(machine_rates(dts) if dev.type == "cpu" else {})},
        "rows": [measure(r, batch, windows, steps, overrides=list(overrides), compile_too=compile_too)
                 for r in (recipes or RECIPES)],
    }


def format_speed(res: dict[str, Any]) -> str:
    m = res["machine"]
    rates = ", ".join(f"{k.split('_')[1]} matmul {v:g} GFLOP/s" for k, v in m.items() if k.startswith("matmul"))
    lines = [f"{m['device']} ({m['cpu_capability']}, native bf16: {m['native_bf16']}), {m['threads']} threads, "
             f"torch {m['torch']}; {rates}",
             "| recipe | reference img/s | gankit img/s | speedup | gankit choice | GFLOP/img ref / gankit "
             "| GFLOP/s ref / gankit (effective) | biggest conv: GFLOP/s fp32 / bf16 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        layout = "channels_last" if r["channels_last"] == "on" else "contiguous"
        choice = f"{r['precision']}, {layout}, {r['optimizer']} Adam"
        conv = f"{r.get('conv_fp32', '-')} / {r.get('conv_bf16', '-')}" if "conv" in r else "-"
        lines.append(f"| {r['recipe']} | {r['reference_images_per_s']:g} | {r['gankit_images_per_s']:g} | "
                     f"**{r['speedup']:.2f}x** | {choice} | {r['reference_gflop_per_image']:.3g} / "
                     f"{r['gankit_gflop_per_image']:.3g} | {r['reference_gflops']:g} / "
                     f"{r['gankit_effective_gflops']:g} | {conv} |")
        if "compiled_images_per_s" in r:
            lines.append(f"| {r['recipe']} + compile | | {r['compiled_images_per_s']:g} | "
                         f"{r['compiled_images_per_s'] / r['reference_images_per_s']:.2f}x | compile "
                         f"{r['compile_seconds']:g} s | | | |")
    return "\n".join(lines)


# thread settings compared by `gankit bench speed --contended`: (label, train.threads, environment)
CONTENDED_SETTINGS = [
    # before: every core, libgomp's default spin (300 000 before a waiting thread sleeps)
    ("all cores, libgomp's spin (before)", -1, {"GOMP_SPINCOUNT": "300000"}),
    ("all cores, short spin", -1, {}),
    ("1 thread", 1, {}),
    ("gankit default (autotuned)", 0, {}),
]


def contended(recipes: list[str] | None = None, seconds: float = 8.0, out: Any = None) -> dict[str, Any]:
    """Each recipe trained for `seconds` by `gankit train` in a fresh process under each thread
    setting, alone and beside one busy single-threaded process (a spinning Python loop, as any
    other program on a laptop): ms per step from the run's own log. fp32, fixed layout, so only
    the threads differ."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from .training import threads

    recipes = recipes or ["toy_ring", "dcgan_mnist_fast"]
    cores = threads.cores()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(out) if out else Path(tmp)
        for recipe in recipes:
            for label, n, env in CONTENDED_SETTINGS:
                row: dict[str, Any] = {"recipe": recipe, "setting": label}
                for busy in (False, True):
                    run = root / f"{recipe}-{len(rows)}-{int(busy)}"
                    cmd = [sys.executable, "-m", "gankit", "train", recipe, "--steps", "1000000", "--seconds",
                           str(seconds), "--out", str(run), "-q", "--set", f"train.threads={cores if n < 0 else n}",
                           "--set", "train.precision=fp32", "--set", "train.channels_last=off",
                           "--set", "train.tensorboard=false", "--set", "train.sample_every=0",
                           "--set", "train.ckpt_every=0", "--set", "train.log_every=0"]
                    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
                    try:
                        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
                    finally:
                        if hog is not None:
                            hog.kill()
                            hog.wait()
                    if r.returncode:
                        raise RuntimeError(f"{recipe} ({label}) failed: {r.stderr.strip()[-300:]}")
                    rows_ = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
                    start, end = rows_[0], rows_[-1]
                    steps = end["step"] - start["step"]
                    row["busy" if busy else "alone"] = round(1e3 * end["seconds"] / max(steps, 1), 2)
                    row["threads"] = start["threads"]
                row["slowdown"] = round(row["busy"] / row["alone"], 2)
                rows.append(row)
    return {"machine": {"cores": cores, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                        "torch": torch.__version__}, "seconds": seconds, "rows": rows}


def format_contended(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"{m['cores']} usable cores ({m['cpu_capability']}), torch {m['torch']}; each cell: ms per step over "
             f"{res['seconds']:g} s of `gankit train` (fp32), alone and beside one busy single-threaded process",
             "| recipe | threads | ms/step alone | ms/step beside a busy process | slowdown |", "|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['recipe']} | {r['setting']} ({r['threads']}) | {r['alone']:g} | {r['busy']:g} | "
                     f"**{r['slowdown']:g}x** |")
    return "\n".join(lines)
