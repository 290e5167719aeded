"""Captions of digits from measured attributes: "a thick slanted seven".

Three attributes are measured on every digit (`measure`): stroke thickness (2 x ink area / ink
perimeter, in pixels), slant (the shear of the ink's second moments, in degrees, positive =
leaning right) and size (the ink's radius of gyration, in pixels). Each is cut at its per-class
terciles (`tercile_cuts`, from the training digits): the low third gets the low word (thin /
upright / small), the high third the high word (thick / slanted / large), the middle third no
word. A caption is a digit and three levels in {-1, 0, +1}; `tokens` writes it as word ids for
the text encoder, `caption_index` numbers the 270 captions there are.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import GankitError

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRIBUTES = {"thickness": ("thin", "thick"), "slant": ("upright", "slanted"), "size": ("small", "large")}
VOCAB = ("<pad>", "a", *DIGITS, *(w for pair in ATTRIBUTES.values() for w in pair))
WORD_ID = {w: i for i, w in enumerate(VOCAB)}
MAX_WORDS = 5  # "a" + three attribute words + the digit


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
