"""Segmenter: bundles loaded once, masks at the original image size through the inverse transform; overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nodescope.errors import BundleError, ConfigError
from nodescope.models import BundleMeta, InputSpec, save_bundle
from nodescope.segment import Segmenter, build_segmenter, overlay_contours


class _Oracle(torch.nn.Module):
    """A 'network' whose logit is +/-10 where the (normalised) input is bright: the mask of bright pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] > 0.5).float() * 20 - 10 + 0 * self.w


def _bundle(tmp: Path, name: str, size: int = 32, tta: bool = False) -> Path:
    arch = {"name": "monai_unet", "in_chans": 1, "features": [4, 4, 8, 8, 16, 4]}
    meta = BundleMeta(kind="segmenter", architecture=arch, name=name,
                      input=InputSpec(image_size=size, channels=1, mean=(0.0,), std=(1.0,), tta=tta))
    return save_bundle(tmp / name, build_segmenter(arch), meta)


def _oracle_segmenter(tmp: Path, **kw: object) -> Segmenter:
    seg = Segmenter([_bundle(tmp, "a")], **kw)  # type: ignore[arg-type]
    seg.bundles[0].model = _Oracle()  # swap in the oracle: the geometry, not the learning, is under test
    return seg


def test_mask_round_trip_at_original_size(tmp_path: Path) -> None:
    """A bright rectangle in a non-square image comes back as the same rectangle at the original size."""
    img = np.full((90, 140), 20, np.uint8)
    img[30:60, 50:100] = 230
    seg = _oracle_segmenter(tmp_path)
    m = seg.predict_mask(img)
    assert m.mask.shape == img.shape and m.mask.dtype == bool
    assert m.probability.shape == img.shape and m.probability.dtype == np.float32
    truth = img > 128
    dice = 2 * (m.mask & truth).sum() / (m.mask.sum() + truth.sum())
    assert dice > 0.9  # 32-px grid for a 140-px side: edges blur by ~2 px
    assert not m.mask[:20].any() and not m.mask[:, :40].any()
    rgb = np.repeat(img[..., None], 3, -1)
    assert seg.predict_mask(rgb).mask.shape == img.shape


def test_real_network_bundle_and_fusion_members(tmp_path: Path) -> None:
    torch.manual_seed(0)
    seg = Segmenter([_bundle(tmp_path, "a"), _bundle(tmp_path, "b", size=48, tta=True)], fusion="vote")
    img = np.random.default_rng(0).integers(0, 255, (50, 70), dtype=np.uint8)
    m = seg.predict_mask(img)
    assert len(m.members) == 2 and all(p.shape == img.shape for p in m.members)
    assert m.transforms[1].out_shape == (48, 48)
    expected = (np.stack(m.members) >= 0.5).sum(0) * 2 > 2
    np.testing.assert_array_equal(m.mask, expected)


def test_refuses_classifier_bundles_and_bad_options(tmp_path: Path) -> None:
    from nodescope.models import build_classifier

    arch = {"backbone": "resnet18", "num_classes": 2, "in_chans": 1, "image_size": 32}
    net = build_classifier(arch)
    meta = BundleMeta(kind="classifier", classes=("a", "b"), name="cls", architecture=arch,
                      input=InputSpec(image_size=32, channels=1, mean=(0.5,), std=(0.5,)))
    path = save_bundle(tmp_path / "cls", net, meta)
    with pytest.raises(BundleError, match="expected a 'segmenter' bundle"):
        Segmenter([path])
    with pytest.raises(ConfigError, match="fusion"):
        Segmenter([_bundle(tmp_path, "a")], fusion="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one"):
        Segmenter([])


def test_overlay_draws_both_contours() -> None:
    img = np.zeros((30, 30), np.uint8)
    pred = np.zeros((30, 30), bool)
    pred[5:15, 5:15] = True
    true = np.zeros((30, 30), bool)
    true[10:25, 10:25] = True
    out = overlay_contours(img, pred, true, width=1)
    assert out.shape == (30, 30, 3) and out.dtype == np.uint8
    assert tuple(out[5, 5]) == (255, 215, 0) and tuple(out[24, 24]) == (0, 200, 83)
    assert tuple(out[8, 8]) == (0, 0, 0)  # inside the prediction, not its edge
    assert img.max() == 0  # the input is untouched
    with pytest.raises(ValueError, match="true_mask"):
        overlay_contours(img, pred, true[:10])


def test_segment_files_writes_masks_at_original_size_and_manifest(tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from nodescope.cli import app
    from nodescope.segment import segment_files
    from nodescope.segment._masks_io import read_mask

    d = tmp_path / "imgs"
    d.mkdir()
    for i, shape in enumerate([(50, 70), (64, 40)]):
        img = np.full(shape, 10, np.uint8)
        img[10:30, 15:35] = 240
        Image.fromarray(img).save(d / f"im{i}.png")
    seg = _oracle_segmenter(tmp_path)
    frame = segment_files(seg, [d], tmp_path / "out")
    assert list(frame["mask"]) == ["masks/00000_im0.png", "masks/00001_im1.png"]
    m0 = read_mask(tmp_path / "out" / "masks" / "00000_im0.png")
    assert m0.shape == (50, 70) and m0[15:25, 20:30].all() and not m0[40:].any()
    assert (tmp_path / "out" / "manifest.csv").is_file() and not frame["mask_empty"].any()
    bundle = str(seg.bundles[0].path)
    r = CliRunner().invoke(app, ["segment", "predict", bundle, str(d), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "error:" in r.output and "not empty" in r.output  # no --overwrite
    r = CliRunner().invoke(app, ["segment", "predict", bundle, str(d), "-o", str(d)])
    assert r.exit_code == 2 and "error:" in r.output  # the output folder holds the inputs


def test_automatic_roi_needs_a_mask_cropping_classifier(tmp_path: Path) -> None:
    from nodescope.models import build_classifier, load_bundle, predict_files
    from nodescope.segment import automatic_roi

    arch = {"backbone": "resnet18", "num_classes": 2, "in_chans": 1, "image_size": 32}
    meta = BundleMeta(kind="classifier", classes=("benign", "malignant"), name="cls", architecture=arch,
                      positive_class="malignant",
                      input=InputSpec(image_size=32, channels=1, mean=(0.5,), std=(0.5,)))
    path = save_bundle(tmp_path / "cls", build_classifier(arch), meta)
    from PIL import Image

    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "a.png")
    source = automatic_roi(_oracle_segmenter(tmp_path))
    with pytest.raises(ConfigError, match="roi 'mask'"):
        predict_files(load_bundle(path), [tmp_path / "a.png"], mask_source=source)
    crop = save_bundle(tmp_path / "crop", build_classifier(arch),
                       meta.replace(input=InputSpec(image_size=32, channels=1, mean=(0.5,), std=(0.5,), roi="mask")))
    out = predict_files(load_bundle(crop), [tmp_path / "a.png"], mask_source=source)
    assert out["roi_source"].tolist() == ["automatic"] and out["roi_empty"].tolist() == [True]


@pytest.mark.parametrize("arch", [{"name": "monai_unet", "in_chans": 1, "features": [4, 4, 8, 8, 16, 4]},
                                  {"name": "unet", "in_chans": 1, "encoder": "resnet18"}])
def test_onnx_engine_matches_torch(tmp_path: Path, arch: dict) -> None:
    torch.manual_seed(0)
    meta = BundleMeta(kind="segmenter", architecture=arch, name="s",
                      input=InputSpec(image_size=32, channels=1, mean=(0.5,), std=(0.25,), tta=True))
    path = save_bundle(tmp_path / "s", build_segmenter(arch), meta)
    listing = sorted(p.name for p in path.iterdir())
    img = np.random.default_rng(0).integers(0, 255, (45, 60), dtype=np.uint8)
    a = Segmenter([path]).predict_mask(img)
    b = Segmenter([path], engine="onnx", threads=1, onnx_cache_dir=tmp_path / "cache").predict_mask(img)
    np.testing.assert_allclose(a.probability, b.probability, atol=1e-4)
    assert sorted(p.name for p in path.iterdir()) == listing  # the export is in the cache, not the bundle
    assert len(list((tmp_path / "cache").glob("segmenter-*.onnx"))) == 1
