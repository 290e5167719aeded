"""Scores of generated speech, by a speech recogniser the project trains on the training accents
of `espeak_digits` (cached on disk, like the digit CNN):

- `wer_recogniser`: word error rate of the generated clips (after Griffin-Lim) heard by the
  recogniser; every clip is one word, so it is the share of clips heard as another word;
- `fd_recogniser`: Fréchet distance to the training speech in the recogniser's features;
- `diversity_recogniser`: spread of the clips of one word in those features over that of the real
  training clips (1 = as varied, 0 = one clip per word).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.audio import WORDS, to_image


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


@torch.no_grad()
def features(net: SpeechCNN, img: Tensor) -> Tensor:
    net.eval()
    return torch.cat([net.features(img[i: i + 256]) for i in range(0, len(img), 256)])


RECOGNISER_STEPS = 800


def load_recogniser(steps: int = 0, seed: int = 0) -> SpeechCNN:
    """The recogniser trained on the training accents' clips (`steps`: 0 = RECOGNISER_STEPS), kept
    in the feature cache keyed by those clips (trained on first use: about a minute on 2 cores)."""
    from ..config import DataConfig
    from ..data import build
    from .cache import cached

    steps = steps or RECOGNISER_STEPS
    train = build(DataConfig(source="espeak_digits", split="train"))
    net = SpeechCNN()
    net.load_state_dict(cached(train.x, f"speech-recogniser-{steps}-{seed}",
                               lambda: train_recogniser(train.x, train.y, steps, seed).state_dict()))
    return net.eval()


def audio_features(recogniser: SpeechCNN, audio: Tensor) -> Tensor:
    """The recogniser's features of clips (B, SAMPLES), through the corpus's mel front end."""
    return torch.cat([features(recogniser, to_image(audio[i: i + 256])) for i in range(0, len(audio), 256)])


def training_reference(recogniser: SpeechCNN) -> tuple[Tensor, float]:
    """The training accents' features (FD's reference) and their word-wise spread (diversity 1)."""
    from ..config import DataConfig
    from ..data import build
    from .captions import spread

    train = build(DataConfig(source="espeak_digits", split="train"))
    f = features(recogniser, train.x)
    return f, spread(f, train.y)


def score(recogniser: SpeechCNN, audio: Tensor, words: Tensor, f_train: Tensor, ref_spread: float,
          notes: dict[str, Any] | None = None) -> dict[str, float]:
    """WER, Fréchet distance to the training speech and diversity of clips (B, SAMPLES) of `words`.
    `notes` ({"warnings": [], "skipped": {}}): FD's warnings go there, and FD is None with its reason
    when it cannot be computed; without `notes` that raises TooFewSamples."""
    from .captions import spread
    from .distances import fid_noted

    f = audio_features(recogniser, audio)
    fd = fid_noted(f_train, f, notes, "fd")
    # training clips with no spread (a corpus of identical clips per word) leave no scale: null
    diversity = spread(f, words) / ref_spread if ref_spread > 0 else None
    if diversity is None and notes is not None:
        notes["warnings"].append("diversity: the training clips of each word are identical, so there is no "
                                 "spread to compare with; null")
    return {"wer": word_wer(transcribe(recogniser, audio), words), "fd": fd, "diversity": diversity}


def evaluate_speech(g: Any, n: int = 0, seed: int = 0, gl_iters: int = 32) -> dict[str, Any]:
    """`gankit eval RUN` of a speech run: `n` clips per word (default 50) from the run's G through
    Griffin-Lim, scored by the project recogniser; the recogniser's WER on the held-out accents'
    real clips is the reference."""
    from ..data.audio import corpus, griffin_lim

    per_word = n or 50
    recogniser = load_recogniser()
    f_train, ref = training_reference(recogniser)
    words = torch.arange(10).repeat_interleave(per_word)
    z = torch.randn(len(words), g.z_dim, generator=torch.Generator().manual_seed(10_000 + seed))
    audio = griffin_lim(g.from_z(z, words), gl_iters, seed)
    notes: dict[str, Any] = {"warnings": [], "skipped": {}}
    res = {f"{k}_recogniser": v for k, v in score(recogniser, audio, words, f_train, ref, notes).items()
           if k != "fd" or v is not None}
    if per_word < 2:  # spread is over pairs of clips of one word
        res["diversity_recogniser"] = None
        notes["warnings"].append("diversity_recogniser: needs at least 2 clips per word, got 1: null")
    data = corpus(log=lambda m: None)
    res["wer_recogniser_real_heldout"] = word_wer(transcribe(recogniser, data["wav"][data["test"]]),
                                                  data["word"][data["test"]])
    res["protocol"] = {"clips": len(words), "per_word": per_word, "seed": seed, "vocoder": f"Griffin-Lim {gl_iters}",
                       "recogniser": f"project SpeechCNN, {RECOGNISER_STEPS} steps on the training accents",
                       "reference": "training accents (FD, diversity); held-out accents (real WER)"}
    return res | {k: v for k, v in notes.items() if v}
