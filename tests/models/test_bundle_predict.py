"""Bundles round-trip exactly; ONNX Runtime equals PyTorch; preprocessing keeps aspect and crops to the mask."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nodescope.models import (
    BundleMeta,
    ClassifierNet,
    InputSpec,
    Threshold,
    load_bundle,
    mask_box,
    predict_proba,
    prepare_image,
    save_bundle,
)


def _meta(size: int = 32) -> BundleMeta:
    return BundleMeta(
        kind="classifier", name="t",
        architecture={"backbone": "resnet18", "num_classes": 2, "in_chans": 3, "image_size": size,
                      "head": "mlp", "hidden": 16, "dropout": 0.1},
        classes=("benign", "malignant"), positive_class="malignant",
        input=InputSpec(image_size=size, channels=3, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
        threshold=Threshold(0.37, "youden", "cv", "p_malignant >= value"),
    )


@pytest.fixture
def bundle_dir(tmp_path):
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 2, image_size=32, hidden=16, dropout=0.1)
    # non-trivial BN statistics so eval mode matters
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 3, 32, 32))
    return save_bundle(tmp_path / "b", net, _meta(), metrics={"auc": 0.5}), net


def test_bundle_files_and_reload_identical(bundle_dir, rng) -> None:
    path, net = bundle_dir
    assert {p.name for p in path.iterdir()} >= {"model.json", "weights.safetensors", "metrics.json", "MODEL_CARD.md"}
    meta = json.loads((path / "model.json").read_text())
    assert meta["format"] == "nodescope-bundle" and "torch" in meta["versions"]
    assert "0.3700" in (path / "MODEL_CARD.md").read_text()
    b = load_bundle(path)
    assert b.classes == ("benign", "malignant") and b.threshold == 0.37 and b.metrics == {"auc": 0.5}
    x = torch.from_numpy(rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8))
    p = predict_proba(b, x)
    net.eval()
    with torch.no_grad():
        ref = torch.softmax(net((x.float() / 255 - 0.5) / 0.25), 1).numpy()
    np.testing.assert_array_equal(p, ref)
    assert np.allclose(p.sum(1), 1.0)
    p_tta = predict_proba(b, x, tta=True)
    p_flip = predict_proba(b, torch.flip(x, dims=[3]))
    np.testing.assert_allclose(p_tta, (p + p_flip) / 2, atol=1e-6)


def test_onnx_matches_torch(bundle_dir, rng, tmp_path) -> None:
    path, _ = bundle_dir
    b = load_bundle(path)
    x = torch.from_numpy(rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8))
    p_t = predict_proba(b, x, batch_size=2)
    p_o = predict_proba(b, x, batch_size=2, engine="onnx", onnx_path=tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").is_file()
    np.testing.assert_allclose(p_o, p_t, atol=1e-4, rtol=0)


def test_bundle_errors(tmp_path, bundle_dir) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_bundle(tmp_path / "none")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.json").write_text("{}")
    with pytest.raises(ValueError, match="not a nodescope bundle"):
        load_bundle(tmp_path / "half")
    path, _ = bundle_dir
    meta = json.loads((path / "model.json").read_text())
    meta["architecture"]["hidden"] = 32
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not fit the architecture"):
        load_bundle(path)
    with pytest.raises(TypeError, match="uint8"):
        predict_proba(_dummy_bundle(tmp_path), torch.zeros(1, 3, 32, 32))


def _dummy_bundle(tmp_path):
    net = ClassifierNet("resnet18", 2, image_size=32, hidden=16, dropout=0.1)
    return load_bundle(save_bundle(tmp_path / "d", net, _meta()))


def test_prepare_image_pad_and_roi() -> None:
    img = np.zeros((20, 40, 1), np.uint8)
    img[:, :20] = 200
    x, tr = prepare_image(img, size=40, channels=3)
    assert tr.crop == (0, 0, 20, 40) and tr.scale == (1.0, 1.0) and tr.offset == (10.0, 0.0)
    assert x.shape == (3, 40, 40) and x.dtype == torch.uint8
    assert x[0, :10].max() == 0 and x[0, 10:30, :20].min() == 200 and x[0, 10:30, 20:].max() == 0  # padded, kept
    mask = np.zeros((20, 40), np.uint8)
    mask[5:15, 22:32] = 255
    assert mask_box(mask, 0.0) == (5, 22, 15, 32)
    assert mask_box(mask, 0.2) == (3, 20, 17, 34)
    roi, tr = prepare_image(img, size=10, channels=1, mask=mask, roi_margin=0.0)
    assert tr.crop == (5, 22, 15, 32)
    assert roi.shape == (1, 10, 10) and roi.max() == 0  # the box lies in the dark half
    with pytest.raises(ValueError, match="mask: size"):
        prepare_image(img, size=10, mask=np.zeros((5, 5)))
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 100
    assert prepare_image(rgb, size=4, channels=1)[0][0, 0, 0] == round(0.299 * 100)
    assert prepare_image(np.full((4, 4), 65535, np.uint16), size=4, channels=1)[0].max() == 255
