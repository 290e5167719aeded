"""Users' own data: a folder of images, MNIST-format IDX files, or .npy/.npz arrays.

Every failure names the file: users fix paths, not stack traces.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..registry import Registry
from .core import Dataset, from_uint8
from .images import IMAGE_SUFFIXES, Report, decode, list_images


@dataclass(frozen=True)
class Format:
    """A data format users can point `--data` at: `matches(path)` recognises it (cheaply, from
    the path and at most a header), `load(path, cfg)` reads it into a Dataset."""

    matches: Callable[[Path], bool]
    load: Callable[[Path, Any], Dataset]


# the first format whose `matches` says yes reads the path, so more specific formats come first
formats: Registry[Format] = Registry("data format")
_ORDER: list[str] = []


def register_format(name: str, matches: Callable[[Path], bool], doc: str) -> Callable:
    def add(load: Callable[[Path, Any], Dataset]) -> Callable[[Path, Any], Dataset]:
        formats.add(name, Format(matches, load), doc)
        _ORDER.append(name)
        return load

    return add


def load_path(path: Path, cfg: Any) -> Dataset:
    """The dataset at a user's path, read by the first registered format that recognises it."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    for name in _ORDER:
        fmt = formats.get(name)
        if fmt.matches(path):
            return fmt.load(path, cfg)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise DataError(f"{path}: one image is not a dataset; pass the folder that holds the images")
    raise DataError(f"{path}: unknown data format (known: {', '.join(_ORDER)}; see `gankit list formats`)")


def held_out_index(y: torch.Tensor | None, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of the held-out tenth of a user's set (`data.split=test`; `train` is the rest):
    round(n_c / 10) examples of each class c, at least one when it has two or more, drawn by a
    permutation seeded with `seed`, so every run, `gankit eval` and the studies see the same split.
    Without labels: a tenth of all n. The built-ins keep their own fixed split (every 10th digit)."""
    from .core import shuffled_groups

    groups = [torch.arange(n)] if y is None else [(y == c).nonzero().squeeze(1) for c in range(int(y.max()) + 1)]
    return torch.cat([idx[:k] for idx, k in shuffled_groups(groups, 0.1, seed)]).sort().values


def split(ds: Dataset, which: str, path: Path) -> Dataset:
    """`data.split` on a user's set, for the families that hold data out (anomaly detection):
    train (nine tenths of each class) | test (the held-out tenth, `held_out_index`) | all. Said in
    a note line, since users' files have no split of their own. A prepared memory map streams from
    disk and is used whole (its note says so)."""
    from ..notes import note

    if which == "all":
        return ds
    if not isinstance(ds.x, torch.Tensor):
        note(f"data.split={which} does not apply to the prepared set {path.name}: all {len(ds.x)} examples are used")
        return ds
    test = torch.zeros(len(ds.x), dtype=torch.bool)
    test[held_out_index(ds.y, len(ds.x))] = True
    keep = test if which == "test" else ~test
    if not keep.any():
        raise DataError(f"{path}: {len(ds.x)} examples are too few for a held-out split (data.split={which}); "
                        "use data.split=all")
    note(f"data.split={which} on {path.name}: {int(keep.sum())} of {len(ds.x)} examples ("
         + ("the held-out tenth of each class, seed 0)" if which == "test" else "nine tenths of each class; the "
            "seeded other tenth is held out for gankit eval)"))
    pick = keep.nonzero().squeeze(1)
    a = ds.a[pick] if ds.a is not None and ds.paired else ds.a
    return Dataset(ds.x[pick], ds.y[pick] if ds.y is not None else None, ds.name, ds.classes, ds.meta, a=a,
                   paired=ds.paired, cond=ds.cond[pick] if ds.cond is not None else None)


@register_format("ab_folder", lambda p: p.is_dir() and (p / "A").is_dir() and (p / "B").is_dir(),
                 "image-to-image pairs: A/ and B/ folders, paired by file name (unpaired when no name is shared)")
def _ab_folder(path: Path, cfg: Any) -> Dataset:
    from .paired import load_ab_folder

    return load_ab_folder(path)


@register_format("image_folder", lambda p: p.is_dir(),
                 "a folder of PNG/JPEG/... images; labels from sub-folder names")
def _image_folder(path: Path, cfg: Any) -> Dataset:
    return load_folder(path, cfg.image_size)


def _is_idx(p: Path) -> bool:
    return "idx3-ubyte" in p.name or "idx3_ubyte" in p.name or "-ubyte" in p.name


@register_format("idx", _is_idx, "MNIST-format *-images-idx3-ubyte[.gz], with the matching labels file if present")
def _idx(path: Path, cfg: Any) -> Dataset:
    return load_idx(path)


def _is_prepared(p: Path) -> bool:
    from .prepared import is_prepared

    return p.suffix in (".npy", ".npz") and is_prepared(p)


@register_format("prepared", _is_prepared, "a uint8 memory map written by gankit prepare (streamed by workers)")
def _prepared(path: Path, cfg: Any) -> Dataset:
    from .prepared import load_prepared

    return load_prepared(path)


def class_indices(labels: np.ndarray, path: Path, key: str = "labels") -> tuple[torch.Tensor, list[str]]:
    """A file's labels as class indices 0..K-1 and the class names. Labels must be whole,
    non-negative numbers (DataError naming the first bad ones otherwise; -1 often marks
    "unlabelled", which is not a class). Labels that skip values (1..3, or 0 and 255) are mapped
    to 0..K-1 in order, their values kept as the class names, and the mapping is said."""
    from ..notes import note

    a = np.asarray(labels).reshape(-1)
    if a.size == 0:
        raise DataError(f"{path}: {key} is empty")
    if a.dtype.kind not in "uif":
        raise DataError(f"{path}: {key} must hold class numbers, got dtype {a.dtype}")
    bad = ~np.isfinite(a) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
    if a.dtype.kind == "f":
        bad |= np.isfinite(a) & (a != np.round(np.nan_to_num(a)))
    bad |= np.nan_to_num(a, nan=0.0) < 0
    if bad.any():
        shown = ", ".join(f"{v:g}" for v in np.unique(a[bad])[:5])
        raise DataError(f"{path}: {key} holds {shown} ({int(bad.sum())} of {a.size} examples); labels must be "
                        "class numbers 0, 1, 2, ... (drop unlabelled examples, or leave the labels out)")
    a = a.astype(np.int64)
    values = np.unique(a)
    if values[-1] != len(values) - 1:  # values skip some numbers: map to 0..K-1, in order
        classes = [str(v) for v in values]
        shown = ", ".join(f"{v}->{i}" for i, v in enumerate(values[:6])) + (", ..." if len(values) > 6 else "")
        note(f"{path}: {len(values)} classes with labels {values[0]}..{values[-1]}; mapped to class indices "
             f"0..{len(values) - 1} ({shown}), the labels kept as class names")
        return torch.from_numpy(np.searchsorted(values, a)), classes
    return torch.from_numpy(a), [str(i) for i in range(len(values))]


# --- IDX (the MNIST file format) -------------------------------------------------------------

def _read_idx(path: Path) -> np.ndarray:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    count = int(np.prod(dims)) if dims else 0
    if len(raw) - head != count:
        raise DataError(f"{path}: IDX header says {dims} ({count} bytes) but the file holds {len(raw) - head}")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims)


def _labels_path(images: Path) -> Path | None:
    name = images.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1"), ("images_idx3", "labels_idx1")):
        if a in name:
            cand = images.with_name(name.replace(a, b))
            if cand.exists():
                return cand
            alt = cand.with_name(cand.name[:-3]) if cand.name.endswith(".gz") else cand.with_name(cand.name + ".gz")
            if alt.exists():
                return alt
    return None


def load_idx(path: Path) -> Dataset:
    x = _read_idx(path)
    if x.ndim != 3:
        raise DataError(f"{path}: expected an IDX image file with 3 dimensions (N,H,W), got {x.ndim}")
    y = None
    lp = _labels_path(path)
    if lp is not None:
        labels = _read_idx(lp)
        if labels.ndim != 1 or len(labels) != len(x):
            raise DataError(f"{lp}: {labels.shape} labels do not match {len(x)} images in {path.name}")
        y, classes = class_indices(labels, lp)
    else:
        classes = None
    return Dataset(from_uint8(x[:, None]), y, path.name, classes)


# --- image folders ---------------------------------------------------------------------------

def load_folder(root: Path, image_size: int = 0) -> Dataset:
    """Every image under `root` (decoded by `data.images.decode`: bit depth, orientation and
    transparency as their owners see them; hidden entries skipped), labelled by class sub-folder
    when every image sits in one."""
    from PIL import Image

    report = Report()
    files = list_images(root, report=report)
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    # labels from sub-folder names, but only when every image sits in a class folder
    parents = [p.relative_to(root).parts for p in files]
    labelled = all(len(parts) == 2 for parts in parents)
    classes = sorted({parts[0] for parts in parents}) if labelled else None
    images, sizes, gray = [], {}, True
    for p in files:
        im = decode(p, 0, report)
        if im.mode == "RGB":
            gray = False
        if image_size:
            if im.size != (image_size, image_size):
                im = im.resize((image_size, image_size), Image.Resampling.LANCZOS)
        else:
            sizes.setdefault(im.size, p)
            if len(sizes) > 1:
                (s1, p1), (s2, p2) = list(sizes.items())[:2]
                raise DataError(
                    f"{p2}: size {s2[0]}x{s2[1]} differs from {p1.name} ({s1[0]}x{s1[1]}); "
                    "set data.image_size (or --set data.image_size=N) to resize all images"
                )
        images.append(im)
    report.say(str(root), len(files))
    arrs = [np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8) for im in images]
    a = np.stack(arrs)
    a = a[:, None] if gray else a.transpose(0, 3, 1, 2)
    y = None
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        y = torch.tensor([index[parts[0]] for parts in parents], dtype=torch.int64)
    return Dataset(from_uint8(a), y, root.name, classes)


# --- numpy arrays ----------------------------------------------------------------------------

def _to_nchw(a: np.ndarray, path: Path) -> np.ndarray:
    if a.ndim == 3:
        return a[:, None]
    if a.ndim == 4:
        if a.shape[1] in (1, 3):
            if a.shape[3] in (1, 3):  # both readings possible: say which one
                from ..notes import note

                n, c, h, w = a.shape
                note(f"{path}: shape {a.shape} read channels-first: {n} images of {c} channel(s), {h}x{w} pixels; "
                     f"for {n} images of {w} channel(s), {c}x{h} pixels (channels last), save it as "
                     f"(N,C,H,W) = {(n, w, c, h)}")
            return a
        if a.shape[3] in (1, 3):
            return a.transpose(0, 3, 1, 2)
    raise DataError(f"{path}: expected images (N,H,W), (N,C,H,W) or (N,H,W,C) with C in 1/3, or points (N,D); "
                    f"got shape {a.shape}")


@register_format("array", lambda p: p.suffix in (".npy", ".npz"),
                 ".npy images, or .npz with x (or images) and optional y")
def _array(path: Path, cfg: Any) -> Dataset:
    return load_array(path)


def load_array(path: Path) -> Dataset:
    try:
        obj = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read array ({e})") from None
    y, classes = None, None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            keys = list(obj.keys())
            xk = next((k for k in ("x", "images", "arr_0") if k in keys), None)
            if xk is None:
                raise DataError(f"{path}: .npz needs an array named x or images (found {', '.join(keys)})")
            a = obj[xk]
            yk = next((k for k in ("y", "labels") if k in keys), None)
            if yk is not None:
                y, classes = class_indices(obj[yk], path, yk)
    else:
        a = obj
    if a.size == 0:
        raise DataError(f"{path}: the array is empty")
    if a.dtype.kind not in "uif":
        raise DataError(f"{path}: expected a numeric array, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise DataError(f"{path}: the array holds NaN or infinite values")
    if a.ndim == 2:  # points, e.g. the user's own 2-D toy data: used as they are
        return Dataset(torch.from_numpy(a.astype(np.float32)), y, path.name, classes)
    a = _to_nchw(a, path)
    lo, hi = float(a.min()), float(a.max())
    if a.dtype == np.uint8 or hi > 1.0:
        if lo < 0 or hi > 255:
            raise DataError(f"{path}: values span [{lo:g}, {hi:g}]; expected [0,255], [0,1] or [-1,1]")
        x = from_uint8(a)
    elif lo >= 0:
        x = torch.from_numpy(a.astype(np.float32)) * 2 - 1
    else:
        if lo < -1:
            raise DataError(f"{path}: values span [{lo:g}, {hi:g}]; expected [0,255], [0,1] or [-1,1]")
        x = torch.from_numpy(a.astype(np.float32))
    return Dataset(x.contiguous(), y, path.name, classes)
