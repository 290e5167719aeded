"""Semi-supervised GAN nets (Salimans et al. 2016, "Improved Techniques for Training GANs",
arXiv:1606.03498, and openai/improved-gan's mnist_feature_matching.py).

D is a K-class classifier: `d(x)` returns its K logits (N, K) and the features G matches (N, F).
The fake class is implicit (its logit fixed at 0), so D(x) = Z / (Z + 1) with Z = sum_k exp l_k.
D sees images in [0, 1] (the paper's scale, so its noise levels are the paper's) and adds Gaussian
noise to its input and hidden layers in training mode only; its layers are weight-normalised.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from ..errors import ConfigError
from .registry import image_shape, models


class GaussianNoise(nn.Module):
    """x + N(0, std^2) in training mode (the global torch RNG, saved in checkpoints); identity in eval."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        return x + self.std * torch.randn_like(x) if self.training and self.std > 0 else x


class SemisupD(nn.Module):
    """`body` maps images in [0, 1] to features (N, F); `head` maps them to K logits."""

    def __init__(self, body: nn.Module, features: int, classes: int) -> None:
        super().__init__()
        self.body, self.head = body, weight_norm(nn.Linear(features, classes))
        self.n_classes = classes

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.body((x + 1) * 0.5)
        return self.head(f), f


def mlp_d(n_in: int, classes: int) -> SemisupD:
    """784-1000-500-250-250-250-K, ReLU, input noise 0.3 and 0.5 before each later layer (the paper's)."""
    layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(0.3)]
    sizes = [n_in, 1000, 500, 250, 250, 250]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        if i:
            layers.append(GaussianNoise(0.5))
        layers += [weight_norm(nn.Linear(a, b)), nn.ReLU()]
    return SemisupD(nn.Sequential(*layers), sizes[-1], classes)


def conv_d(channels: int, w: int, classes: int) -> SemisupD:
    """A small all-convolutional D for little data (the paper's CIFAR D, narrowed): input noise
    0.3, 3x3 convs w, w/2 (stride 2), 2w, 2w/2, 2w (valid), leaky ReLU 0.2, dropout 0.3 after each
    stride, global mean pool -> 2w features."""
    def conv(a: int, b: int, stride: int = 1, pad: int = 1) -> list[nn.Module]:
        return [weight_norm(nn.Conv2d(a, b, 3, stride, pad)), nn.LeakyReLU(0.2)]

    body = nn.Sequential(GaussianNoise(0.3), *conv(channels, w), *conv(w, w, 2), nn.Dropout(0.3),
                         *conv(w, 2 * w), *conv(2 * w, 2 * w, 2), nn.Dropout(0.3), *conv(2 * w, 2 * w, pad=0),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return SemisupD(body, 2 * w, classes)


def mlp_g(nz: int, shape: tuple[int, ...]) -> nn.Module:
    """z -> 500 -> 500 -> image: softplus + BatchNorm, tanh out (the paper's sigmoid on [0, 1])."""
    n = 1
    for s in shape:
        n *= s
    return nn.Sequential(nn.Linear(nz, 500), nn.Softplus(), nn.BatchNorm1d(500),
                         nn.Linear(500, 500), nn.Softplus(), nn.BatchNorm1d(500),
                         nn.Linear(500, n), nn.Tanh(), nn.Unflatten(1, tuple(shape)))


def _classes(cfg: Any, name: str) -> int:
    if cfg.n_classes < 2:
        raise ConfigError(f"model {name} is a classifier of model.n_classes classes (set from the data's labels "
                          "by the semisup family); it needs at least 2")
    return cfg.n_classes


@models.register("ssgan_mlp", "semi-supervised GAN: K-class MLP D with noise and weight norm, MLP G "
                 "(Salimans et al. 2016, MNIST)")
def build_mlp(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    k = _classes(cfg, "ssgan_mlp")
    image_shape(shape, "ssgan_mlp")
    return mlp_g(cfg.z_dim, shape), mlp_d(shape[0] * shape[1] * shape[2], k)


@models.register("ssgan_conv", "semi-supervised GAN: K-class convolutional D (width model.width), MLP G")
def build_conv(cfg: Any, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    k = _classes(cfg, "ssgan_conv")
    c, _ = image_shape(shape, "ssgan_conv")
    return mlp_g(cfg.z_dim, shape), conv_d(c, cfg.width, k)

