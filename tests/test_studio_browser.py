"""The studio in a real browser: headless Debian Chromium (/usr/bin/chromium) driven by Playwright
for Python, against `gankit serve`'s app on loopback, with a run whose folder and recipe names are
script injections. Also a new user's tour (every tab by its address, with two runs and with one),
and the load test: 20 concurrent raters, each with its own token, 2000 votes, exactly 2000 rows.

Screenshots go to $GANKIT_SCREENSHOTS (default: the test's tmp dir). The pictures in docs/img
(studio_<tab>.png) are the tour's, of runs trained for real rather than for 4 steps:

    GANKIT_SCREENSHOTS=docs/img GANKIT_STUDIO_TOUR_STEPS=2000 pytest tests/test_studio_browser.py -k tour
"""

import http.client
import http.cookiejar
import io
import json
import os
import socket
import sqlite3
import statistics
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import tiny_config

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from PIL import Image  # noqa: E402

from gankit import cli  # noqa: E402
from gankit.api import make_config  # noqa: E402
from gankit.studio.app import create_app  # noqa: E402
from gankit.training.loop import fit  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
XSS_IMG = "<img src=x onerror=alert(1)>"  # also a run folder's name (it has no slash)
XSS_SCRIPT = '"><script>alert(1)</script>'


def _serve(app):
    """Serve `app` on a free loopback port in a thread; returns (url, stop)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)

    def stop():
        srv.should_exit = True
        t.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio-e2e")
    sets = ["train.precision=fp32", "train.sample_every=2"]
    fit(tiny_config("dcgan_mnist_fast", *sets, steps=4), root / "alpha")
    fit(tiny_config("dcgan_mnist_fast", *sets, "train.seed=1", steps=4), root / "beta")
    hostile = tiny_config("dcgan_mnist_fast", *sets, "train.seed=2", steps=2)
    hostile.recipe = XSS_SCRIPT  # the recipe name a checkpoint carries is shown in every run list
    fit(hostile, root / XSS_IMG)
    db = root / "studio.sqlite"
    app = create_app([root / "alpha", root / "beta", root / XSS_IMG], db)
    url, stop = _serve(app)
    yield {"url": url, "db": db, "root": root, "owner": app.state.owner_token, "port": int(url.rsplit(":", 1)[1])}
    stop()


TOUR_STEPS = int(os.environ.get("GANKIT_STUDIO_TOUR_STEPS", "0"))
TABS = ["gallery", "explore", "monitor", "compare", "turing", "preference", "studies"]


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """A conditional and an unconditional DCGAN, served together ("several") and the second alone
    ("one"). Tiny nets trained 4 steps; with GANKIT_STUDIO_TOUR_STEPS=N, the recipes as they are,
    N steps each, then scored by gankit eval (the screenshots in docs/img)."""
    root = tmp_path_factory.mktemp("studio-tour")
    for name, recipe in (("cdcgan", "cdcgan_mnist"), ("dcgan", "dcgan_mnist_fast")):
        if TOUR_STEPS:  # one thread: as fast for these small nets, and it survives a busy machine
            cfg = make_config(recipe, overrides=["train.precision=fp32", "train.tensorboard=false", "train.threads=1"],
                              steps=TOUR_STEPS)
        else:
            cfg = tiny_config(recipe, "train.precision=fp32", "train.sample_every=2", steps=4)
        fit(cfg, root / name)
        if TOUR_STEPS:
            assert cli.main(["eval", str(root / name)]) == 0
    several = create_app([root / "cdcgan", root / "dcgan"], root / "studio.sqlite")
    one = create_app([root / "dcgan"], root / "one.sqlite")
    (url, stop), (url1, stop1) = _serve(several), _serve(one)
    yield {"several": url, "one": url1, "owner": several.state.owner_token}
    stop()
    stop1()


# What a first look must not show, in the open tab: an element shown although `hidden` (a CSS
# display rule beating the attribute), an image without a source or that failed, blank or
# placeholder text ("Run , latent seed"), a JSON-quoted message.
AUDIT = """() => {
  const bad = [];
  const shown = (e) => e.getClientRects().length > 0;
  for (const e of document.querySelectorAll("[hidden]"))
    if (getComputedStyle(e).display !== "none") bad.push(`shown although hidden: ${e.id || e.tagName}`);
  for (const i of document.querySelectorAll("img"))
    if (shown(i) && !(i.getAttribute("src") && i.complete && i.naturalWidth > 0))
      bad.push(`broken image: ${i.id || i.alt}`);
  const text = document.querySelector(".tab.on").innerText;
  for (const s of ["undefined", "null", "NaN", "[object", "Run ,", "seed ,", '{"', '"detail', 'Error:'])
    if (text.includes(s)) bad.push(`text: ${s}`);
  return bad;
}"""
IMAGES_DONE = "() => Array.from(document.querySelectorAll('img')).every(i => i.complete)"


def _shown(page, tab):
    page.wait_for_function("(t) => document.body.dataset.shown === t", arg=tab)
    page.wait_for_function(IMAGES_DONE)


def test_tour_every_tab_by_its_address_with_two_runs_and_with_one(tour, page, tmp_path):
    """Each tab opened by its address (#gallery ... #studies) on a fresh load: no broken image, no
    panel shown though hidden, no blank or JSON-quoted text; with one run, the preference tab says
    it needs two. Saves studio_<tab>.png (1280x800) of the two-run studio, and the one-run preference tab."""
    shots = _shots(tmp_path)
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(tour["several"] + "/#owner=" + tour["owner"])  # the owner link: read, then replaced
    _shown(page, "gallery")
    assert page.url.endswith("/#gallery/cdcgan")
    for label in ("one", "several"):
        for tab in TABS:
            page.goto(f"{tour[label]}/#{tab}")
            _shown(page, tab)
            assert page.evaluate(AUDIT) == [], (label, tab)
            assert page.url.split("#")[1].split("/")[0] == tab
            assert page.locator("#tabs button.on").get_attribute("data-tab") == tab
            if label == "one" and tab == "preference":
                msg = page.locator("#preference-msg").inner_text()
                assert "two runs" in msg and "gankit serve" in msg and page.locator("#p-view").is_hidden()
                page.screenshot(path=str(shots / "studio_preference_one_run.png"))
            if label == "several":
                _pose(page, tab)
                page.screenshot(path=str(shots / f"studio_{tab}.png"))
    assert all(u.endswith("/favicon.ico") for u in failed), failed


def _pose(page, tab):
    """What a screenshot of the tab shows beyond its first look: a selected sample, a hovered chart,
    an answer given."""
    if tab == "gallery":
        page.locator("#g-grid .tile").nth(7).click()
        page.wait_for_selector("#g-detail:not([hidden])")
        _shown(page, "gallery")
    elif tab == "monitor":
        box = page.locator("canvas.chart").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
        page.wait_for_selector(".tip:not([hidden])")
    elif tab == "turing":
        page.click("#t-fake")
        page.wait_for_selector("#t-results tr:nth-child(2) td:nth-child(2)")  # a run's row
        page.wait_for_selector("#t-real:not([disabled])")  # the next image is in
    elif tab == "preference":
        page.click("#p-a")
        page.wait_for_selector("#p-results tr:nth-child(3)")
        page.wait_for_selector("#p-a:not([disabled])")
    page.wait_for_function(IMAGES_DONE)


def test_tour_tabs_follow_back_forward_and_reload(tour, page):
    url = tour["several"]
    page.goto(url + "/#monitor/dcgan")
    _shown(page, "monitor")
    assert page.locator("#m-run").input_value() == "dcgan"
    page.click("button[data-tab='gallery']")
    _shown(page, "gallery")
    assert page.url.endswith("#gallery/cdcgan")
    page.click("button[data-tab='compare']")
    _shown(page, "compare")
    page.go_back()
    _shown(page, "gallery")
    page.go_back()
    _shown(page, "monitor")
    assert page.url.endswith("#monitor/dcgan") and page.locator("#monitor").is_visible()
    page.go_forward()
    _shown(page, "gallery")
    page.click("button[data-tab='monitor']")
    page.select_option("#m-run", "cdcgan")  # the run chosen is part of the address
    page.wait_for_function("() => location.hash === '#monitor/cdcgan'")
    page.reload()
    _shown(page, "monitor")
    assert page.locator("#m-run").input_value() == "cdcgan"
    for odd in ("#no-such-tab", "#constructor", "#monitor/%E0%A4%A", "#monitor/no-such-run"):
        page.goto(url + "/" + odd)
        _shown(page, "monitor" if odd.startswith("#monitor") else "gallery")
        assert page.url.endswith("#monitor/cdcgan" if odd.startswith("#monitor") else "#gallery/cdcgan")


def test_tour_monitor_charts_every_logged_number(tour, page):
    """One chart per logged number (d and g, real and fake share one), smoothing, values on hover."""
    with urllib.request.urlopen(tour["several"] + "/api/runs/dcgan/log", timeout=60) as r:
        rows = json.loads(r.read())["rows"]
    logged = {k for row in rows for k in row} - {"step"}
    assert {"d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "lr_g", "images_per_s", "diversity"} <= logged
    page.goto(tour["several"] + "/#monitor/dcgan")
    _shown(page, "monitor")
    charted = page.evaluate("() => Array.from(document.querySelectorAll('canvas.chart')).map(c => c.dataset.keys)")
    assert {k for keys in charted for k in keys.split()} == logged
    assert "d_loss g_loss" in charted and "d_real d_fake" in charted
    canvas = page.locator("canvas.chart").first
    box = canvas.bounding_box()
    for smoothing, said in (("0", False), ("0.9", True)):
        page.locator("#m-smooth").fill(smoothing)
        page.mouse.move(box["x"] + box["width"] - 12, box["y"] + box["height"] / 2)
        tip = page.locator(".tip:not([hidden])").first
        tip.wait_for()
        text = tip.inner_text()
        assert f"step {rows[-1]['step']}" in text and "d_loss: " in text and "g_loss: " in text
        assert ("smoothed" in text) == said
        page.mouse.move(0, 0)


def test_tour_gallery_names_each_seed_and_its_command(tour, page):
    """Each image is captioned by its seed; a selected one shows the gankit sample command that
    draws it (a conditional run's class spelled out) and downloads with both in its metadata."""
    page.goto(tour["several"] + "/#gallery/cdcgan")
    _shown(page, "gallery")
    assert page.locator("#g-grid figcaption").nth(5).inner_text() == "seed 5"
    for label, want in (("", "5"), ("3", "3")):
        if label:
            page.select_option("#g-label", label)
            _shown(page, "gallery")
        page.locator("#g-grid .tile").nth(5).click()
        command = f"gankit sample cdcgan --seeds 5 --label {want} --out seed-5.png"
        page.wait_for_function("(c) => document.getElementById('g-d-command').textContent === c", arg=command)
        assert page.locator("#g-d-seed").inner_text() == "5"
        href = page.locator("#g-d-download").get_attribute("href")
        with urllib.request.urlopen(tour["several"] + href, timeout=60) as r:
            meta = Image.open(io.BytesIO(r.read())).text
        assert meta["gankit:seed"] == "5" and meta["gankit:label"] == want and meta["gankit:command"] == command


def _rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def page(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (make test installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run"])
        pg = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        browser.close()
        assert not errors, errors


def _shots(tmp_path) -> Path:
    d = Path(os.environ.get("GANKIT_SCREENSHOTS", tmp_path))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _loaded(page, selector):
    """Wait until every image matched by selector has finished loading with real pixels. (Waits
    are written as functions: Playwright evaluates a bare expression with eval, which the
    studio's Content-Security-Policy forbids.)"""
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length > 0 && Array.from("
                           "document.querySelectorAll(sel)).every(i => i.complete && i.naturalWidth > 0)", arg=selector)


def test_gallery_explorer_turing_and_preference_in_chromium(server, page, tmp_path):
    shots = _shots(tmp_path)
    page.goto(server["url"] + "/")
    page.wait_for_selector("body[data-ready='1']")
    _loaded(page, "#g-grid img")
    assert page.locator("#g-grid img").count() == 32
    page.locator("#g-grid img").nth(5).click()
    page.wait_for_function("() => document.getElementById('g-d-seed').textContent === '5'")
    page.screenshot(path=str(shots / "studio-gallery.png"), full_page=True)

    # latent explorer: moving the slider changes the interpolated image
    page.click("#g-d-explore")
    _loaded(page, "#e-img")
    before = page.locator("#e-img").get_attribute("src")
    page.locator("#e-t").fill("0.9")  # a range input: fill sets the value and fires input
    page.wait_for_function("(old) => document.getElementById('e-img').src !== old", arg=server["url"] + before)
    _loaded(page, "#e-img")
    assert "t=0.9" in page.locator("#e-img").get_attribute("src")
    assert page.locator("#e-t-val").inner_text() == "0.90"
    page.screenshot(path=str(shots / "studio-explorer.png"))

    # Turing test: 10 answers
    votes0 = _rows(server["db"], "SELECT COUNT(*) FROM votes")
    page.click("button[data-tab='turing']")
    for i in range(10):
        _loaded(page, "#t-img")
        page.click("#t-real" if i % 2 else "#t-fake")
        page.wait_for_function("(s) => document.getElementById('t-score').textContent.startsWith(s)",
                               arg=f"{i + 1} answered")
    page.wait_for_selector("#t-results tr:nth-child(2)")
    page.screenshot(path=str(shots / "studio-turing.png"), full_page=True)
    assert _rows(server["db"], "SELECT COUNT(*) FROM votes JOIN items ON items.id = votes.item_id "
                               "WHERE items.kind = 'turing'") == 10

    # pairwise preference: 5 votes
    page.click("button[data-tab='preference']")
    for i in range(5):
        _loaded(page, "#p-img-a")
        _loaded(page, "#p-img-b")
        page.click("#p-a" if i % 2 else "#p-b")
        page.wait_for_function("(s) => document.getElementById('p-count').textContent === s",
                               arg=f"{i + 1} vote{'s' if i else ''}")
    page.wait_for_selector("#p-results tr:nth-child(3)")
    page.screenshot(path=str(shots / "studio-preference.png"), full_page=True)
    assert _rows(server["db"], "SELECT COUNT(*) FROM votes JOIN items ON items.id = votes.item_id "
                               "WHERE items.kind = 'pairwise'") == 5
    assert _rows(server["db"], "SELECT COUNT(*) FROM votes") == votes0 + 15

    # training monitor draws the curves and shows the fixed-z grids
    page.click("button[data-tab='monitor']")
    _loaded(page, "#m-grid")
    assert "step-0000004.png" in page.locator("#m-step-name").inner_text()
    page.screenshot(path=str(shots / "studio-monitor.png"), full_page=True)


def test_user_study_in_chromium(server, page, tmp_path):
    page.goto(server["url"] + "/#owner=" + server["owner"])  # the owner link gankit serve prints
    page.wait_for_selector("body[data-ready='1']")
    assert "#owner" not in page.url  # the token leaves the address bar
    page.click("button[data-tab='studies']")
    page.fill("#s-name", "browser-study")
    page.fill("#s-n", "3")
    page.click("#s-create")
    page.get_by_role("row").filter(has_text="browser-study").get_by_role("button", name="take part").click()
    page.click("#s-agree")  # the consent note comes first
    for _ in range(3):
        page.wait_for_selector("#s-item .answer, #s-item .pick")
        _loaded(page, "#s-item img")
        page.locator("#s-item button").first.click()
        page.wait_for_timeout(100)
    page.wait_for_selector("text=Done — thank you.")
    page.screenshot(path=str(_shots(tmp_path) / "studio-study.png"), full_page=True)
    assert _rows(server["db"], "SELECT COUNT(*) FROM votes JOIN items ON items.id = votes.item_id "
                               "JOIN studies ON studies.id = items.study_id WHERE studies.name = 'browser-study'") == 3


def _owner_post(server, path, body):
    req = urllib.request.Request(server["url"] + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json",
                                          "authorization": f"Bearer {server['owner']}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_hostile_names_are_text_in_every_tab(server, page, tmp_path):
    """Studies, a consent note, a run folder and a recipe named with script injections: every tab
    shows them as text; no dialog opens, no element is injected, no script error or CSP refusal is
    logged. The page runs under its own Content-Security-Policy, which refuses inline script."""
    for name in (XSS_IMG, XSS_SCRIPT):
        _owner_post(server, "/api/studies", {"name": name, "kind": "turing", "n_items": 2, "consent": XSS_IMG})
    dialogs, console, failed = [], [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(server["url"] + "/#owner=" + server["owner"])
    page.wait_for_selector("body[data-ready='1']")

    page.select_option("#g-run", XSS_IMG)
    _loaded(page, "#g-grid img")
    page.locator("#g-grid img").first.click()
    page.wait_for_selector("#g-detail:not([hidden])")
    assert page.locator("#g-d-run").inner_text() == XSS_IMG
    assert XSS_SCRIPT in page.locator("#g-run").inner_text()  # the recipe, in every run list
    page.click("#g-d-explore")
    _loaded(page, "#e-img")
    page.click("button[data-tab='monitor']")
    page.select_option("#m-run", XSS_IMG)
    page.wait_for_function("(s) => document.getElementById('m-info').textContent.includes(s)", arg=XSS_SCRIPT)
    _loaded(page, "#m-grid")
    page.click("button[data-tab='compare']")
    page.wait_for_function("(s) => document.getElementById('c-runs').textContent.includes(s)", arg=XSS_SCRIPT)
    assert XSS_IMG in page.locator("#c-table").inner_text()
    page.click("button[data-tab='turing']")
    _loaded(page, "#t-img")
    page.click("#t-fake")
    page.wait_for_selector("#t-results tr:nth-child(2)")
    page.click("button[data-tab='preference']")
    _loaded(page, "#p-img-a")
    page.click("button[data-tab='studies']")
    page.wait_for_function("(s) => document.getElementById('s-list').textContent.includes(s)", arg=XSS_SCRIPT)
    assert XSS_IMG in page.locator("#s-list").inner_text()
    page.get_by_role("row").filter(has_text=XSS_SCRIPT).get_by_role("button", name="take part").click()
    page.wait_for_selector("#s-consent-box:not([hidden])")
    assert page.locator("#s-consent-text").inner_text() == XSS_IMG
    assert page.locator("#s-title").inner_text() == f"{XSS_SCRIPT} (turing)"
    page.click("#s-agree")
    _loaded(page, "#s-item img")
    page.get_by_role("row").filter(has_text=XSS_SCRIPT).get_by_role("button", name="results").click()
    page.wait_for_function("(s) => document.getElementById('s-results').textContent.includes(s)", arg=XSS_SCRIPT)
    page.screenshot(path=str(_shots(tmp_path) / "studio-hostile-names.png"), full_page=True)

    assert not dialogs, dialogs
    assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"], [onerror], [onload], "
                         "script:not([src^=\"/static/\"])').length") == 0
    assert [c for c in console if not c.startswith("Failed to load resource")] == [], console
    assert all(u.endswith("/favicon.ico") for u in failed), failed
    # and script put into the page anyway would not run: the policy refuses inline script
    ran = page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
                        " document.body.append(s); return window.ran === 1; }")
    assert not ran and any("Content Security Policy" in c for c in console)


def test_chunked_oversize_body_and_foreign_host_over_a_socket(server):
    """The probe of issue 21 against uvicorn itself: a 5 MiB vote sent chunked (no Content-Length)
    gets 413; a request naming another host (DNS rebinding) gets 421."""
    con = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30)
    con.request("POST", "/api/votes", body=(b"x" * 65536 for _ in range(80)),
                headers={"content-type": "application/json"}, encode_chunked=True)
    r = con.getresponse()
    assert r.status == 413 and b"larger than" in r.read()
    con = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30)
    con.request("GET", "/api/runs", headers={"Host": "evil.example:80"})
    assert con.getresponse().status == 421


def test_load_20_raters_2000_votes(server):
    """Loopback load: 20 concurrent raters, each with its own token (cookie jar), 100 Turing items
    each -> exactly 2000 vote rows; every rater's repeated answer is refused."""
    url = server["url"]

    def caller():
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

        def call(path, body=None):
            req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
            t0 = time.perf_counter()
            with opener.open(req, timeout=60) as r:
                out = json.loads(r.read())
            return out, time.perf_counter() - t0

        return call

    def rater(k):
        call, lat = caller(), []
        me = call("/api/rater", {})[0]["rater"]
        for _ in range(100):
            item, _ = call("/api/turing/next")
            res, dt = call("/api/votes", {"token": item["token"], "answer": "fake"})
            assert res["counted"]
            lat.append(dt)
        assert not call("/api/votes", {"token": item["token"], "answer": "real"})[0]["counted"]
        return me, lat

    before = _rows(server["db"], "SELECT COUNT(*) FROM votes")
    with ThreadPoolExecutor(20) as ex:
        parts = list(ex.map(rater, range(20)))
    lat = [x for _, part in parts for x in part]
    raters = ", ".join(f"'{me}'" for me, _ in parts)
    assert _rows(server["db"], "SELECT COUNT(*) FROM votes") - before == 2000
    assert _rows(server["db"], f"SELECT COUNT(*) FROM votes WHERE rater IN ({raters})") == 2000
    assert _rows(server["db"], f"SELECT COUNT(DISTINCT rater) FROM votes WHERE rater IN ({raters})") == 20
    p95 = statistics.quantiles(lat, n=20)[-1]
    print(f"\nload: 2000 votes from 20 raters, vote p95 latency {1000 * p95:.1f} ms, median "
          f"{1000 * statistics.median(lat):.1f} ms")
