"""Share a trained generator: `gankit export RUN --out DIR`, `gankit.export(RUN, DIR)`, `g.save(DIR)`.

An export folder holds the generator only (no D, no optimisers) in a form other tools read:

- `generator.safetensors`: G's weights (the EMA weights by default), loadable without pickle;
- `config.json`: the run's resolved config, the data shape, the architecture hash and what
  `gankit.load` needs to rebuild G, plus the run's eval.json scores;
- `README.md`: a model card whose YAML front matter the Hugging Face Hub reads (library_name,
  tags, datasets, model-index with the metrics by protocol name) and a usage snippet;
- with `format`: `generator.onnx` or `generator.pt` (TorchScript), a traced z -> image
  ((z, label) -> image for a conditional run), checked at export time against the eager G.

`gankit.load(DIR)` and `gankit sample DIR` take the folder like a run folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, GankitError

if TYPE_CHECKING:
    from .api import Generator

EXPORT_FORMAT = 1  # config.json's "gankit_export"; a later layout bumps it
WEIGHTS = "generator.safetensors"
TRACED = {"torchscript": "generator.pt", "onnx": "generator.onnx"}
TRACE_TOL = 1e-4  # max |traced - eager| over the check seeds (values in [-1, 1])
CHECK_SEEDS = (0, 1, 2, 3, 4)  # one batch of 5 and single seeds: a batch size baked into a trace shows
ONNX_OPSET = 17


def looks_like_export(path: str | Path) -> bool:
    """A folder with a config.json and no run checkpoint: read as an export (a damaged one then
    gets load_export's one-line error, not "no checkpoint")."""
    p = Path(path)
    return p.is_dir() and (p / "config.json").is_file() and not (p / "checkpoints" / "latest.pt").exists()


def is_export(path: str | Path) -> bool:
    """Whether `path` is a folder that `gankit export` wrote: its config.json carries the
    `gankit_export` marker (any other project's config.json is not ours to replace)."""
    p = Path(path)
    if not looks_like_export(p):
        return False
    try:
        meta = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "gankit_export" in meta


def export_generator(g: Generator, out: Path, *, format: str | None = None) -> Path:
    """Write the export folder of a loaded generator (`gankit.export`, `Generator.save`)."""
    from .families import family_of
    from .families.anomaly import Anomaly

    family = family_of(g.cfg)
    if isinstance(family, Anomaly):
        raise GankitError(f"{g.cfg.recipe} is an anomaly detector ({family.name}): it scores images with its D "
                          "(and G, or its training digits), and an export holds G only; share the run folder instead")
    if format is not None and format not in TRACED:
        raise GankitError(f"--format must be onnx or torchscript, got {format!r}")
    if format is not None and (g.task or g.captioned):
        raise GankitError(f"--format {format} exports generators that draw from noise (z -> image, or (z, label) -> "
                          f"image); {g.cfg.recipe} ({g.cfg.model.name}) is a {family.name} run: export it without "
                          "--format")
    if format == "onnx":
        _need_onnx()
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_export(out))):
        raise GankitError(f"{out} exists and is not an empty folder or an earlier export; choose a new folder")
    with tempfile.TemporaryDirectory(prefix=".gankit-export-", dir=out.parent if out.parent.exists() else None) as tmp:
        tmp = Path(tmp)
        meta = _meta(g)
        if format is not None:  # first: a failed check leaves nothing behind
            meta["traced"] = _trace(g, format, tmp / TRACED[format])
        _save_weights(g, tmp / WEIGHTS, meta["model_hash"])
        meta["weights_sha256"] = hashlib.sha256((tmp / WEIGHTS).read_bytes()).hexdigest()
        from .monitor.card import hub_card

        (tmp / "README.md").write_text(hub_card(meta, out.name or "model"))
        (tmp / "config.json").write_text(json.dumps(meta, indent=1) + "\n")  # last: it marks a whole export
        out.mkdir(parents=True, exist_ok=True)
        for name in (*TRACED.values(), WEIGHTS, "README.md", "config.json"):
            if (out / name).exists():  # an earlier export's files, e.g. a traced copy not asked for now
                (out / name).unlink()
        for p in sorted(tmp.iterdir(), key=lambda p: p.name == "config.json"):
            shutil.move(str(p), out / p.name)
    return out


def _public(source: str) -> str:
    """A dataset name as it is; a local path as its last part (a card must not show /home/alice/...)."""
    return Path(source).name if ("/" in source or "\\" in source) else source


def _public_config(d: dict[str, Any]) -> dict[str, Any]:
    if isinstance(d.get("data"), dict) and "source" in d["data"]:
        d["data"] = {**d["data"], "source": _public(str(d["data"]["source"]))}
    return d


def _meta(g: Generator) -> dict[str, Any]:
    from . import __version__
    from .families import family_of, run_keys

    run = g.run
    source: dict[str, Any] = {}
    if run is not None and is_export(run):  # an export of an export keeps what the first one knew
        source = _read_meta(run)
    scores = source.get("metrics") or _scores(run)
    start = _start_row(run)
    return {
        "gankit_export": EXPORT_FORMAT,
        "gankit_version": __version__,
        "recipe": g.cfg.recipe,
        "family": family_of(g.cfg).name,
        "model": g.cfg.model.name,
        "shape": list(g.shape),
        "z_dim": g.z_dim,
        "conditional": g.conditional,
        "n_classes": g.n_classes,
        "task": g.task,
        "captioned": g.captioned,
        "model_hash": g.hash,
        "step": g.step,
        "ema": g.ema,
        "weights": WEIGHTS,
        "data": source.get("data") or {"source": _public(g.cfg.data.source), "n": start.get("n_data")},
        "config": _public_config(g.cfg.to_dict(run_keys(g.cfg))),
        "metrics": scores,
    }


def _scores(run: Path | None) -> dict[str, Any]:
    """The run's eval.json: {"values": {protocol name: number}, "protocol": {...}}, or {}."""
    if run is None or not (run / "eval.json").is_file():
        return {}
    try:
        res = json.loads((run / "eval.json").read_text())
    except ValueError:
        return {}
    values = {k: v for k, v in res.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    # where the run lived on this machine is no business of the people it is shared with
    protocol = {k: v for k, v in (res.get("protocol") or {}).items() if k not in ("run", "samples")}
    return {"values": values, "protocol": protocol} if values else {}


def _start_row(run: Path | None) -> dict[str, Any]:
    if run is None or not (run / "log.jsonl").is_file():
        return {}
    with open(run / "log.jsonl") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("event") == "start":
                return row
    return {}


def _save_weights(g: Generator, path: Path, model_hash: str) -> None:
    from safetensors.torch import save_file

    # own contiguous CPU copies: safetensors refuses tensors that share memory (tied weights)
    sd = {k: v.detach().cpu().contiguous().clone() for k, v in g.net.state_dict().items()}
    save_file(sd, str(path), metadata={"format": "pt", "gankit_model_hash": model_hash})


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read it ({str(e).splitlines()[0]}); is this a gankit export "
                              "folder?") from None
    if not isinstance(meta, dict) or "gankit_export" not in meta:
        raise CheckpointError(f"{path}: not a gankit export (no gankit_export key); gankit export RUN --out DIR "
                              "writes one")
    if meta["gankit_export"] != EXPORT_FORMAT:
        raise CheckpointError(f"{path}: export format {meta['gankit_export']}, this gankit reads {EXPORT_FORMAT}; "
                              "update gankit")
    return meta


def load_export(folder: Path) -> Generator:
    """The generator of an export folder, on the CPU, in eval mode. CheckpointError (one line) for a
    foreign or damaged folder, or weights that do not fit the config."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .api import Generator
    from .checkpoint import load_module
    from .config import from_dict
    from .nets.registry import build

    folder = Path(folder)
    meta = _read_meta(folder)
    try:
        cfg, shape = from_dict(meta["config"]), tuple(int(s) for s in meta["shape"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / 'config.json'}: damaged ({type(e).__name__}: {e})") from None
    name = meta.get("weights", WEIGHTS)
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise GankitError(f"{folder / 'config.json'}: weights must name a file in the export folder, got {name!r}")
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; an export folder needs its weights beside config.json")
    want = meta.get("weights_sha256")
    if want and hashlib.sha256(path.read_bytes()).hexdigest() != want:
        raise CheckpointError(f"{path}: its SHA-256 is not the one in config.json; the weights were damaged or "
                              "replaced (export again to share other weights)")
    try:
        sd = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read it ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                              "the file is damaged or not safetensors") from None
    g, _ = build(cfg.model, shape)
    load_module(g, sd, "G", path)
    gen = Generator(g, cfg, shape, int(meta.get("step", 0)), bool(meta.get("ema", False)))
    if gen.hash != meta.get("model_hash"):
        raise CheckpointError(f"{folder / 'config.json'}: model hash {meta.get('model_hash')} but its config builds "
                              f"{gen.hash}; the file was edited, or made by another gankit version")
    gen.run = folder
    return gen


# --- traced copies ---------------------------------------------------------------------------------

def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise GankitError(f"--format onnx needs the {e.name} package: pip install 'gankit[export]'") from None


def _traceable(g: Generator) -> Any:
    import torch
    from torch import nn

    class ZToImage(nn.Module):
        """z (N, z_dim) float32 -> images (N, C, H, W) in [-1, 1]; (z, label int64 (N,)) when conditional."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, z: torch.Tensor, *label: torch.Tensor) -> torch.Tensor:
            return self.net(z, *label).float()

    return ZToImage(g.net).eval()


def _inputs(g: Generator, seeds: tuple[int, ...]) -> tuple[Any, ...]:
    import torch

    z = torch.cat([g.noise(1, s) for s in seeds])
    if not g.conditional:
        return (z,)
    return z, torch.tensor([g.label_of(s) for s in seeds], dtype=torch.long)


def _trace(g: Generator, format: str, path: Path) -> dict[str, Any]:
    """Write the traced generator to `path` and compare it with the eager G on CHECK_SEEDS, as one
    batch and one seed at a time. A net whose trace keeps a Python int of the batch size
    (StyleGAN's modulated convolution groups by it) is traced for one z per call, said in
    config.json ("batch": 1). GankitError when the trace differs by more than TRACE_TOL."""
    device = g.device
    g.to("cpu")  # traced on the CPU: the file runs anywhere, and the check compares like with like
    try:
        module = _traceable(g)
        singles = tuple((s,) for s in CHECK_SEEDS)
        if _batch_free(g, module):
            batch: int | str = "any"
            worst = _trace_and_check(g, module, format, path, (0, 1), (CHECK_SEEDS, *singles))
        else:
            batch = 1
            worst = _trace_and_check(g, module, format, path, (0,), singles)
    finally:
        g.to(device)
    inputs = ["z", "label"] if g.conditional else ["z"]
    return {"format": format, "file": path.name, "inputs": inputs, "output": "image", "batch": batch,
            "check": {"seeds": list(CHECK_SEEDS), "max_abs_diff": worst, "tolerance": TRACE_TOL}}


def _batch_free(g: Generator, module: Any) -> bool:
    """Whether a trace at batch 2 also computes a batch of 5 (no batch size recorded as a constant)."""
    import warnings

    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, _inputs(g, (0, 1)), check_trace=False)
        inputs = _inputs(g, CHECK_SEEDS)
        try:
            got = traced(*inputs)
        except Exception:  # the TorchScript interpreter's own error types: a baked-in batch size
            return False
        want = module(*inputs)
        return got.shape == want.shape and float((got - want).abs().max()) <= TRACE_TOL


def _trace_and_check(g: Generator, module: Any, format: str, path: Path, example_seeds: tuple[int, ...],
                     checks: tuple[tuple[int, ...], ...]) -> float:
    import warnings

    import torch

    example = _inputs(g, example_seeds)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about Python values it records as constants; the check below is
        # what tells whether any of them mattered
        warnings.simplefilter("ignore")
        if format == "torchscript":
            traced = torch.jit.trace(module, example, check_trace=False)
            torch.jit.save(traced, str(path))
            loaded = torch.jit.load(str(path))

            def run(inputs: tuple[Any, ...]) -> torch.Tensor:
                return loaded(*inputs)
        else:
            run = _onnx(module, example, path, g.conditional, dynamic=len(example_seeds) > 1)
        worst = 0.0
        for seeds in checks:
            inputs = _inputs(g, seeds)
            want = module(*inputs)
            try:
                got = run(inputs)
            except Exception as e:  # the runtime's own error types
                raise GankitError(f"the {format} generator fails on a batch of {len(seeds)} "
                                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                  "export without --format") from None
            if got.shape != want.shape:
                raise GankitError(f"the {format} generator gives shape {tuple(got.shape)} for a batch of "
                                  f"{len(seeds)}, the eager one {tuple(want.shape)}; export without --format")
            worst = max(worst, float((got - want).abs().max()))
    if not worst <= TRACE_TOL:
        raise GankitError(f"the {format} generator differs from the eager one by up to {worst:.3g} (more than "
                          f"{TRACE_TOL:g}) on seeds 0-4; export without --format")
    return worst


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hold back what C++ code writes to stderr (torch's ONNX exporter prints the whole graph when
    it fails), so that a failure stays one line."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _onnx(module: Any, example: tuple[Any, ...], path: Path, conditional: bool, dynamic: bool):
    import numpy as np
    import onnxruntime
    import torch

    names = ["z", "label"] if conditional else ["z"]
    batch = {0: "batch"}
    try:
        # the TorchScript-based exporter: it needs only the onnx package (the dynamo one needs onnxscript)
        with _quiet_stderr():
            torch.onnx.export(module, example, str(path), input_names=names, output_names=["image"],
                              dynamic_axes={n: batch for n in [*names, "image"]} if dynamic else None,
                              opset_version=ONNX_OPSET, dynamo=False)
    except Exception as e:  # an operator without an ONNX form, for instance
        raise GankitError(f"cannot export this generator to ONNX ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); try --format torchscript") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(inputs: tuple[Any, ...]) -> torch.Tensor:
        feed = {n: x.numpy() for n, x in zip(names, inputs, strict=True)}
        return torch.from_numpy(np.asarray(session.run(["image"], feed)[0]))

    return run
