"""The training update, written once for every model family.

A family (families/) declares its phases: each a loss and the net whose optimiser it steps.
This module does the rest for all of them, in the order below: backward (through the fp16 loss
scaler when there is one), gradient clipping or measuring, the optimiser step, D's weight
constraint, then once per update the schedulers, the EMAs (G's; D's where a family keeps one) and
the step counter. Freezing D in G's phases saves a third of D's backward (no parameter gradients
that nobody uses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .. import regularizers as R
from ..families import Batch
from . import precision
from .ema import ema_beta, update_ema
from .state import TrainState


@dataclass
class StepOutput:
    d_loss: Tensor
    g_loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)  # detached scalars; read at log time only
    fake: Tensor | None = None  # the G phase's fakes (detached), for sample-diversity checks


def train_step(s: TrainState, data: Tensor, stats: bool = False, labels: Tensor | None = None) -> StepOutput:
    """One update of the run's family: its phases in order, then schedulers, EMA and step count.

    `data` is the whole in-memory dataset (B images for image-to-image, whose inputs A are
    `s.inputs`); the phases draw batches with the resumable sampler. `labels` make a noise ->
    image step class-conditional. With stats=True gradient norms are measured too (costly, so
    only at log steps). Runs under the run's autocast precision; logits and losses stay fp32.
    """
    b = Batch(data, labels, s.inputs, s.cond, stats)
    for m in s.growing:  # nets that change with training progress (ProGAN's stages) follow the step
        m.set_step(s.step)
    with precision.autocast(s.device, s.cfg.train.precision):
        for phase in s.phases:
            if phase.when is not None and not phase.when(s.step):
                continue
            if phase.net == "d":
                loss = phase.loss(s, b)
                b.out["grad_norm_d"] = _optimise(loss, s.opt_d, s.d, s.scaler_d, s.cfg.optim.grad_clip, stats)
                if phase.d_update:
                    if s.cfg.reg.weight_clip > 0:  # WGAN's Lipschitz constraint (Arjovsky et al. 2017)
                        R.clip_weights(s.d, s.cfg.reg.weight_clip)
                    s.d_steps += 1
            else:
                frozen = s.frozen[phase.name]  # D's weights (and G's parts the phase does not train)
                _requires_grad(frozen, False)
                try:
                    loss = phase.loss(s, b)
                    b.out["grad_norm_g"] = _optimise(loss, s.opt_g, s.g, s.scaler_g, s.cfg.optim.grad_clip, stats)
                finally:
                    _requires_grad(frozen, True)
    for sched in (s.sched_g, s.sched_d):
        if sched is not None:
            sched.step()
    if s.g_ema is not None:
        update_ema(s.g_ema, s.g, ema_beta(s.step, s.cfg.train.ema_beta))
    if s.d_ema is not None:
        update_ema(s.d_ema, s.d, ema_beta(s.step, s.cfg.train.d_ema_beta))
    s.step += 1
    zero = torch.zeros((), device=s.device)
    return StepOutput(_detached(b.d_loss, zero), _detached(b.g_loss, zero),
                      {k: v for k, v in b.out.items() if v is not None},
                      b.fake.detach() if b.fake is not None else None)


def _optimise(loss: Tensor, opt: torch.optim.Optimizer, net: nn.Module, scaler: torch.amp.GradScaler | None,
              clip: float, stats: bool) -> Tensor | None:
    """Backward and optimiser step; with fp16 through the loss scaler (gradients are unscaled
    before clipping or measuring, and a step with inf/NaN gradients is skipped by the scaler).
    Returns the gradient norm when clipping or measuring, else None."""
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        norm = _clip_or_norm(net, clip, stats)
        opt.step()
        return norm
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    norm = _clip_or_norm(net, clip, stats)
    scaler.step(opt)
    scaler.update()
    return norm


def _clip_or_norm(net: nn.Module, max_norm: float, stats: bool) -> Tensor | None:
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm).detach()
    if stats:
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        return torch.nn.utils.get_total_norm(grads).detach() if grads else None
    return None


def _requires_grad(params: list[Tensor], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def _detached(x: Tensor | None, default: Tensor) -> Tensor:
    return x.detach() if x is not None else default
