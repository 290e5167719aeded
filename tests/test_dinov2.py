"""FD_DINOv2 (issue 18, item 3): DINOv2 ViT-S/14 built here with the official state dict's keys,
loaded strictly, its features, `gankit eval --features dinov2`, and its weights fetched once (from a
loopback server: no test reaches outside this machine)."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.errors import GankitError
from gankit.metrics import dinov2
from gankit.metrics.dinov2 import DinoV2, load_dinov2

# facebookresearch/dinov2 dinov2_vits14 (hub/backbones.py: vit_small, patch 14, img_size 518,
# block_chunks=0, no registers): its state dict's keys, as models/vision_transformer.py and
# layers/{block,attention,mlp,layer_scale,patch_embed}.py name them (head is Identity: no keys)
BLOCK_KEYS = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
              "ls1.gamma", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
              "mlp.fc2.bias", "ls2.gamma"]
OFFICIAL_KEYS = (["cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias"]
                 + [f"blocks.{i}.{k}" for i in range(12) for k in BLOCK_KEYS] + ["norm.weight", "norm.bias"])
OFFICIAL_SHAPES = {"cls_token": (1, 1, 384), "pos_embed": (1, 1370, 384), "mask_token": (1, 384),
                   "patch_embed.proj.weight": (384, 3, 14, 14), "blocks.0.attn.qkv.weight": (1152, 384),
                   "blocks.0.ls1.gamma": (384,), "blocks.11.mlp.fc1.weight": (1536, 384),
                   "blocks.11.mlp.fc2.weight": (384, 1536), "norm.weight": (384,)}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random weights saved under the official keys, as the release is (a .pth state dict)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_random.pth"
    torch.save(DinoV2().state_dict(), path)
    return path


def test_state_dict_has_the_official_keys_and_shapes():
    sd = DinoV2().state_dict()
    assert sorted(sd) == sorted(OFFICIAL_KEYS) and len(sd) == 175
    for k, shape in OFFICIAL_SHAPES.items():
        assert tuple(sd[k].shape) == shape, k


def test_strict_load_and_one_line_errors(tmp_path, weights):
    net = load_dinov2(weights)
    sd = torch.load(weights, weights_only=True)
    assert torch.equal(net.state_dict()["blocks.3.ls2.gamma"], sd["blocks.3.ls2.gamma"])
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert net.weights_sha256 == digest and net.weights_sha == digest[:12] and not net.training
    for change, message in [("drop", r"missing key blocks\.5\.ls1\.gamma\)$"),
                            ("extra", r"unexpected key register_tokens\)$"),
                            ("shape", r"pos_embed has shape \(1, 257, 384\), not \(1, 1370, 384\)\)$")]:
        bad = dict(sd)
        if change == "drop":
            del bad["blocks.5.ls1.gamma"]
        elif change == "extra":
            bad["register_tokens"] = torch.zeros(1, 4, 384)  # a _reg4 model is another model
        else:
            bad["pos_embed"] = torch.zeros(1, 257, 384)
        torch.save(bad, tmp_path / "w.pth")
        with pytest.raises(GankitError, match=message) as e:
            load_dinov2(tmp_path / "w.pth")
        assert "\n" not in str(e.value) and "not DINOv2 ViT-S/14 weights" in str(e.value)
    with pytest.raises(GankitError, match="no such DINOv2 weights file"):
        load_dinov2(tmp_path / "absent.pth")


def test_features_are_the_class_token_and_independent_of_the_batch(weights):
    net = load_dinov2(weights)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        f = net(x)
        parts = torch.cat([net(x[:1]), net(x[1:3]), net(x[3:])])
        gray = net(x[:2, :1])
        rgb = net(x[:2, :1].repeat(1, 3, 1, 1))
    assert f.shape == (4, 384) and torch.isfinite(f).all()
    assert (f - parts).abs().max() < 1e-5 and (f[1:] - f[:1]).abs().max() > 1e-3  # images differ, so do features
    assert torch.allclose(gray, rgb, atol=1e-6)  # gray is replicated to 3 channels
    # the final LayerNorm's output: mean 0 over the features before its affine (weight 1, bias 0 here)
    assert f.mean(1).abs().max() < 1e-4


def test_position_embeddings_follow_the_released_offset_convention():
    net = DinoV2()
    assert net.pos_encoding(37, 37) is net.pos_embed  # the training grid (518x518): unchanged
    pos = net.pos_encoding(16, 16)  # 224x224
    assert pos.shape == (1, 257, 384) and torch.equal(pos[:, 0], net.pos_embed[:, 0])
    grid = net.pos_embed[:, 1:].reshape(1, 37, 37, 384).permute(0, 3, 1, 2)
    want = torch.nn.functional.interpolate(grid, scale_factor=(16.1 / 37, 16.1 / 37), mode="bicubic")
    assert torch.equal(pos[:, 1:], want.permute(0, 2, 3, 1).reshape(1, 256, 384))
    net.interpolate_offset = 0  # the newer size= path gives other values: the offset is not a no-op
    assert not torch.allclose(net.pos_encoding(16, 16), pos)


def _folder(path, seed, n=4):
    rng = np.random.default_rng(seed)
    path.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "RGB").save(path / f"{i}.png")
    return path


def test_cli_eval_features_dinov2_gives_fd_dinov2(tmp_path, weights, capsys):
    fake, real = _folder(tmp_path / "fake", 0), _folder(tmp_path / "real", 1)
    assert main(["eval", str(fake), "--against", str(real), "--features", "dinov2", "--dinov2", str(weights),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["fd_dinov2_vits14_4"] > 0 and "fid_inception_pytorchfid_4" not in res
    assert "fd_dinov2_vits14_4" in res["real_vs_real"]
    p = res["protocol"]
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert p["extractor"] == "dinov2_vits14" and p["extractor_weights"] == digest[:12]
    assert p["extractor_weights_sha256"] == digest
    assert main(["eval", str(fake), "--against", str(real), "--dinov2", str(weights)]) == 0  # implies dinov2
    assert "fd_dinov2_vits14_4" in capsys.readouterr().out
    assert main(["eval", str(fake), "--against", str(real), "--dinov2", str(weights), "--inception", "x.pth"]) == 2
    assert "choose different extractors" in capsys.readouterr().err


def test_fd_dinov2_needs_dinov2_features():
    from gankit.data import Dataset
    from gankit.metrics import evaluate

    x = torch.rand(4, 1, 28, 28) * 2 - 1  # digits: the digit CNN's features, not DINOv2's
    out = evaluate(x[:2], Dataset(x[2:], None, "d"), ["fd_dinov2", "fid"])
    assert "needs DINOv2 features (--features dinov2)" in out["skipped"]["fd_dinov2"]


def test_weights_are_fetched_once_then_cached(tmp_path, monkeypatch, weights):
    from test_inception_weights import _Server

    from gankit.data import Dataset
    from gankit.metrics import evaluate

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    body = weights.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    server = _Server(body, "dinov2_vits14_pretrain.pth")
    monkeypatch.setattr(dinov2, "DINOV2_URL", server.url)
    try:
        a = dinov2.fetched_dinov2(progress=False)
        b = dinov2.fetched_dinov2(progress=False)
        x = torch.rand(4, 3, 16, 16) * 2 - 1
        out = evaluate(x[:2], Dataset(x[2:], None, "rgb2"), ["fd_dinov2"], extractor=b)
    finally:
        server.close()
    assert server.hits == 1 and a.weights_sha256 == b.weights_sha256 == digest
    cached = tmp_path / "cache" / "weights" / "dinov2_vits14_pretrain.pth"
    # no published hash: the first good download's is recorded and required from then on
    assert cached.read_bytes() == body and (cached.parent / (cached.name + ".sha256")).read_text().strip() == digest
    assert out["protocol"]["extractor_weights_source"] == server.url and out["fd_dinov2_vits14_2"] >= 0
    cached.write_bytes(body[:100])  # other bytes: refused (the server is gone, so it cannot be fetched again)
    with pytest.raises(GankitError, match=r"cannot download DINOv2 ViT-S/14 weights .*expected sha256 "
                                          f"{digest}; download it yourself and pass --dinov2 FILE$"):
        dinov2.fetched_dinov2(progress=False)


def test_without_a_server_the_error_names_the_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    with pytest.raises(GankitError, match=r"no published sha256; download it yourself and pass --dinov2 FILE$"):
        dinov2.fetched_dinov2(progress=False)
