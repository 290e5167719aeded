"""`gankit` command line: a thin layer over the library. Bad input exits 2 with one line on stderr."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .errors import GankitError


def _progress():
    from .callbacks import Progress  # the library's progress bar, the one gankit.train() shows

    return Progress()


def _launch(nproc: int, argv: list[str]) -> int:
    """Start `gankit train` in nproc processes on this machine through torchrun (PyTorch's launcher)."""
    import os
    import subprocess
    import sys

    if os.environ.get("WORLD_SIZE"):
        raise GankitError("--nproc is for a plain launch; under torchrun set --nproc_per_node there instead")
    rest, skip = [], False
    for x in argv:  # the same command without --nproc
        if skip:
            skip = False
        elif x == "--nproc":
            skip = True
        elif not x.startswith("--nproc="):
            rest.append(x)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "gankit", *rest]
    return subprocess.run(cmd).returncode


def cmd_train(a: argparse.Namespace) -> int:
    from . import api
    from .training import distributed

    if a.nproc > 1:
        return _launch(a.nproc, a.argv)
    callbacks = [] if a.quiet else [_progress()]
    if a.eval_every is not None:
        a.set = [*a.set, f"train.eval_every={a.eval_every}"]
    if a.resume:
        if a.config or a.data or a.batch or a.seed is not None:
            raise GankitError("--resume continues a run as it was; only --steps, --seconds and some --set "
                              "keys (train.*) may change")
        result = api.resume(a.resume, steps=a.steps, seconds=a.seconds, overrides=a.set, callbacks=callbacks,
                            progress=False)  # the CLI's own callbacks: none with -q
    else:
        cfg = api.make_config(a.config, a.data, a.set, a.steps, a.seconds, a.batch, a.seed)
        if a.dry_run:
            return _dry_run(cfg)
        from .training.loop import fit

        result = fit(cfg, Path(a.out) if a.out else api.default_out(cfg.recipe, cfg.data.source), callbacks)
    world = distributed.from_env()
    if world.main:
        procs = f", {world.size} processes" if world.active else ""
        print(f"{result.status}: {result.out} at step {result.step} "
              f"({result.seconds:.1f} s, {result.images_per_s:.0f} images/s{procs})")
    distributed.finish(world)
    if world.active:
        # A torchrun worker leaves without running C++ static destructors: under gloo one of them
        # occasionally aborted a finished rank ("terminate called without an active exception",
        # twice in about ten two-process runs this session), failing a run whose files were all written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _dry_run(cfg: Any) -> int:
    from .nets import build, count_params, flops_per_example
    from .training.loop import prepare

    cfg, data = prepare(cfg)
    g, d = build(cfg.model, data.shape)
    from .families import family_of, run_keys

    keys = run_keys(cfg)
    if family_of(cfg).name != "noise2image":  # nets with inputs beyond z: count one real training update
        from .training.flops import update_flops

        per_image = update_flops(cfg, data)
        print(cfg.to_yaml(keys).rstrip())
        print(f"# data: {cfg.data.source}, {len(data)} targets of shape {tuple(data.shape)}"
              + (f", inputs of shape {tuple(data.a.shape[1:])}" if data.a is not None else ""))
        print(f"# G: {count_params(g):,} parameters; D: {count_params(d):,} parameters")
        print(f"# about {per_image * cfg.train.batch / 1e9:.2f} GFLOP per training step, {per_image / 1e9:.3f} "
              "per image (counted on one real step, forward and backward; multiply-add = 2 FLOP)")
        return 0
    f = flops_per_example(g, d)
    t = cfg.train
    # forward+backward ~ 3x forward; D steps see B real + B fake, the G step back-propagates through D
    step = t.n_critic * (t.batch * f["g_forward"] + 6 * t.batch * f["d_forward"])
    step += 3 * t.batch * f["d_forward"] + 2 * t.batch * f["g_forward"]
    print(cfg.to_yaml(keys).rstrip())
    print(f"# data: {cfg.data.source}, {len(data)} examples of shape {tuple(data.shape)}")
    print(f"# G: {count_params(g):,} parameters, {f['g_forward'] / 1e6:.1f} MFLOP forward per example")
    print(f"# D: {count_params(d):,} parameters, {f['d_forward'] / 1e6:.1f} MFLOP forward per example")
    print(f"# about {step / 1e9:.2f} GFLOP per training step, {step / t.batch / 1e9:.3f} per image "
          "(multiply-add = 2 FLOP; backward counted as 2x forward)")
    return 0


def _seeds(a: argparse.Namespace) -> list[int]:
    """The seed of each image: --seeds as given, else --n seeds from --seed on (one seed per image,
    as in the studio: image k of `--n 16 --seed 100` is the studio's seed 100 + k)."""
    from . import api

    if a.seeds is not None:
        if a.n is not None or a.seed is not None:
            raise GankitError("--seeds names the seed of every image; drop --n and --seed")
        return api.parse_seeds(a.seeds)
    n = 64 if a.n is None else a.n
    seed = 0 if a.seed is None else a.seed
    if n < 1:
        raise GankitError(f"--n must be at least 1, got {n}")
    if seed < 0 or seed + n - 1 > api.MAX_SEED:
        raise GankitError(f"--seed {seed} --n {n}: seeds must lie in 0..{api.MAX_SEED}")
    return list(range(seed, seed + n))


def cmd_sample(a: argparse.Namespace) -> int:
    import numpy as np

    from . import api
    from .monitor.images import grid, save_png
    from .studies import text2image

    if text2image.is_model(a.run):  # a model file of the study before text-to-image was a recipe
        raise GankitError(f"{a.run} holds an old text-to-image study model; retrain it as a run: "
                          "gankit train text2image_digits --out DIR, then gankit sample DIR --text ...")
    out = Path(a.out)
    if out.suffix not in (".npy", ".png", ""):
        raise GankitError(f"--out must end in .npy or .png, or be a folder; got {out}")
    seeds = _seeds(a)
    g = api.load(a.run, ema=not a.no_ema)
    x = g.sample_seeds(seeds, label=a.label, truncation=a.truncation, text=a.text).cpu()
    labels = None if a.text is not None else [g.label_of(s, a.label) for s in seeds]
    # PNG text chunks: which model drew it and each image's seed, so any image can be drawn again
    info = {"model_hash": g.hash, "run": str(a.run), "step": str(g.step), "ema": str(g.ema)}
    if a.text is not None:
        info["text"] = a.text
    if a.truncation is not None:
        info["truncation"] = str(a.truncation)
    if out.suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, x.numpy().astype(np.float32))
    elif out.suffix == ".png":
        many = info | {"seeds": ",".join(map(str, seeds))}  # in grid order: row by row
        if labels is not None and labels[0] is not None:
            many["labels"] = ",".join(map(str, labels))
        if x.dim() == 4:
            save_png(grid(x, scale=2 if x.shape[-1] <= 32 else 1), out, many)
        else:
            from .monitor.plots import scatter

            save_png(scatter(x, None, out, a.text or f"{g.cfg.recipe}: {len(seeds)} samples"), out, many)
    else:
        if x.dim() != 4:
            raise GankitError("a folder of PNGs needs an image model; use a .npy path for points")
        out.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(seeds):  # named by seed: a repeated seed is the same image again
            one = info | {"seed": str(s)}
            if labels is not None and labels[i] is not None:
                one["label"] = str(labels[i])
            save_png(grid(x[i: i + 1], pad=0), out / f"{s:06d}.png", one)
    shown = a.seeds if a.seeds is not None else f"{seeds[0]}-{seeds[-1]}"
    print(f"wrote {len(seeds)} samples (seeds {shown}) of shape {tuple(x.shape[1:])} to {out}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    import json

    from . import api

    names = [m.strip() for m in a.metrics.split(",") if m.strip()] if a.metrics else None
    if a.n is not None and a.n < 1:  # a slice [:-5] would silently drop samples instead
        raise GankitError(f"--n must be at least 1, got {a.n}")
    # raises GankitError (exit 2) only when no metric could be computed
    result = api.evaluate(a.target, metrics=names, n=a.n, against=a.against, seed=a.seed, ema=not a.no_ema,
                          inception_weights=a.inception, features=a.features, dinov2_weights=a.dinov2)
    text = json.dumps(result, indent=1, allow_nan=False)  # api.evaluate gives null for NaN/inf
    if a.json:
        print(text, flush=True)  # the results first: a failed write below must not lose them
    else:
        from .metrics.report import table

        print(table(result), flush=True)
    for name, why in result.get("skipped", {}).items():
        print(f"error: {name}: {why}", file=sys.stderr)
    for w in result.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    if "run" in result["protocol"]:  # scored a run folder: keep the result beside it
        run = Path(a.target)
        path = run / "eval.json"
        try:
            path.write_text(text + "\n")
            if "task" in result:  # image-to-image: a picture of held-out inputs, outputs and targets
                from .metrics.translation import held_out_grid

                path = run / "eval_grid.png"
                held_out_grid(api.load(a.target, ema=not a.no_ema), a.seed).save(path)
            from .monitor.card import write_card

            path = run / "MODEL_CARD.md"
            write_card(run)
        except OSError as e:  # a read-only or full disk: the results are printed above
            print(f"error: cannot write {e.filename or path}: {e.strerror or e}", file=sys.stderr)
            return 2
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    import json

    from . import bench

    out = Path(a.out) if a.out else None
    if a.what == "speed" and a.contended:
        from . import bench_speed

        recipes = [r.strip() for r in a.recipes.split(",")] if a.recipes else None
        res = bench_speed.contended(recipes, a.seconds or 8.0, out)
        print(bench_speed.format_contended(res))
    elif a.what == "speed":
        from . import bench_speed

        recipes = [r.strip() for r in a.recipes.split(",")] if a.recipes else None
        res = bench_speed.run(recipes, a.batch, a.windows, a.steps or 0, a.set, a.compile)
        print(bench_speed.format_speed(res))
    elif a.what == "remedies":
        only = [x.strip() for x in a.only.split(",")] if a.only else None
        res = bench.remedies(a.data, a.seeds, a.steps, a.seconds, out, only)
        print(bench.format_remedies(res))
    else:
        if a.what == "modes":
            res = bench.modes(a.data, a.recipe, a.seeds, a.steps, a.seconds, out, a.set)
        else:
            res = bench.stacked(a.recipe, a.seeds, a.steps, a.seconds, out, a.set)
        print(bench.format_table(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


def cmd_prepare(a: argparse.Namespace) -> int:
    import json

    from .data.prepared import prepare_folder

    def progress(i: int, n: int) -> None:
        print(f"\r{i}/{n} images", end="", file=sys.stderr, flush=True)

    m = prepare_folder(Path(a.folder), Path(a.out), a.size, a.channels, a.workers, None if a.quiet else progress)
    if not a.quiet:
        print(file=sys.stderr)
    print(json.dumps(m))
    print(f"train on it with: gankit train RECIPE --data {a.out}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    import json

    from . import api

    out = api.export(a.run, a.out, ema=not a.no_ema, format=a.format)
    meta = json.loads((out / "config.json").read_text())
    traced = meta.get("traced")
    extra = (f", {traced['file']} ({traced['format']}, max abs diff {traced['check']['max_abs_diff']:.2g} "
             "from the eager generator)") if traced else ""
    print(f"exported the {'EMA' if meta['ema'] else 'raw'} generator of {a.run} (step {meta['step']}) to {out}: "
          f"generator.safetensors, config.json, README.md{extra}")
    print(f"try it: gankit sample {out} --seeds 0-15 --out grid.png" if not (meta["task"] or meta["captioned"])
          else f"load it: gankit.load({str(out)!r})")
    return 0


# what `pip install 'gankit[studio]'` brings (starlette and pydantic come with fastapi)
STUDIO_PACKAGES = ("fastapi", "uvicorn", "starlette", "pydantic")


def cmd_serve(a: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .studio.app import create_app, default_db
        from .studio.guard import LOOPBACK
    except ModuleNotFoundError as e:  # the studio is an extra: say how to get it, in one line
        if (e.name or "").split(".")[0] not in STUDIO_PACKAGES:
            raise
        raise GankitError("gankit serve needs the studio extra: pip install 'gankit[studio]'") from None

    runs = [Path(r) for r in a.runs]
    db = Path(a.db) if a.db else default_db(runs)
    app = create_app(runs, db, host=a.host, allow_hosts=a.allow_host)
    if a.host not in LOOPBACK:
        print(f"warning: serving on {a.host}: anyone who can reach this address can see the runs and take part in "
              "studies; use a reverse proxy with TLS beyond a trusted network (README: Sharing the studio)",
              file=sys.stderr)
    # the owner opens this link (on a wildcard bind, from this machine); the token is in the fragment
    # (#), which browsers never send to a server, and it changes at every start
    shown = "127.0.0.1" if a.host in ("0.0.0.0", "::", "") else f"[{a.host}]" if ":" in a.host else a.host
    url = f"http://{shown}:{a.port}/"
    print(f"gankit studio: {url}  ({len(runs)} runs, judgements in {db})")
    print(f"owner link (create, close and read out studies; keep it private): {url}#owner={app.state.owner_token}")
    sys.stdout.flush()
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    from . import config
    from .data import datasets
    from .losses import losses
    from .metrics import metrics
    from .nets import models

    what = a.what
    if what == "configs":
        for name in config.recipe_names():
            first = (config.recipe_dir() / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ")
            mark = " (default)" if name == config.DEFAULT_RECIPE else ""
            print(f"{name:22s} {first}{mark}")
    elif what == "formats":
        from .data.files import _ORDER, formats

        for name in _ORDER:
            print(f"{name:14s} {formats.doc(name)}")
    elif what == "families":
        from .families import SHARED, families

        print(f"{'(every family)':14s} shared options: {', '.join(sorted(SHARED - {'recipe'}))}")
        for name in families:
            fam = families.get(name)
            nets = ", ".join(fam.models) or "every other net"
            print(f"{name:14s} {fam.doc} [nets: {nets}; own options: {', '.join(sorted(fam.keys))}]")
    elif what == "remedies":
        from .nets.remedies import REMEDIES

        for name, (sets, doc) in REMEDIES.items():
            print(f"{name:16s} {'--set ' + ' --set '.join(sets.split()):56s} {doc}")
    else:
        reg = {"models": models, "losses": losses, "datasets": datasets, "metrics": metrics}[what]
        for name in reg:
            print(f"{name:22s} {reg.doc(name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gankit", description="Train, sample and inspect GANs.")
    p.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a recipe (default: the best digits recipe)")
    t.add_argument("config", nargs="?", help="recipe name (gankit list configs) or YAML path")
    t.add_argument("--data", help="dataset name, image folder, IDX file or .npy/.npz")
    t.add_argument("--out", help="run folder (default runs/RECIPE)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    t.add_argument("--batch", type=int)
    t.add_argument("--steps", type=int, help="total steps of the run")
    t.add_argument("--seconds", type=float, help="stop after this much training time (still checkpoints)")
    t.add_argument("--seed", type=int)
    t.add_argument("--eval-every", type=int, help="score samples every N steps; keeps checkpoints/best.pt")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly where it stopped")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and model sizes, then exit")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.add_argument("--nproc", type=int, default=1, help="train data-parallel in N processes on this machine "
                   "(torchrun + DDP; train.batch is the global batch); several machines: see docs/distributed.md")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained run or an export folder, one seed per image",
                       description="Draw samples, one seed per image: image k of --seeds 0-63 is exactly what the "
                       "studio shows for seed k and what gankit.load(RUN).sample_seeds([k]) gives. A conditional "
                       "run draws class seed mod K unless --label is given. Each PNG carries its seed(s) in its "
                       "text chunks (gankit:seed, or gankit:seeds in grid order).")
    s.add_argument("run", help="run folder, checkpoint file or gankit export folder")
    s.add_argument("--seeds", help="the seed of each image: ranges and lists, e.g. 0-63 or 0-3,10")
    s.add_argument("--n", type=int, help="without --seeds: N images, seeds SEED..SEED+N-1 (default 64)")
    s.add_argument("--out", required=True, help="PATH.npy (float32 N,C,H,W in [-1,1]), PATH.png (grid) or a folder "
                   "(one PNG per seed, named by seed)")
    s.add_argument("--seed", type=int, help="without --seeds: the first seed (default 0)")
    s.add_argument("--label", type=int, help="class to generate (conditional runs)")
    s.add_argument("--text", help='caption for a text-to-image model, e.g. "a thick slanted seven"')
    s.add_argument("--truncation", type=float, metavar="PSI", help="stylegan truncation: 1 = off, 0 = mean")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("eval", help="score a run, a .npy of samples or an image folder",
                       description="Score samples: on stdout a table (metric, value, better: up or down, what real "
                       "data scores against itself in the same features, what it measures), or JSON with --json; "
                       "on stderr one `error: METRIC ...` "
                       "line per metric that cannot be computed here (too few samples, no class probabilities; "
                       "the others are still reported) and one `warning: ...` line per value that is unreliable "
                       "(e.g. FID from fewer samples than features). Exit 0 when at least one metric was "
                       "computed; 2 when none could be, for bad input, or when a run folder's eval.json, "
                       "eval_grid.png or MODEL_CARD.md cannot be written (the results are printed first).")
    e.add_argument("target", help="run folder, .npy/.npz of samples, or image folder")
    e.add_argument("--metrics", help="comma-separated (gankit list metrics); default: all that apply")
    e.add_argument("--n", type=int, help="samples to draw from a run (default 5000; toy 2500)")
    e.add_argument("--against", help="real data to compare with (default: the run's data, else mnist5k)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-ema", action="store_true")
    e.add_argument("--json", action="store_true", help="print the full result as JSON (for programs) instead of "
                   "the table; eval.json in a run folder is always JSON")
    e.add_argument("--inception", metavar="WEIGHTS", help="use InceptionV3 (pool3) from this weights file as "
                   "extractor (default for images other than 28x28/32x32 gray: pytorch-fid's weights, downloaded "
                   "once and verified)")
    e.add_argument("--features", choices=["auto", "dinov2"], default="auto",
                   help="auto (default): the digit CNN for 28x28/32x32 gray, InceptionV3 otherwise; dinov2: "
                   "DINOv2 ViT-S/14 class-token features and FD_DINOv2 (Stein et al. 2023: agrees with human "
                   "judgement better than FID), official weights downloaded once")
    e.add_argument("--dinov2", metavar="WEIGHTS", help="DINOv2 ViT-S/14 weights file (the official "
                   "dinov2_vits14_pretrain.pth, offline); implies --features dinov2")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="benchmarks over seeds: modes (2-D mode collapse), remedies (modes for "
                       "each mode-collapse remedy, one table), stacked (stacked MNIST); speed (images/s against "
                       "a plain reference step and the machine's measured GFLOP/s)")
    b.add_argument("what", choices=["modes", "remedies", "stacked", "speed"])
    b.add_argument("--recipes", help="speed: comma-separated recipes (default: dcgan_mnist,mlp_mnist,wgan_gp_mnist,"
                   "sngan_mnist)")
    b.add_argument("--batch", type=int, default=64, help="speed: batch size")
    b.add_argument("--windows", type=int, default=7, help="speed: timed windows per step (median reported)")
    b.add_argument("--contended", action="store_true", help="speed: ms per step of `gankit train` alone and beside "
                   "a busy process, for each thread setting (--seconds each, default 8; --recipes, default "
                   "toy_ring,dcgan_mnist_fast)")
    b.add_argument("--compile", action="store_true", help="speed: also time train.compile=true (and its compile time)")
    b.add_argument("--only", help="remedies: comma-separated variants to run (e.g. vanilla,pacgan,best)")
    b.add_argument("--data", default="ring", choices=["ring", "grid"], help="mixture for `modes`")
    b.add_argument("--recipe", help="recipe to train (default toy_DATA for modes, dcgan_stacked for stacked)")
    b.add_argument("--seeds", type=int, default=10)
    b.add_argument("--steps", type=int, help="training steps per seed (speed: steps per timed window)")
    b.add_argument("--seconds", type=float, help="training budget per seed")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    b.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    b.add_argument("--json", help="also write the full result as JSON")
    b.set_defaults(func=cmd_bench)

    pr = sub.add_parser("prepare", help="convert an image folder once into a uint8 memory-mapped .npy (+ labels "
                        "from class sub-folders, + manifest) that training streams from")
    pr.add_argument("folder")
    pr.add_argument("--out", required=True, help="PATH.npy (PATH.labels.npy and PATH.json are written beside it)")
    pr.add_argument("--size", type=int, required=True, help="side length: images are resized to cover it and "
                    "centre-cropped")
    pr.add_argument("--channels", type=int, default=0, choices=[0, 1, 3], help="0 = RGB if the images are colour")
    pr.add_argument("--workers", type=int, default=0, help="decoding processes (0 = by the number of images)")
    pr.add_argument("-q", "--quiet", action="store_true")
    pr.set_defaults(func=cmd_prepare)

    x = sub.add_parser("export", help="share a trained generator: safetensors weights, config.json and a model "
                       "card (README.md) that the Hugging Face Hub reads",
                       description="Write the generator of a run (no D, no optimisers) to a folder: "
                       "generator.safetensors, config.json (the resolved config, data shape, model hash) and a "
                       "README.md model card with YAML front matter and the scores of the run's eval.json (run "
                       "gankit eval first to include them). gankit.load(DIR) and gankit sample DIR accept it.")
    x.add_argument("run", help="run folder or checkpoint file")
    x.add_argument("--out", required=True, help="a new or empty folder (or an earlier export, replaced)")
    x.add_argument("--no-ema", action="store_true", help="the raw generator, not its EMA")
    x.add_argument("--format", choices=["onnx", "torchscript"], help="also a traced z -> image generator "
                   "(z, label for conditional runs), checked against the eager one; onnx needs "
                   "pip install 'gankit[export]'")
    x.set_defaults(func=cmd_export)

    from .cli_apps import add_parsers

    add_parsers(sub)  # translate / upscale / inpaint, study, anomaly

    sv = sub.add_parser("serve", help="web studio: gallery, latent explorer, training monitor, run comparison and "
                        "human evaluation (Turing test, pairwise preference, user studies)")
    sv.add_argument("runs", nargs="+", help="run folders to serve (only these can be reached)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only); "
                    "0.0.0.0 serves every network interface")
    sv.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                    help="another name clients use for this server (a DNS name, a reverse proxy's name); requests "
                    "naming other hosts are refused. Repeatable")
    sv.add_argument("--db", default=None, help="SQLite file for the judgements (kept across restarts; default: "
                    "studio.sqlite beside the first run folder)")
    sv.set_defaults(func=cmd_serve)

    ls = sub.add_parser("list", help="list recipes, model families, models, losses, datasets, data formats, "
                                     "metrics or remedies")
    ls.add_argument("what", choices=["configs", "families", "models", "losses", "datasets", "formats", "metrics",
                                     "remedies"])
    ls.set_defaults(func=cmd_list)
    return p


def _notes() -> None:
    """What the library says about the user's input (`data.images.note`) reaches stderr as `note: ...`."""
    class Stderr(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # sys.stderr looked up at each note, not bound once: it may be replaced (tests, notebooks)
            print(f"note: {record.getMessage()}", file=sys.stderr)

    notes = logging.getLogger("gankit.note")
    if not any(type(h).__name__ == "Stderr" for h in notes.handlers):
        notes.addHandler(Stderr())
    notes.setLevel(logging.INFO)
    notes.propagate = False


def main(argv: list[str] | None = None) -> int:
    from .training.threads import short_spin

    short_spin()  # before torch loads: OpenMP reads its spin count once
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --nproc's relaunch under torchrun
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    _notes()
    try:
        return args.func(args)
    except GankitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the environment, not the input: a full disk, a folder we may not write
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except Exception as e:
        # Input checks live where input enters (config, data, checkpoints): reaching here is a
        # gankit bug. One line by default; the traceback with -v, for the report.
        if args.verbose:
            raise
        print(f"error: internal error ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
              "please report it with the traceback that `gankit -v ...` prints", file=sys.stderr)
        return 3
