"""Matplotlib figures (Agg backend, files only): loss curves and toy 2-D scatter plots."""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_log(path: Path) -> list[dict]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash must not hide the rest
    return rows


def loss_plot(log: Path, out: Path) -> bool:
    """Two panels: the losses, and mean D outputs on real vs fake (the game's balance)."""
    rows = [r for r in read_log(log) if r.get("event") == "log"]
    if not rows:
        return False
    plt = _pyplot()
    steps = [r["step"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss")):
        a.plot(steps, [r.get(key, float("nan")) for r in rows], label=label)
    a.set_xlabel("step"), a.set_title("losses"), a.legend()
    for key, label in (("d_real", "D(x) (logit)"), ("d_fake", "D(G(z)) (logit)")):
        b.plot(steps, [r.get(key, float("nan")) for r in rows], label=label)
    b.set_xlabel("step"), b.set_title("discriminator outputs"), b.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return True


def scatter(points: Tensor, real: Tensor | None, path: Path, title: str = ""):
    """Toy data: generated points over a sample of real points. Returns a PIL image."""
    from PIL import Image

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="#bbbbbb", label="real")
    ax.scatter(points[:, 0].cpu(), points[:, 1].cpu(), s=2, c="#d62728", label="generated")
    lim = float(real.abs().max()) * 1.3 if real is not None else None
    if lim:
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim)
    ax.set_aspect("equal"), ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Image.open(path).convert("RGB")
