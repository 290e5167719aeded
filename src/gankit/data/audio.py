"""Spoken digits as images: the espeak-ng corpus, its log-mel front end and Griffin-Lim.

Corpus (`corpus`, dataset `espeak_digits`): the ten digit words spoken by Debian's espeak-ng,
offline, in 8 English accents x 4 voice variants x 3 speeds x 3 pitches (2880 clips), resampled
to 8 kHz, silence trimmed, each clip 8192 samples (1.02 s). Two accents (Caribbean, New York) are
the held-out split (`data.split=test`); `train` is the other six.

Representation: log-mel spectrogram, 64 mel bands x 64 frames (STFT 256 / hop 128, Hann), in dB,
clamped to an 80 dB range and mapped to [-1, 1]: a 64x64 image, which any image GAN can draw
(SpecGAN, Donahue et al. 2019). Audio comes back through Griffin-Lim phase recovery
(`griffin_lim`, the fast variant with momentum 0.99).
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError, GankitError
from .core import Dataset, datasets

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
CORPUS_VERSION = "v1"


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


def write_wav(x: np.ndarray | Tensor, path: Path | io.BytesIO, rate: int = RATE) -> None:
    """16-bit mono PCM WAV of x in [-1, 1] (clipped) to a path or a binary buffer."""
    x = np.asarray(x, dtype=np.float32)
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path) if isinstance(path, Path) else path, "wb") as w:
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
    from ..metrics.cache import root

    path = (cache or root() / "speech") / f"espeak-digits-{CORPUS_VERSION}.npz"
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


def parse_words(text: str) -> list[int]:
    words = text.lower().replace(",", " ").split()
    if not words:
        raise GankitError("say what? give digit words, e.g. \"seven\" or \"one two three\"")
    bad = [w for w in words if w not in WORDS]
    if bad:
        raise GankitError(f"cannot say {bad[0]!r}: the model knows {', '.join(WORDS)}")
    return [WORDS.index(w) for w in words]


@datasets.register("espeak_digits", "2880 spoken digit words by espeak-ng as 64x64 log-mel images (needs espeak-ng)")
def _espeak_digits(cfg: Any) -> Dataset:
    data = corpus(log=lambda m: None)
    img = torch.cat([to_image(data["wav"][i: i + 256]) for i in range(0, len(data["wav"]), 256)])
    split = getattr(cfg, "split", "all")
    keep = {"train": ~data["test"], "test": data["test"], "all": torch.ones_like(data["test"])}[split]
    return Dataset(img[keep], data["word"][keep], "espeak_digits", list(WORDS), meta={"audio": "log-mel 8 kHz"})
