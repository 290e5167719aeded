"""`gankit study text2image`: GAN-CLS against a plain conditional D, over seeds, on the
`text2image_digits` recipe (families/text2image.py has the model, data/captions.py the
captions, metrics/captions.py the scores).

Each cell trains the recipe through the public API (`gankit.train`, fp32, no EMA: the method
itself is measured) with `text.matching` gan-cls or none, and scores the run with `gankit.evaluate`
on the held-out tenth of mnist5k: class accuracy, attribute correlation per attribute (the same r
on the held-out real digits is the ceiling), FID in digit-CNN features, diversity.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.captions import ATTRIBUTES
from ..errors import GankitError
from . import summarize_by

CONDITIONS = ("gan-cls", "none")  # text.matching


@dataclass
class Settings:
    seeds: int = 3
    steps: int = 2500  # GAN steps (batch 64) per seed and condition
    text_steps: int = 400  # caption-encoder steps
    nz: int = 64
    width: int = 32
    keep_word: float = 0.7
    # MSGAN weight. Trials at 2500 steps, seed 0: 0 -> diversity 0.58, about one digit per caption
    # whatever z; 1 (tried before D had its projection term) -> z took over and the caption was
    # lost; 0.2 -> diversity 1.02 with 95 % class accuracy
    mode_seeking: float = 0.2
    conditions: tuple[str, ...] = CONDITIONS


REDUCED = Settings()
FULL = Settings(seeds=5, steps=10000, width=64)


def overrides(s: Settings, condition: str) -> list[str]:
    """The recipe settings of one study cell."""
    if condition not in CONDITIONS:
        raise GankitError(f"unknown text2image condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    return [f"text.matching={condition}", f"text.keep_word={s.keep_word}", f"text.mode_seeking={s.mode_seeking}",
            f"text.encoder_steps={s.text_steps}", f"model.z_dim={s.nz}", f"model.width={s.width}",
            "train.ema_beta=0", "train.precision=fp32", "train.channels_last=off", "train.sample_every=0",
            "train.ckpt_every=0", "train.tensorboard=false", "train.log_every=0"]


def is_model(path: str | Path) -> bool:
    """A model file of the study's old format (refused with a message saying how to retrain)."""
    p = Path(path)
    return (p / "text2image.pt").is_file() or (p.is_file() and p.name == "text2image.pt")


def run(settings: Settings = REDUCED, save: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and score every (seed, condition); `save`: keep the seed-0 GAN-CLS run folder there."""
    import gankit

    rows, ceiling, n_test = [], {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(settings.seeds):
            for cond in settings.conditions:
                out = Path(tmp) / f"{cond}-{seed}"
                gankit.train("text2image_digits", out=out, steps=settings.steps, seed=seed,
                             overrides=overrides(settings, cond), progress=False)
                res = gankit.evaluate(out, seed=seed)
                scores = {"class_accuracy": res["class_accuracy_mnistcnn"],
                          **{f"r_{a}": res[f"r_{a}"] for a in ATTRIBUTES}, "fid_mnistcnn": res["fid_mnistcnn"],
                          "diversity": res["diversity_mnistcnn"]}
                ceiling = {a: res["ceiling_real"][f"r_{a}"] for a in ATTRIBUTES}
                n_test = res["protocol"]["n"]
                rows.append({"condition": cond, "seed": seed, **scores})
                log(f"{cond} seed={seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
                if save is not None and seed == 0 and cond == "gan-cls":
                    if save.exists():
                        shutil.rmtree(save)
                    shutil.copytree(out, save)
                    save_caption_grid(gankit.load(save), save / "captions.png")
    return {"settings": asdict(settings), "test_examples": n_test, "rows": rows,
            "real_ceiling": ceiling, "summary": summarize(rows)}


METRICS = ("class_accuracy", "r_thickness", "r_slant", "r_size", "fid_mnistcnn", "diversity")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return summarize_by(rows, "condition", METRICS)


def markdown(res: dict[str, Any]) -> str:
    st = res["settings"]
    lines = [f"One sample per held-out mnist5k digit ({res['test_examples']}) from that digit's caption; mean ± std "
             f"over seeds; {st['steps']} GAN steps, width {st['width']}. Class accuracy by the project digit CNN; "
             "r = Pearson correlation of asked level (thin/upright/small = -1, thick/slanted/large = +1) with the "
             "measured, class-standardised attribute; FID with digit-CNN features vs the held-out digits; "
             "diversity = spread of 10 samples per caption over the spread of real digits sharing a caption "
             "(digit-CNN features; 0 = one image per caption).", "",
             "| model | seeds | class accuracy | r thickness | r slant | r size | FID (mnistcnn) | diversity |",
             "|---|---|---|---|---|---|---|---|"]

    def fmt(v: tuple[float, float], pct: bool = False) -> str:
        m, sd = v
        sd = 0.0 if math.isnan(sd) else sd
        return f"{100 * m:.1f} ± {100 * sd:.1f} %" if pct else f"{m:.2f} ± {sd:.2f}"

    for s in res["summary"]:
        cells = [fmt(s["class_accuracy"], True), *(fmt(s[f"r_{a}"]) for a in ATTRIBUTES), fmt(s["fid_mnistcnn"]),
                 fmt(s["diversity"])]
        name = {"gan-cls": "GAN-CLS (matching-aware D)", "none": "conditional D only"}.get(s["condition"],
                                                                                          s["condition"])
        lines.append(f"| {name} | {s['seeds']} | " + " | ".join(cells) + " |")
    conds = {r["condition"] for r in res["rows"]}
    if {"gan-cls", "none"} <= conds and len(res["rows"]) > 2:
        from .augment import paired_t

        def delta(k: str) -> str:
            by = {c: [r[k] for r in sorted(res["rows"], key=lambda r: r["seed"]) if r["condition"] == c]
                  for c in ("gan-cls", "none")}
            d, pv = paired_t(by["gan-cls"], by["none"])
            scale, unit = (100, " pts") if k == "class_accuracy" else (1, "")
            ptxt = "" if math.isnan(pv) else f", p {pv:.3f}"
            return f"{scale * d:+.2f}{unit}{ptxt}"

        lines.append("| Δ GAN-CLS − conditional D (paired t over seeds) | | "
                     + " | ".join(delta(k) for k in METRICS) + " |")
    c = res["real_ceiling"]
    lines.append("| real held-out digits (ceiling) | - | - | "
                 + " | ".join(f"{c[a]:.2f}" for a in ATTRIBUTES) + " | 0 | 1 |")
    return "\n".join(lines) + "\n"


def write(res: dict[str, Any], out: Path) -> None:
    """text2image.md/.csv/.json and text2image.png: r per attribute for each model vs the ceiling."""
    from . import write_tables

    plt = write_tables(res, out, "text2image", markdown(res))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    names = list(ATTRIBUTES)
    width = 0.8 / (len(res["summary"]) + 1)
    for j, s in enumerate(res["summary"]):
        ax.bar([i + j * width for i in range(3)], [s[f"r_{a}"][0] for a in names], width,
               yerr=[0 if math.isnan(s[f"r_{a}"][1]) else s[f"r_{a}"][1] for a in names], capsize=3,
               label=s["condition"])
    ax.bar([i + len(res["summary"]) * width for i in range(3)], [res["real_ceiling"][a] for a in names], width,
           label="real digits", color="grey")
    ax.set_xticks([i + width * len(res["summary"]) / 2 for i in range(3)], names)
    ax.set_ylabel("r(asked level, measured)")
    ax.set_title("Do generated digits follow the caption's attributes?")
    ax.axhline(0, color="black", lw=0.8)
    ax.legend(fontsize=8, loc="lower center", ncol=3)
    fig.tight_layout()
    fig.savefig(out / "text2image.png", dpi=120)
    plt.close(fig)


GRID_CAPTIONS = ("a thin two", "a thick two", "an upright seven", "a slanted seven", "a small zero", "a large zero",
                 "a thin slanted four", "a thick upright large eight")


def save_caption_grid(g: Any, path: Path, texts: tuple[str, ...] = GRID_CAPTIONS, n: int = 10) -> None:
    """One row per caption, the same n noises in every row, captions in the PNG's text chunk;
    `g` is a loaded text-to-image run (`gankit.load`)."""
    from ..monitor.images import grid, save_png

    x = torch.cat([g.sample(n, seed=0, text=t) for t in texts])
    save_png(grid(x, nrow=n, scale=2), path, {"rows": " | ".join(texts)})
