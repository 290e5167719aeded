"""gankit studio: a FastAPI app over the runs named on the command line.

Only those runs can be reached: a run is addressed by its short name, looked up in a dict made
at start-up, never joined into a path; sample grids are served only under names found by listing
the run's own `samples/` folder. Request bodies and `n` are bounded; bad input is a 4xx with a
message. Requests must name this studio as their Host, and every response forbids inline script
(`guard.py`); raters hold server-issued tokens and the owner the token printed at start-up
(`access.py`). Judgements live in SQLite (`db.py`).
"""

from __future__ import annotations

import io
import json
import math
import random
import secrets
import shlex
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import api
from ..errors import GankitError
from ..monitor.images import grid, provenance
from . import stats
from .access import Access
from .db import Store, now
from .guard import Guard, host_names

MAX_N = 256  # images per gallery request
MAX_BODY = 64 * 1024  # bytes of a request body
STATIC = Path(__file__).parent / "static"
# a study id is an SQLite integer: a bigger one could never exist, and would overflow the driver
StudyId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


@dataclass
class Run:
    name: str
    path: Path
    cli: str = ""  # how a command line names this run (see _cli_name)
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
    """A PNG of the images x; with `info`, the provenance chunks saying it is generated, by which
    model. Without, IHDR, IDAT and IEND only: the same bytes-level shape for any image."""
    img = grid(x, nrow=len(x), pad=0, scale=scale)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=provenance(info) if info is not None else None)
    return Response(buf.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"})


class Vote(BaseModel):
    # no rater field: the rater is the holder of the request's rater token (access.py)
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=8, max_length=64)
    answer: Literal["real", "fake", "a", "b"]
    ms: int | None = Field(default=None, ge=0, le=3_600_000)


class NewStudy(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["turing", "pairwise"]
    n_items: int = Field(ge=1, le=1000)
    consent: str = Field(default="", max_length=4000)
    runs: list[str] | None = None
    seed: int = 0

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str) -> str:
        if not name.isprintable():
            raise ValueError("a study name is one line of printable text (no line breaks, tabs or control characters)")
        return name



class Studio:
    """What the routers share: the served runs (by short name), the judgement store, and one lock
    so that only one generator forward runs at a time (they are fast; threads would oversubscribe)."""

    def __init__(self, run_dirs: list[Path], db_path: Path, owner_token: str) -> None:
        self.runs: dict[str, Run] = {}
        for p in run_dirs:
            p = Path(p)
            if not (p / "checkpoints" / "latest.pt").exists():
                raise GankitError(f"{p}: not a gankit run folder (no checkpoints/latest.pt)")
            name, k = p.resolve().name, 2
            while name in self.runs:  # two runs with the same folder name: a, a-2
                name, k = f"{p.resolve().name}-{k}", k + 1
            self.runs[name] = Run(name, p, _cli_name(p, name))
        self.store = Store(db_path)
        self.access = Access(self.store, owner_token)
        self.lock = threading.Lock()

    def run_of(self, name: str) -> Run:
        if name not in self.runs:
            raise HTTPException(404, f"unknown run {name!r}; this studio serves: {', '.join(self.runs)}")
        return self.runs[name]

    def images_only(self, r: Run) -> api.Generator:
        g = r.generator()
        if len(g.shape) != 3:
            raise HTTPException(400, f"run {r.name} makes points, not images")
        if g.task:
            raise HTTPException(400, f"run {r.name} is an image-to-image run ({g.cfg.model.name}): it maps images "
                                "and has no latent space; its monitor and held-out scores are here, "
                                "gankit translate / upscale / inpaint run it")
        if _detector(g):
            raise HTTPException(400, f"run {r.name} is an anomaly detector ({g.cfg.model.name}): see its score "
                                "histogram; gankit anomaly scores images with it")
        return g

    def family_run(self, name: str, family: str, what: str) -> tuple[Run, api.Generator]:
        r = self.run_of(name)
        g = r.generator()
        if _family(g) != family:
            raise HTTPException(400, f"run {name} is a {_family(g)} run; {what}")
        return r, g


    def new_item(self, con, kind: str, study_id: int | None, position: int | None, rng: random.Random,
                 names: list[str]) -> dict[str, Any]:
        token = secrets.token_urlsafe(12)
        if kind == "turing":
            r = self.runs[rng.choice(names)]
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

    def image_runs(self, names: list[str] | None = None) -> list[str]:
        # by default every run that generates images from z (image-to-image runs cannot be sampled)
        names = names or [n for n, r in self.runs.items() if len(r.generator().shape) == 3 and not r.generator().task
                          and not _detector(r.generator())]
        if not names:
            raise HTTPException(409, "human evaluation needs a run that generates images from noise; these "
                                f"runs make points or map images: {', '.join(self.runs)}")
        for n in names:
            self.images_only(self.run_of(n))
        return names


def default_db(run_dirs: list[Path]) -> Path:
    """Where the judgements live unless told otherwise: beside the first run served (in its parent
    folder), so a second start from any directory finds the same votes."""
    return Path(run_dirs[0]).resolve().parent / "studio.sqlite"


def create_app(run_dirs: list[Path], db_path: Path, *, host: str = "127.0.0.1",
               allow_hosts: Iterable[str] = ()) -> FastAPI:
    """The studio over `run_dirs`, its judgements in the SQLite file `db_path`.

    `host` is the address served and `allow_hosts` further names clients may use for it (a
    request naming another host gets 421). The owner's token is made here, new for each app, and
    kept in `app.state.owner_token`. Raises GankitError for a folder that is not a run and a
    database that cannot be opened."""
    from . import access, judgements, runs, studies

    ctx = Studio(run_dirs, db_path, secrets.token_urlsafe(32))
    # no interactive API docs: Swagger's page loads script from a CDN and runs it inline, which the
    # studio's Content-Security-Policy forbids; /openapi.json describes the API
    app = FastAPI(title="gankit studio", docs_url=None, redoc_url=None)
    app.add_middleware(Guard, names=host_names(host, allow_hosts), max_body=MAX_BODY)

    @app.exception_handler(GankitError)
    async def gankit_error(request: Request, e: GankitError):
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (STATIC / "index.html").read_text()

    @app.get("/static/{name}")
    def static(name: str) -> FileResponse:
        files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in files:
            raise HTTPException(404, "no such file")
        return FileResponse(files[name])

    app.include_router(access.router(ctx.access))
    for module in (runs, judgements, studies):
        app.include_router(module.router(ctx))
    app.state.store, app.state.runs, app.state.owner_token = ctx.store, ctx.runs, ctx.access.owner_token
    return app


def _family(g: api.Generator) -> str:
    from ..families import family_of

    return family_of(g.cfg).name


def _detector(g: api.Generator) -> bool:
    """An anomaly run (families/anomaly.py): it scores images, it is not sampled."""
    from ..families import family_of
    from ..families.anomaly import Anomaly

    return isinstance(family_of(g.cfg), Anomaly)


def _score_histogram(run: Path) -> bytes:
    """PNG: held-out anomaly scores of the normal class and of the others, and the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..families.anomaly import Detector, held_out_scores

    det = Detector(run)
    scores, anomalous, _ = held_out_scores(det)
    s, normal = scores.numpy(), (~anomalous).numpy()
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


def _cli_name(p: Path, name: str) -> str:
    """How the page's commands name a run: the path as typed on gankit serve's command line when it
    is relative and stays below the folder serve started in (the owner typed it; it tells a visitor
    no more than folder names), else the run's short name (an absolute path would show every
    visitor the owner's home folder)."""
    return str(p) if not p.is_absolute() and ".." not in p.parts else name


def _command(r: Run, seed: int, label: int | None, text: str | None, truncation: float | None) -> str:
    """The command that draws the studio's image of this seed again: `gankit sample --seeds N`
    draws `Generator.sample(1, seed=N)`, as the studio does, with the class, caption or truncation
    the studio used (a conditional run's class is spelled out: the studio's default is seed mod K)."""
    args = ["gankit", "sample", r.cli, "--seeds", str(seed)]
    if label is not None:
        args += ["--label", str(label)]
    if text is not None:
        args += ["--text", text]
    if truncation is not None:
        args += ["--truncation", f"{truncation:g}"]
    return shlex.join([*args, "--out", f"seed-{seed}.png"])


def _scalars(row: dict[str, Any]) -> dict[str, float | None]:
    """A log row's numbers (booleans and text left out); inf and NaN become None, which JSON has."""
    return {k: (v if math.isfinite(v) else None) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


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
