"""Convolutional GANs: the seed tutorial's DCGAN exactly, and a DCGAN that adapts to the data."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError
from .layers import Logit, Reshape, activation, attention_at, check_attention, finish, norm1d, norm2d
from .registry import image_shape, models


@models.register("dcgan_seed", "the seed tutorial's DCGAN: 5x5 convs, G 7x7x256->128->64->C, D 64-128-256-512")
def build_seed(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, s = image_shape(shape, "dcgan_seed")
    if s % 4:
        raise ConfigError(f"dcgan_seed needs an image size divisible by 4, got {s}")
    s0, m, slope = s // 4, cfg.bn_momentum, cfg.leaky_slope
    ng, nd = cfg.norm_g, cfg.norm_d

    def up(cin: int, cout: int, stride: int) -> list[nn.Module]:
        # Keras 'same' padding: stride 1 keeps the size, stride 2 doubles it
        return [nn.ConvTranspose2d(cin, cout, 5, stride, 2, output_padding=stride - 1, bias=False),
                norm2d(ng, cout, m), activation(cfg.act_g, slope)]

    g = nn.Sequential(
        nn.Linear(cfg.z_dim, s0 * s0 * 256, bias=False), norm1d(ng, s0 * s0 * 256, m), activation(cfg.act_g, slope),
        Reshape(256, s0, s0),
        *up(256, 128, 1), *up(128, 64, 2),
        nn.ConvTranspose2d(64, c, 5, 2, 2, output_padding=1, bias=False), nn.Tanh(),
    )

    def down(cin: int, cout: int, stride: int) -> list[nn.Module]:
        layers = [nn.Conv2d(cin, cout, 5, stride, 2), norm2d(nd, cout, m), activation(cfg.act_d, slope)]
        return layers + ([nn.Dropout(cfg.dropout_d)] if cfg.dropout_d else [])

    s_end = -(-(-(-s // 2) // 2) // 2)  # three stride-2 'same' convs: ceil thrice
    d = nn.Sequential(*down(c, 64, 2), *down(64, 128, 2), *down(128, 256, 2), *down(256, 512, 1),
                      Logit(512 * s_end * s_end))
    return finish(g, cfg.init, ng), finish(d, cfg.init, nd)


def _levels(s: int) -> tuple[int, int]:
    """Smallest k >= 1 with s = s0 * 2**k and s0 <= 7: 28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4)."""
    k = 1
    while s % (2**k) == 0:
        if s // 2**k <= 7:
            return s // 2**k, k
        k += 1
    raise ConfigError(f"dcgan needs an image size of the form s0*2^k with s0 <= 7 (e.g. 8, 28, 32, 64), got {s}")


@models.register("dcgan", "DCGAN for any size s0*2^k (28, 32, 64, ...) and 1 or 3 channels; 4x4 stride-2 convs")
def build_dcgan(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, s = image_shape(shape, "dcgan")
    s0, k = _levels(s)
    m, slope, w = cfg.bn_momentum, cfg.leaky_slope, cfg.width
    chans = [w * 2 ** (k - 1 - i) for i in range(k)]  # e.g. 28px, w=64: [128, 64]
    sizes = [s0 * 2**i for i in range(k)]  # feature-map sizes inside the nets (not the image's)
    check_attention(cfg.attention, sizes)

    def attend(size: int, ch: int) -> list[nn.Module]:
        return attention_at(cfg.attention, size, ch)

    gl: list[nn.Module] = [nn.Linear(cfg.z_dim, chans[0] * s0 * s0, bias=cfg.norm_g != "batch"),
                           norm1d(cfg.norm_g, chans[0] * s0 * s0, m), activation(cfg.act_g, slope),
                           Reshape(chans[0], s0, s0), *attend(s0, chans[0])]
    for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:], strict=True)):
        gl += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=cfg.norm_g != "batch"), norm2d(cfg.norm_g, cout, m),
               activation(cfg.act_g, slope), *attend(sizes[i + 1], cout)]
    gl += [nn.ConvTranspose2d(chans[-1], c, 4, 2, 1), nn.Tanh()]
    g = nn.Sequential(*gl)

    dchans = chans[::-1]  # e.g. [64, 128]
    dl: list[nn.Module] = []
    cin = c
    for i, cout in enumerate(dchans):
        # DCGAN convention: no normalisation on D's first layer (it would fix the input scale)
        norm = norm2d(cfg.norm_d, cout, m) if i > 0 else nn.Identity()
        dl += [nn.Conv2d(cin, cout, 4, 2, 1), norm, activation(cfg.act_d, slope)]
        if cfg.dropout_d:
            dl.append(nn.Dropout(cfg.dropout_d))
        dl += attend(sizes[k - 1 - i], cout)
        cin = cout
    d = nn.Sequential(*dl, Logit(cin * s0 * s0))
    return finish(g, cfg.init, cfg.norm_g), finish(d, cfg.init, cfg.norm_d)
