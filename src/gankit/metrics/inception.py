"""InceptionV3 as used for FID (the TTUR / pytorch-fid variant), built here. Output: 2048-d pool3
features. Weights: pytorch-fid's released file, fetched once into the cache with its SHA-256
checked (`fetched_inception`, see weights.py), or a file the user supplies (`load_inception`).

The FID variant differs from torchvision's classifier in three places, all reproduced: average
pools in the A, C and first E blocks exclude padding, and the last E block max-pools.
Accepts torchvision-style state dicts (e.g. pytorch-fid's pt_inception-2015-12-05 file), as
.pth (loaded with weights_only=True) or .safetensors; classifier and auxiliary heads are ignored.
Evaluation runs it with BatchNorm folded into the convolutions and channels_last weights
(`for_inference`); tests/test_inception_reference.py pins both forms, block by block, against
torch-fidelity's independent port.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError

# pytorch-fid's release (src/pytorch_fid/inception.py, FID_WEIGHTS_URL): the TF inception-2015-12-05
# graph ported to PyTorch. Its name carries the first 8 hex digits of its SHA-256 (torch.hub's
# check_hash convention); no full hash is published, so the first good download's is recorded.
INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                 "pt_inception-2015-12-05-6726825d.pth")
INCEPTION_SHA256 = "6726825d"


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool  # FID's last block max-pools (a quirk of the TF graph)
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pool = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pool)], 1)


def preprocess(x: Tensor) -> Tensor:
    """pytorch-fid's input pipeline (InceptionV3.forward with resize_input and normalize_input) for
    gankit's images: (N, 1 or 3, H, W) in [-1, 1] -> (N, 3, 299, 299) in [-1, 1]. Gray is replicated
    to 3 channels; the resize is F.interpolate bilinear, align_corners=False (half-pixel centres, no
    antialiasing; a 299x299 input is returned unchanged); values are not rescaled, because
    pytorch-fid's 2x - 1 of its [0, 1] input is already what gankit's [-1, 1] images are (the two
    steps are linear, so their order does not matter). torch-fidelity and the TF original differ by
    design: uint8 in, (x - 128) / 128 and TF1's resize. Raises DataError for another shape."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"InceptionV3 FID takes (N, 1 or 3, H, W) images, got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)


class InceptionV3FID(nn.Module):
    """Images (N, 1 or 3, H, W) in [-1, 1] -> (N, 2048) pool3 features. Preprocessing as pytorch-fid's
    (resize_input, normalize_input): gray replicated to 3 channels, bilinear resize to 299x299
    (align_corners=False), values kept in [-1, 1]; hence the name in every metric."""

    feature_dim = 2048
    name = "inception_pytorchfid"
    # images per pass; memory grows with it (a process passing 200 at once peaked at 3.7 GB), and
    # small passes run faster from cache: 6.4 / 5.9 / 5.6 images/s at 25 / 50 / 100 (folded and
    # channels_last, 1 thread, taking turns on 300 digits; docs/benchmarks.md)
    batch = 25

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b, self.Mixed_7c = InceptionE(1280, max_pool=False), InceptionE(2048, max_pool=True)

    def forward(self, x: Tensor) -> Tensor:
        if len(x) > self.batch:
            return torch.cat([self(part) for part in x.split(self.batch)])
        x = preprocess(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def for_inference(self) -> InceptionV3FID:
        """Fold each BatchNorm into its convolution and store the weights channels_last, in place.

        Evaluation runs the network in eval mode only, where BatchNorm is a fixed affine map: folded,
        94 passes over the activations go, and channels_last lets oneDNN pick its fast kernels.
        Measured on 2000 digits, 1 thread, AVX-512 (benchmarks/inception_speed.py, docs/benchmarks.md):
        5.25 images/s against 2.56 unfolded NCHW (channels_last alone: 4.24); features within 7e-7
        of the largest feature of the unfolded fp32 network (float rounding), FID within 2e-7
        relative. bf16 autocast, faster still, moved FID by 2e-3: not used. Not for training; the
        state dict loses its `bn.` keys."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        self.eval()
        for m in self.modules():
            if isinstance(m, BasicConv2d) and isinstance(m.bn, nn.BatchNorm2d):
                m.conv, m.bn = fuse_conv_bn_eval(m.conv, m.bn), nn.Identity()
        return self.to(memory_format=torch.channels_last)


def random_state(seed: int) -> dict[str, Tensor]:
    """Seeded random weights under pytorch-fid's keys (no fc), for tests and benchmarks without the
    release: He-scaled convs and random BatchNorm statistics and affine terms (positive variances),
    so that activations stay of order 1 through all 94 layers and a BatchNorm read wrongly, or a
    swapped branch, changes the features (PyTorch's init would leave BatchNorm the identity)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in InceptionV3FID().state_dict().items():
        kind = k.rsplit(".", 2)[-2:]
        if kind == ["conv", "weight"]:
            sd[k] = torch.randn(v.shape, generator=g) * (2 / v[0].numel()) ** 0.5
        elif kind == ["bn", "weight"]:
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        elif kind in (["bn", "bias"], ["bn", "running_mean"]):
            sd[k] = torch.randn(v.shape, generator=g) * 0.1
        elif kind == ["bn", "running_var"]:
            sd[k] = torch.rand(v.shape, generator=g) * 1.5 + 0.5
        else:  # num_batches_tracked
            sd[k] = v
    return sd


def load_inception(path: str | Path, for_inference: bool = True) -> InceptionV3FID:
    """InceptionV3FID with the weights in `path` (.pth or .safetensors), checked key by key: every
    tensor of the network must be there with its shape, and nothing else may be, except the
    classifier and auxiliary heads (ignored) and the 94 BatchNorm `num_batches_tracked` counters,
    which may be absent (PyTorch's BatchNorm fills them in on load, so pytorch-fid accepts such a
    file, and eval never reads them). `for_inference`: folded and channels_last, as evaluation runs
    it (InceptionV3FID.for_inference); False keeps the file's tensors as they are. Raises
    GankitError (one line) for a missing file, an unreadable one, or a missing, unexpected or
    misshapen key (named)."""
    from .weights import load_strict, read_state_dict

    p = Path(path)
    sd = read_state_dict(p, "Inception")
    sd = {k: v for k, v in sd.items() if not k.startswith(("fc.", "AuxLogits."))}
    net = InceptionV3FID()
    own = net.state_dict()
    counters = [k for k in own if k.endswith(".num_batches_tracked")]
    for k in counters:
        sd.setdefault(k, own[k])
    net = load_strict(net, sd, p, "InceptionV3 FID")
    return net.for_inference() if for_inference else net


def fetched_inception(progress: bool | None = None) -> InceptionV3FID:
    """InceptionV3FID with pytorch-fid's released weights, downloaded once (INCEPTION_URL) into
    `<cache>/weights/` and checked against INCEPTION_SHA256 (see weights.fetch). Raises GankitError
    (one line) when they cannot be fetched or verified, naming the file, URL, hash and --inception."""
    from .weights import fetch

    path = fetch(INCEPTION_URL, INCEPTION_SHA256, what="FID InceptionV3 weights", flag="--inception FILE",
                 progress=progress)
    net = load_inception(path)
    net.weights_source = INCEPTION_URL
    return net
