"""SNGAN-style ResNet nets and the SAGAN self-attention block."""

import pytest
import torch

from gankit.errors import ConfigError
from gankit.nets import build
from gankit.nets.layers import SelfAttention
from gankit.training.loop import fit, prepare


def test_self_attention_matches_the_sagan_formula_and_starts_as_identity():
    torch.manual_seed(0)
    a = SelfAttention(16)
    x = torch.randn(2, 16, 3, 4)
    assert torch.equal(a(x), x)  # gamma = 0 at init
    with torch.no_grad():
        a.gamma.fill_(0.7)
    f, g, h = (conv(x).flatten(2) for conv in (a.f, a.g, a.h))  # (B, C', N), N = 12 positions
    beta = torch.softmax(torch.einsum("bci,bcj->bij", f, g), dim=-1)  # beta[b, i, j]: i attends to j
    o = torch.einsum("bcj,bij->bci", h, beta).view(2, 8, 3, 4)
    assert torch.allclose(a(x), x + 0.7 * a.o(o), atol=1e-5)


def test_attention_mixes_distant_positions():
    torch.manual_seed(0)
    a = SelfAttention(8)
    with torch.no_grad():
        a.gamma.fill_(1.0)
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    a(x)[0, :, 0, 0].sum().backward()
    assert x.grad[0, :, 5, 5].abs().sum() > 0  # a 1x1-conv net could never see the far corner


@pytest.mark.parametrize("size,attention", [(28, 14), (32, 8), (28, 0)])
def test_resnet_shapes_and_spectral_norm(tiny, size, attention):
    cfg = tiny("dcgan_mnist_fast", "model.name=resnet", "model.norm_d=spectral", f"model.attention={attention}",
               f"data.image_size={size}")
    cfg, data = prepare(cfg)
    g, d = build(cfg.model, data.shape)
    x = g(torch.randn(3, cfg.model.z_dim))
    assert x.shape == (3, 1, size, size) and d(x).shape == (3,)
    assert any(isinstance(m, SelfAttention) for m in g.modules()) == bool(attention)
    assert any(isinstance(m, SelfAttention) for m in d.modules()) == bool(attention)
    assert all(hasattr(m, "parametrizations") for m in d.modules() if isinstance(m, (torch.nn.Conv2d,
                                                                                     torch.nn.Linear)))


def test_attention_in_the_dcgan_and_its_errors(tiny):
    cfg, data = prepare(tiny("dcgan_mnist_fast", "model.attention=14"))
    g, d = build(cfg.model, data.shape)
    assert sum(isinstance(m, SelfAttention) for m in g.modules()) == 1
    assert sum(isinstance(m, SelfAttention) for m in d.modules()) == 1
    with pytest.raises(ConfigError, match="not a feature-map size"):
        build(prepare(tiny("dcgan_mnist_fast", "model.attention=5"))[0].model, data.shape)
    with pytest.raises(ConfigError, match="dcgan and resnet"):
        build(prepare(tiny("mlp_mnist", "model.attention=14"))[0].model, data.shape)
    with pytest.raises(ConfigError, match="norm_d=spectral or none"):
        build(prepare(tiny("dcgan_mnist_fast", "model.name=resnet"))[0].model, data.shape)


def test_sngan_recipe_trains(tmp_path, tiny):
    res = fit(tiny("sngan_mnist", "model.attention=14"), tmp_path / "run")
    assert res.step == 4
