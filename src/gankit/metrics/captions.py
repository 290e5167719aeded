"""Scores of a text-to-image generator on held-out captioned digits (protocol in each name):

- `class_accuracy_mnistcnn`: the project digit classifier names the captioned digit;
- `r_thickness`, `r_slant`, `r_size`: Pearson r between the asked level (-1 low word, +1 high
  word) and the attribute measured on the sample, over the held-out captions that name that
  attribute, each attribute standardised within its class first (digit shape does not count);
- `fid_mnistcnn`: FID in the digit CNN's features against the held-out digits;
- `diversity_mnistcnn`: ten samples per caption, their spread in the same features over the
  spread of real digits sharing a caption (1 = as varied as real digits, 0 = one image per
  caption). One sample per caption cannot show a G that ignores z; this can.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.captions import ATTRIBUTES, caption_index, levels, measure


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


def score(model, xte: Tensor, yte: Tensor, lvte: Tensor, stats: dict[str, Tensor],
             seed: int = 0, ref_spread: float | None = None, notes: dict[str, Any] | None = None) -> dict[str, float]:
    """One sample per held-out digit, from that digit's full caption: class accuracy, attribute r,
    FID against the held-out digits (project digit-CNN features). Those all pass a G that draws
    one image per caption; `diversity` does not: ten samples for each of the first 100 held-out
    captions, their `spread` over the real digits' `ref_spread` (1 = as varied as real digits
    sharing a caption, 0 = one image per caption).

    `notes` ({"warnings": [], "skipped": {}}): FID's warnings go there, and FID is None with its
    reason when it cannot be computed (too few digits); without `notes` that raises TooFewSamples."""
    from ..metrics.classifier import load_digit_classifier
    from ..metrics.distances import fid_noted

    z = torch.randn(len(yte), model.nz, generator=torch.Generator().manual_seed(10_000 + seed))
    fake = torch.cat([model.generate(yte[i: i + 500], lvte[i: i + 500], z[i: i + 500])
                      for i in range(0, len(yte), 500)])
    clf = load_digit_classifier()
    with torch.no_grad():
        f_fake, p = clf.features_and_probs(fake)
        f_real, _ = clf.features_and_probs(xte)
    r = attribute_r(fake, yte, lvte, stats)
    fd = fid_noted(f_real, f_fake, notes, "fid_mnistcnn")
    scores = {"class_accuracy": float((p.argmax(1) == yte).float().mean()),
              **{f"r_{a}": v for a, v in r.items()}, "fid_mnistcnn": fd}
    if ref_spread is not None:
        k = min(100, len(yte))
        z = torch.randn(10 * k, model.nz, generator=torch.Generator().manual_seed(20_000 + seed))
        same = torch.arange(k).repeat_interleave(10)
        with torch.no_grad():
            f_div, _ = clf.features_and_probs(model.generate(yte[same], lvte[same], z))
        scores["diversity"] = spread(f_div, same) / ref_spread
    return scores


def evaluate_captions(g: Any, n: int = 0, seed: int = 0) -> dict[str, Any]:
    """`gankit eval RUN` of a text-to-image run: `score` on the held-out digits (data.split=test
    of the run's data; all of it for a source without a split), captioned with the run's own
    tercile cuts; diversity relative to the training digits. `n` > 0: n digits, evenly spaced."""
    from ..data import build, held_out

    net = g.net
    train, test = build(g.cfg.data), held_out(g.cfg.data, n)
    if test.y is None or train.y is None:
        raise ValueError("text-to-image scores need labelled digits")
    cuts = {a: net.cuts[k].cpu() for k, a in enumerate(ATTRIBUTES)}
    stats = {a: net.stats[k].cpu() for k, a in enumerate(ATTRIBUTES)}
    xte, yte = test.x, test.y
    lvte = levels(measure(xte), yte, cuts)
    ref = real_spread(train.x, train.y, levels(measure(train.x), train.y, cuts))
    notes: dict[str, Any] = {"warnings": [], "skipped": {}}
    res = score(net, xte, yte, lvte, stats, seed, ref, notes)
    names = {"class_accuracy": "class_accuracy_mnistcnn", "fid_mnistcnn": "fid_mnistcnn",
             "diversity": "diversity_mnistcnn"}
    out: dict[str, Any] = {names.get(k, k): v for k, v in res.items() if k != "fid_mnistcnn" or v is not None}
    out["ceiling_real"] = {f"r_{a}": v for a, v in attribute_r(xte, yte, lvte, stats).items()}
    undefined = [k for k, v in [*res.items(), *out["ceiling_real"].items()] if k.startswith("r_") and math.isnan(v)]
    if undefined:  # pearson of < 2 items or of a constant: no correlation to report
        notes["warnings"].append(f"{', '.join(sorted(set(undefined)))}: undefined among {len(yte)} held-out digits "
                                 "(fewer than 2 captions name the attribute, or it does not vary): null")
    out["protocol"] = {"held_out": f"{g.cfg.data.source} (split {test.meta['split']})", "n": len(yte), "seed": seed,
                       "samples": "one per held-out digit, from its full caption; diversity: 10 per caption, "
                                  "first 100 captions", "features": "project digit CNN (mnistcnn)"}
    return out | {k: v for k, v in notes.items() if v}
