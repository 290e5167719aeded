"""`gankit eval`'s table: each result with its direction (↑ higher is better, ↓ lower), what real
data scores against itself in the same features, and one line on what it measures. The JSON
(`--json`, and eval.json in a run folder) holds the same numbers and more."""

from __future__ import annotations

from typing import Any

# result-name prefix -> (direction, what it measures); the first matching prefix wins
MEANINGS: list[tuple[str, str, str]] = [
    ("fid_", "↓", "Fréchet distance of Gaussians fitted to real and generated features (0: same mean and covariance)"),
    ("intra_fid_", "↓", "FID within each class (real class k vs samples asked for k), averaged"),
    ("kid_", "↓", "kernel distance: unbiased MMD² (cubic kernel) in the same features; 0 = same, noise can dip < 0"),
    ("is_", "↑", "Inception Score: confident and varied class predictions (at most the number of classes)"),
    ("precision_", "↑", "fidelity: share of samples inside the real data's k-NN manifold"),
    ("recall_", "↑", "diversity: share of real examples inside the samples' k-NN manifold"),
    ("density_", "↑", "how many real neighbourhoods hold each sample (about 1 for real data)"),
    ("coverage_", "↑", "share of real examples with a sample in their neighbourhood"),
    ("classes_covered_", "↑", "classes drawn at least a tenth as often as a fair share"),
    ("kl_uniform_", "↓", "KL divergence of the predicted classes' histogram from uniform"),
    ("confidence_", "↑", "mean top-class probability of the classifier on the samples (real digits: ~0.99)"),
    ("class_hist_", "", "samples per predicted class"),
    ("cond_acc_per_class_", "↑", "per class: share drawn as the class asked for"),
    ("cond_acc_", "↑", "share of samples the classifier puts in the class they were asked for"),
    ("modes_", "↑", "modes with at least one high-quality sample"),
    ("high_quality_", "↑", "% of samples within 3 std of a mode"),
    ("reverse_kl_", "↓", "KL of the high-quality samples' mode histogram from uniform"),
    ("kl_uniform_stacked_", "↓", "KL of the 1000 stacked-MNIST modes' histogram from uniform"),
    ("psnr", "↑", "peak signal-to-noise ratio of outputs against held-out targets (dB)"),
    ("ssim", "↑", "structural similarity of outputs and held-out targets (1 = identical)"),
    ("class_accuracy_", "↑", "share of outputs the classifier names as the target's class"),
    ("r_", "↑", "correlation of a measured attribute with the one the caption asked for"),
    ("wer_", "↓", "word error rate: share of words the recogniser hears as another word"),
    ("fd_dinov2_", "↓", "FD_DINOv2: Fréchet distance in DINOv2 features (closer to human judgement than FID)"),
    ("fd_", "↓", "Fréchet distance in the recogniser's features"),
    ("diversity_", "↑", "spread of samples for one condition, relative to real data's (1 = as varied)"),
    ("heldout_accuracy", "↑", "share of held-out images (never trained on) the classifier names right"),
    ("auroc", "↑", "area under the ROC curve: normal vs anomalous held-out examples (0.5 = chance)"),
]


def meaning(key: str) -> tuple[str, str]:
    for prefix, arrow, text in MEANINGS:
        if key.startswith(prefix):
            return arrow, text
    return "", ""


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"
    if isinstance(v, list):
        if len(v) > 10:
            return f"{len(v)} values, {_fmt(min(v))}..{_fmt(max(v))}"
        return " ".join(_fmt(x) for x in v)
    return str(v)


def table(result: dict[str, Any]) -> str:
    """The result as aligned text lines: metric | value (± std) | better | real vs real | meaning."""
    base = result.get("real_vs_real", {})
    skip = {"protocol", "warnings", "skipped", "real_vs_real", "task"}
    rows = []
    for key, v in result.items():
        if key in skip or key.endswith("_std") or isinstance(v, dict):
            continue
        value = _fmt(v)
        std = result.get(f"{key}_std")
        if isinstance(std, float):
            value += f" ± {_fmt(std)}"
        arrow, text = meaning(key)
        rows.append((key, value, arrow, _fmt(base[key]) if key in base else "", text))
    if not rows:
        return ""
    head = ("metric", "value", "better", "real vs real", "what it measures")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in [head, *rows]]
    p = result.get("protocol", {})
    where = p.get("run") or p.get("samples") or ""
    # a family's held-out scores (anomaly, semi-supervised) count held-out images, not samples
    count = f"{p['n_fake']} samples" if "n_fake" in p else f"{p['n']} held-out images" if "n" in p else "? samples"
    what = count + (f" of {where}" if where else "")
    if "step" in p:
        what += f" (step {p['step']}{', EMA generator' if p.get('ema') else ''})"
    against = f" against {p['reference']} ({p.get('n_real', '?')} examples)" if "reference" in p else ""
    feats = f", features: {p['extractor']}" if "extractor" in p else ""
    if feats and "extractor_weights" in p:  # which weights: numbers under other weights are not comparable
        feats += f" (weights {p['extractor_weights']})"
    out = [f"{what}{against}{feats}", *lines]
    if base and "real_vs_real" in p:
        out.append(f"real vs real: {p['real_vs_real']}")
    return "\n".join(out)
