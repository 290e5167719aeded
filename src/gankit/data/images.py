"""Image files as their owners see them: the one decoder and the one folder listing that every
reader uses (image folders, A/B pairs, `gankit prepare`, the inputs of `translate`, `upscale`,
`inpaint` and `anomaly`, and `gankit eval` on a folder).

Rules, each counted and said in one line (`note: ...`) by the reader that applies them:
- **Orientation**: an EXIF orientation tag (phones store photos sideways with one) is applied,
  as every image viewer does.
- **Bit depth**: 16-bit greyscale (Pillow's `I;16*` modes) and 32-bit integer images (`I`, which
  Pillow gives for 16-bit data) are read as 0..65535 and scaled to 8 bits (value / 257, rounded),
  so white stays white; Pillow's own `convert("L")` saturates them (60 % of a typical 16-bit
  image came out pure white). Float images (`F`) are read as 0..1. 16-bit RGB PNGs are reduced to
  8 bits by Pillow itself, correctly.
- **Transparency**: images with an alpha channel (or a palette with a transparent colour) are
  composited onto white, as a web page shows them.
- **Colour modes**: CMYK, YCbCr, LAB, HSV and palettes become RGB; 1-bit becomes greyscale.
- **Hidden entries**: files and folders whose name starts with "." (`.ipynb_checkpoints`,
  `.DS_Store`, `._photo.jpg`) and macOS's `__MACOSX` are skipped everywhere: they are never data.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..notes import note

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}

# what each counter means, in the order the summary line says them
_SAID = {"exif": "turned upright by their EXIF orientation", "16bit": "16-bit, scaled to 8 bits",
         "float": "floating-point, read as 0..1", "alpha": "transparent, composited onto white",
         "colour": "converted to RGB from {modes}"}


def is_hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


class Report:
    """What the decoder did to a set of images, said once for the whole set."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.modes: set[str] = set()
        self.hidden: list[str] = []  # hidden entries skipped at the top of what was listed
        self.other = 0  # files that are not images

    def add(self, counts: Counter) -> None:
        """Counters from another process (`gankit prepare`'s workers): "mode:CMYK" keys name modes."""
        for k, v in counts.items():
            if k.startswith("mode:"):
                self.modes.add(k[5:])
            else:
                self.count[k] += v

    def summary(self, name: str, n: int) -> str | None:
        parts = [_SAID[k].format(modes="/".join(sorted(self.modes))) + f": {self.count[k]}"
                 for k in _SAID if self.count[k]]
        if self.hidden:
            shown = ", ".join(self.hidden[:3]) + (", ..." if len(self.hidden) > 3 else "")
            parts.append(f"skipped {len(self.hidden)} hidden entr{'y' if len(self.hidden) == 1 else 'ies'} "
                         f"({shown})")
        if self.other:
            parts.append(f"ignored {self.other} file(s) that are not images")
        return f"{name}: {n} images; " + "; ".join(parts) if parts else None

    def say(self, name: str, n: int) -> None:
        line = self.summary(name, n)
        if line:
            note(line)


def list_images(root: Path, recursive: bool = True, report: Report | None = None) -> list[Path]:
    """The image files under `root`, sorted, hidden files and folders skipped (not descended into)."""
    root = Path(root)
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for d in sorted(dirnames):
            if is_hidden((d,)) and report is not None:
                report.hidden.append(str((here / d).relative_to(root)) + "/")
        dirnames[:] = [d for d in dirnames if not is_hidden((d,))] if recursive else []
        for f in filenames:
            p = here / f
            if is_hidden((f,)):
                if report is not None and p.suffix.lower() in IMAGE_SUFFIXES:
                    report.hidden.append(str(p.relative_to(root)))
            elif p.suffix.lower() in IMAGE_SUFFIXES:
                files.append(p)
            elif report is not None:
                report.other += 1
    return sorted(files)


def decode(path: Path, channels: int = 0, report: Report | None = None) -> Any:
    """One image file as an 8-bit PIL image by the rules above: mode "L" or "RGB" (`channels` 1 or
    3 forces one; 0 keeps greyscale images grey). Raises DataError naming the file if it cannot
    be read."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    report = report if report is not None else Report()
    try:
        with Image.open(path) as im:
            im.load()
            if _oriented(im):
                report.count["exif"] += 1
                im = ImageOps.exif_transpose(im)
            im = _eight_bit(im, report)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None
    if channels == 1 and im.mode != "L":
        im = im.convert("L")  # ITU-R 601 luma
    elif channels == 3 and im.mode != "RGB":
        im = im.convert("RGB")
    return im


def _oriented(im: Any) -> bool:
    try:
        return im.getexif().get(0x0112, 1) not in (1, None)  # 0x0112: the EXIF Orientation tag
    except Exception:  # a broken EXIF block: Pillow's exif_transpose already ignored it
        return False


def _eight_bit(im: Any, report: Report) -> Any:
    from PIL import Image

    mode = im.mode
    if mode in ("L", "RGB"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I"):  # 16-bit (I;16, I;16B, ...) or Pillow's 32-bit integer mode for 16-bit data
        a = np.asarray(im, dtype=np.float64)
        report.count["16bit"] += 1
        return Image.fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8), "L")
    if mode == "F":
        report.count["float"] += 1
        a = np.asarray(im, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8), "L")
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
        if mode == "RGB":
            return im
    if mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        report.count["alpha"] += 1
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
        return flat.convert("L") if mode in ("LA", "La") else flat
    report.count["colour"] += 1
    report.modes.add(mode)
    return im.convert("RGB")
