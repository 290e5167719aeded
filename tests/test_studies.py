"""`gankit study augment`: the subset, the classifier's use of synthetic data, the statistics, and
a tiny end-to-end run that writes its table, CSV and plot."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gankit.cli import main
from gankit.errors import DataError
from gankit.metrics.classifier import evaluate_accuracy, split_mnist5k
from gankit.studies import anomaly, augment


def test_labelled_subset_is_stratified_and_seeded():
    x, y = torch.randn(300, 1, 4, 4), torch.arange(3).repeat(100)
    a, ya = augment.labelled_subset(x, y, 7, seed=1)
    b, _ = augment.labelled_subset(x, y, 7, seed=1)
    c, _ = augment.labelled_subset(x, y, 7, seed=2)
    assert torch.bincount(ya).tolist() == [7, 7, 7]
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(DataError, match="fewer than 101"):
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
                 "--steps", "2", "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "| 2 | 2 |" in text and "p " in text
    assert "| labelled per class | seeds | real only | semi-supervised D" in text
    for f in ("augment.md", "augment.csv", "augment.json", "augment.png"):
        assert (out / f).exists(), f
    rows = (out / "augment.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("per_class,seed,real,real+classic,real+gan")
    assert "ssgan,real+pseudo_gan,real+filtered_gan,filtered_kept" in rows[0]
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


ANOMALY_TINY = ["model.z_dim=8", "model.width=8", "train.batch=16", "train.precision=fp32",
                "train.channels_last=off", "train.sample_every=0", "train.tensorboard=false"]


@pytest.mark.parametrize("recipe", ["ganomaly_mnist", "fanogan_mnist", "dknn_mnist"])
def test_anomaly_recipes_train_resume_exactly_score_and_evaluate(recipe, tmp_path, capsys):
    import gankit
    from gankit.families.anomaly import Detector
    from gankit.training.state import read_checkpoint

    sets = [*ANOMALY_TINY, "anomaly.gan_steps=1"] if recipe.startswith("fanogan") else ANOMALY_TINY
    gankit.train(recipe, out=tmp_path / "straight", steps=4, overrides=sets)
    gankit.train(recipe, out=tmp_path / "split", steps=2, overrides=sets)
    gankit.resume(tmp_path / "split", steps=4)
    a, b = (read_checkpoint(tmp_path / r / "checkpoints" / "latest.pt") for r in ("straight", "split"))
    assert all(torch.equal(a["g"][k], b["g"][k]) for k in a["g"])
    det = Detector(tmp_path / "straight")
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert det.score(x).shape == (5,) and torch.isfinite(det.score(x)).all() and det.normal_class == 3
    assert det.threshold > 0
    assert main(["eval", str(tmp_path / "straight"), "--n", "100", "--json"]) == 0
    res = __import__("json").loads(capsys.readouterr().out)
    assert 0 <= res["auroc"] <= 1 and res["protocol"]["normal_class"] == 3


def test_fanogan_encoder_stage_leaves_g_and_d_untouched(tmp_path):
    import gankit
    from gankit.families.anomaly import Detector
    from gankit.training.state import read_checkpoint

    sets = [*ANOMALY_TINY, "anomaly.gan_steps=2"]
    gankit.train("fanogan_mnist", out=tmp_path / "gan", steps=3, overrides=sets)
    gankit.resume(tmp_path / "gan", steps=5)
    ck3 = read_checkpoint(tmp_path / "gan" / "checkpoints" / "latest.pt")
    gankit.train("fanogan_mnist", out=tmp_path / "ref", steps=3, overrides=sets)
    ck = read_checkpoint(tmp_path / "ref" / "checkpoints" / "latest.pt")
    for k in ck["g"]:  # steps 3-4 trained only the encoder: G's own weights and BN statistics unchanged
        same = torch.equal(ck["g"][k], ck3["g"][k])
        assert same != k.startswith("e."), k
    assert all(torch.equal(ck["d"][k], ck3["d"][k]) for k in ck["d"])
    gankit.train("fanogan_mnist", out=tmp_path / "x", steps=2, overrides=sets)
    with pytest.raises(Exception, match="still in its GAN stage"):
        Detector(tmp_path / "x")
    with pytest.raises(Exception, match="use train.ema_beta=0"):  # an averaged G would lag its encoder
        gankit.train("fanogan_mnist", out=tmp_path / "y", steps=3, overrides=[*sets, "train.ema_beta=0.99"])


def test_gankit_anomaly_scores_a_folder_and_rejects_bad_runs(tmp_path, capsys):
    import gankit

    gankit.train("ganomaly_mnist", out=tmp_path / "run", steps=3, overrides=ANOMALY_TINY)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(imgs / "black.png")
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(imgs / "white.png")
    assert main(["anomaly", str(tmp_path / "run"), str(imgs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# ganomaly run of normal class 3") and lines[1] == "file,score,anomalous"
    assert {r.split(",")[0] for r in lines[2:]} == {"black.png", "white.png"}
    (tmp_path / "old.pt").write_bytes(b"an old study model")
    assert main(["anomaly", str(tmp_path / "old.pt"), str(imgs)]) == 2
    assert "retrain it as a run" in capsys.readouterr().err
    assert main(["anomaly", str(tmp_path / "missing"), str(imgs)]) == 2
    gankit.train("mlp_mnist", out=tmp_path / "mlp", steps=1, overrides=["model.width=8", "train.batch=16"])
    assert main(["anomaly", str(tmp_path / "mlp"), str(imgs)]) == 2
    assert "need a dknn, fanogan or ganomaly run" in capsys.readouterr().err


def test_tiny_anomaly_study_end_to_end(tmp_path, capsys):
    args = ["study", "anomaly", "--classes", "1", "--seeds", "1", "--steps", "3", "--out", str(tmp_path), "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| 1 |" in out and "| **mean** |" in out
    assert (tmp_path / "anomaly.png").exists() and len((tmp_path / "anomaly.csv").read_text().splitlines()) == 2
    assert main(["study", "anomaly", "--classes", "12"]) == 2
