"""FLOPs of one real training update, counted by PyTorch's per-op formulas (for --dry-run)."""

from __future__ import annotations

import copy

import torch


def update_flops(cfg, data) -> float:
    """FLOPs per image of one training update of `cfg` on `data`, counted by PyTorch's FLOP
    counter on a real update (batch 2, fp32, throw-away state, every RNG restored): forward and
    backward of every pass of every phase, the feature net of a perceptual loss included."""
    from torch.utils.flop_counter import FlopCounterMode

    from .state import new_state
    from .step import train_step

    cfg = copy.deepcopy(cfg)
    cfg.train.batch, cfg.train.precision, cfg.train.channels_last, cfg.train.compile = 2, "fp32", "off", False
    cfg.train.device = "cpu"
    rng = torch.get_rng_state()
    try:
        s = new_state(cfg, data.shape, len(data))
        s.inputs, s.cond = data.a, data.cond
        labels = data.y if s.family.uses_labels(cfg) else None
        with FlopCounterMode(display=False) as fc:
            train_step(s, data.x, stats=False, labels=labels)
    finally:
        torch.set_rng_state(rng)
    return fc.get_total_flops() / 2
