"""Semi-supervised classification with a GAN (Salimans et al. 2016, "Improved Techniques for
Training GANs", arXiv:1606.03498, sec. 5): D is a K-class classifier whose fake class is implicit
(`losses.semisup_unsupervised_d`), G is trained by feature matching.

Data: the source's labelled images are split once, per class, into a held-out set
(`semisup.test_fraction`, seed 0; mnist5k: the 100-per-class held-out digits of the project
classifier, `metrics.classifier.split_mnist5k`) and the training pool. Every pool image is
unlabelled data; `data.labels_per_class` of each class, drawn with `train.seed`, keep their labels
(recorded in the checkpoint's meta). The pool is ordered labelled first, and the labels travel as
`Dataset.cond` (-1 = unlabelled), so no other label of the pool reaches the update.

Phases of one update: Dmain (cross-entropy on a labelled batch + `semisup.unlabelled_weight` x
the unsupervised real/fake term on an unlabelled batch and G's fakes), Gmain (feature matching on
D's last hidden layer). `gankit eval RUN`: D's held-out accuracy; `gankit classify RUN IMAGES`
and `Classifier` use D, or its EMA when the run keeps one (`train.d_ema_beta`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..losses import feature_matching, semisup_unsupervised_d
from .base import Batch, Family, Phase, families

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from ..training.state import TrainState

MODELS = ("ssgan_mlp", "ssgan_conv")
SPLIT_SEED = 0  # the held-out split is the same for every run of a source (and is mnist5k's split_mnist5k)


def split(cfg: Config, data: Dataset) -> tuple[Tensor, Tensor, Tensor]:
    """Indices into `data` of (the labelled images, the rest of the training pool, the held-out
    images): a per-class split at `semisup.test_fraction` (seed 0), then `data.labels_per_class`
    of each class of the pool drawn with `train.seed`. ConfigError without labels or enough images."""
    from ..data.core import stratified_draw, stratified_split
    from ..errors import DataError

    if data.y is None:
        raise ConfigError(f"the semi-supervised family needs class labels for its held-out set and its "
                          f"{cfg.data.labels_per_class} labels per class, but {cfg.data.source} has none "
                          "(image sub-folders per class, IDX with a labels file, or .npz with y)")
    train, test = stratified_split(data.y, cfg.semisup.test_fraction, SPLIT_SEED)
    try:
        lab = train[stratified_draw(data.y[train], cfg.data.labels_per_class, cfg.train.seed, data.classes)]
    except DataError as e:
        raise ConfigError(f"data.labels_per_class={cfg.data.labels_per_class}: {e}") from None
    rest = train[~torch.isin(train, lab)]
    return lab, rest, test


class SemiSupervised(Family):
    name, models = "semisup", MODELS
    doc = "semi-supervised GAN: K-class D (fake class implicit), feature matching G; gankit classify"
    keys = frozenset({"data.labels_per_class", "model.z_dim", "model.n_classes", "reg.diffaug",
                      "semisup.unlabelled_weight", "semisup.test_fraction", "semisup.feature_weight",
                      "semisup.augment_labelled", "train.grid_n", "train.d_ema_beta"})
    distributed = False  # the labelled batch is drawn outside the sharded sampler

    def validate(self, cfg: Config) -> None:
        from ..nets.remedies import parse_policy

        if cfg.data.labels_per_class < 1:
            raise ConfigError("the semi-supervised family needs data.labels_per_class >= 1 (labelled images "
                              "per class; every training image is unlabelled data)")
        if cfg.data.split != "all":
            raise ConfigError(f"data.split={cfg.data.split}: the semi-supervised family holds out its own test "
                              "set (semisup.test_fraction of each class); leave data.split=all")
        if cfg.loss.name != "nonsaturating":
            raise ConfigError(f"loss.name={cfg.loss.name}: the semi-supervised family has its own (K+1)-class "
                              "loss; leave loss.name at nonsaturating")
        parse_policy(cfg.reg.diffaug)

    def prepare(self, cfg: Config, data: Dataset) -> Dataset:
        from ..data import Dataset
        from ..notes import note

        if not data.is_image:
            raise ConfigError(f"the semi-supervised family classifies images; {cfg.data.source} holds {data.shape}")
        lab, rest, test = split(cfg, data)
        k = data.num_classes
        if cfg.model.n_classes == 0:
            cfg.model.n_classes = k  # frozen into the saved config, so D's head and the classes agree
        elif cfg.model.n_classes != k:
            raise ConfigError(f"model.n_classes={cfg.model.n_classes} but {cfg.data.source} has {k} classes")
        if cfg.train.batch > len(lab) + len(rest):
            raise ConfigError(f"train.batch={cfg.train.batch} is larger than the training pool "
                              f"({len(lab) + len(rest)} images)")
        if cfg.data.source != "mnist5k":
            note(f"semisup: held-out set = a seeded stratified {cfg.semisup.test_fraction:.0%} of each class of "
                 f"{cfg.data.source} ({len(test)} images, never trained on); {len(lab)} labelled + "
                 f"{len(rest)} unlabelled training images")
        pool = torch.cat([lab, rest])
        cond = torch.full((len(pool),), -1, dtype=torch.long)
        cond[: len(lab)] = data.y[lab]
        meta = {**data.meta, "labelled": lab.tolist(), "held_out": len(test)}
        return Dataset(data.x[pool], None, data.name, data.classes or [str(i) for i in range(k)], meta, cond=cond)

    def init(self, s: TrainState, data: Dataset) -> None:
        # what `gankit classify` names and what was trained on, kept with the run
        s.meta.update(classes=list(data.classes or []), labelled=data.meta["labelled"])

    def phases(self, cfg: Config) -> list[Phase]:
        return [Phase("Dmain", "d", d_main), Phase("Gmain", "g", g_main)]

    def evaluate(self, g: Any, n: int = 0, seed: int = 0) -> dict:
        return held_out_accuracy(g.path, n)


families.add("semisup", SemiSupervised())


# --- phases -------------------------------------------------------------------------------------

def d_main(s: TrainState, b: Batch) -> Tensor:
    """Cross-entropy of a labelled batch (drawn with replacement by the z generator: 10 labels per
    class are fewer than a batch) + unlabelled_weight x the real/fake term on an unlabelled batch
    and fakes. D sees the three in one forward: its layers hold no batch statistics."""
    n = s.cfg.train.batch
    n_lab = int((b.cond >= 0).sum())  # the labelled images come first in the pool
    li = torch.randint(n_lab, (n,), generator=s.noise).to(s.device)
    b.real = b.data[s.batch_indices(n)]
    b.fake = s.g_run(s.sample_z(n))
    lab_x = b.data[li]
    if s.cfg.semisup.augment_labelled:  # only the labelled term: augmented reals would differ from the
        # unaugmented fakes in the real/fake term, which D could then learn instead of the data
        from ..metrics.classifier import classic_augment

        lab_x = classic_augment(lab_x, s.noise)
    logits, feats = s.d_run(torch.cat([lab_x, b.real, b.fake.detach()]))
    lab, real, fake = logits.float().split(n)
    sup = F.cross_entropy(lab, b.cond[li])
    unsup = semisup_unsupervised_d(real=real, fake=fake)
    b.aux["real_features"] = feats[n: 2 * n].detach()
    b.out.update(supervised=sup.detach(), unsupervised=unsup.detach(),
                 train_accuracy=(lab.argmax(1) == b.cond[li]).float().mean().detach())
    b.d_loss = sup + s.cfg.semisup.unlabelled_weight * unsup
    return b.d_loss


def g_main(s: TrainState, b: Batch) -> Tensor:
    """Feature matching against the D phase's unlabelled batch (its features, computed before D's
    step; the paper draws a second batch, which costs another D forward)."""
    fm = feature_matching(real=b.aux["real_features"].float(), fake=s.d_run(b.fake)[1].float())
    b.g_loss = s.cfg.semisup.feature_weight * fm
    return b.g_loss


# --- using a trained classifier -------------------------------------------------------------------

class Classifier:
    """D of a semi-supervised run as a classifier: `probs(x)` (N,C,H,W) in [-1,1] at the run's
    shape -> (N, K) class probabilities (the fake class left out, renormalised); `classes` their
    names. D's EMA weights when the run keeps them and `ema` (`averaged` says which).
    ConfigError for a run of another family."""

    def __init__(self, run: str | Path, ema: bool = True) -> None:
        from ..checkpoint import read_checkpoint
        from ..nets.registry import from_checkpoint

        path = Path(run)
        ck = path / "checkpoints" / "latest.pt" if path.is_dir() else path
        nets = from_checkpoint(ck, ema=ema)
        if nets.cfg.model.name not in MODELS:
            raise ConfigError(f"{run} is a {nets.cfg.model.name} run; classifying needs a semi-supervised run "
                              "(gankit train ssgan_mnist)")
        self.cfg, self.d, self.shape, self.path = nets.cfg, nets.d.eval(), nets.shape, nets.path
        self.averaged = nets.d_ema
        meta = read_checkpoint(ck).get("meta") or {}
        k = self.cfg.model.n_classes
        self.classes: list[str] = list(meta.get("classes") or [str(i) for i in range(k)])
        self.labelled: list[int] = list(meta.get("labelled") or [])

    @torch.no_grad()
    def probs(self, x: Tensor, batch: int = 500) -> Tensor:
        if tuple(x.shape[1:]) != tuple(self.shape):
            raise ConfigError(f"this classifier takes images of shape {tuple(self.shape)}; got {tuple(x.shape[1:])}")
        return torch.cat([F.softmax(self.d(x[i: i + batch])[0].float(), 1) for i in range(0, len(x), batch)])

    def predict(self, x: Tensor) -> Tensor:
        """(N,) class indices."""
        return self.probs(x).argmax(1)


def held_out_accuracy(run: str | Path, n: int = 0) -> dict[str, Any]:
    """D's accuracy on the run's held-out images (`split`: the same split training used; none of
    them is in the pool, so none was labelled). `n` > 0: n of them, evenly spaced. A run with an
    EMA of D is scored with it (what `classify` uses); `heldout_accuracy_raw_d` is D's own."""
    from ..data import build

    clf = Classifier(run)
    data = build(clf.cfg.data)
    lab, _, test = split(clf.cfg, data)
    if clf.labelled and sorted(lab.tolist()) != sorted(clf.labelled):
        raise ConfigError(f"{run}: the data's labelled draw differs from the one recorded at training "
                          f"({clf.cfg.data.source} changed?); held-out accuracy would not be held out")
    assert not set(lab.tolist()) & set(test.tolist())  # by construction: the draw is from the pool
    if n and n < len(test):
        test = test[torch.linspace(0, len(test) - 1, n).round().long()]
    acc = float((clf.predict(data.x[test]) == data.y[test]).float().mean())
    raw = {}
    if clf.averaged:
        raw["heldout_accuracy_raw_d"] = float((Classifier(run, ema=False).predict(data.x[test]) == data.y[test])
                                              .float().mean())
    return {"heldout_accuracy": acc, **raw,
            "protocol": {"n": len(test), "classes": len(clf.classes),
                         "labels_per_class": clf.cfg.data.labels_per_class, "seed": clf.cfg.train.seed,
                         "held_out": f"{clf.cfg.data.source}: a stratified {clf.cfg.semisup.test_fraction:.0%} of "
                                     f"each class (split seed {SPLIT_SEED}), never trained on",
                         "classifier": (f"D's EMA (beta {clf.cfg.train.d_ema_beta})" if clf.averaged else "D")
                                       + " (argmax of its K class logits, eval mode)"}}
