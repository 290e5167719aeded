"""Image grids and GIFs with Pillow and numpy (no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin
from torch import Tensor


def to_uint8(x: Tensor) -> np.ndarray:
    """(N,C,H,W) in [-1,1] -> (N,H,W,C) uint8."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def grid(x: Tensor, nrow: int | None = None, pad: int = 2, scale: int = 1) -> Image.Image:
    """Tile images (N,C,H,W) in [-1,1] into one picture, nrow per row (default: square-ish)."""
    if x.dim() != 4:
        raise ValueError(f"grid needs images (N,C,H,W), got shape {tuple(x.shape)}")
    a = to_uint8(x)
    n, h, w, c = a.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255 if c == 1 else 40, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y0: y0 + h, x0: x0 + w] = a[i]
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return img


def provenance(info: dict[str, str]) -> PngImagePlugin.PngInfo:
    """PNG text chunks saying the image is generated, by which model and seed."""
    meta = PngImagePlugin.PngInfo()
    meta.add_text("Software", "gankit")
    meta.add_text("gankit:generated", "true")
    for k, v in info.items():
        meta.add_text(f"gankit:{k}", str(v))
    return meta


def save_png(img: Image.Image, path: Path, info: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, pnginfo=provenance(info or {}))


def save_gif(frames: list[Image.Image], path: Path, ms: int = 200) -> None:
    if not frames:
        return
    frames = [f.convert("P", palette=Image.Palette.ADAPTIVE) if f.mode == "RGB" else f for f in frames]
    # hold the last frame so the final samples are easy to look at
    durations = [ms] * (len(frames) - 1) + [ms * 8]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
