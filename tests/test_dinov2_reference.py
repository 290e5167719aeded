"""gankit's DINOv2 ViT-S/14 against the original implementation: facebookresearch/dinov2's
models/vision_transformer.py and layers/ as of its first commit (fc49f49, April 2023, the code the
dinov2_vits14 release was published with), which PyPI's `dinov2` 0.0.1.dev2 carries byte for byte
(checked file by file against the repository). Installed with --no-deps: its pinned requirements
(torch 2.0, torchvision, xformers, cuml) are for training; the model code needs torch only, and
without xformers it takes its plain-PyTorch attention. Built as hub/backbones.py builds
dinov2_vits14, given the same seeded weights (random LayerScale, LayerNorm and position embeddings,
attention far from uniform) and the same normalised images; the class token after the final norm
must agree to 1e-5 relative, block by block, so that a difference names the block it starts in."""

import importlib.util

import pytest
import torch

from gankit.metrics.dinov2 import DinoV2, load_dinov2

TOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: these are a few GFLOP each


@pytest.fixture(scope="module")
def official():
    if importlib.util.find_spec("dinov2") is None:
        pytest.skip("the original DINOv2 code is not installed (make setup installs dinov2==0.0.1.dev2 with --no-deps)")
    from dinov2.models.vision_transformer import vit_small

    # hub/backbones.py, dinov2_vits14: img_size=518, patch_size=14, init_values=1.0, ffn_layer="mlp",
    # block_chunks=0 (the first commit's hub passes the same)
    net = vit_small(patch_size=14, img_size=518, init_values=1.0, ffn_layer="mlp", block_chunks=0)
    return net.eval()


@pytest.fixture(scope="module")
def release_file(tmp_path_factory):
    """Seeded random weights under the official dinov2_vits14 keys, as the release is (.pth)."""
    g = torch.Generator().manual_seed(18)
    sd = {}
    for k, v in DinoV2().state_dict().items():
        if k.endswith(("qkv.weight", "proj.weight", "fc1.weight", "fc2.weight")) or k == "patch_embed.proj.weight":
            fan_in = v[0].numel()  # 1/sqrt(fan_in): attention logits of order 1, not timm's near-uniform init
            sd[k] = torch.randn(v.shape, generator=g) / fan_in ** 0.5
        elif k.endswith("gamma"):
            sd[k] = torch.rand(v.shape, generator=g) * 0.5 + 0.1
        elif k.endswith(("norm1.weight", "norm2.weight")) or k == "norm.weight":
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        else:  # biases, class and mask tokens, position embeddings
            sd[k] = torch.randn(v.shape, generator=g) * 0.1
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_random.pth"
    torch.save(sd, path)
    return path, sd


def test_weights_map_one_to_one_onto_the_original(official, release_file):
    path, sd = release_file
    # our module was written under the official names, so the map is the identity: checked here
    theirs = official.state_dict()
    assert set(theirs) == set(sd) and len(theirs) == len(sd) == 175
    for k, v in sd.items():
        assert theirs[k].shape == v.shape, k
    official.load_state_dict(sd, strict=True)
    ours = load_dinov2(path).state_dict()
    for k, v in sd.items():
        assert torch.equal(ours[k], v) and torch.equal(official.state_dict()[k], v), k


def _outputs(net, names):
    out, hooks = {}, []
    for name in names:
        hooks.append(net.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: out.__setitem__(name, o)))
    return out, hooks


@pytest.mark.parametrize("size", [224, 126])  # 224: what eval feeds (16x16 patches); 126: 9x9
def test_class_token_equals_the_original_block_by_block(official, release_file, size):
    path, sd = release_file
    official.load_state_dict(sd, strict=True)
    ours = load_dinov2(path)
    g = torch.Generator().manual_seed(size)
    x = torch.randn(2, 3, size, size, generator=g)  # already normalised: both nets see exactly this
    names = ["patch_embed"] + [f"blocks.{i}" for i in range(12)]
    mine, h1 = _outputs(ours, names)
    theirs, h2 = _outputs(official, names)
    try:
        with torch.no_grad():
            f = ours.forward_features(x)
            ref = official.forward_features(x)["x_norm_clstoken"]
            assert torch.equal(official(x), ref)  # the hub model's forward: the head is Identity
    finally:
        for h in h1 + h2:
            h.remove()
    for name in names:  # the first block that differs is the one to read
        r = float((mine[name] - theirs[name]).abs().max() / theirs[name].abs().max())
        assert r <= TOL, f"{name} differs from the original DINOv2 at {size}x{size}: {r:.2e} relative"
    assert f.shape == ref.shape == (2, 384)
    assert float((f[0] - f[1]).abs().max()) > 0.1  # not a degenerate net
    d = (f - ref).abs()
    assert float(d.max() / ref.abs().max()) <= TOL
    # per feature where features are not tiny: float32 rounding is ~4e-7 of the largest feature
    # here (measured; scaled_dot_product_attention against an explicit softmax), which is 1e-5 of a
    # feature at 1/25 of the largest
    big = ref.abs() > 0.1 * ref.abs().max()
    assert float((d[big] / ref.abs()[big]).max()) <= TOL
