"""`gankit study anomaly`: one-class anomaly detection on digits, GAN scores against non-GAN ones.

Protocol (the one-class MNIST protocol of the AnoGAN / GANomaly / OCGAN papers, on mnist5k):
for each digit c, train on the training-split digits of class c only (mnist5k `data.split=train`,
`data.normal_class=c`); score the held-out split (every class: c is normal, the others
anomalous); AUROC per class and its mean, over seeds.

The GAN methods are the recipes `dknn_mnist`, `ganomaly_mnist` and `fanogan_mnist`
(families/anomaly.py), trained through `gankit.train` and scored by their run's `Detector`.
Scores, higher = more anomalous:
- `dknn`: mean distance to the 5 nearest training digits in the GAN discriminator's features;
- `ganomaly` (Akcay et al. 2018): |z - z_hat|^2;
- `fanogan` (Schlegl et al. 2019, izi_f): |x - G(E(x))|^2 + |f(x) - f(G(E(x)))|^2;
- `autoencoder` (baseline, no GAN): the same encoder/decoder trained on MSE; score the MSE;
- `knn` (baseline, no training): mean pixel distance to the 5 nearest training digits.
Published orientation on full MNIST (60 000 training digits): AnoGAN ~0.94, OCGAN ~0.975 mean.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets.anomaly import decoder, encoder  # the autoencoder baseline shares the GAN methods' nets
from . import mean_std

METHODS = ("dknn", "ganomaly", "fanogan", "autoencoder", "knn")
GANS = ("dknn", "ganomaly", "fanogan")
LABELS = {"dknn": "D-feature 5-NN (GAN)", "ganomaly": "GANomaly", "fanogan": "f-AnoGAN (izi_f)",
          "autoencoder": "autoencoder (no GAN)", "knn": "5-NN pixels (no GAN)"}


@dataclass
class Settings:
    seeds: int = 3
    classes: tuple[int, ...] = tuple(range(10))
    steps: int = 400  # the D-feature k-NN's GAN, GANomaly and the autoencoder (batch 64)
    # f-AnoGAN, the weakest detector, got 400 + 250 steps until the D-feature k-NN joined the study; it
    # keeps the reduced setting within 15 minutes on 2 cores
    fanogan_steps: int = 250  # f-AnoGAN's DCGAN (anomaly.gan_steps)
    encoder_steps: int = 150  # f-AnoGAN's encoder, after its GAN
    nz: int = 32
    width: int = 16
    methods: tuple[str, ...] = METHODS


REDUCED = Settings()
FULL = Settings(seeds=5, steps=3000, fanogan_steps=3000, encoder_steps=2000, nz=64, width=32)


def _batches(x: Tensor, steps: int, g: torch.Generator, n: int = 64):
    for _ in range(steps):
        yield x[torch.randint(len(x), (min(n, len(x)),), generator=g)]


class AutoEncoder(nn.Module):
    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.enc, self.dec = encoder(nz, w), decoder(nz, w)

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        self.eval()
        return ((x - self.dec(self.enc(x))) ** 2).flatten(1).mean(1)


def train_autoencoder(x: Tensor, s: Settings, seed: int) -> AutoEncoder:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    m = AutoEncoder(s.nz, s.width)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    for real in _batches(x, s.steps, g):
        m.train()
        loss = F.mse_loss(m.dec(m.enc(real)), real)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return m.eval()


class KNN(nn.Module):
    def __init__(self, x: Tensor, k: int = 5) -> None:
        super().__init__()
        self.register_buffer("bank", x.flatten(1).clone())
        self.k = k

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        d = torch.cdist(x.flatten(1), self.bank)
        return d.topk(min(self.k, len(self.bank)), largest=False).values.mean(1)


def train_gan(method: str, c: int, s: Settings, seed: int, out: Path) -> Any:
    """The method's recipe on class c's training digits (fp32, no extra files); its Detector."""
    import gankit

    from ..families.anomaly import Detector

    steps = s.fanogan_steps + s.encoder_steps if method == "fanogan" else s.steps
    sets = [f"data.normal_class={c}", f"model.z_dim={s.nz}", f"model.width={s.width}", "train.precision=fp32",
            "train.channels_last=off", "train.sample_every=0", "train.ckpt_every=0", "train.tensorboard=false",
            "train.log_every=0"]
    if method == "fanogan":
        sets.append(f"anomaly.gan_steps={s.fanogan_steps}")
    gankit.train(f"{method}_mnist", out=out, steps=steps, seed=seed, overrides=sets, progress=False)
    return Detector(out)


def train_baseline(method: str, x: Tensor, s: Settings, seed: int) -> nn.Module:
    return train_autoencoder(x, s, seed) if method == "autoencoder" else KNN(x)


def auroc(scores: Tensor, anomalous: Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(anomalous.numpy(), scores.numpy()))


def run(settings: Settings = REDUCED, save: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every (seed, class, method) cell; `save`: keep the seed-0 GAN runs there (DIR/METHOD-classC),
    for `gankit anomaly`."""
    import shutil
    import tempfile

    from ..config import DataConfig
    from ..data import build

    train, test = build(DataConfig(source="mnist5k", split="train")), build(DataConfig(source="mnist5k", split="test"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(settings.seeds):
            for c in settings.classes:
                normal = train.x[train.y == c]
                anomalous = test.y != c
                row: dict[str, Any] = {"normal_class": c, "seed": seed}
                took = {}
                for method in settings.methods:
                    t0 = time.perf_counter()
                    if method in GANS:
                        out = Path(tmp) / f"{method}-class{c}-seed{seed}"
                        m = train_gan(method, c, settings, seed, out)
                        if save is not None and seed == 0:
                            shutil.copytree(out, save / f"{method}-class{c}", dirs_exist_ok=True)
                    else:
                        m = train_baseline(method, normal, settings, seed)
                    row[method] = auroc(m.score(test.x), anomalous)
                    took[method] = time.perf_counter() - t0
                rows.append(row)
                log(f"seed {seed} class {c}: "
                    + ", ".join(f"{k} {row[k]:.3f} ({took[k]:.0f} s)" for k in settings.methods))
    return {"settings": asdict(settings), "test_examples": len(test.x), "rows": rows, "summary": summarize(rows)}


def _methods(res: dict[str, Any]) -> tuple[str, ...]:
    return tuple(m for m in METHODS if m in res["settings"].get("methods", METHODS))


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per class: mean and std over seeds; 'mean': the mean over classes per seed, then over seeds."""
    out: dict[str, Any] = {}
    methods = [m for m in METHODS if m in rows[0]]
    for c in sorted({r["normal_class"] for r in rows}):
        rs = [r for r in rows if r["normal_class"] == c]
        out[str(c)] = {m: mean_std([r[m] for r in rs]) for m in methods}
    seeds = sorted({r["seed"] for r in rows})
    per_seed = {m: [float(np.mean([r[m] for r in rows if r["seed"] == s])) for s in seeds] for m in methods}
    out["mean"] = {m: mean_std(v) for m, v in per_seed.items()}
    return out


def markdown(res: dict[str, Any]) -> str:
    st = res["settings"]
    head = (f"AUROC on {res['test_examples']} held-out mnist5k digits (every 10th; the normal class is about 10 %), "
            "training on the normal class's training-split digits; mean ± std over "
            f"{st['seeds']} seeds; "
            f"{st['steps']} training steps (batch 64) for D-feature 5-NN, GANomaly and the autoencoder; f-AnoGAN "
            f"{st['fanogan_steps']} GAN + {st['encoder_steps']} encoder steps; nz {st['nz']}, width {st['width']}.")
    methods = _methods(res)
    lines = [head, "", "| normal class | " + " | ".join(LABELS[m] for m in methods) + " |",
             "|---" * (len(methods) + 1) + "|"]

    def fmt(v: tuple[float, float]) -> str:
        return f"{v[0]:.3f}" if math.isnan(v[1]) else f"{v[0]:.3f} ± {v[1]:.3f}"

    for c, v in res["summary"].items():
        name = "**mean**" if c == "mean" else c
        lines.append(f"| {name} | " + " | ".join(fmt(v[m]) for m in methods) + " |")
    return "\n".join(lines) + "\n"


def write(res: dict[str, Any], out: Path) -> None:
    """anomaly.md, anomaly.csv (one row per class and seed), anomaly.json, anomaly.png."""
    from . import write_tables

    plt = write_tables(res, out, "anomaly", markdown(res))

    classes = [c for c in res["summary"] if c != "mean"]
    fig, ax = plt.subplots(figsize=(7, 4))
    methods = _methods(res)
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        vals = [res["summary"][c][m] for c in classes]
        ax.bar(np.arange(len(classes)) + i * width, [v[0] for v in vals], width,
               yerr=[0 if math.isnan(v[1]) else v[1] for v in vals], capsize=2, label=m)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes)
    ax.set_xlabel("normal class")
    ax.set_ylabel("AUROC")
    ax.set_ylim(0.3, 1.0)
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.legend(fontsize=8, ncol=4)
    ax.set_title("One-class anomaly detection on held-out digits")
    fig.tight_layout()
    fig.savefig(out / "anomaly.png", dpi=120)
    plt.close(fig)
