"""Data for image-to-image tasks: inputs A beside targets B (`Dataset.a` beside `Dataset.x`).

Built-ins derived from the embedded data, so every task runs offline:
- `edges2digits` (paired): A = the outline of each digit (dilation minus erosion), B = the digit.
- `thin2thick` (unpaired): A = thinned digits (erosion) from half of the set, B = thickened
  digits (dilation) from the other half; no digit appears on both sides.
- `lowres4_mnist` (paired): A = 4x4 average pooling of the digit (7x7), B = the digit (28x28).
- `colorize_photos` (paired, RGB): 64x64 crops of the two photos scikit-learn ships; A = their
  luma (1 channel), B = the colour crop. Test crops come from a strip of each photo that
  training crops never touch.
Each takes `data.split`: train (9 of every 10 digits), test (every 10th) or all.

Users' data: a folder with `A/` and `B/` sub-folders, paired by file name when the names agree
(a partial match is an error naming the files without a partner) and unpaired when none do; or
side-by-side A|B images (the pix2pix layout), split down the middle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from .core import Dataset, _mnist5k_arrays, datasets, from_uint8


def split_index(n: int, split: str) -> Tensor:
    i = torch.arange(n)
    if split == "test":
        return i[i % 10 == 9]
    if split == "train":
        return i[i % 10 != 9]
    return i


def _digits(split: str) -> tuple[Tensor, Tensor]:
    x, y = _mnist5k_arrays()
    idx = split_index(len(x), split)
    return from_uint8(x.reshape(-1, 1, 28, 28))[idx], torch.from_numpy(y.astype(np.int64))[idx]


def _ink(x: Tensor) -> Tensor:
    return (x + 1) / 2  # [-1, 1] -> [0, 1]


def _from_ink(v: Tensor) -> Tensor:
    return v.clamp(0, 1) * 2 - 1


def dilate(x: Tensor, k: int = 3) -> Tensor:
    return _from_ink(F.max_pool2d(_ink(x), k, 1, k // 2))


def erode(x: Tensor, k: int = 2) -> Tensor:
    v = _ink(x)
    if k % 2 == 0:  # an even window: pad right/bottom so the image does not shift by a whole pixel
        v = F.pad(v, (0, k - 1, 0, k - 1))
        return _from_ink(-F.max_pool2d(-v, k, 1, 0))
    return _from_ink(-F.max_pool2d(-v, k, 1, k // 2))


def edges(x: Tensor) -> Tensor:
    """The outline of the strokes: binarise, then dilation minus erosion (a 1-2 px contour)."""
    ink = (x > 0).float()
    outline = F.max_pool2d(ink, 3, 1, 1) + F.max_pool2d(-ink, 3, 1, 1)  # dilation - erosion
    return outline * 2 - 1


def stroke_width(x: Tensor) -> Tensor:
    """A per-image stroke thickness: ink pixels per pixel of eroded ink (thick strokes survive
    erosion, thin ones mostly vanish), from binarised images; used to judge thin vs thick."""
    ink = (x > 0).float()
    eroded = -F.max_pool2d(-ink, 3, 1, 1)
    return eroded.flatten(1).sum(1) / ink.flatten(1).sum(1).clamp(min=1)


@datasets.register("edges2digits", "paired: digit outlines (A) -> mnist5k digits (B); data.split")
def _edges2digits(cfg: Any) -> Dataset:
    x, y = _digits(cfg.split)
    return Dataset(x, y, "edges2digits", [str(i) for i in range(10)], a=edges(x))


@datasets.register("thin2thick", "unpaired: thinned digits (A) and thickened digits (B), disjoint halves")
def _thin2thick(cfg: Any) -> Dataset:
    x, y = _digits(cfg.split)
    half = torch.arange(len(x)) % 2 == 0
    a, b = erode(x[half]), dilate(x[~half])
    return Dataset(b, y[~half], "thin2thick", [str(i) for i in range(10)], meta={"a_labels": y[half]}, a=a,
                   paired=False)


@datasets.register("lowres4_mnist", "paired: 4x4 average-pooled digits (7x7, A) -> the digits (28x28, B)")
def _lowres4(cfg: Any) -> Dataset:
    x, y = _digits(cfg.split)
    return Dataset(x, y, "lowres4_mnist", [str(i) for i in range(10)], a=F.avg_pool2d(x, 4))


@datasets.register("colorize_photos", "paired RGB: 64x64 crops of scikit-learn's sample photos, luma (A) -> colour (B)")
def _colorize(cfg: Any) -> Dataset:
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # two 427x640 RGB photos shipped with scikit-learn
    # held out by place, not by crop: test crops come from the right-most 128 columns of each
    # photo, which no training crop touches (random crops would overlap the test pixels)
    cols = {"train": (0, 512 - 64), "test": (512, 640 - 64), "all": (0, 640 - 64)}[cfg.split]
    rng = np.random.default_rng({"train": 0, "test": 1, "all": 2}[cfg.split])
    crops = []
    for i in range(240 if cfg.split == "test" else 2400):
        im = photos[i % len(photos)]
        r, c = rng.integers(0, im.shape[0] - 64), rng.integers(cols[0], cols[1] + 1)
        crops.append(im[r: r + 64, c: c + 64])
    b = from_uint8(np.stack(crops).transpose(0, 3, 1, 2))
    luma = (b * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    photo = torch.arange(len(b)) % len(photos)  # the label: which photo the crop comes from
    return Dataset(b, photo, "colorize_photos", ["china", "flower"], a=luma)


def load_ab_folder(root: Path) -> Dataset:
    """`root/A` and `root/B`: paired by file name, or unpaired when no names agree."""
    from .files import load_folder
    from .images import list_images

    def names(d: Path) -> dict[str, Path]:
        return {p.relative_to(d).as_posix(): p for p in list_images(d)}

    na, nb = names(root / "A"), names(root / "B")
    common = set(na) & set(nb)
    a, b = load_folder(root / "A"), load_folder(root / "B")
    if not common:
        return Dataset(b.x, b.y, root.name, b.classes, a=a.x, paired=False)
    lonely = sorted((set(na) | set(nb)) - common)
    if lonely:
        side = "A" if lonely[0] in na else "B"
        other = "B" if side == "A" else "A"
        raise DataError(f"{root}/{side}/{lonely[0]} has no partner in {root}/{other}/ "
                        f"({len(lonely)} unmatched files; pairs are matched by file name)")
    # load_folder sorts files the same way in both folders, so row i of A and of B are one pair
    return Dataset(b.x, b.y, root.name, b.classes, a=a.x)


def split_side_by_side(ds: Dataset) -> Dataset:
    """pix2pix's layout: each image is A|B side by side (width = 2 x height)."""
    w = ds.x.shape[-1]
    if w % 2 or w != 2 * ds.x.shape[-2]:
        raise DataError(f"{ds.name}: a paired task needs A/ and B/ folders or side-by-side A|B images "
                        f"(width = 2 x height); these images are {ds.x.shape[-1]}x{ds.x.shape[-2]}")
    return Dataset(ds.x[..., w // 2:].contiguous(), ds.y, ds.name, ds.classes, ds.meta,
                   a=ds.x[..., : w // 2].contiguous())
