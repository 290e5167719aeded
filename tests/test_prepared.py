"""gankit prepare: an image folder becomes a uint8 memory-mapped set that training streams from,
with the same batches (and the same exact resume) as in-memory data."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import build
from gankit.data.prepared import Streamed, prepare_folder
from gankit.errors import DataError
from gankit.training.loop import fit, resume
from gankit.training.state import read_checkpoint


@pytest.fixture
def folder(tmp_path):
    """40 digit images in class folders, of two sizes (prepare resizes and centre-crops)."""
    ds = build(DataConfig(source="mnist5k"))
    root = tmp_path / "imgs"
    for i in range(40):
        j = i * 125
        d = root / str(int(ds.y[j]))
        d.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(((ds.x[j, 0].numpy() + 1) * 127.5).round().astype(np.uint8))
        (im if i % 2 else im.resize((40, 30))).save(d / f"{i:03d}.png")
    return root


def test_prepare_writes_memmap_labels_and_manifest(folder, tmp_path):
    out = tmp_path / "data.npy"
    assert main(["prepare", str(folder), "--out", str(out), "--size", "28", "-q"]) == 0
    m = json.loads((tmp_path / "data.json").read_text())
    assert m["n"] == 40 and m["shape"] == [1, 28, 28] and m["classes"] == [str(c) for c in range(10)]
    a = np.load(out, mmap_mode="r")
    assert a.dtype == np.uint8 and a.shape == (40, 1, 28, 28)
    labels = np.load(tmp_path / "data.labels.npy")
    assert sorted(set(labels.tolist())) == list(range(10)) and len(labels) == 40
    # images already 28x28 are stored unchanged
    first_28 = sorted(folder.rglob("*.png"))
    k = next(i for i, p in enumerate(first_28) if Image.open(p).size == (28, 28))
    assert np.array_equal(a[k, 0], np.asarray(Image.open(first_28[k])))


def test_streamed_batches_equal_the_in_memory_conversion(folder, tmp_path):
    out = tmp_path / "d.npy"
    prepare_folder(folder, out, 28)
    ds = build(DataConfig(source=str(out)))
    assert isinstance(ds.x, Streamed) and ds.shape == (1, 28, 28) and ds.num_classes == 10
    a = torch.from_numpy(np.load(out).astype(np.float32)) / 127.5 - 1
    idx = torch.tensor([7, 3, 3, 39, 0])
    assert torch.equal(ds.x[idx], a[idx])
    assert torch.equal(ds.x[2:5], a[2:5])
    with pytest.raises(IndexError):
        ds.x[torch.tensor([40])]
    assert torch.equal(ds.in_memory().x, a)


def test_training_streams_from_workers_and_resumes_exactly(folder, tmp_path):
    out = tmp_path / "d.npy"
    prepare_folder(folder, out, 28)
    sets = [f"data.source={out}", "data.n=0", "train.batch=8", "train.precision=fp32"]
    fit(tiny_config("dcgan_mnist_fast", *sets, steps=8), tmp_path / "straight")
    end = [json.loads(x) for x in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()][-1]
    assert end["batches"] == {"prefetched": 8, "read_in_step": 0}  # every batch came from the workers
    fit(tiny_config("dcgan_mnist_fast", *sets, steps=4), tmp_path / "split")
    resume(tmp_path / "split", ["train.steps=8"])
    a = read_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    b = read_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert all(torch.equal(a["g"][k], b["g"][k]) for k in a["g"])
    # and the same run from the same images held in memory computes the same
    np.save(tmp_path / "plain.npy", np.load(out))
    fit(tiny_config("dcgan_mnist_fast", *sets[1:], f"data.source={tmp_path / 'plain.npy'}", steps=8),
        tmp_path / "memory")
    c = read_checkpoint(tmp_path / "memory" / "checkpoints" / "latest.pt")
    assert all(torch.equal(a["g"][k], c["g"][k]) for k in a["g"])


def test_prepared_size_is_fixed(folder, tmp_path):
    out = tmp_path / "d.npy"
    prepare_folder(folder, out, 28)
    with pytest.raises(DataError, match="was prepared at"):
        build(DataConfig(source=str(out), image_size=32))


def test_prepare_errors_name_the_problem(folder, tmp_path):
    with pytest.raises(DataError, match="must be a .npy"):
        prepare_folder(folder, tmp_path / "d.bin", 28)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        prepare_folder(tmp_path / "empty", tmp_path / "d.npy", 28)
    (folder / "3" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: cannot read image"):
        prepare_folder(folder, tmp_path / "d.npy", 28, workers=1)
    assert not (tmp_path / "d.npy").exists()  # nothing half-written under the final name
