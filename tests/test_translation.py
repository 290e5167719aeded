"""Image-to-image tasks: pix2pix, CycleGAN, super-resolution and inpainting. Shapes at odd sizes,
the data layouts (A/B folders, side-by-side, built-ins) and their errors, one training step per
task, exact resume with CycleGAN's image pools, the CLI, and the metrics' sanity."""

import copy
import json

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from gankit import api
from gankit.cli import main
from gankit.config import ModelConfig
from gankit.data import build as build_data
from gankit.data.paired import dilate, edges, erode, split_index, stroke_width
from gankit.errors import ConfigError, DataError, GankitError
from gankit.families.translation import ImagePool
from gankit.metrics.translation import psnr, ssim
from gankit.nets import build
from gankit.nets.masks import HELD_OUT, draw, mask_families
from gankit.nets.perceptual import VGGFeatures, feature_net
from gankit.nets.translation import (
    TASK_MODELS,
    SRGenerator,
    UNet,
    local_crop,
    patchgan,
    receptive_field,
    resnet_translator,
)
from gankit.training.loop import fit, prepare, resume
from gankit.training.state import new_state, read_checkpoint

RECIPES = {"pix2pix_edges2digits": "l1", "cyclegan_thin2thick": "cycle", "srgan_x4_mnist": "feature",
           "inpaint_mnist": "l1_hole", "pix2pix_colorize": "l1"}
FAST = ["model.width=8", "train.batch=4"]


def _fit(recipe, path, *sets, steps=2, data=None):
    return fit(tiny_config(recipe, *FAST, *sets, steps=steps, data=data), path)


# --- nets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("hw", [(28, 28), (27, 31), (64, 64), (7, 9)])
def test_unet_keeps_any_size(hw):
    # 28 is not a multiple of 2^3: the U-Net pads to 32 inside and crops back
    net = UNet(1, 3, 8, 3, "batch", 0.5)
    x = torch.randn(2, 1, *hw)
    assert net(x).shape == (2, 3, *hw)


@pytest.mark.parametrize("name", TASK_MODELS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_task_model_maps_a_to_b_with_gradients(name, shape):
    cfg = ModelConfig(name=name, width=8, depth=2, norm_g="batch", norm_d="batch", patch_layers=2,
                      in_channels=1, scale=4 if name == "srgan" else 0)
    g, d = build(cfg, shape)
    n, (c, h, w) = 3, shape
    a = torch.randn(n, c if name == "inpaint" else 1, *((h // 4, w // 4) if name == "srgan" else (h, w)))
    a.requires_grad_(True)
    if name == "inpaint":
        out = g(a, torch.ones(n, 1, h, w))
        logits = d.whole(out)
    else:
        out = g(a)
        logits = d["b"](out) if name == "cyclegan" else d(torch.cat([a, out], 1) if name == "pix2pix" else out)
    assert out.shape == (n, *shape) and out.abs().max() <= 1
    assert logits.dim() == 4 and logits.shape[1] == 1  # PatchGAN: a map of logits
    logits.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


@pytest.mark.parametrize("layers,rf", [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_is_what_it_says(layers, rf):
    """70x70 for pix2pix's default; checked by which input pixels reach one centre logit."""
    assert receptive_field(layers) == rf
    d = patchgan(1, 4, layers, "none")
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    y = d(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert int(rows[-1] - rows[0] + 1) == rf and int(cols[-1] - cols[0] + 1) == rf


def test_sr_generator_upscales_by_pixel_shuffle():
    for scale in (2, 4):
        g = SRGenerator(1, 1, 8, 2, scale, "batch")
        assert g(torch.randn(2, 1, 7, 7)).shape == (2, 1, 7 * scale, 7 * scale)
        assert any(isinstance(m, torch.nn.PixelShuffle) for m in g.modules())
    with pytest.raises(ConfigError, match="2, 4 or 8"):
        SRGenerator(1, 1, 8, 2, 3, "batch")


def test_resnet_translator_keeps_size_and_channels():
    g = resnet_translator(1, 3, 8, 2, "instance")
    assert g(torch.randn(2, 1, 28, 28)).shape == (2, 3, 28, 28)


# --- data ---------------------------------------------------------------------------------------

def test_builtin_pairs_shapes_and_held_out_split():
    cfg = tiny_config("pix2pix_edges2digits").data
    for source, a_shape, b_shape in (("edges2digits", (1, 28, 28), (1, 28, 28)),
                                     ("lowres4_mnist", (1, 7, 7), (1, 28, 28)),
                                     ("colorize_photos", (1, 64, 64), (3, 64, 64))):
        cfg.source, cfg.n = source, 0
        cfg.split = "train"
        tr = build_data(cfg)
        cfg.split = "test"
        te = build_data(cfg)
        assert tr.a.shape[1:] == a_shape and tr.x.shape[1:] == b_shape and te.paired
        assert len(te) < len(tr)
        flat = {tuple(v) for v in tr.x.flatten(1)[:, ::7].tolist()}
        assert not any(tuple(v) in flat for v in te.x.flatten(1)[:, ::7].tolist()), f"{source}: test in train"
    a, b = split_index(100, "train"), split_index(100, "test")
    assert len(a) == 90 and len(b) == 10 and not set(a.tolist()) & set(b.tolist())


def test_stroke_width_separates_thin_from_thick():
    cfg = tiny_config("cyclegan_thin2thick").data
    cfg.n = 0
    ds = build_data(cfg)
    assert not ds.paired and len(ds.a) and len(ds.meta["a_labels"]) == len(ds.a)
    thin, thick = stroke_width(ds.a), stroke_width(ds.x)
    thr = (thin.mean() + thick.mean()) / 2
    assert (thin < thr).float().mean() > 0.9 and (thick > thr).float().mean() > 0.9
    x = build_data(tiny_config("mlp_mnist").data).x[:50]
    assert (stroke_width(dilate(x)) > stroke_width(erode(x))).all()
    e = edges(x)
    assert e.shape == x.shape and set(e.unique().tolist()) <= {-1.0, 1.0}


def _write(folder, names, size=(12, 12), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in names:
        Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8)).save(folder / n)


def test_ab_folder_paired_unpaired_and_mismatched(tmp_path):
    _write(tmp_path / "p" / "A", ["1.png", "2.png", "3.png"])
    _write(tmp_path / "p" / "B", ["1.png", "2.png", "3.png"], seed=1)
    cfg = tiny_config("pix2pix_edges2digits").data
    cfg.source, cfg.n = str(tmp_path / "p"), 0
    ds = build_data(cfg)
    assert ds.paired and ds.a.shape == ds.x.shape == (3, 1, 12, 12)
    a2 = np.asarray(Image.open(tmp_path / "p" / "A" / "2.png"), dtype=np.float32) / 127.5 - 1
    assert torch.allclose(ds.a[1, 0], torch.from_numpy(a2))  # row i of A belongs to row i of B

    _write(tmp_path / "p" / "B", ["4.png"], seed=2)
    with pytest.raises(DataError, match=r"B/4.png has no partner in .*A/"):
        build_data(cfg)

    _write(tmp_path / "u" / "A", ["a1.png", "a2.png"])
    _write(tmp_path / "u" / "B", ["b1.png", "b2.png", "b3.png"])
    cfg.source = str(tmp_path / "u")
    assert not build_data(cfg).paired
    with pytest.raises(ConfigError, match="needs paired data"):
        _fit("pix2pix_edges2digits", tmp_path / "run", "train.batch=2", data=str(tmp_path / "u"))
    res = _fit("cyclegan_thin2thick", tmp_path / "cyc", "train.batch=2", data=str(tmp_path / "u"))
    assert res.status == "done"


def test_side_by_side_pairs_train_and_wrong_aspect_is_an_error(tmp_path):
    _write(tmp_path / "sbs", [f"{i}.png" for i in range(6)], size=(24, 12))
    res = _fit("pix2pix_edges2digits", tmp_path / "run", data=str(tmp_path / "sbs"))
    assert res.status == "done"
    _write(tmp_path / "sq", [f"{i}.png" for i in range(6)], size=(12, 12))
    with pytest.raises(DataError, match="side-by-side"):
        _fit("pix2pix_edges2digits", tmp_path / "run2", data=str(tmp_path / "sq"))


def test_task_data_errors(tmp_path):
    with pytest.raises(ConfigError, match="only one set of images"):
        _fit("cyclegan_thin2thick", tmp_path / "a", "data.source=mnist5k")
    # options the image-to-image families do not read are refused by name, never silently ignored
    for key in ("model.cond=projection", "train.n_critic=3", "reg.instance_noise=0.1", "reg.drift=0.001",
                "train.unroll=2", "reg.gp_weight=10", "model.pack=2"):
        with pytest.raises(ConfigError, match=rf"^{key.split('=')[0]} is not used by pix2pix models .*"
                                              r"their own options: .*loss\.l1_weight"):
            _fit("pix2pix_edges2digits", tmp_path / "b", key)
    with pytest.raises(ConfigError, match="loss.l1_weight is not used by cyclegan models"):
        _fit("cyclegan_thin2thick", tmp_path / "b", "loss.l1_weight=50")
    with pytest.raises(ConfigError, match=r"^loss.name=wgan_gp sets reg.gp_weight, which is not used by pix2pix"):
        _fit("pix2pix_edges2digits", tmp_path / "b", "loss.name=wgan_gp")
    # options read from the data: a value that disagrees would be silently replaced, so it is refused
    with pytest.raises(ConfigError, match="model.scale=2, but lowres4_mnist maps 7px to 28px"):
        _fit("srgan_x4_mnist", tmp_path / "b", "model.scale=2")
    with pytest.raises(ConfigError, match="model.in_channels=3, but edges2digits's inputs A have 1 channels"):
        _fit("pix2pix_edges2digits", tmp_path / "b", "model.in_channels=3")
    with pytest.raises(ConfigError, match="keeps the size"):
        _fit("pix2pix_edges2digits", tmp_path / "c", "data.source=lowres4_mnist")
    with pytest.raises(ConfigError, match="no such weights file"):
        _fit("srgan_x4_mnist", tmp_path / "d", f"loss.feature_net={tmp_path / 'vgg.pth'}")


# --- training -----------------------------------------------------------------------------------

@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_one_step_per_task_learns_and_logs_its_terms(recipe, tmp_path):
    cfg = tiny_config(recipe, *FAST, "train.log_every=1", "train.sample_every=1", "train.ema_beta=0", steps=1)
    fresh, data = prepare(copy.deepcopy(cfg))
    before = new_state(fresh, data.shape, len(data)).g.state_dict()  # the same seed: the same initial G
    res = fit(cfg, tmp_path / "run")
    assert res.status == "done"
    rows = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    row = [r for r in rows if r["event"] == "log"][-1]
    assert RECIPES[recipe] in row and np.isfinite(row[RECIPES[recipe]]), row
    after = read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["g"]
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    grid = Image.open(tmp_path / "run" / "samples" / "step-0000001.png")
    assert grid.height < grid.width  # three rows of eight: inputs, outputs, targets


@pytest.mark.parametrize("recipe", ["pix2pix_edges2digits", "srgan_x4_mnist", "inpaint_mnist"])
def test_without_the_adversarial_term_d_is_not_trained(recipe, tmp_path):
    extra = ["loss.feature_weight=0"] if recipe.startswith("srgan") else []
    cfg = tiny_config(recipe, *FAST, "loss.adv_weight=0", *extra, steps=2)
    fresh, data = prepare(copy.deepcopy(cfg))
    d0 = new_state(fresh, data.shape, len(data)).d.state_dict()
    fit(cfg, tmp_path / "run")
    d1 = read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["d"]
    assert all(torch.equal(d0[k], d1[k]) for k in d0)


def test_cyclegan_resume_is_exact_including_image_pools(tmp_path):
    sets = ("train.ckpt_every=0",)
    _fit("cyclegan_thin2thick", tmp_path / "straight", *sets, steps=6)
    _fit("cyclegan_thin2thick", tmp_path / "split", *sets, steps=3)
    mid = read_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert mid["pools"]["a"].shape[0] == 12  # 3 steps x batch 4 fakes kept so far
    resume(tmp_path / "split", ["train.steps=6"])
    a = read_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    b = read_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    for part in ("g", "d"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert all(torch.equal(a["pools"][k], b["pools"][k]) for k in ("a", "b"))


def test_image_pool_keeps_a_history_and_is_seeded():
    def run(seed):
        g, pool = torch.Generator().manual_seed(seed), ImagePool(4)
        outs = [pool.query(torch.full((3, 1, 2, 2), float(i)), g) for i in range(6)]
        return outs, pool

    (o1, p1), (o2, _) = run(0), run(0)
    assert all(torch.equal(x, y) for x, y in zip(o1, o2, strict=True))
    assert len(p1.images) == 4
    assert any(float(x.min()) < i for i, x in enumerate(o1))  # some fakes were swapped for older ones


def test_masks_are_seeded_sized_and_cropped_around_the_hole():
    m = draw("rect,strokes", 64, 28, 28, torch.Generator().manual_seed(0))
    assert torch.equal(m, draw("rect,strokes", 64, 28, 28, torch.Generator().manual_seed(0)))
    share = m.mean((1, 2, 3))
    assert (share > 0.01).all() and (share < 0.6).all()  # every image has a hole, never most of it
    x = torch.arange(28.0).expand(1, 1, 28, 28).clone()
    hole = torch.zeros(1, 1, 28, 28)
    hole[..., 20:24, 20:24] = 1
    crop = local_crop(x, hole, 14)
    assert crop.shape == (1, 1, 14, 14) and float(crop.max()) == 27 and float(crop.min()) == 14


def test_every_mask_family_is_seeded_covers_its_share_and_mixes():
    shares = {}
    for name in mask_families:
        m = draw(name, 200, 28, 28, torch.Generator().manual_seed(1))
        assert m.shape == (200, 1, 28, 28) and set(m.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(m, draw(name, 200, 28, 28, torch.Generator().manual_seed(1))), name
        shares[name] = m.mean((1, 2, 3))
        assert (shares[name] > 0.01).all(), f"{name}: an image without a hole"
    assert float(shares["centre"].unique()) == 0.25  # 14x14 of 28x28
    assert (shares["halfrect"] <= 0.5 + 1e-6).all() and float(shares["halfrect"].max()) > 0.35
    assert 0.15 < float(shares["square"].min()) and float(shares["square"].max()) < 0.37
    assert float(shares["disc"].mean()) > 0.1
    # a mix draws each mask from one family: here every rect mask has a hole of at most half the image
    mix = draw("square,bands", 400, 28, 28, torch.Generator().manual_seed(2))
    full_rows = (mix.sum(3) == 28).any(2).squeeze(1) | (mix.sum(2) == 28).any(2).squeeze(1)
    assert 100 < int(full_rows.sum()) < 300  # bands reach across the image, squares never do
    assert set(HELD_OUT) <= set(mask_families)


def test_unknown_mask_family_is_one_line(tiny):
    with pytest.raises(ConfigError, match="mask family 'disk'.*disc"):
        tiny("inpaint_mnist", "model.masks=rect,disk")
    with pytest.raises(ConfigError, match="model.masks"):
        tiny("inpaint_mnist", "model.masks=rect,")
    with pytest.raises(ConfigError, match="model.masks"):  # a key pix2pix does not read
        tiny("pix2pix_edges2digits", "model.masks=disc")


def test_srgan_feature_loss_takes_a_vgg19_weights_file(tmp_path):
    """VGG weights cannot be downloaded here: a randomly initialised VGG-19 saved in torchvision's
    layout stands in for the user's file."""
    net = VGGFeatures()
    torch.save({f"features.{k}": v for k, v in net.features.state_dict().items()}, tmp_path / "vgg19.pth")
    fx = feature_net(str(tmp_path / "vgg19.pth"))
    assert fx(torch.zeros(2, 1, 32, 32)).shape == (2, 512, 2, 2)
    assert not any(p.requires_grad for p in fx.parameters())
    res = _fit("srgan_x4_mnist", tmp_path / "run", f"loss.feature_net={tmp_path / 'vgg19.pth'}", steps=1)
    assert res.status == "done"
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match="lacks VGG-19 weights|has shape"):
        feature_net(str(tmp_path / "bad.pth"))


# --- CLI and API --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("i2i")
    for r in ("pix2pix_edges2digits", "srgan_x4_mnist", "inpaint_mnist"):
        fit(tiny_config(r, *FAST, steps=2), root / r)
    return root


def test_translate_upscale_inpaint_one_file_and_a_folder(runs, tmp_path, capsys):
    _write(tmp_path / "in28", ["x.png", "y.png"], size=(28, 28))
    _write(tmp_path / "in7", ["x.png"], size=(7, 7))
    assert main(["translate", str(runs / "pix2pix_edges2digits"), str(tmp_path / "in28"),
                 "--out", str(tmp_path / "t")]) == 0
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["x.png", "y.png"]
    assert Image.open(tmp_path / "t" / "x.png").size == (28, 28)
    assert main(["upscale", str(runs / "srgan_x4_mnist"), str(tmp_path / "in7" / "x.png"),
                 "--out", str(tmp_path / "up.png")]) == 0
    assert Image.open(tmp_path / "up.png").size == (28, 28)
    mask = np.zeros((28, 28), np.uint8)
    mask[8:16, 8:16] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert main(["inpaint", str(runs / "inpaint_mnist"), str(tmp_path / "in28" / "x.png"), "--mask",
                 str(tmp_path / "mask.png"), "--out", str(tmp_path / "filled.png")]) == 0
    src = np.asarray(Image.open(tmp_path / "in28" / "x.png").convert("L"), dtype=np.int32)
    out = np.asarray(Image.open(tmp_path / "filled.png").convert("L"), dtype=np.int32)
    assert np.abs(out - src)[mask == 0].max() <= 1  # known pixels are kept
    capsys.readouterr()
    # wrong run kind, missing mask, mask of the wrong size: one-line errors
    p2p = str(runs / "pix2pix_edges2digits")
    assert main(["upscale", p2p, str(tmp_path / "in7"), "--out", str(tmp_path / "o")]) == 2
    assert "needs a srgan run" in capsys.readouterr().err
    assert main(["inpaint", str(runs / "inpaint_mnist"), str(tmp_path / "in28"), "--out", str(tmp_path / "o")]) == 2
    assert "--mask" in capsys.readouterr().err
    assert main(["inpaint", str(runs / "inpaint_mnist"), str(tmp_path / "in7"), "--mask", str(tmp_path / "mask.png"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "mask is 28x28" in capsys.readouterr().err


def test_task_runs_do_not_sample_and_noise_runs_do_not_translate(runs, tmp_path):
    g = api.load(runs / "pix2pix_edges2digits")
    assert g.task and g.translate(torch.zeros(3, 1, 28, 28)).shape == (3, 1, 28, 28)
    with pytest.raises(GankitError, match="gankit translate"):
        g.sample(4)
    fit(tiny_config("mlp_mnist", steps=1), tmp_path / "mlp")
    with pytest.raises(GankitError, match="generates from noise"):
        api.load(tmp_path / "mlp").translate(torch.zeros(1, 1, 28, 28))


def test_eval_scores_tasks_against_their_baselines(runs):
    sr = api.evaluate(runs / "srgan_x4_mnist", n=40)
    for k in ("psnr", "ssim", "fid_mnistcnn", "class_accuracy", "bicubic_psnr", "bicubic_fid_mnistcnn"):
        assert np.isfinite(sr[k]), k
    assert sr["data"] == "lowres4_mnist (split test)" and sr["n"] == 40
    inp = api.evaluate(runs / "inpaint_mnist", n=40)
    assert inp["psnr_hole_mean_fill"] < 20 and np.isfinite(inp["psnr_hole"])


def test_cli_eval_writes_scores_and_a_held_out_grid(runs, capsys):
    assert main(["eval", str(runs / "srgan_x4_mnist"), "--n", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "srgan"
    assert (runs / "srgan_x4_mnist" / "eval.json").exists()
    im = Image.open(runs / "srgan_x4_mnist" / "eval_grid.png")
    assert im.width > 2 * im.height  # ten columns; rows: input, output, bicubic, target


def test_psnr_and_ssim():
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-5) and psnr(x, x) > 90
    assert psnr(-torch.ones(1, 1, 8, 8), torch.ones(1, 1, 8, 8)) == pytest.approx(0.0, abs=1e-5)
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)
    # 0.1 on [-1, 1] is 0.05 on [0, 1]: about 26 dB
    assert 24 < psnr(noisy, x) < 28 and ssim(noisy, x) < ssim(x, x)
    # flat images 0.25 and 0.75 (on [0, 1]): only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.25, 0.75, 0.01**2
    flat = torch.ones(1, 1, 16, 16)
    expect = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(flat * (2 * a - 1), flat * (2 * b - 1)) == pytest.approx(expect, abs=1e-6)
    # structure: a pattern against its negative has correlation -1, SSIM near -1
    stripes = torch.arange(32.0).remainder(2).expand(1, 1, 32, 32) - 0.5
    assert ssim(stripes, -stripes) < -0.9
    mask = torch.zeros(4, 1, 32, 32)
    mask[..., :8, :8] = 1
    y = x.clone()
    y[..., 8:, :] = -x[..., 8:, :]  # wrong only outside the mask
    assert psnr(y, x, mask) > 90 and psnr(y, x) < 20


def test_studio_shows_task_runs_but_never_samples_them(runs, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from gankit.studio.app import create_app

    fit(tiny_config("dcgan_mnist_fast", "train.precision=fp32", steps=2), tmp_path / "dcgan")
    app = create_app([runs / "pix2pix_edges2digits", tmp_path / "dcgan"], tmp_path / "s.sqlite")
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:  # the studio answers only its own Host
        listed = {r["name"]: r for r in c.get("/api/runs").json()}
        assert listed["pix2pix_edges2digits"]["task"] and not listed["dcgan"]["task"]
        for url in ("sample.png", "interp.png?a=0&b=1&t=0.5"):
            r = c.get(f"/api/runs/pix2pix_edges2digits/{url}")
            assert r.status_code == 400 and "image-to-image" in r.json()["detail"]
        assert c.get("/api/runs/pix2pix_edges2digits/log").status_code == 200
        for _ in range(5):  # the Turing test draws from the z -> x run only
            item = c.get("/api/turing/next").json()
            assert c.get(f"/api/items/{item['token']}/image.png").status_code == 200
