"""TrainState: everything that must survive a restart, and its atomic checkpoint.

A checkpoint holds G, D, EMA, optimisers, schedulers, step counters, every RNG state, the data
cursor and the resolved config; `--resume` from it continues bit-identically.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import config as config_mod
from ..checkpoint import FORMAT, load_module, read_checkpoint
from ..config import Config
from ..errors import CheckpointError, ConfigError
from ..families import family_of, run_keys
from ..losses import LossSpec, losses
from ..nets.registry import build_run
from . import distributed, precision
from .ema import make_ema

log = logging.getLogger("gankit")


class Sampler:
    """Epoch-wise random permutations of an in-memory dataset, resumable by (epoch, pos)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch, self.pos = n, seed, 0, 0
        self._perm: Tensor | None = None

    def _permutation(self) -> Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(self.n, generator=g)
        return self._perm

    def next(self, b: int) -> Tensor:
        if self.pos + b > self.n:  # drop the ragged end: every batch has b examples
            self.epoch, self.pos, self._perm = self.epoch + 1, 0, None
        idx = self._permutation()[self.pos: self.pos + b]
        self.pos += b
        return idx

    def state_dict(self) -> dict[str, int]:
        return {"n": self.n, "seed": self.seed, "epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, s: dict[str, int]) -> None:
        if s["n"] != self.n:
            raise CheckpointError(f"checkpoint was trained on {s['n']} examples, the data now has {self.n}")
        self.seed, self.epoch, self.pos, self._perm = s["seed"], s["epoch"], s["pos"], None


@dataclass
class TrainState:
    cfg: Config
    shape: tuple[int, ...]
    g: nn.Module
    d: nn.Module
    g_ema: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler | None
    sched_d: torch.optim.lr_scheduler.LRScheduler | None
    sampler: Sampler
    noise: torch.Generator  # z for training; separate from the global RNG used by dropout and GP
    loss: LossSpec
    step: int = 0  # generator steps done
    d_steps: int = 0  # discriminator steps done (lazy R1 counts these)
    meta: dict[str, Any] = field(default_factory=dict)
    growing: list[nn.Module] = field(default_factory=list)  # modules that follow the step (ProGAN's stages)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    scaler_g: torch.amp.GradScaler | None = None  # fp16 loss scaling (None otherwise)
    scaler_d: torch.amp.GradScaler | None = None
    # the modules the step calls: G and D themselves, or their DistributedDataParallel wrappers
    g_run: nn.Module | None = None
    d_run: nn.Module | None = None
    world: distributed.World = field(default_factory=distributed.World)  # this process in a torchrun launch
    inputs: Tensor | None = None  # image-to-image: the inputs A (on the device); the step's data are B
    cond: Tensor | None = None  # per-example conditions of the data (caption levels), on the device
    aux: dict[str, Any] = field(default_factory=dict)  # per-process helpers (feature net, image pools)
    d_ema: nn.Module | None = None  # EMA of D (train.d_ema_beta), for families whose product is D

    def __post_init__(self) -> None:
        self.family = family_of(self.cfg)
        self.phases = self.family.phases(self.cfg)  # once per run, not in every step
        self.g_run = self.g_run or self.g
        self.d_run = self.d_run or self.d
        self.d_params = list(self.d.parameters())  # toggled every step; a module walk costs ~7 % of a toy step
        # per G phase, what it freezes: D's parameters (G's loss needs D's input gradients, not its
        # weights'), and with `only` the rest of G; listed once, not per step
        self.frozen = {p.name: self.d_params + [q for n, q in self.g.named_parameters()
                                                if p.only and q.requires_grad and not n.startswith(p.only + ".")]
                       for p in self.phases if p.net == "g"}

    # Batches are drawn for the global batch on every process and sliced (distributed.shard), so
    # N processes see exactly the examples and z one process would.
    def sample_z(self, n: int) -> Tensor:
        """z for n examples of the global batch (this process's slice of them). Drawn on the CPU
        whatever the device: one RNG stream, so runs agree across devices and resume exactly."""
        z = torch.randn(n, self.cfg.model.z_dim, generator=self.noise)
        return distributed.shard(z, self.world).to(self.device, non_blocking=True)

    def sample_y(self, n: int) -> Tensor:
        """Uniform class labels for fakes of a conditional model, from the same generator as z."""
        y = torch.randint(self.cfg.model.n_classes, (n,), generator=self.noise)
        return distributed.shard(y, self.world).to(self.device, non_blocking=True)

    def batch_indices(self, n: int) -> Tensor:
        """The next n data indices of the epoch (this process's slice of them)."""
        return distributed.shard(self.sampler.next(n), self.world)

    @property
    def task(self) -> bool:
        """An image-to-image model (pix2pix, srgan, inpaint, cyclegan), not z -> x."""
        return self.family.translates

    @property
    def acgan(self) -> bool:
        return self.cfg.model.cond == "acgan"

    @torch.no_grad()
    def generate(self, z: Tensor, batch: int = 500) -> Tensor:
        """Samples for looking and scoring: the EMA G if there is one, in eval mode (BatchNorm uses
        running statistics and is not updated), without touching any training RNG. A conditional
        G sweeps the classes (row i gets class i mod K). Returned on the CPU in fp32."""
        g = self.g_ema if self.g_ema is not None else self.g
        was = g.training
        g.eval()
        try:
            return torch.cat([g(z[i: i + batch].to(self.device)).float().cpu() for i in range(0, len(z), batch)])
        finally:
            g.train(was)

    # --- checkpoint -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        return {
            "format": FORMAT,
            "config": self.cfg.to_dict(run_keys(self.cfg)),  # the shared sections and the family's own
            "shape": list(self.shape),
            "model_hash": model_hash(self.cfg, self.shape),
            "step": self.step,
            "d_steps": self.d_steps,
            "g": self.g.state_dict(),
            "d": self.d.state_dict(),
            "g_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "d_ema": self.d_ema.state_dict() if self.d_ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict() if self.sched_g else None,
            "sched_d": self.sched_d.state_dict() if self.sched_d else None,
            "scalers": [sc.state_dict() for sc in (self.scaler_g, self.scaler_d)] if self.scaler_g else None,
            "sampler": self.sampler.state_dict(),
            "rng": {
                "noise": self.noise.get_state(),
                "torch": torch.get_rng_state(),
                "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                          "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
                "python": random.getstate(),
            },
            "meta": self.meta,
            "pools": {k: torch.cat(p.images) for k, p in self.aux["pools"].items() if p.images}
            if "pools" in self.aux else None,  # CycleGAN's fake histories
            # each process's torch RNG (dropout, GP's interpolation); all processes must call state_dict
            "rng_ranks": distributed.gather(torch.get_rng_state(), self.world) if self.world.active else None,
        }

    def load_state_dict(self, ck: dict[str, Any], path: Path) -> None:
        load_module(self.g, ck["g"], "G", path)
        load_module(self.d, ck["d"], "D", path)
        if self.g_ema is not None:
            load_module(self.g_ema, ck["g_ema"] if ck["g_ema"] is not None else ck["g"], "EMA G", path)
        if self.d_ema is not None:
            load_module(self.d_ema, ck["d_ema"] if ck.get("d_ema") is not None else ck["d"], "EMA D", path)
        self.opt_g.load_state_dict(ck["opt_g"])
        self.opt_d.load_state_dict(ck["opt_d"])
        if self.sched_g and ck["sched_g"]:
            self.sched_g.load_state_dict(ck["sched_g"])
            self.sched_d.load_state_dict(ck["sched_d"])  # type: ignore[union-attr]
        if self.scaler_g is not None and ck.get("scalers"):
            self.scaler_g.load_state_dict(ck["scalers"][0])
            self.scaler_d.load_state_dict(ck["scalers"][1])  # type: ignore[union-attr]
        self.sampler.load_state_dict(ck["sampler"])
        rng = ck["rng"]
        self.noise.set_state(rng["noise"])
        ranks = ck.get("rng_ranks")
        if self.world.active and ranks and len(ranks) == self.world.size:
            torch.set_rng_state(ranks[self.world.rank])
        else:
            torch.set_rng_state(rng["torch"])
        n = rng["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
        random.setstate(_tuplify(rng["python"]))
        self.step, self.d_steps = int(ck["step"]), int(ck["d_steps"])
        self.meta = dict(ck.get("meta") or {})
        self.aux.pop("pools", None)
        if ck.get("pools"):
            self.aux["pool_state"] = ck["pools"]


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def model_hash(cfg: Config, shape: tuple[int, ...]) -> str:
    """Identifies the architecture (model section + data shape), not the weights."""
    # only options that differ from their defaults: a new model option (default off) leaves the
    # hashes of existing runs, and so their resume checks, unchanged
    default = type(cfg.model)()
    fields_ = {k: v for k, v in vars(cfg.model).items() if k == "name" or v != getattr(default, k)}
    key = repr((sorted(fields_.items()), tuple(shape)))
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _scheduler(opt: torch.optim.Optimizer, cfg: Config) -> torch.optim.lr_scheduler.LRScheduler | None:
    o = cfg.optim
    if o.lr_decay == "none":
        return None
    if o.lr_decay == "linear":
        horizon = max(1, o.decay_steps)
        start = o.decay_start * horizon  # improved-gan decays over the last third only (decay_start 2/3)
        # decay_start 0 computes exactly the old 1 - s / horizon
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, max(0.0, 1.0 - (s - start) / (horizon - start))))
    return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=o.decay_gamma)


def new_state(cfg: Config, shape: tuple[int, ...], n_data: int) -> TrainState:
    """Build nets, optimisers and RNGs from a resolved config; seeded by cfg.train.seed."""
    seed = cfg.train.seed
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    if cfg.optim.lr_decay == "linear" and cfg.optim.decay_steps == 0:
        cfg.optim.decay_steps = cfg.train.steps  # frozen into the saved config, so resume agrees
    try:
        g, d = build_run(cfg, shape)
    except ValueError as e:
        raise ConfigError(f"model {cfg.model.name}: {e}") from None
    t = cfg.train
    _concrete(cfg)  # fit() times candidates first (autotune.autotune); here "auto" gets the untimed safe choice
    world = distributed.from_env()
    device = distributed.device_for(world, precision.device_of(t.device))
    for net in (g, d):
        precision.apply_layout(net.to(device), t.channels_last)
    o = cfg.optim
    impl = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[o.impl]
    # L2 penalty on D's weights through the optimiser (the course's "penalise D weights")
    opt_g = torch.optim.Adam(g.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2), eps=o.eps, **impl)
    opt_d = torch.optim.Adam(d.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2), eps=o.eps,
                             weight_decay=o.weight_decay_d, **impl)
    # real and fake may share one D forward unless D has BatchNorm, whose batch statistics
    # would then mix real and fake examples: that would change the algorithm, not just its speed
    # (minibatch discrimination / std layers mix the batch in the same way)
    d.concat_ok = not any(isinstance(m, nn.modules.batchnorm._BatchNorm) or getattr(m, "mixes_batch", False)
                          for m in d.modules())
    if cfg.train.batch > n_data:
        raise ConfigError(f"train.batch={cfg.train.batch} is larger than the dataset ({n_data} examples)")
    g_ema = make_ema(g) if cfg.train.ema_beta > 0 else None
    d_ema = make_ema(d) if cfg.train.d_ema_beta > 0 else None
    if t.compile:
        precision.compile_nets(g, d, cfg)
    return TrainState(
        cfg=cfg, shape=tuple(shape), g=g, d=d,
        g_ema=g_ema, d_ema=d_ema, device=device, world=world,
        scaler_g=precision.grad_scaler(device, t.precision), scaler_d=precision.grad_scaler(device, t.precision),
        opt_g=opt_g, opt_d=opt_d, sched_g=_scheduler(opt_g, cfg), sched_d=_scheduler(opt_d, cfg),
        sampler=Sampler(n_data, seed), noise=torch.Generator().manual_seed(seed + 1),
        loss=losses.get(cfg.loss.name),
        growing=[m for m in (*g.modules(), *d.modules()) if hasattr(m, "set_step")],
    )


def state_from_checkpoint(path: Path, n_data: int | None = None, overrides: list[str] = (),
                          ck: dict[str, Any] | None = None) -> TrainState:
    """Rebuild a run's state from a checkpoint, with `overrides` (section.key=value) applied first.
    `ck`: the checkpoint already read from `path` (read here otherwise)."""
    ck = ck if ck is not None else read_checkpoint(path)
    cfg = config_mod.from_dict(ck["config"])
    config_mod.apply_overrides(cfg, list(overrides))
    shape = tuple(ck["shape"])
    if model_hash(cfg, shape) != ck.get("model_hash"):
        raise CheckpointError(f"{path}: its config does not describe the model it holds")
    _portable(cfg, path)
    state = new_state(cfg, shape, n_data if n_data is not None else ck["sampler"]["n"])
    state.load_state_dict(ck, path)
    return state


def _portable(cfg: Config, path: Path) -> None:
    """A checkpoint opens on any machine: a CUDA run continues on the CPU when there is no GPU.
    Resuming never re-times candidates; "auto" here means a run saved before these settings
    existed, which trained in fp32 with the default layout."""
    t = cfg.train
    if t.device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("%s was trained on %s; this machine has none, so it continues on the CPU", path, t.device)
        t.device = "cpu"
    _concrete(cfg)


def _concrete(cfg: Config) -> None:
    t = cfg.train
    t.device = str(precision.device_of(t.device))
    t.precision = "fp32" if t.precision == "auto" else t.precision
    t.channels_last = "off" if t.channels_last == "auto" else t.channels_last
