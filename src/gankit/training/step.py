"""The GAN update, readable on one screen: D step(s), G step, EMA update.

Variants plug in through the loss spec and the regulariser switches in the config; there is
no second copy of this loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import regularizers as R
from ..losses import bce_fake, bce_real
from . import speed
from .ema import ema_beta, update_ema
from .state import TrainState


@dataclass
class StepOutput:
    d_loss: Tensor
    g_loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)  # detached scalars; read at log time only
    fake: Tensor | None = None  # the G step's fakes (detached), for sample-diversity checks


def train_step(s: TrainState, data: Tensor, stats: bool = False, labels: Tensor | None = None) -> StepOutput:
    """One generator step and cfg.train.n_critic discriminator steps. `data` is the whole
    in-memory dataset; batches are indexed by the resumable sampler. `labels` (the data's class
    labels) make the step class-conditional: fakes are drawn for the real batch's labels, and D
    judges each image together with its label.

    With stats=True the output also carries gradient norms (costly, so only at log steps).
    Runs under the run's autocast precision (train.precision); logits and losses stay fp32.
    """
    with speed.autocast(s.device, s.cfg.train.precision):
        if s.task:  # image-to-image: its own update on (s.inputs, data) pairs
            from .tasks import task_step

            return task_step(s, data, stats)
        return _train_step(s, data, stats, labels)


def _train_step(s: TrainState, data: Tensor, stats: bool, labels: Tensor | None) -> StepOutput:
    t, reg = s.cfg.train, s.cfg.reg
    out: dict[str, Tensor] = {}
    for m in s.growing:  # nets that change with training progress (ProGAN's stages) follow the step
        m.set_step(s.step)

    # --- discriminator: n_critic steps, each on a new real batch and new fakes ---------------
    for i in range(t.n_critic):
        idx = s.batch_indices(t.batch)
        real, y = data[idx], (labels[idx] if labels is not None else None)
        z = s.sample_z(t.batch)
        reuse = i == t.n_critic - 1 and not t.g_fresh_z  # G step reuses the last fakes (+29 % cheaper)
        with torch.set_grad_enabled(reuse):
            fake = _g(s.g_run, z, y)
        d_loss = d_step(s, real, fake.detach(), y, out, stats)

    # --- generator ---------------------------------------------------------------------------
    y_fake = y
    if not reuse:
        n = t.g_batch or t.batch
        y_fake = s.sample_y(n) if labels is not None else None
        fake = _g(s.g_run, s.sample_z(n), y_fake)
    # the D that G's loss sees: D itself, or D after t.unroll differentiable steps (unrolled GAN).
    # Never D's DistributedDataParallel wrapper: D gets no gradients here, so nothing to sync.
    d_for_g = unrolled_d(s, data, labels, t.unroll) if t.unroll else s.d
    _requires_grad(s.d_params, False)  # no D parameter gradients in the G step: a third of D's backward
    noise = R.instance_noise_std(s.step, reg.instance_noise, reg.instance_noise_steps)
    real_logits = None
    if s.loss.g_needs_real:
        with torch.no_grad():
            real_logits = _disc(d_for_g, _noisy(real, noise), y)[0]
    fake_logits, fake_cls = _disc(d_for_g, _noisy(fake, noise), y_fake, aux=s.acgan)
    g_loss = _g_loss(s, fake_logits, real_logits)
    if fake_cls is not None:  # ACGAN: G also wants its fakes classified as the class it was asked for
        g_loss = g_loss + s.cfg.loss.aux_weight * F.cross_entropy(fake_cls, y_fake)
    out["grad_norm_g"] = _backward_step(g_loss, s.opt_g, s.g, s.scaler_g, s.cfg.optim.grad_clip, stats)
    _requires_grad(s.d_params, True)
    for sched in (s.sched_g, s.sched_d):
        if sched is not None:
            sched.step()
    if s.g_ema is not None:
        update_ema(s.g_ema, s.g, ema_beta(s.step, t.ema_beta))
    s.step += 1
    return StepOutput(d_loss.detach(), g_loss.detach(), {k: v for k, v in out.items() if v is not None},
                      fake.detach())


def d_step(s: TrainState, real: Tensor, fake: Tensor, y: Tensor | None, out: dict[str, Tensor],
           stats: bool) -> Tensor:
    """One D update on a real batch and fakes; `y` are the labels of both (conditional) or None."""
    reg, t = s.cfg.reg, s.cfg.train
    noise = R.instance_noise_std(s.step, reg.instance_noise, reg.instance_noise_steps)
    real, fake = _noisy(real, noise), _noisy(fake, noise)
    lazy_r1 = reg.r1_gamma > 0 and s.d_steps % reg.r1_every == 0
    if lazy_r1:
        real = real.detach().requires_grad_(True)

    if t.d_update == "split":
        # Keras tutorial style: two optimiser steps per D update, one on reals, one on fakes
        real_logits = s.d_run(real).float()
        loss_real = bce_real(real_logits, s.cfg.loss.real_label)
        _d_backward(s, loss_real + _r1(real_logits, real, reg, lazy_r1, out), out, stats)
        fake_logits = s.d_run(fake).float()
        loss_fake = bce_fake(fake_logits)
        _d_backward(s, loss_fake, out, stats)
        loss = 0.5 * (loss_real + loss_fake)
    else:
        (real_logits, fake_logits), cls = _d_forward(s.d_run, real, fake, y, s.acgan, s.d.concat_ok)
        kw = {"real_label": s.cfg.loss.real_label} if s.loss.label_smoothing else {}
        loss = _d_loss(s, real_logits, fake_logits, kw)
        total = loss + _r1(real_logits, real, reg, lazy_r1, out)
        if cls is not None:
            # ACGAN (Odena et al. 2017): D names the class of reals and of fakes (the class asked for)
            d_cls = F.cross_entropy(cls, torch.cat([y, y]))
            out["d_cls"] = d_cls.detach()
            total = total + s.cfg.loss.aux_weight * d_cls
        if reg.drift > 0:  # ProGAN: a Wasserstein critic's outputs would otherwise drift freely
            total = total + reg.drift * real_logits.pow(2).mean()
        if reg.gp_weight > 0:
            # reals and fakes share labels, so every interpolate has one well-defined label
            gp = R.gradient_penalty(lambda x: _disc(s.d_run, x, y)[0], real, fake)
            out["gp"] = gp.detach()
            total = total + reg.gp_weight * gp
        _d_backward(s, total, out, stats)
    if reg.weight_clip > 0:
        R.clip_weights(s.d, reg.weight_clip)
    s.d_steps += 1
    out["d_real"], out["d_fake"] = real_logits.detach().mean(), fake_logits.detach().mean()
    return loss


def unrolled_d(s: TrainState, data: Tensor, labels: Tensor | None, k: int) -> Callable[..., Tensor]:
    """Unrolled GAN (Metz et al. 2017): D after k more steps of its own Adam, as a differentiable
    function of G's parameters, so G's gradient anticipates how D would react to it.

    Each step takes a fresh real batch and fresh fakes with their graph to G kept
    (create_graph=True: the second-order term is the point of the method). D's real parameters,
    Adam state and BatchNorm buffers are left as they were. Regularisers are not unrolled.
    """
    from torch.func import functional_call

    t = s.cfg.train
    group = s.opt_d.param_groups[0]
    (b1, b2), lr, eps = group["betas"], group["lr"], group["eps"]
    named = dict(s.d.named_parameters())
    params = {n: p.detach().requires_grad_(True) for n, p in named.items()}
    zeros = {n: torch.zeros_like(p) for n, p in params.items()}
    adam = {n: s.opt_d.state.get(p, {}) for n, p in named.items()}
    m = {n: adam[n].get("exp_avg", zeros[n]) for n in params}
    v = {n: adam[n].get("exp_avg_sq", zeros[n]) for n in params}
    step = float(next(iter(adam.values()), {}).get("step", 0))
    buffers = dict(s.d.named_buffers())

    def d_k(x: Tensor, *y: Tensor) -> Tensor:
        # each call gets its own copy of D's buffers: BatchNorm and spectral norm update theirs in
        # place, which would corrupt tensors saved for the second-order backward (and D's own state)
        state = params | {n: b.clone() for n, b in buffers.items()}
        return functional_call(s.d, state, (x, *y))

    for _ in range(k):
        idx = s.batch_indices(t.batch)
        real, y = data[idx], (labels[idx] if labels is not None else None)
        args = (y,) if y is not None else ()
        fake = _g(s.g, s.sample_z(t.batch), y)
        loss = s.loss.d(real=d_k(real, *args), fake=d_k(fake, *args))
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        step += 1
        for (n, p), g in zip(list(params.items()), grads, strict=True):
            m[n] = b1 * m[n] + (1 - b1) * g
            v[n] = b2 * v[n] + (1 - b2) * g * g
            m_hat, v_hat = m[n] / (1 - b1**step), v[n] / (1 - b2**step)
            # eps^2 under the root: sqrt'(0) is infinite, and a zero gradient is common (dead units)
            params[n] = p - lr * m_hat / ((v_hat + eps * eps).sqrt() + eps)
    return d_k


def _g(g: nn.Module, z: Tensor, y: Tensor | None) -> Tensor:
    return g(z) if y is None else g(z, y)


def _disc(d: Callable[..., Tensor], x: Tensor, y: Tensor | None, aux: bool = False) -> tuple[Tensor, Tensor | None]:
    """D's logits for x (with labels y when conditional), and its class logits when aux (ACGAN),
    in fp32 whatever the autocast precision: losses of low-precision logits lose small terms."""
    if y is None:
        return d(x).float(), None
    if aux:
        logits, cls = d(x, y, aux=True)
        return logits.float(), cls.float()
    return d(x, y).float(), None


def _d_forward(d: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None, aux: bool,
               concat: bool) -> tuple[tuple[Tensor, Tensor], Tensor | None]:
    """(real logits, fake logits), and the class logits of [real; fake] for ACGAN."""
    if concat:  # one batched forward is faster; only where batch statistics cannot mix
        logits, cls = _disc(d, torch.cat([real, fake]), torch.cat([y, y]) if y is not None else None, aux)
        half = logits.shape[-1] // 2  # not len(real): a PacGAN D gives one logit per pack
        return (logits[..., :half], logits[..., half:]), cls
    (lr, cr), (lf, cf) = _disc(d, real, y, aux), _disc(d, fake, y, aux)
    return (lr, lf), (torch.cat([cr, cf]) if cr is not None else None)


def _d_loss(s: TrainState, real: Tensor, fake: Tensor, kw: dict) -> Tensor:
    """D's loss; for several Ds (logits (N, B)) the mean of their own losses, so each D's
    gradient comes from its loss alone."""
    if real.dim() == 1:
        return s.loss.d(real=real, fake=fake, **kw)
    return torch.stack([s.loss.d(real=r, fake=f, **kw) for r, f in zip(real, fake, strict=True)]).mean()


def _g_loss(s: TrainState, fake: Tensor, real: Tensor | None) -> Tensor:
    """G's loss; against several Ds, GMAN's soft-max mean of the per-D losses (Durugkar et al.
    2017): weights softmax(lambda * L_i), so lambda = 0 is the mean and a large lambda follows the
    D that G fools least."""
    if fake.dim() == 1:
        return s.loss.g(fake=fake, real=real)
    per = torch.stack([s.loss.g(fake=f, real=None if real is None else real[i]) for i, f in enumerate(fake)])
    return (torch.softmax(s.cfg.loss.gman_lambda * per, 0) * per).sum()


def _d_backward(s: TrainState, loss: Tensor, out: dict[str, Tensor], stats: bool) -> None:
    out["grad_norm_d"] = _backward_step(loss, s.opt_d, s.d, s.scaler_d, s.cfg.optim.grad_clip, stats)


def _backward_step(loss: Tensor, opt: torch.optim.Optimizer, net: nn.Module, scaler: torch.amp.GradScaler | None,
                   clip: float, stats: bool) -> Tensor | None:
    """Backward and optimiser step; with fp16 through the loss scaler (gradients are unscaled
    before clipping or measuring, and a step with inf/NaN gradients is skipped by the scaler)."""
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


def _requires_grad(params: list[Tensor], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def _r1(real_logits: Tensor, real: Tensor, reg, lazy: bool, out: dict[str, Tensor]) -> Tensor | float:
    if not lazy:
        return 0.0
    r1 = R.r1_penalty(real_logits, real)
    out["r1"] = r1.detach()
    # lazy regularisation: applied every r1_every steps, scaled up to keep its average weight
    return 0.5 * reg.r1_gamma * reg.r1_every * r1


def _noisy(x: Tensor, std: float) -> Tensor:
    return x + std * torch.randn_like(x) if std else x


def _clip_or_norm(net: nn.Module, max_norm: float, stats: bool) -> Tensor | None:
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm).detach()
    if stats:
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        return torch.nn.utils.get_total_norm(grads).detach() if grads else None
    return None
