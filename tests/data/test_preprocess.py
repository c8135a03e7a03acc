"""Tests for nodescope.data preprocessing: synthetic arrays with known answers, plus a check on BUSI."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nodescope.data import (
    ImageTransform,
    crop_roi,
    crop_scan_region,
    read_image,
    resize_pad,
    roi_box_from_mask,
    to_model_channels,
)

SCAN = (30, 40, 170, 220)  # top, left, bottom, right of the synthetic scan area


def screen_capture(rng: np.random.Generator) -> np.ndarray:
    """A 200 x 300 RGB 'screen capture': black borders, a speckled scan with a wide anechoic cyst and a dim far
    field, a colour bar and text in a side panel, header text above the scan."""
    img = np.zeros((200, 300, 3), dtype=np.uint8)
    t, lft, b, r = SCAN
    speckle = rng.integers(40, 200, size=(b - t, r - lft), dtype=np.uint8)
    img[t:b, lft:r] = speckle[..., None]
    img[80:120, 45:215] = 0  # anechoic cyst spanning nearly the whole width (5-px tissue rims)
    img[150:170, lft:r] = rng.integers(3, 7, size=(20, r - lft), dtype=np.uint8)[..., None]  # weak far field
    img[40:160, 250:262] = np.stack(
        [np.linspace(255, 0, 120), np.full(120, 60), np.linspace(0, 255, 120)], axis=-1
    ).astype(np.uint8)[:, None, :]  # colour bar
    for row in range(45, 150, 12):  # text glyphs in the side panel
        img[row : row + 5, 270:273] = 230
        img[row : row + 5, 276:279] = 230
    img[5:14, 60:160:4] = 255  # header text: thin strokes
    return img


def test_crop_scan_region_synthetic_capture(rng: np.random.Generator) -> None:
    img = screen_capture(rng)
    cropped, box = crop_scan_region(img)
    assert box == SCAN
    t, lft, b, r = SCAN
    np.testing.assert_array_equal(cropped, img[t:b, lft:r])
    grey_cropped, grey_box = crop_scan_region(img[..., :1])
    assert grey_box == SCAN and grey_cropped.shape == (140, 180, 1)
    _, wide = crop_scan_region(img, margin=5)
    assert wide == (25, 35, 175, 225)
    _, clipped = crop_scan_region(img, margin=100)
    assert clipped == (0, 0, 200, 300)


def test_crop_scan_region_whole_image_and_errors() -> None:
    full = np.full((50, 60), 120, dtype=np.uint8)
    assert crop_scan_region(full)[1] == (0, 0, 50, 60)
    with pytest.raises(ValueError, match="entirely black"):
        crop_scan_region(np.zeros((20, 20), dtype=np.uint8))
    with pytest.raises(ValueError, match="threshold must be in"):
        crop_scan_region(full, threshold=5)
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 4, 5\)"):
        crop_scan_region(np.zeros((2, 3, 4, 5), dtype=np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        crop_scan_region([[1, 2]])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ ROI


def test_roi_box_from_mask_margin_and_clipping() -> None:
    mask = np.zeros((100, 100), dtype=np.uint8)
    mask[10:20, 30:50] = 1
    assert roi_box_from_mask(mask, margin=0) == (10, 30, 20, 50)
    # margin 0.1 of a 10 x 20 box: 1 row above/below, 2 columns left/right
    assert roi_box_from_mask(mask, margin=0.1) == (9, 28, 21, 52)
    assert roi_box_from_mask(mask[..., None], margin=0.1) == (9, 28, 21, 52)
    corner = np.zeros((100, 100), dtype=bool)
    corner[0:10, 90:100] = True
    assert roi_box_from_mask(corner, margin=0.3) == (0, 87, 13, 100)  # 3 px each side, clipped at 0 and 100


def test_empty_mask_policy() -> None:
    empty = np.zeros((30, 40), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"mask is empty.*empty='whole'"):
        roi_box_from_mask(empty)
    assert roi_box_from_mask(empty, empty="whole") == (0, 0, 30, 40)
    img = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40, 1)
    cropped, box = crop_roi(img, empty, empty="whole")
    assert box == (0, 0, 30, 40) and cropped.shape == img.shape
    with pytest.raises(ValueError, match="empty must be"):
        roi_box_from_mask(empty, empty="skip")  # type: ignore[arg-type]


def test_crop_roi_box_and_mask_agree() -> None:
    img = np.arange(60 * 80 * 3, dtype=np.uint16).reshape(60, 80, 3) % 65535
    mask = np.zeros((60, 80), dtype=np.uint8)
    mask[20:40, 10:30] = 255
    by_mask, box_m = crop_roi(img, mask, margin=0.25)
    by_box, box_b = crop_roi(img, (20, 10, 40, 30), margin=0.25)
    assert box_m == box_b == (15, 5, 45, 35)
    np.testing.assert_array_equal(by_mask, img[15:45, 5:35])
    np.testing.assert_array_equal(by_box, by_mask)
    exact, box0 = crop_roi(img, [20, 10, 40, 30], margin=0)
    assert box0 == (20, 10, 40, 30) and exact.shape == (20, 20, 3)


@pytest.mark.parametrize(
    "arg,message",
    [
        (np.zeros((10, 10), dtype=np.uint8), "mask shape"),
        ((5, 5, 5, 9), "box .* is empty"),
        ((1, 2, 3), r"box must be \(top, left, bottom, right\)"),
        ((100, 100, 120, 130), "does not overlap"),
    ],
)
def test_crop_roi_bad_input(arg: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        crop_roi(np.zeros((20, 30), dtype=np.uint8), arg, margin=0)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ resize


def test_resize_pad_square_shapes_padding_and_mapping() -> None:
    img = np.full((100, 200, 3), 7, dtype=np.uint8)
    out, tr = resize_pad(img, 64, pad_value=255)
    # scale = min(64/100, 64/200) = 0.32 -> 32 x 64 image, 16 rows of padding above and below
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert tr == ImageTransform(
        in_shape=(100, 200), crop=(0, 0, 100, 200), scale=(0.32, 0.32), offset=(16.0, 0.0), out_shape=(64, 64)
    )
    assert tr.content_box() == (16, 0, 48, 64)
    assert (out[:16] == 255).all() and (out[48:] == 255).all() and (out[16:48] == 7).all()
    np.testing.assert_allclose(tr.to_output([[0, 0], [100, 200], [50, 100]]), [[16, 0], [48, 64], [32, 32]])
    pts = np.array([[3.5, 17.25], [99.0, 1.0]])
    np.testing.assert_allclose(tr.to_input(tr.to_output(pts)), pts)
    restored = tr.inverse(out)
    assert restored.shape == img.shape
    np.testing.assert_array_equal(restored, img)


def test_resize_pad_rectangular_uint16_grey_and_mask() -> None:
    img = np.full((100, 200), 40000, dtype=np.uint16)
    out, tr = resize_pad(img, (50, 120))
    # scale = min(50/100, 120/200) = 0.5 -> 50 x 100, 10 columns of padding left and right
    assert out.shape == (50, 120) and out.dtype == np.uint16
    assert tr.offset == (0.0, 10.0) and tr.content_box() == (0, 10, 50, 110)
    assert (out[:, :10] == 0).all() and (out[:, 110:] == 0).all() and (out[:, 10:110] == 40000).all()
    mask = np.zeros((90, 60), dtype=np.uint8)
    mask[30:60, 15:45] = 1
    m_out, m_tr = resize_pad(mask, 30, resample="nearest")
    assert set(np.unique(m_out)) == {0, 1}
    # the mask box maps through the transform: rows 30..60 -> 10..20, cols 15..45 -> 5+5..5+15
    assert roi_box_from_mask(m_out, margin=0) == (10, 10, 20, 20)
    np.testing.assert_allclose(m_tr.to_output([[30, 15], [60, 45]]), [[10, 10], [20, 20]])
    back = m_tr.inverse(m_out, resample="nearest")
    assert back.shape == mask.shape and (back == mask).mean() > 0.97


def test_resize_pad_bad_args() -> None:
    img = np.zeros((10, 10), dtype=np.uint8)
    with pytest.raises(ValueError, match="size must be positive"):
        resize_pad(img, 0)
    with pytest.raises(ValueError, match="resample must be one of"):
        resize_pad(img, 5, resample="cubic")  # type: ignore[arg-type]
    _, tr = resize_pad(img, 20)
    with pytest.raises(ValueError, match="output shape"):
        tr.inverse(np.zeros((5, 5)))


# ------------------------------------------------------------------------------------------ channels


def test_to_model_channels_policy(caplog: pytest.LogCaptureFixture) -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    rgb_grey = np.repeat(grey, 3, axis=-1)
    rgb_grey[0, 0, 1] += 1  # JPEG-style rounding difference stays grey
    out = to_model_channels(rgb_grey, "bmode")
    assert out.shape == (3, 4, 1)
    np.testing.assert_array_equal(out, rgb_grey[..., :1])
    assert to_model_channels(grey, "CDFI").shape == (3, 4, 3)
    np.testing.assert_array_equal(to_model_channels(grey[..., 0], "ct"), grey)

    colour = rgb_grey.copy()
    colour[1, 1] = (255, 0, 0)
    assert to_model_channels(colour, "elastography") is colour
    assert to_model_channels(colour, None).shape == (3, 4, 3)
    assert to_model_channels(rgb_grey, None).shape == (3, 4, 1)
    with caplog.at_level(logging.WARNING, logger="nodescope.data._preprocess"):
        luma = to_model_channels(colour, "bmode")
    assert "colour content" in caplog.text
    assert luma.shape == (3, 4, 1) and int(luma[1, 1, 0]) == 76  # 0.299 * 255 = 76.2 (BT.601)
    assert int(luma[2, 3, 0]) == 11


def test_to_model_channels_unknown_modality() -> None:
    with pytest.raises(ValueError, match=r"unknown modality 'doppler'.*bmode.*cdfi"):
        to_model_channels(np.zeros((2, 2, 3), dtype=np.uint8), "doppler")


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.shared_data
def test_busi_scan_crop_keeps_lesion(shared_data: Path) -> None:
    busi = shared_data / "busi"
    labels = pd.read_csv(busi / "labels.csv", dtype=str).set_index("image")
    # benign_188: a cyst spanning the width splits the bright region (regression for the growth step)
    for name in [
        "images/benign_188.png",
        "images/malignant_043.png",
        "images/benign_001.png",
        "images/malignant_156.png",
    ]:
        img = read_image(busi / name).pixels
        mask = read_image(busi / labels.loc[name, "mask"]).pixels[..., 0] > 0
        _, (t, lft, b, r) = crop_scan_region(img)
        assert mask.sum() > 0
        assert mask[t:b, lft:r].sum() == mask.sum(), name


def test_every_known_modality_has_a_channel_policy():
    from nodescope.data import COLOUR_MODALITIES, GREY_MODALITIES, KNOWN_MODALITIES

    assert set(KNOWN_MODALITIES) == GREY_MODALITIES | COLOUR_MODALITIES
    assert not GREY_MODALITIES & COLOUR_MODALITIES
