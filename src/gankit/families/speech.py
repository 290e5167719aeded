"""Speech: spoken digits drawn as log-mel images by a conditional SpecGAN (Donahue et al. 2019).

The update is the noise -> image family's, conditional on the word (a SpecGAN net is conditional
by its own design), with MSGAN's mode-seeking term (`reg.mode_seeking`): without it the clips of
a word looked alike (measured: diversity 0.63 of the term's). What this family adds is how its
samples are used and judged: `gankit say RUN "one two three"` (Griffin-Lim audio), and
`gankit eval RUN` by the project speech recogniser (metrics/speech.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ConfigError
from .base import families
from .noise2image import NoiseToImage

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset


class Speech(NoiseToImage):
    name, models = "speech", ("specgan",)
    doc = "speech: conditional SpecGAN on 64x64 log-mel images of spoken digits, Griffin-Lim audio"
    keys = frozenset({"model.z_dim", "model.cond", "model.n_classes", "loss.real_label", "reg.mode_seeking",
                      "reg.gp_weight", "reg.r1_gamma", "reg.r1_every", "reg.instance_noise",
                      "reg.instance_noise_steps", "reg.drift", "train.n_critic", "train.g_fresh_z", "train.g_batch",
                      "train.grid_n"})

    def prepare(self, cfg: Config, data: Dataset) -> Dataset:
        if data.y is None or data.num_classes != 10:
            raise ConfigError(f"specgan speaks the ten digit words; {cfg.data.source} holds "
                              f"{data.num_classes or 'no'} classes (use data.source=espeak_digits)")
        return super().prepare(cfg, data)

    def evaluate(self, g: Any, n: int = 0, seed: int = 0) -> dict:
        from ..metrics.speech import evaluate_speech

        return evaluate_speech(g, n, seed)


families.add("speech", Speech())


def say(g: Any, text: str, seed: int = 0, gl_iters: int = 32) -> np.ndarray:
    """A sentence of digit words -> one 8 kHz clip from a loaded speech run (`gankit.load`): each
    word's silence trimmed, 0.1 s between words. GankitError for words the model does not know."""
    from ..data.audio import RATE, griffin_lim, parse_words

    words = torch.tensor(parse_words(text))
    z = torch.randn(len(words), g.z_dim, generator=torch.Generator().manual_seed(seed))
    clips = griffin_lim(g.from_z(z, words), gl_iters, seed).numpy()
    gap = np.zeros(RATE // 10, np.float32)
    parts = []
    for c in clips:
        loud = np.nonzero(np.abs(c) > 0.05)[0]
        parts += [c[loud[0]: loud[-1] + 1] if len(loud) else c, gap]
    return np.concatenate(parts[:-1])
