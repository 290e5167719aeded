"""Every registered model: output shapes, finite values, gradients, and each per-net option."""

import pytest
import torch
from torch import nn

from gankit.config import ModelConfig, load_recipe
from gankit.errors import ConfigError
from gankit.families import families
from gankit.nets import build, count_params, models
from gankit.nets.layers import finish
from gankit.nets.translation import TASK_MODELS

SHAPES = {"mlp": [(1, 28, 28), (3, 8, 8)], "dcgan_seed": [(1, 28, 28), (3, 32, 32)],
          "dcgan": [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 8, 8)], "toy_mlp": [(2,)],
          "resnet": [(1, 28, 28), (3, 32, 32)], "progan": [(1, 28, 28), (3, 32, 32)],
          "stylegan": [(1, 28, 28), (3, 32, 32)]}


def test_shape_table_covers_every_model():
    # nets of the other families take more than z (images, captions, words): test_family_nets below,
    # and tests/test_translation.py for the image-to-image ones
    others = {m for n in families for m in families.get(n).models}
    assert set(TASK_MODELS) <= others
    assert sorted(SHAPES) == sorted(set(models.names()) - others)


def test_family_nets_take_their_conditions():
    from gankit.data.captions import all_captions

    g, d = build(ModelConfig(name="text2image", z_dim=16, width=8), (1, 28, 28))
    codes = g.all_codes()[:3]
    z = torch.randn(3, 16, requires_grad=True)
    x = g(z, codes)
    assert x.shape == (3, 1, 28, 28) and g(z).shape == x.shape and codes.shape == (3, 64)
    d(x, codes).sum().backward()
    assert z.grad.abs().sum() > 0 and len(all_captions()[0]) == 270
    g, d = build(ModelConfig(name="specgan", z_dim=16, width=4, cond="projection"), (1, 64, 64))
    words = torch.tensor([0, 5, 9])
    x = g(torch.randn(3, 16), words)
    assert x.shape == (3, 1, 64, 64) and d(x, words).shape == (3,)
    for name in ("ganomaly", "fanogan"):
        g, d = build(ModelConfig(name=name, z_dim=8, width=4), (1, 28, 28))
        x = torch.rand(5, 1, 28, 28) * 2 - 1
        assert g(torch.randn(2, 8)).shape == (2, 1, 28, 28) and g.score(x, d).shape == (5,)
        logit, feat = d(x)
        assert logit.shape == (5,) and feat.shape[0] == 5
    g, d = build(ModelConfig(name="dknn", z_dim=8, width=4), (1, 28, 28))  # scored by D's features alone
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert g(torch.randn(2, 8)).shape == (2, 1, 28, 28) and g.reconstruct(x).shape == x.shape
    assert d(x)[1].shape == (5, 8 * 49)


@pytest.mark.parametrize("name,shape", [(n, s) for n in SHAPES for s in SHAPES[n]])
@pytest.mark.parametrize("norm", ["none", "batch", "layer", "spectral"])
def test_shapes_and_gradients(name, shape, norm):
    # the residual D takes spectral norm or none; ProGAN and StyleGAN bring their own normalisation
    norm_d = "spectral" if name == "resnet" and norm in ("batch", "layer") else norm
    cfg = ModelConfig(name=name, z_dim=16, width=8, norm_g=norm, norm_d=norm_d, dropout_d=0.1)
    g, d = build(cfg, shape)
    z = torch.randn(3, 16, requires_grad=True)
    x = g(z)
    assert x.shape == (3, *shape)
    if len(shape) == 3:
        assert x.abs().max() <= 1  # tanh output, the data's range
    logits = d(x)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_mlp_matches_keras_tutorial_shapes():
    g, d = build(ModelConfig(name="mlp", z_dim=100, width=64), (1, 28, 28))
    assert [m.out_features for m in g.modules() if isinstance(m, nn.Linear)] == [256, 512, 1024, 784]
    assert [m.out_features for m in d.modules() if isinstance(m, nn.Linear)] == [512, 256, 1]


def test_dcgan_seed_matches_the_tutorial():
    g, d = build(load_recipe("dcgan_mnist").model, (1, 28, 28))
    lin = next(m for m in g.modules() if isinstance(m, nn.Linear))
    assert lin.out_features == 7 * 7 * 256 and lin.bias is None
    convt = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in convt] == [
        (256, 128, (5, 5), (1, 1)), (128, 64, (5, 5), (2, 2)), (64, 1, (5, 5), (2, 2))]
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.stride) for m in convs] == [(64, (2, 2)), (128, (2, 2)), (256, (2, 2)), (512, (1, 1))]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 4


def test_spectral_norm_bounds_top_singular_value():
    g, d = build(ModelConfig(name="dcgan", z_dim=16, width=8, norm_d="spectral"), (1, 28, 28))
    x = torch.randn(8, 1, 28, 28)
    for _ in range(30):  # power iterations run in training-mode forwards
        d(x)
    for m in d.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.flatten(1)
            assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.05)


def test_init_schemes():
    net = finish(nn.Sequential(nn.Linear(200, 300), nn.BatchNorm1d(300)), "dcgan", "none")
    assert net[0].weight.std().item() == pytest.approx(0.02, rel=0.05) and net[0].bias.abs().sum() == 0
    net = finish(nn.Sequential(nn.Linear(200, 300)), "glorot", "none")
    bound = (6 / 500) ** 0.5
    assert net[0].weight.abs().max() <= bound and net[0].weight.abs().max() > 0.95 * bound


def test_activation_and_dropout_options():
    g, d = build(ModelConfig(name="mlp", width=8, act_g="tanh", act_d="relu", dropout_d=0.5), (1, 8, 8))
    assert any(isinstance(m, nn.Tanh) for m in list(g.modules())[:-2])
    assert any(isinstance(m, nn.ReLU) for m in d.modules())
    assert sum(isinstance(m, nn.Dropout) for m in d.modules()) == 2
    _, d2 = build(ModelConfig(name="mlp", width=8, act_d="leaky_relu", leaky_slope=0.3), (1, 8, 8))
    assert all(m.negative_slope == 0.3 for m in d2.modules() if isinstance(m, nn.LeakyReLU))


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ConfigError, match="dcgan needs an image size"):
        build(ModelConfig(name="dcgan"), (1, 27, 27))
    with pytest.raises(ConfigError, match="square images"):
        build(ModelConfig(name="dcgan"), (1, 28, 32))


def test_param_counts_are_reported():
    g, d = build(ModelConfig(name="mlp", z_dim=100, width=64, norm_g="none"), (1, 28, 28))
    # 100*256+256 + 256*512+512 + 512*1024+1024 + 1024*784+784
    assert count_params(g) == 25856 + 131584 + 525312 + 803600
