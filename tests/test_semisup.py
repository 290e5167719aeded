"""The semi-supervised GAN family (Salimans et al. 2016): its losses, its data split (held out
never labelled, the labelled draw recorded), refusals, and a user's own labelled folder trained,
evaluated and classified end to end."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.errors import ConfigError
from gankit.losses import feature_matching, semisup_unsupervised_d

TINY = ["train.batch=16", "train.precision=fp32", "train.channels_last=off", "train.sample_every=0",
        "train.ckpt_every=0", "train.tensorboard=false", "train.log_every=10", "train.threads=1"]


def test_unsupervised_loss_and_feature_matching_exact_values():
    # K = 2 zero logits: Z = 2, D(x) = 2/3; 0.5 * (-log 2/3 - log 1/3)
    zero = torch.zeros(4, 2)
    assert semisup_unsupervised_d(real=zero, fake=zero).item() == pytest.approx(0.5 * (math.log(1.5) + math.log(3)))
    # a confident real (large logits) and a confident fake (very negative): loss -> 0
    assert semisup_unsupervised_d(real=torch.full((3, 4), 30.0), fake=torch.full((3, 4), -30.0)).item() < 1e-6
    real, fake = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    # means (2, 3) and (0, 1): ((2)^2 + (2)^2) / 2
    assert feature_matching(real=real, fake=fake).item() == pytest.approx(4.0)


def test_mnist5k_split_is_the_project_classifiers_and_the_labelled_draw_is_seeded():
    from gankit.api import make_config
    from gankit.data import build
    from gankit.families.semisup import split
    from gankit.metrics.classifier import split_mnist5k

    cfg = make_config("ssgan_mnist", overrides=["data.labels_per_class=10"], seed=3)
    data = build(cfg.data)
    lab, rest, test = split(cfg, data)
    xte, yte = split_mnist5k()[2:]
    assert torch.equal(data.x[test], xte) and torch.equal(data.y[test], yte) and len(test) == 1000
    assert len(lab) == 100 and torch.equal(torch.bincount(data.y[lab]), torch.full((10,), 10))
    assert not set(lab.tolist()) & set(test.tolist()) and not set(lab.tolist()) & set(rest.tolist())
    assert len(lab) + len(rest) == 4000
    again = split(make_config("ssgan_mnist", overrides=["data.labels_per_class=10"], seed=3), data)[0]
    other = split(make_config("ssgan_mnist", overrides=["data.labels_per_class=10"], seed=4), data)[0]
    assert torch.equal(lab, again) and not torch.equal(lab, other)


@pytest.mark.parametrize("sets,match", [
    (["data.labels_per_class=401"], r"class 0 has 400 training examples, fewer than 401"),
    (["data.labels_per_class=0"], r"needs data.labels_per_class >= 1"),
    (["data.split=train"], r"holds out its own test set"),
    (["loss.name=hinge"], r"its own \(K\+1\)-class loss"),
    (["model.cond=projection"], r"model.cond is not used by semisup models"),
])
def test_bad_options_are_one_line_errors(sets, match):
    from gankit.api import make_config
    from gankit.training.loop import prepare

    with pytest.raises(ConfigError, match=match) as e:
        prepare(make_config("ssgan_mnist", overrides=sets))
    assert "\n" not in str(e.value)


def test_unlabelled_data_is_refused(tmp_path):
    from gankit.api import make_config
    from gankit.training.loop import prepare

    np.savez(tmp_path / "x.npz", x=np.zeros((40, 1, 8, 8), np.uint8))
    with pytest.raises(ConfigError, match="needs class labels"):
        prepare(make_config("ssgan_mnist", data=str(tmp_path / "x.npz")))


def _shapes(root, per_class=15, size=12):
    """Three classes in sub-folders: a red square, a green disc, a blue bar, at random places on
    a background tinted with the class colour (so every pixel tells the class)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for name, colour in (("square", (230, 40, 40)), ("disc", (40, 210, 60)), ("bar", (50, 60, 240))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            cy, cx = rng.integers(3, size - 3, 2)
            if name == "square":
                m = (abs(yy - cy) <= 2) & (abs(xx - cx) <= 2)
            elif name == "disc":
                m = (yy - cy) ** 2 + (xx - cx) ** 2 <= 6
            else:
                m = (abs(yy - cy) <= 1) & (abs(xx - cx) <= 4)
            img = np.empty((size, size, 3), np.uint8)
            img[:] = np.array(colour) // 3
            img[m] = colour
            Image.fromarray(img).save(root / name / f"{i}.png")


def test_own_labelled_folder_trains_evaluates_and_classifies(tmp_path, capsys, caplog):
    import logging

    import gankit
    from gankit.families.semisup import Classifier

    _shapes(tmp_path / "shapes")
    caplog.set_level(logging.INFO, logger="gankit.note")
    run = tmp_path / "run"
    gankit.train("ssgan_mnist", data=str(tmp_path / "shapes"), out=run, steps=60, seed=1, progress=False,
                 overrides=[*TINY, "model.name=ssgan_conv", "model.width=8", "model.z_dim=16",
                            "data.labels_per_class=2"])
    assert any("held-out set = a seeded stratified 20% of each class" in r.message and "(9 images" in r.message
               for r in caplog.records)
    clf = Classifier(run)
    assert clf.classes == ["bar", "disc", "square"] and len(clf.labelled) == 6
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["protocol"]["n"] == 9 and res["protocol"]["labels_per_class"] == 2
    assert res["heldout_accuracy"] >= 8 / 9  # colour alone separates the classes: D must learn it
    assert main(["classify", str(run), str(tmp_path / "shapes" / "disc"), "--out", str(tmp_path / "l.csv")]) == 0
    lines = (tmp_path / "l.csv").read_text().splitlines()
    assert lines[0] == "file,class,probability" and len(lines) == 16
    assert sum(line.split(",")[1] == "disc" for line in lines[1:]) >= 14
    assert all(0.3 < float(line.split(",")[2]) <= 1 for line in lines[1:])
    # a bigger image is resized to the run's 12x12 before it is classified
    Image.open(tmp_path / "shapes" / "bar" / "0.png").resize((48, 48)).save(tmp_path / "big.png")
    capsys.readouterr()
    assert main(["classify", str(run), str(tmp_path / "big.png")]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("big.png,")


def test_classify_refuses_a_run_of_another_family(tmp_path, capsys):
    import gankit

    gankit.train("dcgan_mnist_fast", out=tmp_path / "dc", steps=1, progress=False,
                 overrides=["model.width=8", "train.batch=8", "data.n=64", *TINY[1:]])
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    assert main(["classify", str(tmp_path / "dc"), str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "needs a semi-supervised run" in err and "\n" not in err


def test_augment_labelled_changes_only_the_labelled_inputs(tmp_path):
    from gankit.api import make_config
    from gankit.training.loop import prepare
    from gankit.training.state import new_state
    from gankit.training.step import train_step

    _shapes(tmp_path / "shapes")
    seen = {}
    for aug in (False, True):
        cfg, data = prepare(make_config("ssgan_mnist", data=str(tmp_path / "shapes"), steps=1, overrides=[
            *TINY, "model.z_dim=8", "data.labels_per_class=2", f"semisup.augment_labelled={aug}"]))
        s = new_state(cfg, data.shape, len(data))
        s.cond = data.cond
        inputs = []
        s.d.register_forward_pre_hook(lambda m, a, inputs=inputs: inputs.append(a[0].detach().clone()))
        train_step(s, data.x)
        seen[aug] = inputs[0]  # the D phase's one forward: labelled, unlabelled, fake batches
    lab, rest = slice(0, 16), slice(16, 32)
    assert not torch.allclose(seen[False][lab], seen[True][lab])
    assert torch.equal(seen[False][rest], seen[True][rest])  # the unlabelled batch is not augmented
    assert seen[True][lab].min() >= -1 - 1e-5 and seen[True][lab].max() <= 1 + 1e-5


def test_ema_of_d_is_kept_saved_and_used_to_classify(tmp_path, capsys):
    import gankit
    from gankit.api import make_config
    from gankit.checkpoint import read_checkpoint
    from gankit.families.semisup import Classifier
    from gankit.training.loop import prepare
    from gankit.training.state import new_state
    from gankit.training.step import train_step

    _shapes(tmp_path / "shapes")
    sets = [*TINY, "model.z_dim=8", "data.labels_per_class=2", "train.d_ema_beta=0.9"]
    cfg, data = prepare(make_config("ssgan_mnist", data=str(tmp_path / "shapes"), steps=1, overrides=sets))
    s = new_state(cfg, data.shape, len(data))
    s.cond = data.cond
    before = [p.detach().clone() for p in s.d.parameters()]
    train_step(s, data.x)
    # the warm-up beta of step 0 is 1/10: the average moves 90 % of the way to the new weights
    for e, b, a in zip(s.d_ema.parameters(), before, s.d.parameters(), strict=True):
        assert torch.allclose(e, 0.1 * b + 0.9 * a, atol=1e-6) and not torch.equal(b, a)
    assert all(not p.requires_grad for p in s.d_ema.parameters())

    run = tmp_path / "run"
    gankit.train("ssgan_mnist", data=str(tmp_path / "shapes"), out=run, steps=12, seed=1, progress=False,
                 overrides=sets)
    ck = read_checkpoint(run / "checkpoints" / "latest.pt")
    key = next(k for k in ck["d"] if k.endswith("original1"))
    assert not torch.equal(ck["d_ema"][key], ck["d"][key])
    clf, raw = Classifier(run), Classifier(run, ema=False)
    assert clf.averaged and not raw.averaged
    assert torch.equal(clf.d.state_dict()[key], ck["d_ema"][key]) and torch.equal(raw.d.state_dict()[key], ck["d"][key])
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 <= res["heldout_accuracy_raw_d"] <= 1 and res["protocol"]["classifier"].startswith("D's EMA (beta 0.9)")
    # a family whose product is G does not read train.d_ema_beta, so it is refused, not ignored
    with pytest.raises(ConfigError, match="train.d_ema_beta is not used by"):
        make_config("dcgan_mnist_fast", overrides=["train.d_ema_beta=0.9"])
