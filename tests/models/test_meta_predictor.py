"""Typed bundle metadata, the preprocessing geometry, image+mask augmentation and the long-lived Predictor."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nodescope.data import ImageTransform, read_image, resize_pad
from nodescope.errors import BundleError, NodescopeError
from nodescope.models import (
    BundleKind,
    BundleMeta,
    ClassifierNet,
    InputSpec,
    Predictor,
    Threshold,
    bundle_kinds,
    load_bundle,
    predict_files,
    predict_proba,
    prepare_image,
    prepare_mask,
    read_bundle_meta,
    register_bundle_kind,
    save_bundle,
    write_bundle_meta,
)
from nodescope.training import UltrasoundAugment


def _meta(size: int = 32, *, channels: int = 3, tta: bool = False) -> BundleMeta:
    return BundleMeta(
        kind="classifier", name="t", run_id="run",
        architecture={"backbone": "resnet18", "num_classes": 2, "in_chans": channels, "image_size": size,
                      "head": "mlp", "hidden": 16, "dropout": 0.1},
        classes=("benign", "malignant"), positive_class="malignant",
        input=InputSpec(image_size=size, channels=channels, mean=(0.5,) * channels, std=(0.25,) * channels,
                        tta=tta, modalities=("bmode",)),
        threshold=Threshold(0.37, "youden", "cv (pooled out-of-fold)", "p_malignant >= value"),
        group_col="patient_id", training={"n_samples": 3}, weights_init={"source": "none"},
    )


@pytest.fixture
def bundle_path(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 2, image_size=32, hidden=16, dropout=0.1)
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 3, 32, 32))  # BN statistics that make eval mode matter
    return save_bundle(tmp_path / "b", net, _meta(), metrics={"auc": 0.5})


# ------------------------------------------------------------------------------------------------ metadata


def test_meta_round_trip(bundle_path: Path) -> None:
    meta = _meta()
    again = BundleMeta.from_dict(meta.to_dict())
    assert again.replace(created=None, versions={}) == meta.replace(created=None, versions={})
    read = read_bundle_meta(bundle_path)
    assert read.replace(created=None, versions={}) == meta
    assert read.created and "torch" in read.versions and read.format_version == 2
    assert load_bundle(bundle_path).meta == read
    raw = json.loads((bundle_path / "model.json").read_text())
    assert raw["input"]["tta"] is False and raw["modalities"] == ["bmode"] and raw["threshold"]["value"] == 0.37


def test_version_1_model_json_is_read(bundle_path: Path) -> None:
    # a bundle written by nodescope 0.1 (no input.tta, no input.uint16: trained with the full 16-bit range)
    raw = json.loads((bundle_path / "model.json").read_text())
    raw["format_version"] = 1
    del raw["input"]["tta"], raw["input"]["uint16"]
    (bundle_path / "model.json").write_text(json.dumps(raw))
    meta = load_bundle(bundle_path).meta
    assert meta.input.tta is False and meta.input.uint16 == "full_range" and meta.format_version == 1


def _edit(path: Path, fn) -> None:
    raw = json.loads((path / "model.json").read_text())
    fn(raw)
    (path / "model.json").write_text(json.dumps(raw))


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(colour="red"), r"unknown key\(s\) \['colour'\]"),
    (lambda d: d["input"].update(size=3), r"unknown key\(s\) \['size'\]"),
    (lambda d: d.pop("architecture"), "key 'architecture' is missing"),
    (lambda d: d["input"].pop("mean"), "key 'mean' is missing"),
    (lambda d: d.update(classes=["a", "b", "c"], positive_class="c"), "lists 3 classes .*num_classes is 2"),
    (lambda d: d["input"].update(std=[0.25, 0.0, 0.25]), r"input\.std: values must be > 0"),
    (lambda d: d["input"].update(mean=[0.5]), r"input\.mean: expected 3 value"),
    (lambda d: d["input"].update(channels=1, mean=[0.5], std=[0.2]), "in_chans is 3 but input.channels is 1"),
    (lambda d: d.update(positive_class="nosuch"), "'positive_class' is 'nosuch', not one of the classes"),
    (lambda d: d["threshold"].update(value=1.5), r"threshold\.value: expected a probability"),
    (lambda d: d.update(format_version=99), "format_version 99 is newer"),
    (lambda d: d.update(kind="teapot"), "key 'kind' is 'teapot'; known kinds"),
    (lambda d: d.update(format="other"), "not a nodescope bundle"),
])
def test_bad_model_json_is_refused_with_the_key_named(bundle_path: Path, edit, message: str) -> None:
    _edit(bundle_path, edit)
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(bundle_path)
    assert str(bundle_path / "model.json") in str(info.value)


def test_bad_files_are_bundle_errors(bundle_path: Path) -> None:
    (bundle_path / "model.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_path)


def test_corrupt_weights_named(tmp_path: Path, bundle_path: Path) -> None:
    (bundle_path / "weights.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(BundleError, match=r"weights\.safetensors: not a readable safetensors file"):
        load_bundle(bundle_path)
    assert issubclass(BundleError, NodescopeError) and issubclass(BundleError, ValueError)


def test_threshold_change_rewrites_model_json_only(bundle_path: Path) -> None:
    w = bundle_path / "weights.safetensors"
    before, stat = w.read_bytes(), w.stat()
    meta = read_bundle_meta(bundle_path)
    write_bundle_meta(bundle_path, meta.replace(threshold=Threshold(0.61, "youden", "cv", "p_malignant >= value")))
    assert w.read_bytes() == before and w.stat().st_mtime_ns == stat.st_mtime_ns
    b = load_bundle(bundle_path)
    assert b.threshold == 0.61 and b.metrics == {"auc": 0.5}
    assert "0.6100" in (bundle_path / "MODEL_CARD.md").read_text()


def test_kind_registry_dispatch(tmp_path: Path) -> None:
    assert {"classifier", "fusion", "backbone"} <= set(bundle_kinds())

    def build(meta: BundleMeta) -> torch.nn.Module:
        return torch.nn.Conv2d(int(meta.architecture["in_chans"]), 1, 1)

    register_bundle_kind(BundleKind("toy-segmenter", build))
    try:
        net = torch.nn.Conv2d(1, 1, 1)
        meta = BundleMeta(kind="toy-segmenter", architecture={"in_chans": 1},
                          input=InputSpec(image_size=8, channels=1, mean=(0.5,), std=(0.5,)))
        b = load_bundle(save_bundle(tmp_path / "s", net, meta))
        assert isinstance(b.model, torch.nn.Conv2d) and torch.equal(b.model.weight, net.weight)
    finally:
        from nodescope.models import _bundle

        _bundle._KINDS.pop("toy-segmenter")


# ------------------------------------------------------------------------------------------------ geometry


@pytest.mark.parametrize("shape,mask_box", [((120, 200), None), ((300, 90), None), ((150, 260), (40, 60, 110, 200))])
def test_box_on_model_grid_maps_back_within_one_pixel(shape, mask_box) -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (*shape, 1), dtype=np.uint8)
    mask = None
    if mask_box:
        mask = np.zeros(shape, np.uint8)
        t, lft, b, r = mask_box
        mask[t:b, lft:r] = 1
    x, tr = prepare_image(img, size=64, channels=3, mask=mask, roi_margin=0.1)
    assert x.shape == (3, 64, 64)
    # a box drawn in the original -> its image on the model grid -> back: the same box within one pixel
    t, lft, b, r = (30, 20, 80, 70) if mask_box is None else (50, 80, 100, 180)
    (ot, ol), (ob, orr) = tr.to_output([[t, lft], [b, r]])
    grid = np.zeros((64, 64), np.uint8)
    grid[round(ot):round(ob), round(ol):round(orr)] = 1
    back = tr.inverse(grid, resample="nearest")
    rows, cols = np.flatnonzero(back.any(1)), np.flatnonzero(back.any(0))
    side = shape[0] / 64 if mask is None else 1
    tol = max(1.0, np.ceil(1 / tr.scale[0]))  # one model pixel is 1/scale original pixels
    assert abs(rows[0] - t) <= tol and abs(rows[-1] + 1 - b) <= tol, (rows[0], rows[-1], side)
    assert abs(cols[0] - lft) <= tol and abs(cols[-1] + 1 - r) <= tol
    # the box coordinates themselves round-trip exactly
    np.testing.assert_allclose(tr.to_input(tr.to_output([[t, lft], [b, r]])), [[t, lft], [b, r]], atol=1e-9)
    assert tr.box_to_input((ot, ol, ob, orr)) == (t, lft, b, r)


def test_mask_goes_through_the_same_geometry_as_its_image() -> None:
    shape = (90, 160)
    mask = np.zeros(shape, np.uint8)
    mask[20:70, 30:100] = 255
    img = (mask[..., None] > 0).astype(np.uint8) * 255
    x, tr = prepare_image(img, size=48, channels=1)
    m = prepare_mask(mask, tr)
    assert m.shape == (1, 48, 48) and set(np.unique(m.numpy())) <= {0, 1}
    # the image's bright region is the mask's region on the model grid
    bright = x[0].numpy() > 127
    assert (bright == m[0].numpy().astype(bool)).mean() > 0.99
    back = tr.inverse(m[0].numpy(), resample="nearest")
    inter, union = np.logical_and(back, mask).sum(), np.logical_or(back, mask).sum()
    assert inter / union > 0.9
    # every edge within one model pixel (1 / 0.3 original pixels) of the original mask's
    rows, cols = np.flatnonzero(back.any(1)), np.flatnonzero(back.any(0))
    tol = 1 / tr.scale[0]
    assert max(abs(rows[0] - 20), abs(rows[-1] + 1 - 70), abs(cols[0] - 30), abs(cols[-1] + 1 - 100)) <= tol
    # a heat map (float) goes back to the original size; padding never bleeds in
    heat = np.ones((48, 48), np.float32)
    heat[:6] = 0.0  # padding rows of a wide image
    assert tr.content_box()[0] >= 6 - 1
    assert np.allclose(tr.inverse(heat), 1.0)


def test_resize_pad_and_model_path_share_the_transform_type() -> None:
    img = np.zeros((10, 20), np.uint8)
    _, tr1 = resize_pad(img, 8)
    _, tr2 = prepare_image(img, size=8, channels=1)
    assert isinstance(tr1, ImageTransform) and isinstance(tr2, ImageTransform)
    np.testing.assert_allclose(tr1.to_output([[10, 20]]), tr2.to_output([[10, 20]]))


def test_spec_prepare_equals_prepare_image_and_needs_mask_for_roi() -> None:
    img = np.random.default_rng(0).integers(0, 4096, (40, 30, 1), dtype=np.uint16)
    spec = InputSpec(image_size=16, channels=1, mean=(0.5,), std=(0.5,))
    a, _ = spec.prepare(img, meta={"bits_stored": 12})
    b, _ = prepare_image(img, size=16, channels=1, bits_stored=12)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="needs the lesion mask"):
        InputSpec(image_size=16, channels=1, mean=(0.5,), std=(0.5,), roi="mask").prepare(img)


# ------------------------------------------------------------------------------------------------ augmentation


def test_augmentation_moves_image_and_mask_together() -> None:
    torch.manual_seed(3)
    mask = torch.zeros(6, 1, 40, 40)
    mask[:, :, 8:30, 5:22] = 1
    x = mask.repeat(1, 3, 1, 1) * 0.9
    aug = UltrasoundAugment(rotate=25.0, scale=(0.8, 1.2), translate=0.1, brightness=0.0, contrast=0.0,
                            gamma=(1.0, 1.0), speckle=0.0)
    torch.manual_seed(7)
    xa, ma = aug(x, mask)
    torch.manual_seed(7)
    xo = aug(x)
    assert torch.equal(xa, xo)  # the image gets the same augmentation with or without a mask
    assert set(torch.unique(ma).tolist()) <= {0.0, 1.0}
    agree = ((xa[:, 0] > 0.45) == (ma[:, 0] > 0.5)).float().mean()
    assert agree > 0.98
    assert not torch.equal(ma, mask)  # it did move
    with pytest.raises(ValueError, match="mask: expected shape"):
        aug(x, mask[:, :, :20])


# ------------------------------------------------------------------------------------------------ predictor


def _png(path: Path, rng: np.random.Generator, shape=(37, 51)) -> Path:
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_predictor_equals_predict(bundle_path: Path, tmp_path: Path, engine: str) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    files = [_png(tmp_path / f"{i}.png", rng) for i in range(3)]
    b = load_bundle(bundle_path)
    pred = Predictor(b, engine=engine, threads=1, batch_size=2)
    out = pred.predict_images(files, logits=True, features=True)
    ref = predict_files(b, files, engine=engine)
    np.testing.assert_allclose(out.probabilities[:, 1], ref["p_malignant"].to_numpy(), atol=1e-6)
    x = torch.stack([pred.prepare(f)[0] for f in files])
    np.testing.assert_allclose(out.probabilities, predict_proba(b, x, engine=engine), atol=1e-6)
    # logits and features are those of the same forward pass
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(out.logits), 1).numpy(), out.probabilities, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(b.model.head(torch.from_numpy(out.features)).numpy(), out.logits, atol=1e-4)
    assert out.features.shape == (3, b.model.backbone.num_features) and len(out.transforms) == 3
    # bytes (an upload) give the same answer as the path
    by_bytes = pred.predict_images([f.read_bytes() for f in files])
    np.testing.assert_array_equal(by_bytes.probabilities, pred.predict_images(files).probabilities)
    # decoded images too
    np.testing.assert_array_equal(pred.predict_images([read_image(f) for f in files]).probabilities,
                                  by_bytes.probabilities)


def test_engines_agree_and_tta_follows_the_bundle(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 2, image_size=32, hidden=16, dropout=0.1)
    path = save_bundle(tmp_path / "b", net, _meta(tta=True))
    x = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8))
    t = Predictor(path, engine="torch", threads=1)
    o = Predictor(path, engine="onnx", threads=1)
    np.testing.assert_allclose(o.predict(x, logits=True).logits, t.predict(x, logits=True).logits, atol=1e-4)
    mirrored = (t.predict(x, tta=False).probabilities + t.predict(x.flip(3), tta=False).probabilities) / 2
    np.testing.assert_allclose(t.predict(x).probabilities, mirrored, atol=1e-6)  # the bundle says tta
    with pytest.raises(ValueError, match="engine: expected"):
        Predictor(path, engine="tensorrt")  # type: ignore[arg-type]


def test_onnx_export_keyed_on_the_weights_not_their_age(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = save_bundle(tmp_path / "b", ClassifierNet("resnet18", 2, image_size=32, hidden=16), _meta())
    x = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    cache = tmp_path / "cache"
    p1 = Predictor(path, engine="onnx", threads=1, onnx_cache_dir=cache).predict(x).probabilities
    (first,) = cache.glob("*.onnx")
    # other weights, written with an OLDER modification time than the cached export
    torch.manual_seed(1)
    save_bundle(path, ClassifierNet("resnet18", 2, image_size=32, hidden=16), _meta())
    old = first.stat().st_mtime - 100
    os.utime(path / "weights.safetensors", (old, old))
    p2 = Predictor(path, engine="onnx", threads=1, onnx_cache_dir=cache).predict(x).probabilities
    assert len(list(cache.glob("*.onnx"))) == 2  # a new entry, keyed on the new weights' SHA-256
    ref = Predictor(path, engine="torch", threads=1).predict(x).probabilities
    np.testing.assert_allclose(p2, ref, atol=1e-4)
    assert not np.allclose(p1, p2)


def test_onnx_export_leaves_the_bundle_network_as_it_was(bundle_path: Path) -> None:
    # regression: exporting a freshly built wrapper module put the bundle's network back in training mode
    b = load_bundle(bundle_path)
    x = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    before = predict_proba(b, x)
    from nodescope.models import export_onnx

    export_onnx(b, bundle_path.parent / "x.onnx")
    assert not b.model.training and not any(m.training for m in b.model.modules())
    np.testing.assert_array_equal(predict_proba(b, x), before)
