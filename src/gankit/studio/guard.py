"""The studio's HTTP hygiene, below the routes: which requests are answered at all (Host and
Origin), how big a body may be (counted on the bytes read, whatever the framing), the headers
every response carries (a Content-Security-Policy that forbids inline script, no sniffing, no
framing, no referrer), and download names that are safe in a header whatever a run or study is
called."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The page is one script and one stylesheet from /static and images, audio and JSON from /api:
# nothing else may load or run, so markup that ever slipped into the page could not execute.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",  # a PNG or JSON answer is never run as a script or page
    "x-frame-options": "DENY",  # frame-ancestors for browsers without CSP level 2 (clickjacking)
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::[0-9]{1,5})?")


def host_names(bind: str, allow: Iterable[str] = ()) -> frozenset[str]:
    """The names a request's Host header may carry: localhost, the address bound (and this
    machine's name when bound to every interface) and the names passed as allow.

    Any IP address is accepted as well (see `host_allowed`)."""
    names = {"localhost", bind.strip("[]").lower(), *(a.lower() for a in allow)}
    if bind in ("0.0.0.0", "::", ""):
        names.add(socket.gethostname().lower())
    return frozenset(names)


def host_allowed(host: str, names: frozenset[str]) -> bool:
    """Whether a Host header names this studio. Ports are not compared: a TLS proxy in front
    forwards its own. An IP address is always allowed: DNS rebinding needs a name the attacker
    controls, and a page whose origin is an address is served by whoever owns that address."""
    m = _HOST.fullmatch(host)
    if m is None:
        return False
    name = (m["v6"] or m["name"]).lower()
    if name in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware in front of the studio's routes.

    Refuses a request whose Host is not one of `names` (421: DNS rebinding), a state-changing
    request whose Origin is another origin (403: other pages on this machine share the cookies'
    site), and a body over `max_body` bytes (413), counted on what is read, so chunked bodies
    (which have no Content-Length) are bounded too. Adds `HEADERS` to every response, and
    `Cache-Control: no-store` to API answers that do not set their own."""

    def __init__(self, app: ASGIApp, names: frozenset[str], max_body: int) -> None:
        self.app, self.names, self.max_body = app, names, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in HEADERS.items():
                    headers[k] = v
                if api and "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
            await send(message)

        async def refuse(status: int, detail: str) -> None:
            await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send_with_headers)

        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not host_allowed(host, self.names):
            await refuse(421, f"this studio does not answer for host {host!r}; serve it with --allow-host NAME "
                              "to add a name")
            return
        origin = headers.get("origin")
        if scope["method"] not in SAFE_METHODS and origin and urlsplit(origin).netloc.lower() != host.lower():
            await refuse(403, f"a request from another origin ({origin}) cannot change this studio")
            return
        too_big = f"request body larger than {self.max_body} bytes"
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await refuse(413, too_big)
            return
        body, more = bytearray(), True
        while more:  # the whole body, at most max_body bytes of it, before any route sees it
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await refuse(413, too_big)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send_with_headers)


def attachment(filename: str) -> dict[str, str]:
    """A Content-Disposition header for a download named after a run or a study.

    The exact name goes in RFC 5987's `filename*` (UTF-8, percent-encoded); `filename` carries an
    ASCII stand-in for old clients. Control characters are dropped: a line break in a header
    would end it (the server refuses to send such a response and drops the connection)."""
    name = "".join(c for c in filename if c.isprintable())
    fallback = re.sub(r'[^\x20-\x7e]|["\\]', "_", name)
    return {"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"}
