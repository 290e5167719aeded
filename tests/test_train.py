"""Training: one step per registry entry and recipe, each stabiliser's effect, exact resume,
limits, interruption, divergence and collapse handling."""

import json
import math
import signal

import pytest
import torch
import yaml
from conftest import tiny_config

from gankit import config as C
from gankit.data import datasets
from gankit.errors import CheckpointError, ConfigError, GankitError, TrainingDiverged
from gankit.families import run_keys
from gankit.losses import losses
from gankit.training.loop import Callback, fit, prepare, resume
from gankit.training.state import new_state, read_checkpoint, state_from_checkpoint
from gankit.training.step import train_step


def make_state(*sets, recipe="mlp_mnist", steps=4):
    cfg, data = prepare(tiny_config(recipe, *sets, steps=steps))
    st = new_state(cfg, data.shape, len(data))
    return st, data.x


def rows(run, event="log"):
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r["event"] == event]


# --- one training step for every registry entry and every recipe ------------------------------

@pytest.mark.parametrize("loss", losses.names())
def test_one_step_per_loss(loss):
    st, x = make_state(f"loss.name={loss}", "loss.real_label=1.0")
    before = [p.clone() for p in st.g.parameters()]
    out = train_step(st, x, stats=True)
    assert torch.isfinite(out.d_loss) and torch.isfinite(out.g_loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, st.g.parameters(), strict=True))  # G moved
    assert st.step == 1


@pytest.mark.parametrize("name", datasets.names())
def test_one_step_per_dataset(name):
    recipe = "toy_ring" if name in ("ring", "grid") else "mlp_mnist"
    st, x = make_state(f"data.source={name}", recipe=recipe)
    out = train_step(st, x)
    assert torch.isfinite(out.d_loss) and out.fake.shape[1:] == x.shape[1:]


@pytest.mark.parametrize("model", ["mlp", "dcgan", "dcgan_seed"])
def test_one_step_per_image_model(model):
    st, x = make_state(f"model.name={model}", "train.batch=4")
    assert torch.isfinite(train_step(st, x, stats=True).g_loss)


@pytest.mark.parametrize("recipe", C.recipe_names())
def test_every_recipe_trains_two_steps(recipe, tmp_path):
    cfg = tiny_config(recipe, "train.batch=8", "train.sample_every=1", "train.ckpt_every=1", steps=2)
    res = fit(cfg, tmp_path / "run")
    assert res.step == 2 and res.status == "done"
    for f in ("config.yaml", "log.jsonl", "checkpoints/latest.pt", "progress.gif", "losses.png",
              "samples/step-0000002.png"):
        assert (tmp_path / "run" / f).exists(), f
    assert C.load_file(tmp_path / "run" / "config.yaml") == cfg
    keys = run_keys(cfg)
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["config"] == cfg.to_dict(keys)
    # the run's files list the shared sections and its family's own keys, nobody else's
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    listed = {f"{sec}.{k}" for sec, body in saved.items() if isinstance(body, dict) for k in body}
    assert listed == keys - {"recipe"}


# --- stabilisers: each switch has an effect you can see ----------------------------------------

def test_label_smoothing_changes_d_loss_by_exactly_its_term():
    a, x = make_state("loss.real_label=1.0", "model.dropout_d=0")
    b, _ = make_state("loss.real_label=0.9", "model.dropout_d=0")
    oa, ob = train_step(a, x, stats=True), train_step(b, x, stats=True)
    # t*sp(-r) + (1-t)*sp(r) - sp(-r) = (1-t)*(sp(r) - sp(-r)) = (1-t)*r  -> 0.1 * mean real logit
    assert (ob.d_loss - oa.d_loss).item() == pytest.approx(0.1 * oa.stats["d_real"].item(), abs=1e-5)


def test_n_critic_runs_that_many_d_steps_on_fresh_batches():
    st, x = make_state("train.n_critic=3", "loss.name=wgan_gp", "loss.real_label=1.0")
    train_step(st, x)
    train_step(st, x)
    assert st.d_steps == 6 and st.step == 2
    assert st.sampler.epoch * len(x) + st.sampler.pos == 6 * 16


def test_ttur_and_lr_decay():
    st, x = make_state("optim.lr_g=1e-4", "optim.lr_d=4e-4", "optim.lr_decay=linear", steps=4)
    assert st.opt_g.param_groups[0]["lr"] == 1e-4 and st.opt_d.param_groups[0]["lr"] == 4e-4
    train_step(st, x)
    train_step(st, x)
    assert st.opt_g.param_groups[0]["lr"] == pytest.approx(0.5e-4)  # halfway through 4 steps
    assert st.opt_d.param_groups[0]["lr"] == pytest.approx(2e-4)
    # improved-gan's schedule: constant for the first half here, then linearly to 0 at the horizon
    st, x = make_state("optim.lr_decay=linear", "optim.decay_start=0.5", "optim.decay_steps=8")
    lrs = []
    for _ in range(8):
        train_step(st, x)
        lrs.append(st.opt_g.param_groups[0]["lr"] / 2e-4)
    assert lrs == pytest.approx([1, 1, 1, 1, 0.75, 0.5, 0.25, 0])
    st, x = make_state("optim.lr_decay=exp", "optim.decay_gamma=0.5")
    for _ in range(3):
        train_step(st, x)
    assert st.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 / 8)


def test_gradient_clipping_bounds_the_applied_gradient():
    st, x = make_state("optim.grad_clip=0.001")
    seen = []
    orig = st.opt_d.step

    def spy(*a, **k):
        seen.append(torch.nn.utils.get_total_norm([p.grad for p in st.d.parameters()]).item())
        return orig(*a, **k)

    st.opt_d.step = spy
    out = train_step(st, x, stats=True)
    assert seen and max(seen) <= 0.001 * 1.0001
    assert out.stats["grad_norm_d"].item() > 0.001  # the logged norm is the one before clipping


def test_weight_clipping_and_weight_decay():
    st, x = make_state("loss.name=wgan", "loss.real_label=1.0")
    assert st.cfg.reg.weight_clip == 0.01
    train_step(st, x)
    assert max(p.abs().max().item() for p in st.d.parameters()) <= 0.01

    def d_norm(*sets):
        s, xx = make_state("model.dropout_d=0", *sets)
        for _ in range(5):
            train_step(s, xx)
        return sum(p.pow(2).sum() for p in s.d.parameters()).sqrt().item()

    assert d_norm("optim.weight_decay_d=50") < 0.99 * d_norm()


def test_ema_is_the_warmed_up_moving_average():
    st, x = make_state("train.ema_beta=0.999")
    g0 = [p.clone() for p in st.g.parameters()]
    train_step(st, x)
    beta = min(0.999, 1 / 10)  # warm-up at step 0: (1 + 0) / (10 + 0)
    for e, p0, p in zip(st.g_ema.parameters(), g0, st.g.parameters(), strict=True):
        assert torch.allclose(e, beta * p0 + (1 - beta) * p.detach(), atol=1e-7)


def test_instance_noise_reaches_d_and_anneals():
    a, x = make_state("model.dropout_d=0")
    b, _ = make_state("model.dropout_d=0", "reg.instance_noise=1.0", "reg.instance_noise_steps=2")
    assert train_step(a, x).d_loss != train_step(b, x).d_loss
    train_step(b, x)
    seen = []
    b.d.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].min().item()))
    train_step(b, x)  # step 2 of 2: noise annealed to zero, D sees values inside [-1, 1] again
    assert min(seen) >= -1.0


def test_gradient_penalty_and_lazy_r1_are_applied_on_schedule():
    st, x = make_state("loss.name=wgan_gp", "loss.real_label=1.0")
    assert "gp" in train_step(st, x).stats
    st, x = make_state("reg.r1_gamma=10", "reg.r1_every=3", "loss.name=hinge", "loss.real_label=1.0")
    has_r1 = ["r1" in train_step(st, x).stats for _ in range(6)]
    assert has_r1 == [True, False, False, True, False, False]


def test_keras_split_update_takes_two_d_optimizer_steps():
    st, x = make_state(recipe="mlp_mnist_keras")
    train_step(st, x)
    assert st.opt_d.state[next(iter(st.d.parameters()))]["step"].item() == 2
    assert st.opt_g.state[next(iter(st.g.parameters()))]["step"].item() == 1


def test_concat_forward_only_without_batchnorm():
    st, _ = make_state("model.norm_d=none")
    assert st.d.concat_ok
    st, _ = make_state("model.norm_d=batch")
    assert not st.d.concat_ok


# --- exact resume ---------------------------------------------------------------------------

RESUME_CASES = {
    "dcgan_bn_dropout_noise": ("dcgan_mnist_fast", ["model.dropout_d=0.2", "reg.instance_noise=0.1",
                                                    "reg.instance_noise_steps=5", "model.norm_d=batch"]),
    "wgan_gp_ncritic_decay": ("wgan_gp_mnist", ["train.n_critic=2", "optim.lr_decay=linear",
                                                 "optim.decay_steps=10"]),
    "mlp_r1_smoothing": ("mlp_mnist", ["reg.r1_gamma=1", "reg.r1_every=2", "optim.lr_decay=exp"]),
    "keras_split": ("mlp_mnist_keras", []),
    "toy_spectral_ragan": ("toy_ring", ["model.norm_d=spectral", "loss.name=ragan"]),
    "toy_unrolled_pacgan_mbd": ("toy_ring", ["train.unroll=2", "model.pack=2", "model.minibatch=disc"]),
    "dcgan_diffaug_mbstd": ("dcgan_mnist_fast", ["reg.diffaug=color,translation,cutout", "model.minibatch=stddev"]),
    "progan_growing": ("progan_mnist", ["model.grow_steps=1", "data.n=64"]),
    "stylegan_r1_mixing": ("stylegan_mnist", []),
    "sagan_attention": ("sagan_mnist", []),
    "toy_gman_mixture": ("toy_ring", ["model.n_d=2", "model.n_g=2", "loss.gman_lambda=1"]),
    "cdcgan_acgan_fresh_z": ("dcgan_mnist_fast", ["model.cond=acgan", "model.cond_g=cbn", "data.n=0",
                                                  "train.g_fresh_z=true"]),
}


def _tensors(run):
    ck = read_checkpoint(run / "checkpoints" / "latest.pt")
    out = {}
    for part in ("g", "d", "g_ema"):
        for k, v in (ck[part] or {}).items():
            out[f"{part}.{k}"] = v
    for part in ("opt_g", "opt_d"):
        for i, s in ck[part]["state"].items():
            for k, v in s.items():
                out[f"{part}.{i}.{k}"] = v
    return out, ck


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_resume_is_bit_identical(case, tmp_path):
    recipe, sets = RESUME_CASES[case]
    sets = sets + ["train.batch=8"]
    # 130 examples, batch 8: an epoch boundary falls inside the second half
    fit(tiny_config(recipe, *sets, "data.n=130", steps=10), tmp_path / "straight")
    fit(tiny_config(recipe, *sets, "data.n=130", steps=5), tmp_path / "split")
    resume(tmp_path / "split", ["train.steps=10"])
    a, cka = _tensors(tmp_path / "straight")
    b, ckb = _tensors(tmp_path / "split")
    assert cka["step"] == ckb["step"] == 10 and cka["sampler"] == ckb["sampler"]
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"differs after resume: {diff[:5]}"
    for rng in ("noise", "torch"):
        assert torch.equal(cka["rng"][rng], ckb["rng"][rng])


class StopAt(Callback):
    def __init__(self, step, action):
        self.at, self.action = step, action

    def on_step(self, state):
        if state.step == self.at:
            self.action(state)


def test_ctrl_c_saves_a_checkpoint_and_resume_continues_exactly(tmp_path):
    cfg = lambda n: tiny_config("mlp_mnist", steps=n)  # noqa: E731
    fit(cfg(8), tmp_path / "straight")
    res = fit(cfg(8), tmp_path / "int", [StopAt(3, lambda s: signal.raise_signal(signal.SIGINT))])
    assert res.status == "interrupted" and res.step == 3
    assert read_checkpoint(tmp_path / "int" / "checkpoints" / "latest.pt")["step"] == 3
    resume(tmp_path / "int")
    a, _ = _tensors(tmp_path / "straight")
    b, _ = _tensors(tmp_path / "int")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_seconds_limit_stops_and_checkpoints(tmp_path):
    cfg = tiny_config("mlp_mnist", "train.seconds=0.5", steps=0)
    res = fit(cfg, tmp_path / "r")
    assert res.status == "time_limit" and res.step > 0
    assert read_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")["step"] == res.step


def test_resume_rules(tmp_path):
    fit(tiny_config("mlp_mnist", steps=2), tmp_path / "r")
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(tiny_config("mlp_mnist", steps=2), tmp_path / "r")
    with pytest.raises(ConfigError, match="cannot change model.width when resuming"):
        resume(tmp_path / "r", ["model.width=16"])
    with pytest.raises(ConfigError, match="no checkpoint to resume"):
        resume(tmp_path / "nothing")
    res = resume(tmp_path / "r", ["train.steps=3"])
    assert res.step == 3


# --- failures are loud and keep the saved state ---------------------------------------------

def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    def poison(state):
        with torch.no_grad():
            next(state.d.parameters()).fill_(float("nan"))

    cfg = tiny_config("mlp_mnist", "train.ckpt_every=4", "train.log_every=2", steps=20)
    with pytest.raises(TrainingDiverged, match=r"non-finite .* between steps 4 and 6.*step 4\) is kept"):
        fit(cfg, tmp_path / "r", [StopAt(5, poison)])
    ck = read_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")
    assert ck["step"] == 4 and all(torch.isfinite(v).all() for v in ck["d"].values())
    assert rows(tmp_path / "r", "diverged")


def test_collapse_warning_when_samples_become_identical(tmp_path):
    def collapse(state):
        with torch.no_grad():
            for p in state.g.parameters():
                p.zero_()  # every z maps to the same image

    cfg = tiny_config("mlp_mnist", "train.log_every=1", "train.collapse_after=0", "train.collapse_ratio=0.01",
                      steps=4)
    fit(cfg, tmp_path / "r", [StopAt(1, collapse), StopAt(2, collapse), StopAt(3, collapse)])
    logged = rows(tmp_path / "r")
    assert logged[0]["diversity"] > 0.02 and "warning" not in logged[0]
    assert any("mode collapse" in r.get("warning", "") for r in logged[1:])


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    fit(tiny_config("mlp_mnist", steps=2), tmp_path / "r")
    ck = tmp_path / "r" / "checkpoints" / "latest.pt"
    good = ck.read_bytes()
    ck.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="latest.pt: cannot read checkpoint"):
        state_from_checkpoint(ck)
    ck.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        resume(tmp_path / "r")
    ck.write_bytes(good)
    # the same weights offered to a wider model
    from gankit.checkpoint import load_module as _load_module
    from gankit.nets import build

    g16, _ = build(C.from_dict({"model": {"name": "mlp", "width": 16}}).model, (1, 28, 28))
    with pytest.raises(CheckpointError, match=r"G in the checkpoint does not match this model \(.* is \("):
        _load_module(g16, read_checkpoint(ck)["g"], "G", ck)


def test_math_sanity_default_recipe_learns_something(tmp_path):
    """60 steps of the default recipe: D separates real from fake early, G's samples leave noise."""
    cfg = tiny_config(None, "model.width=16", "train.batch=32", "data.n=1000", steps=60)
    fit(cfg, tmp_path / "r")
    logged = rows(tmp_path / "r")
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in logged)
    # D learns to score real above fake: the game is being played, not stuck
    assert sum(r["d_real"] > r["d_fake"] for r in logged) >= 0.8 * len(logged)


def test_periodic_eval_keeps_best_and_does_not_change_training(tmp_path):
    plain = tiny_config("toy_ring", steps=6)
    evald = tiny_config("toy_ring", "train.eval_every=2", "train.eval_n=300", steps=6)
    fit(plain, tmp_path / "plain")
    fit(evald, tmp_path / "eval")
    a, _ = _tensors(tmp_path / "plain")
    b, ckb = _tensors(tmp_path / "eval")
    assert all(torch.equal(a[k], b[k]) for k in a)  # evaluation consumed no training randomness
    evals = rows(tmp_path / "eval", "eval")
    assert [r["step"] for r in evals] == [2, 4, 6] and "modes_pacgan_300" in evals[0]
    best = read_checkpoint(tmp_path / "eval" / "checkpoints" / "best.pt")
    assert best["meta"]["best"]["metric"] == "reverse_kl_pacgan_300"
    assert ckb["meta"]["best"] == best["meta"]["best"]  # latest.pt remembers the best so far


def test_unknown_best_metric_is_a_clear_error(tmp_path):
    cfg = tiny_config("toy_ring", "train.eval_every=2", "train.eval_n=300", "train.best_metric=fid", steps=2)
    with pytest.raises(GankitError, match="train.best_metric='fid' is not among the eval results"):
        fit(cfg, tmp_path / "r")


def test_train_on_data_alone_picks_a_recipe_from_the_data_and_says_so(tmp_path, caplog):
    """`gankit train --data shapes` (colour): the small-data recipe with DiffAugment, the user's
    settings on top, its name in the saved config and a note; the run folder is named by the data."""
    import logging

    from gankit.api import default_out

    cfg = tiny_config(None, data="shapes", steps=2)
    with caplog.at_level(logging.INFO, logger="gankit.note"):
        fit(cfg, tmp_path / "r")
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["recipe"] == "dcgan_small_data" and saved["reg"]["diffaug"]
    assert saved["train"]["batch"] == 16 and saved["data"]["n"] == 256  # the test's own settings kept
    assert any("recipe: dcgan_small_data for shapes" in r.message for r in caplog.records)
    # a DiffAugment run loads (its D is wrapped on loading as in training; it used not to be)
    from gankit import api

    assert api.load(tmp_path / "r").sample(2, seed=0).shape == (2, 3, 32, 32)
    assert default_out(cfg.recipe, "photos/my_cats/") == default_out("my_cats")
