"""ProGAN: growth schedule, fade-in, equalised learning rate, pixel norm, and training through stages."""

import math

import pytest
import torch
import torch.nn.functional as F

from gankit.nets import build
from gankit.nets.progan import EqualizedConv2d, PixelNorm, ProDiscriminator, ProGenerator, progress_at
from gankit.training.loop import fit, prepare
from gankit.training.state import new_state
from gankit.training.step import train_step


def test_growth_schedule_stable_then_fade_then_stable():
    p = [progress_at(s, 4, 10) for s in (0, 9, 10, 15, 20, 29, 30, 35, 40, 55, 60, 1000)]
    assert p == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0]


def _nets(tiny, *extra):
    cfg, data = prepare(tiny("progan_mnist", *extra))
    g, d = build(cfg.model, data.shape)
    return cfg, data, g, d


def test_g_returns_full_size_images_and_grows(tiny):
    cfg, data, g, d = _nets(tiny)
    assert data.shape == (1, 32, 32)  # 28x28 digits padded by 2
    assert isinstance(g, ProGenerator) and isinstance(d, ProDiscriminator)
    z = torch.randn(3, cfg.model.z_dim)
    g.progress.fill_(0.0)
    x = g(z)
    assert x.shape == (3, 1, 32, 32)
    assert torch.allclose(x, F.interpolate(F.avg_pool2d(x, 8), scale_factor=8.0), atol=1e-6)  # 4x4, up-sampled
    g.progress.fill_(3.0)
    assert not torch.allclose(g(z), F.interpolate(F.avg_pool2d(g(z), 2), scale_factor=2.0), atol=1e-3)  # 32x32


def test_fade_in_blends_the_old_and_new_stage(tiny):
    cfg, data, g, d = _nets(tiny)
    z = torch.randn(2, cfg.model.z_dim)
    h = g.blocks[1](g.blocks[0](g.first(z).view(2, g.c0, 4, 4)))
    old = F.interpolate(g.to_rgb[1](h), scale_factor=2.0)
    new = g.to_rgb[2](g.blocks[2](h))
    g.progress.fill_(1.25)
    want = F.interpolate(torch.tanh(0.75 * old + 0.25 * new), size=(32, 32))
    assert torch.allclose(g(z), want, atol=1e-6)


def test_d_sees_fakes_at_the_resolution_g_made_them(tiny):
    # G's nearest up-sampling and D's average pooling cancel: D judges exactly G's 8x8 image
    cfg, data, g, d = _nets(tiny)
    g.progress.fill_(1.0), d.progress.fill_(1.0)
    x = g(torch.randn(4, cfg.model.z_dim))
    assert torch.allclose(F.interpolate(d._at(x, 1), scale_factor=4.0), x, atol=1e-6)
    assert d(x).shape == (4,) and d(data.x[:4]).shape == (4,)
    d.progress.fill_(2.5)
    assert torch.isfinite(d(data.x[:4])).all()


def test_equalised_lr_and_pixel_norm():
    conv = EqualizedConv2d(16, 8, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.1)
    assert conv.scale == pytest.approx(math.sqrt(2 / (16 * 9)))
    x = torch.randn(5, 16, 6, 6)
    want = F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1)
    assert torch.allclose(conv(x), want)
    y = PixelNorm()(torch.randn(2, 7, 3, 3) * 5)
    assert torch.allclose(y.pow(2).mean(1), torch.ones(2, 3, 3), atol=1e-4)


def test_training_follows_the_schedule_and_the_ema_g_has_the_same_stage(tiny, tmp_path):
    cfg, data = prepare(tiny("progan_mnist", "model.grow_steps=2", "data.n=64"))
    s = new_state(cfg, data.shape, len(data))
    seen = []
    for _ in range(7):
        out = train_step(s, data.x)
        assert torch.isfinite(out.d_loss) and torch.isfinite(out.g_loss)
        seen.append(float(s.g.progress))
    assert seen == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    assert float(s.d.progress) == 1.0 and float(s.g_ema.progress) == 1.0
    res = fit(tiny("progan_mnist", "model.grow_steps=1", "data.n=64", steps=6), tmp_path / "run")
    import gankit

    g = gankit.load(res.out)
    assert float(g.net.progress) == 2.0 and g.sample(2).shape == (2, 1, 32, 32)
