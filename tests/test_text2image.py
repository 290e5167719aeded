"""Text-to-image: attributes measured right, captions parsed and encoded, the matching-aware D's
wrong captions really wrong, the attribute correlation able to fail, the `text2image_digits`
recipe trained, resumed, sampled by `gankit sample RUN --text` and scored by `gankit eval`, and a
tiny end-to-end study over the recipe."""

import json

import pytest
import torch
from conftest import tiny_config

import gankit
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import build
from gankit.data import captions as t
from gankit.errors import GankitError
from gankit.families.text2image import train_text_encoder
from gankit.metrics.captions import attribute_r
from gankit.regularizers import mode_seeking
from gankit.studies import text2image as study
from gankit.training.loop import fit, resume
from gankit.training.state import read_checkpoint


def bar(width: int, shear: float = 0.0, height: int = 16) -> torch.Tensor:
    """A white bar on black, `width` pixels wide; shear > 0 leans its top to the right."""
    x = -torch.ones(1, 1, 28, 28)
    for r in range(6, 6 + height):
        c0 = round(12 + shear * (6 + height / 2 - r))
        x[0, 0, r, c0: c0 + width] = 1
    return x


def test_measure_thickness_slant_and_size_on_known_shapes():
    thin, thick = t.measure(bar(2)), t.measure(bar(5))
    # 2 x area / perimeter of a w x h rectangle is wh / (w + h): w for a long stroke, less the ends
    assert thin["thickness"].item() == pytest.approx(2 * 16 / 18, rel=1e-5)
    assert thick["thickness"].item() == pytest.approx(5 * 16 / 21, rel=1e-5)
    assert abs(thin["slant"].item()) < 1e-3
    assert t.measure(bar(3, shear=0.5))["slant"].item() > 15  # leaning right
    assert t.measure(bar(3, shear=-0.5))["slant"].item() < -15
    assert t.measure(bar(3, height=20))["size"] > t.measure(bar(3, height=8))["size"]


def test_parse_any_order_and_one_line_errors():
    assert t.parse("A thick slanted seven") == (7, [1, 1, 0])
    assert t.parse("seven, small thin.") == (7, [-1, 0, -1])
    assert t.parse("an upright two") == (2, [0, -1, 0])
    for text, msg in [("a purple two", "unknown word 'purple'"), ("a thin", "names no digit"),
                      ("two three", "names two digits"), ("a thin thick two", "thin/thick twice")]:
        with pytest.raises(GankitError, match=msg):
            t.parse(text)


def test_tokens_spell_the_caption_and_index_all_captions():
    digits, lv = t.all_captions()
    ids = t.tokens(digits, lv)
    for k in (0, 13, 100, 269):
        words = [t.VOCAB[i] for i in ids[k].tolist() if i]
        assert words == t.caption(int(digits[k]), lv[k]).split()
    assert torch.equal(t.caption_index(digits, lv), torch.arange(270))
    assert t.caption(3, [1, -1, 1]) == "a thick upright large three"


def test_wrong_captions_never_match_the_right_one():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(10, (2000,), generator=g)
    lv = t.drop_words(torch.randint(-1, 2, (2000, 3), generator=g), 0.7, g)
    wy, wlv = t.wrong_levels(y, lv, g)
    assert ((wy != y) | (wlv != lv).any(1)).all()
    assert 0.4 < (wy != y).float().mean() < 0.6  # half another digit, half flipped attributes


def test_text_encoder_learns_to_read_captions():
    enc = train_text_encoder(150, seed=0, keep=0.7)
    digits, lv = t.all_captions()
    h = enc(t.tokens(digits, lv))
    assert (enc.digit_head(h).argmax(1) == digits).float().mean() > 0.95
    assert (enc.level_head(h).view(-1, 3, 3).argmax(2) - 1 == lv).float().mean() > 0.9
    assert not any(p.requires_grad for p in enc.parameters())


def test_attribute_correlation_is_high_on_real_digits_and_zero_for_random_levels():
    tr, te = build(DataConfig(source="mnist5k", split="train")), build(DataConfig(source="mnist5k", split="test"))
    atr = t.measure(tr.x)
    cuts, stats = t.tercile_cuts(atr, tr.y), t.class_stats(atr, tr.y)
    lv = t.levels(t.measure(te.x), te.y, cuts)
    real = attribute_r(te.x, te.y, lv, stats)
    assert min(real.values()) > 0.7
    shuffled = lv[torch.randperm(len(lv), generator=torch.Generator().manual_seed(0))]
    assert max(abs(v) for v in attribute_r(te.x, te.y, shuffled, stats).values()) < 0.15


def test_mode_seeking_rewards_different_images_for_different_noise():
    z1, z2 = torch.zeros(4, 8), torch.ones(4, 8)
    same = torch.zeros(4, 1, 5, 5, requires_grad=True)
    assert mode_seeking(same, torch.zeros(4, 1, 5, 5), z1, z2).item() == pytest.approx(1e5)
    far = mode_seeking(torch.ones(4, 1, 5, 5), -torch.ones(4, 1, 5, 5), z1, z2)
    assert far.item() == pytest.approx(1 / (2 + 1e-5))
    x = torch.full((4, 1, 5, 5), 0.1, requires_grad=True)
    mode_seeking(x, torch.zeros(4, 1, 5, 5), z1, z2).backward()
    assert (x.grad < 0).all()  # lowering the term pushes the two images apart


TINY = ["text.encoder_steps=5", "data.n=0", "train.batch=8", "train.precision=fp32", "train.channels_last=off"]


@pytest.mark.parametrize("matching", study.CONDITIONS)
def test_recipe_trains_resumes_exactly_and_samples_captions(matching, tmp_path):
    sets = [*TINY, f"text.matching={matching}", "train.ckpt_every=0"]
    fit(tiny_config("text2image_digits", *sets, steps=3), tmp_path / "straight")
    fit(tiny_config("text2image_digits", *sets, steps=2), tmp_path / "split")
    resume(tmp_path / "split", ["train.steps=3"])
    a, b = (read_checkpoint(tmp_path / r / "checkpoints" / "latest.pt") for r in ("straight", "split"))
    assert all(torch.equal(a["g"][k], b["g"][k]) for k in a["g"]) and all(torch.equal(a["d"][k], b["d"][k])
                                                                           for k in a["d"])
    g = gankit.load(tmp_path / "straight")
    assert g.net.cuts.abs().sum() > 0 and g.net.stats[:, :, 1].min() > 0  # the caption statistics travel
    out = g.sample(5, seed=1, text="a thin two")
    assert out.shape == (5, 1, 28, 28) and out.abs().max() <= 1
    assert torch.equal(out, g.sample(5, seed=1, text="thin two"))
    assert not torch.equal(out, g.sample(5, seed=1, text="a thick two"))
    # the encoder was trained before the GAN and stayed frozen: G and its EMA read captions alike
    enc = {k: v for k, v in a["g"].items() if k.startswith("enc.")}
    assert enc and all(torch.equal(v, a["g_ema"][k]) for k, v in enc.items())
    assert all(torch.equal(v, train_text_encoder(5, 0, 0.7).state_dict()[k[4:]]) for k, v in enc.items())


def test_gankit_sample_text_and_eval_on_a_run(tmp_path, capsys):
    fit(tiny_config("text2image_digits", *TINY, steps=2), tmp_path / "run")
    run = str(tmp_path / "run")
    assert main(["sample", run, "--text", "a thick seven", "--n", "6", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["sample", run, "--text", "a purple seven", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["sample", run, "--text", "a seven", "--label", "3", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown word 'purple'" in capsys.readouterr().err
    assert main(["eval", run, "--n", "60", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for k in ("class_accuracy_mnistcnn", "r_thickness", "r_slant", "r_size", "fid_mnistcnn", "diversity_mnistcnn"):
        assert isinstance(res[k], float), k
    assert res["protocol"]["held_out"] == "mnist5k (split test)" and min(res["ceiling_real"].values()) > 0.6
    assert main(["eval", run, "--metrics", "fid"]) == 2  # the family's own scores; not silently ignored
    assert "gives its own held-out scores" in capsys.readouterr().err
    # a z -> x run given --text, and a model file of the old study format: one-line errors
    fit(tiny_config("mlp_mnist", steps=1), tmp_path / "mlp")
    assert main(["sample", str(tmp_path / "mlp"), "--text", "a seven", "--out", str(tmp_path / "x.png")]) == 2
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "text2image.pt").write_bytes(b"old")
    assert main(["sample", str(tmp_path / "old"), "--text", "a seven", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "needs a text-to-image run" in err and "gankit train text2image_digits" in err


def test_text2image_refuses_data_without_digit_labels(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((32, 28, 28), np.uint8))
    with pytest.raises(GankitError, match="labelled 0-9"):
        fit(tiny_config("text2image_digits", *TINY, steps=1, data=str(tmp_path / "x.npy")), tmp_path / "r")


def test_tiny_study_end_to_end(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "text2image", "--seeds", "1", "--steps", "2", "--out", str(out),
                 "--save", str(tmp_path / "model"), "-q"]) == 0
    table = capsys.readouterr().out
    assert "GAN-CLS (matching-aware D)" in table and "real held-out digits (ceiling)" in table
    for f in ("text2image.md", "text2image.csv", "text2image.json", "text2image.png"):
        assert (out / f).stat().st_size > 0
    assert (tmp_path / "model" / "checkpoints" / "latest.pt").is_file()
    assert (tmp_path / "model" / "captions.png").is_file()
    assert main(["study", "text2image", "--sizes", "3"]) == 2  # not a text2image setting
