"""Text-to-image: digits drawn from captions ("a thick slanted seven"), GAN-CLS style.

Captions come from the labels and from three attributes measured on every training digit
(data/captions.py). Before the first update the caption encoder is trained to read the digit
and the attribute levels out of a caption, then frozen (`init`): a fixed encoder gives G and D a
stationary condition, as Reed et al.'s (2016) separately trained char-CNN-RNN did.

Phases: Dmain, then Gmain (reusing Dmain's fakes).
- Dmain: real digits under their own caption are real, fakes under the same caption are fake;
  with `text.matching=gan-cls` (Reed et al. 2016) real digits under a *wrong* caption count as
  fake too, the two fake kinds weighted 1/2 each. Half the wrong captions name another digit,
  half flip the attribute words, so D (and through it G) must attend to the attributes.
- Gmain: the run's G loss under the caption, plus MSGAN's mode-seeking term (`text.mode_seeking`):
  without it G drew about one digit per caption whatever z (measured: diversity 0.58).
Training captions drop each attribute word with probability 1 - `text.keep_word`, so "a seven"
means any seven.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..data.captions import caption_index, class_stats, drop_words, levels, measure, tercile_cuts, wrong_levels
from ..errors import ConfigError
from .base import Batch, Family, Phase, families

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from ..training.state import TrainState


class TextToImage(Family):
    name, models = "text2image", ("text2image",)
    doc = "text -> image: GAN-CLS matching-aware D, frozen GRU caption encoder, MSGAN mode seeking"
    keys = frozenset({"model.z_dim", "text.matching", "text.keep_word", "text.mode_seeking", "text.encoder_steps",
                      "train.grid_n"})

    def uses_labels(self, cfg: Config) -> bool:
        return True

    def validate(self, cfg: Config) -> None:
        t = cfg.text
        if not 0 < t.keep_word <= 1:
            raise ConfigError(f"text.keep_word must be in (0, 1], got {t.keep_word}")
        if t.mode_seeking < 0 or t.encoder_steps < 0:
            raise ConfigError("text.mode_seeking and text.encoder_steps must be >= 0")

    def prepare(self, cfg: Config, data: Dataset) -> Dataset:
        if data.y is None or data.num_classes != 10 or data.shape != (1, 28, 28):
            raise ConfigError(f"text2image captions 28x28 grey digits labelled 0-9; {cfg.data.source} holds "
                              f"{data.shape} images with {data.num_classes or 'no'} classes")
        counts = torch.bincount(data.y, minlength=10)
        if counts.min() < 3:  # terciles per class
            raise ConfigError(f"text2image needs at least 3 examples of every digit; {cfg.data.source} has "
                              f"{int(counts.min())} of digit {int(counts.argmin())}")
        attrs = measure(data.x)
        cuts = tercile_cuts(attrs, data.y)  # from the training digits; frozen into G's buffers
        data.cond = levels(attrs, data.y, cuts)
        data.meta["captions"] = {"cuts": torch.stack(list(cuts.values())),
                                 "stats": torch.stack(list(class_stats(attrs, data.y).values()))}
        return data

    def init(self, s: TrainState, data: Dataset) -> None:
        """A new run: train the caption encoder, freeze it, record the caption statistics; the
        EMA G gets the same encoder and buffers (it was copied from G before this)."""
        enc = train_text_encoder(s.cfg.text.encoder_steps, s.cfg.train.seed, s.cfg.text.keep_word)
        for g in (s.g, s.g_ema):
            if g is not None:
                g.enc.load_state_dict(enc.state_dict())
                g.cuts.copy_(data.meta["captions"]["cuts"])
                g.stats.copy_(data.meta["captions"]["stats"])

    def phases(self, cfg: Config) -> list[Phase]:
        return [Phase("Dmain", "d", d_main), Phase("Gmain", "g", g_main)]

    def evaluate(self, g, n: int = 0, seed: int = 0) -> dict:
        from ..metrics.captions import evaluate_captions

        return evaluate_captions(g, n, seed)


families.add("text2image", TextToImage())


def _codes(s: TrainState) -> Tensor:
    """The 270 captions' codes, encoded once per process (the encoder is frozen)."""
    codes = s.aux.get("codes")
    if codes is None:
        codes = s.aux["codes"] = s.g.all_codes()
    return codes


def d_main(s: TrainState, b: Batch) -> Tensor:
    t = s.cfg.text
    idx = s.batch_indices(s.cfg.train.batch)
    b.real, b.y, lv = b.data[idx], b.labels[idx], b.cond[idx]
    codes = _codes(s)
    b.aux["code"] = code = codes[caption_index(b.y.cpu(), drop_words(lv.cpu(), t.keep_word, s.noise)).to(codes.device)]
    b.aux["z"] = z = s.sample_z(len(idx))
    b.fake = s.g_run(z, code)
    real_logits = s.d_run(b.real, code).float()
    loss = s.loss.d(real=real_logits, fake=s.d_run(b.fake.detach(), code).float())
    if t.matching == "gan-cls":  # real digits under wrong captions are fake too (half weight each)
        wrong = codes[caption_index(*wrong_levels(b.y.cpu(), lv.cpu(), s.noise)).to(codes.device)]
        loss = 0.5 * (loss + s.loss.d(real=real_logits, fake=s.d_run(b.real, wrong).float()))
    b.out["d_real"] = real_logits.detach().mean()
    b.d_loss = loss
    return loss


def g_main(s: TrainState, b: Batch) -> Tensor:
    from ..regularizers import mode_seeking

    code, z = b.aux["code"], b.aux["z"]
    loss = s.loss.g(fake=s.d(b.fake, code).float(), real=None)
    b.g_loss = loss
    w = s.cfg.text.mode_seeking
    if w:  # MSGAN: two noises under one caption should give images as far apart as the noises
        z2 = s.sample_z(len(z))
        ms = mode_seeking(b.fake, s.g_run(z2, code), z, z2)
        b.out["mode_seeking"] = ms.detach()
        loss = loss + w * ms
    return loss


def train_text_encoder(steps: int, seed: int, keep: float):
    """Caption -> (digit, levels) on random captions; returns the frozen encoder. The captions it
    reads are all the captions there are (10 x 27), so there is no held-out text to overfit.
    A supervised pre-training of a fixed part, not a GAN update: it has its own small loop."""
    import torch.nn.functional as F

    from ..data.captions import tokens
    from ..nets.text2image import TextEncoder

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the run's own RNG streams are not consumed
        torch.manual_seed(seed)
        enc = TextEncoder()
    opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    for _ in range(steps):
        d = torch.randint(10, (128,), generator=g)
        lv = drop_words(torch.randint(-1, 2, (128, 3), generator=g), keep, g)
        h = enc(tokens(d, lv))
        loss = F.cross_entropy(enc.digit_head(h), d) + \
            F.cross_entropy(enc.level_head(h).view(-1, 3, 3).transpose(1, 2), lv + 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return enc.eval().requires_grad_(False)
