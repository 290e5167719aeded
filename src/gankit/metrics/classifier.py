"""The project's own digit classifier: the default feature extractor for 28x28 grayscale digits.

InceptionV3 weights cannot be downloaded here, and Inception features are a poor fit for
digits anyway; this small CNN is trained by the project on the embedded `mnist5k` digits
(`gankit.metrics.classifier.train_digit_classifier`, run by `scripts/train_digit_classifier.py`)
and shipped as safetensors. Its 128-d penultimate layer is the FID space ("mnistcnn"), its
softmax gives the class statistics.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GankitError

WEIGHTS = "mnistcnn.safetensors"


class DigitCNN(nn.Module):
    """conv32-conv32-pool-conv64-conv64-pool-fc128-fc10, BatchNorm; input (N,1,28,28) in [-1,1]."""

    feature_dim = 128
    name = "mnistcnn"

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2),
                                  *block(32, 64), *block(64, 64), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(128, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.drop(self.features(x)))

    @torch.no_grad()
    def features_and_probs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return f, F.softmax(self.head(f), dim=1)

    def for_inference(self) -> DigitCNN:
        """Fold each BatchNorm into its convolution and store weights channels_last, in place.

        Evaluation only ever runs the network in eval mode, where BatchNorm is a fixed affine map;
        folding it removes four passes over the activations, and channels_last lets oneDNN pick its
        fast convolution kernels: together 2.3x faster feature extraction on the 2-core AVX2 machine
        (benchmarks/eval_speed.py). Features change by ~1e-6 (float rounding). Not for training.
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        self.eval()
        layers, mods = [], list(self.body)
        while mods:
            m = mods.pop(0)
            if isinstance(m, nn.Conv2d) and mods and isinstance(mods[0], nn.BatchNorm2d):
                m = fuse_conv_bn_eval(m, mods.pop(0))
            layers.append(m)
        self.body = nn.Sequential(*layers)
        return self.to(memory_format=torch.channels_last)


@torch.no_grad()
def stacked_modes(net: nn.Module, x: Tensor) -> Tensor:
    """Stacked-MNIST mode of each (N, 3, 28, 28) sample: 100 * digit(R) + 10 * digit(G) + digit(B)."""
    d = [torch.cat([net(x[i: i + 1000, c: c + 1]).argmax(1) for i in range(0, len(x), 1000)]) for c in range(3)]
    return d[0] * 100 + d[1] * 10 + d[2]


def weights_path() -> Path:
    return Path(str(resources.files("gankit") / "weights" / WEIGHTS))


def load_digit_classifier(path: Path | None = None) -> DigitCNN:
    """The shipped (or a given) classifier, folded for fast inference (see DigitCNN.for_inference)."""
    from safetensors.torch import load_file

    p = Path(path) if path else weights_path()
    if not p.exists():
        raise GankitError(f"{p}: digit classifier weights not found; run scripts/train_digit_classifier.py")
    net = DigitCNN()
    try:
        net.load_state_dict(load_file(str(p)))
    except Exception as e:  # safetensors raises several types for a foreign file
        raise GankitError(f"{p}: not a gankit digit classifier ({type(e).__name__})") from None
    net.weights_sha = hashlib.sha256(p.read_bytes()).hexdigest()[:12]
    return net.for_inference()


def split_mnist5k(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """400 training and 100 held-out digits per class, the same split for every caller."""
    from ..config import DataConfig
    from ..data import build
    from ..data.core import stratified_split

    ds = build(DataConfig(source="mnist5k"))
    tr, te = stratified_split(ds.y, 0.2, seed)
    return ds.x[tr], ds.y[tr], ds.x[te], ds.y[te]


def classic_augment(x: Tensor, g: torch.Generator) -> Tensor:
    """Random shifts (up to 2 px), rotations (up to 10 degrees) and scales (0.9-1.1) of images
    (N,C,H,W), drawn from `g`: the digit classifier's training, the augment study and the
    semi-supervised GAN's labelled batch all augment with this."""
    n = len(x)
    ang = (torch.rand(n, generator=g) * 2 - 1) * (10 * torch.pi / 180)
    sc = 1 + (torch.rand(n, generator=g) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 / 14)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    # pad with the background value (-1): digits are white on black
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def evaluate_accuracy(net: nn.Module, x: Tensor, y: Tensor) -> float:
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[i: i + 500]).argmax(1) for i in range(0, len(x), 500)])
    return float((pred == y).float().mean())


def train_digit_classifier(out: Path, epochs: int = 30, seed: int = 0) -> dict[str, Any]:
    """Train on 4000 mnist5k digits, report accuracy on the 1000 held out, save safetensors."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    xtr, ytr, xte, yte = split_mnist5k()
    net = DigitCNN()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps = epochs * (len(xtr) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr) - 63, 64):
            idx = perm[i: i + 64]
            loss = F.cross_entropy(net(classic_augment(xtr[idx], g)), ytr[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    acc = evaluate_accuracy(net, xte, yte)
    info = {"heldout_accuracy": acc, "train_examples": len(xtr), "heldout_examples": len(xte),
            "epochs": epochs, "seed": seed, "data": "mnist5k (400/class train, 100/class held out)"}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out),
              metadata={"gankit": json.dumps(info)})
    return info
