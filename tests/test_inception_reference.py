"""gankit's FID InceptionV3 against an independent implementation: torch-fidelity 0.4.0's
FeatureExtractorInceptionV3 (its own port of the TF graph, with its own pooling patches), loaded
without torch-fidelity's package __init__, which imports torchvision (not installable beside this
torch). Both networks get the same seeded weights, written in pytorch-fid's file format and mapped
module by module, and the same normalised 299x299 input; their features must agree to 1e-5
relative, block by block, so that a difference names the block it starts in. Preprocessing differs
by design (uint8 and TF1's resize there, [-1, 1] and F.interpolate here, as pytorch-fid), so it is
pinned separately against explicit expected tensors."""

import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import without_package_init

from gankit.errors import DataError
from gankit.metrics.inception import InceptionE, load_inception, preprocess, random_state

TOL = 1e-5

# Our module -> torch-fidelity's, with the class each must be there: the FID variant's three
# patches live in these classes (avg pools without padding in A, C and the first E block, a max
# pool in the last E block), so pairing our Mixed_7c with their InceptionE_2 is part of the check.
# Below a module the parameter names are torchvision's on both sides; "fc" is the 1008-class head
# that pytorch-fid's file carries and torch-fidelity loads (gankit drops it: FID reads pool3).
MODULES = {
    "Conv2d_1a_3x3": "BasicConv2d", "Conv2d_2a_3x3": "BasicConv2d", "Conv2d_2b_3x3": "BasicConv2d",
    "Conv2d_3b_1x1": "BasicConv2d", "Conv2d_4a_3x3": "BasicConv2d",
    "Mixed_5b": "InceptionA", "Mixed_5c": "InceptionA", "Mixed_5d": "InceptionA", "Mixed_6a": "InceptionB",
    "Mixed_6b": "InceptionC", "Mixed_6c": "InceptionC", "Mixed_6d": "InceptionC", "Mixed_6e": "InceptionC",
    "Mixed_7a": "InceptionD", "Mixed_7b": "InceptionE_1", "Mixed_7c": "InceptionE_2", "fc": "Linear",
}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: these are a few GFLOP each


@pytest.fixture(scope="module")
def tfid():
    if importlib.util.find_spec("torch_fidelity") is None:
        pytest.skip("torch-fidelity not installed (make setup installs 0.4.0 with --no-deps)")
    from importlib.metadata import version

    with without_package_init("torch_fidelity"):
        mod = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
        resize = importlib.import_module("torch_fidelity.interpolate_compat_tensorflow")
    assert "torchvision" not in sys.modules
    return types.SimpleNamespace(Extractor=mod.FeatureExtractorInceptionV3, version=version("torch-fidelity"),
                                 tf_resize=resize.interpolate_bilinear_2d_like_tensorflow1x)


@pytest.fixture(scope="module")
def pytorchfid_file(tmp_path_factory):
    """Seeded random weights with exactly the keys of pytorch-fid's pt_inception-2015-12-05 file
    (inception.random_state: random BatchNorm statistics, activations of order 1, plus the fc)."""
    sd = random_state(18)
    g = torch.Generator().manual_seed(19)
    sd["fc.weight"] = torch.randn(1008, 2048, generator=g) * 0.02
    sd["fc.bias"] = torch.randn(1008, generator=g) * 0.1
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(sd, path)
    return path, sd


def _to_tfid(sd: dict) -> dict:
    """pytorch-fid's keys -> torch-fidelity's, module by module (MODULES); every key used once."""
    out = {}
    for k, v in sd.items():
        module, rest = k.split(".", 1)
        assert module in MODULES, f"no torch-fidelity module for {k}"
        target = f"{module}.{rest}"  # same module names; the class pairing is checked on the nets
        assert target not in out, f"{target} mapped twice"
        out[target] = v
    return out


@pytest.fixture(scope="module")
def both(tfid, pytorchfid_file, tmp_path_factory):
    path, sd = pytorchfid_file
    ours = load_inception(path, for_inference=False)  # the port as written, the file's tensors
    mapped = _to_tfid(sd)
    tfile = tmp_path_factory.mktemp("tfid") / "weights-inception-mapped.pth"
    torch.save(mapped, tfile)
    # torch-fidelity loads with load_state_dict(strict=True): a key missing, extra or misshapen on
    # its side fails here already
    theirs = tfid.Extractor("inception-v3-compat", ["2048", "logits"], feature_extractor_weights_path=str(tfile))
    return ours, theirs, sd, mapped


def test_weights_map_one_to_one_onto_torch_fidelity(both):
    ours, theirs, sd, mapped = both
    for name, cls in MODULES.items():
        assert type(getattr(theirs, name)).__name__ == cls, name
        if name != "fc":
            mine = getattr(ours, name)
            assert type(mine).__name__ == cls.split("_")[0], name
            if isinstance(mine, InceptionE):
                assert mine.max_pool == (cls == "InceptionE_2"), name
    their_sd = theirs.state_dict()
    assert len(mapped) == len(sd) == len(their_sd) and set(mapped) == set(their_sd)  # each used once
    own = ours.state_dict()
    assert set(own) == {k for k in sd if not k.startswith("fc.")}
    for k, v in sd.items():
        assert their_sd[k].shape == v.shape and torch.equal(their_sd[k], v), k
        if k in own:
            assert torch.equal(own[k], v), k


NAMES = [n for n in MODULES if n != "fc"]


def _blocks(net, names):
    """The output of each named child module of `net` on its next forward, by name."""
    out, hooks = {}, []
    for name in names:
        hooks.append(getattr(net, name).register_forward_hook(lambda m, i, o, name=name: out.__setitem__(name, o)))
    return out, hooks


def _run(net, x):
    """`net(x)` and the outputs of its blocks (NAMES)."""
    blocks, hooks = _blocks(net, NAMES)
    try:
        with torch.no_grad():
            return net(x), blocks
    finally:
        for h in hooks:
            h.remove()


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def reference_run(both, tfid):
    """torch-fidelity's features, logits and block outputs for two 299x299 RGB images (noise, and a
    smooth colour pattern with a dark border), and the same images as our network takes them."""
    _, theirs, _, _ = both
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (1, 3, 299, 299), generator=g, dtype=torch.uint8)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 299), torch.linspace(0, 1, 299), indexing="ij")
    smooth = torch.stack([torch.sin(6 * xx + 2 * c) * torch.cos(4 * yy - c) for c in range(3)])
    smooth = ((smooth + 1) * 127.5).round().to(torch.uint8)
    smooth[:, :20] = 0
    u = torch.cat([noise, smooth[None]])
    x = (u.float() - 128) / 128  # torch-fidelity's normalisation, done once for both nets
    # at 299x299 both resizes are the identity, so both networks see exactly `x`
    assert torch.equal(preprocess(x), x)
    assert torch.equal(tfid.tf_resize(u.float(), size=(299, 299), align_corners=False), u.float())
    (features, logits), blocks = _run(theirs, u)
    return x, features, logits, blocks


@pytest.mark.parametrize("as_eval_runs_it", [False, True], ids=["as_written", "folded_channels_last"])
def test_features_equal_torch_fidelity_block_by_block(both, tfid, pytorchfid_file, reference_run, as_eval_runs_it):
    """The port as written, and as evaluation runs it (BatchNorm folded, channels_last: float
    rounding apart, the same function)."""
    ours, _, sd, _ = both
    if as_eval_runs_it:
        ours = load_inception(pytorchfid_file[0])
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in ours.modules())
        assert ours.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x, tf, logits, theirs = reference_run
    f, mine = _run(ours, x)
    for name in NAMES:  # the first block that differs is the one to read
        r = _relative(mine[name], theirs[name])
        assert r <= TOL, f"{name} differs from torch-fidelity {tfid.version}: {r:.2e} relative"
    assert f.shape == tf.shape == (2, 2048)
    assert float(f.std()) > 0.1 and float((f[0] - f[1]).abs().max()) > 0.1  # not a degenerate net
    assert _relative(f, tf) <= TOL
    # per feature where features are not tiny: folding rounds differently, up to 7e-7 of the
    # largest feature (measured on 2000 digits, docs/benchmarks.md), 1e-5 of one at 1/14 of it
    big = tf.abs() > 0.1 * tf.abs().max()
    assert float(((f - tf).abs()[big] / tf.abs()[big]).max()) <= TOL
    # torch-fidelity's logits are its fc on the same pool3 features: pytorch-fid's head, if gankit
    # ever reads it (it does not: FID, KID and PRDC take pool3)
    torch.testing.assert_close(f @ sd["fc.weight"].T + sd["fc.bias"], logits, rtol=TOL, atol=TOL * 10)


def _bilinear_half_pixel(img: np.ndarray, size: int) -> np.ndarray:
    """The resize PyTorch and pytorch-fid use, written out: output pixel i samples the input at
    (i + 0.5) * H / size - 0.5 (half-pixel centres), clamped to the edge, linear in each axis."""
    def axis(n_in):
        s = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0)
        i0 = np.minimum(np.floor(s).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), s - i0

    (r0, r1, wr), (c0, c1, wc) = axis(img.shape[0]), axis(img.shape[1])
    rows = img[r0] * (1 - wr)[:, None] + img[r1] * wr[:, None]
    return rows[:, c0] * (1 - wc) + rows[:, c1] * wc


def test_preprocessing_is_pytorch_fids_written_out():
    # a 2x2 gray image: corners keep their values, the centre pixel is the mean of the four
    a, b, c, d = -0.5, 0.25, 1.0, -1.0
    out = preprocess(torch.tensor([[[[a, b], [c, d]]]]))
    assert out.shape == (1, 3, 299, 299)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])  # gray replicated
    corners = out[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    torch.testing.assert_close(corners, torch.tensor([a, b, c, d]), rtol=0, atol=1e-7)
    assert abs(float(out[0, 0, 149, 149]) - (a + b + c + d) / 4) < 1e-7
    # every pixel, on a non-square RGB image, against the formula
    g = np.random.default_rng(0)
    img = g.uniform(-1, 1, (3, 28, 21)).astype(np.float32)
    got = preprocess(torch.from_numpy(img)[None])[0].numpy()
    want = np.stack([_bilinear_half_pixel(ch.astype(np.float64), 299) for ch in img])
    assert np.abs(got - want).max() < TOL  # float32 weights in PyTorch: 3e-6 measured
    # values are not rescaled: pytorch-fid's 2p - 1 of p in [0, 1] is gankit's [-1, 1] image
    p = torch.from_numpy(img[None] + 1) / 2
    fid = 2 * F.interpolate(p, size=(299, 299), mode="bilinear", align_corners=False) - 1  # pytorch-fid 0.3.0
    torch.testing.assert_close(preprocess(2 * p - 1), fid, rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (2, 8, 8), (2, 2, 8, 8)])
def test_preprocessing_refuses_other_shapes(shape):
    with pytest.raises(DataError, match=rf"takes \(N, 1 or 3, H, W\) images, got shape \({shape[0]}, "):
        preprocess(torch.zeros(shape))


def test_forward_runs_passes_of_batch_images(pytorchfid_file):
    net = load_inception(pytorchfid_file[0])
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    sizes = []
    net.Conv2d_1a_3x3.register_forward_hook(lambda m, i, o: sizes.append(len(o)))
    with torch.no_grad():
        whole = net(x)
        net.batch = 2
        parts = net(x)
    assert sizes == [3, 2, 1]
    assert parts.shape == (3, 2048) and _relative(parts, whole) <= TOL
