"""Anomaly detection on one "normal" class (`data.normal_class`): GANomaly, f-AnoGAN, D-feature k-NN.

- `ganomaly` (Akcay et al. 2018): phases Dmain (real vs reconstructed x_hat, the run's loss) and
  Gmain (feature matching in D's features + `anomaly.rec_weight` x L1(x, x_hat) +
  `anomaly.latent_weight` x L2(z, z_hat)); score |z - z_hat|^2.
- `fanogan` (Schlegl et al. 2019, izi_f): a GAN for `anomaly.gan_steps` steps (Dmain, Gmain),
  then Emain: the encoder inside G learns to invert the frozen G, minimising |x - G(E(x))|^2 +
  kappa |f(x) - f(G(E(x)))|^2 (f: D's features, kappa `anomaly.feature_weight`); that sum is the
  score. No per-image latent search (AnoGAN's), which is 100x slower.
- `dknn`: a GAN whose G is an autoencoder's decoder (Dmain: real vs decodings of random codes;
  Gmain: G's loss + `anomaly.rec_weight` x MSE reconstruction), scored by the mean distance to
  the `anomaly.k` nearest training digits in D's features (the training digits are rebuilt from
  the run's data; on a user's set the anomaly families hold out a seeded tenth of each class).

`gankit eval RUN` gives the held-out AUROC (normal class against the others); `gankit anomaly
RUN IMAGES` scores images against a threshold: the 95th percentile of the training digits'
scores (about 5 % of normal digits flagged).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import Batch, Family, Phase, families

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from ..training.state import TrainState


class Anomaly(Family):
    distributed = False  # the phases call G's encoder and decoder directly, not through DDP

    def prepare(self, cfg: Config, data: Dataset) -> Dataset:
        data = user_split(cfg, data, cfg.data.split)
        c = cfg.data.normal_class
        if c < 0:
            return data
        if data.y is None:
            raise ConfigError(f"data.normal_class={c} needs class labels, but {cfg.data.source} has none")
        keep = data.y == c
        if int(keep.sum()) < cfg.train.batch:
            raise ConfigError(f"data.normal_class={c}: {cfg.data.source} has {int(keep.sum())} examples of class "
                              f"{c}, fewer than train.batch={cfg.train.batch}")
        data.x, data.y = data.x[keep], data.y[keep]
        return data

    def evaluate(self, g: Any, n: int = 0, seed: int = 0) -> dict:
        return held_out_auroc(g.path, n, ema=g.ema)

    def score(self, det: Detector, x: Tensor, training: bool = False) -> Tensor:
        """Scores (N,) of images x (N,1,28,28), higher = more anomalous. `training`: x are the run's
        own training images (for the threshold), which a k-NN score must not match to themselves.
        By default the score the run's G carries."""
        return det.g.score(x, det.d)


def user_split(cfg: Config, data: Dataset, which: str) -> Dataset:
    """A user's set (a path, not a built-in, which has its own split) cut by `data.split`: a seeded
    held-out tenth of each class (data.files.split), so `gankit eval` scores examples the run
    never trained on."""
    from ..data import datasets
    from ..data.files import split

    return data if cfg.data.source in datasets else split(data, which, Path(cfg.data.source))


def _real(s: TrainState, b: Batch) -> Tensor:
    b.real = b.data[s.batch_indices(s.cfg.train.batch)]
    return b.real


def gan_d_main(s: TrainState, b: Batch) -> Tensor:
    """A plain GAN's D phase on the normal class (f-AnoGAN's first stage, D-feature k-NN)."""
    real = _real(s, b)
    b.fake = s.g_run(s.sample_z(len(real)))
    b.d_loss = s.loss.d(real=s.d_run(real)[0].float(), fake=s.d_run(b.fake.detach())[0].float())
    return b.d_loss


def gan_g_main(s: TrainState, b: Batch) -> Tensor:
    b.g_loss = s.loss.g(fake=s.d(b.fake)[0].float(), real=None)
    return b.g_loss


class GANomaly(Anomaly):
    name, models = "ganomaly", ("ganomaly",)
    doc = "GANomaly: encoder-decoder-encoder G, feature matching, score |z - z_hat|^2"
    keys = frozenset({"data.normal_class", "model.z_dim", "anomaly.rec_weight", "anomaly.latent_weight",
                      "anomaly.adv_weight", "train.grid_n"})

    def phases(self, cfg: Config) -> list[Phase]:
        return [Phase("Dmain", "d", self.d_main), Phase("Gmain", "g", self.g_main)]

    @staticmethod
    def d_main(s: TrainState, b: Batch) -> Tensor:
        real = _real(s, b)
        b.aux["z"], b.fake, b.aux["z_hat"] = s.g.reconstruct(real)
        b.d_loss = s.loss.d(real=s.d_run(real)[0].float(), fake=s.d_run(b.fake.detach())[0].float())
        return b.d_loss

    @staticmethod
    def g_main(s: TrainState, b: Batch) -> Tensor:
        w = s.cfg.anomaly
        f_real, f_fake = s.d(b.real)[1].detach(), s.d(b.fake)[1]
        adv = F.mse_loss(f_fake.float(), f_real.float())
        rec = F.l1_loss(b.fake.float(), b.real)
        lat = F.mse_loss(b.aux["z_hat"].float(), b.aux["z"].float())
        b.out.update(feature_matching=adv.detach(), l1=rec.detach(), latent=lat.detach())
        b.g_loss = w.adv_weight * adv + w.rec_weight * rec + w.latent_weight * lat
        return b.g_loss


class FAnoGAN(Anomaly):
    name, models = "fanogan", ("fanogan",)
    doc = "f-AnoGAN (izi_f): a GAN, then an encoder inverting the frozen G; score image + feature residual"
    keys = frozenset({"data.normal_class", "model.z_dim", "anomaly.gan_steps", "anomaly.feature_weight",
                      "train.grid_n"})

    def validate(self, cfg: Config) -> None:
        if cfg.train.ema_beta > 0:  # an average over the GAN stage would pair a lagging encoder with a
            # still-moving decoder; the detector scores with one G
            raise ConfigError("fanogan trains its encoder against a fixed G; use train.ema_beta=0 (the recipe's)")

    def phases(self, cfg: Config) -> list[Phase]:
        n = cfg.anomaly.gan_steps

        def gan(step: int) -> bool:
            return step < n

        def encoder(step: int) -> bool:
            return step >= n

        return [Phase("Dmain", "d", self.d_main, when=gan), Phase("Gmain", "g", self.g_main, when=gan),
                Phase("Emain", "g", self.e_main, when=encoder, only="e")]

    d_main, g_main = staticmethod(gan_d_main), staticmethod(gan_g_main)

    @staticmethod
    def e_main(s: TrainState, b: Batch) -> Tensor:
        real = _real(s, b)
        dec = s.g.g
        dec.eval()  # the trained G is fixed: BatchNorm uses its running statistics and keeps them
        try:
            b.fake = rec = dec(s.g.e(real))
        finally:
            dec.train()
        loss = F.mse_loss(rec.float(), real) + s.cfg.anomaly.feature_weight * F.mse_loss(
            s.d(rec)[1].float(), s.d(real)[1].float())
        b.out["encoder"] = loss.detach()
        b.g_loss = loss
        return loss


class DFeatureKNN(Anomaly):
    """A GAN on the normal class whose generator is an autoencoder's decoder: Dmain (real vs
    decodings of random codes, OCGAN's visual discriminator, Perera et al. 2019), Gmain (the
    run's G loss + `anomaly.rec_weight` x MSE(x, dec(enc(x))); 0 = a plain GAN). The score uses
    D alone: the mean distance to the `anomaly.k` nearest training digits in D's feature layer,
    k-NN in a learned feature space as in Bergman, Cohen and Hoshen 2020 ("Deep Nearest Neighbor
    Anomaly Detection"; there on pretrained features, here on the discriminator's, which the GAN
    teaches to tell the normal class from near misses). The reconstruction term trains G to cover
    every training digit, so D must learn features of all of them (measured: better than a plain
    GAN's D, docs/studies.md)."""

    name, models = "dknn", ("dknn",)
    doc = ("D-feature k-NN: an autoencoder whose decoder is the GAN's G; score = distance to the k nearest "
           "training digits in D's features")
    keys = frozenset({"data.normal_class", "model.z_dim", "anomaly.k", "anomaly.rec_weight", "train.grid_n"})

    def phases(self, cfg: Config) -> list[Phase]:
        return [Phase("Dmain", "d", gan_d_main), Phase("Gmain", "g", self.g_main)]

    @staticmethod
    def g_main(s: TrainState, b: Batch) -> Tensor:
        adv = gan_g_main(s, b)
        rec = F.mse_loss(s.g.reconstruct(b.real).float(), b.real)
        b.out["mse"] = rec.detach()
        return adv + s.cfg.anomaly.rec_weight * rec

    def score(self, det: Detector, x: Tensor, training: bool = False) -> Tensor:
        from ..nets.anomaly import knn_distance

        return knn_distance(det.d(x)[1], det.bank, det.cfg.anomaly.k, exclude_self=training)


for _fam in (GANomaly(), FAnoGAN(), DFeatureKNN()):
    families.add(_fam.name, _fam)


# --- using a trained detector -------------------------------------------------------------------

def detector_models() -> tuple[str, ...]:
    """The model names of every anomaly family (what `gankit anomaly` accepts)."""
    return tuple(m for name in families if isinstance(fam := families.get(name), Anomaly) for m in fam.models)


class Detector:
    """A trained anomaly run: `score(x)` (N,1,28,28) in [-1,1] -> (N,) scores, higher = more
    anomalous, by its family's `score`; `threshold` flags about 5 % of the training digits."""

    def __init__(self, run: str | Path, ema: bool = True) -> None:
        from ..nets.registry import from_checkpoint

        path = Path(run)
        nets = from_checkpoint(path / "checkpoints" / "latest.pt" if path.is_dir() else path, ema)
        self.cfg, self.g, self.d, self.path = nets.cfg, nets.g, nets.d, nets.path
        known = detector_models()
        if self.cfg.model.name not in known:
            raise ConfigError(f"{run} is a {self.cfg.model.name} run; anomaly scores need a {', '.join(known[:-1])} "
                              f"or {known[-1]} run (gankit train {' / '.join(m + '_mnist' for m in known)})")
        self.method, self.normal_class = self.cfg.model.name, self.cfg.data.normal_class
        self.family = families.get(self.method)
        self._train: Tensor | None = None
        self._bank: Tensor | None = None
        gan_steps = self.cfg.anomaly.gan_steps
        if self.method == "fanogan" and nets.step <= gan_steps:
            raise ConfigError(f"{run}: this f-AnoGAN run is at step {nets.step}, still in its GAN stage "
                              f"(anomaly.gan_steps={gan_steps}); its encoder is untrained. Continue it: "
                              f"gankit train --resume {run} --steps {gan_steps + 250}")
        self._threshold: float | None = None

    @torch.no_grad()
    def score(self, x: Tensor, batch: int = 500, training: bool = False) -> Tensor:
        if tuple(x.shape[1:]) != (1, 28, 28):
            raise ConfigError(f"{self.method} scores 28x28 grey digits; got images of shape {tuple(x.shape[1:])}")
        return torch.cat([self.family.score(self, x[i: i + batch], training)
                          for i in range(0, len(x), batch)]).float()

    @property
    def training_images(self) -> Tensor:
        """The run's own training images (its data rebuilt: the normal class of its split)."""
        if self._train is None:
            from ..data import build as build_data

            self._train = self.family.prepare(self.cfg, build_data(self.cfg.data)).x
        return self._train

    @property
    @torch.no_grad()
    def bank(self) -> Tensor:
        """D's features of the training images (M,F), what a k-NN score compares against."""
        if self._bank is None:
            x = self.training_images
            self._bank = torch.cat([self.d(x[i: i + 500])[1].float() for i in range(0, len(x), 500)])
        return self._bank

    @property
    def threshold(self) -> float:
        """The 95th percentile of the scores of the run's own training digits."""
        if self._threshold is None:
            self._threshold = float(torch.quantile(self.score(self.training_images, training=True), 0.95))
        return self._threshold


def held_out_scores(det: Detector, n: int = 0) -> tuple[Tensor, Tensor, str]:
    """The detector's scores on held-out digits (`data.held_out` of its run's data, every class),
    whether each is anomalous (not the normal class), and what the held-out set was."""
    from ..data import Dataset, build, datasets, held_out

    if det.cfg.data.source in datasets:
        test = held_out(det.cfg.data, n)
    else:
        test = user_split(det.cfg, build(det.cfg.data), "test" if det.cfg.data.split == "train" else "all")
        if n and n < len(test):
            idx = torch.linspace(0, len(test) - 1, n).round().long()
            test = Dataset(test.x[idx], test.y[idx] if test.y is not None else None, test.name, test.classes)
        test.meta = {**test.meta, "split": "test" if det.cfg.data.split == "train" else "all"}
    if test.y is None or det.normal_class < 0:
        raise ConfigError("held-out scores need labelled data and a data.normal_class")
    split = test.meta["split"]
    how = ("the training data itself, not held out" if split == "all" else
           "every 10th example" if det.cfg.data.source in datasets else "a seeded tenth of each class")
    return det.score(test.x), test.y != det.normal_class, f"{det.cfg.data.source} (split {split}: {how})"


def held_out_auroc(run: str | Path, n: int = 0, ema: bool = True) -> dict[str, Any]:
    """AUROC of the run's scores on held-out digits (data.split=test of its source, every class;
    a user's set: its seeded held-out tenth, data.files.held_out_index): the normal class against
    all others. `n` > 0: n held-out digits, evenly spaced."""
    from sklearn.metrics import roc_auc_score

    det = Detector(run, ema=ema)
    scores, is_anomalous, where = held_out_scores(det, n)
    anomalous = is_anomalous.numpy()
    if anomalous.all() or not anomalous.any():
        raise ConfigError("held-out AUROC needs both normal and anomalous digits; use a larger --n")
    return {"auroc": float(roc_auc_score(anomalous, scores.numpy())),
            "threshold": det.threshold,
            "flagged_normal": float((scores[~is_anomalous] > det.threshold).float().mean()),
            "flagged_anomalous": float((scores[is_anomalous] > det.threshold).float().mean()),
            "protocol": {"method": det.method, "normal_class": det.normal_class, "n": len(scores),
                         "held_out": where,
                         "score": "higher = more anomalous; threshold = 95th percentile on the training digits"}}
