"""The command line: contracts from docs/design.md (exit codes, outputs, one-line errors)."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main
from gankit.config import recipe_names

FAST = ["--set", "model.width=8", "--set", "train.tensorboard=false", "--set", "data.n=200", "--batch", "8", "-q"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--steps", "3", "--out", str(out), *FAST]) == 0
    return out


@pytest.mark.parametrize("what,expect", [("configs", "dcgan_mnist_fast"), ("models", "dcgan_seed"),
                                         ("losses", "wgan_gp"), ("datasets", "mnist5k"),
                                         ("remedies", "--set model.pack=4"), ("models", "stylegan")])
def test_list(capsys, what, expect):
    assert main(["list", what]) == 0
    assert expect in capsys.readouterr().out


@pytest.mark.parametrize("recipe", recipe_names())
def test_every_recipe_dry_runs(capsys, recipe):
    assert main(["train", recipe, "--dry-run"]) == 0
    assert "GFLOP per training step" in capsys.readouterr().out


def test_dry_run_prints_config_and_sizes(capsys):
    assert main(["train", "dcgan_mnist", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "name: dcgan_seed" in out and "parameters" in out and "GFLOP per training step" in out


def test_sample_npy_png_and_folder(run_dir, tmp_path, capsys):
    import json

    assert main(["sample", str(run_dir), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    x = np.load(tmp_path / "s.npy")
    assert x.dtype == np.float32 and x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert main(["sample", str(run_dir), "--n", "5", "--out", str(tmp_path / "s.png")]) == 0
    with Image.open(tmp_path / "s.png") as im:
        assert im.text["gankit:generated"] == "true" and "gankit:model_hash" in im.text
    assert main(["sample", str(run_dir), "--n", "3", "--out", str(tmp_path / "dir")]) == 0
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    # an image folder can be scored like a run
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "dir"), "--metrics", "classes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sum(out["class_hist_mnistcnn_3"]) == 3 and out["protocol"]["samples"].endswith("dir")
    # the same seed gives the same samples
    main(["sample", str(run_dir), "--n", "5", "--out", str(tmp_path / "t.npy")])
    assert np.array_equal(np.load(tmp_path / "t.npy"), x)


def test_resume_via_cli(run_dir, capsys):
    assert main(["train", "--resume", str(run_dir), "--steps", "4", "-q"]) == 0
    assert "at step 4" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["train", "--set", "train.lr_g=1"], "unknown config key train.lr_g; did you mean optim.lr_g?"),
    (["train", "--data", "/no/such/dir"], "neither a registered dataset"),
    (["train", "nope_recipe"], "unknown recipe 'nope_recipe'"),
    (["sample", "/no/run", "--out", "x.npy"], "no such run folder"),
    (["train", "--resume", "/no/run"], "no checkpoint to resume"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_label_on_unconditional_run(run_dir, capsys, tmp_path):
    assert main(["sample", str(run_dir), "--label", "3", "--out", str(tmp_path / "x.npy")]) == 2
    assert "not conditional" in capsys.readouterr().err


def test_corrupt_checkpoint_via_cli(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    assert main(["sample", str(bad), "--out", str(tmp_path / "x.npy")]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err


def test_python_dash_m_and_data_swap(tmp_path):
    np.save(tmp_path / "mine.npy", np.random.default_rng(0).integers(0, 256, (40, 16, 16)).astype(np.uint8))
    out = tmp_path / "run"
    argv = ["train", "dcgan_mnist_fast", "--data", str(tmp_path / "mine.npy"), "--steps", "2", "--out", str(out)]
    r = subprocess.run([sys.executable, "-m", "gankit", *argv, *FAST], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "checkpoints" / "latest.pt").exists()
    import gankit

    g = gankit.load(out)
    assert g.sample(4, seed=1).shape == (4, 1, 16, 16)  # the nets adapted to the user's 16x16 data
    assert g.interpolate(0, 1, steps=5).shape == (5, 1, 16, 16)


def test_eval_points_file_and_toy_run(tmp_path, capsys):
    import json

    from gankit.config import DataConfig
    from gankit.data import build

    ring = build(DataConfig(source="ring"))
    np.save(tmp_path / "pts.npy", ring.x[:2500].numpy())
    assert main(["eval", str(tmp_path / "pts.npy"), "--against", "ring", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["modes_pacgan_2.5k"] == 8 and out["protocol"]["samples"].endswith("pts.npy")
    run = tmp_path / "toy"
    assert main(["train", "toy_ring", "--steps", "3", "--out", str(run), "-q", "--set", "train.tensorboard=false"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "modes_pacgan_500" in out and out["protocol"]["step"] == 3
    assert json.loads((run / "eval.json").read_text()) == out


def test_eval_bad_inputs(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.npy")]) == 2
    assert "no such" in capsys.readouterr().err
    np.save(tmp_path / "rgb.npy", np.zeros((10, 3, 28, 28), np.float32))
    assert main(["eval", str(tmp_path / "rgb.npy")]) == 2
    assert "samples have shape (3, 28, 28)" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "rgb.npy"), "--metrics", "fidd"]) == 2
    assert "unknown metric" in capsys.readouterr().err


def test_bench_modes_table(tmp_path, capsys):
    import json

    argv = ["bench", "modes", "--data", "ring", "--seeds", "2", "--steps", "5", "--json", str(tmp_path / "b.json")]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "toy_ring (measured)" in table and "GAN (PacGAN Table 1)" in table and "6.30" in table
    res = json.loads((tmp_path / "b.json").read_text())
    assert [r["seed"] for r in res["runs"]] == [0, 1] and all(r["steps"] == 5 for r in res["runs"])


def test_bench_stacked_table(tmp_path, capsys):
    import json

    argv = ["bench", "stacked", "--seeds", "1", "--steps", "2", "--set", "model.width=8",
            "--json", str(tmp_path / "s.json")]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "dcgan_stacked (measured)" in table and "PacDCGAN2 (PacGAN Table 3)" in table
    run = json.loads((tmp_path / "s.json").read_text())["runs"][0]
    # two steps from a random start cannot cover 1000 modes evenly
    assert 1 <= run["modes"] <= 1000 and run["kl_uniform"] > 0.5



def test_bench_remedies_one_table_of_variants(tmp_path, capsys):
    import json

    argv = ["bench", "remedies", "--data", "ring", "--seeds", "1", "--steps", "3", "--only", "vanilla,pacgan,best",
            "--json", str(tmp_path / "r.json"), "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| vanilla |" in table and "| PacGAN (m=4) |" in table and "| ring_best |" in table
    assert "unrolled" not in table and "--set model.pack=4" in table
    res = json.loads((tmp_path / "r.json").read_text())
    assert [r["recipe"] for r in res["rows"]] == ["toy_ring", "toy_ring", "ring_best"]
    assert (tmp_path / "runs" / "PacGAN" / "seed0" / "config.yaml").exists()
    assert main(["bench", "remedies", "--only", "nothing-like-this", "--steps", "1"]) == 2
