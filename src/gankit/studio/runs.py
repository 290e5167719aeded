"""The studio's run routes: the list of runs, samples (by seed, class, caption), speech audio,
anomaly score histograms, interpolation, the training monitor's log and grids, run comparison."""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import torch
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response

from ..monitor.images import grid
from .app import MAX_N, Studio, _command, _detector, _eval, _family, _label, _png, _scalars, _score_histogram
from .guard import attachment


def router(ctx: Studio) -> APIRouter:
    r = APIRouter()

    @r.get("/api/runs")
    def list_runs() -> list[dict[str, Any]]:
        out = []
        for r in ctx.runs.values():
            g = r.generator()
            out.append({"name": r.name, "recipe": g.cfg.recipe, "model": g.cfg.model.name, "step": g.step,
                        "shape": list(g.shape), "conditional": g.conditional, "n_classes": g.n_classes,
                        "truncation": hasattr(g.net, "truncation"), "model_hash": g.hash, "task": g.task,
                        "family": _family(g), "detector": _detector(g), "metrics": _eval(r.path), "cli": r.cli})
        return out

    Seed = Query(0, ge=0, le=2**31 - 1)
    Label = Query(None, ge=0)
    Truncation = Query(None, ge=0, le=2)
    Text = Query(None, min_length=1, max_length=200)

    def one_sample(name: str, seed: int, label: int | None, truncation: float | None, text: str | None):
        """The run, its generator, the class the studio draws seed `seed` with, and the command
        that draws the same image again."""
        r = ctx.run_of(name)
        g = ctx.images_only(r)
        label = None if text is not None else _label(g, seed, label)
        return r, g, label, _command(r, seed, label, text, truncation)

    @r.get("/api/runs/{name}/sample.png")
    def sample(name: str, seed: int = Seed, label: int | None = Label, truncation: float | None = Truncation,
               scale: int = Query(4, ge=1, le=8), text: str | None = Text) -> Response:
        """Seed `seed`'s image: `Generator.sample(1, seed=seed)`, the image `gankit sample RUN
        --seeds N` draws for that seed; its PNG carries the seed and that command."""
        r, g, label, command = one_sample(name, seed, label, truncation, text)
        with ctx.lock:
            x = g.sample(1, seed=seed, label=label, truncation=truncation, text=text)
        info = {"model_hash": g.hash, "seed": str(seed), "run": r.name, "step": str(g.step)}
        if label is not None:
            info["label"] = str(label)
        if text is not None:
            info["text"] = text
        if truncation is not None:
            info["truncation"] = f"{truncation:g}"
        info["command"] = command
        return _png(x, info, scale)

    @r.get("/api/runs/{name}/sample.json")
    def sample_info(name: str, seed: int = Seed, label: int | None = Label, truncation: float | None = Truncation,
                    text: str | None = Text) -> dict[str, Any]:
        """What the page shows beside a sample: its seed, class and the command that draws it again."""
        r, g, label, command = one_sample(name, seed, label, truncation, text)
        if label is not None:
            g.labels(1, label)  # a class the run does not have: the same 400 as its image
        return {"run": r.name, "seed": seed, "label": label, "text": text, "truncation": truncation,
                "command": command}

    @r.get("/api/runs/{name}/say.wav")
    def say_wav(name: str, text: str = Query(..., min_length=1, max_length=200),
                seed: int = Query(0, ge=0, le=2**31 - 1)) -> Response:
        """A speech run's audio for digit words (8 kHz WAV), as `gankit say` writes it."""
        from ..data.audio import write_wav
        from ..families.speech import say

        _, g = ctx.family_run(name, "speech", "only speech runs speak")
        with ctx.lock:
            audio = say(g, text, seed=seed)
        buf = io.BytesIO()
        write_wav(audio, buf)
        return Response(buf.getvalue(), media_type="audio/wav", headers={"Cache-Control": "no-store"})

    @r.get("/api/runs/{name}/scores.png")
    def scores(name: str) -> Response:
        """An anomaly run's held-out scores: histograms of the normal class and of the others,
        with the run's threshold."""
        r, g = ctx.run_of(name), ctx.run_of(name).generator()
        if not _detector(g):
            raise HTTPException(400, f"run {name} is a {_family(g)} run; score histograms are for anomaly runs")
        with ctx.lock:
            png = _score_histogram(r.path)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @r.get("/api/runs/{name}/gallery")
    def gallery(name: str, n: int = Query(16, ge=1, le=MAX_N), seed: int = Query(0, ge=0, le=2**31 - MAX_N)):
        ctx.run_of(name)
        return {"run": name, "seeds": list(range(seed, seed + n))}

    @r.get("/api/runs/{name}/interp.png")
    def interp(name: str, a: int = Query(..., ge=0, le=2**31 - 1), b: int = Query(..., ge=0, le=2**31 - 1),
               t: float = Query(..., ge=0, le=1), mode: Literal["slerp", "linear"] = "slerp",
               label: int | None = Query(None, ge=0)) -> Response:
        r = ctx.run_of(name)
        g = ctx.images_only(r)
        with ctx.lock:
            z = g.latent_path(a, b, torch.tensor([t]), mode)
            x = g.from_z(z, g.labels(1, label))
        return _png(x, {"model_hash": g.hash, "seed": f"{a}->{b} t={t:g} {mode}", "run": r.name})

    @r.get("/api/runs/{name}/interp.gif")
    def interp_gif(name: str, a: int = Query(..., ge=0, le=2**31 - 1), b: int = Query(..., ge=0, le=2**31 - 1),
                   steps: int = Query(16, ge=2, le=64), mode: Literal["slerp", "linear"] = "slerp",
                   label: int | None = Query(None, ge=0)) -> Response:
        r = ctx.run_of(name)
        g = ctx.images_only(r)
        with ctx.lock:
            x = g.interpolate(a, b, steps, mode, label)
        frames = [grid(x[i: i + 1], pad=0, scale=4) for i in range(len(x))]
        frames = frames + frames[-2:0:-1]  # there and back
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0,
                       comment=f"generated by gankit model {g.hash}, seeds {a}->{b}".encode())
        return Response(buf.getvalue(), media_type="image/gif", headers=attachment(f"{r.name}-{a}-{b}.gif"))

    @r.get("/api/runs/{name}/log")
    def run_log(name: str, after: int = Query(-1, ge=-1)) -> dict[str, Any]:
        """The training monitor's data: every number of every log row after step `after` (losses,
        D's outputs, gradient norms, learning rates, speed, diversity, whatever a family logs), and
        all of the run's periodic evaluations, warnings and sample grids."""
        r = ctx.run_of(name)
        rows, evals, warnings, info = [], [], [], {}
        log_path = r.path / "log.jsonl"
        if log_path.exists():
            for line in log_path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:  # a line being written right now
                    continue
                if not isinstance(row, dict):
                    continue
                event, step = row.get("event"), row.get("step", -1)
                if event in ("start", "resume"):
                    info = {k: row.get(k) for k in ("recipe", "steps", "precision", "device", "processes")}
                elif event == "end":
                    info["status"] = row.get("status")
                if not isinstance(step, int):
                    continue
                if event == "log" and step > after:
                    rows.append(_scalars(row))
                elif event == "eval":  # a few rows, each sent every time: one may follow its step's log row
                    evals.append(_scalars(row))
                if row.get("warning") or event == "diverged":
                    warnings.append({"step": step, "message": str(row.get("warning") or row.get("message"))})
        grids = sorted(p.name for p in (r.path / "samples").glob("step-*.png"))
        return {"run": name, "rows": rows, "evals": evals, "warnings": warnings, "info": info, "grids": grids,
                "eval": _eval(r.path)}

    @r.get("/api/runs/{name}/grids/{fname}")
    def grid_file(name: str, fname: str) -> FileResponse:
        r = ctx.run_of(name)
        files = {p.name: p for p in (r.path / "samples").glob("step-*.png")}
        if fname not in files:
            raise HTTPException(404, f"no sample grid {fname!r} in run {name}")
        return FileResponse(files[fname], media_type="image/png")

    @r.get("/api/compare")
    def compare() -> dict[str, Any]:
        table = {r.name: _eval(r.path) for r in ctx.runs.values()}
        keys = sorted({k for m in table.values() for k, v in m.items() if isinstance(v, (int, float))})
        return {"metrics": keys, "runs": table}

    return r
