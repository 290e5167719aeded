"""Class-conditional GANs: G(z, y) and D(x, y) wrappers, the conditional train step, sampling by label."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.errors import ConfigError, GankitError
from gankit.nets import build
from gankit.nets.conditional import ConditionalBatchNorm, ConditionalG, SelfConditionedG
from gankit.training.loop import fit, prepare
from gankit.training.state import new_state
from gankit.training.step import train_step


def _cond(tiny, d="projection", g="cbn", *extra):
    # data.n=0: all of mnist5k, which is sorted by class (the first 256 digits are all zeros)
    return tiny("dcgan_mnist_fast", f"model.cond={d}", f"model.cond_g={g}", "data.n=0", *extra)


@pytest.mark.parametrize("d,g", [("concat", "concat"), ("projection", "cbn"), ("acgan", "concat")])
def test_conditional_nets_take_labels_and_the_label_changes_the_output(tiny, d, g):
    cfg, data = prepare(_cond(tiny, d, g))
    assert cfg.model.n_classes == 10  # taken from the data's labels
    gen, disc = build(cfg.model, data.shape)
    gen.eval(), disc.eval()
    for m in gen.modules():  # conditional BN starts as plain BN (gain 1, bias 0 for every class)
        if isinstance(m, ConditionalBatchNorm):
            torch.nn.init.normal_(m.gain.weight, 1.0, 0.1)
    z = torch.randn(4, cfg.model.z_dim)
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    assert gen(z, y0).shape == (4, 1, 28, 28)
    assert not torch.allclose(gen(z, y0), gen(z, y1))
    x = data.x[:4]
    if d == "acgan":
        logits, cls = disc(x, y0, aux=True)
        assert logits.shape == (4,) and cls.shape == (4, 10)
        assert torch.equal(disc(x, y0), disc(x, y1))  # ACGAN's adversarial logit ignores the label
    else:
        assert disc(x, y0).shape == (4,)
        if d == "concat":  # the projection starts near the unconditional D; concat differs at once
            assert not torch.allclose(disc(x, y0), disc(x, y1))
    assert torch.equal(gen(z), gen(z, torch.arange(4) % 10))  # no labels: a sweep over the classes


def test_projection_d_adds_the_inner_product_of_label_embedding_and_features(tiny):
    cfg, data = prepare(_cond(tiny, "projection", "concat"))
    _, d = build(cfg.model, data.shape)
    d.eval()
    x, y = data.x[:3], torch.tensor([2, 5, 7])
    h = d.d[:-1](x)
    want = d.d[-1](h) + (d.embed.weight[y] * h.flatten(1)).sum(1)
    assert torch.allclose(d(x, y), want, atol=1e-6)


def test_conditional_batchnorm_is_batchnorm_with_a_gain_and_bias_per_class():
    bn = torch.nn.BatchNorm2d(3)
    cbn = ConditionalBatchNorm(bn, 4)
    with torch.no_grad():
        cbn.gain.weight[2] = torch.tensor([2.0, 3.0, 4.0])
        cbn.bias.weight[2] = torch.tensor([1.0, 0.0, -1.0])
    x = torch.randn(5, 3, 2, 2)
    cbn.y = torch.full((5,), 2)
    plain = F.batch_norm(x, None, None, training=True)
    assert torch.allclose(cbn(x), plain * torch.tensor([2.0, 3, 4]).view(1, 3, 1, 1)
                          + torch.tensor([1.0, 0, -1]).view(1, 3, 1, 1), atol=1e-5)


def test_labels_are_checked():
    g = ConditionalG(torch.nn.Linear(6, 4), 3, "concat")
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        g(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        g(torch.randn(2, 3), torch.tensor([0]))
    with pytest.raises(ConfigError, match="BatchNorm"):
        ConditionalG(torch.nn.Linear(6, 4), 3, "cbn")


@pytest.mark.parametrize("d,g", [("projection", "cbn"), ("acgan", "concat"), ("concat", "concat")])
def test_a_conditional_step_trains_both_nets_and_acgan_adds_the_class_loss(tiny, d, g):
    cfg, data = prepare(_cond(tiny, d, g))
    st = new_state(cfg, data.shape, len(data))
    before_g = [p.detach().clone() for p in st.g.parameters()]
    out = train_step(st, data.x, stats=True, labels=data.y)
    assert torch.isfinite(out.d_loss) and torch.isfinite(out.g_loss)
    assert any(not torch.equal(a, b) for a, b in zip(before_g, st.g.parameters(), strict=True))
    assert ("d_cls" in out.stats) == (d == "acgan")
    if d == "acgan":  # the class loss of an untrained D is about log(10)
        assert 1.0 < float(out.stats["d_cls"]) < 4.0


def test_conditional_fakes_are_drawn_for_the_real_batchs_labels(tiny):
    cfg, data = prepare(_cond(tiny, "projection", "concat"))
    st = new_state(cfg, data.shape, len(data))
    seen = []
    inner = st.g.forward
    st.g.forward = lambda z, y=None: (seen.append(y), inner(z, y))[1]
    idx = st.sampler.next(cfg.train.batch)
    st.sampler.pos -= cfg.train.batch  # the step draws this same batch
    train_step(st, data.x, labels=data.y)
    assert torch.equal(seen[0], data.y[idx])


def test_wgan_gp_and_unrolled_run_conditionally(tiny):
    for extra in (["loss.name=wasserstein", "reg.gp_weight=10", "model.norm_d=layer"], ["train.unroll=2"]):
        cfg, data = prepare(_cond(tiny, "projection", "cbn", *extra))
        st = new_state(cfg, data.shape, len(data))
        assert torch.isfinite(train_step(st, data.x, labels=data.y).g_loss)


def test_conditional_config_errors(tiny, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((32, 28, 28), np.uint8))  # images without labels
    with pytest.raises(ConfigError, match="needs class labels"):
        prepare(tiny("dcgan_mnist_fast", "model.cond=projection", data=str(tmp_path / "x.npy")))
    with pytest.raises(ConfigError, match="model.pack"):
        _cond(tiny, "projection", "cbn", "model.pack=2")
    with pytest.raises(ConfigError, match="not one of"):
        _cond(tiny, "film", "cbn")
    with pytest.raises(ConfigError, match="labels up to 9"):
        prepare(_cond(tiny, "projection", "cbn", "model.n_classes=5"))


def test_sample_by_label_eval_and_resume(tiny, tmp_path):
    cfg = _cond(tiny, "acgan", "cbn", "train.ckpt_every=2")
    fit(cfg, tmp_path / "run")
    g = gankit.load(tmp_path / "run", ema=False)  # after 4 steps the EMA has barely left the init
    assert g.conditional and g.n_classes == 10
    sevens = g.sample(6, seed=1, label=7)
    assert sevens.shape == (6, 1, 28, 28)
    assert not torch.allclose(sevens, g.sample(6, seed=1, label=3), rtol=0, atol=1e-7)
    with pytest.raises(GankitError, match="label must be in 0..9"):
        g.sample(2, label=10)
    res = gankit.evaluate(tmp_path / "run", metrics=["cond"], n=200)
    assert 0.0 <= res["cond_acc_mnistcnn_200"] <= 1.0 and len(res["cond_acc_per_class_mnistcnn_200"]) == 10
    assert res["intra_fid_mnistcnn_200"] > 0
    run = gankit.resume(tmp_path / "run", steps=6)
    assert run.step == 6


def test_unconditional_runs_refuse_a_label(tiny, tmp_path):
    fit(tiny("dcgan_mnist_fast"), tmp_path / "run")
    with pytest.raises(GankitError, match="not conditional"):
        gankit.load(tmp_path / "run").sample(2, label=3)


def test_cond_metric_accuracy_is_the_classifier_agreeing_with_the_asked_label():
    from gankit.config import DataConfig
    from gankit.data import build as build_data
    from gankit.metrics import evaluate

    ref = build_data(DataConfig(source="mnist5k"))
    x, y = ref.x[::10], ref.y[::10]  # real digits with their true labels: near-perfect accuracy
    good = evaluate(x, ref, ["cond"], labels=y)
    bad = evaluate(x, ref, ["cond"], labels=(y + 1) % 10)
    assert good["cond_acc_mnistcnn_500"] > 0.97 and bad["cond_acc_mnistcnn_500"] < 0.05


def test_self_conditioned_g_reads_its_cluster_from_z_at_the_data_frequencies(tiny):
    cfg, data = prepare(_cond(tiny, "projection", "cbn", "model.clusters=5"))
    g, _ = build(cfg.model, data.shape)
    assert isinstance(g, SelfConditionedG) and g.n_classes == 5
    g.set_frequencies(torch.tensor([10, 30, 20, 0, 40]))
    assert torch.allclose(g.cdf, torch.tensor([0.1, 0.4, 0.6, 0.6, 1.0]))
    z = torch.randn(40_000, cfg.model.z_dim, generator=torch.Generator().manual_seed(0))
    share = torch.bincount(g.cluster_of(z), minlength=5).double() / len(z)
    assert torch.allclose(share, torch.tensor([0.1, 0.3, 0.2, 0.0, 0.4], dtype=torch.float64), atol=0.01)
    y = torch.tensor([0, 1, 2, 4] * 2500)
    placed = g.place(z[: len(y)], y)
    assert torch.equal(g.cluster_of(placed), y)  # place puts z in the slice of the cluster asked for
    assert torch.equal(placed[:, 1:], z[: len(y), 1:]) and torch.isfinite(placed).all()
    g.eval()
    with torch.no_grad():  # G(z) is G(z, its cluster): an unconditional interface
        assert torch.equal(g(placed[:8]), g(placed[:8], y[:8]))


def test_self_conditioned_run_clusters_without_labels_and_samples_unconditionally(tiny, tmp_path, caplog, monkeypatch):
    import logging

    sets = ("model.clusters=4", "train.ckpt_every=2")
    cfg, data = prepare(_cond(tiny, "projection", "cbn", *sets))
    assert cfg.model.n_classes == 4 and data.classes == [f"cluster {i}" for i in range(4)]
    _, again = prepare(_cond(tiny, "projection", "cbn", *sets))
    assert torch.equal(data.y, again.y)  # the same seed, the same clusters: a resume trains alike
    with caplog.at_level(logging.INFO, logger="gankit.note"):
        fit(_cond(tiny, "projection", "cbn", *sets), tmp_path / "run")
    assert any("4 k-means clusters of 5000 images" in r.message for r in caplog.records)
    g = gankit.load(tmp_path / "run")
    assert not g.conditional and g.n_classes == 0
    counts = torch.bincount(data.y, minlength=4).double()
    assert torch.allclose(g.net.cdf.double(), counts.cumsum(0) / counts.sum(), atol=1e-6)
    assert g.sample(3, seed=2).shape == (3, 1, 28, 28)
    with pytest.raises(GankitError, match="not conditional"):
        g.sample(2, label=1)
    pytest.importorskip("onnxruntime")
    # the cluster is read from z inside the traced graph (erf, not ndtr: ONNX has no ndtr); export
    # checks the ONNX copy against eager sampling
    gankit.export(tmp_path / "run", tmp_path / "onnx", format="onnx")
    assert gankit.resume(tmp_path / "run", steps=6).step == 6
    # clusters that came out differently on resume (another scikit-learn) are refused, not trained on
    from gankit.families import noise2image

    real = noise2image.self_condition
    monkeypatch.setattr(noise2image, "self_condition", lambda d, k, seed: real(d, k, seed + 1))
    with pytest.raises(ConfigError, match="labels the run trains on differ"):
        gankit.resume(tmp_path / "run", steps=8)


@pytest.mark.parametrize(("sets", "match"), [
    (("model.cond=none", "model.clusters=4"), "needs at least 2 clusters and a conditional D"),
    (("model.clusters=1",), "needs at least 2 clusters"),
    (("model.clusters=4", "model.n_classes=10"), "the clusters are the classes"),
    (("model.clusters=4", "model.n_g=2"), "cannot combine with model.n_g"),
    (("model.clusters=4", "reg.mode_seeking=1"), "cannot combine with reg.mode_seeking"),
    (("model.clusters=4", "train.unroll=2"), "cannot combine with train.unroll"),
])
def test_self_conditioning_config_errors(tiny, sets, match):
    with pytest.raises(ConfigError, match=match):
        prepare(_cond(tiny, "projection", "cbn", *sets))
