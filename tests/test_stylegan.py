"""StyleGAN-lite: modulated convolution, style mixing, truncation, noise, training."""

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.errors import GankitError
from gankit.nets import build
from gankit.nets.stylegan import ModulatedConv2d, StyleGenerator, mix_styles
from gankit.training.loop import fit, prepare


def test_modulated_conv_is_a_per_sample_conv_with_demodulated_weights():
    torch.manual_seed(0)
    m = ModulatedConv2d(4, 3, 3, w_dim=5)
    x, w = torch.randn(2, 4, 6, 6), torch.randn(2, 5)
    out = m(x, w)
    for b in range(2):
        wgt = m.weight * m.scale * m.affine(w[b: b + 1])[0].view(1, 4, 1, 1)
        wgt = wgt / wgt.pow(2).sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        assert torch.allclose(out[b: b + 1], F.conv2d(x[b: b + 1], wgt, padding=1), atol=1e-5)


def test_demodulation_keeps_unit_variance_whatever_the_style():
    torch.manual_seed(0)
    m = ModulatedConv2d(64, 64, 3, w_dim=8)
    x = torch.randn(4, 64, 16, 16)
    small, big = m(x, torch.randn(4, 8) * 0.1), m(x, torch.randn(4, 8) * 10)
    assert 0.5 < small.std() < 2 and 0.5 < big.std() < 2


def test_mix_styles_takes_w1_before_the_cutoff():
    w1, w2 = torch.zeros(3, 4), torch.ones(3, 4)
    ws = mix_styles(w1, w2, 5, torch.tensor([1, 3, 5]))
    assert ws.shape == (3, 5, 4)
    assert ws[:, :, 0].tolist() == [[0, 1, 1, 1, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]


def test_truncation_zero_gives_the_mean_image_and_eval_is_deterministic(tiny):
    cfg, data = prepare(tiny("stylegan_mnist"))
    g, d = build(cfg.model, data.shape)
    assert isinstance(g, StyleGenerator) and g(torch.randn(3, cfg.model.z_dim)).shape == (3, 1, 28, 28)
    with torch.no_grad():
        g.w_avg.normal_()
        g.train()
        g(torch.randn(8, cfg.model.z_dim))  # training forwards move w_avg towards E[w]
    g.eval()
    z = torch.randn(4, cfg.model.z_dim)
    assert torch.equal(g(z), g(z))  # fixed noise buffers in eval mode
    g.truncation = 0.0
    x = g(z)
    assert torch.allclose(x, x[:1].expand_as(x), atol=1e-6)
    g.truncation = 1.0
    assert not torch.allclose(g(z), x, atol=1e-3)
    assert d(x).shape == (4,)


def test_style_mixing_and_noise_make_training_forwards_random(tiny):
    cfg, data = prepare(tiny("stylegan_mnist"))
    g, _ = build(cfg.model, data.shape)
    z = torch.randn(2, cfg.model.z_dim)
    with torch.no_grad():
        for m in g.modules():  # give the noise inputs some strength
            if hasattr(m, "noise_strength"):
                m.noise_strength.fill_(0.5)
    assert not torch.equal(g(z), g(z))


def test_stylegan_trains_with_r1_and_samples_with_truncation(tiny, tmp_path):
    res = fit(tiny("stylegan_mnist"), tmp_path / "run")
    g = gankit.load(res.out)
    a, b = g.sample(3, seed=1, truncation=0.0), g.sample(3, seed=1)
    assert torch.allclose(a, a[:1].expand_as(a), atol=1e-5) and not torch.allclose(a, b)
    assert g.net.truncation == 1.0  # restored after sampling
    fit(tiny("dcgan_mnist_fast"), tmp_path / "plain")
    with pytest.raises(GankitError, match="style-based"):
        gankit.load(tmp_path / "plain").sample(2, truncation=0.5)
