"""The ASGI guard: overload answered 503 before the body is read and before FastAPI's own layers; Server-Timing;
CORS preflights pass an API key check."""

from __future__ import annotations

import asyncio
import time

from nodescope.serve import Admission, GuardMiddleware


def _call(guard: GuardMiddleware, method: str = "POST", path: str = "/api/predict") -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        raise AssertionError("the body must not be read")

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(b"content-length", b"329000"), (b"content-type", b"multipart/form-data; boundary=x")]}
    asyncio.run(guard(scope, receive, send))
    return sent


def test_overload_is_answered_503_without_reading_the_body_or_calling_the_app() -> None:
    async def app(scope, receive, send) -> None:
        raise AssertionError("the application must not be called")

    adm = Admission(capacity=2, workers=1, in_flight=2, mean_s=0.4)
    t = time.perf_counter()
    sent = _call(GuardMiddleware(app, admission=adm))
    took = time.perf_counter() - t
    start = sent[0]
    headers = dict(start["headers"])
    assert start["status"] == 503 and headers[b"retry-after"] == b"1"  # ceil(0.4 s x 2 in flight / 1 worker)
    assert headers[b"server-timing"].startswith(b"app;dur=")
    assert float(headers[b"server-timing"].split(b"=")[1]) < 50
    assert b"busy" in sent[1]["body"] and adm.shed == 1 and adm.in_flight == 2
    assert took < 0.5  # the whole call, event loop set-up included


def test_guard_is_outside_fastapi_and_preflights_pass_the_key(make_client) -> None:
    c = make_client(api_key="k" * 12, cors_origins=["http://viewer.local"])
    assert c.get("/api/health").status_code == 200
    stack = c.app.middleware_stack  # built on the first request: CORS, then the guard, then FastAPI's layers
    assert type(stack).__name__ == "CORSMiddleware" and type(stack.app).__name__ == "GuardMiddleware"
    pre = c.options("/api/predict", headers={"Origin": "http://viewer.local", "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "x-api-key"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://viewer.local"
    r = c.post("/api/predict", headers={"Origin": "http://viewer.local"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "http://viewer.local"
    assert r.headers["server-timing"].startswith("app;dur=")
