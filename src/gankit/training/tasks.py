"""Image-to-image updates: pix2pix, SRGAN, inpainting and CycleGAN, on the same state, losses,
optimisers, checkpoints and loop as the unconditional GAN. Each is one function of the state
and the data (A inputs `s.inputs`, B targets `data`), written like `step.train_step`: D update,
then G update with D frozen, then the EMA.

The adversarial terms use the run's loss spec (`loss.name`) on PatchGAN logit maps; the extra
terms are pixel losses with their config weights (`loss.l1_weight`, `loss.cycle_weight`, ...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .ema import ema_beta, update_ema
from .state import TrainState
from .step import StepOutput, _backward_step, _requires_grad

TASKS = ("pix2pix", "srgan", "inpaint", "cyclegan")


def task_step(s: TrainState, data: Tensor, stats: bool) -> StepOutput:
    out: dict[str, Tensor] = {}
    d_loss, g_loss, fake = _STEPS[s.cfg.model.name](s, data, out, stats)
    if s.g_ema is not None:
        update_ema(s.g_ema, s.g, ema_beta(s.step, s.cfg.train.ema_beta))
    s.step += 1
    s.d_steps += 1
    return StepOutput(d_loss.detach(), g_loss.detach(), {k: v for k, v in out.items() if v is not None},
                      fake.detach())


def _pair(s: TrainState, data: Tensor) -> tuple[Tensor, Tensor]:
    idx = s.batch_indices(s.cfg.train.batch)
    return s.inputs[idx], data[idx]


def _adv_d(s: TrainState, d, real_in: Tensor, fake_in: Tensor, out: dict, key: str = "") -> Tensor:
    loss = s.loss.d(real=d(real_in).float(), fake=d(fake_in.detach()).float())
    out[f"d_loss{key}"] = loss.detach()
    return loss


def _d_update(s: TrainState, loss: Tensor, out: dict, stats: bool) -> None:
    out["grad_norm_d"] = _backward_step(loss, s.opt_d, s.d, s.scaler_d, s.cfg.optim.grad_clip, stats)


def _g_update(s: TrainState, loss: Tensor, out: dict, stats: bool) -> None:
    _requires_grad(s.d_params, True)
    out["grad_norm_g"] = _backward_step(loss, s.opt_g, s.g, s.scaler_g, s.cfg.optim.grad_clip, stats)


def pix2pix(s: TrainState, data: Tensor, out: dict, stats: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Isola et al. 2017: D judges (A, B) pairs, G's loss = adversarial + lambda * L1(G(A), B)."""
    a, b = _pair(s, data)
    fake = s.g_run(a)
    w = s.cfg.loss
    d_loss = torch.zeros((), device=b.device)
    if w.adv_weight > 0:  # 0: the L1-only baseline, D not trained
        d_loss = _adv_d(s, s.d_run, torch.cat([a, b], 1), torch.cat([a, fake], 1), out)
        _d_update(s, d_loss, out, stats)
    _requires_grad(s.d_params, False)
    l1 = (fake.float() - b).abs().mean()
    out["l1"] = l1.detach()
    g_loss = w.l1_weight * l1
    if w.adv_weight > 0:
        g_loss = g_loss + w.adv_weight * s.loss.g(fake=s.d(torch.cat([a, fake], 1)).float(), real=None)
    _g_update(s, g_loss, out, stats)
    return d_loss, g_loss, fake


def srgan(s: TrainState, data: Tensor, out: dict, stats: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Ledig et al. 2017: content loss (pixel MSE, plus a feature MSE in a classifier's space
    when loss.feature_weight > 0) + adv_weight * adversarial. adv_weight = 0 is the pixel-loss
    baseline (D is then not trained at all)."""
    a, b = _pair(s, data)
    fake = s.g_run(a)
    w = s.cfg.loss
    d_loss = torch.zeros((), device=b.device)
    if w.adv_weight > 0:
        d_loss = _adv_d(s, s.d_run, b, fake, out)
        _d_update(s, d_loss, out, stats)
    _requires_grad(s.d_params, False)
    mse = F.mse_loss(fake.float(), b)
    g_loss = mse
    out["mse"] = mse.detach()
    if w.feature_weight > 0:
        fx = _features(s)
        feat = F.mse_loss(fx(fake.float()), fx(b))
        out["feature"] = feat.detach()
        g_loss = g_loss + w.feature_weight * feat
    if w.adv_weight > 0:
        g_loss = g_loss + w.adv_weight * s.loss.g(fake=s.d(fake).float(), real=None)
    _g_update(s, g_loss, out, stats)
    return d_loss, g_loss, fake


def _features(s: TrainState):
    """The perceptual-loss feature map (`loss.feature_net`: the project's digit CNN by default,
    since VGG weights cannot be downloaded here, or a VGG-19 / digit-CNN weights file); frozen,
    cached on the state."""
    fx = s.aux.get("features")
    if fx is None:
        from ..nets.perceptual import feature_net

        fx = feature_net(s.cfg.loss.feature_net).to(s.device)
        s.aux["features"] = fx
    return fx


def random_masks(n: int, h: int, w: int, g: torch.Generator, free_form: float = 0.5) -> Tensor:
    """(n, 1, h, w) masks, 1 = missing: a random rectangle (a quarter to half of each side), or
    with probability `free_form` a few thick random strokes."""
    m = torch.zeros(n, 1, h, w)
    for i in range(n):
        if torch.rand((), generator=g) < free_form:
            y, x = int(torch.randint(h, (), generator=g)), int(torch.randint(w, (), generator=g))
            for _ in range(int(torch.randint(2, 5, (), generator=g))):
                dy, dx = torch.randint(-6, 7, (2,), generator=g).tolist()
                for t in torch.linspace(0, 1, 12).tolist():
                    cy, cx = int(y + t * dy), int(x + t * dx)
                    m[i, 0, max(0, cy - 1): cy + 2, max(0, cx - 1): cx + 2] = 1
                y, x = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
        else:
            rh = int(torch.randint(h // 4, h // 2 + 1, (), generator=g))
            rw = int(torch.randint(w // 4, w // 2 + 1, (), generator=g))
            y = int(torch.randint(0, h - rh + 1, (), generator=g))
            x = int(torch.randint(0, w - rw + 1, (), generator=g))
            m[i, 0, y: y + rh, x: x + rw] = 1
    return m


def complete(g, b: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Inpainting: G sees `b` with the hole (mask = 1) zeroed, plus the mask; the known pixels are
    kept. Returns (the masked input, the completed image)."""
    a = b * (1 - mask)
    return a, a + g(a, mask) * mask


def local_crop(x: Tensor, mask: Tensor, size: int) -> Tensor:
    """A size x size crop of each image centred on its hole (clamped to the image)."""
    n, _, h, w = x.shape
    out = []
    for i in range(n):
        ys, xs = torch.nonzero(mask[i, 0], as_tuple=True)
        cy = int(ys.float().mean()) if len(ys) else h // 2
        cx = int(xs.float().mean()) if len(xs) else w // 2
        y0, x0 = min(max(cy - size // 2, 0), h - size), min(max(cx - size // 2, 0), w - size)
        out.append(x[i, :, y0: y0 + size, x0: x0 + size])
    return torch.stack(out)


def inpaint(s: TrainState, data: Tensor, out: dict, stats: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Context encoder with global and local Ds (Pathak et al. 2016; Iizuka et al. 2017): G fills
    the hole, the known pixels are pasted back; loss = l1_weight * L1 on the hole + adversarial."""
    idx = s.batch_indices(s.cfg.train.batch)
    b = data[idx]
    mask = random_masks(len(b), b.shape[-2], b.shape[-1], s.noise).to(b.device)
    _, done = complete(s.g_run, b, mask)
    size = b.shape[-1] // 2
    w = s.cfg.loss
    d_loss = torch.zeros((), device=b.device)
    if w.adv_weight > 0:  # 0: the reconstruction-only baseline, Ds not trained
        d_glob = _adv_d(s, s.d.whole, b, done, out, "_global")
        d_loc = _adv_d(s, s.d.local, local_crop(b, mask, size), local_crop(done, mask, size), out, "_local")
        d_loss = d_glob + d_loc
        _d_update(s, d_loss, out, stats)
    _requires_grad(s.d_params, False)
    hole = ((done.float() - b).abs() * mask).sum() / mask.sum().clamp(min=1)  # done = G's fill in the hole
    out["l1_hole"] = hole.detach()
    g_loss = w.l1_weight * hole
    if w.adv_weight > 0:
        g_loss = g_loss + w.adv_weight * (s.loss.g(fake=s.d.whole(done).float(), real=None)
                                          + s.loss.g(fake=s.d.local(local_crop(done, mask, size)).float(), real=None))
    _g_update(s, g_loss, out, stats)
    return d_loss, g_loss, done


def cyclegan(s: TrainState, data: Tensor, out: dict, stats: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Zhu et al. 2017: two translators and two Ds; G's loss = adversarial (both directions) +
    cycle_weight * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|) + identity. D sees fakes from a
    history of 50 earlier ones (half the time), which damps oscillation. Single process only."""
    n = s.cfg.train.batch
    b = data[s.batch_indices(n)]
    a = s.inputs[torch.randint(len(s.inputs), (n,), generator=s.noise).to(s.inputs.device)]  # unaligned A
    g_ab, g_ba = s.g["ab"], s.g["ba"]
    fake_b, fake_a = g_ab(a), g_ba(b)
    if "pools" not in s.aux:  # restored from the checkpoint on resume
        saved = s.aux.pop("pool_state", None) or {}
        s.aux["pools"] = {k: ImagePool(50, saved.get(k)) for k in ("a", "b")}
    pools = s.aux["pools"]
    d_loss = (_adv_d(s, s.d["b"], b, pools["b"].query(fake_b.detach(), s.noise), out, "_b")
              + _adv_d(s, s.d["a"], a, pools["a"].query(fake_a.detach(), s.noise), out, "_a"))
    _d_update(s, d_loss, out, stats)
    _requires_grad(s.d_params, False)
    w = s.cfg.loss
    adv = s.loss.g(fake=s.d["b"](fake_b).float(), real=None) + s.loss.g(fake=s.d["a"](fake_a).float(), real=None)
    cycle = (g_ba(fake_b) - a).abs().mean() + (g_ab(fake_a) - b).abs().mean()
    g_loss = w.adv_weight * adv + w.cycle_weight * cycle
    if w.identity_weight > 0 and a.shape[1] == b.shape[1]:
        ident = (g_ab(b) - b).abs().mean() + (g_ba(a) - a).abs().mean()
        g_loss = g_loss + w.cycle_weight * w.identity_weight * ident
        out["identity"] = ident.detach()
    out["cycle"] = cycle.detach()
    _g_update(s, g_loss, out, stats)
    return d_loss, g_loss, fake_b


def step_flops(cfg, data) -> float:
    """FLOPs per image of one training step of an image-to-image config, counted by PyTorch's
    FLOP counter on a real step (batch 2, fp32, throw-away state): forward and backward of every
    pass, the feature net of a perceptual loss included."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from .state import new_state

    cfg = copy.deepcopy(cfg)
    cfg.train.batch, cfg.train.precision, cfg.train.channels_last, cfg.train.compile = 2, "fp32", "off", False
    cfg.train.device = "cpu"
    rng = torch.get_rng_state()
    try:
        s = new_state(cfg, data.shape, len(data))
        s.inputs = data.a
        with FlopCounterMode(display=False) as fc:
            task_step(s, data.x, stats=False)
    finally:
        torch.set_rng_state(rng)
    return fc.get_total_flops() / 2


class ImagePool:
    """Shrivastava et al. 2017 / CycleGAN: return each new fake, or with probability 1/2 swap it
    for a stored older one. Its contents are saved in checkpoints (TrainState.state_dict)."""

    def __init__(self, size: int, saved: Tensor | None = None) -> None:
        self.size = size
        self.images = [] if saved is None else [x.unsqueeze(0) for x in saved]

    def query(self, fakes: Tensor, g: torch.Generator) -> Tensor:
        """g: the run's noise generator (checkpointed), so a resumed run swaps the same images."""
        out = []
        for f in fakes:
            f = f.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(f)
                out.append(f)
            elif torch.rand((), generator=g) < 0.5:
                i = int(torch.randint(self.size, (), generator=g))
                out.append(self.images[i])
                self.images[i] = f
            else:
                out.append(f)
        return torch.cat(out)


_STEPS = {"pix2pix": pix2pix, "srgan": srgan, "inpaint": inpaint, "cyclegan": cyclegan}


@torch.no_grad()
def example_rows(g, name: str, data, n: int, seed: int = 0, bicubic: bool = False) -> list[Tensor]:
    """Rows of n examples spread over `data` (the built-ins are sorted by class): input A, output
    G(A), target B. Inpainting: the input with its hole (0: mid-grey), the completion, the
    original; CycleGAN (unpaired, no target): A, G_AB(A), the cycle G_BA(G_AB(A)); `bicubic` adds
    bicubic up-scaling under the output (super-resolution)."""
    device = next(g.parameters()).device
    pick = torch.linspace(0, len(data.x) - 1, n).long()
    b = data.x[pick].to(device)
    if name == "inpaint":
        mask = random_masks(n, b.shape[-2], b.shape[-1], torch.Generator().manual_seed(seed)).to(device)
        return list(complete(g, b, mask)) + [b]
    if name == "cyclegan":
        a = data.a[torch.linspace(0, len(data.a) - 1, n).long()].to(device)
        out = g(a)
        return [_fit(a.float(), out), out, _fit(g["ba"](out).float(), out)]
    a = data.a[pick].to(device)
    rows = [_fit(a.float(), b), g(a).clamp(-1, 1), b]
    if bicubic:
        from ..metrics.translation import bicubic as upscale

        rows.insert(2, upscale(a, b.shape[-2:]))
    return rows


@torch.no_grad()
def preview(s: TrainState, data) -> Image.Image:  # noqa: F821
    """The training grid: `example_rows` of 8 fixed examples through the EMA G (eval mode)."""
    from ..monitor.images import grid

    g = s.g_ema if s.g_ema is not None else s.g
    was = g.training
    g.eval()
    try:
        rows = example_rows(g, s.cfg.model.name, data, 8)
        return grid(torch.cat([r.float().cpu() for r in rows]), nrow=8, scale=2)
    finally:
        g.train(was)


def _fit(a: Tensor, like: Tensor) -> Tensor:
    """Show A at B's size and channels (a 7x7 low-resolution input, a 1-channel luma input)."""
    if a.shape[-2:] != like.shape[-2:]:
        a = F.interpolate(a, size=like.shape[-2:], mode="nearest")
    if a.shape[1] != like.shape[1]:
        a = a.expand(-1, like.shape[1], -1, -1)
    return a
