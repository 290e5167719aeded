"""The training driver: steps, logging, sample grids, checkpoints, limits and health checks."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import config as config_mod
from ..checkpoint import read_checkpoint, save_atomic
from ..config import Config
from ..data import Dataset
from ..data import build as build_data
from ..data.prepared import Streamed
from ..errors import ConfigError, TrainingDiverged
from ..families import family_of, run_keys
from ..families import resolve as resolve_for_family
from ..monitor import health
from ..monitor.card import write_card
from ..monitor.images import grid, save_gif, save_png
from ..monitor.log import RunLog
from ..monitor.plots import loss_plot, scatter
from ..notes import note
from . import autotune, distributed, precision, rundir, threads
from .evalhook import periodic_eval
from .state import Sampler, TrainState, model_hash, new_state, state_from_checkpoint
from .step import StepOutput, train_step

log = logging.getLogger("gankit")

# keys a resumed run may change; anything else would make it a different run
# (device, precision and layout may change too, e.g. to continue a GPU run on a laptop; with a
# different precision the continuation is no longer bit-identical to an uninterrupted run)
RESUMABLE = {"train.steps", "train.seconds", "train.log_every", "train.sample_every", "train.ckpt_every",
             "train.keep_every", "train.threads", "train.tensorboard", "train.grid_n", "train.collapse_ratio",
             "train.collapse_after", "train.eval_every", "train.eval_n", "train.device", "train.precision",
             "train.channels_last", "train.compile", "train.workers"}


class Callback:
    """Hooks a run calls (public as `gankit.Callback`): subclass it and override what you need.
    The library itself never prints; `gankit.callbacks.Progress` is the progress bar. Under
    torchrun only rank 0's callbacks are called. Raising in a hook stops the run (no checkpoint
    is written for the unfinished steps)."""

    def on_start(self, state: TrainState, info: dict[str, Any]) -> None:
        """Before the first step. `state`: the TrainState (`state.step` is 0, or the checkpoint's
        step on resume; `state.cfg` the resolved Config; `state.g`, `state.d` the nets). `info`:
        the log's start row (event "start" or "resume", recipe, data, shape, threads, precision, ...)."""

    def on_step(self, state: TrainState) -> None:
        """After each training update; `state.step` counts updates done. Called every step: keep it
        cheap (no host sync on a GPU)."""

    def on_log(self, row: dict[str, Any]) -> None:
        """Every `train.log_every` steps: the row written to log.jsonl (step, d_loss, g_loss, the
        family's stats, lr_g, lr_d, images_per_s, elapsed_s, diversity, and "warning" when the
        collapse check fired)."""

    def on_end(self, result: RunResult) -> None:
        """After the last checkpoint: where the run lives, its last step, status (done |
        time_limit | interrupted), training seconds and images/s. Not called when the run failed."""

    def on_error(self) -> None:
        """Instead of on_end, when the run failed (it diverged, a write failed, a hook raised):
        release what on_start made (a progress bar); the error itself is raised to the caller."""


@dataclass
class RunResult:
    out: Path
    step: int
    status: str  # done | time_limit | interrupted
    seconds: float
    images_per_s: float


def _labels_hash(y: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(y.cpu().numpy().astype("int64").tobytes()).hexdigest()


def prepare(cfg: Config) -> tuple[Config, Dataset]:
    """Resolve the config for its family (foreign keys refused), build the data and let the
    family check it and freeze what it derives from it. A config without a recipe (`--data`
    alone) takes the one suited to the data (config.recipe_for_data), said in a note."""
    cfg = resolve_for_family(cfg)
    data = build_data(cfg.data)
    if cfg.recipe == config_mod.AUTO:
        name, why = config_mod.recipe_for_data(data.shape, len(data), streamed=not isinstance(data.x, torch.Tensor))
        note(f"recipe: {name} for {cfg.data.source}: {why}; another with `gankit train RECIPE --data ...`")
        cfg = resolve_for_family(config_mod.with_recipe(cfg, name))
    return cfg, family_of(cfg).prepare(cfg, data)


def fit(cfg: Config, out: Path, callbacks: list[Callback] | tuple = ()) -> RunResult:
    """Train a new run from a config into the folder `out`.

    Bad input (config, data) is refused before the folder is made; a folder holding another
    run, or in use by one, is refused (ConfigError); a run that fails before it trained leaves
    nothing behind."""
    out = Path(out)
    if out.exists():  # every process, before any joins: a refusal is one line on each
        rundir.check_new(out)
    cfg, data = prepare(cfg)
    world = _join(cfg)
    created = not out.exists()
    before = {name for name in rundir.RUN_FILES if (out / name).exists()}
    lock, refusal = None, None
    if world.main:
        try:
            out.mkdir(parents=True, exist_ok=True)
            lock = rundir.RunLock(out).acquire()
            rundir.check_new(out)  # again, under the lock: another run may have started meanwhile
        except ConfigError as e:
            refusal = str(e)
        except OSError as e:
            refusal = f"{out}: cannot make the run folder ({e.strerror or e})"
    refusal = distributed.broadcast(refusal, world)  # the others must not wait for a rank 0 that gave up
    if refusal:
        if lock is not None:
            lock.release()
        raise ConfigError(refusal)
    try:
        # rank 0 times the candidates and every process takes its choice, so all compute alike
        family = family_of(cfg)
        # (several processes split the cores: their thread count is not a choice to time)
        options = [torch.get_num_threads()] if world.active else None
        tuned = distributed.broadcast(
            autotune.autotune(cfg, data.x, data.y if family.uses_labels(cfg) else None, data.a, data.cond,
                              options) if world.main else None, world)
        cfg.train.device, cfg.train.precision, cfg.train.channels_last, cfg.train.threads = (
            str(precision.device_of(cfg.train.device)), tuned["precision"], tuned["channels_last"],
            tuned["threads"])
        torch.set_num_threads(cfg.train.threads)
        state = new_state(cfg, data.shape, len(data))
        family.init(state, data)
        if family.uses_labels(cfg) and data.y is not None:
            state.meta["labels_sha256"] = _labels_hash(data.y)
        if world.main:
            config_mod.save(cfg, out / "config.yaml", run_keys(cfg))
        return _run(state, data, out, callbacks, event="start", extra={"autotune": tuned})
    except BaseException as e:
        # a run that stopped before its first checkpoint: a diverged one keeps its log as the
        # record of what happened; any other failure leaves nothing of what it made (the whole
        # folder if it made it, else its own files), removed while the lock is still held
        if world.main and not isinstance(e, TrainingDiverged) and not (out / "checkpoints" / "latest.pt").exists():
            made = list(out.iterdir()) if created else [out / n for n in set(rundir.RUN_FILES) - before]
            for p in made:  # the lock file too: unlinking a locked file is allowed (POSIX)
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            if created:
                with contextlib.suppress(OSError):
                    out.rmdir()
        raise
    finally:
        if lock is not None:
            lock.release()


def resume(run_dir: Path, overrides: list[str] = (), callbacks: list[Callback] | tuple = ()) -> RunResult:
    """Continue the run in `run_dir` exactly where its latest checkpoint stopped.

    Hand edits to the run's config.yaml are never silently lost: a changed key that a resume
    may change (RESUMABLE, e.g. train.steps) is applied and logged; any other is refused
    (ConfigError naming the keys)."""
    run_dir = Path(run_dir)
    ck_path = run_dir / "checkpoints" / "latest.pt"
    if not ck_path.exists():
        raise ConfigError(f"{run_dir}: no checkpoint to resume (expected {ck_path})")
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key not in RESUMABLE:
            raise ConfigError(f"cannot change {key} when resuming (it would not be the same run); "
                              f"allowed: {', '.join(sorted(RESUMABLE))}")
    world = distributed.from_env()
    lock = rundir.RunLock(run_dir).acquire() if world.main else None
    try:
        ck = read_checkpoint(ck_path)
        edits = _config_edits(run_dir, ck, overrides)
        state = state_from_checkpoint(ck_path, overrides=[*edits, *overrides], ck=ck)
        cfg, data = prepare(state.cfg)
        state.cfg = cfg
        if len(data) != state.sampler.n:
            raise ConfigError(f"{cfg.data.source} now has {len(data)} examples, the run was trained on "
                              f"{state.sampler.n}")
        recorded = state.meta.get("labels_sha256")
        if recorded and data.y is not None and _labels_hash(data.y) != recorded:
            # a changed labels file, or k-means clusters (model.clusters) that came out differently
            # (another scikit-learn): the run would go on against other labels than it started with
            raise ConfigError(f"{cfg.data.source}: the labels the run trains on differ from those at its start "
                              "(changed labels, or self-conditioning clusters that came out differently); "
                              "start a new run")
        world = _join(cfg)
        env = threads.requested(0)
        if env and env != cfg.train.threads and not any(o.split("=")[0].strip() == "train.threads" for o in overrides):
            note(f"OMP_NUM_THREADS={env} is not applied: this run computes with train.threads={cfg.train.threads}, "
                 f"frozen at its start (the count changes the arithmetic); --set train.threads={env} changes it")
        extra: dict[str, Any] = {}
        if world.main:
            dropped = rundir.tidy_for_resume(run_dir, state.step)
            extra = {k: v for k, v in (("config_edits", edits), ("dropped_log_rows", dropped)) if v}
            config_mod.save(cfg, run_dir / "config.yaml", run_keys(cfg))
        return _run(state, data, run_dir, callbacks, event="resume", extra=extra)
    finally:
        if lock is not None:
            lock.release()


def _config_edits(run_dir: Path, ck: dict[str, Any], overrides: list[str]) -> list[str]:
    """`key=value` for each RESUMABLE key the user changed in config.yaml by hand (and did not
    also --set); ConfigError naming any other changed key."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.exists():
        return []
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        edited = config_mod.from_dict(raw)
    except (yaml.YAMLError, ConfigError, OSError) as e:
        raise ConfigError(f"{path}: cannot read it ({str(e).splitlines()[0]}); restore it, or delete it to "
                          "resume with the checkpoint's settings") from None
    saved = config_mod.from_dict(ck["config"])
    given = {item.split("=", 1)[0].strip() for item in overrides}
    changed = {}
    for sec, body in raw.items():
        if not isinstance(body, dict):
            continue
        for k in body:
            key = f"{sec}.{k}"
            a, b = getattr(getattr(saved, sec), k), getattr(getattr(edited, sec), k)
            if a != b and key not in given:
                changed[key] = (a, b)
    frozen = {k: v for k, v in changed.items() if k not in RESUMABLE}
    if frozen:
        shown = "; ".join(f"{k}: {a!r} in the checkpoint, {b!r} in config.yaml" for k, (a, b) in frozen.items())
        raise ConfigError(f"{path} was edited after the checkpoint ({shown}); a resumed run continues as it "
                          "was: restore the file, or start a new run with the new settings")
    edits = [f"{k}={b}" for k, (_, b) in changed.items()]
    for item in edits:
        log.warning("applying the edit in %s: %s", path, item)
    return edits


def _join(cfg: Config) -> distributed.World:
    """Threads and the allocator for this process and, under torchrun, the process group."""
    threads.keep_freed_memory()
    world = distributed.from_env()
    distributed.check(cfg, world)
    distributed.init(world, distributed.device_for(world, precision.device_of(cfg.train.device)))
    _threads(cfg, world)
    return world


def _threads(cfg: Config, world: distributed.World) -> None:
    # never more compute threads than usable cores (affinity, cgroup quota): oversubscription
    # measured 4.5x slower; train.threads or OMP_NUM_THREADS fix the count (a single process
    # then takes the autotuner's choice: see fit)
    torch.set_num_threads(threads.requested(cfg.train.threads) or distributed.threads_for(world, threads.cores()))


class _NoLog:
    """The run log of processes other than rank 0."""

    def write(self, row: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class _StopFlag:
    """First Ctrl-C asks the loop to stop after the current step and save; a second one aborts."""

    def __init__(self) -> None:
        self.set = False
        self._old: Any = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _run(state: TrainState, data: Dataset, out: Path, callbacks, event: str,
         extra: dict[str, Any] | None = None) -> RunResult:
    cfg, t, world = state.cfg, state.cfg.train, state.world
    distributed.wrap(state)
    callbacks = callbacks if world.main else []  # only rank 0 reports, logs and writes files
    # a resumed run writes its steps after the checkpoint again: TensorBoard drops its old ones
    runlog = RunLog(out, t.tensorboard, purge_step=state.step + 1 if event == "resume" else None) \
        if world.main else _NoLog()
    if world.main:  # the config as TensorBoard hyper-parameters (written at the end, with the last scores)
        runlog.hparams(cfg.to_dict(run_keys(cfg)))
    x = precision.to_layout(data.x.to(state.device), t.channels_last)  # the in-memory data lives on the device
    if isinstance(x, Streamed):  # a prepared memory-mapped set: worker processes read the next batches
        x.stream(_upcoming(state), workers=t.workers)
    if world.active and not state.family.distributed:
        raise ConfigError(f"model {cfg.model.name} ({state.family.name}) trains in one process, not {world.size}")
    if state.task:
        if data.a is not None:
            state.inputs = precision.to_layout(data.a.to(state.device), t.channels_last)
    if data.cond is not None:
        state.cond = data.cond.to(state.device)
    labels = data.y.to(state.device) if state.family.uses_labels(cfg) else None
    fixed_z = torch.randn(t.grid_n, cfg.model.z_dim, generator=torch.Generator().manual_seed(t.seed + 2))
    info = {"event": event, "step": state.step, "steps": t.steps, "recipe": cfg.recipe, "data": cfg.data.source,
            "shape": list(data.shape), "n_data": len(data), "threads": torch.get_num_threads(),
            "model_hash": model_hash(cfg, state.shape), "cpu": torch.backends.cpu.get_cpu_capability(),
            "device": t.device, "precision": t.precision, "channels_last": t.channels_last,
            "optimizer": cfg.optim.impl, "compile": t.compile, "processes": world.size,
            "startup_s": threads.process_age(), **(extra or {})}
    runlog.write(info)
    for cb in callbacks:
        cb.on_start(state, info)
    status, start, t0, window_steps = "done", None, time.perf_counter(), 0
    nonfinite = torch.zeros((), dtype=torch.bool)
    # a fixed random real batch as the diversity reference (data may be sorted by class)
    real_ref = data.x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[: t.batch]]
    collapse = health.CollapseMonitor(real_ref, t.collapse_ratio, t.collapse_after)
    last_good = state.step
    res: StepOutput | None = None
    result: RunResult | None = None
    try:
        with _StopFlag() as stop:
            while t.steps == 0 or state.step < t.steps:
                if start is None:
                    start = t0 = time.perf_counter()
                logging_now = t.log_every and (state.step + 1) % t.log_every == 0
                first = t.compile and state.step == info["step"]
                res = train_step(state, x, stats=bool(logging_now), labels=labels)
                if first:  # the first step of a compiled run includes compiling G and D
                    runlog.write({"event": "compiled", "step": state.step,
                                  "seconds": round(time.perf_counter() - start, 1)})
                # accumulate instead of checking each step: no host sync in the hot loop on GPUs
                nonfinite |= ~torch.isfinite(res.d_loss) | ~torch.isfinite(res.g_loss)
                window_steps += 1
                for cb in callbacks:
                    cb.on_step(state)
                if logging_now:
                    _check_finite(nonfinite, res, state, last_good, runlog, out)
                    now = time.perf_counter()
                    ips = window_steps * t.batch / max(now - t0, 1e-9)
                    row = _log_row(state, res, ips, now - start, collapse)
                    t0, window_steps = now, 0
                    runlog.write(row)
                    for cb in callbacks:
                        cb.on_log(row)
                if world.main and t.sample_every and state.step % t.sample_every == 0:
                    _sample_grid(state, data, fixed_z, out, runlog)
                if world.main and t.eval_every and state.step % t.eval_every == 0:
                    periodic_eval(state, data, out, runlog)
                if t.ckpt_every and state.step % t.ckpt_every == 0:
                    _check_finite(nonfinite, res, state, last_good, runlog, out)
                    _checkpoint(state, out, runlog)
                    last_good = state.step
                # processes stop together: the first to see Ctrl-C or the time limit decides for all
                interrupted, time_up = distributed.any_true(
                    [stop.set, bool(t.seconds and time.perf_counter() - start >= t.seconds)], world)
                if interrupted:
                    status = "interrupted"
                    break
                if time_up:
                    status = "time_limit"
                    break
            if res is not None and state.step > last_good:
                _check_finite(nonfinite, res, state, last_good, runlog, out)
            missing = not (out / "checkpoints" / "latest.pt").exists() if world.main else None
            if state.step > last_good or distributed.broadcast(missing, world):
                _checkpoint(state, out, runlog)
        elapsed = time.perf_counter() - start if start else 0.0
        steps_done = state.step - info["step"]
        result = RunResult(out, state.step, status, elapsed, steps_done * t.batch / elapsed if elapsed else 0.0)
        if world.main and t.sample_every and (not list((out / "samples").glob("step-*.png"))
                                              or state.step % t.sample_every):
            _sample_grid(state, data, fixed_z, out, runlog)
        if world.main:
            _finish(out)
        end = {"event": "end", "step": state.step, "status": status, "seconds": round(elapsed, 2),
               "images_per_s": round(result.images_per_s, 1)}
        if isinstance(x, Streamed):
            end["batches"] = {"prefetched": x.prefetched, "read_in_step": x.direct}
        runlog.write(end)
        if world.main:
            write_card(out)
    finally:
        runlog.close()
        if isinstance(x, Streamed):
            x.stop()
        if result is None:  # the run failed (diverged, a write failed): no bar left open in a notebook
            for cb in callbacks:
                cb.on_error()
    for cb in callbacks:
        cb.on_end(result)
    return result


def _upcoming(state: TrainState):
    """The data indices the step will ask for next, in order, from a copy of the sampler."""
    sampler = Sampler(state.sampler.n, state.sampler.seed)
    sampler.load_state_dict(state.sampler.state_dict())
    while True:
        yield distributed.shard(sampler.next(state.cfg.train.batch), state.world)


def _check_finite(flag: torch.Tensor, res: StepOutput, state: TrainState, last_good: int, runlog: RunLog,
                  out: Path) -> None:
    """Stop a diverged run: a non-finite loss since the last check, or (losses can stay finite
    while Adam's state overflows: lr 100 left D's state all inf and the run "done") a non-finite
    weight or optimiser state. Called at log rows and checkpoints only (a pass over the tensors)."""
    what = ""
    if bool(flag):
        what = f"loss became non-finite (d_loss={float(res.d_loss):.4g}, g_loss={float(res.g_loss):.4g})"
    else:
        what = _nonfinite_state(state)
    if distributed.any_true([bool(what)], state.world)[0]:  # every process stops if any diverged
        if (out / "checkpoints" / "latest.pt").exists():
            kept = f"the last good checkpoint (step {last_good}) is kept"
        else:
            kept = (f"no checkpoint was saved before it (the log is in {out / 'log.jsonl'}; delete {out} to "
                    "start again)")
        msg = (f"{what or 'another process diverged'} between steps {last_good} and {state.step}; stopped: "
               f"{kept}; try a lower learning rate, gradient clipping or a penalty")
        runlog.write({"event": "diverged", "step": state.step, "message": msg})
        raise TrainingDiverged(msg)


def _nonfinite_state(state: TrainState) -> str:
    """The first net whose weights or optimiser state hold NaN/inf, in words; "" when all are finite."""
    for name, net, opt in (("G", state.g, state.opt_g), ("D", state.d, state.opt_d)):
        params = list(net.parameters())
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            return f"{name}'s weights became non-finite"
        for group in opt.state.values():
            for k, v in group.items():
                if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
                    return f"{name}'s optimiser state ({k}) became non-finite"
    return ""


def _log_row(state: TrainState, res: StepOutput, ips: float, elapsed: float,
             collapse: health.CollapseMonitor) -> dict[str, Any]:
    # each process's losses are of its slice of the batch; the log shows the global batch's
    d_loss, g_loss = distributed.mean([float(res.d_loss), float(res.g_loss)], state.world)
    row: dict[str, Any] = {"event": "log", "step": state.step, "d_loss": d_loss, "g_loss": g_loss}
    row.update({k: float(v) for k, v in res.stats.items()})
    row["lr_g"] = state.opt_g.param_groups[0]["lr"]
    row["lr_d"] = state.opt_d.param_groups[0]["lr"]
    row["images_per_s"] = round(ips, 1)
    row["elapsed_s"] = round(elapsed, 2)
    if res.fake is not None:
        ratio, collapsed, msg = collapse.check(res.fake.float().cpu(), state.step)
        row["diversity"] = round(ratio, 4)
        row["collapsed"] = collapsed
        if msg:  # said once per episode; the ratio is logged every row
            log.warning(msg)
            if collapsed:
                row["warning"] = msg
    return row


def _sample_grid(state: TrainState, data: Dataset, fixed_z: torch.Tensor, out: Path, runlog: RunLog) -> None:
    path = out / "samples" / f"step-{state.step:07d}.png"
    img = state.family.preview(state, data, fixed_z)
    if img is not None:  # the family's own grid (image-to-image: inputs, outputs, targets)
        save_png(img, path, {"model_hash": model_hash(state.cfg, state.shape), "step": str(state.step)})
    elif data.is_image:
        x = state.generate(fixed_z)
        save_png(grid(x), path, {"model_hash": model_hash(state.cfg, state.shape), "step": str(state.step),
                                 "seed": str(state.cfg.train.seed + 2), "ema": str(state.g_ema is not None)})
    else:  # a scatter plot needs more points than a grid has images
        x = state.generate(torch.randn(1000, state.cfg.model.z_dim, generator=torch.Generator().manual_seed(7)))
        scatter(x, data.x[:2000], path, f"step {state.step}")
    runlog.image("samples", path, state.step)


def _checkpoint(state: TrainState, out: Path, runlog: RunLog) -> None:
    sd = state.state_dict()  # every process takes part (it gathers their RNG states); rank 0 writes
    if not state.world.main:
        return
    save_atomic(sd, out / "checkpoints" / "latest.pt")
    keep = state.cfg.train.keep_every
    if keep and state.step % keep == 0:
        save_atomic(sd, out / "checkpoints" / f"step-{state.step:07d}.pt")
    runlog.write({"event": "checkpoint", "step": state.step})


def _finish(out: Path) -> None:
    """Progress GIF from the fixed-z grids, and the loss plot."""
    from PIL import Image

    frames = sorted((out / "samples").glob("step-*.png"))
    if len(frames) > 60:  # keep the GIF small: evenly spaced frames plus the last one
        stride = len(frames) / 60
        frames = [frames[int(i * stride)] for i in range(60)] + [frames[-1]]
    images = []
    for p in frames:
        with Image.open(p) as im:
            images.append(im.copy())
    save_gif(images, out / "progress.gif")
    loss_plot(out / "log.jsonl", out / "losses.png")
