"""The FID InceptionV3 weights: loading pytorch-fid's file strictly, fetching it once with its hash
checked (from a loopback server: no test reaches outside this machine), and Inception as the
default extractor for images the digit CNN cannot score."""

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.inception import InceptionV3FID, load_inception


@pytest.fixture(scope="module")
def reference_state():
    """Random weights with exactly the keys of pytorch-fid's pt_inception-2015-12-05 file
    (torchvision's InceptionV3 with a 1008-class fc and no auxiliary head)."""
    torch.manual_seed(0)
    sd = InceptionV3FID().state_dict()
    sd["fc.weight"], sd["fc.bias"] = torch.randn(1008, 2048) * 0.01, torch.zeros(1008)
    return sd


def test_weights_load_with_or_without_batchnorm_counters(tmp_path, reference_state):
    counters = [k for k in reference_state if k.endswith(".bn.num_batches_tracked")]
    assert len(counters) == 94
    torch.save(reference_state, tmp_path / "with.pth")
    torch.save({k: v for k, v in reference_state.items() if k not in counters}, tmp_path / "without.pth")
    a, b = load_inception(tmp_path / "with.pth"), load_inception(tmp_path / "without.pth")
    w = "Mixed_7c.branch_pool.conv.weight"
    assert torch.equal(a.state_dict()[w], reference_state[w]) and torch.equal(b.state_dict()[w], reference_state[w])
    assert a.weights_sha256 != b.weights_sha256 and len(a.weights_sha256) == 64
    assert a.weights_sha == a.weights_sha256[:12]


@pytest.mark.parametrize("change, message", [
    ("drop", r"missing key Conv2d_1a_3x3\.bn\.running_mean\)"),
    ("extra", r"unexpected key Mixed_8a\.conv\.weight\)"),
    ("shape", r"Conv2d_1a_3x3\.conv\.weight has shape \(1,\), not \(32, 3, 3, 3\)"),
])
def test_weights_are_otherwise_strict(tmp_path, reference_state, change, message):
    sd = dict(reference_state)
    if change == "drop":
        del sd["Conv2d_1a_3x3.bn.running_mean"]
    elif change == "extra":
        sd["Mixed_8a.conv.weight"] = torch.zeros(1)
    else:
        sd["Conv2d_1a_3x3.conv.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(GankitError, match=message) as e:
        load_inception(tmp_path / "w.pth")
    assert "\n" not in str(e.value)
