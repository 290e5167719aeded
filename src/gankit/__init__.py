"""gankit: generative adversarial networks you can train on a laptop CPU and trust.

    run = gankit.train("dcgan_mnist", steps=5000, out="runs/b")   # a progress bar; progress=False: none
    g = gankit.load("runs/b"); x = g.sample_seeds(range(64))      # (64, 1, 28, 28) in [-1, 1], seed k -> image k
    g.save("share/b")                                             # = gankit export: safetensors + config + card

Public names: `train`, `resume`, `load`, `evaluate`, `export`, `make_config`, `parse_seeds`,
`Generator`, `Callback` (subclass it for your own hooks; `gankit.callbacks.Progress` is the
progress bar) and `GankitError` (bad input; one line). Importing gankit does no work: submodules
load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["train", "resume", "load", "evaluate", "export", "make_config", "parse_seeds", "Generator", "Callback",
           "GankitError"]


def __getattr__(name: str) -> Any:
    if name in ("train", "resume", "load", "evaluate", "export", "make_config", "parse_seeds", "Generator"):
        from . import api

        return getattr(api, name)
    if name == "Callback":
        from .callbacks import Callback

        return Callback
    if name == "callbacks":
        from . import callbacks

        return callbacks
    if name == "GankitError":
        from .errors import GankitError

        return GankitError
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")
