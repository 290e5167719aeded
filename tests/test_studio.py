"""The studio's API with FastAPI's test client: every page's data, human evaluation stored in
SQLite (no vote lost or counted twice, kept across restarts), and bad input answered with 4xx.
(Tokens, hostile names, headers and limits: test_studio_security.py.)"""

import io
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import tiny_config
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from gankit.errors import GankitError  # noqa: E402
from gankit.studio import stats  # noqa: E402
from gankit.studio.app import create_app  # noqa: E402
from gankit.training.loop import fit  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio-runs")
    sets = ["train.precision=fp32", "train.sample_every=2"]
    fit(tiny_config("dcgan_mnist_fast", *sets, steps=4), root / "alpha")
    fit(tiny_config("dcgan_mnist_fast", *sets, "train.seed=1", steps=4), root / "beta")
    fit(tiny_config("cdcgan_mnist", *sets, steps=2), root / "cond")
    fit(tiny_config("toy_ring", "train.precision=fp32", steps=2), root / "ring")
    (root / "alpha" / "eval.json").write_text(json.dumps({"fid_mnistcnn_5k": 80.5, "protocol": {"run": "x"}}))
    return root


LOCAL = "http://127.0.0.1"  # the studio answers only requests addressed to its own host


def rater(app) -> TestClient:
    """A client of `app` that has taken part: it holds its own rater token (cookie)."""
    c = TestClient(app, base_url=LOCAL)
    assert c.post("/api/rater").status_code == 200
    return c


@pytest.fixture
def client(runs, tmp_path):
    """A rater's client; `client.owner` are the headers that make a request the owner's."""
    app = create_app([runs / "alpha", runs / "beta", runs / "cond"], tmp_path / "studio.sqlite")
    with rater(app) as c:
        c.db = tmp_path / "studio.sqlite"
        c.owner = {"Authorization": f"Bearer {app.state.owner_token}"}
        yield c


def _real(db, token) -> bool:
    con = sqlite3.connect(db)
    try:
        return bool(con.execute("SELECT real_a FROM items WHERE token = ?", (token,)).fetchone()[0])
    finally:
        con.close()


def _png(resp):
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(resp.content))


def test_runs_gallery_and_provenance(client):
    runs = {r["name"]: r for r in client.get("/api/runs").json()}
    assert set(runs) == {"alpha", "beta", "cond"}
    assert runs["cond"]["conditional"] and runs["cond"]["n_classes"] == 10
    assert runs["alpha"]["metrics"]["fid_mnistcnn_5k"] == 80.5
    assert client.get("/api/runs/alpha/gallery?n=8&seed=5").json()["seeds"] == list(range(5, 13))
    im = _png(client.get("/api/runs/alpha/sample.png?seed=3"))
    assert im.size == (112, 112)  # 28 px x scale 4
    assert im.text["gankit:generated"] == "true" and im.text["gankit:seed"] == "3"
    assert im.text["gankit:model_hash"] == runs["alpha"]["model_hash"]
    # the same seed gives the same image; another seed another
    a, b = (client.get(f"/api/runs/alpha/sample.png?seed={s}").content for s in (3, 3))
    assert a == b and a != client.get("/api/runs/alpha/sample.png?seed=4").content
    assert _png(client.get("/api/runs/cond/sample.png?seed=0&label=7")).text["gankit:label"] == "7"


def _cli_has_seeds() -> bool:
    from gankit import cli

    sub = next(a for a in cli.build_parser()._actions if a.dest == "cmd").choices["sample"]
    return any("--seeds" in a.option_strings for a in sub._actions)


def test_seed_n_is_the_cli_seed_n(client, runs, tmp_path):
    """The studio's seed N is Generator.sample(1, seed=N) (with a conditional run's class N mod K),
    which `gankit sample RUN --seeds N` draws; its PNG and sample.json carry the seed and that command."""
    import shlex

    import numpy as np

    from gankit import api, cli
    from gankit.monitor.images import grid

    for name, seed, query in (("alpha", 11, ""), ("cond", 13, ""), ("cond", 13, "&label=4")):
        im = _png(client.get(f"/api/runs/{name}/sample.png?seed={seed}{query}"))
        info = client.get(f"/api/runs/{name}/sample.json?seed={seed}{query}").json()
        g = api.load(runs / name)
        label = (4 if query else seed % 10) if name == "cond" else None
        assert info["label"] == label and info["seed"] == seed
        want = f"gankit sample {name} --seeds {seed}" + (f" --label {label}" if label is not None else "")
        assert info["command"] == im.text["gankit:command"] == f"{want} --out seed-{seed}.png"
        assert im.text["gankit:seed"] == str(seed)
        x = g.sample(1, seed=seed, label=label)
        assert im.tobytes() == grid(x, nrow=1, pad=0, scale=4).tobytes()
        if _cli_has_seeds():  # the command as shown, into an array, gives the same image
            args = shlex.split(info["command"])[1:]  # sample RUN --seeds N ... --out seed-N.png
            args[1], args[-1] = str(runs / name), str(tmp_path / f"{name}-{seed}.npy")
            assert cli.main(args) == 0
            assert np.array_equal(np.load(args[-1]), x.numpy())
    assert client.get("/api/runs/cond/sample.json?seed=1&label=10").status_code == 400
    # a run served by a relative path is named by it in commands; an absolute one by its folder
    from gankit.studio.app import _cli_name

    assert _cli_name(Path("runs/demo"), "demo") == "runs/demo"
    assert _cli_name(Path("/home/someone/runs/demo"), "demo") == _cli_name(Path("../demo"), "demo") == "demo"


def test_interpolation_ends_are_the_seeds_images(client):
    def pixels(url):
        return _png(client.get(url)).tobytes()

    assert pixels("/api/runs/alpha/interp.png?a=3&b=9&t=0") == pixels("/api/runs/alpha/sample.png?seed=3")
    assert pixels("/api/runs/alpha/interp.png?a=3&b=9&t=1") == pixels("/api/runs/alpha/sample.png?seed=9")
    assert pixels("/api/runs/alpha/interp.png?a=3&b=9&t=0.5") != pixels("/api/runs/alpha/sample.png?seed=3")
    gif = client.get("/api/runs/alpha/interp.gif?a=3&b=9&steps=4")
    assert gif.status_code == 200 and gif.content[:6] == b"GIF89a"
    assert Image.open(io.BytesIO(gif.content)).n_frames == 6  # 4 there, 2 back


def test_monitor_and_compare(client):
    log = client.get("/api/runs/alpha/log").json()
    assert [r["step"] for r in log["rows"]] == [2, 4]
    assert log["grids"] == ["step-0000002.png", "step-0000004.png"]
    assert _png(client.get(f"/api/runs/alpha/grids/{log['grids'][0]}"))
    assert client.get("/api/runs/alpha/log?after=2").json()["rows"][0]["step"] == 4
    # every number a log row holds, none of its text or flags
    assert {"d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "lr_g", "lr_d", "images_per_s",
            "elapsed_s", "diversity"} <= set(log["rows"][0]) and "collapsed" not in log["rows"][0]
    cmp = client.get("/api/compare").json()
    assert "fid_mnistcnn_5k" in cmp["metrics"] and cmp["runs"]["beta"] == {}


def test_monitor_log_has_evaluations_warnings_and_no_bare_nan(runs, tmp_path):
    """Periodic evaluations come whole (one may follow its step's log row), warnings with their step,
    inf and NaN as null (JSON has no NaN), a line being written is skipped."""
    import shutil

    run = tmp_path / "alpha"
    shutil.copytree(runs / "alpha", run)
    with open(run / "log.jsonl", "a") as f:
        f.write('{"event": "log", "step": 6, "d_loss": Infinity, "g_loss": NaN, "collapsed": true, '
                '"warning": "mode collapse?"}\n')
        f.write('{"event": "eval", "step": 4, "fid_mnistcnn_2k": 91.5, "best_metric": "fid", "improved": true}\n')
        f.write('{"event": "log", "step": 8, "d_lo')
    with TestClient(create_app([run], tmp_path / "s.sqlite"), base_url=LOCAL) as c:
        log = c.get("/api/runs/alpha/log?after=4").json()
    assert log["rows"] == [{"step": 6, "d_loss": None, "g_loss": None}]
    assert log["evals"] == [{"step": 4, "fid_mnistcnn_2k": 91.5}]
    assert log["warnings"] == [{"step": 6, "message": "mode collapse?"}]


def test_turing_votes_counted_once_and_scored(client):
    counts = {"real": 0, "fake": 0}
    for _ in range(30):
        item = client.get("/api/turing/next").json()
        _png(client.get(f"/api/items/{item['token']}/image.png"))
        r = client.post("/api/votes", json={"token": item["token"], "answer": "real"}).json()
        assert r["counted"] and r["was"] == ("real" if _real(client.db, item["token"]) else "fake")
        counts[r["was"]] += 1
        again = client.post("/api/votes", json={"token": item["token"], "answer": "fake"}).json()
        assert not again["counted"]  # a double click or retry never counts twice
    res = client.get("/api/turing/results").json()
    assert res["votes"] == 30
    fakes = sum(d["fake_n"] for d in res["runs"].values())
    assert fakes == counts["fake"] and counts["real"] > 0 and counts["fake"] > 0
    for d in res["runs"].values():  # everything was answered "real": every fake fooled
        if d["fake_n"]:
            assert d["fool_rate"] == 1.0 and d["fool_rate_95"][0] < 1.0


def test_pairwise_preference_and_bradley_terry(client):
    for _ in range(12):
        item = client.get("/api/pair/next").json()
        _png(client.get(f"/api/items/{item['token']}/a.png"))
        _png(client.get(f"/api/items/{item['token']}/b.png"))
        assert client.post("/api/votes", json={"token": item["token"], "answer": "a"}).json()["counted"]
    res = client.get("/api/pair/results").json()
    assert res["votes"] == 12 and sum(d["wins"] for d in res["runs"].values()) == 12
    for d in res["runs"].values():
        lo, hi = d["bt_95"]
        assert lo <= d["bt_log_strength"] <= hi


def test_study_lifecycle_consent_progress_export_and_restart(client, runs, tmp_path):
    s = client.post("/api/studies", headers=client.owner, json={
        "name": "s1", "kind": "pairwise", "n_items": 3, "consent": "ok to store my answers",
        "runs": ["alpha", "beta"]}).json()
    sid = s["id"]
    ann = rater(client.app)
    item = ann.get(f"/api/studies/{sid}/next").json()
    vote = {"token": item["token"], "answer": "b"}
    assert ann.post("/api/votes", json=vote).status_code == 403  # no consent yet
    assert not ann.get(f"/api/studies/{sid}").json()["consented"]
    assert ann.post(f"/api/studies/{sid}/consent").status_code == 200
    for _ in range(3):
        item = ann.get(f"/api/studies/{sid}/next").json()
        r = ann.post("/api/votes", json={"token": item["token"], "answer": "b"})
        assert r.status_code == 200 and "was" not in r.json()
    assert ann.get(f"/api/studies/{sid}/next").json() == {"done": True}
    assert ann.get(f"/api/studies/{sid}").json()["answered"] == 3
    csv = client.get(f"/api/studies/{sid}/export.csv", headers=client.owner).text.splitlines()
    assert csv[0].startswith("position,kind,run_a") and len(csv) == 4
    assert client.get(f"/api/studies/{sid}/results", headers=client.owner).json()["votes"] == 3
    client.post(f"/api/studies/{sid}/close", headers=client.owner)
    assert ann.post("/api/votes", json=vote).status_code == 409
    # a restarted server over the same database keeps every judgement and every rater; its owner
    # token is a new one
    app2 = create_app([runs / "alpha", runs / "beta"], client.db)
    with TestClient(app2, base_url=LOCAL) as c2:
        assert c2.get(f"/api/studies/{sid}/results", headers=client.owner).status_code == 403
        owner2 = {"Authorization": f"Bearer {app2.state.owner_token}"}
        assert c2.get(f"/api/studies/{sid}/results", headers=owner2).json()["votes"] == 3
        assert c2.get(f"/api/studies/{sid}").json()["closed"]
        c2.cookies = ann.cookies
        assert c2.get(f"/api/studies/{sid}").json()["answered"] == 3
    con = sqlite3.connect(client.db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == 3


BAD = [
    ("get", "/api/runs/../../etc/sample.png", None, 404),
    ("get", "/api/runs/%2e%2e%2fetc/sample.png", None, 404),
    ("get", "/api/runs/nosuchrun/sample.png", None, 404),
    ("get", "/api/runs/alpha/grids/..%2F..%2Fconfig.yaml", None, 404),
    ("get", "/api/runs/alpha/grids/config.yaml", None, 404),
    ("get", "/static/..%2F..%2Fapp.py", None, 404),
    ("get", "/api/runs/alpha/gallery?n=100000", None, 422),
    ("get", "/api/runs/alpha/gallery?n=abc", None, 422),
    ("get", "/api/runs/alpha/sample.png?seed=-1", None, 422),
    ("get", "/api/runs/alpha/interp.png?a=1&b=2&t=2", None, 422),
    ("get", "/api/runs/alpha/interp.gif?a=1&b=2&steps=100000", None, 422),
    ("get", "/api/runs/cond/sample.png?label=99", None, 400),
    ("post", "/api/votes", {"token": "x" * 16, "answer": "real"}, 404),
    ("post", "/api/votes", {"token": "x" * 16, "answer": "maybe"}, 422),
    ("post", "/api/votes", {"token": "x" * 16, "rater": "someone-else", "answer": "real"}, 422),
    ("post", "/api/votes", {"token": 5, "rater": ["r"], "answer": "real"}, 422),
    ("post", "/api/votes", "not json", 422),
    ("post", "/api/studies", {"name": "s", "kind": "turing", "n_items": 10**6}, 422),
    ("post", "/api/studies", {"name": "s", "kind": "turing", "n_items": 2, "runs": ["nope"]}, 404),
    ("post", "/api/studies", {"name": "line\nbreak", "kind": "turing", "n_items": 2}, 422),
    ("get", "/api/studies/999", None, 404),
    ("get", "/api/studies/999/next", None, 404),
    ("get", "/api/studies/9223372036854775808", None, 422),
    ("get", "/api/studies/9223372036854775808/next", None, 422),
    ("post", "/api/studies/9223372036854775808/close", None, 422),
    ("get", "/api/studies/9223372036854775808/export.csv", None, 422),
    ("get", "/api/studies/0/results", None, 422),
    ("get", "/api/runs/cond/sample.png?label=9223372036854775808", None, 400),
    ("get", "/api/items/nosuchtoken/image.png", None, 404),
]


@pytest.mark.parametrize("method,url,body,status", BAD)
def test_bad_input_gets_a_4xx_with_a_message(client, method, url, body, status):
    kw = {} if body is None else ({"content": body} if isinstance(body, str) else {"json": body})
    r = getattr(client, method)(url, headers=client.owner, **kw)
    assert r.status_code == status, (url, r.status_code, r.text)
    if r.headers.get("content-type", "").startswith("application/json"):
        assert r.json()["detail"]


def test_huge_body_and_toy_runs_are_refused(client, runs, tmp_path):
    r = client.post("/api/votes", content=b"x" * 100_000, headers={"content-type": "application/json"})
    assert r.status_code == 413
    app = create_app([runs / "ring"], tmp_path / "other.sqlite")
    with TestClient(app, base_url=LOCAL) as c:
        assert c.get("/api/runs/ring/sample.png").status_code == 400
        assert "points, not images" in c.get("/api/runs/ring/interp.png?a=0&b=1&t=0.5").json()["detail"]
        assert "generates images from noise" in c.get("/api/turing/next").json()["detail"]
        assert c.get("/api/pair/next").status_code in (400, 409)


def test_closed_study_and_duplicate_names(client):
    new = {"name": "dup", "kind": "turing", "n_items": 2}
    sid = client.post("/api/studies", json=new, headers=client.owner).json()["id"]
    assert client.post("/api/studies", json=new, headers=client.owner).status_code == 409
    client.post(f"/api/studies/{sid}/close", headers=client.owner)
    assert client.get(f"/api/studies/{sid}/next").status_code == 409


def test_not_a_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(GankitError, match="not a gankit run folder"):
        create_app([tmp_path], tmp_path / "db.sqlite")


def test_concurrent_raters_lose_no_vote(client):
    tokens = [client.get("/api/turing/next").json()["token"] for _ in range(50)]
    raters = [rater(client.app) for _ in range(8)]  # each with its own token

    def rate(c):
        return sum(c.post("/api/votes", json={"token": t, "answer": "fake"}).json()["counted"] for t in tokens)

    with ThreadPoolExecutor(8) as ex:
        assert sum(ex.map(rate, raters)) == 400
    con = sqlite3.connect(client.db)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT rater) FROM votes").fetchone() == (400, 8)


def test_wilson_and_bradley_terry_against_known_values():
    p, lo, hi = stats.wilson(8, 10)
    assert p == 0.8 and lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert stats.wilson(0, 20)[1] == 0.0 and stats.wilson(0, 20)[2] > 0.1
    # A beats B 3:1 in expectation -> log-strength gap near log 3 (the half-win prior shrinks it a little)
    wins = [("A", "B")] * 300 + [("B", "A")] * 100
    s = stats.bradley_terry(["A", "B"], wins)
    assert s["A"] - s["B"] == pytest.approx(1.0986, abs=0.01) and s["A"] + s["B"] == pytest.approx(0, abs=1e-9)
    # transitive three-way: A > B > C
    wins = [("A", "B")] * 20 + [("B", "C")] * 20 + [("A", "C")] * 20 + [("B", "A")] * 5 + [("C", "B")] * 5
    s = stats.bradley_terry(["A", "B", "C"], wins)
    assert s["A"] > s["B"] > s["C"]


def test_each_family_has_its_view(tmp_path):
    """Text-to-image runs sample a caption, speech runs speak, anomaly runs show their score
    histogram; none of them can be sampled as another family."""
    sets = ["train.precision=fp32", "train.channels_last=off", "train.sample_every=2"]
    fit(tiny_config("text2image_digits", *sets, steps=2), tmp_path / "t2i")
    fit(tiny_config("speech_digits", *sets, steps=2), tmp_path / "tts")
    fit(tiny_config("ganomaly_mnist", *sets, steps=2), tmp_path / "an")
    app = create_app([tmp_path / "t2i", tmp_path / "tts", tmp_path / "an"], tmp_path / "s.sqlite")
    with TestClient(app, base_url=LOCAL) as c:
        fam = {r["name"]: r["family"] for r in c.get("/api/runs").json()}
        assert fam == {"t2i": "text2image", "tts": "speech", "an": "ganomaly"}
        assert {r["name"]: r["detector"] for r in c.get("/api/runs").json()} == {"t2i": False, "tts": False, "an": True}
        seven = _png(c.get("/api/runs/t2i/sample.png?seed=1&text=a thick seven"))
        assert seven.text["gankit:text"] == "a thick seven"
        assert c.get("/api/runs/t2i/sample.png?seed=1&text=a purple seven").status_code == 400
        wav = c.get("/api/runs/tts/say.wav?text=one two&seed=0")
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
        assert c.get("/api/runs/tts/say.wav?text=eleven").status_code == 400
        assert c.get("/api/runs/t2i/say.wav?text=one").status_code == 400
        hist = _png(c.get("/api/runs/an/scores.png"))
        assert hist.size[0] > 300
        assert c.get("/api/runs/an/sample.png?seed=0").status_code == 400
        assert c.get("/api/runs/tts/scores.png").status_code == 400
