"""The Python API the CLI is a thin layer over: `train`, `load`, and the `Generator` it returns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from . import config as config_mod
from .errors import GankitError
from .nets.conditional import default_labels
from .training.loop import Callback, RunResult, fit
from .training.loop import resume as resume_run
from .training.state import model_hash


def make_config(recipe: str | None = None, data: str | None = None, overrides: Sequence[str] = (),
                steps: int | None = None, seconds: float | None = None, batch: int | None = None,
                seed: int | None = None) -> config_mod.Config:
    """Recipe + --data + --set + flags -> one resolved, validated Config. `data` without a
    recipe: the recipe is chosen from the data when it is read (config.recipe_for_data)."""
    cfg = config_mod.load_recipe(recipe)
    if data is not None:
        cfg.data.source = str(data)
        if recipe is None:
            cfg.recipe = config_mod.AUTO
    config_mod.apply_overrides(cfg, list(overrides))
    if seconds is not None:
        cfg.train.seconds = float(seconds)
        if steps is None:
            cfg.train.steps = 0  # a time budget alone: no step limit
    if steps is not None:
        cfg.train.steps = int(steps)
    if batch is not None:
        cfg.train.batch = int(batch)
    if seed is not None:
        cfg.train.seed = int(seed)
    if cfg.recipe == config_mod.AUTO:  # what the user set is kept when the data's recipe replaces the default
        flags = {"train.steps": steps is not None or seconds is not None, "train.seconds": seconds is not None,
                 "train.batch": batch is not None, "train.seed": seed is not None}
        cfg.given = {"data.source", *(k for k, on in flags.items() if on),
                     *(o.split("=", 1)[0].strip() for o in overrides if "." in o.split("=", 1)[0])}
    from .families import resolve

    return resolve(cfg)


def default_out(recipe: str, data: str | None = None) -> Path:
    """runs/RECIPE (runs/DATA for a recipe chosen from the data), then runs/RECIPE-2, ..."""
    if recipe == config_mod.AUTO and data:
        recipe = Path(data).name.split(".")[0] or recipe
    base = Path("runs") / recipe
    out, i = base, 2
    while out.exists():
        out, i = Path(f"{base}-{i}"), i + 1
    return out


def _with_progress(callbacks: Sequence[Callback], progress: bool) -> list[Callback]:
    from .callbacks import Progress

    callbacks = list(callbacks)
    if progress and not any(isinstance(cb, Progress) for cb in callbacks):
        callbacks.insert(0, Progress())
    return callbacks


def train(recipe: str | None = None, *, data: str | None = None, out: str | Path | None = None,
          steps: int | None = None, seconds: float | None = None, batch: int | None = None,
          seed: int | None = None, overrides: Sequence[str] = (), callbacks: Sequence[Callback] = (),
          progress: bool = True) -> RunResult:
    """Train a recipe (name or YAML path; None = the default) into `out` (default runs/RECIPE,
    runs/RECIPE-2, ...) and return where the run lives, its last step and status.

    `progress` shows a progress bar (`gankit.callbacks.Progress`: tqdm.auto, a widget in a
    notebook, text on stderr elsewhere); `callbacks` are `gankit.Callback`s called at the start,
    each step, each log row and the end. Raises GankitError (ConfigError, DataError) for bad
    input, TrainingDiverged when a loss or weight becomes NaN/inf."""
    cfg = make_config(recipe, data, overrides, steps, seconds, batch, seed)
    return fit(cfg, Path(out) if out else default_out(cfg.recipe, cfg.data.source),
               _with_progress(callbacks, progress))


def resume(run_dir: str | Path, *, steps: int | None = None, seconds: float | None = None,
           overrides: Sequence[str] = (), callbacks: Sequence[Callback] = (), progress: bool = True) -> RunResult:
    """Continue the run in `run_dir` exactly where its latest checkpoint stopped; `steps` is the
    new total. `progress` and `callbacks` as in `train`."""
    extra = list(overrides)
    if steps is not None:
        extra.append(f"train.steps={int(steps)}")
    if seconds is not None:
        extra.append(f"train.seconds={float(seconds)}")
    return resume_run(Path(run_dir), extra, _with_progress(callbacks, progress))


# torch.Generator takes any 64-bit seed; the studio's URLs take 0..2**31-1: one range for both
MAX_SEED = 2**31 - 1
MAX_SEEDS = 1_000_000  # a typo such as 0-99999999 should be an error, not a memory blow-up


def parse_seeds(spec: str) -> list[int]:
    """Seeds from stylegan2-ada's notation: comma-separated seeds and inclusive ranges, in the
    order given ("0-3,10" -> [0, 1, 2, 3, 10]). Each seed in 0..2**31-1; GankitError (one line)
    for an empty spec, a non-number, a negative seed or a descending range."""
    spec = str(spec).strip()
    if not spec:
        raise GankitError("--seeds is empty; give seeds like 0-63 or 0-3,10")
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        try:
            a = int(lo.strip())
            b = int(hi.strip()) if dash else a
        except ValueError:
            raise GankitError(f"--seeds {spec!r}: {part!r} is not a seed or a range A-B of seeds (e.g. 0-63 "
                              "or 0-3,10; seeds are 0 or more)") from None
        if a < 0 or b < 0:
            raise GankitError(f"--seeds {spec!r}: {part!r}: seeds are 0 or more")
        if a > b:
            raise GankitError(f"--seeds {spec!r}: the range {part} runs backwards; write {b}-{a}")
        if b > MAX_SEED:
            raise GankitError(f"--seeds {spec!r}: seeds go up to {MAX_SEED}, got {b}")
        if len(seeds) + b - a + 1 > MAX_SEEDS:
            raise GankitError(f"--seeds {spec!r}: more than {MAX_SEEDS:,} seeds")
        seeds.extend(range(a, b + 1))
    return seeds


class Generator:
    """A trained generator: `sample(n, seed)` -> (n, C, H, W) in [-1, 1] (toy: (n, 2)), on the
    generator's device (the CPU unless moved with `to`). `sample_seeds(seeds)`: one seed per image,
    as `gankit sample --seeds` and the studio draw them. `save(DIR)` exports it to share."""

    def __init__(self, net: torch.nn.Module, cfg: config_mod.Config, shape: tuple[int, ...], step: int,
                 ema: bool) -> None:
        self.net, self.cfg, self.shape, self.step, self.ema = net.eval(), cfg, shape, step, ema
        self.z_dim = cfg.model.z_dim
        self.hash = model_hash(cfg, shape)
        self.path: Path | None = None  # the checkpoint it came from (None for an export folder)
        self.run: Path | None = None  # the run or export folder, for its eval.json and log

    @property
    def device(self) -> torch.device:
        p = next(iter(self.net.parameters()), None)
        if p is None:
            p = next(iter(self.net.buffers()), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device: str | torch.device) -> Generator:
        """Move the net to `device` ("cpu", "cuda", "mps", ...); returns self. Latents are still
        drawn on the CPU from each seed, so a seed gives the same z on every device."""
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise GankitError(f"unknown device {device!r} (cpu, cuda, cuda:1, mps, ...)") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise GankitError(f"device {device} asked for, but this machine has no CUDA device (torch sees none)")
        self.net.to(dev)
        return self

    def save(self, out: str | Path, *, format: str | None = None) -> Path:
        """Export this generator to the folder `out` (`gankit export`): generator.safetensors,
        config.json and a README.md model card; `format` "onnx" or "torchscript" adds a traced
        copy. Returns `out`. See `gankit.export`."""
        from .share import export_generator

        return export_generator(self, Path(out), format=format)

    def __repr__(self) -> str:
        return (f"Generator({self.cfg.model.name}, recipe={self.cfg.recipe}, shape={self.shape}, "
                f"step={self.step}, ema={self.ema})")

    @property
    def task(self) -> bool:
        """An image-to-image generator (translate/upscale/inpaint), not z -> x."""
        from .families import family_of

        return family_of(self.cfg).translates

    @torch.no_grad()
    def translate(self, a: Tensor, mask: Tensor | None = None, batch: int = 100) -> Tensor:
        """G(A) for an image-to-image run: A in [-1, 1] (N, C, H, W); inpainting takes `mask`
        (N, 1, H, W), 1 = missing, and returns the image with the known pixels kept."""
        if not self.task:
            raise GankitError(f"this run ({self.cfg.recipe}, model {self.cfg.model.name}) generates from noise; "
                              "translate/upscale/inpaint need an image-to-image run")
        inpaint = self.cfg.model.name == "inpaint"
        if inpaint and mask is None:
            raise GankitError("inpainting needs a mask (white = missing)")
        from .nets.translation import complete

        outs, dev = [], self.device
        for i in range(0, len(a), batch):
            x = a[i: i + batch].to(dev)
            outs.append(complete(self.net, x, mask[i: i + batch].to(dev))[1] if inpaint else self.net(x))
        return torch.cat(outs).float().clamp(-1, 1)

    @property
    def conditional(self) -> bool:
        """Takes a class label. A self-conditioned G (`model.clusters`) does not: it reads its
        cluster from z, so it samples like an unconditional one."""
        return self.cfg.model.cond != "none" and not self.cfg.model.clusters

    @property
    def n_classes(self) -> int:
        return self.cfg.model.n_classes if self.conditional else 0

    def noise(self, n: int, seed: int = 0) -> Tensor:
        return torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def from_z(self, z: Tensor, labels: Tensor | None = None, batch: int = 500) -> Tensor:
        """G(z), with class `labels` for a conditional G (None: row i gets class i mod K)."""
        if labels is None:
            labels = self.labels(len(z))
        dev = self.device
        parts = [z[i: i + batch].to(dev) for i in range(0, len(z), batch)]
        if labels is None:
            return torch.cat([self.net(p) for p in parts]).float()
        labels = labels.to(dev)
        return torch.cat([self.net(p, labels[i * batch: i * batch + len(p)]) for i, p in enumerate(parts)]).float()

    def labels(self, n: int, label: int | None = None) -> Tensor | None:
        """The class of each of n samples: all `label`, or a balanced sweep; None if unconditional."""
        if label is not None and not self.conditional:
            raise GankitError(f"this run ({self.cfg.recipe}, model {self.cfg.model.name}) is not conditional; "
                              "--label needs a conditional recipe")
        if not self.conditional:
            return None
        if label is None:
            return default_labels(n, self.n_classes)
        if not 0 <= label < self.n_classes:
            raise GankitError(f"label must be in 0..{self.n_classes - 1} for this run, got {label}")
        return torch.full((n,), int(label), dtype=torch.long)

    @property
    def captioned(self) -> bool:
        """A text-to-image generator: `sample(n, text=...)` draws a caption."""
        return hasattr(self.net, "sample_text")

    def sample(self, n: int, seed: int = 0, label: int | None = None, batch: int = 500,
               truncation: float | None = None, text: str | None = None) -> Tensor:
        """n samples from the seed's latents; `label` asks a conditional G for one class;
        `truncation` (psi, StyleGAN) pulls each w towards the average w: 1 = off, 0 = the mean image;
        `text` a caption for a text-to-image run ("a thick slanted seven")."""
        if text is not None:
            if not self.captioned:
                raise GankitError(f"--text needs a text-to-image run (e.g. gankit train text2image_digits); "
                                  f"{self.cfg.recipe} ({self.cfg.model.name}) draws from noise")
            if label is not None or truncation is not None:
                raise GankitError("--label and --truncation do not apply to a text-to-image run; the caption "
                                  "names the digit")
            if n < 1:
                raise GankitError(f"n must be >= 1, got {n}")
            return self.net.sample_text(text, n, seed).float()
        if self.task:
            raise GankitError(f"{self.cfg.recipe} is an image-to-image run ({self.cfg.model.name}): it maps images, "
                              "it does not sample; use gankit translate / upscale / inpaint")
        if n < 1:
            raise GankitError(f"n must be >= 1, got {n}")
        if truncation is None:
            return self.from_z(self.noise(n, seed), self.labels(n, label), batch)
        if not hasattr(self.net, "truncation"):
            raise GankitError(f"truncation needs a style-based generator (model stylegan), not {self.cfg.model.name}")
        old, self.net.truncation = self.net.truncation, float(truncation)
        try:
            return self.from_z(self.noise(n, seed), self.labels(n, label), batch)
        finally:
            self.net.truncation = old

    def label_of(self, seed: int, label: int | None = None) -> int | None:
        """The class a conditional run draws for `seed` alone: `label` when given, else seed mod K
        (so consecutive seeds sweep the classes); None for an unconditional run."""
        if label is None and self.conditional:
            return int(seed) % self.n_classes
        return label

    def sample_seeds(self, seeds: Sequence[int] | str, label: int | None = None, truncation: float | None = None,
                     text: str | None = None) -> Tensor:
        """One image per seed: (len(seeds), C, H, W) in [-1, 1] (toy: (len(seeds), 2)).

        Image k is exactly `sample(1, seed=seeds[k], label=label_of(seeds[k], label), ...)`, the
        studio's seed N and `gankit sample --seeds`: each is its own forward pass, because a batched
        one differs in the last bits (oneDNN picks kernels by batch size; measured up to 4e-6) and a
        mixture of generators (model.n_g) picks its component by position in the batch. `seeds`:
        integers or a spec such as "0-63" or "0-3,10" (`parse_seeds`). GankitError for bad seeds."""
        if isinstance(seeds, str):
            seeds = parse_seeds(seeds)
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise GankitError("no seeds given")
        bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
        if bad:
            raise GankitError(f"seeds must be in 0..{MAX_SEED}, got {bad[0]}")
        if label is not None and text is None:
            self.labels(1, label)  # its checks, before any work
        return torch.cat([self.sample(1, seed=s, label=self.label_of(s, label), truncation=truncation, text=text)
                          for s in seeds])

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, mode: str = "slerp",
                    label: int | None = None) -> Tensor:
        """Samples along a path in z between the latents of two seeds (slerp suits Gaussian z)."""
        z = self.latent_path(seed_a, seed_b, torch.linspace(0, 1, steps), mode)
        return self.from_z(z, self.labels(len(z), label))

    def latent_path(self, seed_a: int, seed_b: int, ts: Tensor, mode: str = "slerp") -> Tensor:
        """The latents at fractions `ts` (0 = seed_a's z, 1 = seed_b's) of a linear or spherical path."""
        a, b = self.noise(1, seed_a)[0], self.noise(1, seed_b)[0]
        if mode == "linear":
            z = torch.stack([(1 - t) * a + t * b for t in ts])
        elif mode == "slerp":
            omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1, 1))
            so = torch.sin(omega)
            if so.abs() < 1e-6:
                z = torch.stack([(1 - t) * a + t * b for t in ts])
            else:
                z = torch.stack([(torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so for t in ts])
        else:
            raise GankitError(f"interpolation mode must be linear or slerp, got {mode!r}")
        return z


def _checkpoint_path(run: str | Path) -> Path:
    p = Path(run)
    if p.is_dir():
        ck = p / "checkpoints" / "latest.pt"
        if not ck.exists():
            raise GankitError(f"{p}: no checkpoint found (expected {ck}); is this a gankit run folder "
                              "or a `gankit export` folder?")
        return ck
    if not p.exists():
        raise GankitError(f"{p}: no such run folder, export folder or checkpoint")
    return p


def load(run: str | Path, ema: bool = True) -> Generator:
    """Load the generator of a run folder, a checkpoint file or a `gankit export` folder. EMA
    weights by default (`ema=False`: the raw G; an export holds only the one it was made with).
    GankitError (one line) for a missing, foreign or damaged folder or file."""
    from .share import load_export, looks_like_export

    if looks_like_export(run):
        gen = load_export(Path(run))
        if not ema and gen.ema:
            raise GankitError(f"{run} holds the EMA generator only; the raw one (--no-ema) is in the run, or in an "
                              "export made with gankit export --no-ema")
        return gen
    from .nets.registry import from_checkpoint

    nets = from_checkpoint(_checkpoint_path(run), ema)
    gen = Generator(nets.g, nets.cfg, nets.shape, nets.step, nets.ema)
    gen.path = nets.path  # the checkpoint it came from (families that score with D read it again)
    gen.run = Path(run) if Path(run).is_dir() else None
    return gen


def export(run: str | Path, out: str | Path, *, ema: bool = True, format: str | None = None) -> Path:
    """Export the generator of a run folder (or checkpoint, or export folder) to the folder `out`
    (`gankit export`): generator.safetensors, config.json (resolved config, data shape, model
    hash, the run's eval.json scores) and a README.md model card the Hugging Face Hub reads.

    `ema`: the EMA weights (default; a run without EMA gives its raw G), False for the raw G.
    `format`: None, "torchscript" (nothing extra needed) or "onnx" (needs `pip install
    'gankit[export]'`) adds a traced z -> image ((z, label) -> image when conditional) generator,
    compared with the eager one on seeds 0-4 (max abs difference <= 1e-4, written into
    config.json). Returns `out`. GankitError (one line) for a run that cannot be exported (anomaly
    detectors score with G and D together), a traced format for a run that does not draw from
    noise, a non-empty `out` that is not an earlier export, a missing onnx package or a trace that
    disagrees with the eager generator."""
    from .share import export_generator

    return export_generator(load(run, ema=ema), Path(out), format=format)


def evaluate(target: str | Path, *, metrics: Sequence[str] | None = None, n: int | None = None,
             against: str | None = None, seed: int = 0, ema: bool = True,
             inception_weights: str | Path | None = None, features: str = "auto",
             dinov2_weights: str | Path | None = None) -> dict:
    """Score a run folder or an export folder (samples drawn from its generator), a .npy/.npz of
    samples or an image folder against real data: the run's own data, or `against` (a dataset name or path).

    Returns a JSON-ready dict (NaN and inf are None, each said in "warnings"): the values, "protocol",
    and when there are any "warnings" (unreliable values) and "skipped" ({metric: why it could not be
    computed}; see `gankit.metrics.evaluate`). Images other than 1x28x28 / 1x32x32 digits are scored in
    InceptionV3 features with pytorch-fid's weights, downloaded once into the cache and SHA-256 checked
    (`metrics.weights.fetch`), or with the file `inception_weights`. Raises GankitError when no metric
    could be computed or the Inception weights cannot be fetched or verified.

    `features="dinov2"` (implied by `dinov2_weights`) scores images of any shape in DINOv2 ViT-S/14
    features instead (official weights fetched once like Inception's, or the file `dinov2_weights`),
    by default with FD_DINOv2 only (`fd_dinov2_vits14_<n>`); other feature metrics can be asked for."""
    if dinov2_weights:
        features = "dinov2"
    if features not in ("auto", "dinov2"):
        raise GankitError(f"unknown features {features!r}; known: auto, dinov2")
    if features == "dinov2" and inception_weights:
        raise GankitError("--inception and --features dinov2 choose different extractors; pass one")
    from .config import DataConfig
    from .data import build as build_data
    from .data.files import load_path
    from .metrics import evaluate as evaluate_samples
    from .metrics.evaluate import json_ready
    from .share import looks_like_export

    target = Path(target)
    exported = looks_like_export(target)
    if exported or target.is_dir() and (target / "checkpoints" / "latest.pt").exists():
        g = load(target, ema=ema)
        # an export folder is scored like its run, but named as what it is: gankit eval keeps
        # eval.json and MODEL_CARD.md beside runs only, and an export's card is its README.md
        where = "export" if exported else "run"
        from .families import Family, family_of

        family = family_of(g.cfg)
        res = None
        if type(family).evaluate is not Family.evaluate:  # the family scores its runs its own way
            if metrics or against or inception_weights or features != "auto":
                raise GankitError(f"{target} is a {family.name} run: gankit eval gives its own held-out scores; "
                                  "--metrics, --against, --inception and --features apply to runs that generate "
                                  "from noise and to sample files")
            res = family.evaluate(g, n or 0, seed)
        if res is not None:
            res["protocol"].update({where: str(target), "step": g.step, "ema": g.ema})
            return json_ready(res)
        data_cfg = g.cfg.data if against is None else DataConfig(source=against)
        reference = build_data(data_cfg)
        n = n or (5000 if reference.is_image else 2500)
        fake = g.sample(n, seed=seed)
        labels = g.labels(n)  # a conditional run's samples come with the classes they were asked for
        source = {where: str(target), "step": g.step, "ema": g.ema}
    else:
        if not target.exists():
            raise GankitError(f"{target}: no such run folder, sample file or image folder")
        samples = load_path(target, DataConfig())
        reference = build_data(DataConfig(source=against or "mnist5k"))
        fake = samples.x[:n] if n else samples.x
        labels = None
        source = {"samples": str(target)}
    extractor = None
    if inception_weights:
        from .metrics.inception import load_inception

        extractor = load_inception(inception_weights)
    if features == "dinov2":
        if not reference.is_image:
            raise GankitError(f"--features dinov2 scores images; {reference.name} holds points")
        from .metrics.dinov2 import fetched_dinov2, load_dinov2

        extractor = load_dinov2(dinov2_weights) if dinov2_weights else fetched_dinov2()
        metrics = metrics or ["fd_dinov2"]
    result = evaluate_samples(fake, reference, list(metrics) if metrics else None, extractor=extractor, seed=seed,
                              labels=labels)
    result["protocol"].update(source)
    return json_ready(result)
