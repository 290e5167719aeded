"""Every command block of README.md runs as written, with tiny settings.

What runs. Fenced blocks ``` / ```bash / ```sh hold commands, one a line; ```text blocks are output
(not run); ```python blocks run as Python. In a command block every line, its `# comment` removed,
is either run (`gankit ...`, `python -m gankit ...`) or matched by an entry of SKIP, which says why
it is not run here. A line that is neither fails the test, and so does a SKIP entry that no line
matches any more. All blocks run in README order in one temporary working directory, so a command
sees the runs and files that the commands above it made: every example must make what it uses.

How (the speed-up). `gankit ...` runs in this process (`gankit.cli.main(argv)`: the CLI itself, minus
the start-up of a new Python); `python -m gankit`, `--nproc` and `gankit serve` run as child
processes, as a user would start them.

The tiny-settings rule (the only changes made to what the README says):
- every config built here gets TINY appended (a wrapper around `gankit.api.make_config`, so CLI
  `train`, `bench`, `study` and the Python blocks alike): width 8, batch 16, fixed precision/layout/threads
  (no autotuning), no TensorBoard, no sample grids; a child process (`--nproc`) gets them as `--set`;
- `gankit train`: `--seconds S` dropped and `--steps N` set to 2 (4 after `--resume`, which must go
  beyond the first run's 2); `--eval-every N` becomes 2; a `--dry-run` is run unchanged;
- `gankit sample`: `--n N` becomes at most 16; `--seeds` is kept;
- `gankit eval` of a run or export folder: `--n 64` samples (instead of 5000);
- `gankit bench modes`: `--seeds 1 --steps 2`; `gankit bench speed`: `--recipes toy_ring
  --windows 1 --steps 2`;
- `gankit study`: the smallest flags its own tests use (STUDY_FLAGS);
- `gankit serve`: started on a free port, its page fetched once, then stopped (without the studio
  extra: its one-line error is checked instead);
- Python blocks: `steps=N` inside `gankit.train(...)` becomes `steps=2`.

User data the examples name, made here as small fixtures before the first block (`_fixtures`):
`my_images/` (20 gray 28x28 PNGs in two class sub-folders), `my_photos/` (20 RGB photos of odd
sizes, PNG and JPEG), `outlines/` (4 digit outlines), `small.png` (a 7x7 gray image for the 4x
upscaler), `photo.png` + `holes.png` (a 28x28 gray image and a mask with a white rectangle),
`pairs/A/*.png` + `pairs/B/*.png` (16 pairs). `digits/` is not a fixture: the README's own
`gankit translate ... --out digits/` writes it before `gankit anomaly ... digits/` reads it.
`runs/demo` stands for what `make demo` leaves (SKIPped here; `scripts/newcomer.sh` runs the
real one in CI): the quick start's commands read it, so it is made by a 2-step `gankit train`.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"
MAKEFILE = README.parent / "Makefile"

TINY = ["model.width=8", "train.batch=16", "train.precision=fp32", "train.channels_last=off", "train.threads=1",
        "train.tensorboard=false", "train.sample_every=0"]
TINY_BY_RECIPE = {"text2image_digits": ["text.encoder_steps=5"]}  # its caption encoder trains first

STUDY_FLAGS = {  # as in tests/test_studies.py, test_text2image.py, test_speech.py
    "augment": ["--sizes", "2", "--seeds", "2", "--gan-steps", "2", "--clf-steps", "2", "--steps", "2"],
    "anomaly": ["--classes", "1", "--seeds", "1", "--steps", "3"],
    "text2image": ["--seeds", "1", "--steps", "2"],
    "speech": ["--seeds", "1", "--steps", "2", "--clf-steps", "2"],
}

# README lines that are not run here, by regular expression (matched against the line without its
# comment), each with the reason.
SKIP = {
    r"python3 -m venv \.venv": "makes a virtual environment; scripts/newcomer.sh (CI) installs into a fresh one "
                               "through make demo",
    r"source \.venv/bin/activate": "shell set-up: here gankit runs from the environment pytest runs in; "
                                   "scripts/newcomer.sh runs the quick start's block, this line included",
    r"pip install .*": "installs into the environment that runs this test; make demo, make test and "
                       "scripts/newcomer.sh install",
    r"gankit bench stacked .*": "scores 26 000 samples per seed whatever the flags (about 40 s here); "
                                "tests/test_cli.py::test_bench_stacked_table runs it with --seeds 1 --steps 2",
    r"make demo": "builds .venv and trains for 3 minutes: scripts/newcomer.sh runs make demo DEMO_SECONDS=15 in a "
                  "fresh clone; runs/demo is made here by a 2-step gankit train",
}


def _blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the opening fence, lines) of every fenced block."""
    out, lang, start, body = [], None, 0, []
    for i, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^```\s*(\w*)\s*$", line)
        if m and lang is None:
            lang, start, body = m.group(1), i, []
        elif line.startswith("```") and lang is not None:
            out.append((lang, start, body))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"README.md:{start}: a fenced block is not closed"
    return out


def _steps() -> list[tuple[str, str, object]]:
    """README order: ("run", where, argv), ("python", where, source) or ("skip", where, reason)."""
    steps = []
    for lang, start, body in _blocks(README.read_text()):
        if lang == "text":
            continue
        if lang == "python":
            steps.append(("python", f"README.md:{start}", "\n".join(body)))
            continue
        assert lang in ("", "bash", "sh"), f"README.md:{start}: a ```{lang} block: say text, python or bash"
        for k, line in enumerate(body, start + 1):
            argv = shlex.split(line, comments=True)
            where = f"README.md:{k}: {line.split('#')[0].strip()}"
            if not argv:
                continue
            reasons = [why for pattern, why in SKIP.items() if re.fullmatch(pattern, shlex.join(argv))]
            if reasons:
                steps.append(("skip", where, reasons[0]))
            elif argv[0] == "gankit" or argv[:3] == ["python", "-m", "gankit"]:
                steps.append(("run", where, argv))
            else:
                raise AssertionError(f"{where}: neither a gankit command nor listed in SKIP with a reason")
    return steps


def test_every_readme_command_is_run_or_skipped_with_a_reason():
    steps = _steps()
    assert sum(kind == "run" for kind, _, _ in steps) >= 40
    skipped = " ".join(where for kind, where, _ in steps if kind == "skip")
    for pattern in SKIP:
        assert re.search(pattern, skipped), f"SKIP entry {pattern!r} matches no README line any more: remove it"


def test_make_demo_prints_the_quick_starts_next_commands():
    """What `make demo` tells a newcomer to type is the README's quick start block (and vice versa)."""
    text = README.read_text()
    quick = text[text.index("## Quick start"):text.index("## Use")]
    block = next(body for lang, _, body in _blocks(quick) if any(line.startswith("source ") for line in body))
    printed = [m.group(1) for m in re.finditer(r'@echo "  ([^"]*)"', MAKEFILE.read_text())]
    commands = [shlex.join(shlex.split(line, comments=True)) for line in block]
    said = [shlex.join(shlex.split(line, comments=True)) for line in printed]
    assert commands and all(c in said for c in commands), (commands, said)


def _tiny(argv: list[str]) -> list[str]:
    """The tiny-settings rule of the module docstring."""
    a = list(argv)

    def drop(flag: str) -> None:
        if flag in a:
            i = a.index(flag)
            del a[i:i + 2]

    def put(flag: str, value: str) -> None:
        drop(flag)
        a.extend([flag, value])

    cmd = a[1] if len(a) > 1 else ""
    if cmd == "train" and "--dry-run" not in a:
        drop("--seconds")
        put("--steps", "4" if "--resume" in a else "2")
        if "--eval-every" in a:
            put("--eval-every", "2")
        if "--nproc" in a:
            a += [x for s in TINY for x in ("--set", s)]
    elif cmd == "sample" and "--n" in a:
        put("--n", str(min(int(a[a.index("--n") + 1]), 16)))
    elif cmd == "eval" and ((Path(a[2]) / "checkpoints").is_dir() or (Path(a[2]) / "config.json").exists()):
        put("--n", "64")  # a run or export folder: samples are drawn
    elif cmd == "bench" and a[2] == "modes":
        drop("--seconds")
        put("--seeds", "1")
        put("--steps", "2")
    elif cmd == "bench" and a[2] == "speed":
        a += ["--recipes", "toy_ring", "--windows", "1", "--steps", "2"]
    elif cmd == "study":
        a += STUDY_FLAGS[a[2]] + ["-q"]
    return a


def _fixtures(root: Path) -> None:
    rng = np.random.default_rng(0)

    def digit(size: int = 28) -> np.ndarray:
        img = np.zeros((size, size), np.uint8)
        r = size // 4
        img[r:size - r, r:r + max(1, size // 7)] = 255  # a stroke
        img[r:r + max(1, size // 7), r:size - r] = 255
        return np.clip(img.astype(int) + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)

    for cls in ("a", "b"):
        (root / "my_images" / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(digit()).save(root / "my_images" / cls / f"{i}.png")
    (root / "my_photos").mkdir()
    for i, (w, h) in enumerate([(80, 60), (64, 96), (100, 100), (70, 70)] * 5):
        photo = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        photo.save(root / "my_photos" / (f"{i}.jpg" if i % 2 else f"{i}.png"))
    (root / "outlines").mkdir()
    for i in range(4):
        d = digit()
        Image.fromarray(np.where(d > 128, 255, 0).astype(np.uint8)).save(root / "outlines" / f"{i}.png")
    Image.fromarray(digit(7)).save(root / "small.png")
    Image.fromarray(digit()).save(root / "photo.png")
    mask = np.zeros((28, 28), np.uint8)
    mask[8:18, 10:20] = 255
    Image.fromarray(mask).save(root / "holes.png")
    for side in ("A", "B"):
        (root / "pairs" / side).mkdir(parents=True)
        for i in range(16):
            Image.fromarray(digit()).save(root / "pairs" / side / f"{i}.png")


def _speech_corpus(cache: Path) -> None:
    """The spoken-digit corpus the speech examples train on: ten 'words' that are ten tones of varied
    loudness (espeak-ng's synthesis of the real one takes a minute; tests/test_speech.py tests it)."""
    from gankit.data.audio import CORPUS_VERSION, SAMPLES

    rng = np.random.default_rng(0)
    word = np.repeat(np.arange(10), 6)
    t = np.arange(SAMPLES) / 8000
    wav = np.stack([rng.uniform(0.3, 0.8) * np.sin(2 * np.pi * (200 + 300 * w) * t) * np.hanning(SAMPLES)
                    for w in word])
    (cache / "speech").mkdir(parents=True)
    np.savez(cache / "speech" / f"espeak-digits-{CORPUS_VERSION}.npz", wav=wav.astype(np.float32),
             word=word.astype(np.int64), test=np.arange(len(word)) % 3 == 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(argv: list[str], where: str) -> None:
    """`gankit serve`: started as a user would, its page fetched, then stopped."""
    port = _free_port()
    a = [x for i, x in enumerate(argv) if "--port" not in argv[max(i - 1, 0):i + 1]] + ["--port", str(port)]
    cmd = [sys.executable, "-m", "gankit", *a[1:]]
    if importlib.util.find_spec("fastapi") is None:  # no studio extra here: the promised one line
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "pip install 'gankit[studio]'" in r.stderr, (where, r.stderr)
        return
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[1].startswith("owner link"), (where, lines)
        for _ in range(100):  # the lines come just before uvicorn binds
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    assert page.status == 200 and b"gankit" in page.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"{where}: the studio never answered")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_readme_blocks_run_as_written(tmp_path, monkeypatch, capsys):
    from gankit import api
    from gankit.cli import main

    steps = _steps()
    _fixtures(tmp_path)
    # conftest's stand-in corpus repeats each word's clip exactly, which leaves the speech study no
    # spread to divide by: this one varies; the cache folder is this test's own
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    _speech_corpus(tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    make_config = api.make_config

    def tiny_config(recipe=None, data=None, overrides=(), *args, **kw):
        extra = TINY + TINY_BY_RECIPE.get(str(recipe), [])
        return make_config(recipe, data, [*overrides, *extra], *args, **kw)

    monkeypatch.setattr(api, "make_config", tiny_config)
    threads = torch.get_num_threads()
    ran, times = [], []
    try:
        assert main(["train", "--steps", "2", "--out", "runs/demo", "-q"]) == 0  # stands for what make demo leaves
        for kind, where, what in steps:
            if kind == "skip":
                continue
            t0 = time.perf_counter()
            if kind == "python":
                source = re.sub(r"(gankit\.train\([^)]*?\bsteps=)\d+", r"\g<1>2", what)
                exec(compile(source, where, "exec"), {"__name__": "readme"})
            elif what[:3] == ["python", "-m", "gankit"] or "--nproc" in what:
                argv = _tiny(["gankit", *what[3:]] if what[0] == "python" else what)
                r = subprocess.run([sys.executable, "-m", "gankit", *argv[1:]], capture_output=True, text=True,
                                   timeout=300)
                assert r.returncode == 0, f"{where}\n{shlex.join(argv)}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
            elif what[1] == "serve":
                _serve(what, where)
            else:
                argv = _tiny(what)
                try:
                    rc = main(argv[1:])
                except SystemExit as e:  # argparse: --help, or a usage error (2)
                    rc = e.code or 0
                out = capsys.readouterr()
                assert rc == 0, f"{where}\nran: {shlex.join(argv)}\n{out.out[-2000:]}\n{out.err[-3000:]}"
            times.append((time.perf_counter() - t0, where))
            ran.append(where)
    finally:
        torch.set_num_threads(threads)
    with capsys.disabled():
        total = sum(t for t, _ in times)
        print(f"\nREADME: {len(ran)} blocks/commands in {total:.1f} s; slowest:")
        for t, where in sorted(times, reverse=True)[:8]:
            print(f"  {t:5.1f} s  {where}")
