"""What a model family declares, and the registry the core, the CLI and the tests read.

A family is a kind of GAN (noise -> image, pix2pix, CycleGAN, ...). It owns its options (the
config keys it reads beyond the shared ones), its cross-field rules, the data it needs and its
*phases*: the losses of one training update, each with the net whose optimiser it steps. The
update itself (backward, loss scaling, clipping, optimiser, scheduler, EMA) is written once, in
`training/step.py`; a family never calls `backward()` or `opt.step()`.

The shape follows NVlabs stylegan2-ada-pytorch's `accumulate_gradients` (phases Gmain, Dmain, ...).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

from ..errors import ConfigError
from ..registry import Registry

if TYPE_CHECKING:  # families sit below training/; the state is only a type here
    from ..config import Config
    from ..data import Dataset
    from ..training.state import TrainState


@dataclass
class Batch:
    """What the phases of one update share. `data`, `labels`, `inputs` are the whole in-memory
    set (B images, class labels, A inputs); the phases draw their batches from them and leave
    what later phases reuse (the D phase's fakes, with their graph to G, for the G phase)."""

    data: Tensor
    labels: Tensor | None = None
    inputs: Tensor | None = None
    cond: Tensor | None = None  # per-example conditions beyond class labels (caption attribute levels)
    stats: bool = False  # a log step: the core also measures gradient norms
    real: Tensor | None = None
    a: Tensor | None = None  # image-to-image: this batch's inputs
    y: Tensor | None = None  # this batch's class labels (conditional models)
    fake: Tensor | None = None
    d_loss: Tensor | None = None  # the adversarial losses reported in the log (regularisers apart)
    g_loss: Tensor | None = None
    out: dict[str, Tensor] = field(default_factory=dict)  # detached scalars for the log
    aux: dict[str, Any] = field(default_factory=dict)  # anything else a family's phases pass on


@dataclass(frozen=True)
class Phase:
    """One optimiser step of an update: `loss(state, batch)` is the phase's whole loss
    (adversarial terms + regularisers), minimised by the optimiser of `net` ("g" or "d").

    `d_update`: this phase completes one D update, so the D step count advances and D's
    constraints (weight clipping) apply after it. Keras' split update has two D phases, one D
    update. `when(step)`: the phase runs only at those steps (a stage of a staged method, such as
    f-AnoGAN's encoder after its GAN). `only` (G phases): the one sub-module of G this phase
    trains; the rest of G is frozen for it (f-AnoGAN's encoder inside its G)."""

    name: str  # stylegan2-ada's names: Dmain, Gmain, ...
    net: str  # "g" | "d"
    loss: Callable[[TrainState, Batch], Tensor]
    d_update: bool = True
    when: Callable[[int], bool] | None = None
    only: str = ""


# Keys every family reads: the data, the optimiser, how a run is driven, and what the core does
# for every family (EMA, weight clipping, gradient clipping, precision). Anything else belongs
# to the families that declare it.
SHARED = {
    "recipe",
    "data.source", "data.image_size", "data.channels", "data.n", "data.pad", "data.split",
    "model.name", "model.width",
    "loss.name",
    "optim.lr_g", "optim.lr_d", "optim.beta1", "optim.beta2", "optim.eps", "optim.weight_decay_d",
    "optim.grad_clip", "optim.lr_decay", "optim.decay_steps", "optim.decay_start", "optim.decay_gamma", "optim.impl",
    "reg.weight_clip",
    "train.steps", "train.seconds", "train.batch", "train.seed", "train.ema_beta", "train.log_every",
    "train.sample_every", "train.ckpt_every", "train.keep_every", "train.threads", "train.tensorboard",
    "train.collapse_ratio", "train.collapse_after", "train.device", "train.precision", "train.channels_last",
    "train.compile", "train.workers", "train.sync_bn",
}


class Family(ABC):
    """Subclass per kind of GAN; register an instance in `families`."""

    name: str = ""
    models: tuple[str, ...] = ()  # net registry names this family trains; () = every other name
    keys: frozenset[str] = frozenset()  # config keys read beyond SHARED
    translates: bool = False  # maps input images to images (no z): sampled by translating, not from noise
    # trains data-parallel under torchrun: only if every phase calls G and D through s.g_run / s.d_run
    # (the DDP wrappers); phases that call parts of G directly would leave G unsynchronised
    distributed: bool = True
    doc: str = ""

    def validate(self, cfg: Config) -> None:
        """Cross-field rules of this family's options (after the shared checks); none by default."""
        return None

    def prepare(self, cfg: Config, data: Dataset) -> Dataset:
        """Check the data has what the family needs; freeze data-derived options into cfg."""
        return data

    def uses_labels(self, cfg: Config) -> bool:
        """Whether the updates read the data's class labels."""
        return False

    def init(self, s: TrainState, data: Dataset) -> None:
        """A new run's nets, before the first update (not on resume: the checkpoint has them);
        nothing by default."""
        return None

    @abstractmethod
    def phases(self, cfg: Config) -> list[Phase]:
        """The phases of one update, in order; built once per run."""

    def preview(self, s: TrainState, data: Dataset, fixed_z: Tensor) -> Any:
        """The training grid (a PIL image), or None for the core's default."""
        return None

    def evaluate(self, g: Any, n: int = 0, seed: int = 0) -> dict | None:
        """`gankit eval RUN`: the family's own metrics for a loaded generator (api.Generator), or
        None for the sample-based metrics (FID, KID, PRDC, ...) against the run's data."""
        return None


families: Registry[Family] = Registry("model family")


def family_of(cfg: Config) -> Family:
    """The family that trains `cfg.model.name` (families/__init__.py registers them all)."""
    default = None
    for name in families:
        fam = families.get(name)
        if cfg.model.name in fam.models:
            return fam
        if not fam.models:
            default = fam
    assert default is not None
    return default


def check_keys(cfg: Config, implied_by: str = "") -> None:
    """A key the family does not read is an error when its value differs from the default:
    silently ignoring it would let a user believe it took effect. (A key at its default is
    harmless; run files saved before configs were per family list every key at its default.)
    `implied_by`: the setting that filled the values in (a loss's implied penalty), for the message."""
    from .. import config as config_mod

    fam = family_of(cfg)
    own = SHARED | fam.keys
    for key in sorted(config_mod.changed_keys(cfg, config_mod.Config())):
        if key not in own:
            mine = ", ".join(sorted(fam.keys)) or "none"
            why = f"{implied_by} sets {key}, which" if implied_by else key
            raise ConfigError(f"{why} is not used by {fam.name} models (their own options: {mine}; the options "
                              "every family shares: `gankit list families`)")


def resolve(cfg: Config) -> Config:
    """The config resolved for its family: foreign keys refused, loss-implied defaults filled
    (config.resolve), the shared checks, then the family's own cross-field rules."""
    from .. import config as config_mod

    check_keys(cfg)  # first: a foreign key's own range check would be a confusing message
    cfg = config_mod.resolve(cfg)
    check_keys(cfg, f"loss.name={cfg.loss.name}")  # what resolve filled in: the loss-implied values
    family_of(cfg).validate(cfg)
    return cfg


def run_keys(cfg: Config) -> set[str]:
    """The keys a run's config.yaml lists: the shared ones and its family's."""
    return SHARED | family_of(cfg).keys
