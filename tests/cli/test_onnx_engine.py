"""`--engine onnx` on the command line (predict, predict --segmenter, segment predict): read-only bundle folders are
left exactly as they were, the exports land in the cache and are reused, the results match the torch engine, and a
segmenter that cannot be exported is refused in one line naming its bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fs_snapshot import snapshot
from PIL import Image
from serve_helpers import make_segmenter
from tiny_data import save_tiny_classifier
from typer.testing import CliRunner

from nodescope.cli import app


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Read-only (0o555) bundle folders: a classifier, one cropping to the lesion, a segmenter; and two images."""
    root = tmp_path_factory.mktemp("store")
    out = {"cls": save_tiny_classifier(root / "cls"), "crop": save_tiny_classifier(root / "crop", roi="mask"),
           "seg": make_segmenter(root / "seg"), "images": root / "images"}
    out["images"].mkdir()
    rng = np.random.default_rng(11)
    for i, shape in enumerate([(40, 48), (52, 44)]):
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(out["images"] / f"{i}.png")
    for k in ("cls", "crop", "seg"):
        out[k].chmod(0o555)
    yield out
    for k in ("cls", "crop", "seg"):
        out[k].chmod(0o755)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """nodescope's cache for this test (NODESCOPE_CACHE_DIR); the ONNX exports go to its onnx/ folder."""
    monkeypatch.delenv("NODESCOPE_ONNX_CACHE", raising=False)  # (set by the service tests' session fixture)
    monkeypatch.setenv("NODESCOPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def _run(args: list[str]) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def _bundles(store: dict[str, Path]) -> dict[str, object]:
    return {k: snapshot(store[k]) for k in ("cls", "crop", "seg")}


def test_predict_onnx_leaves_the_bundle_and_reuses_its_export(store, cache: Path, tmp_path: Path) -> None:
    before = _bundles(store)
    code, out = _run(["predict", store["cls"], store["images"], "-o", tmp_path / "o.csv", "--engine", "onnx"])
    assert code == 0, out
    (entry,) = cache.glob("classifier-*.onnx")
    stamp = entry.stat().st_mtime_ns
    code, out = _run(["predict", store["cls"], store["images"], "-o", tmp_path / "o2.csv", "--engine", "onnx"])
    assert code == 0, out
    assert entry.stat().st_mtime_ns == stamp and list(cache.glob("*.onnx")) == [entry]  # reused
    code, out = _run(["predict", store["cls"], store["images"], "-o", tmp_path / "t.csv"])
    assert code == 0, out
    assert _bundles(store) == before
    o, o2, t = (pd.read_csv(tmp_path / f) for f in ("o.csv", "o2.csv", "t.csv"))
    assert len(t) == 2
    np.testing.assert_allclose(o["p_malignant"], t["p_malignant"], atol=1e-4, rtol=0)
    np.testing.assert_array_equal(o["p_malignant"], o2["p_malignant"])


def test_predict_with_segmenter_runs_both_on_onnx(store, cache: Path, tmp_path: Path) -> None:
    before = _bundles(store)
    args = ["predict", store["crop"], store["images"], "--segmenter", store["seg"], "--threads", 1]
    code, out = _run([*args, "-o", tmp_path / "o.csv", "--engine", "onnx", "--onnx-cache", tmp_path / "c"])
    assert code == 0, out
    assert [len(list((tmp_path / "c").glob(f"{k}-*.onnx"))) for k in ("classifier", "segmenter")] == [1, 1]
    assert not cache.exists()  # --onnx-cache wins over the environment
    code, out = _run([*args, "-o", tmp_path / "t.csv"])
    assert code == 0, out
    assert _bundles(store) == before
    o, t = pd.read_csv(tmp_path / "o.csv"), pd.read_csv(tmp_path / "t.csv")
    assert (o["roi_source"] == "automatic").all()
    # same crops, same classifier within 1e-4 (a mask pixel within 1e-4 of the threshold could flip; none does here)
    np.testing.assert_allclose(o["p_malignant"], t["p_malignant"], atol=1e-4, rtol=0)


def test_segment_predict_onnx_leaves_the_bundle(store, cache: Path, tmp_path: Path) -> None:
    before = _bundles(store)
    probs = {}
    for engine in ("onnx", "torch"):
        code, out = _run(["segment", "predict", store["seg"], store["images"], "-o", tmp_path / engine,
                          "--engine", engine, "--probability", "--threads", 1])
        assert code == 0, out
        probs[engine] = [np.asarray(Image.open(p), np.int16) for p in sorted((tmp_path / engine / "probability")
                                                                              .glob("*.png"))]
    assert _bundles(store) == before
    assert len(list(cache.glob("segmenter-*.onnx"))) == 1
    assert len(probs["onnx"]) == 2
    for a, b in zip(probs["onnx"], probs["torch"], strict=True):  # 8-bit maps: 1e-4 apart is at most one level
        assert np.abs(a - b).max() <= 1


def test_a_segmenter_that_cannot_be_exported_is_refused(store, cache: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*a: object, **k: object) -> None:
        raise RuntimeError("Exporting the operator 'aten::foo' to ONNX opset version 17 is not supported.")

    monkeypatch.setattr(torch.onnx, "export", fail)
    for args in (["segment", "predict", store["seg"], store["images"], "-o", tmp_path / "m", "--engine", "onnx"],
                 ["predict", store["crop"], store["images"], "--segmenter", store["seg"], "-o", tmp_path / "p.csv",
                  "--engine", "onnx"]):
        code, out = _run(args)
        assert code == 2 and out.startswith("error: bundle ") and out.count("\n") == 1, out
        assert str(store["seg"]) in out and "cannot be exported to ONNX" in out and "engine 'torch'" in out
    assert not (tmp_path / "m").exists() and not (tmp_path / "p.csv").exists()
