"""Mode-collapse remedies: PacGAN, minibatch discrimination / std, DiffAugment, unrolled GAN."""

import copy

import pytest
import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.families.noise2image import unrolled_d
from gankit.nets import build
from gankit.nets.remedies import REMEDIES, Augmented, MinibatchDiscrimination, MinibatchStd, Packed, diff_augment
from gankit.training.loop import fit, prepare
from gankit.training.state import new_state
from gankit.training.step import train_step


def test_packed_d_sees_m_samples_side_by_side():
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x)
            return x.flatten(1).sum(1)

    x = torch.arange(6 * 2 * 3 * 3, dtype=torch.float32).view(6, 2, 3, 3)
    out = Packed(Spy(), 3)(x)
    assert out.shape == (2,) and seen[0].shape == (2, 6, 3, 3)
    assert torch.equal(seen[0][1, 2:4], x[4])  # pack 1 holds samples 3, 4, 5 along channels
    with pytest.raises(ValueError, match="divisible by 3"):
        Packed(Spy(), 3)(x[:4])


def test_pacgan_d_is_built_for_packs_and_the_batch_must_divide(tiny):
    g, d = build(tiny("toy_ring", "model.pack=4").model, (2,))
    assert isinstance(d, Packed) and d.d[0].in_features == 8 and d(g(torch.randn(8, g.z_dim))).shape == (2,)
    with pytest.raises(ConfigError, match="divisible by model.pack=3"):
        tiny("toy_ring", "model.pack=3")


def test_minibatch_discrimination_matches_the_formula():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(4, kernels=3, dim=2)
    f = torch.randn(5, 4)
    m = (f @ layer.t).view(5, 3, 2)
    want = torch.stack([torch.stack([sum(torch.exp(-(m[i, b] - m[j, b]).abs().sum()) for j in range(5) if j != i)
                                     for b in range(3)]) for i in range(5)])
    out = layer(f)
    assert torch.allclose(out[:, :4], f) and torch.allclose(out[:, 4:], want, atol=1e-6)
    twins = layer(f[:1].expand(5, 4))[:, 4:]  # a collapsed batch: every sample has 4 exact twins
    assert torch.allclose(twins, torch.full((5, 3), 4.0))


def test_minibatch_std_is_small_for_a_collapsed_batch():
    f = torch.randn(16, 10)
    assert MinibatchStd()(f)[0, -1] == pytest.approx(float(f.std(0, unbiased=False).mean()), rel=1e-5)
    assert MinibatchStd()(f[:1].expand(16, 10))[0, -1] < 1e-3


@pytest.mark.parametrize("kind", ["disc", "stddev"])
def test_minibatch_layers_keep_real_and_fake_forwards_apart(tiny, kind):
    cfg, data = prepare(tiny("toy_ring", f"model.minibatch={kind}"))
    s = new_state(cfg, data.shape, len(data))
    assert not s.d.concat_ok  # one shared forward would let fakes see reals' statistics
    assert torch.isfinite(train_step(s, data.x).d_loss)


def test_diffaugment_translation_and_cutout():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    moved = diff_augment(x, ["translation"])
    where = moved.flatten(1).argmax(1)
    dy, dx = where // 16 - 8, where % 16 - 8
    assert moved.sum() == 64 and dy.abs().max() <= 2 and dx.abs().max() <= 2 and (dy != 0).any()
    cut = diff_augment(torch.ones(64, 1, 16, 16), ["cutout"])
    zeros = (cut == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() > 0  # an 8x8 square, clipped at the borders


def test_diffaugment_is_differentiable_and_off_in_eval_mode():
    d = Augmented(nn.Sequential(nn.Flatten(), nn.Linear(48, 1)), "color,translation,cutout")
    x = torch.randn(4, 3, 4, 4, requires_grad=True)
    d(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    d.eval()
    assert torch.equal(d(x), d.d(x))


def test_diffaug_config_errors(tiny):
    with pytest.raises(ConfigError, match="unknown augmentation 'flip'"):
        tiny("dcgan_mnist_fast", "reg.diffaug=color,flip")
    cfg, data = prepare(tiny("toy_ring", "reg.diffaug=color"))
    with pytest.raises(ConfigError, match="augments images"):
        new_state(cfg, data.shape, len(data))


def test_unrolled_d_is_k_steps_of_ds_own_adam(tiny):
    cfg, data = prepare(tiny("toy_ring", "model.norm_d=none"))
    s = new_state(cfg, data.shape, len(data))
    for _ in range(3):  # some Adam history, so the unrolled step must continue it
        train_step(s, data.x)
    real, z = data.x[:16], torch.randn(16, cfg.model.z_dim)
    s.sampler.next = lambda n: torch.arange(16)
    s.sample_z = lambda n: z
    before = {k: v.clone() for k, v in s.d.state_dict().items()}
    d_for_g = unrolled_d(s, data.x, None, 1)
    probe = torch.randn(10, 2)
    # the same step taken for real, on copies of D and its optimiser
    d2 = copy.deepcopy(s.d)
    opt2 = torch.optim.Adam(d2.parameters(), lr=cfg.optim.lr_d, betas=(cfg.optim.beta1, cfg.optim.beta2))
    opt2.load_state_dict(s.opt_d.state_dict())
    loss = s.loss.d(real=d2(real), fake=d2(s.g(z).detach()))
    opt2.zero_grad()
    loss.backward()
    opt2.step()
    assert torch.allclose(d_for_g(probe), d2(probe), atol=1e-6)
    assert not torch.allclose(d_for_g(probe), s.d(probe), atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in s.d.state_dict().items())  # D itself untouched
    # G's gradient flows through the unrolled D's parameters (the second-order term)
    g_loss = s.loss.g(fake=d_for_g(s.g(z)), real=None)
    grads = torch.autograd.grad(g_loss, list(s.g.parameters()))
    plain = torch.autograd.grad(s.loss.g(fake=s.d(s.g(z)), real=None), list(s.g.parameters()))
    assert any(not torch.allclose(a, b) for a, b in zip(grads, plain, strict=True))


@pytest.mark.parametrize("sets", [["train.unroll=3"], ["model.pack=4", "model.minibatch=disc"],
                                  ["model.minibatch=stddev", "loss.name=wgan_gp"]])
def test_remedies_train_on_the_ring(tiny, sets, tmp_path):
    res = fit(tiny("toy_ring", *sets, steps=6), tmp_path / "r")
    assert res.step == 6


def test_unrolling_a_batchnorm_d_leaves_its_statistics_and_backpropagates(tiny):
    # BatchNorm updates running statistics in place; the unrolled copies must not (nor break autograd)
    cfg, data = prepare(tiny("dcgan_mnist_fast", "train.unroll=2"))
    s = new_state(cfg, data.shape, len(data))
    before = {k: v.clone() for k, v in s.d.named_buffers()}
    d_for_g = unrolled_d(s, data.x, None, 2)
    s.loss.g(fake=d_for_g(s.g(s.sample_z(16))), real=None).backward()
    assert all(torch.equal(before[k], v) for k, v in s.d.named_buffers())
    assert all(p.grad is not None for p in s.g.parameters())


def test_a_pacgan_d_step_scores_real_and_fake_packs_apart(tiny):
    # one shared forward of [real; fake] gives batch/pack logits per side, not batch
    cfg, data = prepare(tiny("toy_ring", "model.pack=4"))
    s = new_state(cfg, data.shape, len(data))
    assert s.d.concat_ok
    d0 = copy.deepcopy(s.d)
    idx = s.sampler.next(cfg.train.batch)
    s.sampler.pos -= cfg.train.batch
    out = train_step(s, data.x, stats=True)
    assert torch.isfinite(out.d_loss)
    with torch.no_grad():
        want = d0(data.x[idx]).mean().item()
    assert float(out.stats["d_real"]) == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("name", list(REMEDIES))
def test_every_listed_remedy_builds_on_a_recipe(tiny, name):
    recipe = "toy_ring" if name in ("pacgan", "minibatch_disc", "unrolled", "gman", "mixture_g") else "dcgan_mnist_fast"
    cfg, data = prepare(tiny(recipe, *REMEDIES[name][0].split()))
    assert cfg.to_dict() != prepare(tiny(recipe))[0].to_dict()  # the listed setting is not a no-op
    st = new_state(cfg, data.shape, len(data))
    assert torch.isfinite(train_step(st, data.x, labels=data.y if cfg.model.cond != "none" else None).g_loss)
