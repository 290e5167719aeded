"""Metrics on small and odd input (issue 20, cases 4, 8 and 13): each metric's minimum checked
before any work, unreliable values said as warnings, no NaN/inf in JSON, exact zeros where the
definition gives them, and `gankit eval` printing its results before a failed write."""

import numpy as np
import pytest
import torch

from gankit.metrics import distances as D

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
