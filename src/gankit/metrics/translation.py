"""Scores of image-to-image runs on held-out data (`data.split=test`: every 10th example, never
trained on), with the baselines each task is judged against:

- pix2pix, inpainting, super-resolution: PSNR / SSIM to the target, class accuracy of the output
  (the project digit CNN names the target's digit), FID of outputs vs targets (digit CNN features);
  inpainting also the masked-region PSNR of filling the hole with the training set's mean image;
  super-resolution also bicubic up-scaling's scores; colourisation the grey image's (luma copied
  to R, G and B).
- CycleGAN thin -> thick: class preserved, share judged thick by the stroke-width measure
  (`data.paired.stroke_width`, threshold halfway between the thin and thick training sets), and
  the cycle reconstruction error |G_BA(G_AB(a)) - a|.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import GankitError


def psnr(x: Tensor, y: Tensor, mask: Tensor | None = None) -> float:
    """Mean PSNR (dB) over images in [-1, 1], measured on the [0, 1] scale; within `mask` if given."""
    d = ((x - y) / 2) ** 2
    if mask is None:
        mse = d.flatten(1).mean(1)
    else:
        m = mask.expand_as(d)
        mse = (d * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp(min=1)
    return float((10 * torch.log10(1 / mse.clamp(min=1e-10))).mean())


def ssim(x: Tensor, y: Tensor) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) on [0, 1],
    averaged over the windows that lie inside the image (no padding, as the reference code)."""
    if min(x.shape[-2:]) < 11:
        raise GankitError(f"SSIM needs images of at least 11x11 pixels, got {tuple(x.shape[-2:])}")
    # float64: the variances are differences of nearly equal means, which float32 gets wrong by
    # about C2 itself on flat regions
    x, y = (x.double() + 1) / 2, (y.double() + 1) / 2
    c = x.shape[1]
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5.0) ** 2) / (2 * 1.5**2))
    w = (g[:, None] * g[None, :]) / g.sum() ** 2
    w = w.expand(c, 1, 11, 11).to(x)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(s.mean())


def bicubic(a: Tensor, size) -> Tensor:
    """The classic up-scaling baseline (pixel centres aligned, as average pooling's)."""
    return F.interpolate(a, size=tuple(size), mode="bicubic", align_corners=False).clamp(-1, 1)


def _digit_reference(target: Tensor) -> tuple[Any, Tensor]:
    """The digit CNN and its features of the targets: what every `_digit_scores` of one target
    set shares (inpainting scores nine hole families against the same digits)."""
    from .classifier import load_digit_classifier

    net = load_digit_classifier()
    with torch.no_grad():
        return net, net.features_and_probs(target)[0]


def _digit_scores(out: Tensor, target: Tensor, labels: Tensor | None, notes: dict[str, Any],
                  prefix: str = "", ref: tuple[Any, Tensor] | None = None) -> dict[str, float]:
    """Class accuracy and FID in the digit CNN's space (28x28 grayscale only). What makes FID
    unreliable or impossible (too few examples) goes into notes["warnings"] / notes["skipped"].
    `ref`: `_digit_reference(target)`, when the caller scores several outputs against one target."""
    if out.shape[1:] != (1, 28, 28):
        return {}
    from .distances import fid_report

    net, ft = ref or _digit_reference(target)
    with torch.no_grad():
        fo, po = net.features_and_probs(out)
    res: dict[str, Any] = {}
    value, warns, why = fid_report(ft, fo)
    if why:
        notes["skipped"][f"{prefix}fid_mnistcnn"] = why
    else:
        res["fid_mnistcnn"] = value
        notes["warnings"] += [f"{prefix}fid_mnistcnn: {w}" for w in warns]
    if labels is not None:
        res["class_accuracy"] = float((po.argmax(1) == labels).float().mean())
    return res


def evaluate_task(run, n: int = 0, seed: int = 0) -> dict[str, Any]:
    """Scores of a loaded image-to-image run (api.Generator) on its data's held-out split."""
    from ..data import build as build_data
    from ..nets import masks as holes

    cfg = run.cfg
    name = cfg.model.name
    test_cfg = copy.deepcopy(cfg.data)
    test_cfg.split = "test"
    try:
        test = build_data(test_cfg)
    except Exception as e:  # a user folder has no split: score it as it is
        raise GankitError(f"cannot build the held-out data for {cfg.data.source}: {e}") from None
    train_cfg = copy.deepcopy(cfg.data)
    g = run.net.eval()
    b = test.x[:n] if n else test.x
    res: dict[str, Any] = {"task": name, "n": len(b), "data": f"{cfg.data.source} (split {test_cfg.split})"}
    notes: dict[str, Any] = {"warnings": [], "skipped": {}}
    with torch.no_grad():
        if name == "inpaint":
            mean_img = build_data(train_cfg).x.mean(0, keepdim=True)
            labels = test.y[: len(b)] if test.y is not None else None
            trained = holes.parse(cfg.model.masks)
            ref = _digit_reference(b) if b.shape[1:] == (1, 28, 28) else None
            res["masks_trained"] = cfg.model.masks
            # the run's own hole mix first (the headline scores), then every family alone, those it
            # never trained on included: how far the inpainter generalises beyond its training holes
            for fam in [None, *holes.mask_families]:
                mask = holes.draw(fam or cfg.model.masks, len(b), b.shape[-2], b.shape[-1],
                                  torch.Generator().manual_seed(seed))
                a = b * (1 - mask)
                out = run.translate(b, mask)
                part = {"psnr_hole": psnr(out, b, mask), "psnr_hole_mean_fill": psnr(a + mean_img * mask, b, mask),
                        "ssim": ssim(out, b)}
                # per family, FID's warnings would repeat the headline's: kept for the headline only
                part.update(_digit_scores(out, b, labels, notes if fam is None else {"warnings": [], "skipped": {}},
                                          ref=ref))
                if fam is None:
                    res.update(part)
                    continue
                tag = "trained" if fam in trained else "held_out"
                res.update({f"{k}_{tag}_{fam}": v for k, v in part.items()})
        elif name == "cyclegan":
            from ..data.paired import stroke_width

            a = test.a[:n] if n else test.a
            out = run.translate(a)
            back = torch.cat([g["ba"](out[i: i + 500]) for i in range(0, len(out), 500)])
            train = build_data(train_cfg)
            thr = float((stroke_width(train.a).mean() + stroke_width(train.x).mean()) / 2)
            res.update(thick_share=float((stroke_width(out) > thr).float().mean()),
                       thick_share_of_inputs=float((stroke_width(a) > thr).float().mean()),
                       stroke_threshold=thr, cycle_l1=float((back - a).abs().mean()))
            labels = test.meta.get("a_labels")
            digit = _digit_scores(out, test.x, labels[: len(a)] if labels is not None else None, notes)
            res.update({"class_preserved" if k == "class_accuracy" else k: v for k, v in digit.items()})
        else:  # pix2pix and srgan: paired
            a = test.a[: len(b)]
            out = run.translate(a)
            res.update(psnr=psnr(out, b), ssim=ssim(out, b))
            labels = test.y[: len(b)] if test.y is not None else None
            res.update(_digit_scores(out, b, labels, notes))
            if a.shape[1] == 1 and b.shape[1] == 3 and a.shape[-2:] == b.shape[-2:]:  # colourisation
                gray = a.expand_as(b)  # the baseline that adds no colour: the luma in all three channels
                res.update(gray_psnr=psnr(gray, b), gray_ssim=ssim(gray, b))
            if name == "srgan":
                bic = bicubic(a, b.shape[-2:])
                base = {"psnr": psnr(bic, b), "ssim": ssim(bic, b), **_digit_scores(bic, b, labels, notes, "bicubic_")}
                res.update({f"bicubic_{k}": v for k, v in base.items()})
    res["protocol"] = {"step": run.step, "ema": run.ema, "model_hash": run.hash, "extractor": "mnistcnn"}
    return res | {k: v for k, v in notes.items() if v}


def held_out_grid(run, seed: int = 0, n: int = 10):
    """A picture of the held-out scores: `families.translation.example_rows` of n test examples, one
    per column (super-resolution adds bicubic up-scaling under the output)."""
    from ..data import build as build_data
    from ..families.translation import example_rows
    from ..monitor.images import grid

    cfg = copy.deepcopy(run.cfg.data)
    cfg.split = "test"
    with torch.no_grad():
        rows = example_rows(run.net.eval(), run.cfg.model.name, build_data(cfg), n, seed,
                            bicubic=run.cfg.model.name == "srgan", masks=run.cfg.model.masks)
    return grid(torch.cat([r.float() for r in rows]), nrow=n, scale=3)
