"""`shapes`: a small RGB image set drawn procedurally, the stand-in for "my own colour photos".

Why it exists: every embedded set is grayscale digits, and a recipe for a user's small RGB folder
must be tuned and tested on something RGB, offline. Each image (3x32x32) is one filled shape
(circle, square or triangle: the class label) of a random saturated colour, size, position and
rotation, on a light background with a soft vertical gradient. Shapes are drawn at 4x and
box-filtered down, so their edges are anti-aliased as in a resized photo. The draw is seeded
and fixed (seed 0): the same 3000 images on every machine.
"""

from __future__ import annotations

import colorsys
import functools
import math
from typing import Any

import numpy as np
import torch

from .core import Dataset, cached_arrays, datasets, from_uint8

CLASSES = ("circle", "square", "triangle")
SIZE = 32
COUNT = 3000
_SUPER = 4  # drawn at 4x, then averaged over 4x4 pixels


def _polygon(cx: float, cy: float, r: float, sides: int, angle: float) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(angle + 2 * math.pi * k / sides), cy + r * math.sin(angle + 2 * math.pi * k / sides))
            for k in range(sides)]


def draw(rng: np.random.Generator, shape: int, size: int = SIZE) -> np.ndarray:
    """One image, uint8 (3, size, size), of class `shape` (an index into CLASSES)."""
    from PIL import Image, ImageDraw

    big = size * _SUPER
    top = np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.25), rng.uniform(0.8, 1.0)))
    bottom = np.clip(top - rng.uniform(0.0, 0.15), 0, 1)
    t = np.linspace(0, 1, big)[:, None, None]
    bg = ((1 - t) * top + t * bottom) * 255  # (big, 1, 3): a soft vertical gradient
    img = Image.fromarray(np.broadcast_to(bg, (big, big, 3)).astype(np.uint8))
    colour = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.6, 1.0),
                                                                  rng.uniform(0.35, 0.9)))
    r = rng.uniform(0.18, 0.36) * big  # circumradius
    cx, cy = rng.uniform(r, big - r), rng.uniform(r, big - r)
    d = ImageDraw.Draw(img)
    if CLASSES[shape] == "circle":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        sides = 4 if CLASSES[shape] == "square" else 3
        d.polygon(_polygon(cx, cy, r, sides, rng.uniform(0, 2 * math.pi)), fill=colour)
    a = np.asarray(img, dtype=np.float32).reshape(size, _SUPER, size, _SUPER, 3).mean((1, 3))
    return a.round().astype(np.uint8).transpose(2, 0, 1)


VERSION = 1  # bump when `draw` changes: the cached copy is named by it


@functools.lru_cache(maxsize=1)
def arrays() -> tuple[np.ndarray, np.ndarray]:
    """The set as uint8 (3000, 3, 32, 32) and int64 labels (classes in turn), read-only. Drawing
    takes seconds; the arrays are kept in the cache folder (9 MB) like mnist5k's."""

    def make() -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        y = np.arange(COUNT, dtype=np.int64) % len(CLASSES)
        return np.stack([draw(rng, int(c)) for c in y]), y

    return cached_arrays(f"shapes-v{VERSION}", make,
                         lambda x, y: x.shape == (COUNT, 3, SIZE, SIZE) and x.dtype == np.uint8 and y.shape == (COUNT,))


@datasets.register("shapes", f"{COUNT} procedurally drawn RGB shapes (circle/square/triangle, 32x32x3)")
def _shapes(cfg: Any) -> Dataset:
    from .paired import split_index

    x, y = arrays()
    idx = split_index(len(x), getattr(cfg, "split", "all"))
    return Dataset(from_uint8(x)[idx], torch.from_numpy(y.astype(np.int64))[idx], "shapes", list(CLASSES))
