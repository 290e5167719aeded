"""One seed per image (`gankit sample --seeds`), sharing a model (`gankit export`, `gankit.load`
of an export folder, traced copies), the public callbacks and what TensorBoard receives."""

import logging
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.training.loop import fit

FIXED = ["train.precision=fp32", "train.channels_last=off", "train.threads=2"]  # no autotune timing


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny DCGAN run that also writes TensorBoard events, sample grids and one periodic eval."""
    from conftest import tiny_config

    out = tmp_path_factory.mktemp("share") / "run"
    cfg = tiny_config("dcgan_mnist_fast", "train.tensorboard=true", "train.sample_every=2", "train.eval_every=4",
                      "train.eval_n=300", *FIXED, steps=4)
    fit(cfg, out)
    return out


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    from conftest import tiny_config

    out = tmp_path_factory.mktemp("share") / "cond"
    fit(tiny_config("cdcgan_mnist", *FIXED, steps=2), out)
    return out


# --- one seed per image ------------------------------------------------------------------------

def test_parse_seeds():
    assert gankit.parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    assert gankit.parse_seeds(" 7 ") == [7] and gankit.parse_seeds("5,5") == [5, 5]


@pytest.mark.parametrize("spec,message", [("3-1", "runs backwards"), ("a", "not a seed"), ("", "empty"),
                                          ("-1", "not a seed"), ("0-3,,4", "not a seed"),
                                          ("0-4294967296", "seeds go up to")])
def test_bad_seed_specs_are_one_line_errors(run, tmp_path, capsys, spec, message):
    assert main(["sample", str(run), "--seeds", spec, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_seeds_are_the_studios_seeds_with_metadata(run, tmp_path):
    g = gankit.load(run)
    assert main(["sample", str(run), "--seeds", "0-3,10", "--out", str(tmp_path / "s.npy")]) == 0
    x = torch.from_numpy(np.load(tmp_path / "s.npy"))
    for k, s in enumerate([0, 1, 2, 3, 10]):  # exactly the single-seed sample (each its own forward)
        assert torch.equal(x[k: k + 1], g.sample(1, seed=s))
    # --n N --seed S is seeds S..S+N-1: the CLI's image k is the studio's seed S+k
    assert main(["sample", str(run), "--n", "3", "--seed", "1", "--out", str(tmp_path / "n.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "n.npy"), x[1:4].numpy())
    assert main(["sample", str(run), "--seeds", "0-3,10", "--out", str(tmp_path / "grid.png")]) == 0
    with Image.open(tmp_path / "grid.png") as im:
        assert im.text["gankit:seeds"] == "0,1,2,3,10" and im.text["gankit:model_hash"] == g.hash
    assert main(["sample", str(run), "--seeds", "2,5", "--out", str(tmp_path / "dir")]) == 0
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["000002.png", "000005.png"]
    with Image.open(tmp_path / "dir" / "000005.png") as im:
        assert im.text["gankit:seed"] == "5" and im.text["gankit:generated"] == "true"


def test_conditional_seeds_follow_the_studios_label_rule(cond_run, tmp_path):
    g = gankit.load(cond_run)
    x = g.sample_seeds("8-11")
    for k, s in enumerate(range(8, 12)):  # the studio's seed s without a label draws class s mod K
        assert torch.equal(x[k: k + 1], g.sample(1, seed=s, label=s % g.n_classes))
    assert torch.equal(g.sample_seeds([3], label=7), g.sample(1, seed=3, label=7))
    assert main(["sample", str(cond_run), "--seeds", "8-11", "--out", str(tmp_path / "c.png")]) == 0
    with Image.open(tmp_path / "c.png") as im:
        assert im.text["gankit:labels"] == "8,9,0,1"


# --- Python API --------------------------------------------------------------------------------

def test_progress_by_default_and_public_callbacks(tmp_path, capsys):
    rows = []

    class Rows(gankit.Callback):
        def on_log(self, row):
            rows.append(row["step"])

    sets = ["train.tensorboard=false", "train.sample_every=0", "train.log_every=2", "data.n=512", *FIXED]
    gankit.train("toy_ring", steps=4, out=tmp_path / "a", overrides=sets, callbacks=[Rows()])
    assert "4/4" in capsys.readouterr().err and rows == [2, 4]
    gankit.train("toy_ring", steps=2, out=tmp_path / "b", overrides=sets, progress=False)
    assert "2/2" not in capsys.readouterr().err
    g = gankit.load(tmp_path / "a")
    assert g.to("cpu") is g and g.device.type == "cpu"
    with pytest.raises(gankit.GankitError, match="unknown device"):
        g.to("warp-drive")


# --- TensorBoard -------------------------------------------------------------------------------

def test_tensorboard_gets_images_hparams_eval_and_every_scalar(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    ea.Reload()
    tags = ea.Tags()
    assert [i.step for i in ea.Images("samples")] == [2, 4]
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(ea.PluginTagToContent("hparams"))
    scalars = set(tags["scalars"])
    assert len(scalars) > 12 and {"d_loss", "grad_norm_d", "collapsed", "run/images_per_s"} <= scalars
    assert any(t.startswith("eval/fid_") for t in scalars)


def test_missing_tensorboard_says_so_once(tmp_path, monkeypatch, caplog):
    from gankit.monitor.log import RunLog

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with caplog.at_level(logging.WARNING, logger="gankit"):
        RunLog(tmp_path, tensorboard=True).close()
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "TensorBoard cannot be imported" in warned[0].getMessage()
    assert not (tmp_path / "tb").exists()
