"""Feature nets for perceptual (content) losses, e.g. SRGAN's: `loss.feature_net`.

- `mnistcnn` (default): the project's digit CNN (shipped, trained by scripts/train_digit_classifier.py).
- a path to a VGG-19 state dict in torchvision's layout (`features.0.weight` ... `features.34.bias`,
  `.pth` or `.safetensors`): SRGAN's "VGG54" loss, the activations after conv5_4's ReLU, on ImageNet-
  normalised RGB (grayscale replicated). Nothing is downloaded; bring the file yourself.
- a path to another digit-CNN weights file (safetensors).

All are frozen and in eval mode; they map images in [-1, 1] to a feature tensor.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ConfigError, GankitError

# VGG-19's convolution widths; "M" is a 2x2 max-pool. The layer indices match torchvision's
# `features` Sequential, so its state dict loads as it is.
VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]


def vgg19_features() -> nn.Sequential:
    """VGG-19 up to relu5_4 (torchvision indices 0..35), randomly initialised."""
    layers: list[nn.Module] = []
    c = 3
    for v in VGG19:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c = int(v)
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    mean = (0.485, 0.456, 0.406)  # ImageNet statistics the VGG weights were trained with
    std = (0.229, 0.224, 0.225)

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg19_features()
        self.register_buffer("m", torch.tensor(self.mean).view(1, 3, 1, 1))
        self.register_buffer("s", torch.tensor(self.std).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = (x + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features((x - self.m) / self.s)


def _read_state(p: Path) -> dict[str, Tensor]:
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p))
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch and safetensors raise many types for a foreign file
        raise ConfigError(f"loss.feature_net: cannot read {p} ({type(e).__name__})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise ConfigError(f"loss.feature_net: {p} is not a state dict of tensors")
    return sd


def load_vgg19(p: Path) -> VGGFeatures:
    sd = _read_state(p)
    keys = {k.removeprefix("features."): v for k, v in sd.items() if k.startswith("features.")}
    net = VGGFeatures()
    want = net.features.state_dict()
    missing = sorted(set(want) - set(keys), key=lambda k: int(k.split(".")[0]))
    if missing:
        raise ConfigError(f"loss.feature_net: {p} lacks VGG-19 weights features.{missing[0]} "
                          f"({len(missing)} missing; torchvision's vgg19 layout expected)")
    bad = [k for k in want if keys[k].shape != want[k].shape]
    if bad:
        raise ConfigError(f"loss.feature_net: {p}: features.{bad[0]} has shape {tuple(keys[bad[0]].shape)}, "
                          f"VGG-19 needs {tuple(want[bad[0]].shape)}")
    net.features.load_state_dict({k: keys[k] for k in want})
    return net


def feature_net(spec: str) -> nn.Module:
    """The frozen feature map named by `loss.feature_net`."""
    from ..metrics.classifier import load_digit_classifier

    if spec == "mnistcnn":
        digit = load_digit_classifier()
    else:
        p = Path(spec).expanduser()
        if not p.is_file():
            raise ConfigError(f"loss.feature_net: {p}: no such weights file (or use mnistcnn)")
        if any(k.startswith("features.") for k in _read_state(p)):
            return _frozen(load_vgg19(p))
        try:
            digit = load_digit_classifier(p)
        except GankitError as e:
            raise ConfigError(f"loss.feature_net: {e}; expected VGG-19 (torchvision layout) or "
                              "gankit digit-CNN weights") from None
    return _frozen(DigitFeatures(digit))


class DigitFeatures(nn.Module):
    """The digit CNN's penultimate layer (the features FID's mnistcnn extractor uses)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.features(x)


def _frozen(net: nn.Module) -> nn.Module:
    net.eval()
    for q in net.parameters():
        q.requires_grad_(False)
    return net
