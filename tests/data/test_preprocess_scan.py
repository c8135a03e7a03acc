"""scan_region on synthetic screen captures with a known scan box: UI frame, text, ruler, colour bar."""

from __future__ import annotations

import numpy as np
import pytest

from nodescope.data import crop_scan_region, scan_region
from nodescope.errors import DataError

SCAN = (40, 50, 210, 250)  # top, left, bottom, right


def ui_capture(rng: np.random.Generator, *, colour: bool = True) -> np.ndarray:
    """240 x 320 capture: a thin grey UI frame round the screen, a title bar with text, a depth ruler beside the
    scan (ticks 8 px away from it: wider than the growth's
    ``max_gap`` of 5 px at this size; a ruler touching the scan is kept, see docs/data-io.md), a text panel on the right, and the speckled scan itself."""
    img = np.zeros((240, 320, 3), dtype=np.uint8)
    img[:2, :] = img[-2:, :] = 90  # UI frame
    img[:, :2] = img[:, -2:] = 90
    img[8:20, 10:300:3] = 200  # title-bar text: thin strokes
    t, lft, b, r = SCAN
    img[t:b, lft:r] = rng.integers(30, 220, size=(b - t, r - lft, 1), dtype=np.uint8)
    for row in range(t, b, 10):  # depth ruler: 2-px ticks, 8 px left of the scan
        img[row : row + 2, 36:42] = 255
    for row in range(50, 200, 14):  # side-panel text
        img[row : row + 6, 270:300:4] = 240
    if colour:
        img[60:180, 305:312] = (255, 200, 0)  # colour bar
    return img


@pytest.mark.parametrize("colour", [True, False])
def test_scan_region_drops_frame_text_and_ruler(rng: np.random.Generator, colour: bool) -> None:
    img = ui_capture(rng, colour=colour)
    assert scan_region(img) == SCAN
    assert scan_region(img[..., 0]) == SCAN  # grey input, same box
    cropped, box = crop_scan_region(img)
    assert box == SCAN and cropped.shape == (170, 200, 3)


def test_scan_region_options_and_errors(rng: np.random.Generator) -> None:
    img = ui_capture(rng)
    assert scan_region(img, margin=3) == (37, 47, 213, 253)
    with pytest.raises(DataError, match="entirely black"):
        scan_region(np.zeros((30, 30), np.uint8))
