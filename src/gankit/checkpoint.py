"""The checkpoint file: read with `weights_only=True` and checked (format number, a config),
written atomically (temp file, fsync, rename), and module weights loaded with a one-line error
naming the first mismatch. Below training/ so that families and the API can read runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import CheckpointError

FORMAT = 1


def read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}); the file is corrupt "
                              "or not a gankit checkpoint") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT or "config" not in ck:
        raise CheckpointError(f"{path}: not a gankit checkpoint (format {FORMAT})")
    return ck


def load_module(m: nn.Module, sd: dict[str, Tensor], what: str, path: Path) -> None:
    own = m.state_dict()
    missing = [k for k in own if k not in sd]
    extra = [k for k in sd if k not in own]
    shapes = [k for k in own if k in sd and own[k].shape != sd[k].shape]
    if missing or extra or shapes:
        if shapes:
            k = shapes[0]
            detail = f"{k} is {tuple(sd[k].shape)} in the checkpoint but {tuple(own[k].shape)} in the model"
        else:
            detail = f"missing {missing[:2]}" if missing else f"unexpected {extra[:2]}"
        raise CheckpointError(f"{path}: {what} in the checkpoint does not match this model ({detail})")
    m.load_state_dict(sd)


def save_atomic(obj: Any, path: Path) -> None:
    """Write to a temp file in the same folder, fsync, rename: a crash never leaves half a file,
    and a failed write (a full disk, a folder we may not write) leaves the previous file as it
    was and raises CheckpointError naming the path and the cause."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a failed write as RuntimeError, without errno
        cause = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        try:
            free = shutil.disk_usage(path.parent).free
            cause += f"; {free / 2**20:.0f} MiB free on that disk"
        except OSError:
            pass
        raise CheckpointError(f"{path}: cannot write it ({cause}); the previous file there is kept") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
