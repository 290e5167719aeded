"""`gankit study speech`: spoken digits from a conditional SpecGAN, scored by word error rate.

Corpus (`corpus`): the ten digit words spoken by Debian's espeak-ng, offline, in 8 English accents
x 4 voice variants x 3 speeds x 3 pitches (2880 clips), resampled to 8 kHz, silence trimmed, each
clip 8192 samples (1.02 s). Two accents (Caribbean, New York) are held out: nothing trains on them.

Representation: log-mel spectrogram, 64 mel bands x 64 frames (STFT 256 / hop 128, Hann), in dB,
clamped to an 80 dB range and mapped to [-1, 1]: a 64x64 image. The generator is SpecGAN-style
(Donahue et al. 2019): a DCGAN that draws that image for a word; audio comes back through
Griffin-Lim phase recovery (`griffin_lim`, the fast variant with momentum 0.99).

Measurement: a small CNN speech recogniser (`SpeechCNN`), trained by the project on the training
accents only, transcribes audio. Every clip is one word, so the word error rate (edit distance
between the word sequences over reference words, `wer`) is the share of clips heard as another
word. The table has the recogniser on held-out real speech, the recogniser on real speech sent
through mel -> Griffin-Lim (what the vocoder alone costs), and the GAN's audio over seeds; plus a
Frechet distance in the recogniser's feature space (generated vs real training speech), which a
GAN repeating one clip per word would fail.
"""

from __future__ import annotations

import functools
import io
import math
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, DataError, GankitError
from . import summarize_by

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAIN_ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-gb-x-gbclan")
TEST_ACCENTS = ("en-029", "en-us-nyc")
VARIANTS = ("m1", "m3", "f1", "f3")
SPEEDS = (130, 160, 190)  # words per minute
PITCHES = (35, 50, 65)  # espeak-ng's 0..99 scale
RATE = 8000
SAMPLES = 8192
N_FFT, HOP, N_MELS, FRAMES = 256, 128, 64, 64
DB_RANGE = 80.0
TOP_DB = 0.0  # clips are peak-normalised, so their loudest mel bin sits a little below 0 dB
FORMAT = "gankit-speech-1"
CORPUS_VERSION = "v1"


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


REDUCED = Settings()
FULL = Settings(seeds=5, steps=10000, clf_steps=2000, width=32, per_word=100, gl_iters=64)


# --- corpus ----------------------------------------------------------------------------------

def espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise GankitError("espeak-ng is not installed: apt-get install espeak-ng (make setup does it when it can)")
    return exe


def read_wav(data: bytes | Path) -> tuple[np.ndarray, int]:
    """16-bit mono/stereo PCM WAV -> float32 mono in [-1, 1] and its sample rate."""
    try:
        with wave.open(io.BytesIO(data) if isinstance(data, bytes) else str(data)) as w:
            if w.getsampwidth() != 2:
                raise DataError(f"{data if isinstance(data, Path) else 'audio'}: only 16-bit PCM WAV is read")
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
            return x.reshape(-1, w.getnchannels()).mean(1), w.getframerate()
    except (wave.Error, EOFError) as e:
        raise DataError(f"{data if isinstance(data, Path) else 'audio'}: not a WAV file ({e})") from None


def write_wav(x: np.ndarray | Tensor, path: Path, rate: int = RATE) -> None:
    x = np.asarray(x, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def fit_clip(x: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 8 kHz, trim silence (below 2 % of the peak), peak-normalise to 0.9, start 256
    samples in, pad or cut to SAMPLES."""
    from scipy.signal import resample_poly

    if rate != RATE:
        g = math.gcd(RATE, rate)
        x = resample_poly(x, RATE // g, rate // g).astype(np.float32)
    loud = np.nonzero(np.abs(x) > 0.02 * max(float(np.abs(x).max()), 1e-9))[0]
    if len(loud):
        x = x[loud[0]: loud[-1] + 1]
    x = 0.9 * x / max(float(np.abs(x).max()), 1e-9)
    out = np.zeros(SAMPLES, np.float32)
    x = x[: SAMPLES - 256]
    out[256: 256 + len(x)] = x
    return out


def say_espeak(word: str, voice: str, speed: int, pitch: int, tmp: Path) -> np.ndarray:
    path = tmp / f"{word}-{voice}-{speed}-{pitch}.wav"
    subprocess.run([espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word],
                   check=True, capture_output=True, timeout=30)
    return fit_clip(*read_wav(path))


def corpus_grid() -> list[tuple[int, str, str, int, int]]:
    """(word index, accent, variant, speed, pitch) of every clip, in a fixed order."""
    return [(w, a, v, s, p) for w in range(10) for a in (*TRAIN_ACCENTS, *TEST_ACCENTS)
            for v in VARIANTS for s in SPEEDS for p in PITCHES]


def corpus(cache: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Tensor]:
    """The spoken-digit corpus: wav (N, SAMPLES), word (N,), test (N,) bool. Synthesised once
    (about a minute on 2 cores) and kept in the gankit cache."""
    from ..metrics.cache import cache_dir

    path = (cache or cache_dir().parent / "speech") / f"espeak-digits-{CORPUS_VERSION}.npz"
    if path.is_file():
        try:
            z = np.load(path)
            return {"wav": torch.from_numpy(z["wav"]), "word": torch.from_numpy(z["word"]),
                    "test": torch.from_numpy(z["test"])}
        except (OSError, ValueError, KeyError):
            log(f"{path}: unreadable corpus cache, synthesising it again")
    grid = corpus_grid()
    log(f"synthesising {len(grid)} spoken digits with espeak-ng into {path}")
    with tempfile.TemporaryDirectory(prefix="gankit-espeak-") as tmp, ThreadPoolExecutor(2) as pool:
        wavs = list(pool.map(lambda g: say_espeak(WORDS[g[0]], f"{g[1]}+{g[2]}", g[3], g[4], Path(tmp)), grid))
    wav = np.stack(wavs)
    word = np.array([g[0] for g in grid], np.int64)
    test = np.array([g[1] in TEST_ACCENTS for g in grid])
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.npz")
    np.savez(part, wav=wav, word=word, test=test)
    part.replace(path)
    return {"wav": torch.from_numpy(wav), "word": torch.from_numpy(word), "test": torch.from_numpy(test)}


# --- spectrograms and Griffin-Lim ------------------------------------------------------------

@functools.cache  # a constant of the front end; callers only read it
def mel_filters() -> Tensor:
    """(N_MELS, N_FFT // 2 + 1) triangular filters on the HTK mel scale, 0 .. RATE / 2."""
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + f / 700)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700 * (10 ** (m / 2595) - 1)

    freqs = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = hz(np.linspace(mel(np.array(0.0)), mel(np.array(RATE / 2)), N_MELS + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return torch.from_numpy(fb.astype(np.float32))


# STFT magnitudes are divided by this (half the window's sum), so a full-scale sine reads 1 (0 dB)
AMP = N_FFT / 4


def _stft(x: Tensor) -> Tensor:
    return torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, return_complex=True)


def to_image(wav: Tensor) -> Tensor:
    """(B, SAMPLES) audio -> (B, 1, N_MELS, FRAMES) log-mel in [-1, 1] (-1 = 80 dB down)."""
    power = (_stft(wav).abs() / AMP).square()[..., :FRAMES]
    db = 10 * torch.log10(mel_filters() @ power + 1e-10)
    db = db.clamp(TOP_DB - DB_RANGE, TOP_DB)
    return ((db - TOP_DB) / (DB_RANGE / 2) + 1).unsqueeze(1)


def griffin_lim(img: Tensor, iters: int = 32, seed: int = 0) -> Tensor:
    """(B, 1, N_MELS, FRAMES) log-mel images -> (B, SAMPLES) audio, peak 0.9. Mel power back to
    linear magnitude by the filters' pseudo-inverse (clamped at 0), then `phase_recovery`."""
    db = (img.squeeze(1).float() - 1) * (DB_RANGE / 2) + TOP_DB
    power = 10 ** (db / 10)
    mag = (torch.linalg.pinv(mel_filters()) @ power).clamp(min=0).sqrt() * AMP
    mag = F.pad(mag, (0, SAMPLES // HOP + 1 - FRAMES))  # the frame the images drop: silence
    x = phase_recovery(mag, iters, seed)
    return x / x.abs().amax(1, keepdim=True).clamp(min=1e-6) * 0.9


def phase_recovery(mag: Tensor, iters: int, seed: int = 0) -> Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013, momentum 0.99): audio whose STFT magnitude is
    close to `mag` (B, N_FFT // 2 + 1, frames), from seeded random phases."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.polar(torch.ones_like(mag), torch.rand(mag.shape, generator=g) * 2 * math.pi)
    prev = torch.zeros_like(angles)
    window = torch.hann_window(N_FFT)
    for _ in range(iters):
        x = torch.istft(mag * angles, N_FFT, HOP, window=window, length=SAMPLES)
        rebuilt = _stft(x)
        # c_n = t_n + a (t_n - t_{n-1}) is parallel to t_n - a / (1 + a) t_{n-1}; only its phase is kept
        angles = rebuilt - (0.99 / 1.99) * prev
        prev = rebuilt
        angles = angles / angles.abs().clamp(min=1e-8)
    return torch.istft(mag * angles, N_FFT, HOP, window=window, length=SAMPLES)


# --- recogniser and WER ----------------------------------------------------------------------

class SpeechCNN(nn.Module):
    """Three conv-BN-ReLU-pool stages on the 64x64 log-mel image, then 128 features, 10 words."""

    def __init__(self) -> None:
        super().__init__()

        def stage(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        self.body = nn.Sequential(*stage(1, 16), *stage(16, 32), *stage(32, 64), *stage(64, 64), nn.Flatten(),
                                  nn.Linear(64 * 4 * 4, 128), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, 10))

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def train_recogniser(img: Tensor, word: Tensor, steps: int, seed: int = 0) -> SpeechCNN:
    """Adam with a one-cycle schedule; each batch shifted in time by up to 4 frames (wrapping), so
    the recogniser does not key on where a word starts."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = SpeechCNN()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    net.train()
    for _ in range(steps):
        i = torch.randint(len(img), (64,), generator=g)
        x = torch.roll(img[i], int(torch.randint(-4, 5, (), generator=g)), dims=-1)
        loss = F.cross_entropy(net(x), word[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def transcribe(net: SpeechCNN, wav: Tensor) -> Tensor:
    """Audio (B, SAMPLES) -> word indices, through the same mel front end the corpus used."""
    net.eval()
    return torch.cat([net(to_image(wav[i: i + 256])).argmax(1) for i in range(0, len(wav), 256)])


def wer(refs: list[list[str]], hyps: list[list[str]]) -> float:
    """Word error rate: total word-level edit distance (substitutions + deletions + insertions)
    over the total number of reference words."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors = total = 0
    for r, h in zip(refs, hyps, strict=True):
        d = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            prev, d[0] = d[0], i
            for j, hw in enumerate(h, 1):
                prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
        errors += d[len(h)]
        total += len(r)
    if total == 0:
        raise ValueError("no reference words")
    return errors / total


def word_wer(pred: Tensor, ref: Tensor) -> float:
    return wer([[WORDS[i]] for i in ref.tolist()], [[WORDS[i]] for i in pred.tolist()])


# --- the GAN -------------------------------------------------------------------------------

class SpecG(nn.Module):
    """(z, word) -> 64x64 log-mel: a DCGAN generator (4x4 -> 64x64), the word as a learned
    32-dim embedding beside z."""

    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 32)
        self.fc = nn.Sequential(nn.Linear(nz + 32, 8 * w * 16, bias=False), nn.BatchNorm1d(8 * w * 16), nn.ReLU())

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(*up(8 * w, 4 * w), *up(4 * w, 2 * w), *up(2 * w, w),
                                  nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())
        self.w = w

    def forward(self, z: Tensor, word: Tensor) -> Tensor:
        return self.body(self.fc(torch.cat([z, self.embed(word)], 1)).view(len(z), 8 * self.w, 4, 4))


class SpecD(nn.Module):
    """64x64 -> 4x4 strided convolutions, then a linear logit plus the projection of the word's
    embedding on the features (Miyato & Koyama 2018)."""

    def __init__(self, w: int) -> None:
        super().__init__()

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]

        self.body = nn.Sequential(*down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w),
                                  nn.Flatten())
        self.out = nn.Linear(8 * w * 16, 1)
        self.embed = nn.Embedding(10, 8 * w * 16)

    def forward(self, x: Tensor, word: Tensor) -> Tensor:
        f = self.body(x)
        return self.out(f).squeeze(1) + (self.embed(word) * f).sum(1)


class SpeechGAN(nn.Module):
    """What `gankit say` loads: the generator and Griffin-Lim settings."""

    def __init__(self, nz: int, w: int, gl_iters: int = 32) -> None:
        super().__init__()
        self.g, self.nz, self.gl_iters = SpecG(nz, w), nz, gl_iters

    @torch.no_grad()
    def spectrograms(self, word: Tensor, seed: int = 0) -> Tensor:
        self.eval()
        z = torch.randn(len(word), self.nz, generator=torch.Generator().manual_seed(seed))
        return self.g(z, word)

    def audio(self, word: Tensor, seed: int = 0) -> Tensor:
        return griffin_lim(self.spectrograms(word, seed), self.gl_iters, seed)

    def say(self, text: str, seed: int = 0) -> np.ndarray:
        """A sentence of digit words -> one 8 kHz clip, each word's silence trimmed, 0.1 s between."""
        words = parse_words(text)
        clips = self.audio(torch.tensor(words), seed).numpy()
        gap = np.zeros(RATE // 10, np.float32)
        parts = []
        for c in clips:
            loud = np.nonzero(np.abs(c) > 0.05)[0]
            parts += [c[loud[0]: loud[-1] + 1] if len(loud) else c, gap]
        return np.concatenate(parts[:-1])


def parse_words(text: str) -> list[int]:
    words = text.lower().replace(",", " ").split()
    if not words:
        raise GankitError("say what? give digit words, e.g. \"seven\" or \"one two three\"")
    bad = [w for w in words if w not in WORDS]
    if bad:
        raise GankitError(f"cannot say {bad[0]!r}: the model knows {', '.join(WORDS)}")
    return [WORDS.index(w) for w in words]


def train_gan(img: Tensor, word: Tensor, s: Settings, seed: int) -> SpeechGAN:
    """Non-saturating loss from gankit.losses, Adam(2e-4, 0.5, 0.999), one D and one G step."""
    from ..losses import bce_d
    from . import cgan_update

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model, d = SpeechGAN(s.nz, s.width, s.gl_iters), SpecD(s.width)
    opt_g = torch.optim.Adam(model.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for _ in range(s.steps):
        i = torch.randint(len(img), (64,), generator=g)
        real, wi = img[i], word[i]
        z = torch.randn(len(i), s.nz, generator=g)
        cgan_update(model.g, d, opt_g, opt_d, z, wi,
                    lambda fake, real=real, wi=wi: bce_d(real=d(real, wi), fake=d(fake, wi)),
                    s.mode_seeking, g, f"speech GAN seed {seed}")
    return model.eval()


@torch.no_grad()
def features(net: SpeechCNN, img: Tensor) -> Tensor:
    net.eval()
    return torch.cat([net.features(img[i: i + 256]) for i in range(0, len(img), 256)])


# --- the study -----------------------------------------------------------------------------

def save_model(model: SpeechGAN, s: Settings, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "settings": asdict(s), "words": list(WORDS), "rate": RATE,
                "state": model.state_dict()}, path)


def load_model(path: str | Path) -> tuple[SpeechGAN, dict[str, Any]]:
    """A model written by `gankit study speech --save DIR` (DIR/speech.pt, or the file)."""
    from . import read_model_file

    ck, p = read_model_file(path, FORMAT, "speech model", "gankit study speech --save DIR", "speech.pt")
    if tuple(ck.get("words", ())) != WORDS:
        raise CheckpointError(f"{p}: not a gankit speech model")
    s = Settings(**ck["settings"])
    model = SpeechGAN(s.nz, s.width, s.gl_iters)
    model.load_state_dict(ck["state"])
    return model.eval(), ck


def run(settings: Settings = REDUCED, save: Path | None = None, log: Callable[[str], None] = print,
        cache: Path | None = None) -> dict[str, Any]:
    from ..metrics.distances import fid
    from .text2image import spread

    data = corpus(cache, log)
    img = torch.cat([to_image(data["wav"][i: i + 256]) for i in range(0, len(data["wav"]), 256)])
    tr, te = ~data["test"], data["test"]
    recogniser = train_recogniser(img[tr], data["word"][tr], settings.clf_steps)
    f_train = features(recogniser, img[tr])
    ref_spread = spread(f_train, data["word"][tr])  # diversity 1 = as varied as the training clips

    def fd_and_diversity(spec: Tensor, words: Tensor) -> dict[str, float]:
        """Fréchet distance to the training speech and word-wise spread over the training
        speech's, both in the recogniser's features."""
        f = features(recogniser, spec)
        return {"fd": fid(f_train, f), "diversity": spread(f, words) / ref_spread}

    rows = [{"source": "real speech, held-out accents", "seed": 0,
             "wer": word_wer(transcribe(recogniser, data["wav"][te]), data["word"][te]),
             **fd_and_diversity(img[te], data["word"][te])}]
    vocoded = griffin_lim(img[te], settings.gl_iters)
    rows.append({"source": "held-out speech through mel + Griffin-Lim", "seed": 0,
                 "wer": word_wer(transcribe(recogniser, vocoded), data["word"][te]),
                 **fd_and_diversity(to_image(vocoded), data["word"][te])})
    log(f"recogniser: WER {rows[0]['wer']:.3f} on held-out accents, {rows[1]['wer']:.3f} after Griffin-Lim")
    asked = torch.arange(10).repeat_interleave(settings.per_word)
    for seed in range(settings.seeds):
        model = train_gan(img[tr], data["word"][tr], settings, seed)
        audio = model.audio(asked, seed=10_000 + seed)
        gen = to_image(audio)
        rows.append({"source": "SpecGAN + Griffin-Lim", "seed": seed,
                     "wer": word_wer(transcribe(recogniser, audio), asked),
                     **fd_and_diversity(gen, asked)})
        log(f"SpecGAN seed {seed}: WER {rows[-1]['wer']:.3f}, FD {rows[-1]['fd']:.2f}, "
            f"diversity {rows[-1]['diversity']:.2f}")
        if save is not None and seed == 0:
            save_model(model, settings, save / "speech.pt")
            save_examples(model, save)
    return {"settings": asdict(settings), "clips": {"train": int(tr.sum()), "held_out": int(te.sum())},
            "rows": rows, "summary": summarize(rows)}


def save_examples(model: SpeechGAN, out: Path) -> None:
    """out/say-WORD.wav for each word and spectrograms.png (a row per word, 8 noises each)."""
    from ..monitor.images import grid, save_png

    for w in WORDS:
        write_wav(model.say(w, seed=0), out / f"say-{w}.wav")
    spec = model.spectrograms(torch.arange(10).repeat_interleave(8), seed=0).flip(-2)  # low pitch at the bottom
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
