"""The ONNX engine of the service: exports kept in a cache folder (bundles are never written), fusion bundles on ONNX
Runtime within 1e-4 of PyTorch, and the late-fusion operating threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fs_snapshot import snapshot
from serve_helpers import MODALITIES, png

from nodescope.serve import load_service
from nodescope.serve._service import ClassifierModel, LateFusionModel


def _export_of(onnx_cache: Path, bundle: Path) -> Path:
    """The cache entry whose record names ``bundle``."""
    import json

    (entry,) = [p.with_name(p.name[:-len(".json")]) for p in onnx_cache.glob("*.onnx.json")
                if json.loads(p.read_text())["bundle"] == str(bundle)]
    return entry


def test_onnx_engine_never_writes_into_the_bundles(bundles, onnx_cache: Path) -> None:
    names = ("bmode", "fusion", "seg")
    for n in names:  # read-only folders (as a shared model store would be)
        bundles[n].chmod(0o555)
    try:
        before = {n: snapshot(bundles[n]) for n in names}
        svc = load_service([bundles[n] for n in names[:2]], engine="onnx", threads=1, onnx_cache=onnx_cache,
                           warm=False, segmenter=[bundles["seg"]])
        assert {n: snapshot(bundles[n]) for n in names} == before  # inputs, not outputs
        exports = [_export_of(onnx_cache, bundles[n]) for n in names]
        assert [p.name.split("-")[0] for p in exports] == ["classifier", "fusion", "segmenter"]
        assert svc.models["tiny_fusion"].onnx is not None  # type: ignore[attr-defined]
        assert svc.segmenter.engine == "onnx" and len(svc.segmenter._onnx) == 1
        # the same weights a second time: the cached exports are reused, not written again
        stamps = {p: p.stat().st_mtime_ns for p in exports}
        load_service([bundles[n] for n in names[:2]], engine="onnx", threads=1, onnx_cache=onnx_cache, warm=False,
                     segmenter=[bundles["seg"]])
        assert {p: p.stat().st_mtime_ns for p in exports} == stamps
        assert {n: snapshot(bundles[n]) for n in names} == before
    finally:
        for n in names:
            bundles[n].chmod(0o755)


@pytest.fixture(scope="module")
def fusion_engines(bundles, onnx_cache) -> dict[str, Any]:
    """The fusion bundle served on torch and on ONNX Runtime (exported once into the session's cache)."""
    return {e: load_service([bundles["fusion"]], engine=e, threads=1, onnx_cache=onnx_cache,
                            warm=False).models["tiny_fusion"] for e in ("torch", "onnx")}


@pytest.mark.parametrize("given", [MODALITIES, ("bmode", "elastography"), ("cdfi",)])
def test_fusion_bundle_on_onnx_agrees_with_torch(fusion_engines, given) -> None:
    from nodescope.data import read_image

    torch_m, onnx_m = fusion_engines["torch"], fusion_engines["onnx"]
    assert onnx_m.onnx is not None and torch_m.onnx is None
    imgs = {m: read_image(png((40 + 4 * i, 48), seed=20 + i)) for i, m in enumerate(given)}
    masks = dict.fromkeys(given)
    p_t, per_t = torch_m.predict(imgs, masks)
    p_o, per_o = onnx_m.predict(imgs, masks)
    np.testing.assert_allclose(p_o, p_t, atol=1e-4, rtol=0)
    assert per_o.keys() == per_t.keys()
    for k in per_t:
        np.testing.assert_allclose(per_o[k], per_t[k], atol=1e-4, rtol=0)
    if len(given) > 1:  # absent modalities matter: the fused output is not any single one's
        assert not any(np.allclose(p_o, v, atol=1e-4) for v in per_o.values())


def _member(field: str, threshold: float | None) -> ClassifierModel:
    return ClassifierModel(f"m_{field}", "classifier", ("benign", "malignant"), "malignant", threshold, (field,))


def test_late_fusion_threshold_is_the_mean_of_the_given_members_thresholds() -> None:
    members = {"bmode": _member("bmode", 0.3), "cdfi": _member("cdfi", 0.5), "elastography": _member("elastography",
                                                                                                    0.7)}
    late = LateFusionModel("late_mean", "late_fusion", ("benign", "malignant"), "malignant", 0.5, MODALITIES,
                           members=members)
    assert late.threshold_for(MODALITIES) == pytest.approx(0.5)
    assert late.threshold_for(("bmode", "elastography")) == pytest.approx(0.5)
    assert late.threshold_for(("bmode", "cdfi")) == pytest.approx(0.4)
    assert late.threshold_for(("elastography",)) == pytest.approx(0.7)  # one image: that member's own rule
    members["cdfi"] = _member("cdfi", None)
    none = LateFusionModel("late_mean", "late_fusion", ("benign", "malignant"), "malignant", None, MODALITIES,
                           members=members)
    assert none.threshold_for(("bmode",)) is None  # a member without threshold: most probable class
