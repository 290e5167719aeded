"""The Python API: import cost, train/load round trip, sampling determinism."""

import subprocess
import sys

import torch

import gankit


def test_import_is_light():
    code = "import sys, gankit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    assert out == "False"  # importing gankit does no work and loads no torch


def test_train_load_sample(tmp_path):
    run = gankit.train("mlp_mnist", steps=3, out=tmp_path / "r",
                       overrides=["model.width=8", "train.tensorboard=false", "data.n=100", "train.batch=8"])
    assert run.step == 3 and run.status == "done"
    g = gankit.load(tmp_path / "r")
    assert g.ema and g.step == 3
    a, b = g.sample(6, seed=3), g.sample(6, seed=3)
    assert torch.equal(a, b) and a.shape == (6, 1, 28, 28) and a.abs().max() <= 1
    assert not torch.equal(a, g.sample(6, seed=4))
    raw = gankit.load(tmp_path / "r", ema=False)
    assert not raw.ema and not torch.equal(raw.sample(6, seed=3), a)
    lin = g.interpolate(0, 1, steps=3, mode="linear")
    assert torch.allclose(lin[0], g.sample(1, seed=0)[0], atol=1e-6)
