"""`gankit eval`'s table (issue 17): direction, the real-vs-real value in the same features, what
each metric measures; the class-balance flag."""

import json

import numpy as np
import torch

from gankit.cli import main
from gankit.data import Dataset
from gankit.data.core import _mnist5k_arrays, from_uint8
from gankit.metrics import evaluate
from gankit.metrics.classes import uneven
from gankit.metrics.report import meaning, table


def _digits(idx):
    x, y = _mnist5k_arrays()
    return from_uint8(x[idx].reshape(-1, 1, 28, 28)), torch.from_numpy(y[idx])


def test_real_vs_real_is_computed_in_the_same_features_for_every_distance():
    x, y = _digits(np.arange(0, 5000, 5))  # 1000 digits, every class
    ref = Dataset(x, y, "digits1000", [str(i) for i in range(10)])
    noise = torch.rand(300, 1, 28, 28) * 2 - 1
    res = evaluate(noise, ref, ["fid", "kid", "prdc", "classes"])
    base = res["real_vs_real"]
    fid_key = next(k for k in res if k.startswith("fid_"))
    assert set(base) >= {fid_key, next(k for k in res if k.startswith("kid_")),
                         next(k for k in res if k.startswith("precision_"))}
    # real halves are close; noise is far: the reference value is what makes the number readable
    assert 0 < base[fid_key] < 0.05 * res[fid_key]
    assert base[next(k for k in res if k.startswith("precision_"))] > 0.5
    assert "two disjoint sets of 300 examples of digits1000" in res["protocol"]["real_vs_real"]


def test_table_has_directions_reference_values_and_meanings():
    x, y = _digits(np.arange(0, 5000, 5))
    ref = Dataset(x, y, "digits1000", [str(i) for i in range(10)])
    fake, _ = _digits(np.arange(1, 5000, 10))  # 500 other real digits: a good "generator"
    text = table(evaluate(fake, ref, ["fid", "kid", "classes"]))
    lines = text.splitlines()
    assert lines[0].startswith("500 samples against digits1000 (1000 examples), features: mnistcnn")
    assert "real vs real" in lines[1] and "what it measures" in lines[1]
    fid = next(line for line in lines if line.startswith("fid_"))
    assert "↓" in fid and "Fréchet distance" in fid
    assert "±" in next(line for line in lines if line.startswith("kid_"))
    assert meaning("confidence_mnistcnn_5k")[0] == "↑"


def test_cli_prints_the_table_and_json_on_request(tmp_path, capsys):
    x, _ = _digits(np.arange(2, 5000, 25))
    np.save(tmp_path / "s.npy", x.numpy())
    assert main(["eval", str(tmp_path / "s.npy"), "--metrics", "fid,classes"]) == 0
    out = capsys.readouterr().out
    assert "real vs real" in out and "fid_mnistcnn_200" in out and not out.lstrip().startswith("{")
    assert main(["eval", str(tmp_path / "s.npy"), "--metrics", "fid,classes", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["real_vs_real"]["fid_mnistcnn_200"] > 0


def test_uneven_class_histograms_are_flagged_against_the_real_shares():
    even = [500] * 10
    assert uneven(even, even) is None
    collapsed = [260, 861, 300, 500, 500, 700, 600, 500, 500, 279]
    assert uneven(collapsed, even) is None  # within 2x of a fair share: not flagged
    starved = [40, 900, 500, 500, 500, 560, 500, 500, 500, 1500]
    line = uneven(starved, even)
    assert line.startswith("uneven class histogram: 2 of 10 classes") and "class 0: 40" in line
    # real data that is itself uneven: judged against its own shares, not uniform
    assert uneven([100, 900], [1000, 9000]) is None


def test_a_generator_that_drops_classes_gets_a_warning():
    x, y = _digits(np.arange(0, 5000, 5))
    ref = Dataset(x, y, "digits1000", [str(i) for i in range(10)])
    only_low, _ = _digits(np.arange(0, 2500, 5))  # digits 0..4 only
    res = evaluate(only_low, ref, ["classes"])
    assert any(w.startswith("classes: uneven class histogram: 5 of 10 classes") for w in res["warnings"])
