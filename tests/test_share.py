"""One seed per image (`gankit sample --seeds`), sharing a model (`gankit export`, `gankit.load`
of an export folder, traced copies), the public callbacks and what TensorBoard receives."""

import logging
import sys

import pytest

import gankit
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
