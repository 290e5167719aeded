"""`gankit study augment`: the subset, the classifier's use of synthetic data, the statistics, and
a tiny end-to-end run that writes its table, CSV and plot."""

import math

import pytest
import torch
from scipy import stats

from gankit.cli import main
from gankit.metrics.classifier import evaluate_accuracy, split_mnist5k
from gankit.studies import augment


def test_labelled_subset_is_stratified_and_seeded():
    x, y = torch.randn(300, 1, 4, 4), torch.arange(3).repeat(100)
    a, ya = augment.labelled_subset(x, y, 7, seed=1)
    b, _ = augment.labelled_subset(x, y, 7, seed=1)
    c, _ = augment.labelled_subset(x, y, 7, seed=2)
    assert torch.bincount(ya).tolist() == [7, 7, 7]
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="fewer than 101"):
        augment.labelled_subset(x, y, 101, seed=0)


def test_paired_t_matches_scipy_and_handles_degenerate_input():
    a, b = [0.9, 0.8, 0.85, 0.95], [0.7, 0.75, 0.8, 0.9]
    d, p = augment.paired_t(a, b)
    assert d == pytest.approx(0.0875) and p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert math.isnan(augment.paired_t([0.5], [0.4])[1])
    assert math.isnan(augment.paired_t([0.5, 0.6], [0.4, 0.5])[1])  # no spread in the differences


def test_synthetic_half_of_the_batch_is_learned_from():
    """A stand-in for a perfect GAN (more real digits as 'synthetic') must help a classifier that
    has one digit per class; this is the path the study's GAN samples take."""
    xtr, ytr, xte, yte = split_mnist5k()
    x, y = augment.labelled_subset(xtr, ytr, 1, seed=0)
    extra = augment.labelled_subset(xtr, ytr, 30, seed=1)
    alone = evaluate_accuracy(augment.train_classifier(x, y, 60, seed=0), xte, yte)
    helped = evaluate_accuracy(augment.train_classifier(x, y, 60, seed=0, synth=extra), xte, yte)
    assert helped > alone + 0.1, (alone, helped)


def test_tiny_study_end_to_end(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "augment", "--sizes", "2", "--seeds", "2", "--gan-steps", "2", "--clf-steps", "2",
                 "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "| 2 | 2 |" in text and "p " in text
    for f in ("augment.md", "augment.csv", "augment.json", "augment.png"):
        assert (out / f).exists(), f
    rows = (out / "augment.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("per_class,seed,real,real+classic,real+gan")
    assert main(["study", "augment", "--sizes", "2,x"]) == 2
    assert main(["study", "augment", "--sizes", "500"]) == 2
