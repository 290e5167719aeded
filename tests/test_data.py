import gzip
import math

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import build, datasets
from gankit.errors import DataError


def load(source, **kw):
    return build(DataConfig(source=str(source), **kw))


@pytest.mark.parametrize("name", datasets.names())
def test_every_registered_dataset_loads(name):
    ds = load(name)
    assert len(ds) > 0 and torch.isfinite(ds.x).all() and ds.x.dtype == torch.float32
    if ds.is_image:
        assert ds.x.min() >= -1 and ds.x.max() <= 1 and ds.x.dim() == 4
    assert ds.y is not None and len(ds.y) == len(ds)


def test_mnist5k_has_500_per_class():
    ds = load("mnist5k")
    assert ds.shape == (1, 28, 28) and len(ds) == 5000
    assert torch.bincount(ds.y).tolist() == [500] * 10
    assert ds.x.min() == -1 and ds.x.max() == 1  # uint8 0..255 mapped to [-1,1]


def test_shapes_are_fixed_balanced_rgb_and_cached(monkeypatch):
    from gankit.data import shapes

    ds = load("shapes")
    assert ds.shape == (3, 32, 32) and len(ds) == 3000 and ds.classes == ["circle", "square", "triangle"]
    assert torch.bincount(ds.y).tolist() == [1000] * 3
    assert load("shapes", split="test").shape == (3, 32, 32) and len(load("shapes", split="test")) == 300
    # colour: the three channels differ (the set is not grey)
    assert float((ds.x[:, 0] - ds.x[:, 1]).abs().mean()) > 0.05
    # the cached copy is what drawing gives: the same seed, the same images on every machine
    rng = np.random.default_rng(0)
    first = [shapes.draw(rng, c) for c in (0, 1, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(first, shapes.arrays()[0][:3], strict=True))
    shapes.arrays.cache_clear()
    monkeypatch.setattr(shapes, "draw", lambda *a: pytest.fail("drew again instead of reading the cache"))
    assert np.array_equal(shapes.arrays()[0], ((ds.x.numpy() + 1) * 127.5).round().astype(np.uint8))
    shapes.arrays.cache_clear()


def test_digits8_range():
    ds = load("digits8")
    assert ds.shape == (1, 8, 8) and len(ds) == 1797 and ds.x.min() == -1 and ds.x.max() == 1


def test_ring_and_grid_geometry():
    ring = load("ring")
    c = ring.meta["centres"]
    assert len(c) == 8 and torch.allclose(c.norm(dim=1), torch.ones(8))
    angles = torch.atan2(c[:, 1], c[:, 0]) % (2 * math.pi)
    assert torch.allclose(angles.sort().values, torch.arange(8) * 2 * math.pi / 8, atol=1e-6)
    resid = ring.x - c[ring.y]
    assert resid.std().item() == pytest.approx(0.01, rel=0.05)
    grid = load("grid")
    assert len(grid.meta["centres"]) == 25 and set(grid.meta["centres"][:, 0].tolist()) == {-4, -2, 0, 2, 4}
    assert (grid.x - grid.meta["centres"][grid.y]).std().item() == pytest.approx(0.05, rel=0.05)


def test_resize_channels_and_count():
    ds = load("mnist5k", image_size=32, channels=3, n=100)
    assert ds.shape == (3, 32, 32) and len(ds) == 100
    assert ds.x.min() >= -1 and ds.x.max() <= 1
    assert torch.equal(ds.x[:, 0], ds.x[:, 1])  # gray replicated to RGB


def _write_idx(path, arr, gz=True):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def test_idx_images_with_labels(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (7, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(7) % 3)
    ds = load(tmp_path / "train-images-idx3-ubyte.gz")
    assert ds.shape == (1, 28, 28) and ds.y.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert torch.allclose(ds.x[:, 0], torch.from_numpy(imgs).float() / 127.5 - 1)


def test_idx_errors_name_the_file(tmp_path):
    p = tmp_path / "bad-images-idx3-ubyte"
    p.write_bytes(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") * 3 + b"\x00" * 5)
    with pytest.raises(DataError, match="bad-images-idx3-ubyte: IDX header says"):
        load(p)
    p.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="bad magic"):
        load(p)


def _save(path, arr, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8), mode).save(path)


def test_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        for i in range(3):
            _save(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (16, 16)), "L")
    ds = load(tmp_path)
    assert ds.shape == (1, 16, 16) and ds.classes == ["cats", "dogs"] and ds.y.tolist() == [0, 0, 0, 1, 1, 1]


def test_folder_rgb_jpeg_resized(tmp_path):
    rng = np.random.default_rng(0)
    _save(tmp_path / "a.jpg", rng.integers(0, 256, (40, 30, 3)), "RGB")
    _save(tmp_path / "b.png", rng.integers(0, 256, (20, 20, 3)), "RGB")
    with pytest.raises(DataError, match=r"b.png: size 20x20 differs from a.jpg \(30x40\); set data.image_size"):
        load(tmp_path)
    ds = load(tmp_path, image_size=32)
    assert ds.shape == (3, 32, 32) and ds.y is None


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        load(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png: cannot read image"):
        load(tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        load(tmp_path / "missing")


@pytest.mark.parametrize("layout", ["nhw", "nchw", "nhwc"])
def test_npy_layouts_and_ranges(tmp_path, layout):
    a = np.random.default_rng(0).integers(0, 256, (5, 12, 12)).astype(np.uint8)
    arr = {"nhw": a, "nchw": a[:, None], "nhwc": a[..., None]}[layout]
    np.save(tmp_path / "x.npy", arr)
    ds = load(tmp_path / "x.npy")
    assert ds.shape == (1, 12, 12)
    assert torch.allclose(ds.x[:, 0], torch.from_numpy(a).float() / 127.5 - 1)
    np.save(tmp_path / "f.npy", a.astype(np.float32) / 255)  # [0,1] floats
    assert torch.allclose(load(tmp_path / "f.npy").x, ds.x, atol=1e-5)


def test_npz_with_labels_and_bad_arrays(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 1, 0]))
    ds = load(tmp_path / "d.npz")
    assert ds.y.tolist() == [0, 1, 1, 0]
    np.save(tmp_path / "nan.npy", np.full((3, 8, 8), np.nan, np.float32))
    with pytest.raises(DataError, match="nan.npy: the array holds NaN"):
        load(tmp_path / "nan.npy")
    np.save(tmp_path / "shape.npy", np.zeros((3, 5, 8, 8), np.float32))
    with pytest.raises(DataError, match="shape.npy: expected images"):
        load(tmp_path / "shape.npy")
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="corrupt.npy: cannot read array"):
        load(tmp_path / "corrupt.npy")
