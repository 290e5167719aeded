"""How a run executes, as opposed to what it computes: device, autocast precision, memory layout,
loss scaling and compiled nets. Below the update (step.py and state.py use it); the autotuner
that picks precision and layout for a machine is above it, in autotune.py.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import Tensor, nn

from ..config import Config
from ..errors import ConfigError

log = logging.getLogger("gankit")

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def device_of(name: str) -> torch.device:
    """The torch device for train.device; `auto` is CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but this machine has no CUDA device (torch sees none)")
    return dev


def native_bf16(device: torch.device) -> bool:
    """Does this device compute bf16 in hardware (not emulated)?"""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision in DTYPES:
        return torch.autocast(device.type, DTYPES[precision])
    return contextlib.nullcontext()


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def apply_layout(net: nn.Module, channels_last: str) -> nn.Module:
    if channels_last == "on":
        net.to(memory_format=torch.channels_last)
    return net


def to_layout(x: Tensor, channels_last: str) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last == "on" and x.dim() == 4 else x


def compile_nets(g: nn.Module, d: nn.Module, cfg: Config) -> list[str]:
    """torch.compile G and D in place (state-dict keys unchanged). D is left eager when a
    regulariser differentiates through it twice (GP, R1, unrolling): compiled graphs do not
    support double backward. Returns the names of the compiled nets."""
    done = ["G"]
    g.compile()
    if not (cfg.reg.gp_weight > 0 or cfg.reg.r1_gamma > 0 or cfg.train.unroll):
        d.compile()
        done.append("D")
    return done
