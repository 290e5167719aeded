import contextlib
import importlib.util
import sys
import types

import pytest
import torch

from gankit.api import make_config

torch.set_num_threads(2)

# Small, fast settings shared by the training tests: a few steps, tiny nets, no extra files.
TINY = ["model.width=8", "train.batch=16", "train.log_every=2", "train.sample_every=0", "train.ckpt_every=0",
        "train.tensorboard=false", "data.n=256"]


def tiny_config(recipe=None, *extra, steps=4, data=None):
    sets = list(TINY) + list(extra)
    if recipe in ("toy_ring", "toy_grid"):
        sets = [s for s in sets if not s.startswith("data.n=")] + ["data.n=512"]
    if recipe == "text2image_digits":  # captions need every digit; mnist5k is sorted by class
        sets = [s for s in sets if not s.startswith("data.n=")] + ["text.encoder_steps=5"]
    if recipe in ("ganomaly_mnist", "fanogan_mnist", "dknn_mnist"):  # one class of mnist5k, sorted by class
        sets = [s for s in sets if not s.startswith("data.n=")]
    if recipe == "fanogan_mnist":  # one GAN step, then its encoder
        sets.append("anomaly.gan_steps=1")
    return make_config(recipe, data=data, overrides=sets, steps=steps)


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture(autouse=True)
def _private_feature_cache(tmp_path_factory, monkeypatch):
    # tests never touch the user's ~/.cache; one cache folder per session keeps them fast
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path_factory.getbasetemp() / "gankit-cache"))
    _stand_in_speech(tmp_path_factory.getbasetemp() / "gankit-cache" / "speech")


@pytest.fixture(autouse=True)
def _no_weights_download(monkeypatch):
    # no test reaches outside this machine: the FID Inception and DINOv2 weights "come from" a closed loopback
    # port unless a test serves them itself (tests/test_inception_weights.py)
    from gankit.metrics import dinov2, inception

    name = inception.INCEPTION_URL.rsplit("/", 1)[-1]
    monkeypatch.setattr(inception, "INCEPTION_URL", f"http://127.0.0.1:{_CLOSED_PORT}/{name}")
    name = dinov2.DINOV2_URL.rsplit("/", 1)[-1]
    monkeypatch.setattr(dinov2, "DINOV2_URL", f"http://127.0.0.1:{_CLOSED_PORT}/{name}")


def _closed_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_CLOSED_PORT = _closed_port()


def _stand_in_speech(folder):
    """The spoken-digit corpus the recipe tests see: ten 'words' that are ten tones (espeak-ng
    synthesis of the real one takes a minute; its own test is in test_speech.py)."""
    import math

    import numpy as np

    from gankit.data.audio import CORPUS_VERSION, SAMPLES

    path = folder / f"espeak-digits-{CORPUS_VERSION}.npz"
    if path.exists():
        return
    word = np.repeat(np.arange(10), 6)
    t = np.arange(SAMPLES) / 8000
    wav = np.stack([0.5 * np.sin(2 * math.pi * (200 + 300 * w) * t) * np.hanning(SAMPLES) for w in word])
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, wav=wav.astype(np.float32), word=word.astype(np.int64), test=np.arange(len(word)) % 3 == 0)


@contextlib.contextmanager
def without_package_init(package):
    """Import submodules of `package` (an installed top-level package) under a stub package object,
    its __init__ not run; sys.modules is put back afterwards, so later imports see the real
    package. For torch-fidelity, whose __init__ imports torchvision (which does not import beside
    this torch), while the modules of it that tests and torchmetrics use do not."""
    spec = importlib.util.find_spec(package)  # a top-level package: found, not imported
    def ours(k):
        return k == package or k.startswith(package + ".")

    saved = {k: v for k, v in sys.modules.items() if ours(k)}
    for k in saved:
        del sys.modules[k]
    stub = types.ModuleType(package)
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules[package] = stub
    try:
        yield
    finally:
        for k in [k for k in sys.modules if ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: beside busy processes, two spinning OpenMP threads took
    8-10 s for two 299x299 Inception passes instead of 0.5 s on one (measured; see
    gankit.training.threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
