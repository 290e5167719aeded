"""D-feature k-NN (`dknn_mnist`): the k-NN score, the detector on a run folder, and anomaly
detection on a user's own labelled data with a seeded held-out split."""

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import build, held_out
from gankit.data.files import held_out_index, split
from gankit.errors import GankitError
from gankit.families.anomaly import Detector
from gankit.nets.anomaly import knn_distance

TINY = ["model.z_dim=8", "model.width=8", "train.batch=16", "train.precision=fp32", "train.channels_last=off",
        "train.sample_every=0", "train.tensorboard=false", "train.threads=1"]


def test_knn_distance_exact_values_and_leave_one_out():
    bank = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    f = torch.tensor([[0.0, 0.0], [6.0, 8.0]])
    # (6, 8) is sqrt(52), sqrt(73) and 10 from the three bank rows
    assert torch.allclose(knn_distance(f, bank, 1), torch.tensor([0.0, 52 ** 0.5]))
    assert torch.allclose(knn_distance(f, bank, 2), torch.tensor([1.5, (52 ** 0.5 + 73 ** 0.5) / 2]))
    # each bank row's own zero distance is skipped: its nearest other rows are at 3 and 4, 3 and 5, 4 and 5
    assert torch.allclose(knn_distance(bank, bank, 2, exclude_self=True), torch.tensor([3.5, 4.0, 4.5]))
    with pytest.raises(GankitError, match="at least 4 training examples"):
        knn_distance(f, bank, 3, exclude_self=True)


def test_held_out_index_is_a_seeded_tenth_of_each_class():
    y = torch.tensor([0] * 30 + [1] * 50 + [2] * 3 + [3])
    idx = held_out_index(y, len(y))
    assert torch.equal(idx, held_out_index(y, len(y)))  # the same split every time
    assert [int((y[idx] == c).sum()) for c in range(4)] == [3, 5, 1, 0]  # >= 1 of a class of 2+, none of 1
    assert len(set(idx.tolist())) == len(idx) and not torch.equal(idx, torch.tensor([0, 1, 2, 30, 31, 32, 33, 34, 80]))
    assert len(held_out_index(None, 40)) == 4


def _labelled_set(root, kind):
    """60 28x28 gray images of three kinds (dark, bright, half-bright) in the user format `kind`;
    class 0 is the dark one."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    base = np.array([30, 220, 120])[y]
    x = np.clip(base[:, None, None] + rng.normal(0, 12, (60, 28, 28)), 0, 255).astype(np.uint8)
    if kind == "folder":
        for i, (im, c) in enumerate(zip(x, y, strict=True)):
            (root / f"kind{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(im).save(root / f"kind{c}" / f"{i}.png")
        return root
    if kind == "npz":
        np.savez(root / "set.npz", x=x, y=y)
        return root / "set.npz"
    import gzip

    for name, arr, magic in (("set-images-idx3-ubyte.gz", x, 2051), ("set-labels-idx1-ubyte.gz", y, 2049)):
        dims = arr.shape
        header = np.array([magic, *dims], ">i4").tobytes()
        with gzip.open(root / name, "wb") as f:
            f.write(header + arr.astype(np.uint8).tobytes())
    return root / "set-images-idx3-ubyte.gz"


@pytest.mark.parametrize("kind", ["folder", "npz", "idx"])
def test_user_data_split_is_disjoint_and_said(kind, tmp_path, caplog):
    src = _labelled_set(tmp_path, kind)
    whole = build(DataConfig(source=str(src), split="train"))  # a user's set has no split of its own...
    assert len(whole) == 60 and len(held_out(DataConfig(source=str(src), split="train"))) == 60
    with caplog.at_level(logging.INFO, logger="gankit.note"):  # ...the anomaly families cut one
        train = split(whole, "train", src)
    test = split(whole, "test", src)
    assert "data.split=train" in caplog.text and "54 of 60" in caplog.text
    assert (len(train), len(test)) == (54, 6) and test.y.tolist() == [0, 0, 1, 1, 2, 2]
    rows = {tuple(r.tolist()) for r in whole.x.flatten(1)}
    assert len(rows) == 60  # noise makes every image distinct, so membership below is exact
    tr, te = {tuple(r.tolist()) for r in train.x.flatten(1)}, {tuple(r.tolist()) for r in test.x.flatten(1)}
    assert not tr & te and tr | te == rows


def test_dknn_on_a_users_labelled_folder_trains_evaluates_held_out_and_scores(tmp_path, capsys):
    src = _labelled_set(tmp_path / "data", "folder")
    run = tmp_path / "run"
    assert main(["train", "dknn_mnist", "--data", str(src), "--out", str(run), "--steps", "3",
                 "--set", "data.normal_class=0", *[a for s in TINY for a in ("--set", s)]]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    # the held-out tenth: 2 dark (normal) and 4 other images; dark vs bright is trivially separable
    assert res["protocol"]["n"] == 6 and "split test: a seeded tenth of each class" in res["protocol"]["held_out"]
    assert res["auroc"] == 1.0
    det = Detector(run)
    assert len(det.training_images) == 18 and det.bank.shape == (18, 16 * 49)
    train_scores = det.score(det.training_images, training=True)
    # leave-one-out: each training image's own zero distance is dropped, so its score is the mean
    # over its k nearest *other* images, above the plain k-NN score that counts itself
    plain = det.score(det.training_images, training=False)
    assert (train_scores > plain).all()
    assert det.threshold == pytest.approx(float(torch.quantile(train_scores, 0.95)))
    assert main(["anomaly", str(run), str(src / "kind1")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# dknn run of normal class 0") and len(lines) == 2 + 20
    assert all(r.endswith(",1") for r in lines[2:])  # every bright image is flagged


def test_dknn_recipe_needs_labels_and_enough_examples(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((40, 28, 28), np.uint8))
    with pytest.raises(GankitError, match="needs class labels"):
        gankit.train("dknn_mnist", data=str(tmp_path / "x.npy"), out=tmp_path / "r", steps=1, overrides=TINY)
    with pytest.raises(GankitError, match="anomaly.k must be >= 1"):
        gankit.train("dknn_mnist", out=tmp_path / "r", steps=1, overrides=[*TINY, "anomaly.k=0"])


@pytest.mark.parametrize("rec_weight", [0.0, 10.0])
def test_dknn_reconstruction_term_trains_the_encoder_only_when_weighted(rec_weight, tmp_path):
    from gankit.training.state import read_checkpoint

    sets = [*TINY, f"anomaly.rec_weight={rec_weight}"]
    gankit.train("dknn_mnist", out=tmp_path / "a", steps=1, overrides=[*sets, "train.ckpt_every=1"])
    gankit.train("dknn_mnist", out=tmp_path / "b", steps=2, overrides=[*sets, "train.log_every=1"])
    a, b = (read_checkpoint(tmp_path / r / "checkpoints" / "latest.pt")["g"] for r in ("a", "b"))
    moved = not torch.equal(a["enc.0.weight"], b["enc.0.weight"])  # the encoder's step-2 update
    assert moved == (rec_weight > 0)
    assert not torch.equal(a["dec.1.weight"], b["dec.1.weight"])  # the decoder is the GAN's G either way
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert any("mse" in row for row in log)


def test_anomaly_study_runs_chosen_methods_only(tmp_path, capsys):
    args = ["study", "anomaly", "--classes", "1", "--seeds", "1", "--steps", "3", "--methods", "knn,dknn",
            "--out", str(tmp_path), "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| normal class | D-feature 5-NN (GAN) | 5-NN pixels (no GAN) |" in out and "| GANomaly" not in out
    row = (tmp_path / "anomaly.csv").read_text().splitlines()
    assert len(row) == 2 and "fanogan" not in row[0]
    assert main(["study", "anomaly", "--methods", "knn,ocsvm"]) == 2
    assert "--methods: unknown ocsvm" in capsys.readouterr().err
