"""Image sets larger than memory: `gankit prepare FOLDER --out data.npy --size 64` converts a
folder once into a uint8 memory-mapped array (N,C,S,S), its labels (`data.labels.npy`, from
class sub-folders) and a manifest (`data.json`). Training then reads batches from the map
instead of holding the set as float32 in memory (4x smaller, and only touched pages are read),
and worker processes load the next batches while the current step computes.

The run's batch order does not depend on the workers: they load the batches the resumable
sampler will ask for next (it is deterministic), and a batch is used only if its indices are
exactly the ones asked for; otherwise it is read directly. So resume stays exact.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError

log = logging.getLogger("gankit")
MAGIC = "gankit-prepared-1"


def manifest_path(npy: Path) -> Path:
    return npy.with_suffix(".json")


def labels_path(npy: Path) -> Path:
    return npy.with_name(npy.stem + ".labels.npy")


def is_prepared(path: Path) -> bool:
    m = manifest_path(path)
    if path.suffix != ".npy" or not m.exists():
        return False
    try:
        return json.loads(m.read_text()).get("format") == MAGIC
    except (OSError, ValueError):
        return False


def _load_one(args: tuple[str, int, int]) -> tuple[np.ndarray, Counter]:
    """One image file -> uint8 (C,S,S), resized to cover SxS and centre-cropped (aspect kept),
    and what decoding it did (data.images' counters, summed over the set by the caller)."""
    from PIL import Image

    from .images import Report, decode

    path, size, channels = args
    report = Report()
    im = decode(Path(path), channels, report)
    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.LANCZOS)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    a = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)
    counts = report.count + Counter({f"mode:{m}": 1 for m in report.modes})
    return (a[None] if channels == 1 else a.transpose(2, 0, 1)), counts


def prepare_folder(root: Path, out: Path, size: int, channels: int = 0, workers: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write out (.npy uint8 memmap), its labels and manifest; returns the manifest.
    channels 0 = RGB if any image is colour, else grayscale (decided from the first 100 files)."""
    from PIL import Image

    from .images import GREY_MODES, IMAGE_SUFFIXES, Report, list_images

    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of images")
    if out.suffix != ".npy":
        raise DataError(f"{out}: the output must be a .npy file")
    if size < 4:
        raise DataError(f"--size must be at least 4, got {size}")
    report = Report()
    files = list_images(root, report=report)
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    parts = [p.relative_to(root).parts for p in files]
    classes = sorted({q[0] for q in parts}) if all(len(q) == 2 for q in parts) else None
    if not channels:
        channels = 1
        for p in files[:100]:
            try:
                with Image.open(p) as im:
                    mode = im.mode
            except (OSError, ValueError):  # reported by name when the image is decoded below
                continue
            if mode not in GREY_MODES:
                channels = 3
                break
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    jobs = [(str(p), size, channels) for p in files]
    t0 = time.perf_counter()
    workers = workers or max(1, min(len(files) // 256, mp.cpu_count()))
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), channels, size, size))
        if workers > 1:
            with mp.get_context("spawn").Pool(workers) as pool:  # decoding is CPU-bound: processes, not threads
                for i, (a, counts) in enumerate(pool.imap(_load_one, jobs, chunksize=64)):
                    arr[i] = a
                    report.add(counts)
                    if progress and i % 1000 == 0:
                        progress(i, len(files))
        else:
            for i, job in enumerate(jobs):
                arr[i], counts = _load_one(job)
                report.add(counts)
        arr.flush()
        del arr
        tmp.replace(out)  # the array appears whole or not at all
    except OSError as e:  # a full disk or a folder we may not write: one line, nothing left behind
        raise DataError(f"{out}: cannot write the prepared set ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    report.say(str(root), len(files))
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        np.save(labels_path(out), np.array([index[q[0]] for q in parts], dtype=np.int64))
    manifest = {"format": MAGIC, "source": str(root.resolve()), "n": len(files), "shape": [channels, size, size],
                "dtype": "uint8", "classes": classes, "labels": labels_path(out).name if classes else None,
                "seconds": round(time.perf_counter() - t0, 2)}
    manifest_path(out).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


class _Rows(torch.utils.data.Dataset):
    """Worker-side reader: opens the map lazily in each worker process."""

    def __init__(self, path: Path) -> None:
        self.path, self._a = path, None

    def __len__(self) -> int:
        return 1 << 62  # indexed by index tensors, never enumerated

    def __getitem__(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        if self._a is None:
            self._a = np.load(self.path, mmap_mode="r")
        return idx, torch.from_numpy(_gather(self._a, idx.numpy()))


def _gather(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    # sorted reads are sequential on disk; then back to the asked order
    order = np.argsort(idx, kind="stable")
    rows = a[idx[order]]
    out = np.empty_like(rows)
    out[order] = rows
    return out


class Streamed:
    """The part of a float image tensor's interface the training loop and metrics use, backed by a
    uint8 memmap: x[idx] (index tensor or slice) gives float32 images in [-1, 1]."""

    def __init__(self, path: Path, n: int | None = None, device: torch.device | None = None,
                 channels_last: bool = False) -> None:
        self.path = Path(path)
        self._a = np.load(self.path, mmap_mode="r")
        if self._a.dtype != np.uint8 or self._a.ndim != 4:
            raise DataError(f"{path}: a prepared set must be uint8 (N,C,H,W), got {self._a.dtype} {self._a.shape}")
        self.n = min(n, len(self._a)) if n else len(self._a)
        self.device = device or torch.device("cpu")
        self.channels_last = channels_last
        self._it: Iterator | None = None
        self._loader: Any = None
        self.prefetched = self.direct = 0  # batches served by the workers / read in the step

    # --- tensor-like ------------------------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.n, *self._a.shape[1:]))

    dtype = torch.float32

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return self.n

    def to(self, device: torch.device | str) -> Streamed:
        other = Streamed(self.path, self.n, torch.device(device), self.channels_last)
        return other

    def contiguous(self, memory_format: torch.memory_format = torch.contiguous_format) -> Streamed:
        return Streamed(self.path, self.n, self.device, memory_format == torch.channels_last)

    def __getitem__(self, idx: Tensor | slice | int) -> Tensor:
        if isinstance(idx, slice):
            idx = torch.arange(self.n)[idx]
        elif isinstance(idx, int):
            return self[torch.tensor([idx])][0]
        idx = torch.as_tensor(idx).reshape(-1).cpu()
        if len(idx) and (int(idx.max()) >= self.n or int(idx.min()) < 0):
            raise IndexError(f"index out of range for {self.n} prepared images")
        raw = self._prefetched(idx)
        if raw is None:
            raw = torch.from_numpy(_gather(self._a, idx.numpy()))
            self.direct += 1
        else:
            self.prefetched += 1
        x = raw.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def rows(self, limit: int) -> Tensor:
        """At most `limit` images evenly spaced over the set, as one float tensor (for metrics)."""
        idx = torch.linspace(0, self.n - 1, min(limit, self.n)).round().long()
        return self[idx].cpu()

    # --- prefetching ------------------------------------------------------------------------
    def stream(self, upcoming: Iterator[Tensor], workers: int = 2, depth: int = 4) -> None:
        """Have `workers` processes load the batches `upcoming` yields, in order, ahead of use."""
        self.stop()
        self._loader = torch.utils.data.DataLoader(_Rows(self.path), batch_size=None, sampler=upcoming,
                                                   num_workers=workers, prefetch_factor=depth,
                                                   multiprocessing_context="spawn", persistent_workers=False)
        self._it = iter(self._loader)

    def _prefetched(self, idx: Tensor) -> Tensor | None:
        if self._it is None:
            return None
        try:
            ids, raw = next(self._it)
        except StopIteration:
            self._it = None
            return None
        if torch.equal(ids, idx):
            return raw
        log.debug("prefetch out of step with the sampler; reading directly from now on")
        self.stop()
        return None

    def stop(self) -> None:
        self._it = None  # dropping the iterator shuts its workers down
        self._loader = None


def load_prepared(path: Path) -> Any:
    from .core import Dataset

    manifest = json.loads(manifest_path(path).read_text())
    y, classes = None, manifest.get("classes")
    if manifest.get("labels"):
        lp = path.with_name(manifest["labels"])
        if not lp.exists():
            raise DataError(f"{lp}: labels named in {manifest_path(path).name} are missing")
        y = torch.from_numpy(np.load(lp).astype(np.int64))
    x = Streamed(path)
    if list(x.shape[1:]) != manifest["shape"] or len(x) != manifest["n"]:
        raise DataError(f"{path}: holds {tuple(x.shape)}, but its manifest says {manifest['n']} x {manifest['shape']}")
    return Dataset(x, y, path.name, classes, {"prepared": manifest})
