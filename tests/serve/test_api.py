"""The REST API through FastAPI's TestClient: every route, the values it returns, and every refusal."""

from __future__ import annotations

import base64
import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from serve_helpers import PHI, dicom_bytes, png

from nodescope.models import load_bundle, predict_files


def _post(client, files: dict[str, bytes], **data):
    return client.post("/api/predict", files={k: (f"{k}.bin", v) for k, v in files.items()}, data=data)


def _png_array(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


# ------------------------------------------------------------------------------------------------ routes


def test_health_and_models(make_client) -> None:
    c = make_client()
    h = c.get("/api/health").json()
    assert h == {"status": "ok", "models": 5, "engine": "torch", "workers": 1, "threads": 1, "in_flight": 0,
                 "capacity": 9}
    body = c.get("/api/models").json()
    ids = [m["id"] for m in body["models"]]
    assert ids == ["tiny_bmode", "tiny_cdfi", "tiny_elastography", "tiny_fusion", "late_mean"]
    assert body["default"] == "tiny_fusion" and body["segmenter"] is False and "Research use only" in body["notice"]
    m = body["models"][0]
    assert m["kind"] == "classifier" and m["modalities"] == ["bmode"] and m["classes"] == ["benign", "malignant"]
    assert m["threshold"]["value"] == pytest.approx(0.42) and m["threshold"]["chosen_on"].startswith("cv")
    assert m["input"]["image_size"] == 32 and m["input"]["channels"] == 1
    assert m["training"]["n_patients"] == 12 and m["metrics"]["splits"]["cv"]["auc_ci"] == [0.4, 0.8]
    assert "torch" in m["versions"] and m["synthetic_data"] is True and m["batch"] is True
    assert body["models"][3]["modalities"] == ["bmode", "cdfi", "elastography"]
    late = body["models"][4]
    assert late["kind"] == "late_fusion" and late["members"] == ids[:3]
    assert late["threshold"]["value"] == pytest.approx(0.42)  # the mean of the members' 0.42 (LateFusionModel)
    assert late["threshold"]["method"] == "mean of the members' thresholds"


def test_openapi_documents_every_route_with_schemas(make_client) -> None:
    spec = make_client().get("/api/openapi.json").json()
    assert set(spec["paths"]) == {"/api/health", "/api/models", "/api/predict", "/api/batch"}
    ok = spec["paths"]["/api/predict"]["post"]["responses"]
    assert ok["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PredictResponse")
    assert {"413", "415", "422", "503", "401"} <= set(ok)
    assert {"PredictResponse", "ModelsResponse", "HealthResponse", "ErrorResponse"} <= set(spec["components"]["schemas"])


def test_single_classifier_matches_predict_files(make_client, bundles, tmp_path: Path) -> None:
    c = make_client()
    data = png((40, 48), seed=3)
    r = _post(c, {"bmode": data}, model="tiny_bmode", images="true")
    assert r.status_code == 200, r.text
    body = r.json()
    (tmp_path / "x.png").write_bytes(data)
    ref = predict_files(load_bundle(bundles["bmode"]), [tmp_path / "x.png"])  # the predict command's path
    assert body["probabilities"]["malignant"] == pytest.approx(float(ref["p_malignant"][0]), abs=1e-6)
    assert body["predicted_class"] == ref["y_pred"][0]
    assert body["threshold"] == pytest.approx(0.42) and body["model_id"] == "tiny_bmode"
    mod = body["modalities"][0]
    assert (mod["modality"], mod["width"], mod["height"], mod["format"]) == ("bmode", 48, 40, "png")
    shown = _png_array(mod["image_png"])
    np.testing.assert_array_equal(shown, np.asarray(Image.open(io.BytesIO(data))))
    assert body["timing"]["model_ms"] > 0 and body["latency_ms"] >= body["timing"]["model_ms"]
    # the generic 'image' field feeds a single-image model too
    r2 = _post(c, {"image": data}, model="tiny_bmode")
    assert r2.json()["probabilities"] == body["probabilities"]
    assert r2.json()["modalities"][0]["image_png"] is None  # only when asked


def test_fusion_matches_the_network_and_any_modality_may_be_missing(make_client, bundles) -> None:
    c = make_client()
    imgs = {"bmode": png((40, 40), 1), "elastography": png((36, 44, 3), 2, "JPEG")}
    body = _post(c, imgs).json()  # default model: the fusion bundle
    assert body["model_id"] == "tiny_fusion" and body["missing_modalities"] == ["cdfi"]
    b = load_bundle(bundles["fusion"])
    from nodescope.data import read_image

    x = torch.zeros((1, 3, 1, 32, 32), dtype=torch.uint8)
    present = torch.tensor([[True, False, True]])
    for i, m in ((0, "bmode"), (2, "elastography")):
        x[0, i] = b.spec.prepare(read_image(imgs[m]))[0]
    with torch.no_grad():
        xf = ((x.float() / 255 - 0.5) / 0.25)
        ref = torch.softmax(b.model(xf, present), 1)[0].numpy()
    assert [body["probabilities"][k] for k in ("benign", "malignant")] == pytest.approx(ref.tolist(), abs=1e-5)
    assert [m["modality"] for m in body["modalities"]] == ["bmode", "elastography"]
    assert all(m["probabilities"] is not None for m in body["modalities"])  # each modality alone


def test_late_fusion_is_the_mean_of_the_modality_models(make_client) -> None:
    c = make_client()
    imgs = {"bmode": png(seed=4), "cdfi": png((30, 30, 3), 5), "elastography": png(seed=6)}
    fused = _post(c, imgs, model="late_mean").json()
    singles = [_post(c, {m: v}, model=f"tiny_{m}").json()["probabilities"]["malignant"] for m, v in imgs.items()]
    assert fused["probabilities"]["malignant"] == pytest.approx(np.mean(singles), abs=1e-6)
    assert [m["probabilities"]["malignant"] for m in fused["modalities"]] == pytest.approx(singles, abs=1e-6)
    p = fused["probabilities"]["malignant"]
    assert fused["threshold"] == pytest.approx(0.42)
    assert fused["predicted_class"] == ("malignant" if p >= 0.42 else "benign") and "threshold 0.4200" in \
        fused["decision"]
    # each image's own verdict is its classifier's, at its own threshold
    assert [m["predicted_class"] for m in fused["modalities"]] == [
        "malignant" if q >= 0.42 else "benign" for q in singles]
    one = _post(c, {"cdfi": imgs["cdfi"]}, model="late_mean").json()
    assert one["missing_modalities"] == ["bmode", "elastography"]
    alone = _post(c, {"cdfi": imgs["cdfi"]}, model="tiny_cdfi").json()  # one image: exactly that member's decision
    assert (one["threshold"], one["predicted_class"]) == (alone["threshold"], alone["predicted_class"])


def test_explain_returns_the_explainers_heat_map(make_client, bundles) -> None:
    from nodescope.data import read_image
    from nodescope.explain import CamExplainer, overlay_heatmap

    data = png(seed=9)
    body = _post(make_client(), {"bmode": data}, model="tiny_bmode", explain="true").json()
    heat = _png_array(body["modalities"][0]["heatmap_png"])
    img = read_image(data).pixels[..., 0]
    with CamExplainer(load_bundle(bundles["bmode"])) as cam:  # nodescope explain's own path
        ref = overlay_heatmap(img, cam.explain(img).heatmap, alpha=0.45)
    assert heat.shape == (40, 48, 3)
    assert np.abs(heat.astype(int) - ref.astype(int)).max() <= 1
    assert body["timing"]["explain_ms"] > 0


def test_explain_fusion_and_late_fusion_give_a_map_per_image(make_client) -> None:
    imgs = {"bmode": png(seed=1), "cdfi": png((30, 30, 3), 2)}
    for model in ("tiny_fusion", "late_mean"):
        body = _post(make_client(), imgs, model=model, explain="true").json()
        assert [m["heatmap_png"] is not None for m in body["modalities"]] == [True, True], body["modalities"]
        assert _png_array(body["modalities"][1]["heatmap_png"]).shape == (30, 30, 3)


def test_roi_box_contour_and_a_roi_model(make_client) -> None:
    c = make_client(("roi",))
    r = _post(c, {"image": png(seed=2)})
    assert r.status_code == 422 and "roi=auto or roi=box" in r.json()["detail"]
    body = _post(c, {"image": png(seed=2)}, roi="box", box="4,5,20,30").json()
    mod = body["modalities"][0]
    assert mod["roi_used"] is True
    roi = _png_array(mod["roi_png"])
    from nodescope.segment._overlay import PRED_COLOUR

    assert tuple(roi[5, 10]) == PRED_COLOUR and tuple(roi[15, 12]) != PRED_COLOUR  # the contour, not the inside


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_roi_auto_uses_the_segmenters_mask(make_client, bundles, engine: str) -> None:
    from nodescope.data import read_image
    from nodescope.models import Predictor
    from nodescope.segment import Segmenter, overlay_contours

    c = make_client(("roi",), segmenter=[bundles["seg"]], engine=engine)
    assert c.get("/api/models").json()["segmenter"] is True
    data = png((40, 48), 5)
    body = _post(c, {"image": data}, roi="auto").json()
    img = read_image(data)
    seg = Segmenter([bundles["seg"]], engine=engine, threads=1).predict_mask(img)  # the segment stage's own path
    if engine == "onnx":  # the segmenter runs on the service's engine, within 1e-4 of torch
        np.testing.assert_allclose(seg.probability, Segmenter([bundles["seg"]]).predict_mask(img).probability,
                                   atol=1e-4, rtol=0)
    mask = seg.mask
    expected = overlay_contours(img.pixels[..., 0], mask)
    differ = (_png_array(body["modalities"][0]["roi_png"]) != expected).any(axis=-1).mean()
    assert differ == 0
    ref = Predictor(bundles["roi"], threads=1).predict_images([img], masks=[mask]).probabilities[0]
    assert body["probabilities"]["malignant"] == pytest.approx(float(ref[1]), abs=1e-6 if engine == "torch" else 1e-4)
    assert body["modalities"][0]["roi_used"] is True


# ------------------------------------------------------------------------------------------------ refusals

TRUNCATED_DICOM = dicom_bytes(np.zeros((64, 64), np.uint8))[:400]


def _huge_png() -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    # a 50 000 x 50 000 header over a few bytes of data: a decompression bomb's shape
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("files", "data", "status", "words"), [
    ({"bmode": b""}, {}, 422, "empty"),
    ({"bmode": b"GIF89a" + b"\0" * 50}, {}, 415, "not a PNG, JPEG or DICOM"),
    ({"bmode": b"%PDF-1.4 hello"}, {}, 415, "recognised from the content"),
    ({"bmode": png()[:80]}, {}, 422, "upload 'bmode'"),
    ({"bmode": png(fmt="JPEG")[:200]}, {}, 422, "upload 'bmode'"),
    ({"bmode": TRUNCATED_DICOM}, {}, 422, "upload 'bmode'"),
    ({"bmode": _huge_png()}, {}, 413, "2,500,000,000 pixels exceeds"),
    ({}, {"model": "tiny_bmode"}, 422, "no image"),
    ({"cdfi": png()}, {"model": "tiny_bmode"}, 422, "unexpected upload"),
    ({"bmode": png()}, {"model": "nosuch"}, 404, "served models"),
    ({"bmode": png()}, {"roi": "sideways"}, 422, "roi"),
    ({"bmode": png()}, {"roi": "box", "box": "1,2,3"}, 422, "x0,y0,x1,y1"),
    ({"bmode": png()}, {"roi": "box"}, 422, "needs box"),
    ({"bmode": png()}, {"roi": "box", "box": "500,500,600,600"}, 422, "outside"),
    ({"bmode": png()}, {"roi": "auto"}, 422, "segmenter"),
])
def test_bad_requests_are_4xx_with_a_reason(make_client, files, data, status, words) -> None:
    r = _post(make_client(), files, **data)
    assert r.status_code == status, r.text
    assert words in str(r.json()["detail"])
    assert r.headers["x-request-id"]


def test_body_over_the_limit_is_413(make_client) -> None:
    c = make_client(max_upload_mb=0.01)
    r = _post(c, {"bmode": png((200, 200), 0)})
    assert r.status_code == 413 and "limit of 10,485 bytes" in r.json()["detail"]
    assert c.get("/api/health").status_code == 200


def test_api_key(make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODESCOPE_SERVE_API_KEY", "s3cret-key-123")  # from the environment, as deployments set it
    c = make_client()
    assert c.get("/api/health").status_code == 200
    r = c.get("/api/models")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["detail"]
    assert _post(c, {"bmode": png()}, model="tiny_bmode").status_code == 401
    assert c.get("/api/models", headers={"X-API-Key": "wrong-key-123"}).status_code == 401
    assert c.get("/api/models", headers={"X-API-Key": "s3cret-key-123"}).status_code == 200
    assert c.get("/api/models", headers={"Authorization": "Bearer s3cret-key-123"}).status_code == 200
    assert c.get("/").status_code == 200  # the page itself holds no data


def test_security_headers_cors_and_request_ids(make_client, caplog: pytest.LogCaptureFixture) -> None:
    c = make_client()
    for path in ("/", "/api/health", "/static/app.js"):
        r = c.get(path, headers={"Origin": "http://elsewhere.example"})
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in r.headers  # CORS off by default
    with caplog.at_level(logging.INFO, logger="nodescope.serve.access"):
        r = c.get("/api/health", headers={"X-Request-ID": "abc-123"})
        bad = c.get("/api/health", headers={"X-Request-ID": "<script>"})
    assert r.headers["x-request-id"] == "abc-123" and bad.headers["x-request-id"] != "<script>"
    assert any("abc-123 GET /api/health 200" in m for m in caplog.messages)
    cors = make_client(cors_origins=["http://viewer.local"])
    r = cors.get("/api/health", headers={"Origin": "http://viewer.local"})
    assert r.headers["access-control-allow-origin"] == "http://viewer.local"


def test_overload_is_shed_with_503_and_retry_after(make_client) -> None:
    c = make_client(queue=0)
    adm = c.app.state.admission
    adm.in_flight = adm.capacity  # every worker busy
    try:
        r = _post(c, {"bmode": png()}, model="tiny_bmode")
    finally:
        adm.in_flight = 0
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["detail"]
    assert c.get("/api/health").status_code == 200  # health is never shed
    assert _post(c, {"bmode": png()}, model="tiny_bmode").status_code == 200


# ------------------------------------------------------------------------------------------------ DICOM privacy


def test_dicom_identity_is_never_returned_logged_or_kept(make_client, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    import pydicom

    px = np.random.default_rng(0).integers(0, 255, (40, 48), dtype=np.uint8)
    data = dicom_bytes(px)
    keep = tmp_path / "kept"
    c = make_client(keep_uploads=keep)
    with caplog.at_level(logging.DEBUG):
        r = c.post("/api/predict", files={"bmode": ("Doe^Jane.dcm", data)}, data={"model": "tiny_bmode"})
        bad = c.post("/api/predict", files={"bmode": ("Doe^Jane.dcm", data[:300])}, data={"model": "tiny_bmode"})
    assert r.status_code == 200 and bad.status_code == 422
    said = r.text + bad.text + "\n".join(caplog.messages) + "\n".join(str(rec.args) for rec in caplog.records)
    for value in (*PHI.values(), "Doe", "MRN-998877"):
        assert value not in said
    kept = sorted(keep.iterdir())
    assert [p.suffix for p in kept] == [".dcm"] and kept[0].name.startswith(r.json()["request_id"])
    ds = pydicom.dcmread(kept[0])
    raw = kept[0].read_bytes()
    for value in PHI.values():
        assert value.encode() not in raw
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert not any(e.tag.is_private for e in ds)
    np.testing.assert_array_equal(ds.pixel_array, px)


def test_uploads_are_not_kept_by_default(make_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a spooled upload would land
    r = _post(make_client(), {"bmode": png((700, 700), 1)}, model="tiny_bmode")  # > starlette's 1 MiB spool
    assert r.status_code == 200 and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ batch


def test_batch_folder_and_zip_to_csv(make_client) -> None:
    c = make_client()
    good = png(seed=11)
    single = _post(c, {"bmode": good}, model="tiny_bmode").json()["probabilities"]["malignant"]
    r = c.post("/api/batch", data={"model": "tiny_bmode"},
               files=[("files", ("case1/a.png", good)), ("files", ("notes.txt", b"hello"))])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    df = pd.read_csv(io.StringIO(r.text), dtype={"error": str}, keep_default_na=False)
    assert list(df["patient_id"]) == ["case1/a.png", "notes.txt"]
    assert float(df["p_malignant"][0]) == pytest.approx(single, abs=1e-6) and df["error"][0] == ""
    assert "not a PNG" in df["error"][1] and df["p_malignant"][1] == ""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x/1.png", good)
        z.writestr("x/2.jpg", png(fmt="JPEG")[:100])
        z.writestr("x/", "")
    df = pd.read_csv(io.StringIO(c.post("/api/batch", data={"model": "tiny_bmode"},
                                        files={"archive": ("b.zip", buf.getvalue())}).text),
                     dtype={"error": str}, keep_default_na=False)
    assert list(df["image"]) == ["x/1.png", "x/2.jpg"] and df["error"][1] != ""
    assert float(df["p_malignant"][0]) == pytest.approx(single, abs=1e-6)


@pytest.mark.parametrize(("kw", "status", "words"), [
    ({"files": {"archive": ("b.zip", b"PK\x03\x04broken")}}, 422, "not a readable zip"),
    ({"files": {"archive": ("b.zip", b"")}, "data": {"model": "tiny_fusion"}}, 422, "single images"),
    ({"data": {"model": "tiny_bmode"}}, 422, "no files"),
])
def test_batch_refusals(make_client, kw, status, words) -> None:
    r = make_client().post("/api/batch", **kw)
    assert r.status_code == status and words in r.json()["detail"]


def test_batch_file_count_limit(make_client) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(4):
            z.writestr(f"{i}.png", b"x")
    r = make_client(max_batch_files=3).post("/api/batch", data={"model": "tiny_bmode"},
                                            files={"archive": ("b.zip", buf.getvalue())})
    assert r.status_code == 413 and "batch limit of 3" in r.json()["detail"]


def test_log_lines_inside_a_request_carry_its_id(make_client, caplog: pytest.LogCaptureFixture) -> None:
    from nodescope.serve._guard import RequestIdFilter
    from nodescope.serve._run import log_config

    c = make_client(("any",))
    model = c.app.state.service.models["tiny_any"]
    real = model.predict

    def logged(*a, **k):
        logging.getLogger("nodescope.serve.test").warning("inside the worker")
        return real(*a, **k)

    model.predict = logged
    caplog.handler.addFilter(RequestIdFilter())  # what log_config() puts on the nodescope handler
    try:
        with caplog.at_level(logging.INFO):
            r = c.post("/api/predict", files={"image": ("a.png", png())}, headers={"X-Request-ID": "rid-42"})
    finally:
        model.predict = real
    assert r.status_code == 200
    assert "[rid-42] inside the worker" in caplog.messages  # the id followed the work into the pool thread
    assert any(m.startswith("rid-42 POST /api/predict 200") for m in caplog.messages)  # access line, no prefix
    cfg = log_config()
    assert cfg["loggers"]["nodescope"]["handlers"] == ["nodescope"]
    assert cfg["handlers"]["nodescope"]["filters"] == ["request_id"]
