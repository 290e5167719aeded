"""Text-to-image: attributes measured right, captions parsed and encoded, the matching-aware D's
wrong captions really wrong, the attribute correlation able to fail, models saved and sampled by
`gankit sample RUN --text`, and a tiny end-to-end study."""

import pytest
import torch

from gankit.cli import main
from gankit.errors import CheckpointError, GankitError
from gankit.metrics.classifier import split_mnist5k
from gankit.regularizers import mode_seeking
from gankit.studies import text2image as t


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
    enc = t.train_text_encoder(150, seed=0, keep=0.7)
    digits, lv = t.all_captions()
    h = enc(t.tokens(digits, lv))
    assert (enc.digit_head(h).argmax(1) == digits).float().mean() > 0.95
    assert (enc.level_head(h).view(-1, 3, 3).argmax(2) - 1 == lv).float().mean() > 0.9
    assert not any(p.requires_grad for p in enc.parameters())


def test_attribute_correlation_is_high_on_real_digits_and_zero_for_random_levels():
    d = t.prepare()
    real = t.attribute_r(d["xte"], d["yte"], d["lvte"], d["stats"])
    assert min(real.values()) > 0.7
    shuffled = d["lvte"][torch.randperm(len(d["lvte"]), generator=torch.Generator().manual_seed(0))]
    assert max(abs(v) for v in t.attribute_r(d["xte"], d["yte"], shuffled, d["stats"]).values()) < 0.15


def test_mode_seeking_rewards_different_images_for_different_noise():
    z1, z2 = torch.zeros(4, 8), torch.ones(4, 8)
    same = torch.zeros(4, 1, 5, 5, requires_grad=True)
    assert mode_seeking(same, torch.zeros(4, 1, 5, 5), z1, z2).item() == pytest.approx(1e5)
    far = mode_seeking(torch.ones(4, 1, 5, 5), -torch.ones(4, 1, 5, 5), z1, z2)
    assert far.item() == pytest.approx(1 / (2 + 1e-5))
    x = torch.full((4, 1, 5, 5), 0.1, requires_grad=True)
    mode_seeking(x, torch.zeros(4, 1, 5, 5), z1, z2).backward()
    assert (x.grad < 0).all()  # lowering the term pushes the two images apart


@pytest.mark.parametrize("condition", t.CONDITIONS)
def test_a_few_steps_train_and_sample(condition, tmp_path):
    xtr, ytr, _, _ = split_mnist5k()
    x, y = xtr[:256], ytr[:256]
    lv = t.levels(t.measure(x), y, t.tercile_cuts(t.measure(xtr), ytr))
    s = t.Settings(steps=3, width=8)
    enc = t.train_text_encoder(5, 0, s.keep_word)
    torch.manual_seed(0)  # train() seeds the same way before building its model
    before = t.TextToImage(s.nz, s.width).g.state_dict()
    model = t.train(x, y, lv, s, 0, condition, enc)
    assert any(not torch.equal(before[k], v) for k, v in model.g.state_dict().items())
    out = model.sample_text("a thin two", 5, seed=1)
    assert out.shape == (5, 1, 28, 28) and out.abs().max() <= 1
    assert torch.equal(out, model.sample_text("thin two", 5, seed=1))
    with pytest.raises(GankitError, match="unknown text2image condition"):
        t.train(x, y, lv, s, 0, "gan-xyz", enc)


def test_save_load_and_gankit_sample_text(tmp_path, capsys):
    s = t.Settings(steps=1, width=8)
    model = t.TextToImage(s.nz, s.width)
    d = {"cuts": {a: torch.zeros(10, 2) for a in t.ATTRIBUTES}}
    t.save_model(model, s, "gan-cls", d, tmp_path / "m" / "text2image.pt")
    loaded, _ = t.load_model(tmp_path / "m")
    assert torch.equal(loaded.sample_text("a seven", 3), model.sample_text("a seven", 3))
    assert main(["sample", str(tmp_path / "m"), "--text", "a thick seven", "--n", "6",
                 "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["sample", str(tmp_path / "m"), "--text", "a purple seven", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["sample", str(tmp_path / "m"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "unknown word 'purple'" in err and "pass --text" in err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "text2image.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        t.load_model(tmp_path / "bad")
    with pytest.raises(CheckpointError, match="no text-to-image model"):
        t.load_model(tmp_path / "nothing")


def test_tiny_study_end_to_end(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "text2image", "--seeds", "1", "--steps", "2", "--out", str(out),
                 "--save", str(tmp_path / "model"), "-q"]) == 0
    table = capsys.readouterr().out
    assert "GAN-CLS (matching-aware D)" in table and "real held-out digits (ceiling)" in table
    for f in ("text2image.md", "text2image.csv", "text2image.json", "text2image.png"):
        assert (out / f).stat().st_size > 0
    assert (tmp_path / "model" / "text2image.pt").is_file() and (tmp_path / "model" / "captions.png").is_file()
    assert main(["study", "text2image", "--sizes", "3"]) == 2  # not a text2image setting
