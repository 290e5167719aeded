"""Text-to-speech: WER computed right, the mel front end and Griffin-Lim doing what they claim on
signals with a known answer, WAV in and out, espeak-ng clips, the recogniser learning, the
`speech_digits` recipe training, resuming and speaking (`gankit say`), `gankit eval` of a speech
run, and a tiny end-to-end study, all on a stand-in corpus."""

import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.data import audio as au
from gankit.errors import DataError, GankitError
from gankit.metrics import speech as ms
from gankit.studies import speech as study
from gankit.training.state import read_checkpoint

# the modules the tests read, under one name (front end, recogniser)
sp = SimpleNamespace(**{k: getattr(au, k) for k in dir(au) if not k.startswith("__")},
                     **{k: getattr(ms, k) for k in ("wer", "word_wer", "train_recogniser", "transcribe")})


def tone(freq: float, n: int = sp.SAMPLES, amp: float = 0.5) -> torch.Tensor:
    return amp * torch.sin(2 * math.pi * freq * torch.arange(n) / sp.RATE)


def test_wer_is_word_edit_distance_over_reference_words():
    assert sp.wer([["one", "two", "three"]], [["one", "three"]]) == pytest.approx(1 / 3)  # a deletion
    assert sp.wer([["one"]], [["one", "one"]]) == 1.0  # an insertion
    assert sp.wer([["one", "two"], ["six"]], [["one", "five"], ["six"]]) == pytest.approx(1 / 3)
    assert sp.wer([["seven"]], [[]]) == 1.0
    assert sp.word_wer(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 4])) == 0.25
    with pytest.raises(ValueError, match="2 references but 1"):
        sp.wer([["a"], ["b"]], [["a"]])


def test_mel_front_end_puts_a_tone_in_the_right_band():
    fb = sp.mel_filters()
    assert fb.shape == (sp.N_MELS, sp.N_FFT // 2 + 1) and (fb.sum(1) > 0).all()
    peaks = fb.argmax(1)
    assert (peaks[1:] >= peaks[:-1]).all()  # bands rise in frequency
    img = sp.to_image(torch.stack([tone(300), tone(2500)]))
    assert img.shape == (2, 1, sp.N_MELS, sp.FRAMES) and img.min() >= -1 and img.max() <= 1
    low, high = img[:, 0].mean(2).argmax(1).tolist()
    hz = (fb.argmax(1).float() * sp.RATE / sp.N_FFT).tolist()
    assert abs(hz[low] - 300) < 100 and abs(hz[high] - 2500) < 250


def test_phase_recovery_converges_on_an_exact_magnitude():
    """Fast Griffin-Lim from an exact STFT magnitude (a chirp): the spectral convergence
    ||S - |STFT(y)||| / ||S|| falls from random phase's ~0.6 to below 0.1 in 32 iterations."""
    t = torch.arange(sp.SAMPLES) / sp.RATE
    x = 0.5 * torch.sin(2 * math.pi * (200 * t + 800 * t * t)) * torch.hann_window(sp.SAMPLES)
    mag = sp._stft(x[None]).abs()
    sc = [((sp._stft(sp.phase_recovery(mag, k)).abs() - mag).norm() / mag.norm()).item() for k in (0, 8, 32)]
    assert sc[0] > 0.4 and sc[1] < sc[0] and sc[2] < 0.1


def test_griffin_lim_from_mel_images_gets_closer_with_iterations():
    """From a log-mel image the linear magnitude is only approximate (pseudo-inverse of 64 bands);
    measured on this two-tone signal: 0.24 (random phase) -> 0.12 (32 iterations) mean error in
    image units over the loud bins (40 image units = 80 dB, so 0.12 is about 5 dB)."""
    x = (tone(440) + tone(1200, amp=0.3)) * torch.hann_window(sp.SAMPLES)
    x = x / x.abs().max() * 0.9  # griffin_lim returns peak 0.9: compare at the same level
    img = sp.to_image(x[None])
    loud = img > -0.5
    errs = [(sp.to_image(sp.griffin_lim(img, iters=k)) - img).abs()[loud].mean().item() for k in (0, 32)]
    assert errs[1] < 0.15 and errs[1] < 0.7 * errs[0]
    assert sp.griffin_lim(img, 4).shape == (1, sp.SAMPLES)


def test_wav_round_trip_and_bad_files(tmp_path):
    x = np.sin(np.linspace(0, 100, 4000)).astype(np.float32) * 0.5
    sp.write_wav(x, tmp_path / "a.wav")
    y, rate = sp.read_wav(tmp_path / "a.wav")
    assert rate == sp.RATE and np.abs(y - x).max() < 1e-4
    (tmp_path / "bad.wav").write_bytes(b"RIFF....nonsense")
    with pytest.raises(DataError, match="not a WAV file"):
        sp.read_wav(tmp_path / "bad.wav")


def test_fit_clip_resamples_trims_and_pads():
    x = np.concatenate([np.zeros(5000), np.sin(np.arange(11025) * 0.3), np.zeros(3000)]).astype(np.float32)
    c = sp.fit_clip(x, 22050)
    assert c.shape == (sp.SAMPLES,) and np.abs(c).max() == pytest.approx(0.9, abs=1e-3)
    assert np.abs(c[:250]).max() == 0 and np.abs(c[256:300]).max() > 0.1  # starts 256 samples in
    assert np.abs(c[256 + 4000 + 50:]).max() == 0  # 0.5 s at 8 kHz, then silence


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make setup installs it)")
def test_espeak_speaks_a_digit(tmp_path):
    c = sp.say_espeak("seven", "en-us+f3", 160, 50, tmp_path)
    assert c.shape == (sp.SAMPLES,) and np.abs(c).max() == pytest.approx(0.9, abs=1e-3)
    voiced = (np.abs(c) > 0.05).nonzero()[0]
    assert 0.2 < (voiced[-1] - voiced[0]) / sp.RATE < 1.0  # a word, not silence or a sentence


def fake_corpus(per_word: int = 6) -> dict[str, torch.Tensor]:
    """Ten 'words' that are ten pitches: a corpus with a known, learnable answer."""
    word = torch.arange(10).repeat_interleave(per_word)
    g = torch.Generator().manual_seed(0)
    wav = torch.stack([tone(200 + 300 * w, amp=0.3 + 0.5 * float(torch.rand((), generator=g)))
                       * torch.hann_window(sp.SAMPLES) for w in word.tolist()])
    return {"wav": wav, "word": word, "test": torch.arange(len(word)) % 3 == 0}  # 2 of 6 per word held out


def test_recogniser_learns_separable_words():
    c = fake_corpus()
    img = sp.to_image(c["wav"])
    net = sp.train_recogniser(img, c["word"], steps=60)
    assert sp.word_wer(sp.transcribe(net, c["wav"]), c["word"]) < 0.1


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """The fake corpus where the dataset `espeak_digits` looks for the synthesised one."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    c = fake_corpus()
    d = tmp_path / "cache" / "speech"
    d.mkdir(parents=True)
    np.savez(d / f"espeak-digits-{au.CORPUS_VERSION}.npz", wav=c["wav"].numpy(), word=c["word"].numpy(),
             test=c["test"].numpy())
    monkeypatch.setattr(ms, "RECOGNISER_STEPS", 5)
    return c


SMALL = ["model.width=4", "train.batch=8", "train.precision=fp32", "train.channels_last=off", "train.ckpt_every=0",
         "train.sample_every=0", "train.tensorboard=false"]


def test_recipe_trains_resumes_exactly_says_and_evaluates(stand_in, tmp_path, capsys):
    gankit.train("speech_digits", out=tmp_path / "straight", steps=3, overrides=SMALL)
    gankit.train("speech_digits", out=tmp_path / "split", steps=2, overrides=SMALL)
    gankit.resume(tmp_path / "split", steps=3)
    a, b = (read_checkpoint(tmp_path / r / "checkpoints" / "latest.pt") for r in ("straight", "split"))
    assert all(torch.equal(a["g"][k], b["g"][k]) for k in a["g"])
    run = str(tmp_path / "straight")
    assert main(["say", run, "nine eight", "--gl-iters", "2", "--out", str(tmp_path / "o.wav")]) == 0
    y, rate = sp.read_wav(tmp_path / "o.wav")
    assert rate == sp.RATE and 0 < len(y) <= 2 * sp.SAMPLES + sp.RATE // 10
    assert main(["say", run, "eleven", "--out", str(tmp_path / "o.wav")]) == 2
    assert main(["say", run, "one", "--out", str(tmp_path / "o.mp3")]) == 2
    assert main(["say", str(tmp_path / "nothing"), "one"]) == 2
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "speech.pt").write_bytes(b"junk")
    assert main(["say", str(tmp_path / "old"), "one"]) == 2
    err = capsys.readouterr().err
    assert "cannot say 'eleven'" in err and "must end in .wav" in err and "gankit train speech_digits" in err
    assert main(["eval", run, "--n", "2", "--json"]) == 0
    res = __import__("json").loads(capsys.readouterr().out)
    assert 0 <= res["wer_recogniser"] <= 1 and res["fd_recogniser"] >= 0 and res["protocol"]["clips"] == 20
    with pytest.raises(GankitError, match="say what"):
        sp.parse_words("  ")


def test_mode_seeking_is_in_the_g_loss_of_conditional_recipes(stand_in, tmp_path):
    import json

    gankit.train("speech_digits", out=tmp_path / "r", steps=2, overrides=[*SMALL, "train.log_every=1"])
    rows = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert all(r["mode_seeking"] > 0 for r in rows if r["event"] == "log")


def test_tiny_study_end_to_end_on_a_stand_in_corpus(stand_in, tmp_path, capsys):
    s = study.Settings(seeds=2, steps=2, clf_steps=5, width=4, per_word=2, gl_iters=2, batch=8)
    res = study.run(s, save=tmp_path / "model", log=lambda m: None)
    sources = [r["source"] for r in res["summary"]]
    assert sources == ["real speech, held-out accents", "held-out speech through mel + Griffin-Lim",
                       "SpecGAN + Griffin-Lim"]
    assert res["summary"][2]["seeds"] == 2 and all(0 <= r["wer"] <= 1 for r in res["rows"])
    assert all(r["diversity"] > 0 for r in res["rows"])
    study.write(res, tmp_path / "out")
    for f in ("speech.md", "speech.csv", "speech.json", "speech.png"):
        assert (tmp_path / "out" / f).stat().st_size > 0
    assert (tmp_path / "model" / "say-seven.wav").is_file() and (tmp_path / "model" / "spectrograms.png").is_file()
