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
    if recipe in ("ganomaly_mnist", "fanogan_mnist"):  # one class of mnist5k, which is sorted by class
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
