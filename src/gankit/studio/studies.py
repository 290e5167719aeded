"""The studio's user-study routes: create (a fixed, seeded set of items), consent, the next item
for a rater, progress, results, CSV export, closing. Creating, closing, results and export are the
owner's (the CSV names which positions are real images: it is the test's answer key)."""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from .app import NewStudy, Studio, StudyId, _pair_results, _turing_results
from .db import now
from .guard import attachment


def router(ctx: Studio) -> APIRouter:
    r = APIRouter()
    owner = [Depends(ctx.access.owner)]

    @r.post("/api/studies", dependencies=owner)
    def create_study(s: NewStudy) -> dict[str, Any]:
        names = ctx.image_runs(s.runs)
        if s.kind == "pairwise" and len(set(names)) < 2:
            raise HTTPException(409, "a pairwise study needs at least two runs")
        rng = random.Random(s.seed)
        with ctx.store.write() as con:
            if con.execute("SELECT 1 FROM studies WHERE name = ?", (s.name,)).fetchone():
                raise HTTPException(409, f"a study named {s.name!r} exists")
            sid = con.execute("INSERT INTO studies (name, kind, consent, runs, n_items, created) VALUES "
                              "(?, ?, ?, ?, ?, ?)", (s.name, s.kind, s.consent, json.dumps(names), s.n_items,
                                                     now())).lastrowid
            for i in range(s.n_items):
                ctx.new_item(con, s.kind, sid, i, rng, names)
        return study_info(sid)

    def study_row(con, sid: int):
        st = con.execute("SELECT * FROM studies WHERE id = ?", (sid,)).fetchone()
        if st is None:
            raise HTTPException(404, f"no study {sid}")
        return st

    def study_info(sid: int, rater: str | None = None) -> dict[str, Any]:
        with ctx.store.read() as con:
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

    @r.get("/api/studies")
    def studies() -> list[dict[str, Any]]:
        with ctx.store.read() as con:
            ids = [r[0] for r in con.execute("SELECT id FROM studies ORDER BY id")]
        return [study_info(i) for i in ids]

    @r.get("/api/studies/{sid}")
    def get_study(sid: StudyId, request: Request) -> dict[str, Any]:
        """A study; with a rater token, also how far that rater got and whether they consented."""
        return study_info(sid, ctx.access.rater_or_none(request))

    @r.post("/api/studies/{sid}/consent")
    def consent(sid: StudyId, request: Request, response: Response) -> dict[str, Any]:
        """The rater agrees to the study's consent note; a browser without a rater token gets one here."""
        with ctx.store.read() as con:
            if study_row(con, sid)["closed"]:
                raise HTTPException(409, "this study is closed")
        rater = ctx.access.join(request, response)
        with ctx.store.write() as con:
            con.execute("INSERT INTO consents (study_id, rater, created) VALUES (?, ?, ?) "
                        "ON CONFLICT DO NOTHING", (sid, rater, now()))
        return {"ok": True, "rater": rater}

    @r.get("/api/studies/{sid}/next")
    def study_next(sid: StudyId, rater: str = Depends(ctx.access.rater)) -> dict[str, Any]:
        with ctx.store.read() as con:
            st = study_row(con, sid)
            if st["closed"]:
                raise HTTPException(409, "this study is closed")
            it = con.execute("SELECT token, kind, position FROM items WHERE study_id = ? AND id NOT IN "
                             "(SELECT item_id FROM votes WHERE rater = ?) ORDER BY position LIMIT 1",
                             (sid, rater)).fetchone()
        if it is None:
            return {"done": True}
        return {"token": it["token"], "kind": it["kind"], "position": it["position"], "of": st["n_items"]}

    @r.post("/api/studies/{sid}/close", dependencies=owner)
    def close_study(sid: StudyId) -> dict[str, Any]:
        with ctx.store.write() as con:
            study_row(con, sid)
            con.execute("UPDATE studies SET closed = 1 WHERE id = ?", (sid,))
        return study_info(sid)

    @r.get("/api/studies/{sid}/results", dependencies=owner)
    def study_results(sid: StudyId) -> dict[str, Any]:
        with ctx.store.read() as con:
            st = study_row(con, sid)
            res = (_turing_results(con, sid) if st["kind"] == "turing"
                   else _pair_results(con, sid, json.loads(st["runs"])))
        return {"study": study_info(sid), **res}

    @r.get("/api/studies/{sid}/export.csv", dependencies=owner)
    def export(sid: StudyId) -> Response:
        with ctx.store.read() as con:
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
        return Response(buf.getvalue(), media_type="text/csv", headers=attachment(f"study-{sid}-{st['name']}.csv"))

    return r
