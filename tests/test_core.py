"""The one training core, checked over every recipe and every model family: an update moves
exactly the nets its phases name, the learning-rate schedule runs for every family, resume is
bit-identical, unused options are refused by name, and the core computes the same losses and
weights as the plain reference step of `gankit bench speed`."""

import copy

import pytest
import torch
from conftest import tiny_config

from gankit import config as C
from gankit.errors import ConfigError
from gankit.families import SHARED, families, family_of
from gankit.training.loop import fit, prepare, resume
from gankit.training.state import new_state, read_checkpoint
from gankit.training.step import train_step

RECIPES = C.recipe_names()
SMALL = ["train.batch=8", "train.precision=fp32", "train.channels_last=off"]


def _state(recipe, *sets, steps=4):
    cfg, data = prepare(tiny_config(recipe, *SMALL, *sets, steps=steps))
    s = new_state(cfg, data.shape, len(data))
    s.inputs, s.cond = data.a, data.cond
    s.family.init(s, data)
    labels = data.y if s.family.uses_labels(cfg) else None
    return s, data, labels


def _params(net):
    return {k: v.detach().clone() for k, v in net.named_parameters()}


@pytest.mark.parametrize("recipe", RECIPES)
def test_one_update_moves_exactly_the_nets_its_phases_name(recipe):
    s, data, labels = _state(recipe)
    named = {p.net for p in s.phases}
    g0, d0 = _params(s.g), _params(s.d)
    train_step(s, data.x, labels=labels)
    moved = {"g": any(not torch.equal(g0[k], v) for k, v in s.g.named_parameters()),
             "d": any(not torch.equal(d0[k], v) for k, v in s.d.named_parameters())}
    assert {k for k, v in moved.items() if v} == named, (recipe, [p.name for p in s.phases])
    assert s.step == 1 and s.d_steps == sum(p.net == "d" and p.d_update for p in s.phases)


@pytest.mark.parametrize("recipe", RECIPES)
def test_linear_lr_decay_runs_for_every_family(recipe):
    # regression: image-to-image updates once never stepped their schedulers (lr stayed at 2e-4)
    # decay_start=0: from the first step (a recipe may hold its rate until late, as ssgan_mnist does)
    s, data, labels = _state(recipe, "optim.lr_decay=linear", "optim.decay_steps=4", "optim.decay_start=0")
    lr_g, lr_d = s.cfg.optim.lr_g, s.cfg.optim.lr_d
    for _ in range(2):
        train_step(s, data.x, labels=labels)
    assert s.opt_g.param_groups[0]["lr"] == pytest.approx(lr_g * 0.5)
    assert s.opt_d.param_groups[0]["lr"] == pytest.approx(lr_d * 0.5)


@pytest.mark.parametrize("recipe", RECIPES)
def test_resume_is_bit_identical_for_every_recipe(recipe, tmp_path):
    # the lr decay horizon is set, as docs/design.md says resume needs (ssgan_mnist decays linearly)
    sets = [*SMALL, "train.log_every=1", "train.sample_every=0", "train.ckpt_every=0", "train.tensorboard=false",
            "optim.decay_steps=2"]
    fit(tiny_config(recipe, *sets, steps=2), tmp_path / "straight")
    fit(tiny_config(recipe, *sets, steps=1), tmp_path / "split")
    resume(tmp_path / "split", ["train.steps=2"])
    a = read_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    b = read_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    for net in ("g", "d", "g_ema"):
        if a[net] is None:
            continue
        diff = [k for k in a[net] if not torch.equal(a[net][k], b[net][k])]
        assert not diff, (recipe, net, diff[:3])
    assert a["step"] == b["step"] == 2 and a["d_steps"] == b["d_steps"]


def test_every_family_refuses_options_it_does_not_read():
    every = set(C.all_keys())
    for name in families:
        fam = families.get(name)
        recipe = next(r for r in RECIPES if family_of(C.load_recipe(r)) is fam)
        foreign = sorted(every - SHARED - fam.keys)
        assert foreign, name  # each family has keys that are someone else's
        for key in foreign:
            sec, k = key.split(".")
            value = getattr(getattr(C.Config(), sec), k)
            # a changed value of the key's own type, valid for the key's section rules
            if isinstance(value, str):
                continue
            if isinstance(value, bool):
                new = not value
            else:
                new = value + 1 if isinstance(value, int) else value * 0.5 or 0.5
            with pytest.raises(ConfigError, match=rf"^{key} is not used by {fam.name} models"):
                prepare(tiny_config(recipe, f"{key}={new}", steps=1))


def test_shared_and_family_keys_are_real_config_keys():
    every = set(C.all_keys())
    assert SHARED <= every
    for name in families:
        assert families.get(name).keys <= every, name
    # every key is read by somebody
    assert every == SHARED.union(*(families.get(n).keys for n in families))


def test_a_config_listing_every_key_at_its_default_is_accepted(tmp_path):
    # config.yaml files written before configs were per family list every key, mostly at defaults
    import yaml

    cfg = C.load_recipe("pix2pix_edges2digits")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(cfg.to_dict()))
    assert "cycle_weight" in old.read_text() and "n_critic" in old.read_text()
    resolved, _ = prepare(C.load_recipe(str(old)))
    assert resolved.model.name == "pix2pix"


def test_a_resumed_run_keeps_accepting_its_own_saved_config(tmp_path):
    # runs saved before configs were per family list every key at its default: still resumable
    fit(tiny_config("pix2pix_edges2digits", *SMALL, steps=1), tmp_path / "run")
    resume(tmp_path / "run", ["train.steps=2"])
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["step"] == 2


@pytest.mark.parametrize("recipe", ["dcgan_mnist_fast", "wgan_gp_mnist"])
def test_core_computes_what_the_plain_reference_step_computes(recipe):
    """Same weights, same batches: the same losses and, after one update, the same weights as
    bench_speed's obvious step (two D forwards, fresh G forward, unfrozen D, loop Adam)."""
    from gankit.bench_speed import reference_step

    s, data, _ = _state(recipe, "train.ema_beta=0", "train.n_critic=1")
    cfg = copy.deepcopy(s.cfg)
    sampler = copy.deepcopy(s.sampler)
    noise = torch.Generator().set_state(s.noise.get_state())
    z = torch.randn(cfg.train.batch, cfg.model.z_dim, generator=noise)
    real = data.x[sampler.next(cfg.train.batch)]
    # the core's G phase reuses the D phase's fakes; the reference draws again: give it the same z
    step, g, d = reference_step(cfg, data.x, real_batch=lambda n: real, z_batch=lambda n: z)
    for a, b in ((s.g, g), (s.d, d)):
        sa = a.state_dict()
        assert all(torch.equal(sa[k], v) for k, v in b.state_dict().items())  # the same initial weights
    torch.manual_seed(7)
    out = train_step(s, data.x, stats=True)
    torch.manual_seed(7)
    ref_d, ref_g = step()
    core_d = float(out.d_loss) + cfg.reg.gp_weight * float(out.stats.get("gp", 0.0))
    assert core_d == pytest.approx(ref_d, rel=1e-5, abs=1e-6)
    assert float(out.g_loss) == pytest.approx(ref_g, rel=1e-5, abs=1e-6)
    for a, b in ((s.g, g), (s.d, d)):
        for (k, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-6, rtol=1e-4), (recipe, k)
