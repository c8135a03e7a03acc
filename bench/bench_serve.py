"""The web service under load, on loopback: throughput and p50/p95/p99 latency at several concurrencies, PyTorch vs
ONNX Runtime, errors counted; overload shedding (503 latency); the server's own overhead against the model time.

Each configuration starts a real server (``python -m nodescope serve``, its own process, default threads = the
cores it owns) on a bundle built here with random weights (speed does not depend on the values): EfficientNet-Lite0
at its ImageNet training size (224 px, from timm's pretrained config) and ResNet-18 at 224 px, 3 channels. The
client (httpx, asyncio, one process) posts the same ultrasound-sized JPEG (600 x 800, grey speckle) ``--n`` times per
concurrency level, with at most ``c`` requests open at once.

Figures:
- latency: client-measured, request sent -> JSON parsed; throughput: successful requests / wall time;
- model: the server's ``timing.model_ms`` (input preparation + forward pass); overhead: at concurrency 1, the median
  of (client latency - model_ms), i.e. HTTP + multipart + decode + JSON, as a share of the median model time; its
  parts (medians): the upload's decoding (``timing.decode_ms``), the rest of the server's time (its
  ``Server-Timing: app`` minus decode and model: HTTP parsing of the request, multipart, worker hand-off, JSON) and
  client + loopback (client latency minus the server's app time);
- shedding: a burst of ``--burst`` simultaneous requests against a server with ``--shed-queue`` queue places, repeated
  ``--burst-reps`` times. The requests are sent over connections opened beforehand, one thread each, the same
  pre-built bytes; each 503's latency runs from its first byte sent to its status line read (a client that opens
  connections and builds 32 multipart bodies in one event loop measures mostly itself: httpx gave 100-320 ms where
  this client saw 7-60 ms on the same server). The server's own time for each 503 is its ``Server-Timing``.

Targets (issue #13): p95 < 150 ms at concurrency 4 with ONNX (Lite0); 503s within 50 ms; overhead < 10 %.

Usage:
    PYTHONPATH=src python bench/bench_serve.py                       # full: 500 requests x (1, 4, 16) x 2 engines x 2
    PYTHONPATH=src python bench/bench_serve.py --n 20 --backbones resnet18 --engines onnx   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

BACKBONES = {"lite0": "tf_efficientnet_lite0", "resnet18": "resnet18"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_bundle(root: Path, key: str) -> Path:
    """A classifier bundle (random weights) of ``key`` at its training size, 3 channels."""
    import timm
    import torch

    from nodescope.models import (
        BundleMeta,
        ClassifierNet,
        InputSpec,
        Threshold,
        default_normalisation,
        get_backbone_spec,
        save_bundle,
    )

    name = BACKBONES[key]
    cfg = timm.get_pretrained_cfg(get_backbone_spec(name).timm_name)
    size = int(cfg.input_size[-1]) if cfg is not None else 224
    torch.manual_seed(0)
    net = ClassifierNet(name, 2, in_chans=3, image_size=size)
    mean, std = default_normalisation(name, 3)
    meta = BundleMeta(kind="classifier", name=f"bench_{key}", architecture={
        "backbone": name, "num_classes": 2, "in_chans": 3, "image_size": size, "head": "mlp", "hidden": 256,
        "dropout": 0.2}, classes=("benign", "malignant"), positive_class="malignant",
        input=InputSpec(image_size=size, channels=3, mean=mean, std=std, modalities=("bmode",)),
        threshold=Threshold(0.5, "fixed", "none (benchmark)", "p_malignant >= value"), synthetic_data=True)
    return save_bundle(root / key, net, meta)


def test_image() -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    img = (rng.gamma(2.0, 40.0, (600, 800))).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class Server:
    """``python -m nodescope serve`` in a subprocess, ready when /api/health answers."""

    def __init__(self, bundle: Path, engine: str, queue: int, threads: int | None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "nodescope", "serve", "--bundle", str(bundle), "--engine", engine,
               "--port", str(self.port), "--queue", str(queue), "--onnx-cache", str(bundle.parent / "onnx-cache")]
        if threads:
            cmd += ["--threads", str(threads)]
        # the server's log goes to a file: a pipe nobody reads fills after ~64 kB of access-log lines and then blocks
        # the server mid-request (the first full run hung at concurrency 4 that way)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=os.environ.copy())
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read().decode()[-2000:]}")
            try:
                self.health = httpx.get(self.url + "/api/health", timeout=1).json()
                return
            except (httpx.HTTPError, ValueError):
                time.sleep(0.3)
        raise RuntimeError("server did not start in 300 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def _app_ms(headers: httpx.Headers) -> float:
    """The server's ``Server-Timing: app;dur=<ms>`` (nan when absent)."""
    for part in headers.get("server-timing", "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "app" and dur:
            return float(dur)
    return float("nan")


async def _load(url: str, image: bytes, n: int, conc: int) -> dict:
    sem = asyncio.Semaphore(conc)
    lat, model, decode, app, codes = [], [], [], [], {}
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        async def one() -> None:
            async with sem:
                t = time.perf_counter()
                r = await client.post(url + "/api/predict", files={"bmode": ("x.jpg", image)})
                body = r.json()
                dt = (time.perf_counter() - t) * 1000
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    lat.append(dt)
                    model.append(body["timing"]["model_ms"])
                    decode.append(body["timing"]["decode_ms"])
                    app.append(_app_ms(r.headers))
                else:
                    lat.append(float("nan"))
        for _ in range(min(conc, 4)):  # warm the connections
            await one()
        for x in (lat, model, decode, app):
            x.clear()
        codes.clear()
        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        wall = time.perf_counter() - t0
    ok = np.array([x for x in lat if x == x])
    m, d, a = np.array(model), np.array(decode), np.array(app)
    return {"n": n, "concurrency": conc, "ok": int(codes.get(200, 0)), "errors": n - int(codes.get(200, 0)),
            "codes": codes, "throughput_rps": len(ok) / wall, "p50_ms": float(np.percentile(ok, 50)),
            "p95_ms": float(np.percentile(ok, 95)), "p99_ms": float(np.percentile(ok, 99)),
            "model_p50_ms": float(np.median(m)), "overhead_p50_ms": float(np.median(ok - m)),
            "decode_p50_ms": float(np.median(d)), "server_other_p50_ms": float(np.median(a - d - m)),
            "client_p50_ms": float(np.median(ok - a))}


def _raw_request(port: int, image: bytes) -> bytes:
    """The bytes of one multipart ``POST /api/predict`` of ``image`` as field ``bmode``."""
    b = "nodescopebench0123456789"
    body = (f'--{b}\r\nContent-Disposition: form-data; name="bmode"; filename="x.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{b}--\r\n".encode()
    head = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={b}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _burst_once(port: int, request: bytes, burst: int) -> list[tuple[int, float, str | None, float]]:
    """``burst`` requests at once over pre-opened connections: (status, client ms, Retry-After, server ms) each."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(burst)]
    out: list[tuple[int, float, str | None, float]] = [(0, float("nan"), None, float("nan"))] * burst
    barrier = threading.Barrier(burst)

    def one(i: int) -> None:
        s = socks[i]
        barrier.wait()
        t = time.perf_counter()
        try:
            s.sendall(request)
        except OSError:  # answered and closed before the whole body went out: the answer is still read below
            pass
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        dt = (time.perf_counter() - t) * 1000
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1]) if head and head[0].startswith("HTTP/") else 0
        hdr = httpx.Headers([tuple(x.split(": ", 1)) for x in head[1:] if ": " in x])
        out[i] = (status, dt, hdr.get("retry-after"), _app_ms(hdr))
        s.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(burst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _burst(port: int, image: bytes, burst: int, reps: int) -> dict:
    request = _raw_request(port, image)
    httpx.post(f"http://127.0.0.1:{port}/api/predict", files={"bmode": ("x.jpg", image)}, timeout=60)  # warm
    res: list[tuple[int, float, str | None, float]] = []
    for _ in range(reps):
        res += _burst_once(port, request, burst)
        time.sleep(2.0)  # let the admitted requests finish
    shed = np.array([dt for c, dt, _, _ in res if c == 503])
    srv = np.array([a for c, _, _, a in res if c == 503])

    def q(x: np.ndarray, pct: float) -> float | None:
        return float(np.percentile(x, pct)) if len(x) else None

    return {"burst": burst, "reps": reps, "ok": sum(c == 200 for c, _, _, _ in res), "shed": len(shed),
            "other": sum(c not in (200, 503) for c, _, _, _ in res),
            "shed_p50_ms": q(shed, 50), "shed_p95_ms": q(shed, 95), "shed_max_ms": q(shed, 100),
            "shed_within_50ms": float(np.mean(shed < 50)) if len(shed) else None,
            "server_p50_ms": q(srv, 50), "server_max_ms": q(srv, 100),
            "retry_after": sorted({ra for c, _, ra, _ in res if c == 503 and ra})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="requests per concurrency level")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--engines", default="torch,onnx")
    ap.add_argument("--backbones", default="lite0,resnet18")
    ap.add_argument("--threads", type=int, default=None, help="server threads (default: its owned cores)")
    ap.add_argument("--burst", type=int, default=32, help="simultaneous requests of the shedding test (0: skip)")
    ap.add_argument("--burst-reps", type=int, default=5, help="bursts in the shedding test")
    ap.add_argument("--shed-queue", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    concs = [int(c) for c in args.concurrency.split(",")]
    image = test_image()
    print(f"cores={len(os.sched_getaffinity(0))} image=JPEG 600x800 ({len(image) / 1024:.0f} kB) n={args.n}")
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.backbones.split(","):
            bundle = make_bundle(Path(tmp), key)
            for engine in args.engines.split(","):
                srv = Server(bundle, engine, queue=max(concs) + 4, threads=args.threads)
                try:
                    for c in concs:
                        r = asyncio.run(_load(srv.url, image, args.n, c))
                        r.update(backbone=key, engine=engine, threads=srv.health["threads"])
                        results.append(r)
                        print(f"{key:8s} {engine:5s} c={c:<3d} {r['throughput_rps']:7.1f} req/s  p50 "
                              f"{r['p50_ms']:7.1f}  p95 {r['p95_ms']:7.1f}  p99 {r['p99_ms']:7.1f} ms  model p50 "
                              f"{r['model_p50_ms']:6.1f} ms  errors {r['errors']}", flush=True)
                finally:
                    srv.stop()
        shed = None
        if args.burst:
            srv = Server(make_bundle(Path(tmp) / "shed", "lite0"), "onnx", queue=args.shed_queue,
                         threads=args.threads)
            try:
                shed = _burst(srv.port, image, args.burst, args.burst_reps)
            finally:
                srv.stop()
            print(f"shedding: {shed}")
    for r in results:
        if r["concurrency"] == 1:
            share = r["overhead_p50_ms"] / r["model_p50_ms"]
            print(f"overhead {r['backbone']} {r['engine']}: {r['overhead_p50_ms']:.1f} ms = {100 * share:.1f} % of "
                  f"the model time ({r['model_p50_ms']:.1f} ms): decode {r['decode_p50_ms']:.1f}, rest of the "
                  f"server {r['server_other_p50_ms']:.1f}, client + loopback {r['client_p50_ms']:.1f} ms (medians)")
    lite = [r for r in results if r["backbone"] == "lite0" and r["engine"] == "onnx" and r["concurrency"] == 4]
    if lite:
        print(f"target p95 < 150 ms at c=4 (Lite0, ONNX): {lite[0]['p95_ms']:.1f} ms -> "
              f"{'met' if lite[0]['p95_ms'] < 150 else 'NOT met'}")
    if shed and shed["shed_max_ms"] is not None:
        print(f"target 503 within 50 ms: p50 {shed['shed_p50_ms']:.1f}, p95 {shed['shed_p95_ms']:.1f}, max "
              f"{shed['shed_max_ms']:.1f} ms ({100 * shed['shed_within_50ms']:.0f} % within 50 ms; server's own time "
              f"max {shed['server_max_ms']:.2f} ms) -> {'met' if shed['shed_max_ms'] < 50 else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "shedding": shed}, indent=2, default=str))


if __name__ == "__main__":
    main()
