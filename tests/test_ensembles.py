"""Several discriminators (GMAN) and a mixture of generators."""

import pytest
import torch

from gankit.errors import ConfigError
from gankit.families.noise2image import g_loss as _g_loss
from gankit.nets import build
from gankit.nets.ensembles import MixtureG, MultiD
from gankit.training.loop import fit, prepare
from gankit.training.state import new_state
from gankit.training.step import train_step


def test_multi_d_stacks_one_row_of_logits_per_discriminator(tiny):
    cfg, data = prepare(tiny("toy_ring", "model.n_d=3"))
    g, d = build(cfg.model, data.shape)
    assert isinstance(d, MultiD) and len(d.ds) == 3
    x = data.x[:5]
    out = d(x)
    assert out.shape == (3, 5)
    assert torch.equal(out[1], d.ds[1](x))
    assert not torch.allclose(out[0], out[1])  # separately initialised


def test_mixture_g_takes_sample_i_from_generator_i_mod_k(tiny):
    cfg, data = prepare(tiny("toy_ring", "model.n_g=3"))
    g, _ = build(cfg.model, data.shape)
    assert isinstance(g, MixtureG) and len(g.gs) == 3
    z = torch.randn(7, cfg.model.z_dim)
    out = g(z)
    for i in range(7):
        assert torch.allclose(out[i], g.gs[i % 3](z[i: i + 1])[0], atol=1e-6)


def test_gman_lambda_zero_is_the_mean_and_large_lambda_the_max(tiny):
    cfg, data = prepare(tiny("toy_ring", "model.n_d=3"))
    s = new_state(cfg, data.shape, len(data))
    fake = torch.tensor([[3.0, 2.0], [0.0, -1.0], [-4.0, -2.0]])  # D 3 is fooled least: the largest loss
    per = torch.stack([s.loss.g(fake=f, real=None) for f in fake])
    assert torch.allclose(_g_loss(s, fake, None), per.mean())
    s.cfg.loss.gman_lambda = 50.0
    assert torch.allclose(_g_loss(s, fake, None), per.max(), atol=1e-4)


def test_each_discriminator_learns_from_its_own_loss(tiny):
    cfg, data = prepare(tiny("toy_ring", "model.n_d=2"))
    s = new_state(cfg, data.shape, len(data))
    before = [[p.detach().clone() for p in d.parameters()] for d in s.d.ds]
    out = train_step(s, data.x, stats=True)
    assert torch.isfinite(out.d_loss) and torch.isfinite(out.g_loss)
    for d, old in zip(s.d.ds, before, strict=True):
        assert any(not torch.equal(a, b) for a, b in zip(old, d.parameters(), strict=True))


@pytest.mark.parametrize("sets", [["model.n_d=2", "model.n_g=2", "loss.gman_lambda=1"],
                                  ["model.n_g=2", "model.cond=projection", "model.cond_g=cbn", "data.n=0"]])
def test_ensembles_train(tiny, tmp_path, sets):
    recipe = "toy_ring" if "model.cond=projection" not in sets else "dcgan_mnist_fast"
    res = fit(tiny(recipe, *sets), tmp_path / "run")
    assert res.step == 4


def test_ensemble_config_errors(tiny):
    with pytest.raises(ConfigError, match="model.n_d=2 cannot combine with reg.gp_weight"):
        tiny("toy_ring", "model.n_d=2", "loss.name=wgan_gp")
    with pytest.raises(ConfigError, match="model.n_g must be >= 1"):
        tiny("toy_ring", "model.n_g=0")
