"""Validated dataclass configs, YAML recipes and `--set section.key=value` overrides.

A run's whole behaviour is one `Config`; the resolved config is written to the run directory
and into every checkpoint, so a run can be rebuilt from its files alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

log = logging.getLogger("gankit")


@dataclass
class DataConfig:
    source: str = "mnist5k"  # a registered dataset name, or a path: image folder, IDX file, .npy/.npz
    image_size: int = 0  # resize images to this side length; 0 keeps the native size
    channels: int = 0  # force 1 (grayscale) or 3 (RGB); 0 keeps the native channel count
    n: int = 0  # use only the first n examples (toy sets: points drawn); 0 = all
    pad: int = 0  # pad images by this many background pixels per side (after resizing), e.g. 2: 28 -> 32
    # built-ins: all | train (9 of every 10) | test (every 10th); anomaly runs on a user's set: a seeded tenth per class
    split: str = "all"
    normal_class: int = -1  # anomaly detection: train on this class only (the "normal" one); -1 = all
    labels_per_class: int = 0  # semi-supervised: labels kept for this many training images per class (seeded)


@dataclass
class ModelConfig:
    name: str = "dcgan"
    z_dim: int = 100
    width: int = 64  # base channel count (conv nets) or widest hidden layer (MLPs)
    depth: int = 3  # hidden layers of the toy MLP
    norm_g: str = "batch"  # none | batch | layer | spectral
    norm_d: str = "none"
    act_g: str = "relu"  # relu | leaky_relu | tanh
    act_d: str = "leaky_relu"
    leaky_slope: float = 0.2
    dropout_d: float = 0.0
    init: str = "default"  # default (PyTorch) | dcgan (N(0, 0.02)) | glorot (Keras)
    bn_momentum: float = 0.1  # PyTorch convention; Keras' 0.99 is 0.01 here
    pack: int = 1  # PacGAN: D judges packs of this many samples (Lin et al. 2018); 1 = off
    minibatch: str = "none"  # none | disc (minibatch discrimination) | stddev (minibatch std feature)
    mbd_kernels: int = 50  # minibatch discrimination: number of kernels B (Salimans et al. 2016)
    mbd_dim: int = 5  # and their dimension C
    cond: str = "none"  # class-conditional D: none | concat | projection | acgan (auxiliary classifier)
    cond_g: str = "concat"  # how a conditional G sees the label: concat (one-hot to z) | cbn (conditional BN)
    n_classes: int = 0  # classes of a conditional model; 0 = from the data's labels, frozen at start
    clusters: int = 0  # self-conditioning: condition on this many k-means clusters of the images, not labels; 0 = off
    attention: int = 0  # SAGAN self-attention block at this feature-map size in G and D (dcgan, resnet); 0 = off
    grow_steps: int = 1000  # progan: steps of the first stage and of each later stage's fade-in and stable phase
    mapping: int = 4  # stylegan: layers of the mapping network z -> w
    style_mix: float = 0.9  # stylegan: probability of style mixing regularisation in training
    n_d: int = 1  # GMAN: this many discriminators, each trained on its own loss (Durugkar et al. 2017)
    n_g: int = 1  # a uniform mixture of this many generators (sample i from generator i mod n_g)
    in_channels: int = 0  # image-to-image: channels of the input A; 0 = from the data, frozen at start
    scale: int = 0  # srgan: output/input size ratio; 0 = from the data, frozen at start
    patch_layers: int = 2  # PatchGAN: stride-2 layers (2: 34x34 receptive field, 3: 70x70)
    dropout_g: float = 0.0  # pix2pix: dropout in G's inner decoder levels (its noise source)
    masks: str = "rect,strokes"  # inpainting: the hole families trained on (nets/masks.py), comma-separated


@dataclass
class LossConfig:
    name: str = "nonsaturating"
    real_label: float = 1.0  # one-sided label smoothing: 0.9 (Salimans et al. 2016); BCE losses only
    aux_weight: float = 1.0  # ACGAN: weight of the class cross-entropy in both losses
    gman_lambda: float = 0.0  # several Ds: G's loss is sum softmax(lambda*L_i) L_i; 0 = mean, large = max
    adv_weight: float = 1.0  # image-to-image: weight of the adversarial term in G's loss (SRGAN: 1e-3; 0 = none)
    l1_weight: float = 100.0  # pix2pix / inpainting: lambda of the L1 (reconstruction) term
    cycle_weight: float = 10.0  # cyclegan: lambda of the cycle-consistency term
    identity_weight: float = 0.5  # cyclegan: identity term, as a fraction of cycle_weight
    feature_weight: float = 0.0  # srgan: weight of the feature (perceptual) content loss; pixel MSE always
    feature_net: str = "mnistcnn"  # srgan: the feature loss's net: mnistcnn, or a VGG-19 / digit-CNN weights path


@dataclass
class OptimConfig:
    lr_g: float = 2e-4  # TTUR: separate learning rates for G and D (Heusel et al. 2017)
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay_d: float = 0.0  # L2 penalty on D's weights
    grad_clip: float = 0.0  # clip each network's gradient norm to this; 0 = off
    lr_decay: str = "none"  # none | linear (to 0 at decay_steps) | exp (x decay_gamma per step)
    decay_steps: int = 0  # linear decay horizon; 0 = the run's train.steps, frozen at start
    decay_start: float = 0.0  # linear: held until this fraction of decay_steps, then to 0 (improved-gan: 2/3)
    decay_gamma: float = 0.9995
    impl: str = "fused"  # Adam kernel: fused (one kernel for all tensors; measured 5-8x faster) | foreach | loop


@dataclass
class RegConfig:
    gp_weight: float = 0.0  # WGAN-GP gradient penalty weight (lambda, 10 in Gulrajani et al.)
    r1_gamma: float = 0.0  # R1 penalty on real data (Mescheder et al. 2018)
    r1_every: int = 16  # lazy R1: every k D steps, scaled by k (Karras et al. 2020)
    weight_clip: float = 0.0  # WGAN weight clipping to [-c, c]; 0 = off
    instance_noise: float = 0.0  # initial std of Gaussian noise added to D's inputs
    instance_noise_steps: int = 0  # anneal that std linearly to 0 over this many steps; 0 = constant
    drift: float = 0.0  # ProGAN's drift penalty eps * E[D(x_real)^2] keeping a critic's output near 0 (0.001)
    mode_seeking: float = 0.0  # MSGAN's term in G's loss (Mao et al. 2019), for conditional G; 0 = off
    diffaug: str = ""  # DiffAugment policy for D's inputs, e.g. "color,translation,cutout"; "" = off


@dataclass
class TrainConfig:
    steps: int = 5000  # total generator steps of the run (a resumed run stops here too); 0 = no limit
    seconds: float = 0.0  # stop after this much training time; 0 = no time limit
    batch: int = 64
    n_critic: int = 1  # D steps per G step
    d_update: str = "joint"  # joint: one D step on real+fake; split: Keras-style real then fake step
    g_fresh_z: bool = False  # draw new z for the G step instead of reusing the D step's fakes
    g_batch: int = 0  # batch size of the G step when g_fresh_z; 0 = train.batch
    unroll: int = 0  # unrolled GAN: G's loss sees D after this many differentiable D steps (Metz et al. 2017)
    seed: int = 0
    ema_beta: float = 0.999  # EMA of G's weights used for sampling; 0 = off
    d_ema_beta: float = 0.0  # EMA of D's weights, for families whose product is D (a classifier); 0 = off
    log_every: int = 50
    sample_every: int = 250  # fixed-z sample grid; 0 = off
    ckpt_every: int = 1000
    keep_every: int = 0  # also keep checkpoints/step-N.pt every this many steps; 0 = off
    grid_n: int = 64
    threads: int = 0  # torch threads; 0 = OMP_NUM_THREADS, else timed: 1 or all usable cores but one; frozen at start
    tensorboard: bool = True
    collapse_ratio: float = 0.05  # warn when fake diversity falls below this fraction of real's
    collapse_after: int = 100  # no collapse warnings before this step: an untrained G is not collapsed
    eval_every: int = 0  # score samples every this many steps and keep checkpoints/best.pt; 0 = off
    eval_n: int = 0  # samples per periodic eval; 0 = 2000 images / 2500 toy points
    best_metric: str = ""  # result to rank checkpoints by; "" = fid (images) or reverse_kl (toy)
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N; frozen at start
    precision: str = "auto"  # auto (time candidates, keep the fastest) | fp32 | bf16 | fp16; frozen at start
    channels_last: str = "auto"  # conv nets' memory layout: auto (timed with precision) | on | off
    compile: bool = False  # torch.compile G and D (compile time is logged); off by default: minutes of compiling
    workers: int = 2  # processes reading batches ahead from a prepared (memory-mapped) set; 0 = read in the step
    sync_bn: bool = False  # distributed: SyncBatchNorm (batch statistics over all processes) instead of local ones


@dataclass
class AnomalyConfig:
    """GANomaly, f-AnoGAN and D-feature k-NN options: the anomaly families' own section."""

    rec_weight: float = 50.0  # GANomaly: weight of the contextual L1 |x - x_hat| (Akcay et al.: 50)
    latent_weight: float = 1.0  # GANomaly: weight of the latent L2 |z - z_hat|^2
    adv_weight: float = 1.0  # GANomaly: weight of the feature-matching adversarial term
    gan_steps: int = 400  # f-AnoGAN: steps of the GAN stage; the steps after it train the encoder (G, D frozen)
    feature_weight: float = 1.0  # f-AnoGAN: kappa, weight of D's feature residual in the encoder's loss
    k: int = 5  # D-feature k-NN: neighbours among the training digits' D features whose mean distance is the score


@dataclass
class TextConfig:
    """Text-to-image (GAN-CLS) options: the `text2image` family's own section."""

    matching: str = "gan-cls"  # gan-cls: D also calls real images under wrong captions fake | none: conditional D only
    keep_word: float = 0.7  # each attribute word of a training caption is kept with this probability
    mode_seeking: float = 0.2  # weight of MSGAN's term in G's loss (Mao et al. 2019); 0 = off
    encoder_steps: int = 400  # supervised steps of the caption encoder before the GAN (then frozen)


@dataclass
class SemisupConfig:
    """Semi-supervised GAN options (Salimans et al. 2016): the `semisup` family's own section."""

    unlabelled_weight: float = 1.0  # weight of D's unsupervised real/fake term beside the labelled cross-entropy
    test_fraction: float = 0.2  # held out of each class (a seeded split, never trained on); mnist5k: 100 of 500
    feature_weight: float = 1.0  # weight of G's feature-matching loss (its only loss)
    augment_labelled: bool = False  # shift/rotate/scale the labelled batch (classic augmentation; -1 padding)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    text: TextConfig = field(default_factory=TextConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    semisup: SemisupConfig = field(default_factory=SemisupConfig)
    recipe: str = ""  # the recipe name this config came from (informational)

    def to_dict(self, keys: set[str] | None = None) -> dict[str, Any]:
        """Nested dicts; with `keys` ("section.key") only those (a run lists its family's keys)."""
        d = asdict(self)
        if keys is None:
            return d
        out = {sec: ({k: v for k, v in body.items() if f"{sec}.{k}" in keys} if isinstance(body, dict) else body)
               for sec, body in d.items()}
        return {sec: body for sec, body in out.items() if body != {}}  # another family's section: left out

    def to_yaml(self, keys: set[str] | None = None) -> str:
        return yaml.safe_dump(self.to_dict(keys), sort_keys=False)


SECTIONS = [f.name for f in fields(Config) if dataclasses.is_dataclass(f.default_factory)]  # type: ignore[arg-type]

CHOICES = {
    "model.norm_g": ("none", "batch", "layer", "spectral", "instance"),
    "model.norm_d": ("none", "batch", "layer", "spectral", "instance"),
    "data.split": ("train", "test", "all"),
    "model.act_g": ("relu", "leaky_relu", "tanh"),
    "model.act_d": ("relu", "leaky_relu", "tanh"),
    "model.init": ("default", "dcgan", "glorot"),
    "model.minibatch": ("none", "disc", "stddev"),
    "model.cond": ("none", "concat", "projection", "acgan"),
    "model.cond_g": ("concat", "cbn"),
    "optim.lr_decay": ("none", "linear", "exp"),
    "train.d_update": ("joint", "split"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.channels_last": ("auto", "on", "off"),
    "optim.impl": ("fused", "foreach", "loop"),
    "text.matching": ("gan-cls", "none"),
}


def all_keys() -> list[str]:
    keys = ["recipe"]
    for sec in SECTIONS:
        keys += [f"{sec}.{f.name}" for f in fields(getattr(Config(), sec))]
    return keys


def _unknown(key: str) -> ConfigError:
    leaf = key.split(".")[-1]
    # a right key in the wrong section (train.lr_g -> optim.lr_g) beats a merely similar spelling
    close = [k for k in all_keys() if k.split(".")[-1] == leaf][:1]
    if not close:
        close = difflib.get_close_matches(key, all_keys(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else ""
    return ConfigError(f"unknown config key {key}{hint}")


def _coerce(key: str, value: Any, typ: type) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{key} must be {typ.__name__}, got {value!r}")


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def changed_keys(cfg: Config, default: Config) -> set[str]:
    """The keys whose values differ from `default`'s."""
    out = set()
    for sec in SECTIONS:
        a, b = getattr(cfg, sec), getattr(default, sec)
        out |= {f"{sec}.{f.name}" for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)}
    return out


def _set(cfg: Config, key: str, value: Any) -> None:
    if key == "recipe":
        cfg.recipe = _coerce(key, value, str)
        return
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise _unknown(key)
    section = getattr(cfg, parts[0])
    types = {f.name: f.type for f in fields(section)}
    if parts[1] not in types:
        raise _unknown(key)
    typ = types[parts[1]]
    typ = _TYPES.get(typ, typ) if isinstance(typ, str) else typ
    if typ is str and isinstance(value, bool) and "on" in CHOICES.get(key, ()):
        value = "on" if value else "off"  # YAML 1.1 reads on/off as booleans
    setattr(section, parts[1], _coerce(key, value, typ))


def from_dict(d: dict[str, Any], base: Config | None = None) -> Config:
    """Build a config from nested dicts; unknown sections and keys are errors with suggestions."""
    cfg = base or Config()
    if not isinstance(d, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(d).__name__}")
    for sec, body in d.items():
        if sec == "recipe":
            _set(cfg, "recipe", body)
            continue
        if sec not in SECTIONS:
            raise _unknown(str(sec))
        if not isinstance(body, dict):
            raise ConfigError(f"config section {sec} must be a mapping, got {body!r}")
        for k, v in body.items():
            _set(cfg, f"{sec}.{k}", v)
    return cfg


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings; values are parsed as YAML scalars (3e-4, true, hinge)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set(cfg, key.strip(), value)
    return cfg


def recipe_dir() -> Path:
    return Path(str(resources.files("gankit") / "configs"))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


DEFAULT_RECIPE = "selfcond_mnist"
AUTO = "auto"  # the recipe of `gankit train --data X` without one: chosen from the data once it is read
SMALL_DATA_RECIPE = "dcgan_small_data"
TOY_RECIPE = "toy_ring"
STREAMED_RECIPE = "dcgan_mnist_fast"  # the default's unconditional net: self-conditioning needs the images in memory
DIGIT_LIKE_MIN = 2000  # gray images up to 32x32 with at least this many examples train like the digits


def recipe_for_data(shape: tuple[int, ...], count: int, streamed: bool = False) -> tuple[str, str]:
    """The recipe for data of one example's `shape` ((C,H,W) images or (D,) points) and `count`
    examples, and why, in words. Gray images up to 32x32 with >= DIGIT_LIKE_MIN examples get the
    default (tuned on the 5000 embedded digits); other images (colour, larger, or fewer) get
    SMALL_DATA_RECIPE, which augments D's inputs (DiffAugment: with few images D memorises them
    and G's gradients fade; Zhao et al. 2020); points get the toy recipe. A `streamed` (prepared,
    memory-mapped) digit-like set gets STREAMED_RECIPE: the default clusters the images in memory."""
    if len(shape) == 1:
        return TOY_RECIPE, f"{count} {shape[0]}-d points"
    c, h, w = shape
    what = f"{count} images of {c}x{h}x{w}"
    if c == 1 and max(h, w) <= 32 and count >= DIGIT_LIKE_MIN:
        if streamed:
            return STREAMED_RECIPE, f"{what}, streamed: small gray images; the default's net without its clustering"
        return DEFAULT_RECIPE, f"{what}: small gray images, like the digits it was tuned on"
    why = "colour" if c != 1 else f"fewer than {DIGIT_LIKE_MIN}" if count < DIGIT_LIKE_MIN else "larger than 32x32"
    return SMALL_DATA_RECIPE, f"{what} ({why}): D's inputs augmented (DiffAugment)"


def with_recipe(cfg: Config, name: str) -> Config:
    """The recipe `name` with every key the user gave `cfg` applied on top: what choosing `name`
    on the command line gives. The given keys are `cfg.given` (api.make_config records the --data,
    --set and flag keys); without it, every key that differs from the default recipe."""
    out = load_recipe(name)
    given = getattr(cfg, "given", None)
    for key in sorted(given if given is not None else changed_keys(cfg, load_recipe(None))):
        sec, k = key.split(".")
        setattr(getattr(out, sec), k, getattr(getattr(cfg, sec), k))
    return out


def load_recipe(name_or_path: str | None) -> Config:
    """A recipe name from `gankit list configs`, or a YAML path; None = the default recipe."""
    name = name_or_path or DEFAULT_RECIPE
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = recipe_dir() / f"{name}.yaml"
        if not path.exists():
            close = difflib.get_close_matches(name, recipe_names(), n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(f"unknown recipe {name!r}{hint} (see `gankit list configs`)")
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    cfg = from_dict(d)
    if not cfg.recipe:
        cfg.recipe = path.stem
    return cfg


def validate(cfg: Config) -> Config:
    """Check choices and ranges; raise ConfigError naming the first bad key."""
    from .data import datasets
    from .losses import losses
    from .nets import models

    for key, allowed in CHOICES.items():
        sec, k = key.split(".")
        v = getattr(getattr(cfg, sec), k)
        if v not in allowed:
            raise ConfigError(f"{key}={v!r} is not one of {', '.join(allowed)}")
    models.get(cfg.model.name)  # unknown names raise a ConfigError with suggestions
    losses.get(cfg.loss.name)
    src = cfg.data.source
    if src not in datasets and not Path(src).exists():
        raise ConfigError(
            f"data.source {src!r} is neither a registered dataset ({', '.join(datasets.names())}) "
            "nor an existing path"
        )
    import math

    for sec in SECTIONS:  # NaN passes every `< 0` check below, so finiteness comes first
        for f in fields(getattr(cfg, sec)):
            v = getattr(getattr(cfg, sec), f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{sec}.{f.name} must be a finite number, got {v}")
    positive = ["train.batch", "train.n_critic", "model.z_dim", "model.width", "train.grid_n", "model.depth",
                "model.pack", "model.mbd_kernels", "model.mbd_dim", "model.n_d", "model.n_g", "model.grow_steps",
                "model.patch_layers", "anomaly.k"]
    for key in positive:
        sec, k = key.split(".")
        if getattr(getattr(cfg, sec), k) < 1:
            raise ConfigError(f"{key} must be >= 1, got {getattr(getattr(cfg, sec), k)}")
    non_negative = [
        "train.steps", "train.seconds", "train.log_every", "train.sample_every", "train.ckpt_every",
        "train.keep_every", "train.threads", "train.g_batch", "optim.grad_clip", "optim.weight_decay_d",
        "optim.decay_steps", "reg.gp_weight", "reg.r1_gamma", "reg.weight_clip", "reg.instance_noise",
        "reg.instance_noise_steps", "model.dropout_d", "data.n", "data.image_size", "data.channels",
        "model.leaky_slope", "train.collapse_ratio", "train.collapse_after", "train.eval_every", "train.eval_n",
        "train.unroll", "train.workers", "model.n_classes", "model.clusters", "loss.aux_weight", "model.attention",
        "data.pad",
        "reg.drift", "reg.mode_seeking",
        "loss.gman_lambda", "model.mapping", "model.in_channels", "model.scale", "loss.adv_weight",
        "loss.l1_weight", "loss.cycle_weight", "loss.identity_weight", "loss.feature_weight", "model.dropout_g",
        "anomaly.rec_weight", "anomaly.latent_weight", "anomaly.adv_weight", "anomaly.gan_steps",
        "anomaly.feature_weight", "text.mode_seeking", "text.encoder_steps", "model.bn_momentum",
        "data.labels_per_class", "semisup.unlabelled_weight", "semisup.feature_weight",
    ]
    for key in non_negative:
        sec, k = key.split(".")
        if getattr(getattr(cfg, sec), k) < 0:
            raise ConfigError(f"{key} must be >= 0, got {getattr(getattr(cfg, sec), k)}")
    if cfg.train.steps == 0 and cfg.train.seconds == 0:
        raise ConfigError("set train.steps (--steps) or train.seconds (--seconds); both are 0")
    if cfg.optim.lr_decay == "linear" and cfg.train.steps == 0 and cfg.optim.decay_steps == 0:
        raise ConfigError("optim.lr_decay=linear needs optim.decay_steps when the run has no train.steps")
    if cfg.optim.lr_g <= 0 or cfg.optim.lr_d <= 0:
        raise ConfigError("optim.lr_g and optim.lr_d must be > 0")
    if not (0 <= cfg.optim.beta1 < 1 and 0 <= cfg.optim.beta2 < 1):
        raise ConfigError("optim.beta1 and optim.beta2 must be in [0, 1)")
    for key in ("train.ema_beta", "train.d_ema_beta", "optim.decay_start"):
        sec, k = key.split(".")
        if not 0 <= getattr(getattr(cfg, sec), k) < 1:
            raise ConfigError(f"{key} must be in [0, 1), got {getattr(getattr(cfg, sec), k)}")
    if not 0 <= cfg.model.style_mix <= 1:
        raise ConfigError(f"model.style_mix must be in [0, 1], got {cfg.model.style_mix}")
    if not 0 <= cfg.model.dropout_d < 1:
        raise ConfigError(f"model.dropout_d must be in [0, 1), got {cfg.model.dropout_d}")
    if not 0 < cfg.loss.real_label <= 1:
        raise ConfigError(f"loss.real_label must be in (0, 1], got {cfg.loss.real_label}")
    if cfg.data.channels not in (0, 1, 3):
        raise ConfigError(f"data.channels must be 0 (native), 1 or 3, got {cfg.data.channels}")
    dev = cfg.train.device
    if not (dev in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", dev)):
        raise ConfigError(f"train.device={dev!r} is not one of auto, cpu, cuda, cuda:N")
    if cfg.optim.eps <= 0:
        raise ConfigError(f"optim.eps must be > 0, got {cfg.optim.eps}")
    if not 0 <= cfg.model.dropout_g < 1:
        raise ConfigError(f"model.dropout_g must be in [0, 1), got {cfg.model.dropout_g}")
    if not 0 <= cfg.text.keep_word <= 1:
        raise ConfigError(f"text.keep_word must be in [0, 1], got {cfg.text.keep_word}")
    if not 0 <= cfg.model.bn_momentum <= 1:
        raise ConfigError(f"model.bn_momentum must be in [0, 1], got {cfg.model.bn_momentum}")
    if not 0 < cfg.semisup.test_fraction < 1:
        raise ConfigError(f"semisup.test_fraction must be in (0, 1), got {cfg.semisup.test_fraction}")
    if cfg.optim.lr_decay == "exp" and not 0 < cfg.optim.decay_gamma <= 1:
        raise ConfigError(f"optim.decay_gamma must be in (0, 1], got {cfg.optim.decay_gamma}")
    return cfg


def resolve(cfg: Config) -> Config:
    """Fill loss-implied defaults (wgan_gp → gp_weight 10, wgan → clip 0.01), then validate."""
    from .losses import losses

    spec = losses.get(cfg.loss.name) if cfg.loss.name in losses else None
    if spec is not None:
        for key, value in spec.implies.items():
            sec, k = key.split(".")
            if not getattr(getattr(cfg, sec), k):
                setattr(getattr(cfg, sec), k, value)
        if cfg.loss.real_label != 1.0 and not spec.label_smoothing:
            # a recipe's smoothing must not block `--set loss.name=wgan_gp`; the saved config shows 1.0
            log.warning("loss.real_label=%s (label smoothing) applies to BCE losses only; not used with %s",
                        cfg.loss.real_label, cfg.loss.name)
            cfg.loss.real_label = 1.0
    return validate(cfg)


def save(cfg: Config, path: Path, keys: set[str] | None = None) -> None:
    path.write_text(cfg.to_yaml(keys))


def load_file(path: Path) -> Config:
    """A run's saved config.yaml (keys it omits take their defaults)."""
    try:
        return from_dict(yaml.safe_load(path.read_text()) or {})
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
