"""gankit studio: a FastAPI app over the runs named on the command line.

Only those runs can be reached: a run is addressed by its short name, looked up in a dict made
at start-up, never joined into a path; sample grids are served only under names found by listing
the run's own `samples/` folder. Request bodies and `n` are bounded; bad input is a 4xx with a
message. Judgements live in SQLite (`db.py`).
"""

from __future__ import annotations

import csv
import io
import json
import random
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from .. import api
from ..errors import GankitError
from ..monitor.images import grid, provenance
from . import stats
from .db import Store, now

MAX_N = 256  # images per gallery request
MAX_BODY = 64 * 1024  # bytes of a request body
STATIC = Path(__file__).parent / "static"


@dataclass
class Run:
    name: str
    path: Path
    _g: Any = None
    _mtime: float = -1.0
    _real: Any = None

    def generator(self) -> api.Generator:
        """The run's EMA generator, reloaded when its checkpoint changes (a run still training)."""
        ck = self.path / "checkpoints" / "latest.pt"
        m = ck.stat().st_mtime
        if self._g is None or m != self._mtime:
            self._g, self._mtime = api.load(self.path), m
        return self._g

    def real(self) -> torch.Tensor:
        """The run's training data (for the Turing test's real images)."""
        if self._real is None:
            from ..data import build as build_data

            self._real = build_data(self.generator().cfg.data).in_memory(20_000).x
        return self._real


def _png(x: torch.Tensor, info: dict[str, str] | None, scale: int = 4) -> Response:
    img = grid(x, nrow=len(x), pad=0, scale=scale)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=provenance(info) if info is not None else None)
    return Response(buf.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"})


class Vote(BaseModel):
    token: str = Field(min_length=8, max_length=64)
    rater: str = Field(min_length=1, max_length=64)
    answer: Literal["real", "fake", "a", "b"]
    ms: int | None = Field(default=None, ge=0, le=3_600_000)


class NewStudy(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["turing", "pairwise"]
    n_items: int = Field(ge=1, le=1000)
    consent: str = Field(default="", max_length=4000)
    runs: list[str] | None = None
    seed: int = 0


class Consent(BaseModel):
    rater: str = Field(min_length=1, max_length=64)


def create_app(run_dirs: list[Path], db_path: Path) -> FastAPI:
    runs: dict[str, Run] = {}
    for p in run_dirs:
        p = Path(p)
        if not (p / "checkpoints" / "latest.pt").exists():
            raise GankitError(f"{p}: not a gankit run folder (no checkpoints/latest.pt)")
        name, k = p.resolve().name, 2
        while name in runs:  # two runs with the same folder name: a, a-2
            name, k = f"{p.resolve().name}-{k}", k + 1
        runs[name] = Run(name, p)
    store = Store(db_path)
    lock = threading.Lock()  # one generator forward at a time: they are fast, and threads would oversubscribe
    app = FastAPI(title="gankit studio", docs_url="/api/docs", redoc_url=None)

    @app.middleware("http")
    async def bound_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            return JSONResponse({"detail": f"request body larger than {MAX_BODY} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(GankitError)
    async def gankit_error(request: Request, e: GankitError):
        return JSONResponse({"detail": str(e)}, status_code=400)

    def run_of(name: str) -> Run:
        if name not in runs:
            raise HTTPException(404, f"unknown run {name!r}; this studio serves: {', '.join(runs)}")
        return runs[name]

    def images_only(r: Run) -> api.Generator:
        g = r.generator()
        if len(g.shape) != 3:
            raise HTTPException(400, f"run {r.name} makes points, not images")
        if g.task:
            raise HTTPException(400, f"run {r.name} is an image-to-image run ({g.cfg.model.name}): it maps images "
                                "and has no latent space; its monitor and held-out scores are here, "
                                "gankit translate / upscale / inpaint run it")
        if _family(g) in ANOMALY:
            raise HTTPException(400, f"run {r.name} is an anomaly detector ({g.cfg.model.name}): see its score "
                                "histogram; gankit anomaly scores images with it")
        return g

    def family_run(name: str, family: str, what: str) -> tuple[Run, api.Generator]:
        r = run_of(name)
        g = r.generator()
        if _family(g) != family:
            raise HTTPException(400, f"run {name} is a {_family(g)} run; {what}")
        return r, g

    # --- pages and run data ------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (STATIC / "index.html").read_text()

    @app.get("/static/{name}")
    def static(name: str) -> FileResponse:
        files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in files:
            raise HTTPException(404, "no such file")
        return FileResponse(files[name])

    @app.get("/api/runs")
    def list_runs() -> list[dict[str, Any]]:
        out = []
        for r in runs.values():
            g = r.generator()
            out.append({"name": r.name, "recipe": g.cfg.recipe, "model": g.cfg.model.name, "step": g.step,
                        "shape": list(g.shape), "conditional": g.conditional, "n_classes": g.n_classes,
                        "truncation": hasattr(g.net, "truncation"), "model_hash": g.hash, "task": g.task,
                        "family": _family(g), "metrics": _eval(r.path)})
        return out

    @app.get("/api/runs/{name}/sample.png")
    def sample(name: str, seed: int = Query(0, ge=0, le=2**31 - 1), label: int | None = Query(None, ge=0),
               truncation: float | None = Query(None, ge=0, le=2), scale: int = Query(4, ge=1, le=8),
               text: str | None = Query(None, min_length=1, max_length=200)) -> Response:
        r = run_of(name)
        g = images_only(r)
        label = None if text is not None else _label(g, seed, label)
        with lock:
            x = g.sample(1, seed=seed, label=label, truncation=truncation, text=text)
        info = {"model_hash": g.hash, "seed": str(seed), "run": r.name, "step": str(g.step)}
        if label is not None:
            info["label"] = str(label)
        if text is not None:
            info["text"] = text
        return _png(x, info, scale)

    @app.get("/api/runs/{name}/say.wav")
    def say_wav(name: str, text: str = Query(..., min_length=1, max_length=200),
                seed: int = Query(0, ge=0, le=2**31 - 1)) -> Response:
        """A speech run's audio for digit words (8 kHz WAV), as `gankit say` writes it."""
        from ..data.audio import write_wav
        from ..families.speech import say

        _, g = family_run(name, "speech", "only speech runs speak")
        with lock:
            audio = say(g, text, seed=seed)
        buf = io.BytesIO()
        write_wav(audio, buf)
        return Response(buf.getvalue(), media_type="audio/wav", headers={"Cache-Control": "no-store"})

    @app.get("/api/runs/{name}/scores.png")
    def scores(name: str) -> Response:
        """An anomaly run's held-out scores: histograms of the normal class and of the others,
        with the run's threshold."""
        r, g = run_of(name), run_of(name).generator()
        if _family(g) not in ANOMALY:
            raise HTTPException(400, f"run {name} is a {_family(g)} run; score histograms are for anomaly runs")
        with lock:
            png = _score_histogram(r.path)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/runs/{name}/gallery")
    def gallery(name: str, n: int = Query(16, ge=1, le=MAX_N), seed: int = Query(0, ge=0, le=2**31 - MAX_N)):
        run_of(name)
        return {"run": name, "seeds": list(range(seed, seed + n))}

    @app.get("/api/runs/{name}/interp.png")
    def interp(name: str, a: int = Query(..., ge=0, le=2**31 - 1), b: int = Query(..., ge=0, le=2**31 - 1),
               t: float = Query(..., ge=0, le=1), mode: Literal["slerp", "linear"] = "slerp",
               label: int | None = Query(None, ge=0)) -> Response:
        r = run_of(name)
        g = images_only(r)
        with lock:
            z = g.latent_path(a, b, torch.tensor([t]), mode)
            x = g.from_z(z, g.labels(1, label))
        return _png(x, {"model_hash": g.hash, "seed": f"{a}->{b} t={t:g} {mode}", "run": r.name})

    @app.get("/api/runs/{name}/interp.gif")
    def interp_gif(name: str, a: int = Query(..., ge=0, le=2**31 - 1), b: int = Query(..., ge=0, le=2**31 - 1),
                   steps: int = Query(16, ge=2, le=64), mode: Literal["slerp", "linear"] = "slerp") -> Response:
        r = run_of(name)
        g = images_only(r)
        with lock:
            x = g.interpolate(a, b, steps, mode)
        frames = [grid(x[i: i + 1], pad=0, scale=4) for i in range(len(x))]
        frames = frames + frames[-2:0:-1]  # there and back
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0,
                       comment=f"generated by gankit model {g.hash}, seeds {a}->{b}".encode())
        return Response(buf.getvalue(), media_type="image/gif",
                        headers={"Content-Disposition": f'attachment; filename="{r.name}-{a}-{b}.gif"'})

    @app.get("/api/runs/{name}/log")
    def run_log(name: str, after: int = Query(-1, ge=-1)) -> dict[str, Any]:
        r = run_of(name)
        rows, info = [], {}
        log_path = r.path / "log.jsonl"
        if log_path.exists():
            for line in log_path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:  # a line being written right now
                    continue
                if row.get("event") == "log" and row["step"] > after:
                    rows.append({k: row.get(k) for k in ("step", "d_loss", "g_loss", "images_per_s", "diversity",
                                                          "d_real", "d_fake")})
                elif row.get("event") in ("start", "resume"):
                    info = {k: row.get(k) for k in ("recipe", "steps", "precision", "device", "processes")}
        grids = sorted(p.name for p in (r.path / "samples").glob("step-*.png"))
        return {"run": name, "rows": rows, "info": info, "grids": grids, "eval": _eval(r.path)}

    @app.get("/api/runs/{name}/grids/{fname}")
    def grid_file(name: str, fname: str) -> FileResponse:
        r = run_of(name)
        files = {p.name: p for p in (r.path / "samples").glob("step-*.png")}
        if fname not in files:
            raise HTTPException(404, f"no sample grid {fname!r} in run {name}")
        return FileResponse(files[fname], media_type="image/png")

    @app.get("/api/compare")
    def compare() -> dict[str, Any]:
        table = {r.name: _eval(r.path) for r in runs.values()}
        keys = sorted({k for m in table.values() for k, v in m.items() if isinstance(v, (int, float))})
        return {"metrics": keys, "runs": table}

    # --- human evaluation --------------------------------------------------------------------
    def new_item(con, kind: str, study_id: int | None, position: int | None, rng: random.Random,
                 names: list[str]) -> dict[str, Any]:
        token = secrets.token_urlsafe(12)
        if kind == "turing":
            r = runs[rng.choice(names)]
            real = rng.random() < 0.5
            seed = rng.randrange(len(r.real())) if real else rng.randrange(2**31)
            con.execute("INSERT INTO items (study_id, position, kind, token, run_a, seed_a, real_a, created) "
                        "VALUES (?, ?, 'turing', ?, ?, ?, ?, ?)", (study_id, position, token, r.name, seed,
                                                                   int(real), now()))
        else:
            a, b = rng.sample(names, 2)
            con.execute("INSERT INTO items (study_id, position, kind, token, run_a, seed_a, run_b, seed_b, created) "
                        "VALUES (?, ?, 'pairwise', ?, ?, ?, ?, ?, ?)",
                        (study_id, position, token, a, rng.randrange(2**31), b, rng.randrange(2**31), now()))
        return {"token": token, "kind": kind}

    def image_runs(names: list[str] | None = None) -> list[str]:
        # by default every run that generates images from z (image-to-image runs cannot be sampled)
        names = names or [n for n, r in runs.items() if len(r.generator().shape) == 3 and not r.generator().task
                          and _family(r.generator()) not in ANOMALY]
        if not names:
            raise HTTPException(409, "human evaluation needs a run that generates images from noise; these "
                                f"runs make points or map images: {', '.join(runs)}")
        for n in names:
            images_only(run_of(n))
        return names

    @app.get("/api/turing/next")
    def turing_next(rater: str = Query(..., min_length=1, max_length=64)) -> dict[str, Any]:
        names = image_runs()
        with store.write() as con:
            return new_item(con, "turing", None, None, random.Random(secrets.randbits(64)), names)

    @app.get("/api/pair/next")
    def pair_next(rater: str = Query(..., min_length=1, max_length=64)) -> dict[str, Any]:
        names = image_runs()
        if len(names) < 2:
            raise HTTPException(409, "pairwise preference needs at least two runs (gankit serve RUN_A RUN_B)")
        with store.write() as con:
            return new_item(con, "pairwise", None, None, random.Random(secrets.randbits(64)), names)

    @app.get("/api/items/{token}/{side}.png")
    def item_image(token: str, side: Literal["image", "a", "b"]) -> Response:
        with store.read() as con:
            it = con.execute("SELECT * FROM items WHERE token = ?", (token,)).fetchone()
        if it is None:
            raise HTTPException(404, "unknown item")
        if (it["kind"] == "turing") != (side == "image"):
            raise HTTPException(404, f"a {it['kind']} item has no image {side!r}")
        run, seed = (it["run_b"], it["seed_b"]) if side == "b" else (it["run_a"], it["seed_a"])
        r = run_of(run)
        if it["real_a"]:
            x = r.real()[seed: seed + 1]
            return _png(x, None)  # a real image from the run's data: no "generated" mark
        g = images_only(r)
        with lock:
            x = g.sample(1, seed=seed, label=_label(g, seed, None))
        return _png(x, {"model_hash": g.hash, "seed": str(seed)})

    @app.post("/api/votes")
    def vote(v: Vote) -> dict[str, Any]:
        with store.write() as con:
            it = con.execute("SELECT items.*, studies.closed AS closed, studies.id AS sid FROM items "
                             "LEFT JOIN studies ON studies.id = items.study_id WHERE token = ?",
                             (v.token,)).fetchone()
            if it is None:
                raise HTTPException(404, "unknown item")
            if it["closed"]:
                raise HTTPException(409, "this study is closed; no more answers are taken")
            allowed = ("real", "fake") if it["kind"] == "turing" else ("a", "b")
            if v.answer not in allowed:
                raise HTTPException(422, f"a {it['kind']} item takes {' or '.join(allowed)}, not {v.answer!r}")
            if it["sid"] is not None and con.execute("SELECT 1 FROM studies WHERE id = ? AND consent != ''",
                                                     (it["sid"],)).fetchone():
                if not con.execute("SELECT 1 FROM consents WHERE study_id = ? AND rater = ?",
                                   (it["sid"], v.rater)).fetchone():
                    raise HTTPException(403, "this rater has not agreed to the study's consent note")
            cur = con.execute("INSERT INTO votes (item_id, rater, answer, ms, created) VALUES (?, ?, ?, ?, ?) "
                              "ON CONFLICT (item_id, rater) DO NOTHING", (it["id"], v.rater, v.answer, v.ms, now()))
            counted = cur.rowcount == 1
        out: dict[str, Any] = {"counted": counted}
        if it["kind"] == "turing":
            out["was"] = "real" if it["real_a"] else "fake"  # feedback after answering, as in a quiz
        return out

    @app.get("/api/turing/results")
    def turing_results(study: int | None = Query(None, ge=1)) -> dict[str, Any]:
        with store.read() as con:
            return _turing_results(con, study)

    @app.get("/api/pair/results")
    def pair_results(study: int | None = Query(None, ge=1)) -> dict[str, Any]:
        with store.read() as con:
            return _pair_results(con, study, list(runs))

    # --- user studies --------------------------------------------------------------------------
    @app.post("/api/studies")
    def create_study(s: NewStudy) -> dict[str, Any]:
        names = image_runs(s.runs)
        if s.kind == "pairwise" and len(set(names)) < 2:
            raise HTTPException(409, "a pairwise study needs at least two runs")
        rng = random.Random(s.seed)
        with store.write() as con:
            if con.execute("SELECT 1 FROM studies WHERE name = ?", (s.name,)).fetchone():
                raise HTTPException(409, f"a study named {s.name!r} exists")
            sid = con.execute("INSERT INTO studies (name, kind, consent, runs, n_items, created) VALUES "
                              "(?, ?, ?, ?, ?, ?)", (s.name, s.kind, s.consent, json.dumps(names), s.n_items,
                                                     now())).lastrowid
            for i in range(s.n_items):
                new_item(con, s.kind, sid, i, rng, names)
        return study_info(sid)

    def study_row(con, sid: int):
        st = con.execute("SELECT * FROM studies WHERE id = ?", (sid,)).fetchone()
        if st is None:
            raise HTTPException(404, f"no study {sid}")
        return st

    def study_info(sid: int, rater: str | None = None) -> dict[str, Any]:
        with store.read() as con:
            st = study_row(con, sid)
            votes = con.execute("SELECT COUNT(*) FROM votes JOIN items ON items.id = votes.item_id "
                                "WHERE items.study_id = ?", (sid,)).fetchone()[0]
            raters = con.execute("SELECT COUNT(DISTINCT rater) FROM votes JOIN items ON items.id = votes.item_id "
                                 "WHERE items.study_id = ?", (sid,)).fetchone()[0]
            out = {"id": sid, "name": st["name"], "kind": st["kind"], "consent": st["consent"],
                   "runs": json.loads(st["runs"]), "n_items": st["n_items"], "closed": bool(st["closed"]),
                   "votes": votes, "raters": raters}
            if rater is not None:
                out["answered"] = con.execute(
                    "SELECT COUNT(*) FROM votes JOIN items ON items.id = votes.item_id WHERE items.study_id = ? "
                    "AND rater = ?", (sid, rater)).fetchone()[0]
                out["consented"] = bool(con.execute("SELECT 1 FROM consents WHERE study_id = ? AND rater = ?",
                                                    (sid, rater)).fetchone()) or not st["consent"]
        return out

    @app.get("/api/studies")
    def studies() -> list[dict[str, Any]]:
        with store.read() as con:
            ids = [r[0] for r in con.execute("SELECT id FROM studies ORDER BY id")]
        return [study_info(i) for i in ids]

    @app.get("/api/studies/{sid}")
    def get_study(sid: int, rater: str | None = Query(None, min_length=1, max_length=64)) -> dict[str, Any]:
        return study_info(sid, rater)

    @app.post("/api/studies/{sid}/consent")
    def consent(sid: int, c: Consent) -> dict[str, Any]:
        with store.write() as con:
            st = study_row(con, sid)
            if st["closed"]:
                raise HTTPException(409, "this study is closed")
            con.execute("INSERT INTO consents (study_id, rater, created) VALUES (?, ?, ?) "
                        "ON CONFLICT DO NOTHING", (sid, c.rater, now()))
        return {"ok": True}

    @app.get("/api/studies/{sid}/next")
    def study_next(sid: int, rater: str = Query(..., min_length=1, max_length=64)) -> dict[str, Any]:
        with store.read() as con:
            st = study_row(con, sid)
            if st["closed"]:
                raise HTTPException(409, "this study is closed")
            it = con.execute("SELECT token, kind, position FROM items WHERE study_id = ? AND id NOT IN "
                             "(SELECT item_id FROM votes WHERE rater = ?) ORDER BY position LIMIT 1",
                             (sid, rater)).fetchone()
        if it is None:
            return {"done": True}
        return {"token": it["token"], "kind": it["kind"], "position": it["position"], "of": st["n_items"]}

    @app.post("/api/studies/{sid}/close")
    def close_study(sid: int) -> dict[str, Any]:
        with store.write() as con:
            study_row(con, sid)
            con.execute("UPDATE studies SET closed = 1 WHERE id = ?", (sid,))
        return study_info(sid)

    @app.get("/api/studies/{sid}/results")
    def study_results(sid: int) -> dict[str, Any]:
        with store.read() as con:
            st = study_row(con, sid)
            res = (_turing_results(con, sid) if st["kind"] == "turing"
                   else _pair_results(con, sid, json.loads(st["runs"])))
        return {"study": study_info(sid), **res}

    @app.get("/api/studies/{sid}/export.csv")
    def export(sid: int) -> Response:
        with store.read() as con:
            st = study_row(con, sid)
            rows = con.execute(
                "SELECT items.position, items.kind, items.run_a, items.seed_a, items.real_a, items.run_b, "
                "items.seed_b, votes.rater, votes.answer, votes.ms, votes.created FROM votes "
                "JOIN items ON items.id = votes.item_id WHERE items.study_id = ? ORDER BY votes.id",
                (sid,)).fetchall()
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["position", "kind", "run_a", "seed_a", "real_a", "run_b", "seed_b", "rater", "answer", "ms",
                    "created"])
        w.writerows([list(r) for r in rows])
        return Response(buf.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="study-{sid}-{st["name"]}.csv"'})

    app.state.store, app.state.runs = store, runs
    return app


ANOMALY = ("ganomaly", "fanogan")


def _family(g: api.Generator) -> str:
    from ..families import family_of

    return family_of(g.cfg).name


def _score_histogram(run: Path) -> bytes:
    """PNG: held-out anomaly scores of the normal class and of the others, and the threshold."""
    import copy

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..data import build
    from ..families.anomaly import Detector

    det = Detector(run)
    cfg = copy.deepcopy(det.cfg.data)
    cfg.split = "test" if cfg.split == "train" else cfg.split
    test = build(cfg)
    s = det.score(test.x).numpy()
    normal = (test.y == det.normal_class).numpy()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(s.min(), s.max(), 40)
    ax.hist(s[~normal], bins, alpha=0.6, label="other digits (anomalous)", density=True)
    ax.hist(s[normal], bins, alpha=0.6, label=f"digit {det.normal_class} (normal)", density=True)
    ax.axvline(det.threshold, color="black", lw=1, ls="--", label="threshold")
    ax.set_xlabel(f"{det.method} score (held out)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _label(g: api.Generator, seed: int, label: int | None) -> int | None:
    """A conditional run's class for a single sample: the one asked for, else seed mod K (so a
    gallery of consecutive seeds sweeps the classes, as `gankit sample` grids do)."""
    if label is None and g.conditional:
        return seed % g.n_classes
    return label


def _eval(path: Path) -> dict[str, Any]:
    p = path / "eval.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except ValueError:
        return {}


def _turing_results(con, study: int | None) -> dict[str, Any]:
    where = "items.study_id = ?" if study else "items.study_id IS NULL"
    args = (study,) if study else ()
    rows = con.execute(f"SELECT items.run_a AS run, items.real_a AS real, votes.answer AS answer FROM votes "
                       f"JOIN items ON items.id = votes.item_id WHERE items.kind = 'turing' AND {where}",
                       args).fetchall()
    per: dict[str, dict[str, int]] = {}
    for r in rows:
        d = per.setdefault(r["run"], {"fake_n": 0, "fooled": 0, "real_n": 0, "real_called_real": 0})
        if r["real"]:
            d["real_n"] += 1
            d["real_called_real"] += r["answer"] == "real"
        else:
            d["fake_n"] += 1
            d["fooled"] += r["answer"] == "real"
    out = {}
    for run, d in per.items():
        p, lo, hi = stats.wilson(d["fooled"], d["fake_n"])
        q, qlo, qhi = stats.wilson(d["real_called_real"], d["real_n"])
        out[run] = {**d, "fool_rate": p, "fool_rate_95": [lo, hi], "real_judged_real": q,
                    "real_judged_real_95": [qlo, qhi]}
    return {"kind": "turing", "votes": len(rows), "runs": out,
            "note": "fool rate: share of generated images judged real (Wilson 95 % interval); 0.5 is "
                    "indistinguishable when raters also judge real images right half of the time"}


def _pair_results(con, study: int | None, names: list[str]) -> dict[str, Any]:
    where = "items.study_id = ?" if study else "items.study_id IS NULL"
    args = (study,) if study else ()
    rows = con.execute(f"SELECT items.run_a AS a, items.run_b AS b, votes.answer AS answer FROM votes "
                       f"JOIN items ON items.id = votes.item_id WHERE items.kind = 'pairwise' AND {where}",
                       args).fetchall()
    wins = [(r["a"], r["b"]) if r["answer"] == "a" else (r["b"], r["a"]) for r in rows]
    names = sorted(set(names) | {w for pair in wins for w in pair})
    bt = stats.bradley_terry_ci(names, wins) if len(names) >= 2 else {}
    return {"kind": "pairwise", "votes": len(rows),
            "runs": {n: {"wins": sum(w == n for w, _ in wins), "comparisons": sum(n in p for p in wins),
                         "bt_log_strength": v[0], "bt_95": [v[1], v[2]]} for n, v in bt.items()},
            "note": "Bradley-Terry log-strengths (centred at 0; P(i beats j) = sigmoid(s_i - s_j)), "
                    "95 % percentile-bootstrap intervals over the votes; with fewer than about 30 votes per "
                    "pair of runs these intervals are too narrow, so collect more before concluding"}
