"""Data-parallel training with PyTorch's own engine: torchrun starts the processes (on one or
several machines, c10d rendezvous), each process runs the same loop, G and D are wrapped in
DistributedDataParallel separately, and gradients are averaged by DDP's all-reduce.

Every process draws the *global* batch's indices and z from the same RNG streams and keeps its
own slice, so a run on N processes computes what one process computes with the same global
batch (exactly, for nets without batch statistics; BatchNorm normalises each process's slice
unless SyncBatchNorm is asked for, which PyTorch implements for GPUs only). Only rank 0 writes
logs, sample grids and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import ConfigError


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def from_env() -> World:
    """The process's place in a torchrun launch (WORLD_SIZE etc.); a plain run is World()."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def init(world: World, device: torch.device) -> None:
    """Join the process group torchrun set up (gloo on CPUs, NCCL on GPUs)."""
    if not world.active or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(minutes=30))


def device_for(world: World, device: torch.device) -> torch.device:
    """One GPU per process on a machine: cuda -> cuda:LOCAL_RANK."""
    if device.type == "cuda" and world.active and device.index is None:
        return torch.device("cuda", world.local_rank)
    return device


def threads_for(world: World, free: int) -> int:
    """Split the machine's free cores among its processes: oversubscription measured 4.5x slower."""
    return max(1, free // world.local_size)


def check(cfg: Any, world: World) -> None:
    t = cfg.train
    if not world.active:
        return
    for key in ("batch", "g_batch"):
        b = getattr(t, key)
        if b % world.size or (b // world.size) % cfg.model.pack:
            raise ConfigError(f"train.{key}={b} must split into {world.size} equal per-process batches "
                              f"(each divisible by model.pack={cfg.model.pack})")
    if t.sync_bn and not str(t.device).startswith("cuda"):
        raise ConfigError("train.sync_bn needs CUDA: PyTorch's SyncBatchNorm has no CPU implementation "
                          "(on CPUs each process normalises its own slice of the batch)")


def wrap(s: Any) -> None:
    """Wrap the state's G and D for the step (s.g_run, s.d_run); s.g and s.d stay the plain
    modules, so checkpoints, EMA and sampling do not change."""
    if not s.world.active:
        return
    if s.cfg.train.sync_bn:
        s.g = nn.SyncBatchNorm.convert_sync_batchnorm(s.g)  # parameters are kept, so the optimisers still hold them
        s.d = nn.SyncBatchNorm.convert_sync_batchnorm(s.d)
    ids = [s.device.index] if s.device.type == "cuda" else None
    # buffers are not broadcast: BatchNorm statistics stay per process (documented above), and
    # spectral norm's vectors are computed from identical weights, so they agree anyway
    s.g_run = nn.parallel.DistributedDataParallel(s.g, device_ids=ids, broadcast_buffers=False)
    s.d_run = nn.parallel.DistributedDataParallel(s.d, device_ids=ids, broadcast_buffers=False)


def shard(x: Tensor, world: World) -> Tensor:
    """This process's slice of a global batch."""
    if not world.active:
        return x
    n = len(x) // world.size
    return x[world.rank * n: (world.rank + 1) * n]


def any_true(flags: list[bool], world: World) -> list[bool]:
    """Each flag true on every process if it is true on any (all processes call this together)."""
    if not world.active:
        return flags
    t = torch.tensor([int(f) for f in flags])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def mean(values: list[float], world: World) -> list[float]:
    if not world.active:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / world.size).tolist()


def gather(obj: Any, world: World) -> list[Any]:
    if not world.active:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any, world: World) -> Any:
    if not world.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


def finish(world: World) -> None:
    if world.active and dist.is_initialized():
        # no rank tears gloo down while a peer may still be in a collective. (This alone did not
        # stop the rare abort at exit seen in make test; cli.cmd_train's os._exit did.)
        dist.barrier()
        dist.destroy_process_group()
