"""Metrics on small and odd input (issue 20, cases 4, 8 and 13): each metric's minimum checked
before any work, unreliable values said as warnings, no NaN/inf in JSON, exact zeros where the
definition gives them, and `gankit eval` printing its results before a failed write."""

import errno
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import Dataset, build
from gankit.errors import GankitError
from gankit.metrics import distances as D
from gankit.metrics import evaluate, metrics
from gankit.metrics.evaluate import NEEDS, json_ready

# --- the distances on features -------------------------------------------------------------------


def test_fid_of_one_sample_is_a_one_line_error_not_a_linalg_traceback():
    with pytest.raises(D.TooFewSamples, match="FID needs at least 2 samples per set, got 1 and 10"):
        D.fid(torch.randn(1, 4), torch.randn(10, 4))
    with pytest.raises(D.TooFewSamples, match="KID needs at least 2"):
        D.kid(torch.randn(10, 4), torch.randn(1, 4))


def test_fid_offset_follows_pytorch_fid():
    # the first feature is constant 0 in one set: S1 S2 is singular with a double zero eigenvalue, and
    # scipy's Schur sqrtm returns NaN (0/0). pytorch-fid adds 1e-6 to both diagonals then, and only then.
    dead = np.array([[0.0, 0, 0], [0, -1, -2]])
    live = np.array([[0.0, 0, 0], [1, -1, -2]])
    f = D.fid_stats(dead, live)
    # closed form: S1 = v v^T / 2, S2 = w w^T / 2 (v.w = 5), so Tr (S1 S2)^(1/2) = 5 / 2, and
    # FID = |mu1 - mu2|^2 + Tr S1 + Tr S2 - 5 = 0.25 + 2.5 + 3 - 5
    assert f.offset == 1e-6 and f.value == pytest.approx(0.75, abs=1e-4) and f.value < 0.75
    assert any("1e-06 added to both diagonals" in w for w in D.fid_warnings(f, 2, 3))
    # the other order, S2 S1 (its transpose): sqrtm copes, so no offset and the exact value
    assert D.fid_stats(live, dead) == D.Frechet(0.75, 0.75, pytest.approx(3e-7, rel=0.01), 0.0)
    # a well-conditioned case: no offset, and the value is the closed form to 1e-10
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    well = D.frechet(np.zeros(3), np.diag(a), np.ones(3), np.diag(b))
    assert well.offset == 0.0 and well.value == pytest.approx(3 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum(), rel=1e-10)


def test_fid_within_the_rounding_tolerance_is_zero():
    # the same covariance twice (singular: 50 samples, 128 features): rounding leaves a small negative
    feats = torch.from_numpy(np.random.default_rng(0).normal(size=(50, 128)))
    mu, s = D.gaussian_stats(feats)
    f = D.frechet(mu, s, mu, s)
    assert -f.tolerance < f.raw < 0 and f.value == 0.0 and not f.clearly_negative
    assert f.tolerance == pytest.approx(128**1.5 * 2**-26.5 * 2 * np.trace(s))  # D^1.5 sqrt(u) (Tr S1 + Tr S2)


def test_fid_sample_warnings_follow_the_feature_count():
    assert "rank at most 127 < 128" in D.fid_sample_warning(128, 128)
    assert "biased upwards" in D.fid_sample_warning(129, 128) and "1280" in D.fid_sample_warning(1279, 128)
    assert D.fid_sample_warning(1280, 128) is None


def test_identical_feature_sets_are_exactly_zero():
    f = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    assert D.fid(f, f.flip(0)) == 0.0 and D.kid(f, f.flip(0)) == (0.0, None)  # bit-identical rows, any order
    assert D.identical_sets(f, f.flip(0)) and not D.identical_sets(f, f[:-1])
    assert D.shared_rows(f, torch.cat([f[:5], f[:3] + 1])) == 5
    twice = torch.cat([f[:1], f[:-1]])  # the same rows, but the first twice and the last never
    assert not D.identical_sets(f, twice) and D.shared_rows(f, twice) == 40


def test_unbiased_kid_of_a_set_against_itself_would_be_negative():
    # why identical sets are special-cased: k_xy then holds every k(x, x), so the unbiased estimate
    # (mean off-diagonal k_xx + k_yy minus 2 mean k_xy) is negative by construction
    f = torch.randn(30, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    g = f + 1e-9  # not bit-identical: computed as usual
    mean, std = D.kid(f, g, subsets=1, subset_size=30)
    assert mean < -0.01 and std is None


def test_kid_std_is_null_when_it_is_no_spread():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g)
    assert D.kid(x, y)[1] is None  # 300 < 1000: each of the 100 subsets would be both whole sets
    assert D.kid(x, y, subsets=1, subset_size=100)[1] is None  # one subset: no spread either
    assert D.kid(x, y, subsets=20, subset_size=100)[1] > 0

# --- evaluate(): needs checked first, warnings, JSON-safe values --------------------------------

@pytest.fixture(scope="module")
def digits():
    return build(DataConfig(source="mnist5k"))


@pytest.fixture(scope="module")
def ref(digits):
    """500 digits, every class (mnist5k is sorted by class): small enough that its features are quick."""
    return Dataset(digits.x[::10].clone(), digits.y[::10].clone(), "mnist500")


@pytest.fixture(scope="module")
def others(digits):
    """Digits that are not in `ref` (the ones after each of its examples)."""
    return digits.x[1::10].clone()


def test_every_metric_declares_its_needs():
    assert set(NEEDS) == set(metrics.names())
    assert NEEDS["fid"].samples == NEEDS["fid"].reference == 2 and NEEDS["kid"].samples == 2
    assert NEEDS["prdc"].samples == 6 and NEEDS["is"].samples == 20  # more than k=5; 2 in each of 10 splits


def test_one_sample_skips_what_cannot_be_computed_and_reports_the_rest(ref, others):
    out = evaluate(others[:1], ref)
    assert set(out["skipped"]) == {"fid", "kid", "is", "prdc"}
    assert out["skipped"]["fid"] == "needs at least 2 samples per set (a covariance needs two), got 1 sample"
    assert "needs at least 20 samples" in out["skipped"]["is"] and "at least 6" in out["skipped"]["prdc"]
    assert out["classes_covered_mnistcnn_1"] == 1 and not any(k.startswith(("fid", "kid")) for k in out)
    with pytest.raises(GankitError, match=r"^kid: needs at least 2 samples per set .*got 1 sample$"):
        evaluate(others[:1], ref, ["kid"])  # only what cannot be computed was asked for: one line


def test_five_samples_skip_prdc_and_warn_about_fid(ref, others):
    out = evaluate(others[:5], ref, ["fid", "kid", "prdc"])
    assert list(out["skipped"]) == ["prdc"] and "got 5 samples" in out["skipped"]["prdc"]
    assert out["fid_mnistcnn_5"] > 0 and "kid_mnistcnn_5" in out
    fid_warn = [w for w in out["warnings"] if w.startswith("fid: ")]
    assert fid_warn == ["fid: 5 samples for 128 features: the covariance has rank at most 4 < 128 (singular), so the "
                        "value is mostly estimation error; use at least 129 samples, better 1280"]


def test_fifty_samples_warn_about_the_128_features_and_the_is_cap(ref, others):
    out = evaluate(others[:50], ref, ["fid", "is"])
    assert "skipped" not in out
    assert any(w.startswith("fid: 50 samples for 128 features") for w in out["warnings"])
    assert any(w.startswith("is: 10 splits of 5 samples") and "capped at 5" in w for w in out["warnings"])
    assert out["is_mnistcnn_50"] <= 5  # the cap the warning states: exp of an MI with a uniform index over 5


def test_a_set_against_itself_scores_exactly_zero(ref):
    out = evaluate(ref.x, ref, ["fid", "kid"])
    assert out["fid_mnistcnn_500"] == 0.0 and out["kid_mnistcnn_500"] == 0.0 and out["kid_mnistcnn_500_std"] is None
    assert out["warnings"] == ["fid, kid: the samples are the reference mnist500 itself (the same 500 examples, in any "
                               "order): fid and kid are 0 by definition"]
    shuffled = ref.x[torch.randperm(500, generator=torch.Generator().manual_seed(0))]
    assert evaluate(shuffled, ref, ["fid"])["fid_mnistcnn_500"] == 0.0  # a set, not a sequence


def test_kid_spread_warnings(ref, others):
    small = Dataset(ref.x[:100], None, "one hundred")
    out = evaluate(others[:100], small, ["kid"])
    assert out["kid_mnistcnn_100_std"] is None and out["protocol"]["kid_subset_size"] == 100
    assert any(w.startswith("kid: the subset size (100) is both set sizes") for w in out["warnings"])
    out = evaluate(others[:100], ref, ["kid"])  # 100 samples, 500 reference digits: a spread, said to be partial
    assert out["kid_mnistcnn_100_std"] > 0
    assert any("all 100 samples are in every subset" in w for w in out["warnings"])


def test_shared_rows_warn_that_kid_assumes_independent_sets(ref, others):
    mixed = torch.cat([ref.x[:100], others[:200]])
    out = evaluate(mixed, ref, ["kid", "prdc"])
    assert any(w.startswith("kid, prdc: 100 of the 300 samples are copies of reference examples (mnist500)")
               for w in out["warnings"])
    assert D.shared_rows(ref.x, mixed) == 100 and not D.identical_sets(ref.x, mixed)


def test_fid_reports_no_offset_for_the_digit_cnn(ref, others):
    out = evaluate(others, ref, ["fid"])  # 42 of the 128 features are dead ReLUs: scipy warns, sqrtm copes
    assert out["protocol"]["fid_diagonal_offset"] == 0.0 and out["fid_mnistcnn_500"] > 0
    assert out["protocol"]["fid_zero_tolerance"] > 0 and "warnings" in out  # 500 < 10 x 128: biased upwards


def test_a_class_never_asked_for_is_null_not_nan(ref):
    labels = torch.tensor([0, 0, 1, 1, 3, 3])  # class 2 never asked for
    out = evaluate(ref.x[:6], ref, ["cond"], labels=labels)
    acc = out["cond_acc_per_class_mnistcnn_6"]
    assert acc[2] is None and len(acc) == 4 and all(isinstance(a, float) for i, a in enumerate(acc) if i != 2)
    assert any(w.startswith("cond: classes [2] were never asked for") for w in out["warnings"])
    json.dumps(out, allow_nan=False)  # strict JSON: no NaN token anywhere


def test_json_ready_writes_null_for_nan_and_inf_and_says_so():
    res = {"a": 1.0, "b": math.inf, "c": [0.5, math.nan], "protocol": {}, "warnings": ["b: explained already"]}
    out = json_ready(res)
    assert out["b"] is None and out["c"] == [0.5, None] and out["a"] == 1.0
    assert out["warnings"] == ["b: explained already", "c[1]: nan is not a number JSON can hold; written as null"]
    json.dumps(out, allow_nan=False)


def test_toy_samples_far_from_every_mode_say_why_reverse_kl_is_null():
    ring = build(DataConfig(source="ring"))
    out = evaluate(torch.zeros(20, 2), ring)  # the ring's centre: no sample is within 3 std of a mode
    assert math.isinf(out["reverse_kl_pacgan_20"])  # Python: inf ranks worst when training keeps the best
    safe = json_ready(out)
    assert safe["reverse_kl_pacgan_20"] is None and len(safe["warnings"]) == 1
    assert safe["warnings"][0].startswith("modes: no sample lies within 3 std of a mode")


def test_translation_digit_scores_skip_fid_on_one_example(ref):
    from gankit.metrics.translation import _digit_scores

    notes = {"warnings": [], "skipped": {}}
    res = _digit_scores(ref.x[:1], ref.x[1:2], ref.y[:1], notes)
    assert "fid_mnistcnn" not in res and "class_accuracy" in res
    assert notes["skipped"]["fid_mnistcnn"] == "FID needs at least 2 samples per set, got 1 and 1"


# --- the CLI -------------------------------------------------------------------------------------

def test_cli_prints_json_then_skipped_metrics_and_warnings(ref, others, tmp_path, capsys):
    np.save(tmp_path / "ref.npy", ref.x.numpy())
    np.save(tmp_path / "s1.npy", others[:1].numpy())
    np.save(tmp_path / "s5.npy", others[:5].numpy())
    against = ["--against", str(tmp_path / "ref.npy")]
    assert main(["eval", str(tmp_path / "s1.npy"), *against, "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["classes_covered_mnistcnn_1"] == 1
    err = cap.err.splitlines()
    assert err[0].startswith("error: fid: needs at least 2 samples per set") and len(err) == 4
    assert main(["eval", str(tmp_path / "s1.npy"), *against, "--metrics", "kid"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "Traceback" not in cap.err
    assert cap.err.startswith("error: kid: needs at least 2 samples per set")
    assert main(["eval", str(tmp_path / "s5.npy"), *against, "--n", "-3"]) == 2
    assert capsys.readouterr().err == "error: --n must be at least 1, got -3\n"
    assert main(["eval", str(tmp_path / "s5.npy"), *against, "--metrics", "fid,prdc", "--json"]) == 0
    cap = capsys.readouterr()
    assert "fid_mnistcnn_5" in json.loads(cap.out)
    assert cap.err.splitlines() == [
        "error: prdc: needs at least 6 samples per set (a k-th nearest neighbour other than itself, k up to 5), "
        "got 5 samples",
        "warning: fid: 5 samples for 128 features: the covariance has rank at most 4 < 128 (singular), so the value "
        "is mostly estimation error; use at least 129 samples, better 1280"]


def test_cli_eval_of_a_read_only_run_prints_results_then_one_error(tmp_path, capsys, monkeypatch):
    run = tmp_path / "toy"
    assert main(["train", "toy_ring", "--steps", "2", "--out", str(run), "-q", "--set", "train.tensorboard=false"]) == 0
    capsys.readouterr()
    real_write = Path.write_text

    def read_only(self, *a, **k):
        if self.parent == run:  # tests run as root: chmod would not stop the write
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_write(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", read_only)
    assert main(["eval", str(run), "--n", "300", "--json"]) == 2
    cap = capsys.readouterr()
    out = json.loads(cap.out)  # every result printed, as strict JSON
    assert "modes_pacgan_300" in out and out["protocol"]["step"] == 2
    assert cap.err.splitlines()[-1] == f"error: cannot write {run / 'eval.json'}: Read-only file system"
    assert "Traceback" not in cap.err and not (run / "eval.json").exists()
