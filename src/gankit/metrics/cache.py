"""On-disk cache of reference features: extracting 5000+ real images is most of an eval's cost.

Keyed by a hash of the data tensor, the extractor's weights, the preprocessing version and the
count; written atomically (temp file + rename) so a crash never leaves a half-written entry. A
damaged entry is recomputed, not trusted. Location: $GANKIT_CACHE or ~/.cache/gankit.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from torch import Tensor

log = logging.getLogger("gankit")
PREPROCESSING = "v2"  # bump when the way images reach the extractor changes (v2: BatchNorm folded)


def root() -> Path:
    """gankit's cache folder: $GANKIT_CACHE or ~/.cache/gankit (features, weights, the decoded
    digits, the autotuner's choices and the speech corpus each have a sub-folder)."""
    return Path(os.environ.get("GANKIT_CACHE", Path.home() / ".cache" / "gankit"))


def cache_dir() -> Path:
    return root() / "features"


def key(x: Tensor, extractor_id: str) -> str:
    h = hashlib.sha256()
    h.update(str((tuple(x.shape), str(x.dtype), extractor_id, PREPROCESSING)).encode())
    h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def cached(x: Tensor, extractor_id: str, compute: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor]:
    from safetensors.torch import load_file, save_file

    path = cache_dir() / f"{key(x, extractor_id)}.safetensors"
    if path.exists():
        try:
            return load_file(str(path))
        except Exception as e:  # damaged entry: recompute below
            log.warning("feature cache entry %s unreadable (%s); recomputing", path, type(e).__name__)
    out = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        save_file({k: v.contiguous() for k, v in out.items()}, str(tmp))
        os.replace(tmp, path)
    except OSError as e:  # a read-only home must not break evaluation
        log.warning("could not write feature cache %s (%s)", path, e)
    return out
