"""Who is asking: raters and the studio's owner.

A rater is whoever holds a token the server issued (`secrets.token_urlsafe`, kept in an HttpOnly,
SameSite=Strict cookie; the database keeps only its SHA-256): a vote, a consent and a rater's
progress are recorded under the rater's public id, never under a name the client chooses, so one
browser cannot answer as another. The owner holds the token `gankit serve` prints at start-up
(new at every start): creating and closing studies, their results and CSV export need it, as
`Authorization: Bearer TOKEN` or the cookie the page sets from the printed owner link.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from .db import Store, now

RATER_COOKIE = "gankit_rater"
OWNER_COOKIE = "gankit_owner"
RATER_DAYS = 180  # a rater can come back to a long study from the same browser


class OwnerLogin(BaseModel):
    token: str = Field(min_length=1, max_length=200)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Access:
    def __init__(self, store: Store, owner_token: str) -> None:
        self.store, self.owner_token = store, owner_token

    def rater_or_none(self, request: Request) -> str | None:
        """The public id of the rater whose token the request carries; None without a valid one."""
        token = request.cookies.get(RATER_COOKIE)
        if not token:
            return None
        with self.store.read() as con:
            row = con.execute("SELECT id FROM raters WHERE token_sha256 = ?", (_digest(token),)).fetchone()
        return row["id"] if row else None

    def rater(self, request: Request) -> str:
        """FastAPI dependency: the rater's public id. 401 without a rater token, 403 with one
        this studio did not issue."""
        if not request.cookies.get(RATER_COOKIE):
            raise HTTPException(401, "no rater token: take part first (the page does; an API client POSTs "
                                     "/api/rater and keeps the cookie)")
        rater = self.rater_or_none(request)
        if rater is None:
            raise HTTPException(403, "this rater token was not issued by this studio")
        return rater

    def join(self, request: Request, response: Response) -> str:
        """The request's rater, or a new one whose token is set as a cookie on `response`. An
        unknown token (another studio on this host shares the cookie) is replaced, not refused."""
        rater = self.rater_or_none(request)
        if rater is not None:
            return rater
        token, rater = secrets.token_urlsafe(32), f"r-{secrets.token_hex(6)}"
        with self.store.write() as con:
            con.execute("INSERT INTO raters (id, token_sha256, created) VALUES (?, ?, ?)",
                        (rater, _digest(token), now()))
        response.set_cookie(RATER_COOKIE, token, max_age=RATER_DAYS * 86400, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return rater

    def is_owner(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth[:7].lower() == "bearer " else request.cookies.get(OWNER_COOKIE, "")
        return secrets.compare_digest(token.encode(), self.owner_token.encode())

    def owner(self, request: Request) -> None:
        """FastAPI dependency of the owner's routes: 401 without an owner token, 403 with a wrong one."""
        if self.is_owner(request):
            return
        if request.headers.get("authorization") or request.cookies.get(OWNER_COOKIE):
            raise HTTPException(403, "wrong owner token (it changes at every start of gankit serve)")
        raise HTTPException(401, "only the studio's owner can do this: open the owner link gankit serve printed, "
                                 "or send Authorization: Bearer TOKEN")


def router(access: Access) -> APIRouter:
    r = APIRouter()

    @r.get("/api/session")
    def session(request: Request) -> dict[str, Any]:
        return {"rater": access.rater_or_none(request), "owner": access.is_owner(request)}

    @r.post("/api/rater")
    def join(request: Request, response: Response) -> dict[str, Any]:
        """Take part: this browser's rater id, issued (with its token cookie) on the first call."""
        return {"rater": access.join(request, response)}

    @r.post("/api/owner")
    def owner_login(login: OwnerLogin, request: Request, response: Response) -> dict[str, Any]:
        """The page posts the token from the owner link here once; the owner's browser then carries
        it as an HttpOnly cookie that lasts until the browser closes."""
        if not secrets.compare_digest(login.token.encode(), access.owner_token.encode()):
            raise HTTPException(403, "wrong owner token (it changes at every start of gankit serve)")
        response.set_cookie(OWNER_COOKIE, login.token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return {"owner": True}

    return r
