"""Tint removal, intensity normalisation and the appearance steps of prepare_image, on arrays with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nodescope.data import (
    N_QUANTILES,
    grey_quantiles,
    inpaint_marks,
    mark_mask,
    normalise_intensity,
    scan_region,
    tint_direction,
    untint,
)
from nodescope.errors import BundleError, ConfigError, DataError
from nodescope.models import InputSpec, prepare_image

TINT = np.array([0.85, 0.90, 1.00])  # the bluish B-mode tint measured on BrEaST images


def tinted(grey: np.ndarray, tint: np.ndarray = TINT) -> np.ndarray:
    return np.clip(np.rint(grey[..., None].astype(np.float64) * tint), 0, 255).astype(np.uint8)


def test_untint_recovers_the_grey_levels(rng: np.random.Generator) -> None:
    grey = rng.integers(0, 256, (60, 70), dtype=np.uint8)
    v, off = tint_direction(tinted(grey))
    np.testing.assert_allclose(v / v.max(), TINT, atol=2e-3)
    assert off == 0.0
    back = untint(tinted(grey))
    assert back.shape == (60, 70, 1) and back.dtype == np.uint8
    assert np.abs(back[..., 0].astype(int) - grey).max() <= 1  # rounding of the stored tint only
    # luma would darken the image by 0.299*0.85 + 0.587*0.90 + 0.114 = 0.896
    same = np.repeat(grey[..., None], 3, axis=-1)
    np.testing.assert_array_equal(untint(same)[..., 0], grey)  # plain grey: unchanged
    np.testing.assert_array_equal(untint(grey[..., None]), grey[..., None])  # one channel: as is


def test_untint_leaves_colour_doppler_alone(rng: np.random.Generator) -> None:
    img = tinted(rng.integers(0, 256, (50, 50), dtype=np.uint8))
    img[10:30, 10:30] = (200, 30, 30)  # a red/blue flow box: 16 % of the pixels are colour
    img[30:40, 10:30] = (20, 40, 220)
    out = untint(img)
    assert out is img
    calipers = tinted(rng.integers(0, 256, (50, 50), dtype=np.uint8))
    calipers[20, 20:26] = (255, 255, 0)  # small yellow marks (< 2 %): still a tinted grey image
    assert untint(calipers).shape == (50, 50, 1)
    with pytest.raises(ConfigError, match="max_off"):
        untint(img, max_off=2)
    with pytest.raises(DataError, match="uint8"):
        untint(img.astype(np.float32))


def test_normalise_intensity_known_values(rng: np.random.Generator) -> None:
    ramp = np.tile(np.arange(50, 151, dtype=np.uint8), (10, 1))[..., None]  # values 50..150
    out = normalise_intensity(ramp, "percentile", low=0, high=100)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255 and out[0, 40, 0] == 102  # (90 - 50) * 255 / 100
    np.testing.assert_array_equal(normalise_intensity(ramp, "none"), ramp)
    flat = np.full((5, 5, 1), 7, np.uint8)
    np.testing.assert_array_equal(normalise_intensity(flat, "percentile"), flat)
    dim = rng.integers(20, 60, (64, 64, 1), dtype=np.uint8)
    eq = normalise_intensity(dim, "clahe")
    assert eq.shape == dim.shape and eq.dtype == np.uint8 and eq.std() > 2 * dim.std()
    rgb = normalise_intensity(np.repeat(dim, 3, axis=-1), "clahe")
    assert rgb.shape == (64, 64, 3)
    with pytest.raises(ConfigError, match="intensity"):
        normalise_intensity(dim, "zscore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="percentiles"):
        normalise_intensity(dim, "percentile", low=90, high=10)


def test_histogram_matching_recovers_a_gain_change(rng: np.random.Generator) -> None:
    grey = rng.integers(0, 200, (60, 60), dtype=np.uint8)[..., None]
    ref = grey_quantiles(grey)
    assert ref.shape == (N_QUANTILES,) and ref[0] == grey.min() and ref[-1] == grey.max()
    other = np.clip(np.rint(grey * 0.6 + 40), 0, 255).astype(np.uint8)  # another scanner's gain and offset
    back = normalise_intensity(other, "match", reference=ref)
    assert np.abs(back.astype(int) - grey).max() <= 2  # the map undoes the linear change up to rounding
    np.testing.assert_array_equal(normalise_intensity(grey, "match", reference=ref), grey)  # own reference: as is
    with pytest.raises(ConfigError, match="reference"):
        normalise_intensity(grey, "match")
    with pytest.raises(ConfigError, match="non-decreasing"):
        normalise_intensity(grey, "match", reference=ref[::-1])


def test_prepare_image_appearance_steps(rng: np.random.Generator) -> None:
    img = np.zeros((120, 160, 3), np.uint8)
    grey = rng.integers(40, 200, (80, 100), dtype=np.uint8)
    img[20:100, 30:130] = tinted(grey)
    img[5:10, 10:150:3] = 255  # title text
    for row in range(25, 95, 10):  # ruler, 10 px away from the scan
        img[row : row + 2, 14:20] = 250
    assert scan_region(img) == (20, 30, 100, 130)
    x, tr = prepare_image(img, size=40, channels=3, scan_crop=True, grey="tint", intensity="percentile")
    assert tr.crop == (20, 30, 100, 130)
    expect, _ = prepare_image(normalise_intensity(untint(img[20:100, 30:130]), "percentile"), size=40, channels=3)
    torch.testing.assert_close(x, expect)
    assert torch.equal(x[0], x[2])  # grey again: the tint is gone
    # with a mask, the ROI is the mask's box inside the scan region, in original coordinates
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[40:60, 50:90] = 1
    _, tr = prepare_image(img, size=40, mask=mask, roi_margin=0, scan_crop=True)
    assert tr.crop == (40, 50, 60, 90)
    with pytest.raises(ConfigError, match="grey"):
        prepare_image(img, size=40, grey="luma")  # type: ignore[arg-type]


def test_input_spec_records_the_steps() -> None:
    base = {"image_size": 32, "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}
    plain = InputSpec.from_dict(base)
    assert (plain.scan_crop, plain.grey, plain.intensity) == (False, "auto", "none")
    assert not {"scan_crop", "grey", "intensity", "marks"} & set(plain.to_dict())  # old bundles stay byte-identical
    spec = InputSpec.from_dict({**base, "scan_crop": True, "grey": "tint", "intensity": "clahe", "marks": "inpaint"})
    d = json.loads(json.dumps(spec.to_dict()))
    assert d["scan_crop"] is True and d["grey"] == "tint" and d["intensity"] == "clahe" and d["marks"] == "inpaint"
    assert InputSpec.from_dict(d) == spec
    with pytest.raises(BundleError, match=r"input\.intensity"):
        InputSpec.from_dict({**base, "intensity": "zscore"})
    ref = [float(v) for v in range(101)]
    matched = InputSpec.from_dict({**base, "intensity": "match", "intensity_reference": ref})
    assert matched.to_dict()["intensity_reference"] == ref and InputSpec.from_dict(matched.to_dict()) == matched
    with pytest.raises(BundleError, match="intensity_reference"):
        InputSpec.from_dict({**base, "intensity": "match"})  # a match without its reference
    with pytest.raises(BundleError, match="intensity_reference"):
        InputSpec.from_dict({**base, "intensity": "match", "intensity_reference": ref[::-1]})
    with pytest.raises(BundleError, match=r"input\.scan_crop"):
        InputSpec.from_dict({**base, "scan_crop": "yes"})


def caliper_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smooth speckle-like tissue (tinted) with two white caliper crosses, a yellow dotted line and white text."""
    from scipy import ndimage

    tissue = ndimage.gaussian_filter(rng.normal(100, 40, (80, 100)), 1.0).clip(20, 170).astype(np.uint8)
    img = tinted(tissue)
    marks = np.zeros((80, 100), bool)
    for r, c in ((20, 25), (55, 70)):  # caliper crosses: 1-px lines, arms of 4 px
        marks[r, c - 4 : c + 5] = True
        marks[r - 4 : r + 5, c] = True
    img[marks] = 255
    line = np.zeros_like(marks)
    for k in range(1, 11):  # dotted measurement line in yellow
        line[20 + 35 * k // 11, 25 + 45 * k // 11] = True
    img[line] = (255, 230, 0)
    img[70:73, 5:30:3] = 250  # text strokes
    return img, tissue


def test_mark_mask_and_inpainting_known_marks(rng: np.random.Generator) -> None:
    from scipy import ndimage

    img, tissue = caliper_image(rng)
    truth = (img.max(axis=-1) >= 250) | (img.max(axis=-1).astype(int) - img.min(axis=-1) > 100)
    found = mark_mask(img)
    assert found[truth].all()  # every mark pixel found
    near = ndimage.binary_dilation(truth, structure=np.ones((5, 5), bool))
    assert not found[~near].any()  # and nothing away from them (the mask is dilated by 1 px)
    assert not mark_mask(tinted(tissue)).any()  # tissue alone: no mark
    out = inpaint_marks(img)
    np.testing.assert_array_equal(out[~found], img[~found])  # nothing outside the marks changes
    grey_out = untint(out)[..., 0].astype(int)
    # the filled marks are tissue-like again: within the tissue's range and close to the unmarked image there
    assert grey_out[truth].max() <= 200 and np.abs(grey_out[truth] - tissue[truth]).mean() < 30
    doppler = img.copy()
    doppler[30:50, 30:60] = (220, 20, 20)  # colour flow (7.5 % of pixels): colour is signal, not a mark
    assert not mark_mask(doppler)[35:45, 35:55].any()
    x, _ = prepare_image(img, size=40, marks="inpaint", grey="tint")
    y, _ = prepare_image(out, size=40, grey="tint")
    torch.testing.assert_close(x, y)


def test_black_image_error_names_the_file(tmp_path: Path) -> None:
    from PIL import Image

    from nodescope.training import preload_images

    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(DataError, match=r"black\.png: crop_scan_region: the image is entirely black"):
        preload_images([tmp_path / "black.png"], size=16, scan_crop=True)
    assert preload_images([tmp_path / "black.png"], size=16).images.shape == (1, 3, 16, 16)
