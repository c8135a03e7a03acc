"""The two-view input (``roi="two-view"``): both views' geometry, the shared-backbone network, the bundle, prediction
(manifest masks, automatic masks, TTA, ONNX), Grad-CAM on the ROI view and the service, on tiny synthetic images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from tiny_data import save_tiny_classifier

from nodescope.errors import BundleError, ConfigError, DataError
from nodescope.models import (
    ClassifierNet,
    InputSpec,
    Predictor,
    context_box,
    load_bundle,
    predict_files,
    prepare_image,
    prepare_two_view,
)
from nodescope.models._registry import feature_dim


def _image(shape: tuple[int, int] = (60, 80), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def _rect(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[box[0]:box[2], box[1]:box[3]] = 255
    return m


# ------------------------------------------------------------------------------------------------ geometry


@pytest.mark.parametrize("channels", [1, 3])
def test_roi_view_is_the_mask_crop_and_context_the_box_scaled_about_its_centre(channels: int) -> None:
    px = _image()
    mask = _rect(px.shape, (20, 30, 30, 40))  # tight box rows 20..30, cols 30..40
    x, (roi_tr, ctx_tr) = prepare_two_view(px, size=32, channels=channels, mask=mask, roi_margin=0.1,
                                           context_scale=3.0)
    assert x.shape == (2 * channels, 32, 32) and x.dtype == torch.uint8
    # the ROI view is exactly the `roi="mask"` input (margin 0.1 of a 10 px side = 1 px each side)
    roi, tr = prepare_image(px, size=32, channels=channels, mask=mask, roi_margin=0.1)
    assert roi_tr == tr and roi_tr.crop == (19, 29, 31, 41)
    assert torch.equal(x[:channels], roi)
    # the context box: centre (25, 35), half side 6 x 3 = 18 -> rows 7..43, cols 17..53, then prepared as a crop
    assert ctx_tr.crop == (7, 17, 43, 53)
    ctx, _ = prepare_image(np.ascontiguousarray(px[7:43, 17:53]), size=32, channels=channels)
    assert torch.equal(x[channels:], ctx)


def test_context_view_is_clipped_to_the_image_and_scale_zero_is_the_whole_image() -> None:
    px = _image()
    mask = _rect(px.shape, (2, 70, 8, 78))  # near the top-right corner
    _x, (roi_tr, ctx_tr) = prepare_two_view(px, size=32, mask=mask, context_scale=3.0)
    assert roi_tr.crop == (1, 69, 9, 79)  # margins round(0.6) = 1 and round(0.8) = 1
    assert ctx_tr.crop == (0, 59, 17, 80)  # (-7, 59, 17, 89) clipped to the 60 x 80 image
    x0, (_r, whole) = prepare_two_view(px, size=32, mask=mask, context_scale=0)
    assert whole.crop == (0, 0, 60, 80)
    assert torch.equal(x0[3:], prepare_image(px, size=32)[0])


def test_context_box_holds_the_roi_box_and_is_scaled_unless_clipped() -> None:
    rng = np.random.default_rng(1)
    bounds = (0, 0, 100, 120)
    for _ in range(300):
        t, lft = (int(v) for v in rng.integers(0, 90, 2))
        b, r = t + int(rng.integers(1, 100 - t + 1)), lft + int(rng.integers(1, 120 - lft + 1))
        scale = float(rng.choice([1.0, 1.5, 2.0, 3.0, 7.5]))
        ct, cl, cb, cr = context_box((t, lft, b, r), scale, bounds)
        assert ct <= t and cl <= lft and cb >= b and cr >= r  # holds the ROI box
        assert ct >= 0 and cl >= 0 and cb <= 100 and cr <= 120  # inside the image
        want_h, want_w = scale * (b - t), scale * (r - lft)
        if ct > 0 and cb < 100:  # not clipped: the scaled side, widened to whole pixels by less than 2
            assert want_h <= cb - ct < want_h + 2
        if cl > 0 and cr < 120:
            assert want_w <= cr - cl < want_w + 2
    assert context_box((10, 10, 20, 20), 1.0, bounds) == (10, 10, 20, 20)
    with pytest.raises(ConfigError, match="context_scale"):
        context_box((10, 10, 20, 20), 0.5, bounds)


def test_with_scan_crop_the_context_is_clipped_to_the_scan_region() -> None:
    scan = _image((40, 48), seed=2) // 2 + 60  # no black pixel inside the scan
    cap = np.zeros((70, 88), np.uint8)
    cap[20:60, 20:68] = scan
    mask = _rect(cap.shape, (24, 24, 34, 34))
    _x, (_roi, ctx_tr) = prepare_two_view(cap, size=32, mask=mask, context_scale=0, scan_crop=True)
    assert ctx_tr.crop == (20, 20, 60, 68)  # the scan region, not the screen
    _x, (_r, ctx3) = prepare_two_view(cap, size=32, mask=mask, context_scale=3.0, scan_crop=True)
    assert ctx3.crop == (20, 20, 47, 47)  # (11, 11, 47, 47): ROI box (23, 23, 35, 35) x 3 about 29, clipped


def test_empty_mask_gives_the_whole_image_in_both_views() -> None:
    px = _image()
    x, (roi_tr, ctx_tr) = prepare_two_view(px, size=32, mask=np.zeros(px.shape, np.uint8))
    whole = prepare_image(px, size=32)[0]
    assert roi_tr.crop == ctx_tr.crop == (0, 0, 60, 80)
    assert torch.equal(x[:3], whole) and torch.equal(x[3:], whole)


# ------------------------------------------------------------------------------------------------ network


def test_shared_backbone_features_of_both_views_are_concatenated() -> None:
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 2, image_size=32, hidden=8, views=2).eval()
    n_params = sum(p.numel() for p in net.parameters())  # one backbone (one set of weights) + the head
    assert n_params == sum(p.numel() for p in [*net.backbone.parameters(), *net.head.parameters()])
    assert net.head[0].in_features == 2 * feature_dim(net.backbone) == 1024
    x = torch.rand(3, 6, 32, 32)
    with torch.no_grad():
        f = net.features(x)
        want = torch.cat([net.backbone(x[:, :3]), net.backbone(x[:, 3:])], dim=1)
        torch.testing.assert_close(f, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net(x), net.head(want), atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="views"):
        ClassifierNet("resnet18", 2, image_size=32, views=3)


# ------------------------------------------------------------------------------------------------ bundle


@pytest.fixture(scope="module")
def two_view_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return save_tiny_classifier(tmp_path_factory.mktemp("tv") / "b", roi="two-view", context_scale=2.0)


def test_bundle_records_the_two_view_input(two_view_bundle: Path) -> None:
    meta = json.loads((two_view_bundle / "model.json").read_text())
    assert meta["input"]["roi"] == "two-view" and meta["input"]["context_scale"] == 2.0
    assert meta["architecture"]["views"] == 2
    b = load_bundle(two_view_bundle)
    assert b.spec.views == 2 and b.spec.tensor_channels == 6 and b.spec.needs_mask
    # a bundle whose network and input disagree, or a context scale without two views, is refused
    bad = dict(meta, architecture={**meta["architecture"], "views": 1})
    (two_view_bundle.parent / "bad").mkdir(exist_ok=True)
    (two_view_bundle.parent / "bad" / "weights.safetensors").write_bytes(
        (two_view_bundle / "weights.safetensors").read_bytes())
    (two_view_bundle.parent / "bad" / "model.json").write_text(json.dumps(bad))
    with pytest.raises(BundleError, match=r"architecture\.views"):
        load_bundle(two_view_bundle.parent / "bad")
    with pytest.raises(BundleError, match="context_scale"):
        InputSpec.from_dict({**meta["input"], "roi": "mask"})
    with pytest.raises(BundleError, match="context_scale"):
        InputSpec.from_dict({**meta["input"], "context_scale": 0.5})


def test_predictor_scores_both_views_with_tta_and_onnx(two_view_bundle: Path, tmp_path: Path) -> None:
    b = load_bundle(two_view_bundle)
    px = [_image(seed=s) for s in range(3)]
    masks = [_rect((60, 80), (10 + 5 * s, 20, 30 + 5 * s, 50)) for s in range(3)]
    pred = Predictor(b, threads=1)
    got = pred.predict_images(px, masks=masks, tta=False, features=True)
    x = torch.stack([prepare_two_view(p, size=32, mask=m, context_scale=2.0)[0] for p, m in zip(px, masks,
                                                                                               strict=True)])
    with torch.no_grad():
        logits = b.model(b.spec.normalise(x))
    np.testing.assert_allclose(got.probabilities, torch.softmax(logits, 1).numpy(), atol=1e-6)
    assert got.features.shape == (3, 1024)  # ResNet-18's 512 per view
    assert got.transforms[0].crop == prepare_image(px[0], size=32, mask=masks[0])[1].crop  # the ROI view's
    mirrored = pred.predict(x.flip(-1), tta=False).probabilities
    np.testing.assert_allclose(pred.predict(x, tta=True).probabilities, (got.probabilities + mirrored) / 2,
                               atol=1e-6)
    onnx = Predictor(b, engine="onnx", threads=1, onnx_path=tmp_path / "m.onnx")
    np.testing.assert_allclose(onnx.predict(x, tta=True).probabilities, pred.predict(x, tta=True).probabilities,
                               atol=1e-5)
    with pytest.raises(DataError, match="two-view"):
        pred.predict_images(px[:1])


def _manifest(root: Path, n: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        Image.fromarray(_image(seed=10 + i)).save(root / f"i{i}.png")
        Image.fromarray(_rect((60, 80), (10 + 3 * i, 15, 35, 40 + 4 * i))).save(root / f"m{i}.png")
        rows.append({"patient_id": f"P{i}", "image": f"i{i}.png", "label": "malignant" if i % 2 else "benign",
                     "mask": f"m{i}.png"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_predict_files_with_manifest_masks_and_automatic_masks_agree(two_view_bundle: Path, tmp_path: Path) -> None:
    from nodescope.data import read_image

    m = _manifest(tmp_path / "d")
    b = load_bundle(two_view_bundle)
    drawn = predict_files(b, [m], threads=1)
    masks = {str(read_image(tmp_path / "d" / f"i{i}.png").pixels.sum()): np.asarray(
        Image.open(tmp_path / "d" / f"m{i}.png")) for i in range(4)}
    auto = predict_files(b, [m], threads=1, mask_source=lambda img: masks[str(img.pixels.sum())])
    np.testing.assert_allclose(auto["p_malignant"], drawn["p_malignant"], atol=1e-7)
    assert (auto["roi_source"] == "automatic").all() and not auto["roi_empty"].any()
    # an empty drawn mask names the image and the mask; a row without a mask names the image
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(tmp_path / "d" / "m2.png")
    with pytest.raises(DataError, match=r"i2\.png: its mask .*m2\.png is empty"):
        predict_files(b, [m], threads=1)
    df = pd.read_csv(m)
    df.loc[1, "mask"] = ""
    df.to_csv(m, index=False)
    with pytest.raises(DataError, match=r"i1\.png: the bundle crops to the lesion \(input.roi 'two-view'\)"):
        predict_files(b, [m], threads=1)


# ------------------------------------------------------------------------------------------------ Grad-CAM, serve


def test_gradcam_explains_the_roi_view(two_view_bundle: Path) -> None:
    from nodescope.explain import CamExplainer

    b = load_bundle(two_view_bundle)
    px, mask = _image(seed=4), _rect((60, 80), (20, 30, 36, 50))
    # layer2 (4 x 4 at 32 px; the last layer is 1 x 1, a constant map); EigenCAM is not all zero on random weights
    with CamExplainer(b, method="eigencam", target_layer=b.model.backbone.layer2) as cam:
        res = cam.explain(px, mask=mask)
        _c, wrapper, _l = cam._branch(0)
        x, tr = b.spec.prepare(px, mask=mask)
        xf = x[None].float() / 255
        with torch.no_grad():  # the ROI-view wrapper, context held fixed, gives the network's own logits
            torch.testing.assert_close(wrapper(xf[:, :3]), b.model(b.spec.normalise(x[None])), atol=1e-5,
                                       rtol=1e-5)
    p = Predictor(b, threads=1).predict_images([px], masks=[mask]).probabilities[0]
    np.testing.assert_allclose(res.probabilities, p, atol=1e-6)
    assert res.transform.crop == tr.crop == (18, 28, 38, 52)
    assert res.heatmap.shape == (60, 80)
    outside = np.ones((60, 80), bool)
    outside[18:38, 28:52] = False
    assert (res.heatmap[outside] == 0).all() and res.heatmap[~outside].max() == pytest.approx(1.0)


def test_service_serves_a_two_view_bundle_with_a_box(two_view_bundle: Path) -> None:
    import io

    from fastapi.testclient import TestClient

    from nodescope.serve import create_app, load_service, load_settings

    s = load_settings(bundles=[two_view_bundle], threads=1)
    px = _image(seed=6)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="PNG")
    with TestClient(create_app(s, load_service(s.bundles, threads=1))) as c:
        files = {"image": ("i.png", buf.getvalue())}
        r = c.post("/api/predict", files=files)
        assert r.status_code == 422 and "roi=auto or roi=box" in r.json()["detail"]
        r = c.post("/api/predict", files=files, data={"roi": "box", "box": "20,10,50,40", "explain": "true"})
        assert r.status_code == 200, r.text
        body = r.json()
    want = Predictor(two_view_bundle, threads=1).predict_images([px], masks=[_rect((60, 80), (10, 20, 40, 50))])
    assert body["modalities"][0]["roi_used"] is True and body["modalities"][0]["heatmap_png"]
    assert body["probabilities"]["malignant"] == pytest.approx(float(want.probabilities[0, 1]), abs=1e-5)


def test_data_compare_embeds_both_views_of_a_two_view_bundle(two_view_bundle: Path, tmp_path: Path) -> None:
    from nodescope.data._compare import compare_datasets

    a, b = _manifest(tmp_path / "a", n=6), _manifest(tmp_path / "b", n=6)
    res = compare_datasets(a, b, bundle=two_view_bundle, n_permutations=10)
    assert res.embedding is not None and res.embedding.n_features == 1024  # ROI and context features side by side
    pd.read_csv(b).drop(columns=["mask"]).to_csv(b, index=False)
    with pytest.raises(DataError, match=r"input.roi = 'two-view'\), but image 'i0.png'"):
        compare_datasets(a, b, bundle=two_view_bundle, n_permutations=10)
