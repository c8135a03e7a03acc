"""The one ONNX cache (nodescope.models._onnx_cache): bundle folders are never written, entries are reused, keyed on
the weights, checked before use (a corrupt or half-written file is replaced, never loaded), and safe when several
processes export at once."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fs_snapshot import snapshot
from tiny_data import save_tiny_classifier

from nodescope.errors import BundleError, ConfigError
from nodescope.models import Predictor, export_onnx, load_bundle, onnx_cache_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def read_only_bundle(tmp_path: Path) -> Iterator[Path]:
    """The tiny classifier bundle with its folder made read-only (0o555), restored afterwards."""
    path = save_tiny_classifier(tmp_path / "bundle")
    path.chmod(0o555)
    yield path
    path.chmod(0o755)


def _x(n: int = 3) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(5).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8))


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("classifier-*.onnx"))


def test_onnx_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("NODESCOPE_ONNX_CACHE", "NODESCOPE_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert onnx_cache_dir() == tmp_path / "home" / ".cache" / "nodescope" / "onnx"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache_dir() == tmp_path / "xdg" / "nodescope" / "onnx"
    monkeypatch.setenv("NODESCOPE_CACHE_DIR", str(tmp_path / "ns"))
    assert onnx_cache_dir() == tmp_path / "ns" / "onnx"
    monkeypatch.setenv("NODESCOPE_ONNX_CACHE", str(tmp_path / "exact"))
    assert onnx_cache_dir() == tmp_path / "exact"


def test_read_only_bundle_is_untouched_and_the_export_reused(read_only_bundle: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODESCOPE_ONNX_CACHE", raising=False)  # (set by the service tests' session fixture)
    monkeypatch.setenv("NODESCOPE_CACHE_DIR", str(tmp_path / "cache"))
    before = snapshot(read_only_bundle)
    x = _x()
    p_o = Predictor(read_only_bundle, engine="onnx", threads=1).predict(x)  # the default cache: the variable's
    p_t = Predictor(read_only_bundle, engine="torch", threads=1).predict(x)
    np.testing.assert_allclose(p_o.probabilities, p_t.probabilities, atol=1e-4, rtol=0)
    assert snapshot(read_only_bundle) == before
    assert stat.S_IMODE(read_only_bundle.stat().st_mode) == 0o555
    (entry,) = _entries(tmp_path / "cache" / "onnx")
    record = json.loads(entry.with_name(entry.name + ".json").read_text())
    assert record["sha256"] == hashlib.sha256(entry.read_bytes()).hexdigest()
    assert record["key"]["weights_sha256"] == hashlib.sha256(
        (read_only_bundle / "weights.safetensors").read_bytes()).hexdigest()
    assert record["key"]["opset"] == 17 and record["key"]["input"]["image_size"] == 32
    stamp = entry.stat().st_mtime_ns
    calls: list[object] = []
    real = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = Predictor(read_only_bundle, engine="onnx", threads=1).predict(x)
    assert calls == [] and entry.stat().st_mtime_ns == stamp  # reused, not exported again
    np.testing.assert_array_equal(again.probabilities, p_o.probabilities)
    # another opset is another entry
    export_onnx(load_bundle(read_only_bundle), opset=16)
    assert len(_entries(tmp_path / "cache" / "onnx")) == 2 and len(calls) == 1
    assert snapshot(read_only_bundle) == before


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip(p: Path) -> None:  # same size, other bytes: only the content hash can tell
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(255 - b for b in data[mid:mid + 64])
    p.write_bytes(bytes(data))


def _drop_record(p: Path) -> None:
    p.with_name(p.name + ".json").unlink()


def _garble_record(p: Path) -> None:
    p.with_name(p.name + ".json").write_text("{not json")


@pytest.mark.parametrize("damage", [_truncate, _flip, _garble_record])
def test_a_damaged_entry_is_detected_and_replaced(damage, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bundle = load_bundle(save_tiny_classifier(tmp_path / "b"))
    cache = tmp_path / "cache"
    entry = export_onnx(bundle, cache_dir=cache)
    good = entry.read_bytes()
    damage(entry)
    with caplog.at_level(logging.WARNING, logger="nodescope.models._onnx_cache"):
        pred = Predictor(bundle, engine="onnx", threads=1, onnx_cache_dir=cache)
    assert "is not used and is exported again" in caplog.text and str(entry) in caplog.text
    assert _entries(cache) == [entry]
    record = json.loads(entry.with_name(entry.name + ".json").read_text())
    assert record["sha256"] == hashlib.sha256(entry.read_bytes()).hexdigest() and len(entry.read_bytes()) == len(good)
    x = _x(2)
    np.testing.assert_allclose(pred.predict(x).probabilities,
                               Predictor(bundle, engine="torch", threads=1).predict(x).probabilities, atol=1e-4)


def test_a_failed_export_leaves_no_file_and_names_the_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    bundle = load_bundle(save_tiny_classifier(tmp_path / "b"))
    cache = tmp_path / "cache"

    def half_then_fail(module, args, f, **kw):  # a crash half-way through writing
        Path(f).write_bytes(b"\x08\x07half an onnx file")
        raise RuntimeError("unsupported operator aten::frobnicate\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", half_then_fail)
    with pytest.raises(BundleError, match=r"bundle .*b: its classifier network cannot be exported to ONNX "
                                          r"\(RuntimeError: unsupported operator aten::frobnicate\); use engine") as e:
        Predictor(bundle, engine="onnx", threads=1, onnx_cache_dir=cache)
    assert "\n" not in str(e.value)
    assert list(cache.iterdir()) == [next(cache.glob(".*.lock"))]  # only the lock: nothing half-written
    monkeypatch.undo()
    # a temporary file left by a killed exporter is never used, and is cleared when the entry is next locked
    entry = export_onnx(bundle, cache_dir=cache)
    stale = entry.with_name(f".{entry.name}.12345.tmp")
    stale.write_bytes(b"junk")
    _drop_record(entry)
    export_onnx(bundle, cache_dir=cache)
    assert not stale.exists()


def test_exports_inside_a_bundle_are_refused(tmp_path: Path) -> None:
    bundle = load_bundle(save_tiny_classifier(tmp_path / "b"))
    before = snapshot(tmp_path / "b")
    with pytest.raises(ConfigError, match="lies inside the bundle"):
        export_onnx(bundle, tmp_path / "b" / "model.onnx")
    with pytest.raises(ConfigError, match="lies inside the bundle"):
        Predictor(bundle, engine="onnx", onnx_cache_dir=tmp_path / "b" / "cache")
    assert snapshot(tmp_path / "b") == before


_CHILD = """
import sys, torch
torch.set_num_threads(1)
from nodescope.models import export_onnx, load_bundle
bundle = load_bundle(sys.argv[1])
calls = []
real = torch.onnx.export
torch.onnx.export = lambda *a, **k: calls.append(1) or real(*a, **k)
print("ready", flush=True)
sys.stdin.readline()
print(export_onnx(bundle, cache_dir=sys.argv[2]), len(calls), flush=True)
"""


def test_two_processes_exporting_at_once_make_one_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    path = save_tiny_classifier(tmp_path / "b")
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(cache)], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bundle = load_bundle(path)
    calls: list[int] = []
    real = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
    child.stdin.write("go\n")
    child.stdin.flush()  # both processes ask for the same export now
    entry = export_onnx(bundle, cache_dir=cache)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    child_path, child_calls = out.split()
    assert Path(child_path) == entry
    assert len(calls) + int(child_calls) == 1  # one exported under the lock, the other waited and reused it
    record = json.loads(entry.with_name(entry.name + ".json").read_text())
    assert record["sha256"] == hashlib.sha256(entry.read_bytes()).hexdigest()
    assert not list(cache.glob("*.tmp")) and _entries(cache) == [entry]
    x = _x(2)
    np.testing.assert_allclose(Predictor(bundle, engine="onnx", threads=1, onnx_cache_dir=cache).predict(x).probabilities,
                               Predictor(bundle, engine="torch", threads=1).predict(x).probabilities, atol=1e-4)
