from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry

models: Registry = Registry("model")


def build(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """G and D of `cfg.name` for examples of `shape`, with D's mode-collapse remedies (PacGAN
    packing, a minibatch layer; nets/remedies.py), class conditioning (nets/conditional.py) and
    ensembles of several Ds or Gs (nets/ensembles.py) applied from the same config."""
    from .conditional import conditional, wrap_d
    from .ensembles import MixtureG, MultiD
    from .layers import finish
    from .remedies import Packed, with_minibatch_layer

    builder = models.get(cfg.name)
    shape = tuple(shape)
    if cfg.attention and cfg.name not in ("dcgan", "resnet"):
        raise ConfigError(f"model.attention (SAGAN block) exists for the dcgan and resnet nets, not {cfg.name}")

    def pair() -> tuple[nn.Module, nn.Module]:
        if getattr(builder, "conditional", False):  # nets conditional by their own design (SpecGAN)
            return builder(cfg, shape)
        if cfg.cond != "none":  # class-conditional G(z, y) and D(x, y)
            return conditional(builder, cfg, shape)
        g, d = builder(cfg, shape)
        if cfg.pack > 1:  # D for packs: m samples side by side along the first axis (channels / features)
            _, d = builder(cfg, (shape[0] * cfg.pack, *shape[1:]))
        return g, d

    def remedies(d: nn.Module) -> nn.Module:
        if cfg.minibatch != "none":
            d = with_minibatch_layer(d, cfg.minibatch, cfg.mbd_kernels, cfg.mbd_dim)
            finish(d[-1], "default", cfg.norm_d)  # spectral norm on the new last layer too, when D uses it
        if cfg.cond != "none" and not getattr(builder, "conditional", False):
            d = wrap_d(d, cfg, shape)
        return Packed(d, cfg.pack) if cfg.pack > 1 else d

    g, d = pair()
    d = remedies(d)
    if cfg.n_g > 1:  # each extra pair is built whole (its own init) and its D dropped
        g = MixtureG([g] + [pair()[0] for _ in range(cfg.n_g - 1)])
    if cfg.n_d > 1:
        d = MultiD([d] + [remedies(pair()[1]) for _ in range(cfg.n_d - 1)])
    g.z_dim = cfg.z_dim
    g.out_shape = shape
    return g, d


def build_run(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """A run's G and D from its whole config: the nets of cfg.model, with D wrapped by what other
    sections add to it (DiffAugment, `reg.diffaug`). Training and loading both build through
    here, so a checkpoint always fits the nets it is loaded into."""
    from ..errors import ConfigError
    from .remedies import Augmented

    g, d = build(cfg.model, shape)
    if cfg.reg.diffaug:
        if len(shape) != 3:
            raise ConfigError(f"reg.diffaug augments images; data of shape {tuple(shape)} are not images")
        d = Augmented(d, cfg.reg.diffaug)
    return g, d


@dataclass
class RunNets:
    """A run's nets rebuilt from its checkpoint: G (the EMA weights when asked and present) and D,
    in eval mode, with the config and data shape they were built from."""

    cfg: Any
    shape: tuple[int, ...]
    step: int
    g: nn.Module
    d: nn.Module
    ema: bool
    path: Path
    d_ema: bool = False  # D holds its EMA weights (train.d_ema_beta)


def from_checkpoint(path: Path, ema: bool = True) -> RunNets:
    """The nets of the checkpoint at `path` (with `ema`, the EMA weights of G and D where the run
    keeps them); one-line CheckpointErrors for a foreign, damaged or
    mismatched file (checkpoint.py)."""
    from ..checkpoint import load_module, read_checkpoint
    from ..config import from_dict

    ck = read_checkpoint(path)
    cfg = from_dict(ck["config"])
    shape = tuple(ck["shape"])
    g, d = build_run(cfg, shape)
    use_ema = ema and ck.get("g_ema") is not None
    load_module(g, ck["g_ema"] if use_ema else ck["g"], "EMA G" if use_ema else "G", path)
    use_d_ema = ema and ck.get("d_ema") is not None
    load_module(d, ck["d_ema"] if use_d_ema else ck["d"], "EMA D" if use_d_ema else "D", path)
    return RunNets(cfg, shape, int(ck["step"]), g.eval(), d.eval(), use_ema, path, use_d_ema)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def flops_per_example(g: nn.Module, d: nn.Module) -> dict[str, float]:
    """Forward FLOPs per example of G and D (multiply-add = 2 FLOPs), measured by PyTorch's counter.

    A training step costs about 3x forward (forward + backward) for each network pass.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from .conditional import default_labels

    was = g.training, d.training
    g.eval(), d.eval()
    try:
        with torch.no_grad():
            n = 2 * getattr(d, "pack", 1)  # a whole number of PacGAN packs
            z = torch.zeros(n, g.z_dim)
            with FlopCounterMode(display=False) as fc:
                x = g(z)
            fg = fc.get_total_flops() / n
            k = getattr(g, "n_classes", 0)  # a conditional D also takes labels
            with FlopCounterMode(display=False) as fc:
                d(x, default_labels(n, k)) if k else d(x)
            fd = fc.get_total_flops() / n
    finally:
        g.train(was[0]), d.train(was[1])
    return {"g_forward": fg, "d_forward": fd}


def image_shape(shape: tuple[int, ...], model: str) -> tuple[int, int]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"model {model} needs square images (C,H,W), got data of shape {shape}")
    return shape[0], shape[1]
