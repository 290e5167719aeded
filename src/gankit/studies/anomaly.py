"""`gankit study anomaly`: one-class anomaly detection on digits, GAN scores against non-GAN ones.

Protocol (the one-class MNIST protocol of the AnoGAN / GANomaly / OCGAN papers, on mnist5k):
for each digit c, train on the 400 training-pool digits of class c only (`split_mnist5k`); score
the 1000 held-out digits (100 per class: class c is normal, the other 900 anomalous); AUROC per
class and its mean, over seeds.

Scores, higher = more anomalous:
- `ganomaly` (Akcay et al. 2018): encoder -> z, decoder -> x_hat, second encoder -> z_hat; trained
  with an adversarial feature-matching loss, 50 x L1(x, x_hat) and L2(z, z_hat); score |z - z_hat|^2.
- `fanogan` (Schlegl et al. 2019, izi_f): a DCGAN on the normal class, then an encoder E trained
  with G and D frozen to minimise |x - G(E(x))|^2 + |f(x) - f(G(E(x)))|^2 (f: D's features); the
  same sum is the score (no per-image latent search, which AnoGAN needs and is 100x slower).
- `autoencoder` (baseline, no GAN): the same encoder/decoder trained on MSE; score the MSE.
- `knn` (baseline, no training): mean pixel distance to the 5 nearest training digits.
Published orientation on full MNIST (60 000 training digits): AnoGAN ~0.94, OCGAN ~0.975 mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import mean_std

METHODS = ("ganomaly", "fanogan", "autoencoder", "knn")


@dataclass
class Settings:
    seeds: int = 3
    classes: tuple[int, ...] = tuple(range(10))
    steps: int = 400  # GANomaly, the DCGAN and the autoencoder (batch 64)
    encoder_steps: int = 250  # f-AnoGAN's encoder, after its GAN
    nz: int = 32
    width: int = 16


REDUCED = Settings()  # 11.7 min on 2 cores (measured, AVX-512 EPYC)
FULL = Settings(seeds=5, steps=3000, encoder_steps=2000, nz=64, width=32)


def encoder(nz: int, w: int) -> nn.Sequential:
    """28x28 -> (nz,): two stride-2 convs, then a 7x7 conv to the code."""
    return nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
                         nn.Conv2d(2 * w, nz, 7), nn.Flatten())


def decoder(nz: int, w: int) -> nn.Sequential:
    """(nz,) -> 28x28 in [-1, 1]: the encoder mirrored (also the f-AnoGAN generator)."""
    return nn.Sequential(nn.Unflatten(1, (nz, 1, 1)), nn.ConvTranspose2d(nz, 2 * w, 7), nn.BatchNorm2d(2 * w),
                         nn.ReLU(), nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),
                         nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())


class Critic(nn.Module):
    """D with a feature layer (feature matching, f-AnoGAN's f) and a logit."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
                                      nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())
        self.head = nn.Linear(2 * w * 49, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return self.head(f).squeeze(1), f


class GANomaly(nn.Module):
    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.enc, self.dec, self.enc2 = encoder(nz, w), decoder(nz, w), encoder(nz, w)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = self.enc(x)
        x_hat = self.dec(z)
        return z, x_hat, self.enc2(x_hat)

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        self.eval()
        z, _, z_hat = self(x)
        return ((z - z_hat) ** 2).mean(1)


def _adam(params, lr: float = 2e-4) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))


def _batches(x: Tensor, steps: int, g: torch.Generator, n: int = 64):
    for _ in range(steps):
        yield x[torch.randint(len(x), (min(n, len(x)),), generator=g)]


def train_ganomaly(x: Tensor, s: Settings, seed: int) -> GANomaly:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net, d = GANomaly(s.nz, s.width), Critic(s.width)
    opt_g, opt_d = _adam(net.parameters()), _adam(d.parameters())
    for real in _batches(x, s.steps, g):
        net.train()
        z, x_hat, z_hat = net(real)
        # D: real vs reconstructed
        lr_, _ = d(real)
        lf, _ = d(x_hat.detach())
        loss_d = F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_)) + \
            F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # G: feature matching + 50 x contextual L1 + latent L2 (the paper's weights 1 / 50 / 1)
        _, f_real = d(real)
        _, f_fake = d(x_hat)
        loss_g = F.mse_loss(f_fake, f_real.detach()) + 50 * F.l1_loss(x_hat, real) + F.mse_loss(z_hat, z)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    return net.eval()


class FAnoGAN(nn.Module):
    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.g, self.d, self.e = decoder(nz, w), Critic(w), encoder(nz, w)

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        self.eval()
        rec = self.g(self.e(x))
        return ((x - rec) ** 2).flatten(1).mean(1) + ((self.d(x)[1] - self.d(rec)[1]) ** 2).mean(1)


def train_fanogan(x: Tensor, s: Settings, seed: int) -> FAnoGAN:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    m = FAnoGAN(s.nz, s.width)
    opt_g, opt_d = _adam(m.g.parameters()), _adam(m.d.parameters())
    for real in _batches(x, s.steps, gen):  # 1) a DCGAN on the normal class (non-saturating loss)
        m.train()
        z = torch.randn(len(real), s.nz, generator=gen)
        fake = m.g(z)
        lr_, lf = m.d(real)[0], m.d(fake.detach())[0]
        loss_d = F.softplus(-lr_).mean() + F.softplus(lf).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-m.d(fake)[0]).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    m.g.eval(), m.d.eval()  # 2) izi_f: the encoder learns to invert the frozen G
    for p in (*m.g.parameters(), *m.d.parameters()):
        p.requires_grad_(False)
    opt_e = _adam(m.e.parameters())
    for real in _batches(x, s.encoder_steps, gen):
        m.e.train()
        rec = m.g(m.e(real))
        loss = F.mse_loss(rec, real) + F.mse_loss(m.d(rec)[1], m.d(real)[1])
        opt_e.zero_grad(set_to_none=True)
        loss.backward()
        opt_e.step()
    return m.eval()


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


TRAINERS: dict[str, Callable[[Tensor, Settings, int], nn.Module]] = {
    "ganomaly": train_ganomaly, "fanogan": train_fanogan, "autoencoder": train_autoencoder,
    "knn": lambda x, s, seed: KNN(x),
}


def auroc(scores: Tensor, anomalous: Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(anomalous.numpy(), scores.numpy()))


def save_model(m: nn.Module, method: str, normal: int, s: Settings, train_x: Tensor, path: Path) -> None:
    """The model, plus the 95th percentile of its scores on its own training digits: the default
    threshold of `gankit anomaly` (about 5 % of normal digits flagged)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    threshold = float(torch.quantile(m.score(train_x).float(), 0.95))
    torch.save({"format": "gankit-anomaly-1", "method": method, "normal_class": normal, "threshold": threshold,
                "settings": asdict(s), "state": m.state_dict()}, path)


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    from ..errors import CheckpointError
    from . import read_model_file

    ck, _ = read_model_file(path, "gankit-anomaly-1", "anomaly model", "gankit study anomaly --save DIR")
    if ck.get("method") not in METHODS:
        raise CheckpointError(f"{path}: not a gankit anomaly model")
    s = Settings(**{k: tuple(v) if k == "classes" else v for k, v in ck["settings"].items()})
    method = ck["method"]
    if method == "knn":
        m: nn.Module = KNN(ck["state"]["bank"].view(-1, 1, 28, 28))
    else:
        m = {"ganomaly": GANomaly, "fanogan": FAnoGAN, "autoencoder": AutoEncoder}[method](s.nz, s.width)
    m.load_state_dict(ck["state"])
    return m.eval(), ck


def run(settings: Settings = REDUCED, save: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..metrics.classifier import split_mnist5k

    xtr, ytr, xte, yte = split_mnist5k()
    rows = []
    for seed in range(settings.seeds):
        for c in settings.classes:
            normal = xtr[ytr == c]
            anomalous = yte != c
            row: dict[str, Any] = {"normal_class": c, "seed": seed}
            for method, train in TRAINERS.items():
                m = train(normal, settings, seed)
                row[method] = auroc(m.score(xte), anomalous)
                if save is not None and seed == 0:
                    save_model(m, method, c, settings, normal, save / f"{method}-class{c}.pt")
            rows.append(row)
            log(f"seed {seed} class {c}: " + ", ".join(f"{k} {row[k]:.3f}" for k in METHODS))
    return {"settings": asdict(settings), "test_examples": len(xte), "rows": rows, "summary": summarize(rows)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per class: mean and std over seeds; 'mean': the mean over classes per seed, then over seeds."""
    out: dict[str, Any] = {}
    for c in sorted({r["normal_class"] for r in rows}):
        rs = [r for r in rows if r["normal_class"] == c]
        out[str(c)] = {m: mean_std([r[m] for r in rs]) for m in METHODS}
    seeds = sorted({r["seed"] for r in rows})
    per_seed = {m: [float(np.mean([r[m] for r in rows if r["seed"] == s])) for s in seeds] for m in METHODS}
    out["mean"] = {m: mean_std(v) for m, v in per_seed.items()}
    return out


def markdown(res: dict[str, Any]) -> str:
    st = res["settings"]
    head = ("AUROC on 1000 held-out mnist5k digits (100 per class; the normal class is 10 %), training on "
            f"the 400 training-pool digits of the normal class; mean ± std over {st['seeds']} seeds; "
            f"{st['steps']} training steps (f-AnoGAN's encoder {st['encoder_steps']}), nz {st['nz']}.")
    lines = [head, "", "| normal class | GANomaly | f-AnoGAN (izi_f) | autoencoder (no GAN) | 5-NN pixels (no GAN) |",
             "|---|---|---|---|---|"]

    def fmt(v: tuple[float, float]) -> str:
        return f"{v[0]:.3f}" if math.isnan(v[1]) else f"{v[0]:.3f} ± {v[1]:.3f}"

    for c, v in res["summary"].items():
        name = "**mean**" if c == "mean" else c
        lines.append(f"| {name} | " + " | ".join(fmt(v[m]) for m in METHODS) + " |")
    return "\n".join(lines) + "\n"


def write(res: dict[str, Any], out: Path) -> None:
    """anomaly.md, anomaly.csv (one row per class and seed), anomaly.json, anomaly.png."""
    from . import write_tables

    plt = write_tables(res, out, "anomaly", markdown(res))

    classes = [c for c in res["summary"] if c != "mean"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(METHODS)
    for i, m in enumerate(METHODS):
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
