"""DINOv2 ViT-S/14 as used for FD_DINOv2 (Stein et al. 2023, "Exposing flaws of generative model
evaluation metrics"), built here: no timm, no torchvision. Output: the class token after the final
LayerNorm (384-d), the official model's `forward_features(x)["x_norm_clstoken"]` and what its
`forward` returns (head = Identity), which dgm-eval's DINOv2 encoder feeds to the Fréchet distance.

Architecture as facebookresearch/dinov2 `hub/backbones.py::dinov2_vits14` builds it: `vit_small`
(patch 14, embed 384, depth 12, 6 heads, MLP ratio 4, qkv/proj/MLP biases, exact GELU), LayerNorm
eps 1e-6, LayerScale on both residual branches (the hub passes init_values=1.0; the loaded weights
replace it), a class token, no register tokens, `block_chunks=0` (keys `blocks.<i>.*`), a
`mask_token` (unused at inference, but in the state dict), learned position embeddings for the
518/14 = 37x37 grid + class, resized bicubically to the input's grid with the hub's
`interpolate_offset=0.1` (scale factor (16 + 0.1)/37 at 224x224, the convention of the released
weights; the newer `size=` path is taken only when the offset is 0) and no antialiasing.

Preprocessing as dgm-eval's `DINOv2Encoder.transform`: resize to 224x224 bicubic (PIL's kernel:
antialiased, a=-0.5), scale to [0, 1], ImageNet mean/std. Gray images are replicated to 3 channels.
Note: Stein et al. report FD_DINOv2 with ViT-L/14 (dgm-eval's default); this is ViT-S/14, so its
numbers carry `dinov2_vits14` in their names and are not comparable with the paper's.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GankitError

# hub/utils.py _DINOV2_BASE_URL + f"/{model_base_name}/{model_full_name}_pretrain.pth" (backbones.py);
# the publisher gives no hash, so the first good download's full SHA-256 is recorded (weights.fetch)
DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"
DINOV2_SHA256 = ""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        # scale 1/sqrt(head_dim), as the official Attention (self.scale = head_dim**-0.5)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, ls_init: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim, ls_init)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, ls_init)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2(nn.Module):
    """Images (N, 1 or 3, H, W) in [-1, 1] -> (N, 384) DINOv2 ViT-S/14 class-token features (see
    the module's docstring for the architecture and preprocessing)."""

    feature_dim = 384
    name = "dinov2_vits14"
    image_size = 224
    batch = 64  # images per forward pass: 257 tokens x 1536 MLP units each

    def __init__(self, patch: int = 14, dim: int = 384, depth: int = 12, heads: int = 6, mlp_ratio: float = 4.0,
                 grid: int = 37, ls_init: float = 1.0, interpolate_offset: float = 0.1) -> None:
        super().__init__()
        self.patch, self.grid, self.interpolate_offset = patch, grid, interpolate_offset
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, ls_init) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # masked-image training only; kept for the keys
        # the official init (timm's ViT): a random network gives usable features in tests
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def pos_encoding(self, h: int, w: int) -> Tensor:
        """Position embeddings for an h x w patch grid: the 37x37 grid resized bicubically."""
        if h == w == self.grid:
            return self.pos_embed
        pos = self.pos_embed.float()
        patches = pos[:, 1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        if self.interpolate_offset:
            # the released weights' convention (dino issue #8's kludge, kept by the hub): a scale
            # factor, which the bicubic kernel uses as is, rather than the output size
            scale = ((h + self.interpolate_offset) / self.grid, (w + self.interpolate_offset) / self.grid)
            patches = F.interpolate(patches, scale_factor=scale, mode="bicubic", antialias=False)
        else:
            patches = F.interpolate(patches, size=(h, w), mode="bicubic", antialias=False)
        assert patches.shape[-2:] == (h, w)
        return torch.cat([pos[:, :1], patches.permute(0, 2, 3, 1).reshape(1, h * w, -1)], 1).to(self.pos_embed.dtype)

    def forward_features(self, x: Tensor) -> Tensor:
        """Normalised (N, 3, H, W), H and W multiples of 14 -> the class token after the final norm."""
        h, w = x.shape[-2] // self.patch, x.shape[-1] // self.patch
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], 1) + self.pos_encoding(h, w)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)[:, 0]

    def preprocess(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if x.shape[1] != 3:
            raise GankitError(f"DINOv2 features need 1 or 3 channels, got {x.shape[1]}")
        x = (x.float() + 1) / 2
        if x.shape[-2:] != (self.image_size, self.image_size):
            # dgm-eval resizes PIL images (bicubic, antialiased); torch's antialiased bicubic is PIL's kernel
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", antialias=True)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.forward_features(self.preprocess(part)) for part in x.split(self.batch)]) \
            if len(x) else torch.zeros(0, self.feature_dim)


def _read(p: Path) -> dict:
    from .weights import read_state_dict

    return read_state_dict(p, "DINOv2")


def load_dinov2(path: str | Path) -> DinoV2:
    """DinoV2 with the weights in `path` (.pth as the official release, or .safetensors), loaded
    strictly: every key of the official dinov2_vits14 state dict with its shape, and no other.
    Raises GankitError (one line) for a missing or unreadable file, or naming the first missing,
    unexpected or misshapen key."""
    p = Path(path)
    sd = _read(p)
    from .weights import load_strict

    return load_strict(DinoV2(), sd, p, "DINOv2 ViT-S/14")


def fetched_dinov2(progress: bool | None = None) -> DinoV2:
    """DinoV2 with the official dinov2_vits14 weights, downloaded once (DINOV2_URL) into
    `<cache>/weights/`; no hash is published, so the first good download's SHA-256 is recorded and
    required afterwards (weights.fetch). Raises GankitError (one line) when they cannot be fetched
    or verified, naming the file, URL and --dinov2."""
    from .weights import fetch

    path = fetch(DINOV2_URL, DINOV2_SHA256, what="DINOv2 ViT-S/14 weights", flag="--dinov2 FILE",
                 progress=progress)
    net = load_dinov2(path)
    net.weights_source = DINOV2_URL
    return net

