"""Inpainting holes: mask families, each a function `(n, h, w, g) -> (n, 1, h, w)` float masks,
1 = missing pixel, drawn from the torch.Generator `g` (the same generator state gives the same
masks).

Training draws from the families named in `model.masks` (each mask picks one of them uniformly);
`gankit eval` scores every family, each tagged trained or held out by the run's own mix, to
measure whether the inpainter fills holes of shapes it has never seen (a model that learned
"fill a rectangle" fails on a disc or a band). HELD_OUT are the families no shipped recipe
trains on. Families:

- `rect`: a rectangle, each side a quarter to half of the image's, anywhere (the first recipe's);
- `strokes`: 2-4 thick (3 px) connected random strokes (free-form masks, Yu et al. 2019 style);
- `square`: a large square, 40-60 % of the side, anywhere including the centre;
- `halfrect`: a rectangle covering up to half of the image (one side up to the full length);
- held out: `disc` (an ellipse, radii 20-35 % of the side), `boxes` (3-6 small squares of
  12-20 % of the side), `bands` (one or two full-length horizontal or vertical bands, 15-25 %
  wide), `centre` (the centred square of half the side: Pathak et al. 2016's context-encoder
  hole; a `square` mask can land there, so for runs trained on squares it is held out only as
  a family, not as a hole position).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..errors import ConfigError
from ..registry import Registry

MaskFn = Callable[[int, int, int, torch.Generator], Tensor]
mask_families: Registry[MaskFn] = Registry("mask family")
HELD_OUT = ("disc", "boxes", "bands", "centre")
DEFAULT = "rect,strokes"  # what inpainting trained on before mask families: a run without the key


def _int(lo: int, hi: int, g: torch.Generator) -> int:
    """A uniform integer in [lo, hi]."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _rect_at(m: Tensor, rh: int, rw: int, g: torch.Generator) -> None:
    h, w = m.shape[-2:]
    y, x = _int(0, h - rh, g), _int(0, w - rw, g)
    m[..., y: y + rh, x: x + rw] = 1


def _squares(n: int, h: int, w: int, g: torch.Generator, lo: float, hi: float,
             count: tuple[int, int] | None = None) -> Tensor:
    """Squares of lo..hi of the side anywhere; `count`: that many per image (one without drawing)."""
    m = torch.zeros(n, 1, h, w)
    side = min(h, w)
    for i in range(n):
        for _ in range(_int(*count, g) if count else 1):
            s = _int(round(lo * side), round(hi * side), g)
            _rect_at(m[i], s, s, g)
    return m


@mask_families.register("rect", "a rectangle, each side 1/4 to 1/2 of the image's, anywhere")
def rect(n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    m = torch.zeros(n, 1, h, w)
    for i in range(n):
        _rect_at(m[i], _int(h // 4, h // 2, g), _int(w // 4, w // 2, g), g)
    return m


@mask_families.register("strokes", "2-4 thick connected random strokes")
def strokes(n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    m = torch.zeros(n, 1, h, w)
    reach = max(2, round(6 * h / 28))  # 6 px per stroke on a 28-px digit
    for i in range(n):
        y, x = _int(0, h - 1, g), _int(0, w - 1, g)
        for _ in range(_int(2, 4, g)):
            dy, dx = torch.randint(-reach, reach + 1, (2,), generator=g).tolist()
            for t in torch.linspace(0, 1, 12).tolist():
                cy, cx = int(y + t * dy), int(x + t * dx)
                m[i, 0, max(0, cy - 1): cy + 2, max(0, cx - 1): cx + 2] = 1
            y, x = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
    return m


@mask_families.register("square", "a large square, 40-60 % of the side, anywhere including the centre")
def square(n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    return _squares(n, h, w, g, 0.4, 0.6)


@mask_families.register("halfrect", "a rectangle of up to half the image, one side up to the full length")
def halfrect(n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    m = torch.zeros(n, 1, h, w)
    for i in range(n):
        if torch.rand((), generator=g) < 0.5:
            rh = _int(h // 2, h, g)
            rw = _int(w // 4, max(w // 4, (h * w // 2) // rh), g)
        else:
            rw = _int(w // 2, w, g)
            rh = _int(h // 4, max(h // 4, (h * w // 2) // rw), g)
        _rect_at(m[i], rh, rw, g)
    return m


@mask_families.register("disc", "held out: an ellipse, radii 20-35 % of the side")
def disc(n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    m = torch.zeros(n, 1, h, w)
    for i in range(n):
        ry, rx = (torch.rand(2, generator=g) * 0.15 + 0.2).tolist()
        ry, rx = ry * h, rx * w
        cy, cx = h * float(torch.rand((), generator=g)), w * float(torch.rand((), generator=g))
        m[i, 0] = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).float()
    return m


@mask_families.register("boxes", "held out: 3-6 small squares, 12-20 % of the side each")
def boxes(n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    return _squares(n, h, w, g, 0.12, 0.2, count=(3, 6))


@mask_families.register("bands", "held out: one or two full-length bands, 15-25 % wide")
def bands(n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    m = torch.zeros(n, 1, h, w)
    for i in range(n):
        across = torch.rand((), generator=g) < 0.5
        for _ in range(_int(1, 2, g)):
            if across:
                _rect_at(m[i], _int(round(0.15 * h), round(0.25 * h), g), w, g)
            else:
                _rect_at(m[i], h, _int(round(0.15 * w), round(0.25 * w), g), g)
    return m


@mask_families.register("centre", "held out: the centred square of half the side")
def centre(n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    m = torch.zeros(n, 1, h, w)
    m[..., h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2] = 1
    return m


def parse(spec: str) -> list[str]:
    """'rect,strokes' -> ['rect', 'strokes']; ConfigError naming an unknown or empty entry."""
    names = [s.strip() for s in spec.split(",")]
    if not spec.strip() or not all(names):
        raise ConfigError(f"model.masks={spec!r}: give mask families separated by commas, e.g. {DEFAULT}")
    for name in names:
        mask_families.get(name)  # unknown: one line with the closest names
    return names


def draw(spec: str, n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    """n masks (n, 1, h, w), each from one of the families in `spec` (comma-separated) chosen
    uniformly; one family: exactly that family's draw."""
    names = parse(spec)
    if len(names) == 1:
        return mask_families.get(names[0])(n, h, w, g)
    pick = torch.randint(len(names), (n,), generator=g)
    m = torch.zeros(n, 1, h, w)
    for k, name in enumerate(names):
        idx = (pick == k).nonzero().squeeze(1)
        if len(idx):
            m[idx] = mask_families.get(name)(len(idx), h, w, g)
    return m
