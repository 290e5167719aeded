"""Speed switches: each is a config option that changes how a step runs, not what it computes
(up to rounding), the autotuner's choice is recorded and does not disturb the run, and the speed
benchmark's reference step is the same algorithm."""

import json

import pytest
import torch
from conftest import tiny_config

from gankit import bench_speed
from gankit.errors import ConfigError, GankitError
from gankit.training import autotune as speed
from gankit.training import precision
from gankit.training.loop import fit, prepare, resume
from gankit.training.state import new_state, read_checkpoint
from gankit.training.step import train_step


def _params(run):
    ck = read_checkpoint(run / "checkpoints" / "latest.pt")
    return {f"{p}.{k}": v for p in ("g", "d") for k, v in ck[p].items()}


def test_candidates_never_include_emulated_bf16(monkeypatch):
    cfg, _ = prepare(tiny_config("dcgan_mnist_fast"))
    cpu = torch.device("cpu")
    monkeypatch.setattr(speed, "native_bf16", lambda d: False)
    assert speed.candidates(cfg, True, cpu) == [("fp32", "off"), ("fp32", "on")]
    monkeypatch.setattr(speed, "native_bf16", lambda d: True)
    assert ("bf16", "off") in speed.candidates(cfg, True, cpu)
    assert speed.candidates(cfg, False, cpu) == [("fp32", "off"), ("bf16", "off")]  # no convs: no layout
    cfg.train.precision, cfg.train.channels_last = "fp32", "on"
    assert speed.candidates(cfg, True, cpu) == [("fp32", "on")]


def test_autotune_is_recorded_and_does_not_disturb_the_run(tmp_path):
    fit(tiny_config("dcgan_mnist_fast", steps=3), tmp_path / "auto")
    start = json.loads((tmp_path / "auto" / "log.jsonl").read_text().splitlines()[0])
    chosen = start["autotune"]
    assert chosen["precision"] in ("fp32", "bf16") and chosen["channels_last"] in ("on", "off")
    saved = (tmp_path / "auto" / "config.yaml").read_text()
    assert f"precision: {chosen['precision']}" in saved and "auto" not in saved.split("train:")[1].split("\n  seed")[0]
    # the same run with the choice given explicitly: bit-identical, so timing trials moved no RNG
    assert f"threads: {chosen['threads']}" in saved  # the thread count is part of the choice (numerics)
    fit(tiny_config("dcgan_mnist_fast", f"train.precision={chosen['precision']}",
                    f"train.channels_last={chosen['channels_last']}", f"train.threads={chosen['threads']}",
                    steps=3), tmp_path / "explicit")
    a, b = _params(tmp_path / "auto"), _params(tmp_path / "explicit")
    assert all(torch.equal(a[k], b[k]) for k in a)


# D without BatchNorm: a conv bias just before BatchNorm has a true gradient of 0, so Adam's step
# for it is +-lr depending on rounding noise, in any two implementations
NO_D_BN = "model.norm_d=none"


@pytest.mark.parametrize("impl", ["foreach", "loop"])
def test_optimizer_kernels_agree(impl):
    def run(which):
        cfg, data = prepare(tiny_config("dcgan_mnist_fast", "train.precision=fp32", f"optim.impl={which}", NO_D_BN))
        s = new_state(cfg, data.shape, len(data))
        for _ in range(3):
            train_step(s, data.x)
        return [p.detach().clone() for p in (*s.g.parameters(), *s.d.parameters())]

    for a, b in zip(run("fused"), run(impl), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # an Adam step here is lr = 2e-4


def test_channels_last_computes_the_same_and_loads_anywhere(tmp_path):
    def run(layout):
        out = tmp_path / layout
        fit(tiny_config("dcgan_mnist_fast", "train.precision=fp32", f"train.channels_last={layout}", NO_D_BN,
                        steps=3), out)
        return _params(out)

    a, b = run("off"), run("on")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    from gankit import api

    assert api.load(tmp_path / "on").sample(4).shape == (4, 1, 28, 28)


def test_bf16_step_trains_with_fp32_losses():
    cfg, data = prepare(tiny_config("dcgan_mnist_fast", "train.precision=bf16"))
    s = new_state(cfg, data.shape, len(data))
    out = train_step(s, data.x)
    assert out.d_loss.dtype == torch.float32 and torch.isfinite(out.d_loss) and torch.isfinite(out.g_loss)
    assert all(p.dtype == torch.float32 for p in s.g.parameters())  # master weights stay fp32


def test_fp16_uses_a_loss_scaler_and_resumes_exactly(tmp_path):
    sets = ["train.precision=fp16", "train.batch=8", "data.n=64"]
    fit(tiny_config("mlp_mnist", *sets, steps=4), tmp_path / "straight")
    fit(tiny_config("mlp_mnist", *sets, steps=2), tmp_path / "split")
    resume(tmp_path / "split", ["train.steps=4"])
    ck = read_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    assert ck["scalers"] is not None and ck["scalers"][0]["scale"] > 0
    a, b = _params(tmp_path / "straight"), _params(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fp16_with_a_gradient_penalty_is_refused():
    with pytest.raises(ConfigError, match="fp16 cannot combine with gradient penalties"):
        prepare(tiny_config("wgan_gp_mnist", "train.precision=fp16"))


def test_bad_devices_are_clear_errors(monkeypatch):
    with pytest.raises(ConfigError, match="train.device='tpu'"):
        prepare(tiny_config("mlp_mnist", "train.device=tpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device"):
        precision.device_of("cuda")


def test_checkpoint_from_a_gpu_run_continues_on_the_cpu(tmp_path, monkeypatch):
    run = tmp_path / "r"
    fit(tiny_config("mlp_mnist", steps=2), run)
    ck_path = run / "checkpoints" / "latest.pt"
    ck = read_checkpoint(ck_path)
    ck["config"]["train"]["device"] = "cuda"  # as if saved on a GPU machine
    for key in ("precision", "channels_last"):  # and before these settings existed: they read as auto
        ck["config"]["train"].pop(key)
    torch.save(ck, ck_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = resume(run, ["train.steps=3"])
    assert res.step == 3
    assert "device: cpu" in (run / "config.yaml").read_text() and "precision: fp32" in (run / "config.yaml").read_text()


def test_compile_option_compiles_g_and_leaves_a_double_backward_d_eager(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    cfg, data = prepare(tiny_config("wgan_gp_mnist", "train.compile=true", "train.precision=fp32"))
    new_state(cfg, data.shape, len(data))
    assert len(compiled) == 1  # G only: GP differentiates D twice, which compiled graphs do not support
    compiled.clear()
    cfg, data = prepare(tiny_config("dcgan_mnist_fast", "train.compile=true", "train.precision=fp32"))
    new_state(cfg, data.shape, len(data))
    assert len(compiled) == 2


# --- the speed benchmark ------------------------------------------------------------------------

def test_flop_count_agrees_with_pytorchs_counter():
    from torch.utils.flop_counter import FlopCounterMode

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 1))
    x = torch.randn(8, 1, 28, 28)

    def step():
        net(x).sum().backward()

    with FlopCounterMode(display=False) as fc:
        step()
    assert bench_speed._flops_per_image(step, 8) == pytest.approx(fc.get_total_flops() / 8)


@pytest.mark.parametrize("recipe", ["mlp_mnist", "wgan_gp_mnist"])
def test_bench_speed_row(recipe):
    sets = ["model.width=8", "data.n=256"]
    row = bench_speed.measure(recipe, batch=16, windows=1, steps=1, warmup=1, overrides=sets)
    assert row["reference_images_per_s"] > 0 and row["gankit_images_per_s"] > 0
    # gankit skips work the obvious step does (a second G forward, D's weight gradients in the G step)
    assert 0 < row["gankit_gflop_per_image"] < row["reference_gflop_per_image"]
    text = bench_speed.format_speed({"machine": {"device": "cpu", "cpu_capability": "X", "native_bf16": False,
                                                 "threads": 2, "torch": torch.__version__, "matmul_fp32": 1.0},
                                     "rows": [row]})
    assert recipe in text and "fp32 matmul 1 GFLOP/s" in text


def test_bench_speed_refuses_recipes_without_a_reference():
    with pytest.raises(GankitError, match="no reference step for recipes with model.cond"):
        bench_speed.measure("cdcgan_mnist", batch=16, windows=1, steps=1, warmup=1,
                            overrides=["model.width=8", "data.n=256"])
