"""The studio, safe to share (issue 21), at the API: names are data, Turing items keep their
secret, raters and the owner are who their tokens say, Host and body limits hold, odd ids and
names get a 4xx or work, and the judgements live beside the runs. (The page itself, with hostile
names in every tab: test_studio_browser.py.)"""

import io
import re
import shutil
import sqlite3
import struct

import pytest
from conftest import tiny_config

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from gankit import cli  # noqa: E402
from gankit.studio.app import create_app  # noqa: E402
from gankit.studio.guard import attachment  # noqa: E402
from gankit.training.loop import fit  # noqa: E402

LOCAL = "http://127.0.0.1"
XSS = ["<img src=x onerror=alert(1)>", '"><script>alert(1)</script>']
WIDE = "研究 ünïcødé"  # a run folder's name that is not Latin-1
# an ASCII fallback without quote or backslash, then the exact name percent-encoded (RFC 5987)
DISPOSITION = r"""attachment; filename="[ -!#-\[\]-~]*"; filename\*=UTF-8''[A-Za-z0-9_%.~-]+"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio-sec")
    sets = ["train.precision=fp32", "train.sample_every=2"]
    fit(tiny_config("dcgan_mnist_fast", *sets, steps=2), root / "alpha")
    hostile = tiny_config("dcgan_mnist_fast", *sets, "train.seed=1", steps=2)
    hostile.recipe = XSS[1]
    fit(hostile, root / XSS[0])
    for name in (WIDE, "line\nbreak"):  # same run, other folder names
        shutil.copytree(root / "alpha", root / name)
    return root


@pytest.fixture
def app(runs, tmp_path):
    return create_app([runs / "alpha", runs / XSS[0], runs / WIDE, runs / "line\nbreak"], tmp_path / "s.sqlite")


def _client(app, **kw) -> TestClient:
    return TestClient(app, base_url=LOCAL, **kw)


def _owner(app) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.state.owner_token}"}


def _rater(app) -> TestClient:
    c = _client(app)
    assert c.post("/api/rater").status_code == 200
    return c


def _chunks(png: bytes) -> list[bytes]:
    """The chunk types of a PNG file, in order."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(png):
        n, kind = struct.unpack(">I4s", png[i: i + 8])
        out.append(kind)
        i += 12 + n
    return out


def test_every_response_forbids_inline_script(app):
    c = _client(app)
    for r in (c.get("/"), c.get("/static/app.js"), c.get("/api/runs"), c.get("/api/nothing"),
              c.post("/api/votes", content=b"x" * 100_000), c.get("/", headers={"host": "evil.example"})):
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"
    # the page and its script give the policy nothing to forbid: no inline script, handler or style,
    # and no markup made from strings
    html = c.get("/").text
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all(re.fullmatch(r'<script src="/static/\w+\.js">', t) for t in scripts), scripts
    assert not re.search(r"\son\w+\s*=|style=", html)
    for tag in scripts:
        js = c.get(tag.split('"')[1]).text
        assert js.startswith("// gankit studio")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(",
                     "setAttribute(\"on", "setAttribute(\"style"):
            assert sink not in js, (tag, sink)


def test_hostile_names_are_stored_and_echoed_as_data(app):
    owner = _owner(app)
    c = _client(app)
    runs = {r["name"]: r for r in c.get("/api/runs").json()}
    assert runs[XSS[0]]["recipe"] == XSS[1]
    for name in XSS:
        r = c.post("/api/studies", json={"name": name, "kind": "turing", "n_items": 2, "consent": name},
                   headers=owner)
        assert r.status_code == 200 and r.json()["name"] == name and r.headers["content-type"] == "application/json"
        sid = r.json()["id"]
        csv = c.get(f"/api/studies/{sid}/export.csv", headers=owner)
        assert csv.status_code == 200 and re.fullmatch(DISPOSITION, csv.headers["content-disposition"])
    assert [s["name"] for s in c.get("/api/studies").json()] == XSS
    # the hostile run serves as any other, and an error naming a hostile run is JSON, not a page
    assert c.get(f"/api/runs/{XSS[0]}/sample.png").status_code == 200
    r = c.get("/api/runs/<b>nope</b>/log")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"


def test_turing_and_pair_items_carry_no_metadata(app, tmp_path):
    c = _rater(app)
    seen: dict[bool, bytes] = {}
    con = sqlite3.connect(tmp_path / "s.sqlite")
    while len(seen) < 2:  # a real and a generated item (a fair coin per item)
        token = c.get("/api/turing/next").json()["token"]
        real = con.execute("SELECT real_a FROM items WHERE token = ?", (token,)).fetchone()[0]
        seen[bool(real)] = c.get(f"/api/items/{token}/image.png").content
    assert _chunks(seen[True]) == _chunks(seen[False]) == [b"IHDR", b"IDAT", b"IEND"]
    assert seen[True][8:33] == seen[False][8:33]  # the same IHDR: size, depth, colour type
    pair = c.get("/api/pair/next").json()["token"]
    for side in "ab":
        assert _chunks(c.get(f"/api/items/{pair}/{side}.png").content) == [b"IHDR", b"IDAT", b"IEND"]
    # the gallery's downloads keep their provenance
    from PIL import Image

    assert Image.open(io.BytesIO(c.get("/api/runs/alpha/sample.png").content)).text["gankit:generated"] == "true"


def test_votes_need_the_servers_rater_token(app, tmp_path):
    owner = _owner(app)
    anon = _client(app)
    token = anon.get("/api/turing/next").json()["token"]
    assert anon.post("/api/votes", json={"token": token, "answer": "real"}).status_code == 401
    forged = _client(app, cookies={"gankit_rater": "A" * 43})
    assert forged.post("/api/votes", json={"token": token, "answer": "real"}).status_code == 403
    assert forged.get("/api/studies/1/next").status_code == 403
    ann, bob = _rater(app), _rater(app)
    # a rater name in the body is not taken: the rater is the token's
    assert ann.post("/api/votes", json={"token": token, "rater": "bob", "answer": "real"}).status_code == 422
    assert ann.post("/api/votes", json={"token": token, "answer": "real"}).json()["counted"]
    assert not ann.post("/api/votes", json={"token": token, "answer": "fake"}).json()["counted"]
    assert bob.post("/api/votes", json={"token": token, "answer": "fake"}).json()["counted"]
    ids = {r[0] for r in sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT rater FROM votes")}
    assert ids == {ann.post("/api/rater").json()["rater"], bob.get("/api/session").json()["rater"]}
    assert not any(ann.cookies["gankit_rater"] in str(r) for r in sqlite3.connect(tmp_path / "s.sqlite").execute(
        "SELECT * FROM raters"))  # only the token's hash is stored
    # ann's consent is not bob's
    sid = ann.post("/api/studies", json={"name": "c", "kind": "turing", "n_items": 2, "consent": "ok"},
                   headers=owner).json()["id"]
    assert ann.post(f"/api/studies/{sid}/consent").json()["rater"] == ann.get("/api/session").json()["rater"]
    item = bob.get(f"/api/studies/{sid}/next").json()["token"]
    assert bob.post("/api/votes", json={"token": item, "answer": "real"}).status_code == 403
    r = ann.post("/api/votes", json={"token": item, "answer": "real"})
    assert r.status_code == 200 and "was" not in r.json()  # a study never gives its answer key away
    # the cookie is the server's secret: HttpOnly, SameSite=Strict
    cookie = _client(app).post("/api/rater").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_owner_actions_need_the_owner_token(app):
    c = _client(app)
    new = {"name": "o", "kind": "turing", "n_items": 2}
    assert c.post("/api/studies", json=new).status_code == 401
    assert c.post("/api/studies", json=new, headers={"Authorization": "Bearer wrong"}).status_code == 403
    sid = c.post("/api/studies", json=new, headers=_owner(app)).json()["id"]
    for method, path in (("post", "close"), ("get", "results"), ("get", "export.csv")):
        call = getattr(c, method)
        assert call(f"/api/studies/{sid}/{path}").status_code == 401
        assert call(f"/api/studies/{sid}/{path}", headers={"Authorization": "Bearer x"}).status_code == 403
    assert not c.get(f"/api/studies/{sid}").json()["closed"]
    # the page's way in: the owner link's token, posted once, comes back as an HttpOnly cookie
    assert c.post("/api/owner", json={"token": "wrong"}).status_code == 403
    assert not c.get("/api/session").json()["owner"]
    r = c.post("/api/owner", json={"token": app.state.owner_token})
    assert r.status_code == 200 and "httponly" in r.headers["set-cookie"].lower()
    assert c.get("/api/session").json()["owner"]
    assert c.post(f"/api/studies/{sid}/close").json()["closed"]
    assert _client(app, cookies={"gankit_owner": "forged"}).get(f"/api/studies/{sid}/results").status_code == 403


def test_host_and_origin_are_checked(app, runs, tmp_path):
    c = _client(app)
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1@evil.example", ""):
        assert c.get("/api/runs", headers={"host": host}).status_code == 421, host
        assert c.post("/api/rater", headers={"host": host}).status_code == 421, host
    for host in ("localhost:8000", "LOCALHOST", "127.0.0.1:8000", "[::1]:8000", "192.168.1.5:8000"):
        assert c.get("/api/studies", headers={"host": host}).status_code == 200, host
    named = create_app([runs / "alpha"], tmp_path / "n.sqlite", host="0.0.0.0", allow_hosts=["gpu-box.lab"])
    assert _client(named).get("/api/studies", headers={"host": "gpu-box.lab:8000"}).status_code == 200
    assert _client(named).get("/api/studies", headers={"host": "evil.example"}).status_code == 421
    # a page of another origin (another port on this machine is the same site for cookies) changes nothing
    owner = _owner(app)
    new = {"name": "x", "kind": "turing", "n_items": 1}
    assert c.post("/api/studies", json=new, headers={**owner, "origin": "http://localhost:3000"}).status_code == 403
    assert c.post("/api/studies", json=new, headers={**owner, "origin": LOCAL}).status_code == 200


def test_body_limit_holds_on_the_bytes_read(app):
    c = _rater(app)
    token = c.get("/api/turing/next").json()["token"]

    def chunked(data: bytes, size=8192):  # a generator body goes out chunked, without Content-Length
        for i in range(0, len(data), size):
            yield data[i: i + size]

    big = b'{"token": "' + token.encode() + b'", "answer": "real", "pad": "' + b"x" * (5 << 20) + b'"}'
    r = c.post("/api/votes", content=chunked(big), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "content-length" not in r.request.headers
    ok = b'{"token": "' + token.encode() + b'", "answer": "real"}'
    assert c.post("/api/votes", content=chunked(ok, 7), headers={"content-type": "application/json"}).json()["counted"]
    assert c.post("/api/votes", content=b"{}", headers={"content-length": "-1"}).status_code in (400, 413)


def test_odd_ids_and_names_get_a_4xx_or_work(app):
    owner = _owner(app)
    c = _rater(app)
    for path in ("/api/studies/9223372036854775808", "/api/studies/9223372036854775808/next",
                 "/api/studies/99999999999999999999999/results"):
        assert c.get(path, headers=owner).status_code == 422
    sid = c.post("/api/studies", json={"name": "研究", "kind": "turing", "n_items": 2}, headers=owner).json()["id"]
    csv = c.get(f"/api/studies/{sid}/export.csv", headers=owner)
    assert csv.status_code == 200 and csv.text.startswith("position,kind")
    assert csv.headers["content-disposition"] == (f"attachment; filename=\"study-{sid}-__.csv\"; "
                                                  f"filename*=UTF-8''study-{sid}-%E7%A0%94%E7%A9%B6.csv")
    gif = c.get(f"/api/runs/{WIDE}/interp.gif?a=1&b=2&steps=2")
    assert gif.status_code == 200 and gif.content[:6] == b"GIF89a"
    assert "filename*=UTF-8''%E7%A0%94%E7%A9%B6%20%C3%BCn" in gif.headers["content-disposition"]
    # a line break in a name: a study refuses it; a run folder may have one, and its download works
    r = c.post("/api/studies", json={"name": "a\r\nSet-Cookie: x=1", "kind": "turing", "n_items": 2}, headers=owner)
    assert r.status_code == 422 and "one line" in r.text
    gif = c.get("/api/runs/line%0Abreak/interp.gif?a=1&b=2&steps=2")
    assert gif.status_code == 200 and "linebreak-1-2.gif" in gif.headers["content-disposition"]
    assert attachment('a"b\\c\r\n\tü.csv') == {
        "Content-Disposition": "attachment; filename=\"a_b_c_.csv\"; filename*=UTF-8''a%22b%5Cc%C3%BC.csv"}


def test_judgements_live_beside_the_runs_from_any_directory(runs, tmp_path, monkeypatch, capsys):
    """`gankit serve RUN` started from two directories finds the same votes: the database is
    studio.sqlite in the first run's parent folder (or --db); the owner link is printed once."""
    served = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.append(app))
    run = runs / "alpha"
    for cwd in ("one", "two"):
        (tmp_path / cwd).mkdir()
        monkeypatch.chdir(tmp_path / cwd)
        assert cli.main(["serve", str(run), "--port", "8123"]) == 0
    out = capsys.readouterr().out
    assert f"judgements in {runs / 'studio.sqlite'}" in out
    links = re.findall(r"owner link.*: (http://127\.0\.0\.1:8123/#owner=(\S+))", out)
    assert [tok for _, tok in links] == [a.state.owner_token for a in served]
    first, second = (_rater(a) for a in served)
    token = first.get("/api/turing/next").json()["token"]
    assert first.post("/api/votes", json={"token": token, "answer": "real"}).json()["counted"]
    assert second.get("/api/turing/results").json()["votes"] == 1
    assert not list((tmp_path / "one").iterdir()) and not list((tmp_path / "two").iterdir())
    assert cli.main(["serve", str(run), "--db", str(tmp_path / "elsewhere.sqlite")]) == 0
    assert (tmp_path / "elsewhere.sqlite").exists()
    (tmp_path / "notes.txt").write_text("not a database, " * 100)
    assert cli.main(["serve", str(run), "--db", str(tmp_path / "notes.txt")]) == 2
    assert "cannot open the studio's judgement database" in capsys.readouterr().err
