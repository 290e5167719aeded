"""`gankit study augment`: the subset, the classifier's use of synthetic data, the statistics, and
a tiny end-to-end run that writes its table, CSV and plot."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gankit.cli import main
from gankit.metrics.classifier import evaluate_accuracy, split_mnist5k
from gankit.studies import anomaly, augment


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


# --- anomaly detection ----------------------------------------------------------------------------

def test_auroc_and_knn_score():
    assert anomaly.auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1])) == 1.0
    assert anomaly.auroc(torch.tensor([0.9, 0.8, 0.2, 0.1]), torch.tensor([0, 0, 1, 1])) == 0.0
    bank = torch.zeros(10, 1, 28, 28)
    knn = anomaly.KNN(bank, k=3)
    far, near = torch.ones(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)
    s = knn.score(torch.cat([near, far]))
    assert s[0] == 0 and s[1] == pytest.approx(28.0)  # sqrt(784) from every stored digit


@pytest.mark.parametrize("method", ["ganomaly", "fanogan", "autoencoder"])
def test_each_detector_trains_scores_saves_and_loads(method, tmp_path):
    s = anomaly.Settings(seeds=1, classes=(0,), steps=3, encoder_steps=2, nz=8, width=8)
    x = torch.rand(20, 1, 28, 28) * 2 - 1
    m = anomaly.TRAINERS[method](x, s, 0)
    scores = m.score(x[:5])
    assert scores.shape == (5,) and torch.isfinite(scores).all()
    anomaly.save_model(m, method, 0, s, x, tmp_path / "m.pt")
    m2, info = anomaly.load_model(tmp_path / "m.pt")
    assert torch.allclose(m2.score(x[:5]), scores) and info["threshold"] > 0


def test_gankit_anomaly_scores_a_folder_and_rejects_bad_models(tmp_path, capsys):
    s = anomaly.Settings(nz=8, width=8)
    bank = torch.rand(30, 1, 28, 28) * 2 - 1
    anomaly.save_model(anomaly.KNN(bank), "knn", 3, s, bank, tmp_path / "knn.pt")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    from PIL import Image

    Image.fromarray(((bank[0, 0].numpy() + 1) * 127.5).astype("uint8")).save(imgs / "seen.png")
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(imgs / "white.png")
    assert main(["anomaly", str(tmp_path / "knn.pt"), str(imgs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "file,score,anomalous"
    rows = {r.split(",")[0]: r.split(",") for r in lines[2:]}
    assert float(rows["seen.png"][1]) < float(rows["white.png"][1]) and rows["white.png"][2] == "1"
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    assert main(["anomaly", str(tmp_path / "bad.pt"), str(imgs)]) == 2
    assert "cannot read anomaly model" in capsys.readouterr().err
    assert main(["anomaly", str(tmp_path / "missing.pt"), str(imgs)]) == 2


def test_tiny_anomaly_study_end_to_end(tmp_path, capsys):
    args = ["study", "anomaly", "--classes", "1", "--seeds", "1", "--steps", "3", "--out", str(tmp_path), "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| 1 |" in out and "| **mean** |" in out
    assert (tmp_path / "anomaly.png").exists() and len((tmp_path / "anomaly.csv").read_text().splitlines()) == 2
    assert main(["study", "anomaly", "--classes", "12"]) == 2
