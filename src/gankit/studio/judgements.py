"""The studio's human-evaluation routes: Turing-test and pairwise items, their images, votes
(one per rater and item, the rater named by its token) and results (Wilson intervals,
Bradley-Terry strengths)."""

from __future__ import annotations

import random
import secrets
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from .app import Studio, Vote, _label, _pair_results, _png, _turing_results
from .db import now


def router(ctx: Studio) -> APIRouter:
    r = APIRouter()

    @r.get("/api/turing/next")
    def turing_next() -> dict[str, Any]:
        names = ctx.image_runs()
        with ctx.store.write() as con:
            return ctx.new_item(con, "turing", None, None, random.Random(secrets.randbits(64)), names)

    @r.get("/api/pair/next")
    def pair_next() -> dict[str, Any]:
        names = ctx.image_runs()
        if len(names) < 2:
            raise HTTPException(409, "pairwise preference needs at least two runs (gankit serve RUN_A RUN_B)")
        with ctx.store.write() as con:
            return ctx.new_item(con, "pairwise", None, None, random.Random(secrets.randbits(64)), names)

    @r.get("/api/items/{token}/{side}.png")
    def item_image(token: str, side: Literal["image", "a", "b"]) -> Response:
        """An item's image with no metadata at all, real or generated: the same encoder, the same
        chunks, so the file cannot tell a rater what the question asks (the gallery's downloads
        keep their provenance). A real image is generated for too, and the sample dropped, so
        that neither answers sooner."""
        with ctx.store.read() as con:
            it = con.execute("SELECT * FROM items WHERE token = ?", (token,)).fetchone()
        if it is None:
            raise HTTPException(404, "unknown item")
        if (it["kind"] == "turing") != (side == "image"):
            raise HTTPException(404, f"a {it['kind']} item has no image {side!r}")
        run, seed = (it["run_b"], it["seed_b"]) if side == "b" else (it["run_a"], it["seed_a"])
        r = ctx.run_of(run)
        g = ctx.images_only(r)
        with ctx.lock:
            x = g.sample(1, seed=seed, label=_label(g, seed, None))
        if it["real_a"]:
            x = r.real()[seed: seed + 1]
        return _png(x, None)

    @r.post("/api/votes")
    def vote(v: Vote, rater: str = Depends(ctx.access.rater)) -> dict[str, Any]:
        with ctx.store.write() as con:
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
                                   (it["sid"], rater)).fetchone():
                    raise HTTPException(403, "this rater has not agreed to the study's consent note")
            cur = con.execute("INSERT INTO votes (item_id, rater, answer, ms, created) VALUES (?, ?, ?, ?, ?) "
                              "ON CONFLICT (item_id, rater) DO NOTHING", (it["id"], rater, v.answer, v.ms, now()))
            counted = cur.rowcount == 1
        out: dict[str, Any] = {"counted": counted}
        if it["kind"] == "turing" and it["sid"] is None:
            # feedback after answering, as in a quiz; never in a study, whose items are the same for
            # every rater: one rater's answers would be everyone's key
            out["was"] = "real" if it["real_a"] else "fake"
        return out

    @r.get("/api/turing/results")
    def turing_results() -> dict[str, Any]:
        """The open Turing test's results (a study's are its owner's: /api/studies/{id}/results)."""
        with ctx.store.read() as con:
            return _turing_results(con, None)

    @r.get("/api/pair/results")
    def pair_results() -> dict[str, Any]:
        with ctx.store.read() as con:
            return _pair_results(con, None, list(ctx.runs))

    return r
