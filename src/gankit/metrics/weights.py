"""Published weights fetched once into the cache, with their SHA-256 checked before any use.

`fetch(url, sha256)` returns `<cache>/weights/<file name>` ($GANKIT_CACHE or ~/.cache/gankit),
downloading it first when it is not there: streamed (urllib, standard library) into a temp file in
the same folder, with a progress bar (tqdm on stderr, shown on a terminal only), hashed, then
renamed into place (atomic), so a truncated or mismatching file is never used and never left as
the cached one. `sha256` is the publisher's full hash, or the prefix that torch.hub's convention
puts in the file name (`name-<first 8 hex>.pth`, as pytorch-fid's release); with a prefix only,
the full hash of the first good download is recorded beside the file (`<file>.sha256`) and every
later use, or download, must match it (trust on first use). An empty `sha256` is that mode for a
publisher that gives no hash at all (DINOv2's release): any first download is accepted and recorded.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import GankitError

log = logging.getLogger("gankit")
CHUNK = 1 << 20
TIMEOUT_S = 30  # per socket operation: a stalled server is an error, not a hang


def weights_dir() -> Path:
    from .cache import root

    return root() / "weights"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _expected(path: Path, sha256: str) -> tuple[str, bool]:
    """The hash to require (full or prefix) and whether it is full: the publisher's, else the record."""
    record = path.with_name(path.name + ".sha256")
    if len(sha256) == 64 or not record.exists():
        return sha256, len(sha256) == 64
    got = record.read_text().strip()
    if len(got) != 64 or not got.startswith(sha256):
        raise GankitError(f"{record}: damaged hash record (expected 64 hex digits"
                          f"{' starting ' + sha256 if sha256 else ''}); delete it")
    return got, True


def fetch(url: str, sha256: str, *, what: str = "weights", flag: str = "", progress: bool | None = None) -> Path:
    """The verified local copy of `url` (see the module's docstring). `flag` names the offline
    alternative in the errors (e.g. "--inception FILE"); `progress`: None shows the bar on a
    terminal only. Raises GankitError (one line) when the download fails (naming the file, its URL,
    its expected hash and `flag`), when the bytes received are fewer than announced or their hash
    differs (the file is deleted), or when the cache folder cannot be written."""
    name = url.rsplit("/", 1)[-1]
    path = weights_dir() / name
    offline = f"; download it yourself and pass {flag}" if flag else ""
    if path.exists():
        want, full = _expected(path, sha256)
        got = _sha256(path)
        if got == want if full else got.startswith(want):
            if not full:  # a copy put there by hand, or one whose record was lost
                _record(path, got)
            return path
        # a damaged or replaced cached copy is never used: fetched again below
        log.warning("%s: sha256 %s, expected %s; deleting it and downloading again", path, got, want)
        path.unlink()
    want, full = _expected(path, sha256)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GankitError(f"cannot create {path.parent} for {what} ({e.strerror}): set GANKIT_CACHE to a "
                          f"writable folder{' or pass ' + flag if flag else ''}") from None
    tmp = path.with_name(f".{name}.part{os.getpid()}")
    hashed = f"sha256 {want}" if full else f"sha256 starting {want}" if want else "no published sha256"
    log.info("downloading %s from %s", what, url)
    try:
        try:
            got = _download(url, tmp, name, progress)
        except _Failed as e:
            raise GankitError(f"cannot download {what} {name} from {url} ({e}); expected {hashed}{offline}") from None
        if not (got == want if full else got.startswith(want)):
            raise GankitError(f"{name} downloaded from {url} has sha256 {got}, expected {hashed}: deleted, "
                              f"not used{offline}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if not full:
        _record(path, got)
    return path


def _record(path: Path, digest: str) -> None:
    """Trust on first use: later uses and downloads of `path` must give these exact bytes."""
    record = path.with_name(path.name + ".sha256")
    part = record.with_name(f".{record.name}.part{os.getpid()}")
    part.write_text(digest + "\n")
    os.replace(part, record)


class _Failed(Exception):
    """Why a download failed, said inside fetch's one-line error."""


def _download(url: str, tmp: Path, name: str, progress: bool | None) -> str:
    """Stream `url` into `tmp`; its SHA-256. Raises _Failed."""
    from tqdm import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "gankit"})
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise _Failed(f"HTTP {e.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        raise _Failed(str(getattr(e, "reason", None) or e) or type(e).__name__) from None
    h, done = hashlib.sha256(), 0
    with resp:
        size = int(resp.headers.get("Content-Length") or 0) or None
        try:
            with open(tmp, "wb") as f, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                                            file=sys.stderr, disable=None if progress is None else not progress,
                                            leave=False) as bar:
                while block := resp.read(CHUNK):
                    f.write(block)
                    h.update(block)
                    done += len(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as e:  # a dropped connection, a full disk
            raise _Failed(f"failed after {done} bytes: {getattr(e, 'strerror', None) or type(e).__name__}") from None
    # urllib's read() returns b"" when the server closes early, even under a Content-Length
    if size is not None and done != size:
        raise _Failed(f"truncated: {done} of {size} bytes")
    return h.hexdigest()


def read_state_dict(path: str | Path, what: str) -> dict:
    """A weights file (.pth read with weights_only=True, or .safetensors) as a state dict; `what`
    names the weights in the one-line GankitError for a missing, unreadable or foreign file."""
    import torch

    p = Path(path)
    if not p.exists():
        raise GankitError(f"{p}: no such {what} weights file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # many error types for a foreign or truncated file
        raise GankitError(f"{p}: cannot read {what} weights ({type(e).__name__})") from None
    if not isinstance(sd, dict):
        raise GankitError(f"{p}: expected a state dict of tensors")
    return sd


def load_strict(net: Any, sd: dict, path: Path, what: str) -> Any:
    """Load `sd` into `net` requiring every key with its shape and no other (GankitError naming the
    first missing, unexpected or misshapen key and how many more); tags the net with its weights'
    SHA-256 (`weights_sha`, 12 digits, names cached features; `weights_sha256`) and returns it in
    eval mode."""
    import torch

    own = net.state_dict()
    missing = [k for k in own if k not in sd]
    extra = [k for k in sd if k not in own]
    wrong = [k for k in own if k in sd and (not isinstance(sd[k], torch.Tensor) or own[k].shape != sd[k].shape)]
    if missing or extra or wrong:
        bad = missing or extra or wrong
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        detail = (f"missing key {bad[0]}" if missing else f"unexpected key {bad[0]}" if extra else
                  f"{bad[0]} has shape {tuple(getattr(sd[bad[0]], 'shape', ()))}, not {tuple(own[bad[0]].shape)}")
        raise GankitError(f"{path}: not {what} weights ({detail}{more})")
    net.load_state_dict(sd, strict=True)
    digest = _sha256(Path(path))
    net.weights_sha, net.weights_sha256 = digest[:12], digest
    return net.eval()

