"""Image-to-image nets: pix2pix's U-Net and PatchGAN, CycleGAN's ResNet-block generator, an
SRGAN-style residual up-sampler (pixel shuffle) and a context-encoder inpainter with global and
local discriminators. G maps an input image A to an output shaped like the data B.

The builders receive B's shape; A's channels and the up-sampling factor come from the config
(`model.in_channels`, `model.scale`), which `prepare` fills from the data and freezes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .layers import finish, norm2d
from .registry import models

TASK_MODELS = ("pix2pix", "cyclegan", "srgan", "inpaint")


class UNet(nn.Module):
    """pix2pix's generator: an encoder of stride-2 convs, a decoder of transposed convs, each
    decoder level concatenated with the encoder level of the same size (skip connections carry
    the input's detail, e.g. where an edge is). Any size: the input is padded up to a multiple of
    2^depth and the output cropped back (28 -> 32 -> 28)."""

    def __init__(self, cin: int, cout: int, width: int, depth: int, norm: str, dropout: float) -> None:
        super().__init__()
        self.depth = depth
        chans = [min(width * 2**i, width * 8) for i in range(depth)]
        self.down = nn.ModuleList()
        c = cin
        for i, ch in enumerate(chans):
            layers: list[nn.Module] = [nn.Conv2d(c, ch, 4, 2, 1)]
            if i > 0:  # no normalisation on the first layer (pix2pix)
                layers.append(norm2d(norm, ch))
            layers.append(nn.LeakyReLU(0.2))
            self.down.append(nn.Sequential(*layers))
            c = ch
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            skip = chans[i - 1] if i > 0 else 0
            out = chans[i - 1] if i > 0 else width
            layers = [nn.ConvTranspose2d(c, out, 4, 2, 1), norm2d(norm, out), nn.ReLU()]
            if dropout and i >= depth - 2 and i > 0:  # pix2pix's noise: dropout in the inner decoder levels
                layers.insert(2, nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
            c = out + skip
        self.out = nn.Sequential(nn.Conv2d(c, cout, 3, 1, 1), nn.Tanh())

    def forward(self, a: Tensor) -> Tensor:
        h, w = a.shape[-2:]
        m = 2**self.depth
        ph, pw = -h % m, -w % m
        x = F.pad(a, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate") if ph or pw else a
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the innermost level has no partner
        for layer in self.up:
            x = layer(x)
            if skips:
                x = torch.cat([x, skips.pop()], 1)
        x = self.out(x)
        return x[..., ph // 2: ph // 2 + h, pw // 2: pw // 2 + w]


def patchgan(cin: int, width: int, layers: int, norm: str) -> nn.Sequential:
    """PatchGAN D: a map of logits, each judging one receptive field of the input (not the whole
    image), so D models local texture and L1 (or the content loss) the global layout."""
    mods: list[nn.Module] = [nn.Conv2d(cin, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    c = width
    for i in range(1, layers):
        ch = min(width * 2**i, width * 8)
        mods += [nn.Conv2d(c, ch, 4, 2, 1), norm2d(norm, ch), nn.LeakyReLU(0.2)]
        c = ch
    ch = min(c * 2, width * 8)
    mods += [nn.Conv2d(c, ch, 4, 1, 1), norm2d(norm, ch), nn.LeakyReLU(0.2), nn.Conv2d(ch, 1, 4, 1, 1)]
    return nn.Sequential(*mods)


def receptive_field(layers: int) -> int:
    """Input pixels seen by one PatchGAN logit: `layers` stride-2 4x4 convs, then two stride-1 4x4."""
    rf = 1
    for stride in reversed([2] * layers + [1, 1]):
        rf = rf * stride + (4 - stride)
    return rf


class ResBlock(nn.Module):
    def __init__(self, c: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), norm2d(norm, c), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, 1, 1), norm2d(norm, c))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def resnet_translator(cin: int, cout: int, width: int, blocks: int, norm: str) -> nn.Sequential:
    """CycleGAN's generator: 7x7 stem, two stride-2 downs, residual blocks, two ups, 7x7 out.
    Sizes that are not multiples of 4 (28 is) are not supported by this layout."""
    return nn.Sequential(
        nn.Conv2d(cin, width, 7, 1, 3), norm2d(norm, width), nn.ReLU(),
        nn.Conv2d(width, width * 2, 3, 2, 1), norm2d(norm, width * 2), nn.ReLU(),
        nn.Conv2d(width * 2, width * 4, 3, 2, 1), norm2d(norm, width * 4), nn.ReLU(),
        *[ResBlock(width * 4, norm) for _ in range(blocks)],
        nn.ConvTranspose2d(width * 4, width * 2, 3, 2, 1, output_padding=1), norm2d(norm, width * 2), nn.ReLU(),
        nn.ConvTranspose2d(width * 2, width, 3, 2, 1, output_padding=1), norm2d(norm, width), nn.ReLU(),
        nn.Conv2d(width, cout, 7, 1, 3), nn.Tanh(),
    )


class SRGenerator(nn.Module):
    """SRGAN-style: residual blocks at low resolution, then x2 pixel-shuffle stages (sub-pixel
    convolution: a conv to 4C channels rearranged into a 2x larger map), plus a global skip from
    the bicubic-free nearest up-sampled input so the net learns the residual detail."""

    def __init__(self, cin: int, cout: int, width: int, blocks: int, scale: int, norm: str) -> None:
        super().__init__()
        if scale not in (2, 4, 8):
            raise ConfigError(f"srgan up-samples by 2, 4 or 8, not {scale}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(cin, width, 5, 1, 2), nn.PReLU(width))
        self.body = nn.Sequential(*[ResBlock(width, norm) for _ in range(blocks)],
                                  nn.Conv2d(width, width, 3, 1, 1))
        ups: list[nn.Module] = []
        for _ in range(scale.bit_length() - 1):
            ups += [nn.Conv2d(width, width * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.up = nn.Sequential(*ups)
        self.out = nn.Conv2d(width, cout, 5, 1, 2)
        self.cin, self.cout = cin, cout

    def forward(self, a: Tensor) -> Tensor:
        h = self.head(a)
        h = self.up(h + self.body(h))
        base = F.interpolate(a, scale_factor=self.scale, mode="nearest")
        if self.cin != self.cout:
            base = base.mean(1, keepdim=True).expand(-1, self.cout, -1, -1)
        return torch.tanh(self.out(h) + base)


class Inpainter(nn.Module):
    """Context-encoder-style G: sees the image with its hole filled with 0 and the mask as an extra
    channel, encodes to a bottleneck and decodes the whole image (a U-Net, so the known pixels'
    detail is at hand); the step pastes the known pixels back."""

    def __init__(self, c: int, width: int, depth: int, norm: str) -> None:
        super().__init__()
        self.net = UNet(c + 1, c, width, depth, norm, 0.0)

    def forward(self, masked: Tensor, mask: Tensor) -> Tensor:
        return self.net(torch.cat([masked, mask], 1))


class LocalGlobalD(nn.Module):
    """Two discriminators (Iizuka et al. 2017): a global one on the whole image, a local one on a
    crop around the hole; the step feeds each its input and adds their losses."""

    def __init__(self, c: int, width: int, layers: int, norm: str) -> None:
        super().__init__()
        self.whole = patchgan(c, width, layers, norm)
        self.local = patchgan(c, width, max(1, layers - 1), norm)


class CycleG(nn.ModuleDict):
    """G_AB and G_BA; calling it is G_AB (A -> B): grids, the EMA G and `gankit translate` use that."""

    def forward(self, a: Tensor) -> Tensor:
        return self["ab"](a)


def _shape(shape: tuple[int, ...], name: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ConfigError(f"model {name} translates images; the data has shape {tuple(shape)}")
    return shape[0], shape[1], shape[2]


def _cin(cfg: Any, c: int) -> int:
    return cfg.in_channels or c


@models.register("pix2pix", "pix2pix: U-Net G (skips, any size) and conditional PatchGAN D on (A, B)")
def build_pix2pix(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, _, _ = _shape(shape, "pix2pix")
    cin = _cin(cfg, c)
    g = UNet(cin, c, cfg.width, cfg.depth, cfg.norm_g, cfg.dropout_g)
    d = patchgan(cin + c, cfg.width, cfg.patch_layers, cfg.norm_d)
    return finish(g, cfg.init, cfg.norm_g), finish(d, cfg.init, cfg.norm_d)


@models.register("cyclegan", "CycleGAN: ResNet-block G_AB and G_BA, PatchGAN D_A and D_B (unpaired)")
def build_cyclegan(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, h, w = _shape(shape, "cyclegan")
    if h % 4 or w % 4:
        raise ConfigError(f"cyclegan needs image sides divisible by 4, got {h}x{w}")
    cin = _cin(cfg, c)
    g = CycleG({"ab": resnet_translator(cin, c, cfg.width, cfg.depth, cfg.norm_g),
                "ba": resnet_translator(c, cin, cfg.width, cfg.depth, cfg.norm_g)})
    d = nn.ModuleDict({"a": patchgan(cin, cfg.width, cfg.patch_layers, cfg.norm_d),
                       "b": patchgan(c, cfg.width, cfg.patch_layers, cfg.norm_d)})
    return finish(g, cfg.init, cfg.norm_g), finish(d, cfg.init, cfg.norm_d)


@models.register("srgan", "SRGAN-style super-resolution: residual G with pixel-shuffle x2 stages, PatchGAN D")
def build_srgan(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, _, _ = _shape(shape, "srgan")
    g = SRGenerator(_cin(cfg, c), c, cfg.width, cfg.depth, cfg.scale or 4, cfg.norm_g)
    d = patchgan(c, cfg.width, cfg.patch_layers, cfg.norm_d)
    return finish(g, cfg.init, cfg.norm_g), finish(d, cfg.init, cfg.norm_d)


@models.register("inpaint", "inpainting: context-encoder U-Net G (image + mask), global and local PatchGAN Ds")
def build_inpaint(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, _, _ = _shape(shape, "inpaint")
    g = Inpainter(c, cfg.width, cfg.depth, cfg.norm_g)
    d = LocalGlobalD(c, cfg.width, cfg.patch_layers, cfg.norm_d)
    return finish(g, cfg.init, cfg.norm_g), finish(d, cfg.init, cfg.norm_d)


# --- inpainting's inputs: completion, the local D's crop (masks: nets/masks.py) -------------------------------

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
