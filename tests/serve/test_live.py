"""The service on a real uvicorn server (loopback, a free port): overload shedding, graceful drain, bounded pool,
the two engines, and the ``nodescope serve`` command's start-up refusals."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from serve_helpers import png
from typer.testing import CliRunner

from nodescope.cli import app as cli
from nodescope.serve import create_app, load_service, load_settings


def _slow_app(bundle: Path, seconds: float, **settings):
    s = load_settings(bundles=[bundle], threads=1, **settings)
    svc = load_service(s.bundles, threads=1, warm=False)
    m = svc.models["tiny_bmode"]
    real = m.predict

    def slow(*a, **k):
        time.sleep(seconds)
        return real(*a, **k)

    m.predict = slow  # type: ignore[method-assign]
    return create_app(s, svc)


def _predict(url: str, out: list, i: int, barrier: threading.Barrier | None = None) -> None:
    files = {"bmode": ("a.png", png(seed=i))}
    with httpx.Client(timeout=30) as client:  # built before the clock starts (an SSL context takes a while)
        if barrier is not None:
            barrier.wait()
        t = time.perf_counter()
        r = client.post(f"{url}/api/predict", files=files)
    out.append((r.status_code, time.perf_counter() - t, r.headers.get("retry-after")))


def _infer_threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.name.startswith("nodescope-infer") and t.ident}


def test_overload_is_shed_fast_and_the_pool_stays_bounded(bundles, live_server) -> None:
    before = _infer_threads()
    srv = live_server(_slow_app(bundles["bmode"], 1.5, workers=1, queue=1))
    out: list = []
    barrier = threading.Barrier(6)
    threads = [threading.Thread(target=_predict, args=(srv.url, out, i, barrier)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(c for c, _, _ in out)
    assert codes == [200, 200, 503, 503, 503, 503], out
    shed = [dt for c, dt, _ in out if c == 503]
    assert max(shed) < 0.5 and all(ra and int(ra) >= 1 for c, _, ra in out if c == 503)  # answered, not queued
    assert httpx.get(f"{srv.url}/api/health").json()["in_flight"] == 0
    assert len(_infer_threads() - before) == 1  # 6 requests, one worker thread (workers=1), none per request


def test_graceful_shutdown_finishes_the_request_in_flight(bundles, live_server) -> None:
    srv = live_server(_slow_app(bundles["bmode"], 1.5))
    out: list = []
    t = threading.Thread(target=_predict, args=(srv.url, out, 0))
    t.start()
    deadline = time.time() + 10
    while httpx.get(f"{srv.url}/api/health").json()["in_flight"] == 0 and time.time() < deadline:
        time.sleep(0.02)
    srv.stop()  # what SIGTERM does to uvicorn: stop accepting, drain, exit
    t.join()
    assert out and out[0][0] == 200
    assert not srv.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{srv.url}/api/health", timeout=2)


def test_engines_agree_within_1e4(make_client) -> None:
    imgs = [png((40, 48), s) for s in range(3)] + [png((30, 50, 3), 9, "JPEG")]
    out = {}
    for engine in ("torch", "onnx"):
        c = make_client(("bmode",), engine=engine)
        out[engine] = np.array([[c.post("/api/predict", files={"bmode": ("x", b)}).json()["probabilities"][k]
                                 for k in ("benign", "malignant")] for b in imgs])
        assert c.get("/api/health").json()["engine"] == engine
    np.testing.assert_allclose(out["onnx"], out["torch"], atol=1e-4, rtol=0)
    assert not np.allclose(out["torch"][0], out["torch"][1])  # different images, different outputs


@pytest.mark.parametrize(("args", "env", "words"), [
    ([], {}, "bundles"),
    (["--bundle", "{missing}"], {}, "is not a directory"),
    (["--bundle", "{broken}"], {}, "not valid JSON"),
    (["--bundle", "{ok}", "--threads", "999", "--workers", "4"], {}, "exceeds the"),
    (["--bundle", "{ok}", "--port", "70000"], {}, "--port"),
    (["--bundle", "{ok}"], {"NODESCOPE_SERVE_QUEUE": "-3"}, "NODESCOPE_SERVE_QUEUE"),
    (["--bundle", "{ok}", "--api-key", "short"], {}, "at least 8"),
    (["--bundle", "{ok}", "--segmenter", "{ok}"], {}, "segment"),
])
def test_cli_refuses_at_start_up_in_one_line(args, env, words, bundles, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server must not start"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text("{nope")
    paths = {"missing": str(tmp_path / "nope"), "broken": str(broken), "ok": str(bundles["bmode"])}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(cli, ["serve", *[a.format(**paths) for a in args]])
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], r.output


def test_cli_starts_uvicorn_with_the_settings(bundles, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **k: seen.update(app=app, **k))
    monkeypatch.setattr(sys, "setswitchinterval", lambda v: seen.update(switch=v))
    monkeypatch.setenv("NODESCOPE_SERVE_PORT", "8123")
    r = CliRunner().invoke(cli, ["serve", "--bundle", str(bundles["bmode"]), "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert (seen["host"], seen["port"], seen["access_log"]) == ("127.0.0.1", 8123, False)
    assert seen["timeout_graceful_shutdown"] == 30
    assert seen["log_config"]["loggers"]["nodescope"]["level"] == "INFO"  # access lines with request ids shown
    assert seen["app"].state.service.models["tiny_bmode"].predictor.threads == 1
    assert seen["switch"] == 0.001  # the event loop waits at most 1 ms for the worker's GIL
