"""One seed per image (`gankit sample --seeds`), sharing a model (`gankit export`, `gankit.load`
of an export folder, traced copies), the public callbacks and what TensorBoard receives."""

import json
import logging
import sys

import numpy as np
import pytest
import torch
import yaml
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


# --- export ------------------------------------------------------------------------------------

def test_export_round_trip_card_and_cli(run, tmp_path, capsys):
    (run / "eval.json").write_text(json.dumps({"fid_mnistcnn_300": 123.5, "classes_covered_mnistcnn_300": 3,
                                               "class_hist_mnistcnn_300": [1, 2], "protocol": {"n": 300,
                                               "run": "/home/someone/private"}}))
    try:
        assert main(["export", str(run), "--out", str(tmp_path / "ex")]) == 0
    finally:
        (run / "eval.json").unlink()
    assert "gankit sample" in capsys.readouterr().out
    ex = tmp_path / "ex"
    assert sorted(p.name for p in ex.iterdir()) == ["README.md", "config.json", "generator.safetensors"]
    g, e = gankit.load(run), gankit.load(ex)
    assert e.ema and e.step == g.step and e.hash == g.hash and e.shape == g.shape
    assert torch.equal(e.sample_seeds(range(6)), g.sample_seeds(range(6)))
    assert torch.equal(e.sample(5, seed=2), g.sample(5, seed=2))
    meta = json.loads((ex / "config.json").read_text())
    assert meta["config"]["model"]["name"] == "dcgan" and meta["shape"] == [1, 28, 28]
    assert meta["model_hash"] == g.hash and meta["metrics"]["values"]["fid_mnistcnn_300"] == 123.5
    card = (ex / "README.md").read_text()
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["library_name"] == "gankit" and front["license"] == "other"
    assert {"gan", "pytorch"} <= set(front["tags"]) and front["datasets"] == ["ylecun/mnist"]
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert {"type": "fid_mnistcnn_300", "name": "fid_mnistcnn_300", "value": 123.5} in metrics
    assert "gankit sample ex --seeds 0-15 --out grid.png" in card and "private" not in card + json.dumps(meta)
    # the export samples like the run, and the raw generator is another export
    assert main(["sample", str(ex), "--seeds", "0-3", "--out", str(tmp_path / "e.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "e.npy"), g.sample_seeds(range(4)).numpy())
    gankit.load(run, ema=False).save(tmp_path / "raw")
    assert not gankit.load(tmp_path / "raw").ema
    assert torch.equal(gankit.load(tmp_path / "raw").sample(3), gankit.load(run, ema=False).sample(3))


def test_export_errors_are_one_line(run, tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["export", str(run), "--out", str(tmp_path / "busy")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    (tmp_path / "project").mkdir()  # another tool's config.json is not an earlier export to replace
    (tmp_path / "project" / "config.json").write_text('{"compilerOptions": {}}')
    (tmp_path / "project" / "README.md").write_text("my project")
    assert main(["export", str(run), "--out", str(tmp_path / "project")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "project" / "README.md").read_text() == "my project"
    gankit.export(run, tmp_path / "ex")
    assert main(["sample", str(tmp_path / "ex"), "--no-ema", "--out", str(tmp_path / "x.png")]) == 2
    assert "EMA generator only" in capsys.readouterr().err
    weights = tmp_path / "ex" / "generator.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight: safetensors still parses it, the hash does not match
    weights.write_bytes(bytes(data))
    with pytest.raises(gankit.GankitError, match="SHA-256"):
        gankit.load(tmp_path / "ex")
    (tmp_path / "ex" / "config.json").write_text("{")
    assert main(["sample", str(tmp_path / "ex"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot read it" in err and err.count("\n") == 1


def test_traced_formats_are_refused_for_image_to_image(tmp_path):
    from conftest import tiny_config

    from gankit.api import Generator
    from gankit.nets import build

    cfg = tiny_config("pix2pix_edges2digits")
    g = Generator(build(cfg.model, (1, 28, 28))[0], cfg, (1, 28, 28), 0, False)
    with pytest.raises(gankit.GankitError, match="draw from noise"):
        g.save(tmp_path / "p", format="torchscript")
    assert not (tmp_path / "p").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_equals_eager(cond_run, tmp_path):
    out = gankit.export(cond_run, tmp_path / "ts", format="torchscript")
    meta = json.loads((out / "config.json").read_text())
    assert meta["traced"]["inputs"] == ["z", "label"] and meta["traced"]["batch"] == "any"
    assert meta["traced"]["check"]["max_abs_diff"] <= 1e-4
    g = gankit.load(cond_run)
    m = torch.jit.load(str(out / "generator.pt"))
    z, y = torch.cat([g.noise(1, s) for s in range(7)]), torch.arange(7) % g.n_classes
    with torch.no_grad():
        assert (m(z, y) - g.sample_seeds(range(7))).abs().max() <= 1e-4


def test_onnx_equals_eager(run, tmp_path):
    pytest.importorskip("onnx", reason="onnx not installed: pip install 'gankit[export]'")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install 'gankit[export]'")
    out = gankit.export(run, tmp_path / "ox", format="onnx")
    assert json.loads((out / "config.json").read_text())["traced"]["check"]["max_abs_diff"] <= 1e-4
    g = gankit.load(run)
    z = torch.cat([g.noise(1, s) for s in range(3)]).numpy()
    got = ort.InferenceSession(str(out / "generator.onnx"), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]
    assert np.abs(got - g.sample_seeds(range(3)).numpy()).max() <= 1e-4


def test_onnx_missing_names_the_extra(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx fails as if not installed
    assert main(["export", str(run), "--out", str(tmp_path / "o"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'gankit[export]'" in err and err.count("\n") == 1 and not (tmp_path / "o").exists()


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
