"""`gankit study speech`: spoken digits from a conditional SpecGAN, scored by word error rate.

The corpus, the log-mel front end and Griffin-Lim are in data/audio.py (dataset `espeak_digits`:
six training accents, two held out); the GAN is the `speech_digits` recipe (families/speech.py),
trained here through `gankit.train`; the project recogniser and its scores are in
metrics/speech.py. The table has the recogniser on held-out real speech, the recogniser on real
speech sent through mel -> Griffin-Lim (what the vocoder alone costs), and the GAN's audio over
seeds; plus a Fréchet distance in the recogniser's feature space (generated vs real training
speech), which a GAN repeating one clip per word would fail, and a diversity ratio.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.audio import WORDS, write_wav
from . import summarize_by


@dataclass
class Settings:
    seeds: int = 3
    steps: int = 2000  # GAN steps, batch 64 (about 110 ms each on the AVX-512 EPYC, fp32)
    clf_steps: int = 800  # recogniser steps, batch 64
    nz: int = 64
    width: int = 16
    # MSGAN weight; seed 0, 2000 steps: 0.2 -> WER 0.8 %, FD 108; without it (3000 steps) the clips
    # of a word looked alike (diversity 0.63 of 0.2's, vocoded-reference scale) and WER 2.8 %, FD 140
    mode_seeking: float = 0.2
    per_word: int = 50  # generated clips per word and seed for WER and FD
    gl_iters: int = 32
    batch: int = 64


REDUCED = Settings()
FULL = Settings(seeds=5, steps=10000, clf_steps=2000, width=32, per_word=100, gl_iters=64)


def overrides(s: Settings) -> list[str]:
    """The recipe settings of the study's GAN (fp32, no extra files)."""
    return [f"model.z_dim={s.nz}", f"model.width={s.width}", f"reg.mode_seeking={s.mode_seeking}",
            f"train.batch={s.batch}", "train.precision=fp32", "train.channels_last=off", "train.sample_every=0",
            "train.ckpt_every=0", "train.tensorboard=false", "train.log_every=0"]


def run(settings: Settings = REDUCED, save: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The three rows of the table; `save`: keep the seed-0 run folder there, with say-WORD.wav
    for every word and spectrograms.png."""
    import gankit

    from ..data.audio import corpus, griffin_lim, to_image
    from ..metrics.speech import load_recogniser, score, training_reference

    data = corpus(log=log)
    tr, te = ~data["test"], data["test"]
    recogniser = load_recogniser(settings.clf_steps)
    f_train, ref = training_reference(recogniser)  # diversity 1 = as varied as the training clips
    rows = [{"source": "real speech, held-out accents", "seed": 0,
             **score(recogniser, data["wav"][te], data["word"][te], f_train, ref)}]
    vocoded = griffin_lim(to_image(data["wav"][te]), settings.gl_iters)
    rows.append({"source": "held-out speech through mel + Griffin-Lim", "seed": 0,
                 **score(recogniser, vocoded, data["word"][te], f_train, ref)})
    log(f"recogniser: WER {rows[0]['wer']:.3f} on held-out accents, {rows[1]['wer']:.3f} after Griffin-Lim")
    asked = torch.arange(10).repeat_interleave(settings.per_word)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(settings.seeds):
            out = Path(tmp) / f"seed{seed}"
            gankit.train("speech_digits", out=out, steps=settings.steps, seed=seed, overrides=overrides(settings),
                         progress=False)
            g = gankit.load(out)
            z = torch.randn(len(asked), g.z_dim, generator=torch.Generator().manual_seed(10_000 + seed))
            audio = griffin_lim(g.from_z(z, asked), settings.gl_iters, 10_000 + seed)
            rows.append({"source": "SpecGAN + Griffin-Lim", "seed": seed,
                         **score(recogniser, audio, asked, f_train, ref)})
            div = rows[-1]["diversity"]
            log(f"SpecGAN seed {seed}: WER {rows[-1]['wer']:.3f}, FD {rows[-1]['fd']:.2f}, "
                f"diversity {'-' if div is None else f'{div:.2f}'}")
            if save is not None and seed == 0:
                if save.exists():
                    shutil.rmtree(save)
                shutil.copytree(out, save)
                save_examples(gankit.load(save), save, settings.gl_iters)
    return {"settings": asdict(settings), "clips": {"train": int(tr.sum()), "held_out": int(te.sum())},
            "rows": rows, "summary": summarize(rows)}


def save_examples(g: Any, out: Path, gl_iters: int = 32) -> None:
    """out/say-WORD.wav for each word and spectrograms.png (a row per word, 8 noises each)."""
    from ..families.speech import say
    from ..monitor.images import grid, save_png

    for w in WORDS:
        write_wav(say(g, w, seed=0, gl_iters=gl_iters), out / f"say-{w}.wav")
    words = torch.arange(10).repeat_interleave(8)
    spec = g.from_z(g.noise(len(words), 0), words).flip(-2)  # low pitch at the bottom
    save_png(grid(spec, nrow=8), out / "spectrograms.png", {"rows": " ".join(WORDS)})


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return summarize_by(rows, "source", ("wer", "fd", "diversity"))


def markdown(res: dict[str, Any]) -> str:
    st = res["settings"]
    lines = [f"Word error rate by the project's speech recogniser (trained on {res['clips']['train']} espeak-ng "
             f"clips, 6 accents); real rows on the {res['clips']['held_out']} clips of 2 held-out accents; "
             f"SpecGAN {st['steps']} steps, {st['per_word']} clips per word and seed, mean ± std over seeds. "
             "FD: Fréchet distance to the training speech in the recogniser's features. Diversity: spread "
             "of clips of one word in those features, over that of the real training clips (1; 0 = one "
             "clip per word).", "",
             "| audio | seeds | WER | FD (recogniser features) | diversity |", "|---|---|---|---|---|"]

    def pm(v: tuple[float, float], scale: float = 1, digits: int = 2) -> str:
        if math.isnan(v[0]):
            return "-"
        return f"{scale * v[0]:.{digits}f}" + ("" if math.isnan(v[1]) else f" ± {scale * v[1]:.{digits}f}")

    for s in res["summary"]:
        lines.append(f"| {s['source']} | {s['seeds']} | {pm(s['wer'], 100, 1)} % | {pm(s['fd'])} | "
                     f"{pm(s['diversity'])} |")
    return "\n".join(lines) + "\n"


def write(res: dict[str, Any], out: Path) -> None:
    from . import write_tables

    plt = write_tables(res, out, "speech", markdown(res))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = [s["source"] for s in res["summary"]]
    ax.barh(names, [100 * s["wer"][0] for s in res["summary"]],
            xerr=[0 if math.isnan(s["wer"][1]) else 100 * s["wer"][1] for s in res["summary"]], capsize=3,
            color=["grey", "silver", "tab:blue"][: len(names)])
    ax.invert_yaxis()
    ax.set_xlabel("word error rate (%)")
    ax.set_title("Spoken digits: recogniser WER")
    fig.tight_layout()
    fig.savefig(out / "speech.png", dpi=120)
    plt.close(fig)
