"""Fuzz: a few hundred malformed uploads and HTTP requests against a live server on loopback; no answer may be a
5xx, and the server must answer normally afterwards (seeded, bounded: ~300 requests, seconds)."""

from __future__ import annotations

import socket
import struct

import httpx
import numpy as np
import pytest
from serve_helpers import dicom_bytes, png

from nodescope.serve import create_app, load_service, load_settings


def _jpeg_with_size(h: int, w: int) -> bytes:
    data = bytearray(png((16, 16), 0, "JPEG"))
    i = data.find(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _dicom_with_size(rows: int, cols: int) -> bytes:
    data = bytearray(dicom_bytes(np.zeros((8, 8), np.uint8), phi=False))
    for tag, value in ((b"\x28\x00\x10\x00", rows), (b"\x28\x00\x11\x00", cols)):  # (0028,0010/0011) US, explicit VR
        i = data.find(tag + b"US")
        data[i + 8:i + 10] = struct.pack("<H", value)
    return bytes(data)


def _huge_png_header() -> bytes:
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def _malformed_files(rng: np.random.Generator) -> list[bytes]:
    seeds = [png((40, 48), 1), png((40, 48, 3), 2, "JPEG"), dicom_bytes(np.full((24, 24), 7, np.uint8), phi=False),
             png((30, 30, 3), 3)]
    out: list[bytes] = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\0" * 128 + b"DICM", _huge_png_header(),
                        _jpeg_with_size(50_000, 50_000), _jpeg_with_size(0, 0), _dicom_with_size(50_000, 50_000),
                        _dicom_with_size(0, 0), b"GIF89a" + bytes(64), b"BM" + bytes(64), b"II*\x00" + bytes(64)]
    for s in seeds:  # truncations at random points
        out += [s[:int(k)] for k in rng.integers(1, len(s), 30)]
    for s in seeds:  # random bytes overwritten (headers and data alike)
        for _ in range(25):
            b = bytearray(s)
            idx = rng.integers(0, len(b), int(rng.integers(1, 20)))
            b_arr = np.frombuffer(bytes(b), np.uint8).copy()
            b_arr[idx] = rng.integers(0, 256, len(idx))
            out.append(b_arr.tobytes())
    for s in seeds:  # wrong magic: the right body behind another signature
        out += [b"\x00\x00" + s[2:], s[::-1]]
    out += [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in rng.integers(1, 5000, 20)]
    return out


def _raw(port: int, payload: bytes) -> int | None:
    """Send raw bytes; the status code of the answer, or None when the server closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        try:
            s.shutdown(socket.SHUT_WR)
            head = s.recv(64)
        except (ConnectionResetError, TimeoutError):
            return None
    parts = head.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else None


def _malformed_http(port: int) -> list[bytes]:
    body = b"--XX\r\nContent-Disposition: form-data; name=\"bmode\"; filename=\"a.png\"\r\n\r\n" + png() + b"\r\n--XX--\r\n"

    def req(headers: str, content: bytes = b"") -> bytes:
        return (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n").encode() + content

    return [
        req(f"Content-Type: multipart/form-data\r\nContent-Length: {len(body)}\r\n", body),  # no boundary
        req(f"Content-Type: multipart/form-data; boundary=YY\r\nContent-Length: {len(body)}\r\n", body),
        req(f"Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: {len(body) - 40}\r\n", body[:-40]),
        req("Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 12\r\n", b"--XX\r\ngarbage"),
        req("Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: abc\r\n", body),
        req("Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: -5\r\n", body),
        req("Content-Type: multipart/form-data; boundary=XX\r\nTransfer-Encoding: chunked\r\n", b"zz\r\nxx\r\n0\r\n\r\n"),
        req(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n", body),
        req(f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n", body),
        req(f"Content-Type: multipart/form-data; boundary={'B' * 5000}\r\nContent-Length: {len(body)}\r\n", body),
        req(f"X-Request-ID: {'r' * 10000}\r\nContent-Length: 0\r\n"),
        req("X-API-Key: \xff\xfe\r\nContent-Length: 0\r\n".encode("latin-1").decode("latin-1")),
        b"GARBAGE\r\n\r\n",
        b"POST /api/predict HTTP/9.9\r\n\r\n",
        b"GET /api/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /static/../_app.py HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /static/%2e%2e/_app.py HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DELETE /api/predict HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS hello on the plain port
    ]


@pytest.fixture
def fuzz_server(bundles, live_server):
    s = load_settings(bundles=[bundles["bmode"], bundles["fusion"]], threads=1, max_upload_mb=2, max_pixels=4_000_000)
    return live_server(create_app(s, load_service(s.bundles, threads=1)))


def test_malformed_uploads_and_requests_never_5xx(fuzz_server) -> None:
    rng = np.random.default_rng(20261205)
    url, port = fuzz_server.url, int(fuzz_server.url.rsplit(":", 1)[1])
    statuses: dict[int, int] = {}
    fields = ["bmode", "cdfi", "elastography", "image"]
    with httpx.Client(timeout=30) as client:
        for i, data in enumerate(_malformed_files(rng)):
            field = fields[i % 4]
            model = ["tiny_bmode", "tiny_fusion", None][i % 3]
            form = {"model": model} if model else {}
            if i % 5 == 0:
                form.update(explain="true", roi="box", box="1,1,9,9")
            r = client.post(f"{url}/api/predict", files={field: (f"x{i}.png", data)}, data=form)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (i, r.status_code, r.text)
            if r.status_code >= 400:
                assert r.json()["detail"]  # a reason, always
        for i, data in enumerate(_malformed_files(rng)[:40]):  # the same files in batches
            r = client.post(f"{url}/api/batch", files=[("files", (f"{i}.png", data)), ("files", ("ok.png", png()))],
                            data={"model": "tiny_bmode"})
            assert r.status_code == 200, r.text
        odd_forms = [{"explain": "maybe"}, {"roi": "\u202e"}, {"model": "\x00"}, {"box": "nan,nan,1,1"},
                     {"box": "1e308,0,1e309,1"}, {"model": "a" * 5000}]
        for form in odd_forms:
            r = client.post(f"{url}/api/predict", files={"bmode": ("a.png", png())}, data=form)
            assert 400 <= r.status_code < 500, (form, r.status_code, r.text)
    raw = [_raw(port, payload) for payload in _malformed_http(port)]
    assert all(code is None or code < 500 for code in raw), raw
    assert sum(statuses.values()) >= 250 and statuses.get(200, 0) > 0 and statuses.get(413, 0) >= 3
    # alive and well
    health = httpx.get(f"{url}/api/health").json()
    assert health["status"] == "ok" and health["in_flight"] == 0
    ok = httpx.post(f"{url}/api/predict", files={"bmode": ("a.png", png())}, data={"model": "tiny_bmode"})
    assert ok.status_code == 200 and ok.json()["probabilities"]
