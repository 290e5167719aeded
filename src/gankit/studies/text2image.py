"""`gankit study text2image`: digits drawn from captions ("a thick slanted seven"), GAN-CLS style.

Captions come from labels and from three attributes measured on every digit (`measure`):
stroke thickness (2 x ink area / ink perimeter, in pixels), slant (the shear of the ink's second
moments, in degrees, positive = leaning right) and size (the ink's radius of gyration, in
pixels). Each attribute is cut at its per-class terciles: the low third gets the low word
(thin / upright / small), the high third the high word (thick / slanted / large), the middle
third no word. While training, each attribute word is kept with probability `keep_word`, so
"a seven" means any seven and "a thin seven" constrains only thickness.

The text encoder (embedding + GRU, `TextEncoder`) is trained first, from scratch, to read the
digit and the three attribute levels out of a caption; it is then frozen. A fixed encoder gives
G and D a stationary condition, as in Reed et al. (2016), whose char-CNN-RNN was also trained
separately. G maps (z, text code) to a digit; D scores (image, text code) pairs.

The matching-aware D (GAN-CLS, Reed et al. 2016) also sees real images with a *wrong* caption
and must call them fake: half the wrong captions are another digit's caption, half are the same
digit with its attribute words flipped (thin <-> thick ...), so that D, and through it G, has to
attend to the attributes and not only to the digit name. The study trains the same model with
and without that term ("gan-cls" vs "gan-int": plain conditional D) over seeds and measures:
- class accuracy: the project digit classifier's label for a sample equals the named digit;
- attribute correlation: Pearson r between the asked level (-1 low word, +1 high word) and the
  attribute measured on the sample, over the held-out captions that name that attribute, each
  attribute standardised within its class first (so that digit shape does not count). The same
  r on the held-out real digits and their own captions is the ceiling;
- FID with the project digit CNN's features against the held-out digits;
- diversity: ten samples per caption, their spread in the same features over the spread of real
  digits that share a caption. One sample per caption cannot show a G that ignores z; this can.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, GankitError
from . import summarize_by

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRIBUTES = {"thickness": ("thin", "thick"), "slant": ("upright", "slanted"), "size": ("small", "large")}
VOCAB = ("<pad>", "a", *DIGITS, *(w for pair in ATTRIBUTES.values() for w in pair))
WORD_ID = {w: i for i, w in enumerate(VOCAB)}
MAX_WORDS = 5  # "a" + three attribute words + the digit
CONDITIONS = ("gan-cls", "gan-int")
FORMAT = "gankit-text2image-1"


@dataclass
class Settings:
    seeds: int = 3
    steps: int = 2500  # GAN steps (batch 64) per seed and condition
    text_steps: int = 400  # text-encoder steps
    nz: int = 64
    width: int = 32
    keep_word: float = 0.7
    # MSGAN weight. Trials at 2500 steps, seed 0: 0 -> diversity 0.58, about one digit per caption
    # whatever z; 1 (tried before D had its projection term) -> z took over and the caption was
    # lost; 0.2 -> diversity 1.02 with 95 % class accuracy
    mode_seeking: float = 0.2
    conditions: tuple[str, ...] = CONDITIONS


REDUCED = Settings()
FULL = Settings(seeds=5, steps=10000, width=64)


# --- attributes and captions ---------------------------------------------------------------------

def measure(x: Tensor) -> dict[str, Tensor]:
    """Thickness, slant and size of each digit in x (N,1,28,28) in [-1,1], white on black."""
    x = x.float().squeeze(1)
    ink = (x > 0).float()
    area = ink.sum((1, 2))
    pad = F.pad(ink, (1, 1, 1, 1))
    # ink/background edges between 4-neighbours: the perimeter of the binarised strokes
    perim = (pad[:, 1:, :] != pad[:, :-1, :]).sum((1, 2)) + (pad[:, :, 1:] != pad[:, :, :-1]).sum((1, 2))
    thickness = 2 * area / perim.clamp(min=1)
    w = (x + 1) / 2
    m = w.sum((1, 2)).clamp(min=1e-6)
    r = torch.arange(28.0).view(1, 28, 1)
    c = torch.arange(28.0).view(1, 1, 28)
    cy = (w * r).sum((1, 2)) / m
    cx = (w * c).sum((1, 2)) / m
    dy, dx = r - cy.view(-1, 1, 1), c - cx.view(-1, 1, 1)
    mu02 = (w * dy * dy).sum((1, 2)) / m
    mu20 = (w * dx * dx).sum((1, 2)) / m
    mu11 = (w * dx * dy).sum((1, 2)) / m
    # rows grow downwards: a right-leaning digit's columns fall as its rows rise
    slant = torch.rad2deg(torch.atan(-mu11 / mu02.clamp(min=1e-6)))
    size = (mu20 + mu02).sqrt()
    return {"thickness": thickness, "slant": slant, "size": size}


def tercile_cuts(attrs: dict[str, Tensor], y: Tensor) -> dict[str, Tensor]:
    """Per class and attribute: the (1/3, 2/3) quantiles, shape (10, 2)."""
    q = torch.tensor([1 / 3, 2 / 3])
    return {a: torch.stack([torch.quantile(v[y == c], q) for c in range(10)]) for a, v in attrs.items()}


def class_stats(attrs: dict[str, Tensor], y: Tensor) -> dict[str, Tensor]:
    """Per class and attribute: mean and std, shape (10, 2), to standardise within class."""
    return {a: torch.stack([torch.stack([v[y == c].mean(), v[y == c].std()]) for c in range(10)])
            for a, v in attrs.items()}


def levels(attrs: dict[str, Tensor], y: Tensor, cuts: dict[str, Tensor]) -> Tensor:
    """(N, 3) in {-1, 0, +1}: below the class's lower tercile, between, above the upper one."""
    cols = []
    for a, v in attrs.items():
        lo, hi = cuts[a][y, 0], cuts[a][y, 1]
        cols.append((v > hi).long() - (v < lo).long())
    return torch.stack(cols, 1)


def caption(digit: int, lv: list[int] | Tensor) -> str:
    words = ["a"]
    for (lo, hi), level in zip(ATTRIBUTES.values(), [int(v) for v in lv], strict=True):
        if level:
            words.append(hi if level > 0 else lo)
    return " ".join([*words, DIGITS[digit]])


def parse(text: str) -> tuple[int, list[int]]:
    """A caption -> (digit, levels); words in any order, "a"/"an" optional. One-line errors."""
    words = [w for w in re.split(r"[\s,.;!?]+", text.lower()) if w and w not in ("a", "an")]
    digit, lv = None, [0, 0, 0]
    for w in words:
        if w in DIGITS:
            if digit is not None:
                raise GankitError(f"caption {text!r} names two digits; name one of {', '.join(DIGITS)}")
            digit = DIGITS.index(w)
            continue
        for i, (lo, hi) in enumerate(ATTRIBUTES.values()):
            if w in (lo, hi):
                if lv[i]:
                    raise GankitError(f"caption {text!r} gives {'/'.join((lo, hi))} twice")
                lv[i] = 1 if w == hi else -1
                break
        else:
            known = ", ".join(w for w in VOCAB[2:])
            raise GankitError(f"caption {text!r}: unknown word {w!r}; the vocabulary is {known}")
    if digit is None:
        raise GankitError(f"caption {text!r} names no digit; name one of {', '.join(DIGITS)}")
    return digit, lv


def tokens(digits: Tensor, lv: Tensor) -> Tensor:
    """(N,) digits and (N,3) levels -> (N, MAX_WORDS) word ids in canonical order, padded at the
    end: "a [thin|thick] [upright|slanted] [small|large] DIGIT"."""
    n = len(digits)
    lo = torch.tensor([WORD_ID[w] for w, _ in ATTRIBUTES.values()])
    hi = torch.tensor([WORD_ID[w] for _, w in ATTRIBUTES.values()])
    words = torch.cat([torch.full((n, 1), WORD_ID["a"]), torch.where(lv > 0, hi, lo),
                       (digits + WORD_ID[DIGITS[0]]).view(n, 1)], 1)
    present = torch.cat([torch.ones(n, 1, dtype=torch.bool), lv != 0, torch.ones(n, 1, dtype=torch.bool)], 1)
    # pack the present words to the left, keeping their order; the rest become padding (0)
    order = torch.sort((~present).long(), dim=1, stable=True).indices
    return (words * present).gather(1, order)


def caption_index(digits: Tensor, lv: Tensor) -> Tensor:
    """Each (digit, levels) caption's row in `all_captions`: digit * 27 + levels in base 3."""
    lv = lv + 1
    return digits * 27 + lv[:, 0] * 9 + lv[:, 1] * 3 + lv[:, 2]


def all_captions() -> tuple[Tensor, Tensor]:
    """Every caption there is (10 digits x 3^3 level patterns), in `caption_index` order."""
    i = torch.arange(270)
    lv = torch.stack([(i // 9) % 3, (i // 3) % 3, i % 3], 1) - 1
    return i // 27, lv


def drop_words(lv: Tensor, keep: float, g: torch.Generator) -> Tensor:
    """Each attribute word survives with probability `keep`: partial captions."""
    return lv * (torch.rand(lv.shape, generator=g) < keep).long()


def wrong_levels(y: Tensor, lv: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mismatched captions for GAN-CLS: half another digit's caption (a random other class,
    random levels), half the same digit with every attribute word flipped and, where it named
    none, one attribute forced on."""
    n = len(y)
    other = (y + torch.randint(1, 10, (n,), generator=g)) % 10
    rand_lv = torch.randint(-1, 2, (n, 3), generator=g)
    flipped = -lv
    empty = (lv == 0).all(1)
    forced = torch.zeros_like(lv)
    forced[torch.arange(n), torch.randint(3, (n,), generator=g)] = 1 - 2 * torch.randint(2, (n,), generator=g)
    flipped = torch.where(empty.unsqueeze(1), forced, flipped)
    use_other = torch.rand(n, generator=g) < 0.5
    return torch.where(use_other, other, y), torch.where(use_other.unsqueeze(1), rand_lv, flipped)


# --- networks ------------------------------------------------------------------------------------

class TextEncoder(nn.Module):
    """Word embedding (32) + one-layer GRU (64); the last real word's hidden state is the code.
    The heads read the digit and each attribute's level (low / none / high) from it while the
    encoder is trained; afterwards only `forward` is used."""

    dim = 64

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), 32, padding_idx=0)
        self.gru = nn.GRU(32, self.dim, batch_first=True)
        self.digit_head = nn.Linear(self.dim, 10)
        self.level_head = nn.Linear(self.dim, 3 * 3)

    def forward(self, ids: Tensor) -> Tensor:
        lengths = (ids != 0).sum(1).clamp(min=1)
        out, _ = self.gru(self.embed(ids))
        return out[torch.arange(len(ids)), lengths - 1]


def train_text_encoder(steps: int, seed: int, keep: float) -> TextEncoder:
    """Caption -> (digit, levels) on random captions; returns the frozen encoder. The captions it
    reads are all the captions there are (10 x 27), so there is no held-out text to overfit."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
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
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc.eval()


class TextG(nn.Module):
    """(z, text code) -> 28x28 digit: a DCGAN generator whose input is z and the code side by side."""

    def __init__(self, nz: int, w: int, tdim: int = TextEncoder.dim) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(nz + tdim, 2 * w * 7 * 7, bias=False), nn.BatchNorm1d(2 * w * 7 * 7),
                                nn.ReLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())
        self.w = w

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        return self.body(self.fc(torch.cat([z, t], 1)).view(len(z), 2 * self.w, 7, 7))


class TextD(nn.Module):
    """Reed et al.'s matching D: image features at 7x7, the text code projected and tiled over
    them, a 1x1 convolution over both, then one logit. No BatchNorm: GAN-CLS batches mix real,
    fake and mismatched pairs, and batch statistics would tell them apart."""

    def __init__(self, w: int, tdim: int = TextEncoder.dim) -> None:
        super().__init__()
        self.img = nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2))
        self.txt = nn.Sequential(nn.Linear(tdim, w // 2), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Conv2d(2 * w + w // 2, 2 * w, 1), nn.LeakyReLU(0.2), nn.Flatten())
        self.out = nn.Linear(2 * w * 7 * 7, 1)
        # projection term (Miyato & Koyama 2018): <W t, features>; without it the caption reached
        # D only through the tiled concat and G drew the named digit far less often (measured)
        self.proj = nn.Linear(tdim, 2 * w * 7 * 7, bias=False)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.img(x)
        tt = self.txt(t)[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        f = self.joint(torch.cat([h, tt], 1))
        return self.out(f).squeeze(1) + (self.proj(t) * f).sum(1)


class TextToImage(nn.Module):
    """What `gankit sample RUN --text` loads: the frozen encoder and the generator."""

    def __init__(self, nz: int, w: int) -> None:
        super().__init__()
        self.enc, self.g, self.nz = TextEncoder(), TextG(nz, w), nz

    @torch.no_grad()
    def generate(self, digits: Tensor, lv: Tensor, z: Tensor) -> Tensor:
        self.eval()
        return self.g(z, self.enc(tokens(digits, lv)))

    def sample_text(self, text: str, n: int, seed: int = 0) -> Tensor:
        d, lv = parse(text)
        z = torch.randn(n, self.nz, generator=torch.Generator().manual_seed(seed))
        return self.generate(torch.full((n,), d), torch.tensor([lv] * n), z)


# --- training and the study ---------------------------------------------------------------------

def train(x: Tensor, y: Tensor, lv: Tensor, s: Settings, seed: int, condition: str,
          enc: TextEncoder) -> TextToImage:
    """Non-saturating GAN, Adam(2e-4, 0.5, 0.999). D: real+right caption vs fake+right caption
    (and, for gan-cls, real+wrong caption), fake and wrong weighted 1/2 each as in the paper."""
    from ..losses import bce_fake, bce_real
    from . import cgan_update

    if condition not in CONDITIONS:
        raise GankitError(f"unknown text2image condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = TextToImage(s.nz, s.width)
    model.enc.load_state_dict(enc.state_dict())
    model.enc.requires_grad_(False)
    d = TextD(s.width)
    opt_g = torch.optim.Adam(model.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    with torch.no_grad():  # the encoder is frozen: encode each of the 270 captions once
        codes = model.enc(tokens(*all_captions()))
    for _ in range(s.steps):
        i = torch.randint(len(x), (64,), generator=g)
        real, yi = x[i], y[i]
        t = codes[caption_index(yi, drop_words(lv[i], s.keep_word, g))]
        z = torch.randn(len(i), s.nz, generator=g)

        def d_loss(fake: Tensor, real: Tensor = real, yi: Tensor = yi, i: Tensor = i, t: Tensor = t) -> Tensor:
            if condition == "gan-cls":  # real digits under wrong captions count as fake
                t_wrong = codes[caption_index(*wrong_levels(yi, lv[i], g))]
                return bce_real(d(real, t)) + 0.5 * (bce_fake(d(fake, t)) + bce_fake(d(real, t_wrong)))
            return bce_real(d(real, t)) + bce_fake(d(fake, t))

        cgan_update(model.g, d, opt_g, opt_d, z, t, d_loss, s.mode_seeking, g,
                    f"text2image {condition} seed {seed}")
    return model.eval()


def pearson(a: Tensor, b: Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    den = float((a.square().sum() * b.square().sum()).sqrt())
    return float((a * b).sum()) / den if den > 0 else math.nan


def attribute_r(x: Tensor, y: Tensor, lv: Tensor, stats: dict[str, Tensor]) -> dict[str, float]:
    """Per attribute: Pearson r between asked level (+-1) and the class-standardised measurement,
    over the items whose caption names that attribute."""
    m = measure(x)
    out = {}
    for k, a in enumerate(ATTRIBUTES):
        named = lv[:, k] != 0
        zscore = (m[a] - stats[a][y, 0]) / stats[a][y, 1]
        out[a] = pearson(lv[named, k].float(), zscore[named])
    return out


def spread(f: Tensor, groups: Tensor) -> float:
    """Mean over groups (of two or more members) of the mean pairwise feature distance inside the
    group: how different the digits that share one caption are."""
    out = []
    for gid in groups.unique():
        fg = f[groups == gid]
        if len(fg) > 1:
            out.append(float(torch.pdist(fg.double()).mean()))
    return float(np.mean(out)) if out else math.nan


def real_spread(x: Tensor, y: Tensor, lv: Tensor) -> float:
    """`spread` of real digits grouped by their full caption: the diversity a caption allows."""
    from ..metrics.classifier import load_digit_classifier

    with torch.no_grad():
        f, _ = load_digit_classifier().features_and_probs(x)
    return spread(f, caption_index(y, lv))


def evaluate(model: TextToImage, xte: Tensor, yte: Tensor, lvte: Tensor, stats: dict[str, Tensor],
             seed: int = 0, ref_spread: float | None = None) -> dict[str, float]:
    """One sample per held-out digit, from that digit's full caption: class accuracy, attribute r,
    FID against the held-out digits (project digit-CNN features). Those all pass a G that draws
    one image per caption; `diversity` does not: ten samples for each of the first 100 held-out
    captions, their `spread` over the real digits' `ref_spread` (1 = as varied as real digits
    sharing a caption, 0 = one image per caption)."""
    from ..metrics.classifier import load_digit_classifier
    from ..metrics.distances import fid

    z = torch.randn(len(yte), model.nz, generator=torch.Generator().manual_seed(10_000 + seed))
    fake = torch.cat([model.generate(yte[i: i + 500], lvte[i: i + 500], z[i: i + 500])
                      for i in range(0, len(yte), 500)])
    clf = load_digit_classifier()
    with torch.no_grad():
        f_fake, p = clf.features_and_probs(fake)
        f_real, _ = clf.features_and_probs(xte)
    r = attribute_r(fake, yte, lvte, stats)
    scores = {"class_accuracy": float((p.argmax(1) == yte).float().mean()),
              **{f"r_{a}": v for a, v in r.items()}, "fid_mnistcnn": fid(f_real, f_fake)}
    if ref_spread is not None:
        k = min(100, len(yte))
        z = torch.randn(10 * k, model.nz, generator=torch.Generator().manual_seed(20_000 + seed))
        same = torch.arange(k).repeat_interleave(10)
        with torch.no_grad():
            f_div, _ = clf.features_and_probs(model.generate(yte[same], lvte[same], z))
        scores["diversity"] = spread(f_div, same) / ref_spread
    return scores


def prepare() -> dict[str, Tensor]:
    """mnist5k's project split with measured attributes and tercile levels (cuts from training)."""
    from ..metrics.classifier import split_mnist5k

    xtr, ytr, xte, yte = split_mnist5k()
    atr = measure(xtr)
    cuts = tercile_cuts(atr, ytr)
    return {"xtr": xtr, "ytr": ytr, "xte": xte, "yte": yte, "lvtr": levels(atr, ytr, cuts),
            "lvte": levels(measure(xte), yte, cuts), "cuts": cuts, "stats": class_stats(atr, ytr)}


def save_model(model: TextToImage, s: Settings, condition: str, data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "settings": asdict(s), "condition": condition, "vocab": list(VOCAB),
                "cuts": {a: v.tolist() for a, v in data["cuts"].items()}, "state": model.state_dict()}, path)


def load_model(path: str | Path) -> tuple[TextToImage, dict[str, Any]]:
    """A model written by `gankit study text2image --save DIR` (DIR/text2image.pt, or the file)."""
    from . import read_model_file

    ck, p = read_model_file(path, FORMAT, "text-to-image model", "gankit study text2image --save DIR", "text2image.pt")
    if tuple(ck.get("vocab", ())) != VOCAB:
        raise CheckpointError(f"{p}: not a gankit text-to-image model")
    s = Settings(**{k: tuple(v) if k == "conditions" else v for k, v in ck["settings"].items()})
    model = TextToImage(s.nz, s.width)
    model.load_state_dict(ck["state"])
    return model.eval(), ck


def is_model(path: str | Path) -> bool:
    p = Path(path)
    return (p / "text2image.pt").is_file() or (p.is_file() and p.name == "text2image.pt")


def run(settings: Settings = REDUCED, save: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    data = prepare()
    ceiling = attribute_r(data["xte"], data["yte"], data["lvte"], data["stats"])
    ref_spread = real_spread(data["xtr"], data["ytr"], data["lvtr"])
    rows = []
    for seed in range(settings.seeds):
        enc = train_text_encoder(settings.text_steps, seed, settings.keep_word)
        for cond in settings.conditions:
            model = train(data["xtr"], data["ytr"], data["lvtr"], settings, seed, cond, enc)
            scores = evaluate(model, data["xte"], data["yte"], data["lvte"], data["stats"], seed, ref_spread)
            rows.append({"condition": cond, "seed": seed, **scores})
            log(f"{cond} seed={seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
            if save is not None and seed == 0 and cond == "gan-cls":
                save_model(model, settings, cond, data, save / "text2image.pt")
                save_caption_grid(model, save / "captions.png")
    return {"settings": asdict(settings), "test_examples": len(data["yte"]), "rows": rows,
            "real_ceiling": ceiling, "summary": summarize(rows)}


METRICS = ("class_accuracy", "r_thickness", "r_slant", "r_size", "fid_mnistcnn", "diversity")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return summarize_by(rows, "condition", METRICS)


def markdown(res: dict[str, Any]) -> str:
    st = res["settings"]
    lines = [f"One sample per held-out mnist5k digit ({res['test_examples']}) from that digit's caption; mean ± std "
             f"over seeds; {st['steps']} GAN steps, width {st['width']}. Class accuracy by the project digit CNN; "
             "r = Pearson correlation of asked level (thin/upright/small = -1, thick/slanted/large = +1) with the "
             "measured, class-standardised attribute; FID with digit-CNN features vs the held-out digits; "
             "diversity = spread of 10 samples per caption over the spread of real digits sharing a caption "
             "(digit-CNN features; 0 = one image per caption).", "",
             "| model | seeds | class accuracy | r thickness | r slant | r size | FID (mnistcnn) | diversity |",
             "|---|---|---|---|---|---|---|---|"]

    def fmt(v: tuple[float, float], pct: bool = False) -> str:
        m, sd = v
        sd = 0.0 if math.isnan(sd) else sd
        return f"{100 * m:.1f} ± {100 * sd:.1f} %" if pct else f"{m:.2f} ± {sd:.2f}"

    for s in res["summary"]:
        cells = [fmt(s["class_accuracy"], True), *(fmt(s[f"r_{a}"]) for a in ATTRIBUTES), fmt(s["fid_mnistcnn"]),
                 fmt(s["diversity"])]
        name = {"gan-cls": "GAN-CLS (matching-aware D)", "gan-int": "conditional D only"}.get(s["condition"],
                                                                                             s["condition"])
        lines.append(f"| {name} | {s['seeds']} | " + " | ".join(cells) + " |")
    conds = {r["condition"] for r in res["rows"]}
    if {"gan-cls", "gan-int"} <= conds and len(res["rows"]) > 2:
        from .augment import paired_t

        def delta(k: str) -> str:
            by = {c: [r[k] for r in sorted(res["rows"], key=lambda r: r["seed"]) if r["condition"] == c]
                  for c in ("gan-cls", "gan-int")}
            d, pv = paired_t(by["gan-cls"], by["gan-int"])
            scale, unit = (100, " pts") if k == "class_accuracy" else (1, "")
            ptxt = "" if math.isnan(pv) else f", p {pv:.3f}"
            return f"{scale * d:+.2f}{unit}{ptxt}"

        lines.append("| Δ GAN-CLS − conditional D (paired t over seeds) | | "
                     + " | ".join(delta(k) for k in METRICS) + " |")
    c = res["real_ceiling"]
    lines.append("| real held-out digits (ceiling) | - | - | "
                 + " | ".join(f"{c[a]:.2f}" for a in ATTRIBUTES) + " | 0 | 1 |")
    return "\n".join(lines) + "\n"


def write(res: dict[str, Any], out: Path, model: TextToImage | None = None) -> None:
    """text2image.md/.csv/.json and text2image.png: r per attribute for each model vs the ceiling."""
    from . import write_tables

    plt = write_tables(res, out, "text2image", markdown(res))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    names = list(ATTRIBUTES)
    width = 0.8 / (len(res["summary"]) + 1)
    for j, s in enumerate(res["summary"]):
        ax.bar([i + j * width for i in range(3)], [s[f"r_{a}"][0] for a in names], width,
               yerr=[0 if math.isnan(s[f"r_{a}"][1]) else s[f"r_{a}"][1] for a in names], capsize=3,
               label=s["condition"])
    ax.bar([i + len(res["summary"]) * width for i in range(3)], [res["real_ceiling"][a] for a in names], width,
           label="real digits", color="grey")
    ax.set_xticks([i + width * len(res["summary"]) / 2 for i in range(3)], names)
    ax.set_ylabel("r(asked level, measured)")
    ax.set_title("Do generated digits follow the caption's attributes?")
    ax.axhline(0, color="black", lw=0.8)
    ax.legend(fontsize=8, loc="lower center", ncol=3)
    fig.tight_layout()
    fig.savefig(out / "text2image.png", dpi=120)
    plt.close(fig)


GRID_CAPTIONS = ("a thin two", "a thick two", "an upright seven", "a slanted seven", "a small zero", "a large zero",
                 "a thin slanted four", "a thick upright large eight")


def save_caption_grid(model: TextToImage, path: Path, texts: tuple[str, ...] = GRID_CAPTIONS, n: int = 10) -> None:
    """One row per caption, the same n noises in every row, captions in the PNG's text chunk."""
    from ..monitor.images import grid, save_png

    x = torch.cat([model.sample_text(t, n, seed=0) for t in texts])
    save_png(grid(x, nrow=n, scale=2), path, {"rows": " | ".join(texts)})
