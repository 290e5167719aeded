"""Datasets as one in-memory tensor: images `(N,C,H,W)` in [-1,1] or toy points `(N,2)`.

`build(cfg.data)` returns a `Dataset`; sources are registered by name (embedded and toy sets) or
recognised from a path (image folder, IDX file, .npy/.npz). No torchvision.
"""

from . import audio, paired, shapes  # noqa: F401  (register the spoken digits, image-to-image built-ins, shapes)
from .core import Dataset, adapt, build, datasets, held_out

__all__ = ["Dataset", "adapt", "build", "datasets", "held_out"]
