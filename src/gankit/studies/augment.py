"""`gankit study augment`: does a conditional GAN trained on a few labelled digits help a
classifier trained on those same digits?

Protocol, per labelled-set size k (digits per class) and seed s:
1. draw k digits per class from the 400-per-class training pool of `mnist5k` (the split the
   project classifier uses, `split_mnist5k`); the 100-per-class held-out digits are the test set,
   seen by nothing but the final accuracy;
2. train the conditional DCGAN recipe (`cdcgan_mnist`) on those 10k digits only;
3. train the same small CNN (`small_cnn`) four ways, same steps, same seed: on the real digits alone; with
   classic augmentation (shifts, rotations, scales); with the real digits plus GAN samples (each
   batch half real, half synthetic, labels the classes asked for); with both;
4. report held-out accuracy mean +- std over seeds, and a paired t-test of each variant against
   the real-only classifier over the same seeds (same subset, same initialisation).
5. the semi-supervised rows, same subset and seed: the semi-supervised GAN (`ssgan_mnist`,
   every training digit unlabelled, the k per class labelled) scored as a classifier itself;
   the cDCGAN trained on the whole pool with that D's pseudo-labels (the k true labels kept),
   its samples added as in step 3; and those samples filtered: kept only where the
   semi-supervised D gives the class asked for probability >= `confidence`.
Nothing here is tuned to make the GAN look good; a "no gain" row is a result.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import mean_std

CONDITIONS = ("real", "real+classic", "real+gan", "real+gan+classic")
# the semi-supervised rows: D itself, + samples of a cGAN on D's pseudo-labels, + those filtered by D
SEMISUP = ("ssgan", "real+pseudo_gan", "real+filtered_gan")


@dataclass
class Settings:
    sizes: tuple[int, ...] = (10, 50, 100)
    seeds: int = 5
    gan_steps: int = 1000  # cdcgan_mnist steps on the labelled subset
    clf_steps: int = 200  # classifier steps (batch 64) for every condition
    synth_per_class: int = 200  # GAN samples drawn per class for the synthetic half of each batch
    ss_steps: int = 1500  # ssgan_mnist steps (every training digit unlabelled, k per class labelled)
    pool_gan_steps: int = 1000  # cdcgan_mnist steps on the whole pool with the semi-supervised D's pseudo-labels
    confidence: float = 0.9  # the filtered row keeps samples D puts in the asked class with at least this


# reduced: 10 labels per class only (the four old rows at 10/50/100 alone took 13.1 min on 2 cores)
REDUCED = Settings(sizes=(10,))
FULL = Settings(sizes=(10, 50, 100, 400), seeds=10, gan_steps=3000, clf_steps=1000, synth_per_class=500,
                ss_steps=4000, pool_gan_steps=3000)


def labelled_subset(x: Tensor, y: Tensor, per_class: int, seed: int) -> tuple[Tensor, Tensor]:
    """per_class examples of each class, drawn without replacement with the seed (the draw the
    semi-supervised family makes from the same pool with the same seed)."""
    from ..data.core import stratified_draw

    i = stratified_draw(y, per_class, seed)
    return x[i], y[i]


_QUIET = ["train.tensorboard=false", "train.sample_every=0", "train.ckpt_every=0", "train.log_every=100"]


def train_cgan(x: Tensor, y: Tensor, steps: int, seed: int, workdir: Path, name: str = "subset") -> Any:
    """The cdcgan_mnist recipe on (x, y) only; returns the loaded EMA generator. `name` tells the
    runs of one seed apart (at 400 labels per class the subset is as large as the pool)."""
    from .. import api

    path = workdir / f"{name}-{len(x)}-{seed}.npz"
    np.savez(path, x=((x.numpy() + 1) * 127.5).round().astype(np.uint8), y=y.numpy())
    out = workdir / f"cgan-{name}-{len(x)}-{seed}"
    api.train("cdcgan_mnist", data=str(path), out=out, steps=steps, seed=seed,
              batch=min(64, len(x)),
              overrides=[*_QUIET, "train.precision=fp32"], progress=False)
    return api.load(out)


def train_ssgan(per_class: int, steps: int, seed: int, workdir: Path) -> Any:
    """The ssgan_mnist recipe with `per_class` labels: its labelled digits are `labelled_subset(xtr,
    ytr, per_class, seed)` of this study (the same pool, draw and seed); returns its Classifier."""
    from .. import api
    from ..families.semisup import Classifier

    out = workdir / f"ssgan-{per_class}-{seed}"
    api.train("ssgan_mnist", out=out, steps=steps, seed=seed, progress=False,
              overrides=[*_QUIET, f"data.labels_per_class={per_class}"])
    return Classifier(out)


def semisup_rows(clf: Any, xtr: Tensor, labelled: Tensor, y: Tensor, st: Settings, seed: int, workdir: Path,
                 xte: Tensor, yte: Tensor) -> dict[str, float]:
    """The semi-supervised rows of one (size, seed): D's accuracy; a cGAN on the pool's pseudo-labels
    (D's argmax, the labelled digits' own labels) with its samples added; those samples filtered by D."""
    from ..metrics.classifier import evaluate_accuracy, load_digit_classifier

    x = xtr[labelled]
    pseudo = clf.predict(xtr)
    pseudo[labelled] = y  # the labelled digits keep their true labels
    g = train_cgan(xtr, pseudo, st.pool_gan_steps, seed, workdir, name="pool")
    sx, sy = synthesize(g, st.synth_per_class, 10, seed)
    keep = clf.probs(sx)[torch.arange(len(sy)), sy] >= st.confidence
    filtered = (sx[keep], sy[keep]) if keep.any() else None
    return {"ssgan": float((clf.predict(xte) == yte).float().mean()),
            "real+pseudo_gan": evaluate_accuracy(train_classifier(x, y, st.clf_steps, seed, synth=(sx, sy)), xte, yte),
            "real+filtered_gan": evaluate_accuracy(train_classifier(x, y, st.clf_steps, seed, synth=filtered),
                                                   xte, yte),
            "filtered_kept": float(keep.float().mean()),
            "pseudo_gan_label_accuracy": evaluate_accuracy(load_digit_classifier(), sx, sy)}


def synthesize(g: Any, per_class: int, classes: int, seed: int) -> tuple[Tensor, Tensor]:
    xs = [g.sample(per_class, seed=seed * 1000 + c * 10_000, label=c) for c in range(classes)]
    return torch.cat(xs), torch.arange(classes).repeat_interleave(per_class)


def small_cnn() -> torch.nn.Module:
    """The study's classifier: two conv-pool stages and two linear layers (0.42 M parameters),
    31 ms per batch-64 training step against the project digit CNN's 70 (measured on the AVX-512
    EPYC, 2 threads), so 4 variants x seeds x sizes fit in minutes."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))


def train_classifier(x: Tensor, y: Tensor, steps: int, seed: int, classic: bool = False,
                     synth: tuple[Tensor, Tensor] | None = None) -> torch.nn.Module:
    """`small_cnn` from scratch: Adam, one-cycle LR, batch 64 drawn with replacement (tiny sets
    have fewer than 64 examples); with `synth`, half of each batch is synthetic."""
    from ..metrics.classifier import classic_augment

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = small_cnn()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    n_real = 32 if synth is not None else 64
    net.train()
    for _ in range(steps):
        i = torch.randint(len(x), (n_real,), generator=g)
        bx, by = x[i], y[i]
        if synth is not None:
            j = torch.randint(len(synth[0]), (64 - n_real,), generator=g)
            bx, by = torch.cat([bx, synth[0][j]]), torch.cat([by, synth[1][j]])
        if classic:
            bx = classic_augment(bx, g)
        loss = F.cross_entropy(net(bx), by)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net


def paired_t(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of a - b and the two-sided p-value of a paired t-test (NaN with fewer than 2 pairs
    or no spread)."""
    from scipy import stats

    d = np.asarray(a) - np.asarray(b)
    if len(d) < 2 or float(np.std(d)) == 0:
        return float(d.mean()) if len(d) else math.nan, math.nan
    return float(d.mean()), float(stats.ttest_rel(a, b).pvalue)


def run(settings: Settings = REDUCED, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..data.core import stratified_draw
    from ..metrics.classifier import evaluate_accuracy, load_digit_classifier, split_mnist5k

    xtr, ytr, xte, yte = split_mnist5k()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gankit-augment-") as tmp:
        for k in settings.sizes:
            for seed in range(settings.seeds):
                labelled = stratified_draw(ytr, k, seed)  # = labelled_subset's draw, and ssgan_mnist's
                x, y = xtr[labelled], ytr[labelled]
                g = train_cgan(x, y, settings.gan_steps, seed, Path(tmp))
                synth = synthesize(g, settings.synth_per_class, 10, seed)
                accs = {}
                for cond in CONDITIONS:
                    net = train_classifier(x, y, settings.clf_steps, seed, classic="classic" in cond,
                                           synth=synth if "gan" in cond else None)
                    accs[cond] = evaluate_accuracy(net, xte, yte)
                # how well the GAN renders the classes asked for, by the shipped classifier
                gan_acc = evaluate_accuracy(load_digit_classifier(), *synth)
                clf = train_ssgan(k, settings.ss_steps, seed, Path(tmp))
                ss = semisup_rows(clf, xtr, labelled, y, settings, seed, Path(tmp), xte, yte)
                ss["pseudo_label_accuracy"] = float((clf.predict(xtr) == ytr).float().mean())
                rows.append({"per_class": k, "seed": seed, **accs, "gan_label_accuracy": gan_acc, **ss})
                log(f"k={k} seed={seed}: " + ", ".join(f"{c} {100 * a:.1f} %" for c, a in accs.items())
                    + f"; GAN samples labelled right {100 * gan_acc:.1f} %; "
                    + ", ".join(f"{c} {100 * ss[c]:.1f} %" for c in SEMISUP)
                    + f"; filter kept {100 * ss['filtered_kept']:.0f} %")
    return {"settings": asdict(settings), "test_examples": len(xte), "rows": rows, "summary": summarize(rows)}


EXTRA = ("filtered_kept", "pseudo_label_accuracy", "pseudo_gan_label_accuracy")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for k in sorted({r["per_class"] for r in rows}):
        rs = [r for r in rows if r["per_class"] == k]
        s: dict[str, Any] = {"per_class": k, "seeds": len(rs)}
        for c in (*CONDITIONS, "gan_label_accuracy", *SEMISUP, *EXTRA):
            v = [r[c] for r in rs]
            s[c] = mean_std(v)
        for c in (*CONDITIONS[1:], *SEMISUP):
            s[f"{c} vs real"] = paired_t([r[c] for r in rs], [r["real"] for r in rs])
        out.append(s)
    return out


def markdown(res: dict[str, Any]) -> str:
    st = res["settings"]
    lines = [f"Held-out accuracy on {res['test_examples']} mnist5k digits (100 per class), mean ± std over seeds; "
             f"Δ = mean paired gain over real-only, p = paired t-test (significant: p < 0.05). "
             f"cGAN {st['gan_steps']} steps, classifier {st['clf_steps']} steps, "
             f"{st['synth_per_class']} GAN samples per class.", "",
             "| labelled per class | seeds | real only | + classic aug | + GAN | + GAN + classic "
             "| GAN samples of the asked class |",
             "|---|---|---|---|---|---|---|"]

    def cell(s: dict[str, Any], c: str) -> str:
        m, sd = s[c]
        text = f"{100 * m:.1f} ± {100 * sd:.1f} %"
        if c != "real" and c not in ("gan_label_accuracy", *EXTRA):
            d, p = s[f"{c} vs real"]
            sig = "significant" if p < 0.05 else "n.s."
            ptxt = "p < 0.001" if p < 0.001 else f"p {p:.3f}"
            text += f" (Δ {100 * d:+.1f}, {ptxt}, {sig})" if not math.isnan(p) else f" (Δ {100 * d:+.1f})"
        return text

    for s in res["summary"]:
        cells = " | ".join(cell(s, c) for c in (*CONDITIONS, "gan_label_accuracy"))
        lines.append(f"| {s['per_class']} | {s['seeds']} | {cells} |")
    lines += ["", f"Semi-supervised rows (same subsets, seeds and test digits): the semi-supervised GAN "
              f"(`ssgan_mnist`, {st['ss_steps']} steps, all 4000 training digits unlabelled) as the classifier; "
              f"real digits + samples of a cDCGAN trained {st['pool_gan_steps']} steps on the pool with its "
              f"pseudo-labels; the same + samples kept only where its D gives the asked class p >= "
              f"{st['confidence']}. Δ and p against real-only, as above.", "",
              "| labelled per class | seeds | real only | semi-supervised D | + pseudo-label cGAN "
              "| + filtered cGAN | samples kept by the filter | pool pseudo-labels right "
              "| pseudo-label cGAN samples of the asked class |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in res["summary"]:
        cells = " | ".join(cell(s, c) for c in ("real", *SEMISUP, *EXTRA))
        lines.append(f"| {s['per_class']} | {s['seeds']} | {cells} |")
    return "\n".join(lines) + "\n"


def write(res: dict[str, Any], out: Path) -> None:
    """augment.md (the table), augment.csv (one row per size and seed), augment.png (the plot)."""
    from . import write_tables

    plt = write_tables(res, out, "augment", markdown(res))

    fig, ax = plt.subplots(figsize=(6, 4))
    ks = [s["per_class"] for s in res["summary"]]
    for c in (*CONDITIONS, *SEMISUP):
        m = [100 * s[c][0] for s in res["summary"]]
        sd = [100 * (0 if math.isnan(s[c][1]) else s[c][1]) for s in res["summary"]]
        ax.errorbar(ks, m, yerr=sd, marker="o", capsize=3, label=c)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("labelled digits per class")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("Classifier accuracy with and without GAN samples")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "augment.png", dpi=120)
    plt.close(fig)
