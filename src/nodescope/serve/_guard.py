"""The service's ASGI guard: request ids, access log, security headers, API key, and the bounded admission queue.

One pure ASGI middleware (no per-request thread, nothing buffered) wraps the FastAPI app:

- a request id (the client's ``X-Request-ID`` when it is short and plain, else a new one) goes into the log line of
  the request, the ``X-Request-ID`` response header and ``request.state.request_id``;
- every response carries a Content-Security-Policy without inline script or style, ``nosniff``, no framing, no
  referrer, ``no-store`` caching for the API;
- with an API key, ``/api/`` routes other than ``/api/health`` answer 401 without header ``X-API-Key`` (or
  ``Authorization: Bearer``) equal to it (constant-time comparison);
- a declared body (``Content-Length``) over the limit is answered 413 before it is read (a streamed one is cut by
  FastAPI's own body limit, also 413);
- inference routes are admitted while fewer than ``capacity`` (workers + queue) are in flight; beyond that the
  answer is 503 with ``Retry-After`` at once, before the body is read, so an overload never piles up;
- every answer carries ``Server-Timing: app;dur=<ms>``, the time from the request reaching the application to its
  answer starting (the benchmark separates server and client time with it).

The service installs it outside FastAPI's own middleware (:func:`~nodescope.serve.create_app`): the admission check
is the first thing a request meets, a dictionary lookup and a comparison with nothing awaited, so a 503 costs
about 0.1 ms of the event loop. A 503 that a client sees late was late before reaching the application (a busy
event loop or CPU; docs/serve.md, "Overload").
"""

from __future__ import annotations

import contextvars
import hmac
import json
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_ID", "SECURITY_HEADERS", "Admission", "GuardMiddleware", "RequestIdFilter"]

access_log = logging.getLogger("nodescope.serve.access")
#: The id of the request being handled (``-`` outside a request); copied into the worker that runs it.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("nodescope_request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Prefixes ``[<request id>]`` to the messages logged while a request is handled (the access lines carry it
    already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = REQUEST_ID.get()
        if rid != "-" and record.name != access_log.name:
            record.msg = f"[{rid}] {record.msg}"
        return True

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)
_SECURITY_HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ADMITTED_PATHS = ("/api/predict", "/api/batch")


@dataclass
class Admission:
    """Requests in flight on the inference routes, and a running mean of their duration (for ``Retry-After``)."""

    capacity: int
    workers: int
    in_flight: int = 0
    mean_s: float = 0.1
    shed: int = field(default=0)

    def retry_after(self) -> int:
        """Seconds after which a worker is likely free: the mean duration x the queue length per worker (>= 1)."""
        return max(1, math.ceil(self.mean_s * self.in_flight / max(1, self.workers)))

    def record(self, seconds: float) -> None:
        self.mean_s = 0.9 * self.mean_s + 0.1 * seconds


class GuardMiddleware:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, *, admission: Admission, api_key: str | None = None,
                 max_body: int | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.admission = admission
        self.api_key = api_key.encode() if api_key else None

    async def _reply(self, send: Send, status: int, detail: str, rid: str,
                     extra: tuple[tuple[str, str], ...] = ()) -> None:
        body = json.dumps({"detail": detail, "request_id": rid}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   *((k.encode(), v.encode()) for k, v in extra)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _authorised(self, scope: Scope) -> bool:
        if self.api_key is None:
            return True
        given = b""
        for k, v in scope.get("headers", []):
            if k == b"x-api-key":
                given = v
            elif k == b"authorization" and v[:7].lower() == b"bearer ":
                given = given or v[7:].strip()
        return hmac.compare_digest(given, self.api_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        given = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        path: str = scope.get("path", "")
        status = [0]

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers += _SECURITY_HEADERS
                headers.append((b"x-request-id", rid.encode()))
                headers.append((b"server-timing", f"app;dur={(time.perf_counter() - t0) * 1000:.2f}".encode()))
                if path.startswith("/api/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        admitted = False
        try:
            # a CORS preflight carries no credentials: the CORS middleware (outside this one) answers it
            if (path.startswith("/api/") and path != "/api/health" and scope.get("method") != "OPTIONS"
                    and not self._authorised(scope)):
                await self._reply(send_wrapped, 401, "missing or wrong API key: send header X-API-Key", rid,
                                  (("www-authenticate", "Bearer"),))
                return
            length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), b"")
            if self.max_body is not None and length.isdigit() and int(length) > self.max_body:
                await self._reply(send_wrapped, 413, f"the request body ({int(length):,} bytes) exceeds this "
                                  f"server's limit of {self.max_body:,} bytes", rid)
                return
            if scope.get("method") == "POST" and path in ADMITTED_PATHS:
                adm = self.admission
                if adm.in_flight >= adm.capacity:
                    adm.shed += 1
                    await self._reply(send_wrapped, 503, f"the server is busy ({adm.in_flight} requests in flight); "
                                      "retry later", rid, (("retry-after", str(adm.retry_after())),))
                    return
                adm.in_flight += 1
                admitted = True
            await self.app(scope, receive, send_wrapped)
        finally:
            dt = time.perf_counter() - t0
            if admitted:
                self.admission.in_flight -= 1
                if status[0] == 200:
                    self.admission.record(dt)
            access_log.info("%s %s %s %d %.1fms", rid, scope.get("method"), path, status[0], dt * 1000)
            REQUEST_ID.reset(token)
