"""Noise -> image (and noise -> 2-D points): unconditional and class-conditional GANs with every
remedy in the config (PacGAN, minibatch layers, unrolling, several Ds or Gs, ACGAN, GP, R1,
drift, instance noise, Keras' split D update).

Phases of one update: `n_critic` D updates (Dmain, or Dreal + Dfake for the Keras split), each
on a new real batch and new fakes, then Gmain. The G phase reuses the last D phase's fakes
(their graph to G is kept) unless `train.g_fresh_z`: regenerating costs +29 % time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import regularizers as R
from ..errors import ConfigError
from ..losses import bce_fake, bce_real, losses
from .base import Batch, Family, Phase, families

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from ..training.state import TrainState


class NoiseToImage(Family):
    name = "noise2image"
    models = ()  # every net that is not an image-to-image translator
    doc = "z -> x: MLP, DCGAN, ResNet/SNGAN, SAGAN, ProGAN, StyleGAN-lite, toy MLP; conditional; all remedies"
    keys = frozenset({
        "model.z_dim", "model.depth", "model.norm_g", "model.norm_d", "model.init",
        "model.act_g", "model.act_d", "model.leaky_slope", "model.dropout_d",
        "model.bn_momentum", "model.pack", "model.minibatch", "model.mbd_kernels", "model.mbd_dim", "model.cond",
        "model.cond_g", "model.n_classes", "model.clusters", "model.attention", "model.grow_steps", "model.mapping",
        "model.style_mix", "model.n_d", "model.n_g",
        "loss.real_label", "loss.aux_weight", "loss.gman_lambda",
        "reg.gp_weight", "reg.r1_gamma", "reg.r1_every", "reg.instance_noise", "reg.instance_noise_steps",
        "reg.drift", "reg.diffaug", "reg.mode_seeking",
        "train.n_critic", "train.d_update", "train.g_fresh_z", "train.g_batch", "train.unroll", "train.grid_n",
        "train.eval_every", "train.eval_n", "train.best_metric",
    })

    def validate(self, cfg: Config) -> None:
        t, m, reg = cfg.train, cfg.model, cfg.reg
        spec = losses.get(cfg.loss.name)
        if t.d_update == "split" and not spec.label_smoothing:
            raise ConfigError("train.d_update=split (Keras-style real/fake steps) needs a BCE loss, "
                              f"not {cfg.loss.name}")
        if t.d_update == "split" and reg.gp_weight > 0:
            raise ConfigError("train.d_update=split cannot combine with reg.gp_weight (GP needs real and fake)")
        for key in ("train.batch", "train.g_batch"):
            b = getattr(t, key.split(".")[1])
            if b % m.pack:
                raise ConfigError(f"{key}={b} must be divisible by model.pack={m.pack} (PacGAN packs)")
        if t.unroll and t.d_update == "split":
            raise ConfigError("train.unroll cannot combine with train.d_update=split")
        if m.n_d > 1:
            for bad, why in ((reg.gp_weight > 0, "reg.gp_weight"), (reg.r1_gamma > 0, "reg.r1_gamma"),
                             (t.unroll > 0, "train.unroll"), (t.d_update == "split", "train.d_update=split"),
                             (m.cond == "acgan", "model.cond=acgan")):
                if bad:  # each of these is written for one D's logits; not generalised to an ensemble yet
                    raise ConfigError(f"model.n_d={m.n_d} cannot combine with {why}")
        if m.cond != "none":
            for bad, why in ((m.pack > 1, "model.pack > 1 (a pack mixes labels)"),
                             (t.d_update == "split", "train.d_update=split"),
                             (m.cond == "acgan" and t.unroll > 0, "train.unroll (with acgan)")):
                if bad:
                    raise ConfigError(f"model.cond={m.cond} cannot combine with {why}")
        if t.precision == "fp16" and (reg.gp_weight > 0 or reg.r1_gamma > 0 or t.unroll):
            # these differentiate D's gradient; under a loss scaler that needs unscaling inside the penalty
            raise ConfigError("train.precision=fp16 cannot combine with gradient penalties or unrolling; use bf16")
        if reg.r1_every < 1:
            raise ConfigError(f"reg.r1_every must be >= 1, got {reg.r1_every}")
        if m.clusters:
            if m.clusters < 2 or m.cond == "none":
                raise ConfigError(f"model.clusters={m.clusters} (self-conditioning) needs at least 2 clusters and a "
                                  "conditional D and G (model.cond=projection, model.cond_g=cbn)")
            for bad, why in ((m.n_g > 1, "model.n_g > 1"), (reg.mode_seeking > 0, "reg.mode_seeking"),
                             (t.unroll > 0, "train.unroll"), (m.name == "toy_mlp", "model.name=toy_mlp (points)")):
                if bad:  # each draws z outside the cluster slices, or has no images to cluster
                    raise ConfigError(f"model.clusters (self-conditioning) cannot combine with {why}")
            if m.n_classes not in (0, m.clusters):
                raise ConfigError(f"model.n_classes={m.n_classes} but model.clusters={m.clusters}: the clusters "
                                  "are the classes; leave model.n_classes at 0")
        from ..nets.remedies import parse_policy

        parse_policy(reg.diffaug)

    def uses_labels(self, cfg: Config) -> bool:
        return cfg.model.cond != "none"

    def prepare(self, cfg: Config, data: Dataset) -> Dataset:
        if not data.is_image and cfg.model.name != "toy_mlp":
            raise ConfigError(f"data {cfg.data.source} holds points {data.shape}; use model.name=toy_mlp")
        if data.is_image and cfg.model.name == "toy_mlp":
            raise ConfigError(f"model toy_mlp models 2-D points, but {cfg.data.source} holds images {data.shape}")
        if cfg.model.clusters:
            data = self_condition(data, cfg.model.clusters, cfg.train.seed)
        if cfg.model.cond != "none":
            if data.y is None:
                raise ConfigError(f"model.cond={cfg.model.cond} needs class labels, but {cfg.data.source} has none")
            k = data.num_classes
            if cfg.model.n_classes == 0:
                cfg.model.n_classes = k  # frozen into the saved config, so sampling and resume agree
            elif cfg.model.n_classes < k:
                raise ConfigError(f"model.n_classes={cfg.model.n_classes} but {cfg.data.source} has labels "
                                  f"up to {k - 1}")
        return data

    def init(self, s: TrainState, data: Dataset) -> None:
        if s.cfg.model.clusters:  # G samples each cluster as often as the data holds it
            counts = torch.bincount(data.y, minlength=s.cfg.model.clusters)
            for g in (s.g, s.g_ema):
                if g is not None:
                    _unwrapped(g).set_frequencies(counts)

    def phases(self, cfg: Config) -> list[Phase]:
        t = cfg.train
        phases: list[Phase] = []
        for i in range(t.n_critic):
            keep = i == t.n_critic - 1 and not t.g_fresh_z  # the G phase reuses these fakes
            if t.d_update == "split":  # Keras tutorial style: one optimiser step on reals, one on fakes
                phases += [Phase("Dreal", "d", lambda s, b, keep=keep: d_real(s, b, keep), d_update=False),
                           Phase("Dfake", "d", d_fake)]
            else:
                phases.append(Phase("Dmain", "d", lambda s, b, keep=keep: d_main(s, b, keep)))
        return phases + [Phase("Gmain", "g", g_main)]


families.add("noise2image", NoiseToImage())


def self_condition(data: Dataset, k: int, seed: int) -> Dataset:
    """The images with k-means cluster numbers as their labels (the data's own labels unused):
    `model.clusters`' conditioning. k-means (scikit-learn, k-means++ seeded by `seed`, 3 starts)
    on the pixels, downsampled to at most 32x32 so large images cost what small ones do; the
    same data and seed give the same clusters, so a resumed run trains on the same labels."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from ..data import Dataset as DS
    from ..notes import note

    if not isinstance(data.x, Tensor):
        raise ConfigError(f"model.clusters needs the images in memory; {data.name} is a prepared (streamed) set: "
                          "train on its image folder instead")
    x = data.x.float()
    if x.shape[-1] > 32:
        x = F.adaptive_avg_pool2d(x, 32)
    if len(x) < k:
        raise ConfigError(f"model.clusters={k} needs at least {k} images, {data.name or 'the data'} has {len(x)}")
    # one thread: a few seconds for 5000 digits, and immune to a busy neighbour, where OpenMP's
    # spinning threads took 20x longer (the same trap as training's threads, training/threads.py)
    with threadpool_limits(1):
        ids = KMeans(k, n_init=3, random_state=seed).fit_predict(x.flatten(1).numpy())
    sizes = sorted(int(c) for c in torch.bincount(torch.from_numpy(ids), minlength=k))
    note(f"self-conditioning: {k} k-means clusters of {len(x)} images (sizes {sizes[0]}..{sizes[-1]})"
         + ("; the data's own labels are not used" if data.y is not None else ""))
    return DS(data.x, torch.from_numpy(ids.astype("int64")), data.name, [f"cluster {i}" for i in range(k)],
              data.meta)


def _unwrapped(g: nn.Module) -> nn.Module:
    return getattr(g, "_orig_mod", g)  # torch.compile's wrapper keeps the module here


# --- phases -------------------------------------------------------------------------------------

def draw(s: TrainState, b: Batch, keep_graph: bool) -> None:
    """A new real batch (and its labels) and fakes for the same labels: D must then judge
    image-label agreement, not label frequency."""
    idx = s.batch_indices(s.cfg.train.batch)
    b.real = b.data[idx]
    b.y = b.labels[idx] if b.labels is not None else None
    b.aux["z"] = z = s.sample_z(s.cfg.train.batch)
    if s.cfg.model.clusters:  # the fakes' z lie in the slices of the clusters asked for
        b.aux["z"] = z = _unwrapped(s.g).place(z, b.y)
    with torch.set_grad_enabled(keep_graph):
        b.fake = gen(s.g_run, z, b.y)


def d_main(s: TrainState, b: Batch, keep_graph: bool) -> Tensor:
    """D's loss on reals and fakes, plus ACGAN's class term, drift, GP and (lazily) R1."""
    reg, out = s.cfg.reg, b.out
    draw(s, b, keep_graph)
    noise = R.instance_noise_std(s.step, reg.instance_noise, reg.instance_noise_steps)
    real, fake, y = noisy(b.real, noise), noisy(b.fake.detach(), noise), b.y
    lazy_r1 = reg.r1_gamma > 0 and s.d_steps % reg.r1_every == 0
    if lazy_r1:
        real = real.detach().requires_grad_(True)
    (real_logits, fake_logits), cls = d_forward(s.d_run, real, fake, y, s.acgan, s.d.concat_ok)
    kw = {"real_label": s.cfg.loss.real_label} if s.loss.label_smoothing else {}
    loss = d_loss(s, real_logits, fake_logits, kw)
    total = loss + r1_term(real_logits, real, reg, lazy_r1, out)
    if cls is not None:
        # ACGAN (Odena et al. 2017): D names the class of reals and of fakes (the class asked for)
        d_cls = F.cross_entropy(cls, torch.cat([y, y]))
        out["d_cls"] = d_cls.detach()
        total = total + s.cfg.loss.aux_weight * d_cls
    if reg.drift > 0:  # ProGAN: a Wasserstein critic's outputs would otherwise drift freely
        total = total + reg.drift * real_logits.pow(2).mean()
    if reg.gp_weight > 0:
        # reals and fakes share labels, so every interpolate has one well-defined label
        gp = R.gradient_penalty(lambda x: disc(s.d_run, x, y)[0], real, fake)
        out["gp"] = gp.detach()
        total = total + reg.gp_weight * gp
    out["d_real"], out["d_fake"] = real_logits.detach().mean(), fake_logits.detach().mean()
    b.d_loss = loss
    return total


def d_real(s: TrainState, b: Batch, keep_graph: bool) -> Tensor:
    """Keras' split update, first half: BCE on reals (+ lazy R1)."""
    reg = s.cfg.reg
    draw(s, b, keep_graph)
    noise = R.instance_noise_std(s.step, reg.instance_noise, reg.instance_noise_steps)
    # both noises now, before D's forward draws dropout masks: the order the global RNG has always had
    real, b.aux["noisy_fake"] = noisy(b.real, noise), noisy(b.fake.detach(), noise)
    lazy_r1 = reg.r1_gamma > 0 and s.d_steps % reg.r1_every == 0
    if lazy_r1:
        real = real.detach().requires_grad_(True)
    logits = s.d_run(real).float()
    loss = bce_real(logits, s.cfg.loss.real_label)
    b.aux["loss_real"] = loss
    b.out["d_real"] = logits.detach().mean()
    return loss + r1_term(logits, real, reg, lazy_r1, b.out)


def d_fake(s: TrainState, b: Batch) -> Tensor:
    """Keras' split update, second half: BCE on the same update's fakes."""
    logits = s.d_run(b.aux.pop("noisy_fake")).float()
    loss = bce_fake(logits)
    b.out["d_fake"] = logits.detach().mean()
    b.d_loss = 0.5 * (b.aux.pop("loss_real") + loss)
    return loss


def g_main(s: TrainState, b: Batch) -> Tensor:
    """G's loss against D (or D unrolled `train.unroll` steps ahead), plus ACGAN's class term."""
    t, reg = s.cfg.train, s.cfg.reg
    y_fake = b.y
    if t.g_fresh_z:
        n = t.g_batch or t.batch
        y_fake = s.sample_y(n) if b.labels is not None else None
        b.aux["z"] = s.sample_z(n)
        if s.cfg.model.clusters:  # clusters as often as the data holds them, read from z
            y_fake = _unwrapped(s.g).cluster_of(b.aux["z"])
        b.fake = gen(s.g_run, b.aux["z"], y_fake)
    # the D that G's loss sees: D itself, or D after t.unroll differentiable steps (unrolled GAN).
    # Never D's DistributedDataParallel wrapper: D gets no gradients here, so nothing to sync.
    d_for_g = unrolled_d(s, b.data, b.labels, t.unroll) if t.unroll else s.d
    noise = R.instance_noise_std(s.step, reg.instance_noise, reg.instance_noise_steps)
    real_logits = None
    if s.loss.g_needs_real:
        with torch.no_grad():
            real_logits = disc(d_for_g, noisy(b.real, noise), b.y)[0]
    fake_logits, fake_cls = disc(d_for_g, noisy(b.fake, noise), y_fake, aux=s.acgan)
    loss = g_loss(s, fake_logits, real_logits)
    if fake_cls is not None:  # ACGAN: G also wants its fakes classified as the class it was asked for
        loss = loss + s.cfg.loss.aux_weight * F.cross_entropy(fake_cls, y_fake)
    b.g_loss = loss
    if reg.mode_seeking:  # MSGAN: two noises under one condition should give images as far apart
        z, z2 = b.aux["z"], s.sample_z(len(b.aux["z"]))
        ms = R.mode_seeking(b.fake, gen(s.g_run, z2, y_fake), z, z2)
        b.out["mode_seeking"] = ms.detach()
        loss = loss + reg.mode_seeking * ms
    return loss


# --- pieces -------------------------------------------------------------------------------------

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
        fake = gen(s.g, s.sample_z(t.batch), y)
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


def gen(g: nn.Module, z: Tensor, y: Tensor | None) -> Tensor:
    return g(z) if y is None else g(z, y)


def disc(d: Callable[..., Tensor], x: Tensor, y: Tensor | None, aux: bool = False) -> tuple[Tensor, Tensor | None]:
    """D's logits for x (with labels y when conditional), and its class logits when aux (ACGAN),
    in fp32 whatever the autocast precision: losses of low-precision logits lose small terms."""
    if y is None:
        return d(x).float(), None
    if aux:
        logits, cls = d(x, y, aux=True)
        return logits.float(), cls.float()
    return d(x, y).float(), None


def d_forward(d: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None, aux: bool,
              concat: bool) -> tuple[tuple[Tensor, Tensor], Tensor | None]:
    """(real logits, fake logits), and the class logits of [real; fake] for ACGAN."""
    if concat:  # one batched forward is faster; only where batch statistics cannot mix
        logits, cls = disc(d, torch.cat([real, fake]), torch.cat([y, y]) if y is not None else None, aux)
        half = logits.shape[-1] // 2  # not len(real): a PacGAN D gives one logit per pack
        return (logits[..., :half], logits[..., half:]), cls
    (lr, cr), (lf, cf) = disc(d, real, y, aux), disc(d, fake, y, aux)
    return (lr, lf), (torch.cat([cr, cf]) if cr is not None else None)


def d_loss(s: TrainState, real: Tensor, fake: Tensor, kw: dict) -> Tensor:
    """D's loss; for several Ds (logits (N, B)) the mean of their own losses, so each D's
    gradient comes from its loss alone."""
    if real.dim() == 1:
        return s.loss.d(real=real, fake=fake, **kw)
    return torch.stack([s.loss.d(real=r, fake=f, **kw) for r, f in zip(real, fake, strict=True)]).mean()


def g_loss(s: TrainState, fake: Tensor, real: Tensor | None) -> Tensor:
    """G's loss; against several Ds, GMAN's soft-max mean of the per-D losses (Durugkar et al.
    2017): weights softmax(lambda * L_i), so lambda = 0 is the mean and a large lambda follows the
    D that G fools least."""
    if fake.dim() == 1:
        return s.loss.g(fake=fake, real=real)
    per = torch.stack([s.loss.g(fake=f, real=None if real is None else real[i]) for i, f in enumerate(fake)])
    return (torch.softmax(s.cfg.loss.gman_lambda * per, 0) * per).sum()


def r1_term(real_logits: Tensor, real: Tensor, reg, lazy: bool, out: dict[str, Tensor]) -> Tensor | float:
    if not lazy:
        return 0.0
    r1 = R.r1_penalty(real_logits, real)
    out["r1"] = r1.detach()
    # lazy regularisation: applied every r1_every steps, scaled up to keep its average weight
    return 0.5 * reg.r1_gamma * reg.r1_every * r1


def noisy(x: Tensor, std: float) -> Tensor:
    return x + std * torch.randn_like(x) if std else x
