"""Generator and discriminator architectures, registered by name.

A builder takes `(ModelConfig, shape)` where shape is one example's shape from the data, and
returns `(G, D)`. G maps `(B, z_dim)` noise to examples; D maps examples to `(B,)` logits.
Nets never know which loss trains them.
"""

from . import anomaly, dcgan, mlp, progan, resnet, semisup, speech, stylegan, text2image, translation  # noqa: F401
from .registry import build, count_params, flops_per_example, models

__all__ = ["build", "count_params", "flops_per_example", "models"]
