"""Real-world data and runs (issue 20): each case rebuilt from a public bug report of a GAN
toolkit, with the right value asserted. Image decoding, labels, array layouts, config values,
run folders (locks, reuse, resume tidying, hand edits), divergence and failed writes."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.data.files import load_array, load_folder
from gankit.data.images import Report, decode, list_images
from gankit.data.prepared import prepare_folder
from gankit.errors import CheckpointError, DataError

QUICK = ["--set", "train.tensorboard=false", "--set", "train.sample_every=0", "-q"]


def _one_error(err):
    """Exactly one `error:` line and no traceback (notes may precede it)."""
    return sum(line.startswith("error:") for line in err.splitlines()) == 1 and "Traceback" not in err


def _blobs(n=12, size=16, seed=0):
    """Grey blobs of every brightness, as uint8 (n, size, size)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        cy, cx, r = rng.uniform(3, size - 3), rng.uniform(3, size - 3), rng.uniform(2, 6)
        out.append(np.clip(255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)), 0, 255))
    return np.rint(np.stack(out)).astype(np.uint8)


# --- image decoding ----------------------------------------------------------------------------

def test_16bit_png_reads_as_its_8bit_twin(tmp_path, capsys):
    a8 = _blobs()
    (tmp_path / "png8").mkdir(), (tmp_path / "png16").mkdir()
    for i, a in enumerate(a8):
        Image.fromarray(a).save(tmp_path / "png8" / f"{i}.png")
        Image.fromarray(a.astype(np.uint16) * 257).save(tmp_path / "png16" / f"{i}.png")
    with Image.open(tmp_path / "png16" / "0.png") as im:
        assert im.mode.startswith("I")  # really 16-bit on disk
    x8, x16 = load_folder(tmp_path / "png8").x, load_folder(tmp_path / "png16").x
    assert torch.equal(x8, x16)  # was: 60 % of the 16-bit pixels pure white
    assert float((x16 == 1).float().mean()) < 0.05
    # gankit prepare decodes through the same function
    m8 = prepare_folder(tmp_path / "png8", tmp_path / "p8.npy", 16)
    m16 = prepare_folder(tmp_path / "png16", tmp_path / "p16.npy", 16)
    assert m8["shape"] == m16["shape"] == [1, 16, 16]
    assert np.array_equal(np.load(tmp_path / "p8.npy"), np.load(tmp_path / "p16.npy"))
    # and the user is told what was converted
    assert main(["prepare", str(tmp_path / "png16"), "--out", str(tmp_path / "q.npy"), "--size", "16", "-q"]) == 0
    assert "16-bit, scaled to 8 bits: 12" in capsys.readouterr().err


def test_float_and_32bit_integer_images(tmp_path):
    a8 = _blobs(1)[0]
    Image.fromarray(a8.astype(np.int32) * 257, "I").save(tmp_path / "i32.tiff")  # Pillow's "I" mode
    Image.fromarray(a8.astype(np.float32) / 255, "F").save(tmp_path / "f.tiff")
    assert np.array_equal(np.asarray(decode(tmp_path / "i32.tiff")), a8)
    assert np.array_equal(np.asarray(decode(tmp_path / "f.tiff")), a8)


def test_hidden_folders_and_files_are_never_data(tmp_path, capsys):
    a = _blobs(4)
    for cls in ("0", "1", ".ipynb_checkpoints", "__MACOSX"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(a[i]).save(tmp_path / "data" / cls / f"{i}.png")
    Image.fromarray(a[3]).save(tmp_path / "data" / "0" / "._2.png")  # macOS resource fork next to a file
    ds = load_folder(tmp_path / "data")
    assert ds.classes == ["0", "1"] and len(ds) == 4
    assert main(["prepare", str(tmp_path / "data"), "--out", str(tmp_path / "d.npy"), "--size", "16", "-q"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[0])["classes"] == ["0", "1"]
    assert "skipped 3 hidden entries" in err and ".ipynb_checkpoints/" in err
    # A/B pairs skip them too: the checkpoints folder would otherwise be an unpaired file
    for side in ("A", "B"):
        (tmp_path / "ab" / side / ".ipynb_checkpoints").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(a[i]).save(tmp_path / "ab" / side / f"{i}.png")
        Image.fromarray(a[3]).save(tmp_path / "ab" / side / ".ipynb_checkpoints" / "9.png")
    from gankit.data.paired import load_ab_folder

    assert len(load_ab_folder(tmp_path / "ab")) == 3


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((12, 20), np.uint8)
    a[2:5, 3:15] = 255  # a bar near the top: not symmetric under rotation
    Image.fromarray(a).save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the pixels are stored turned 90 degrees CCW
    Image.fromarray(np.rot90(a)).save(tmp_path / "phone.png", exif=exif)
    report = Report()
    assert np.array_equal(np.asarray(decode(tmp_path / "phone.png", 0, report)), a)
    assert report.count["exif"] == 1
    assert np.array_equal(np.asarray(decode(tmp_path / "upright.png")), a)


def test_transparency_and_colour_modes_have_one_rule(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255  # top half opaque red, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    im = np.asarray(decode(tmp_path / "rgba.png"))
    assert im.shape == (8, 8, 3) and tuple(im[0, 0]) == (200, 0, 0) and tuple(im[7, 7]) == (255, 255, 255)
    la = Image.fromarray(np.stack([np.full((8, 8), 10, np.uint8), rgba[..., 3]], -1), "LA")
    la.save(tmp_path / "la.png")
    g = np.asarray(decode(tmp_path / "la.png"))
    assert g.shape == (8, 8) and g[0, 0] == 10 and g[7, 7] == 255
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    report = Report()
    c = np.asarray(decode(tmp_path / "cmyk.jpg", 0, report))
    assert c.shape == (8, 8, 3) and c[0, 0, 0] > 200 and c[0, 0, 1] < 60
    assert "converted to RGB from CMYK: 1" in report.summary("x", 1)


def test_command_inputs_use_the_same_decoder(tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(_blobs(1)[0].astype(np.uint16) * 257).save(tmp_path / "in" / "a.png")
    (tmp_path / "in" / ".hidden.png").write_bytes(b"not an image")
    rep = Report()
    assert [p.name for p in list_images(tmp_path / "in", recursive=False, report=rep)] == ["a.png"]
    from gankit.cli_apps import _read_image

    x = _read_image(tmp_path / "in" / "a.png", 1)
    assert torch.allclose(x[0], torch.from_numpy(_blobs(1)[0] / 127.5 - 1).float())


def test_unreadable_image_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    Image.fromarray(_blobs(1)[0]).save(tmp_path / "d" / "ok.png")
    (tmp_path / "d" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["prepare", str(tmp_path / "d"), "--out", str(tmp_path / "o" / "d.npy"), "--size", "8", "-q"]) == 2
    err = capsys.readouterr().err
    assert _one_error(err) and "bad.png: cannot read image" in err
    # the failed prepare leaves nothing: no hidden temp array, no output
    assert not [p.name for p in (tmp_path / "o").iterdir()]


# --- labels and array layouts -------------------------------------------------------------------

def _npz(path, y, n=32):
    np.savez(path, x=np.random.default_rng(0).integers(0, 256, (n, 28, 28)).astype(np.uint8), y=np.asarray(y))


def test_negative_labels_are_refused_before_a_run_folder_exists(tmp_path, capsys):
    y = np.arange(32) % 4
    y[5] = -1
    _npz(tmp_path / "y.npz", y)
    out = tmp_path / "run"
    assert main(["train", "cdcgan_mnist", "--data", str(tmp_path / "y.npz"), "--steps", "1", "--out", str(out),
                 *QUICK]) == 2
    err = capsys.readouterr().err
    assert _one_error(err) and "y holds -1 (1 of 32 examples)" in err
    assert not out.exists()
    for bad, word in ((np.full(32, 0.5), "0.5"), (np.r_[np.zeros(31), np.nan], "nan")):
        _npz(tmp_path / "f.npz", bad)
        with pytest.raises(DataError, match=word):
            load_array(tmp_path / "f.npz")


def test_labels_that_skip_values_are_mapped_and_said(tmp_path, capsys):
    _npz(tmp_path / "a.npz", np.arange(32) % 3 + 1)  # labels 1..3
    ds = load_array(tmp_path / "a.npz")
    assert ds.classes == ["1", "2", "3"] and ds.num_classes == 3 and set(ds.y.tolist()) == {0, 1, 2}
    _npz(tmp_path / "b.npz", np.where(np.arange(32) % 2, 255, 0))  # 0 and 255: two classes, not 256
    ds = load_array(tmp_path / "b.npz")
    assert ds.num_classes == 2 and ds.classes == ["0", "255"]
    out = tmp_path / "run"
    assert main(["train", "cdcgan_mnist", "--data", str(tmp_path / "b.npz"), "--steps", "1", "--out", str(out),
                 "--batch", "16", "--set", "model.width=8", *QUICK]) == 0
    assert "mapped to class indices 0..1 (0->0, 255->1)" in capsys.readouterr().err
    import gankit

    assert gankit.load(out).cfg.model.n_classes == 2


def test_ambiguous_array_layout_is_said(tmp_path, capsys):
    np.save(tmp_path / "px.npy", np.random.default_rng(0).integers(0, 256, (50, 1, 1, 3)).astype(np.uint8))
    assert main(["eval", str(tmp_path / "px.npy"), "--against", "mnist5k", "--metrics", "fid"]) == 2
    err = capsys.readouterr().err
    assert "read channels-first: 50 images of 1 channel(s), 1x3 pixels" in err
    assert "(N,C,H,W) = (50, 3, 1, 1)" in err


# --- config values -----------------------------------------------------------------------------

@pytest.mark.parametrize("item", ["optim.lr_g=nan", "optim.lr_d=inf", "optim.grad_clip=nan", "reg.r1_gamma=-inf",
                                  "train.seconds=nan", "anomaly.rec_weight=nan"])
def test_non_finite_config_values_are_refused(item, tmp_path, capsys):
    argv = ["train", "toy_ring", "--steps", "1", "--set", item, "--out", str(tmp_path / "r"), *QUICK]
    if item.startswith("anomaly"):
        argv[1] = "ganomaly_mnist"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert _one_error(err) and f"{item.split('=')[0]} must be" in err
    assert not (tmp_path / "r").exists()


# --- run folders -------------------------------------------------------------------------------

def _train(out, *extra, steps=4):
    return main(["train", "toy_ring", "--steps", str(steps), "--out", str(out), "--set", "train.log_every=1",
                 *QUICK, *extra])


def test_a_folder_in_use_is_refused_naming_the_other_run(tmp_path, capsys):
    from gankit.training.rundir import RunLock

    out = tmp_path / "R"
    out.mkdir()
    lock = RunLock(out).acquire()  # another process training into R (flock: same as another process)
    try:
        assert _train(out) == 2
        err = capsys.readouterr().err
        assert "is in use by another gankit run (pid" in err
        assert not (out / "log.jsonl").exists()  # nothing of the second run was written
    finally:
        lock.release()
    # a lock file left by a process that died (kill -9) holds no flock: not stale, just a file
    assert _train(out) == 0
    capsys.readouterr()


def test_resume_is_refused_while_another_process_writes_the_run(tmp_path, capsys):
    from gankit.training.rundir import RunLock

    out = tmp_path / "R"
    assert _train(out, steps=2) == 0
    lock = RunLock(out).acquire()
    try:
        assert main(["train", "--resume", str(out), "--steps", "4", "-q"]) == 2
        assert "is in use by another gankit run" in capsys.readouterr().err
    finally:
        lock.release()


def test_a_failure_in_a_folder_the_user_made_removes_only_what_the_run_wrote(tmp_path, capsys, monkeypatch):
    from gankit.training import loop

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")

    def fails(*a, **k):
        raise OSError(28, "No space left on device", str(out / "log.jsonl"))

    monkeypatch.setattr(loop, "_run", fails)
    assert _train(out, steps=2) == 2
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["notes.txt"]
    monkeypatch.undo()
    assert _train(out, steps=2) == 0  # and the folder is usable at once


def test_a_run_that_stopped_before_its_first_checkpoint_is_not_reused(tmp_path, capsys):
    out = tmp_path / "R"
    # lr 100: losses stay finite while D's Adam state overflows; caught at the first log row
    assert _train(out, "--set", "optim.lr_g=100", "--set", "optim.lr_d=100", steps=1500) == 2
    err = capsys.readouterr().err
    assert "became non-finite" in err and "no checkpoint was saved" in err and "step 0)" not in err
    assert (out / "log.jsonl").exists()  # the record of the divergence is kept
    assert _train(out) == 2
    err = capsys.readouterr().err
    assert "holds files of an earlier run that stopped before its first checkpoint" in err
    assert "diverged at step" in err


def test_setup_failure_leaves_no_folder(tmp_path, capsys, monkeypatch):
    from gankit.families import noise2image

    def boom(*a, **k):
        raise DataError("simulated failure while setting up")

    monkeypatch.setattr(noise2image.NoiseToImage, "init", boom, raising=True)
    assert _train(tmp_path / "R") == 2
    assert not (tmp_path / "R").exists()


def test_resume_writes_each_step_once_and_clears_temp_files(tmp_path, capsys):
    out = tmp_path / "R"
    assert _train(out, steps=4) == 0
    log = out / "log.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    # a kill -9 after step 6, mid-write: rows of steps 5..6, half a row, a temp checkpoint
    extra = [dict(r, step=r["step"] + 4) for r in rows if r["event"] == "log" and r["step"] in (1, 2)]
    log.write_text(log.read_text() + "".join(json.dumps(r) + "\n" for r in extra) + '{"event": "lo')
    (out / "checkpoints" / ".latest.pt.tmp99999").write_bytes(b"x" * 1000)
    assert main(["train", "--resume", str(out), "--steps", "8", "-q"]) == 0
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    steps = [r["step"] for r in rows if r["event"] == "log"]
    assert steps == list(range(1, 9))
    assert next(r for r in rows if r["event"] == "resume")["dropped_log_rows"] == 3
    assert not list((out / "checkpoints").glob(".*tmp*"))


def test_config_yaml_edits_are_applied_or_refused(tmp_path, capsys):
    import yaml

    out = tmp_path / "R"
    assert _train(out, steps=2) == 0
    path = out / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["optim"]["lr_g"] = 0.001
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--resume", str(out), "--steps", "4", "-q"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr_g: 0.0002 in the checkpoint, 0.001 in config.yaml" in err
    cfg["optim"]["lr_g"] = 0.0002
    cfg["train"]["steps"] = 3  # a key a resume may change: applied, and said
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--resume", str(out), "-q"]) == 0
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 3
    assert next(r for r in rows if r["event"] == "resume")["config_edits"] == ["train.steps=3"]


def test_a_failed_checkpoint_write_keeps_the_last_good_one(tmp_path, capsys, monkeypatch):
    out = tmp_path / "R"
    assert _train(out, steps=2) == 0
    ck = out / "checkpoints" / "latest.pt"
    before = ck.read_bytes()

    def full_disk(obj, f, *a, **k):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing "
                           "file data/3: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    assert main(["train", "--resume", str(out), "--steps", "4", "-q"]) == 2
    err = capsys.readouterr().err
    assert _one_error(err) and "latest.pt: cannot write it (" in err and "previous file there is kept" in err
    assert ck.read_bytes() == before
    assert not list((out / "checkpoints").glob(".*tmp*"))
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--steps", "4", "-q"]) == 0  # and it resumes from step 2


def test_save_atomic_names_the_cause(tmp_path, monkeypatch):
    from gankit.checkpoint import save_atomic

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(CheckpointError, match="No space left on device; .* MiB free"):
        save_atomic({"a": 1}, tmp_path / "x.pt")


def test_unexpected_errors_are_one_line(monkeypatch, capsys):
    import gankit.cli as cli

    def bug(a):
        raise ValueError("something deep inside\nsecond line")

    monkeypatch.setattr(cli, "cmd_list", bug)
    assert main(["list", "configs"]) == 3
    err = capsys.readouterr().err
    assert _one_error(err) and "internal error (ValueError: something deep inside)" in err
    with pytest.raises(ValueError):
        main(["-v", "list", "configs"])
