"""The application commands of the CLI: `gankit translate | upscale | inpaint` (image-to-image
runs), `gankit study augment | anomaly`, `gankit anomaly` (a saved anomaly detector) and
`gankit classify` (a semi-supervised run's D). Same
contract as cli.py: bad input raises GankitError, which main() prints as one line (exit 2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import GankitError


def _read_image(path: Path, channels: int, report: Any = None) -> Any:
    """One input image (decoded by the rules of data.images) as a float tensor (C,H,W) in [-1, 1]."""
    import numpy as np
    import torch

    from .data.images import decode

    arr = np.asarray(decode(path, 1 if channels == 1 else 3, report), dtype=np.float32)
    t = torch.from_numpy(arr / 127.5 - 1)
    return t[None] if channels == 1 else t.permute(2, 0, 1)


def _inputs(src: Path) -> tuple[list[Path], Any]:
    """The images a command reads: the file itself, or the images in a folder (not its
    sub-folders; hidden files skipped), with the Report their decoding fills."""
    from .data.images import Report, list_images

    if not src.exists():
        raise GankitError(f"{src}: no such image or folder")
    report = Report()
    files = list_images(src, recursive=False, report=report) if src.is_dir() else [src]
    if not files:
        raise GankitError(f"{src}: no images found")
    return files, report


def cmd_translate(a: argparse.Namespace) -> int:
    """translate / upscale / inpaint: one image or a folder of images through an image-to-image run."""
    import torch

    from . import api
    from .monitor.images import grid, save_png

    g = api.load(a.run, ema=not a.no_ema)
    want = {"translate": ("pix2pix", "cyclegan"), "upscale": ("srgan",), "inpaint": ("inpaint",)}[a.cmd]
    if g.cfg.model.name not in want:
        raise GankitError(f"{a.run} is a {g.cfg.model.name} run; gankit {a.cmd} needs a {' or '.join(want)} run")
    src, out = Path(a.input), Path(a.out)
    files, report = _inputs(src)
    cin = g.cfg.model.in_channels or g.shape[0]
    mask = None
    if a.cmd == "inpaint":
        if not a.mask:
            raise GankitError("gankit inpaint needs --mask MASK.png (white pixels are missing)")
        mask = (_read_image(Path(a.mask), 1) > 0).float()[None]
    info = {"model_hash": g.hash, "run": str(a.run), "step": str(g.step)}
    for p in files:
        x = _read_image(p, cin, report)[None]
        if mask is not None and mask.shape[-2:] != x.shape[-2:]:
            raise GankitError(f"mask is {mask.shape[-1]}x{mask.shape[-2]} but {p.name} is {x.shape[-1]}x{x.shape[-2]}")
        if g.cfg.model.name == "cyclegan" and (x.shape[-1] % 4 or x.shape[-2] % 4):
            raise GankitError(f"{p.name}: cyclegan needs sides divisible by 4, got {x.shape[-1]}x{x.shape[-2]}")
        with torch.no_grad():
            y = g.translate(x, mask)
        dest = out / p.name if src.is_dir() else out
        if dest.suffix.lower() != ".png":
            dest = dest.with_suffix(".png")
        save_png(grid(y, pad=0), dest, info | {"input": p.name})
    report.say(str(src), len(files))
    print(f"wrote {len(files)} image(s) to {out}")
    return 0


def cmd_study(a: argparse.Namespace) -> int:
    import dataclasses

    from .studies import anomaly, augment, speech, text2image

    mod = {"augment": augment, "anomaly": anomaly, "text2image": text2image, "speech": speech}[a.what]
    base = mod.FULL if a.full else mod.REDUCED
    changes: dict[str, Any] = {}
    if getattr(a, "methods", None):
        if a.what != "anomaly":
            raise GankitError("--methods is an option of gankit study anomaly")
        wanted = tuple(m.strip() for m in a.methods.split(","))
        unknown = [m for m in wanted if m not in anomaly.METHODS]
        if unknown or not wanted:
            raise GankitError(f"--methods: unknown {', '.join(unknown) or 'empty list'}; choose from "
                              f"{', '.join(anomaly.METHODS)}")
        changes["methods"] = tuple(m for m in anomaly.METHODS if m in wanted)
    for key in ("sizes", "classes"):
        if getattr(a, key):
            try:
                changes[key] = tuple(int(v) for v in getattr(a, key).split(","))
            except ValueError:
                raise GankitError(f"--{key} takes comma-separated integers, got {getattr(a, key)!r}") from None
    for key in ("seeds", "gan_steps", "clf_steps", "steps"):
        if getattr(a, key) is not None:
            changes[key] = getattr(a, key)
    if a.what == "augment":  # its GAN step counts: --gan-steps both cGANs, --steps the semi-supervised GAN
        if "steps" in changes:
            changes["ss_steps"] = changes.pop("steps")
        if "gan_steps" in changes:
            changes["pool_gan_steps"] = changes["gan_steps"]
    if a.what == "anomaly" and "steps" in changes:  # f-AnoGAN's GAN and encoder keep their share of the budget
        for key in ("fanogan_steps", "encoder_steps"):
            changes[key] = max(1, round(changes["steps"] * getattr(base, key) / base.steps))
    try:
        settings = dataclasses.replace(base, **changes)
    except TypeError as e:
        raise GankitError(f"gankit study {a.what}: {e}") from None
    if a.what == "augment" and (min(settings.sizes) < 1 or max(settings.sizes) > 400):
        raise GankitError("--sizes: each size must be 1..400 digits per class (the training pool)")
    if a.what == "anomaly" and not set(settings.classes) <= set(range(10)):
        raise GankitError("--classes: digits 0..9")
    if min(v for k, v in dataclasses.asdict(settings).items() if isinstance(v, int)) < 1:
        raise GankitError("--seeds and the step counts must be >= 1")
    log = (lambda m: None) if a.quiet else (lambda m: print(m, file=sys.stderr))
    save = Path(a.save) if a.save else None
    if a.what == "anomaly":
        res = anomaly.run(settings, save=save, log=log)
    elif a.what in ("text2image", "speech"):
        res = mod.run(settings, save=save, log=log)
    else:
        res = augment.run(settings, log=log)
    out = Path(a.out or f"runs/study-{a.what}")
    mod.write(res, out)
    print(mod.markdown(res), end="")
    print(f"wrote {out}/{a.what}.md, {a.what}.csv, {a.what}.json, {a.what}.png")
    return 0


def cmd_anomaly(a: argparse.Namespace) -> int:
    """Score images with an anomaly run (`gankit train ganomaly_mnist | fanogan_mnist | dknn_mnist`)."""
    import torch

    from .families.anomaly import Detector

    run = Path(a.model)
    if run.is_file() and run.suffix == ".pt" and run.parent.name != "checkpoints":
        raise GankitError(f"{run} is a model file of the old anomaly study; retrain it as a run: gankit train "
                          "ganomaly_mnist --set data.normal_class=K --out DIR, then gankit anomaly DIR IMAGES")
    if not run.exists():
        raise GankitError(f"{run}: no such run folder")
    det = Detector(run, ema=not a.no_ema)
    src = Path(a.images)
    files, report = _inputs(src)
    images = [_read_image(p, 1, report) for p in files]
    wrong = next((p for p, im in zip(files, images, strict=True) if im.shape[-2:] != (28, 28)), None)
    if wrong is not None:
        im = images[files.index(wrong)]
        raise GankitError(f"anomaly models score 28x28 grayscale digits; {wrong.name} is "
                          f"{im.shape[-1]}x{im.shape[-2]}")
    x = torch.stack(images)
    report.say(str(src), len(files))
    scores = det.score(x)
    thr = det.threshold if a.threshold is None else a.threshold
    print(f"# {det.method} run of normal class {det.normal_class}; threshold {thr:.6g} "
          "(95th percentile of its training digits' scores unless --threshold)")
    print("file,score,anomalous")
    for p, sc in zip(files, scores.tolist(), strict=True):
        print(f"{p.name},{sc:.6g},{int(sc > thr)}")
    return 0


def cmd_classify(a: argparse.Namespace) -> int:
    """Label images with a semi-supervised run's D (`gankit train ssgan_mnist`): file, class, probability."""
    import torch

    from .data import Dataset, adapt
    from .families.semisup import Classifier

    run = Path(a.run)
    if not run.exists():
        raise GankitError(f"{run}: no such run folder")
    clf = Classifier(run)
    src = Path(a.images)
    files, report = _inputs(src)
    c, h, _ = clf.shape
    pad = clf.cfg.data.pad
    # the run's preprocessing: its channel count, its side (before its padding), then the padding
    x = torch.cat([adapt(Dataset(_read_image(p, c, report)[None]), h - 2 * pad, c, 0, pad).x for p in files])
    report.say(str(src), len(files))
    probs = clf.probs(x)
    p, k = probs.max(1)
    lines = ["file,class,probability"] + [f"{_csv(f.name)},{_csv(clf.classes[i])},{q:.4f}"
                                          for f, i, q in zip(files, k.tolist(), p.tolist(), strict=True)]
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        print(f"wrote {len(files)} label(s) to {out}")
    else:
        print("\n".join(lines))
    return 0


def _csv(text: str) -> str:
    """A CSV field: quoted when it holds a comma, quote or line break."""
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n\r') else text


def cmd_say(a: argparse.Namespace) -> int:
    """Speak digit words with a speech run (`gankit train speech_digits`)."""
    from . import api
    from .data.audio import RATE, write_wav
    from .families.speech import say

    out = Path(a.out)
    if out.suffix.lower() != ".wav":
        raise GankitError(f"--out must end in .wav, got {out}")
    run = Path(a.model)
    if (run / "speech.pt").is_file() or run.suffix == ".pt" and run.parent.name != "checkpoints":
        raise GankitError(f"{run} holds a model of the old speech study; retrain it as a run: gankit train "
                          "speech_digits --out DIR, then gankit say DIR \"one two three\"")
    g = api.load(run, ema=not a.no_ema)
    if g.cfg.model.name != "specgan":
        raise GankitError(f"{run} is a {g.cfg.model.name} run; gankit say needs a speech run "
                          "(gankit train speech_digits)")
    if a.gl_iters < 1:
        raise GankitError(f"--gl-iters must be >= 1, got {a.gl_iters}")
    audio = say(g, a.text, seed=a.seed, gl_iters=a.gl_iters)
    write_wav(audio, out)
    print(f"wrote {len(audio) / RATE:.2f} s of 8 kHz audio to {out}")
    return 0


def add_parsers(sub: Any) -> None:
    for name, what in (("translate", "A -> B with a pix2pix or CycleGAN run"),
                       ("upscale", "super-resolve with an srgan run"),
                       ("inpaint", "fill the white pixels of --mask with an inpaint run")):
        tr = sub.add_parser(name, help=f"{what}: one image or a folder of images")
        tr.add_argument("run", help="run folder or checkpoint file")
        tr.add_argument("input", help="an image, or a folder of images")
        tr.add_argument("--out", required=True, help="a .png (one input) or a folder (same file names)")
        if name == "inpaint":
            tr.add_argument("--mask", help="PNG of the input's size; white pixels are missing")
        tr.add_argument("--no-ema", action="store_true")
        tr.set_defaults(func=cmd_translate, cmd=name)

    st = sub.add_parser("study", help="measured experiments over seeds: augment (does a cGAN trained on k "
                        "labelled digits per class help a classifier? and a semi-supervised GAN?), anomaly "
                        "(one-class AUROC: D-feature k-NN, GANomaly, f-AnoGAN, autoencoder, k-NN), text2image "
                        "(captioned digits: class accuracy, attribute correlation, matching-aware D vs plain "
                        "conditional D), speech (spoken digits from a SpecGAN, word error rate)")
    st.add_argument("what", choices=["augment", "anomaly", "text2image", "speech"])
    st.add_argument("--full", action="store_true", help="the full setting (more seeds, longer training)")
    st.add_argument("--seeds", type=int)
    st.add_argument("--sizes", help="augment: labelled digits per class, comma-separated (default 10; --full: "
                    "10,50,100,400)")
    st.add_argument("--gan-steps", type=int, dest="gan_steps", help="augment: steps of each cGAN")
    st.add_argument("--clf-steps", type=int, dest="clf_steps",
                    help="augment: classifier steps; speech: recogniser steps")
    st.add_argument("--classes", help="anomaly: normal classes, comma-separated (default 0..9)")
    st.add_argument("--methods", help="anomaly: detectors, comma-separated (default all: dknn, ganomaly, fanogan, "
                    "autoencoder, knn)")
    st.add_argument("--steps", type=int, help="anomaly: training steps of each model (f-AnoGAN: 5/8 of them for its "
                    "GAN, 3/8 for its encoder); text2image, speech: GAN steps; augment: semi-supervised GAN steps")
    st.add_argument("--save", help="anomaly: keep the seed-0 models here, for gankit anomaly; text2image: the "
                    "seed-0 GAN-CLS model, for gankit sample DIR --text; speech: the seed-0 SpecGAN, for "
                    "gankit say DIR")
    st.add_argument("--out", help="folder for the table, CSV, JSON and plot (default runs/study-WHAT)")
    st.add_argument("-q", "--quiet", action="store_true")
    st.set_defaults(func=cmd_study)

    an = sub.add_parser("anomaly", help="score digit images with a dknn, ganomaly or fanogan run")
    an.add_argument("model", metavar="run", help="a run folder of gankit train dknn_mnist / ganomaly_mnist / "
                    "fanogan_mnist")
    an.add_argument("--no-ema", action="store_true")
    an.add_argument("images", help="an image or a folder of images (28x28 grayscale)")
    an.add_argument("--threshold", type=float, help="flag scores above this (default: the model's own)")
    an.set_defaults(func=cmd_anomaly)

    cl = sub.add_parser("classify", help="label images with a semi-supervised run (gankit train ssgan_mnist): "
                        "file, class, probability")
    cl.add_argument("run", help="a run folder of gankit train ssgan_mnist")
    cl.add_argument("images", help="an image or a folder of images (resized to the run's size)")
    cl.add_argument("--out", help="write the CSV here (default: print it)")
    cl.set_defaults(func=cmd_classify)

    sy = sub.add_parser("say", help="speak digit words with a speech run (gankit train speech_digits)")
    sy.add_argument("model", metavar="run", help="a run folder of gankit train speech_digits")
    sy.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations (default 32)")
    sy.add_argument("--no-ema", action="store_true")
    sy.add_argument("text", help='digit words, e.g. "seven" or "one two three"')
    sy.add_argument("--out", default="say.wav", help="a .wav file (default say.wav)")
    sy.add_argument("--seed", type=int, default=0)
    sy.set_defaults(func=cmd_say)
