"""Image-to-image families: pix2pix, super-resolution (SRGAN-style), inpainting and CycleGAN.

Each declares two phases on the shared core: Dmain (the adversarial loss of its D or Ds, from
the run's loss spec on PatchGAN logit maps) and Gmain (adversarial + the family's pixel terms
with their config weights). With `loss.adv_weight=0` pix2pix, SR and inpainting drop Dmain:
the pixel-loss baselines, D never trained. A inputs are `Batch.inputs`, B targets `Batch.data`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..nets import masks as holes
from ..nets.translation import complete, local_crop
from .base import Batch, Family, Phase, families

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from ..training.state import TrainState


class Translation(Family):
    """Shared by the four: A -> B data checks, A's channels and the scale frozen into the config."""

    translates = True
    distributed = False  # CycleGAN's image pools and the translators' direct calls are per process
    needs = "paired"  # paired | any (unpaired A and B) | none (B alone)
    gen_keys = frozenset({"model.depth", "model.patch_layers", "model.norm_g", "model.norm_d", "model.init",
                          "loss.adv_weight"})

    def prepare(self, cfg: Config, data: Dataset) -> Dataset:
        from ..data.paired import split_side_by_side

        name = cfg.model.name
        if self.needs == "paired" and data.a is None and data.is_image:
            data = split_side_by_side(data)
        if self.needs != "none" and data.a is None:
            raise ConfigError(f"model {name} translates A -> B, but {cfg.data.source} holds only one set of images "
                              "(use a folder with A/ and B/, side-by-side A|B images, or a built-in such as "
                              "edges2digits, thin2thick, lowres4_mnist, colorize_photos)")
        if self.needs == "paired" and not data.paired:
            raise ConfigError(f"model {name} needs paired data (A/x.png with B/x.png); {cfg.data.source} is "
                              "unpaired (cyclegan learns from unpaired sets)")
        if data.a is not None and self.needs != "none":
            c = int(data.a.shape[1])
            if cfg.model.in_channels not in (0, c):  # derived from the data: a different value would be ignored
                raise ConfigError(f"model.in_channels={cfg.model.in_channels}, but {cfg.data.source}'s inputs A "
                                  f"have {c} channels (leave it at 0: it is read from the data)")
            cfg.model.in_channels = c
            self.check_sizes(cfg, data)
        return data

    def check_sizes(self, cfg: Config, data: Dataset) -> None:
        if data.a.shape[-2:] != data.x.shape[-2:]:
            name = cfg.model.name
            raise ConfigError(f"model {name}: A images are {tuple(data.a.shape[-2:])} but B images are "
                              f"{tuple(data.x.shape[-2:])}; {name} keeps the size (srgan changes it)")

    def phases(self, cfg: Config) -> list[Phase]:
        d = [Phase("Dmain", "d", self.d_main)] if cfg.loss.adv_weight > 0 else []
        return d + [Phase("Gmain", "g", self.g_main)]

    def preview(self, s: TrainState, data: Dataset, fixed_z: Tensor):
        """The training grid: `example_rows` of 8 fixed examples through the EMA G (eval mode)."""
        from ..monitor.images import grid

        g = s.g_ema if s.g_ema is not None else s.g
        was = g.training
        g.eval()
        try:
            with torch.no_grad():
                rows = example_rows(g, s.cfg.model.name, data, 8, masks=s.cfg.model.masks)
            return grid(torch.cat([r.float().cpu() for r in rows]), nrow=8, scale=2)
        finally:
            g.train(was)

    def evaluate(self, g, n: int = 0, seed: int = 0) -> dict:
        """Held-out scores against the task's baselines (metrics/translation.py)."""
        from ..metrics.translation import evaluate_task

        return evaluate_task(g, n, seed)

    # each family's two phases
    @abstractmethod
    def d_main(self, s: TrainState, b: Batch) -> Tensor:
        """D's adversarial loss on this update's batch (drawing it and G's outputs)."""

    @abstractmethod
    def g_main(self, s: TrainState, b: Batch) -> Tensor:
        """G's loss: adversarial + the family's pixel terms."""


def _pair(s: TrainState, b: Batch) -> None:
    """The next aligned (A, B) batch and G(A), unless an earlier phase of this update drew them."""
    if b.fake is None:
        idx = s.batch_indices(s.cfg.train.batch)
        b.a, b.real = b.inputs[idx], b.data[idx]
        b.fake = s.g_run(b.a)


def _adv_d(s: TrainState, d, real_in: Tensor, fake_in: Tensor, b: Batch, key: str = "") -> Tensor:
    loss = s.loss.d(real=d(real_in).float(), fake=d(fake_in.detach()).float())
    b.out[f"d_loss{key}"] = loss.detach()
    return loss


def _adv_g(s: TrainState, d, fake_in: Tensor) -> Tensor:
    return s.loss.g(fake=d(fake_in).float(), real=None)


class Pix2Pix(Translation):
    """Isola et al. 2017: D judges (A, B) pairs, G's loss = adversarial + lambda * L1(G(A), B)."""

    name, models = "pix2pix", ("pix2pix",)
    doc = "pix2pix: U-Net G, conditional PatchGAN D on (A, B) pairs, adversarial + L1"
    keys = Translation.gen_keys | {"model.dropout_g", "model.in_channels", "loss.l1_weight"}

    def d_main(self, s: TrainState, b: Batch) -> Tensor:
        _pair(s, b)
        b.d_loss = _adv_d(s, s.d_run, torch.cat([b.a, b.real], 1), torch.cat([b.a, b.fake], 1), b)
        return b.d_loss

    def g_main(self, s: TrainState, b: Batch) -> Tensor:
        _pair(s, b)
        w = s.cfg.loss
        l1 = (b.fake.float() - b.real).abs().mean()
        b.out["l1"] = l1.detach()
        loss = w.l1_weight * l1
        if w.adv_weight > 0:
            loss = loss + w.adv_weight * _adv_g(s, s.d, torch.cat([b.a, b.fake], 1))
        b.g_loss = loss
        return loss


class SuperResolution(Translation):
    """Ledig et al. 2017: content loss (pixel MSE, plus a feature MSE in a classifier's space when
    loss.feature_weight > 0) + adv_weight * adversarial. adv_weight = 0 is the pixel-loss baseline."""

    name, models = "srgan", ("srgan",)
    doc = "SRGAN-style super-resolution: pixel-shuffle G, PatchGAN D, pixel (+ feature) content loss"
    keys = Translation.gen_keys | {"model.scale", "model.in_channels", "loss.feature_weight", "loss.feature_net"}

    def check_sizes(self, cfg: Config, data: Dataset) -> None:
        ha, hb = data.a.shape[-1], data.x.shape[-1]
        if hb % ha or data.x.shape[-2] * ha != data.a.shape[-2] * hb:
            raise ConfigError(f"srgan: B ({hb}px) must be a whole multiple of A ({ha}px) in both sides")
        if cfg.model.scale not in (0, hb // ha):
            raise ConfigError(f"model.scale={cfg.model.scale}, but {cfg.data.source} maps {ha}px to {hb}px "
                              f"(x{hb // ha}; leave it at 0: it is read from the data)")
        cfg.model.scale = hb // ha

    def prepare(self, cfg: Config, data: Dataset) -> Dataset:
        data = super().prepare(cfg, data)
        if cfg.loss.feature_weight > 0 and cfg.loss.feature_net != "mnistcnn":
            from ..nets.perceptual import feature_net

            feature_net(cfg.loss.feature_net)  # a bad weights file fails here, not at the first step
        return data

    def d_main(self, s: TrainState, b: Batch) -> Tensor:
        _pair(s, b)
        b.d_loss = _adv_d(s, s.d_run, b.real, b.fake, b)
        return b.d_loss

    def g_main(self, s: TrainState, b: Batch) -> Tensor:
        _pair(s, b)
        w = s.cfg.loss
        mse = F.mse_loss(b.fake.float(), b.real)
        b.out["mse"] = mse.detach()
        loss = mse
        if w.feature_weight > 0:
            fx = _features(s)
            feat = F.mse_loss(fx(b.fake.float()), fx(b.real))
            b.out["feature"] = feat.detach()
            loss = loss + w.feature_weight * feat
        if w.adv_weight > 0:
            loss = loss + w.adv_weight * _adv_g(s, s.d, b.fake)
        b.g_loss = loss
        return loss


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


class Inpainting(Translation):
    """Context encoder with global and local Ds (Pathak et al. 2016; Iizuka et al. 2017): G fills
    the hole, the known pixels are pasted back; loss = l1_weight * L1 on the hole + adversarial."""

    name, models, needs = "inpaint", ("inpaint",), "none"
    doc = "inpainting: context-encoder U-Net G (image + mask), global and local PatchGAN Ds"
    keys = Translation.gen_keys | {"loss.l1_weight", "model.masks"}

    def validate(self, cfg: Config) -> None:
        holes.parse(cfg.model.masks)

    @staticmethod
    def _complete(s: TrainState, b: Batch) -> None:
        if b.fake is None:
            b.real = b.data[s.batch_indices(s.cfg.train.batch)]
            h, w = b.real.shape[-2:]
            b.aux["mask"] = holes.draw(s.cfg.model.masks, len(b.real), h, w, s.noise).to(b.real.device)
            _, b.fake = complete(s.g_run, b.real, b.aux["mask"])

    def d_main(self, s: TrainState, b: Batch) -> Tensor:
        self._complete(s, b)
        mask, size = b.aux["mask"], b.real.shape[-1] // 2
        b.d_loss = (_adv_d(s, s.d.whole, b.real, b.fake, b, "_global")
                    + _adv_d(s, s.d.local, local_crop(b.real, mask, size), local_crop(b.fake, mask, size), b,
                             "_local"))
        return b.d_loss

    def g_main(self, s: TrainState, b: Batch) -> Tensor:
        self._complete(s, b)
        w, mask, size = s.cfg.loss, b.aux["mask"], b.real.shape[-1] // 2
        hole = ((b.fake.float() - b.real).abs() * mask).sum() / mask.sum().clamp(min=1)  # fake = G's fill
        b.out["l1_hole"] = hole.detach()
        loss = w.l1_weight * hole
        if w.adv_weight > 0:
            loss = loss + w.adv_weight * (_adv_g(s, s.d.whole, b.fake)
                                          + _adv_g(s, s.d.local, local_crop(b.fake, mask, size)))
        b.g_loss = loss
        return loss


class CycleGAN(Translation):
    """Zhu et al. 2017: two translators and two Ds; G's loss = adversarial (both directions) +
    cycle_weight * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|) + identity. D sees fakes from a
    history of 50 earlier ones (half the time), which damps oscillation. Single process only."""

    name, models, needs = "cyclegan", ("cyclegan",), "any"
    doc = "CycleGAN (unpaired): ResNet translators G_AB, G_BA; PatchGAN D_A, D_B; cycle + identity"
    keys = Translation.gen_keys | {"model.in_channels", "loss.cycle_weight", "loss.identity_weight"}

    def phases(self, cfg: Config) -> list[Phase]:
        # adv_weight scales G's adversarial term only; the Ds always train (0 would be two
        # autoencoders learning the identity, not a baseline anyone asks for)
        return [Phase("Dmain", "d", self.d_main), Phase("Gmain", "g", self.g_main)]

    def d_main(self, s: TrainState, b: Batch) -> Tensor:
        n = s.cfg.train.batch
        b.real = b.data[s.batch_indices(n)]
        b.a = b.inputs[torch.randint(len(b.inputs), (n,), generator=s.noise).to(b.inputs.device)]  # unaligned A
        b.fake, b.aux["fake_a"] = s.g["ab"](b.a), s.g["ba"](b.real)
        if "pools" not in s.aux:  # restored from the checkpoint on resume
            saved = s.aux.pop("pool_state", None) or {}
            s.aux["pools"] = {k: ImagePool(50, saved.get(k)) for k in ("a", "b")}
        pools = s.aux["pools"]
        b.d_loss = (_adv_d(s, s.d["b"], b.real, pools["b"].query(b.fake.detach(), s.noise), b, "_b")
                    + _adv_d(s, s.d["a"], b.a, pools["a"].query(b.aux["fake_a"].detach(), s.noise), b, "_a"))
        return b.d_loss

    def g_main(self, s: TrainState, b: Batch) -> Tensor:
        w, a, real, fake_b, fake_a = s.cfg.loss, b.a, b.real, b.fake, b.aux["fake_a"]
        g_ab, g_ba = s.g["ab"], s.g["ba"]
        adv = _adv_g(s, s.d["b"], fake_b) + _adv_g(s, s.d["a"], fake_a)
        cycle = (g_ba(fake_b) - a).abs().mean() + (g_ab(fake_a) - real).abs().mean()
        loss = w.adv_weight * adv + w.cycle_weight * cycle
        if w.identity_weight > 0 and a.shape[1] == real.shape[1]:
            ident = (g_ab(real) - real).abs().mean() + (g_ba(a) - a).abs().mean()
            loss = loss + w.cycle_weight * w.identity_weight * ident
            b.out["identity"] = ident.detach()
        b.out["cycle"] = cycle.detach()
        b.g_loss = loss
        return loss


for _fam in (Pix2Pix(), SuperResolution(), Inpainting(), CycleGAN()):
    families.add(_fam.name, _fam)


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

@torch.no_grad()
def example_rows(g, name: str, data, n: int, seed: int = 0, bicubic: bool = False,
                 masks: str = holes.DEFAULT) -> list[Tensor]:
    """Rows of n examples spread over `data` (the built-ins are sorted by class): input A, output
    G(A), target B. Inpainting: the input with its hole (0: mid-grey; holes drawn from the `masks`
    families), the completion, the original; CycleGAN (unpaired, no target): A, G_AB(A), the
    cycle G_BA(G_AB(A)); `bicubic` adds bicubic up-scaling under the output (super-resolution)."""
    device = next(g.parameters()).device
    pick = torch.linspace(0, len(data.x) - 1, n).long()
    b = data.x[pick].to(device)
    if name == "inpaint":
        mask = holes.draw(masks, n, b.shape[-2], b.shape[-1], torch.Generator().manual_seed(seed)).to(device)
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


def _fit(a: Tensor, like: Tensor) -> Tensor:
    """Show A at B's size and channels (a 7x7 low-resolution input, a 1-channel luma input)."""
    if a.shape[-2:] != like.shape[-2:]:
        a = F.interpolate(a, size=like.shape[-2:], mode="nearest")
    if a.shape[1] != like.shape[1]:
        a = a.expand(-1, like.shape[1], -1, -1)
    return a
