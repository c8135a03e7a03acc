"""Scan-region detection: where the ultrasound image is in a screen capture (no UI, text, rulers or colour bars).

:func:`scan_region` returns the box; :func:`crop_scan_region` returns the crop too. The input option
``scan_crop`` of :class:`nodescope.models.InputSpec` (``nodescope train --scan-crop``) applies it to every image
before any other step, at training and at prediction alike. Boxes follow :mod:`nodescope.data._preprocess`:
``(top, left, bottom, right)``, bottom/right exclusive.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from nodescope.data._preprocess import Box, _check_image, _clip_box, _grey_level
from nodescope.errors import ConfigError, DataError

__all__ = ["crop_scan_region", "scan_region"]


def scan_region(img: np.ndarray, **options: float | int | None) -> Box:
    """The box ``(top, left, bottom, right)`` of the ultrasound scan area in ``img`` (see :func:`crop_scan_region`).

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``.
    **options
        Keyword options of :func:`crop_scan_region` (``threshold``, ``margin``, ...).

    Returns
    -------
    tuple of int
        ``(top, left, bottom, right)``, bottom/right exclusive: ``img[top:bottom, left:right]`` is the scan.
    """
    return crop_scan_region(img, **options)[1]  # type: ignore[arg-type]



def crop_scan_region(
    img: np.ndarray,
    *,
    threshold: float = 0.05,
    close_size: int | None = None,
    open_size: int | None = None,
    border_threshold: float = 0.01,
    min_occupancy: float = 0.01,
    max_gap: int | None = None,
    margin: int = 0,
) -> tuple[np.ndarray, Box]:
    """Crop the ultrasound scan area out of a screen capture.

    Black borders, side panels with text, colour bars and small annotations are dropped; what is kept is the
    bounding box of the largest connected bright region.

    Algorithm:

    1. seed: ``bright = max over channels > threshold * max(img)``; a binary closing with a ``close_size`` square
       joins speckle into solid tissue; a binary opening with an ``open_size`` square cuts thin bridges (caliper
       lines, text touching the scan) and removes text; the bounding box of the largest 4-connected component is the
       seed.
    2. growth: dark parts of the scan (anechoic cysts spanning the width, shadowing, a weak far field) can split
       the bright region, so the box is grown outwards, side by side until stable, over every row (column) of the
       box's span that is not empty -- at least ``min_occupancy`` of its pixels above
       ``border_threshold * max(img)`` -- bridging runs of at most ``max_gap`` empty rows (columns). A true black
       border or the black gap before a side panel is wider than ``max_gap`` and stops the growth.
    3. the box is widened by ``margin`` pixels and clipped to the image.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``.
    threshold : float, default 0.05
        Brightness threshold as a fraction of the image maximum, in ``(0, 1)``.
    close_size, open_size : int or None
        Side of the square structuring elements in pixels; default ``max(3, round(0.01 * min(H, W)))`` and
        ``max(5, round(0.03 * min(H, W)))``. ``0`` skips the step.
    border_threshold : float, default 0.01
        Level, as a fraction of the image maximum, below which a pixel counts as border black during growth.
    min_occupancy : float, default 0.01
        Fraction of a row's (column's) pixels that must be above the border level for it to be part of the scan.
    max_gap : int or None
        Longest run of empty rows/columns bridged during growth; default ``max(2, round(0.02 * min(H, W)))``.
    margin : int, default 0
        Pixels added on every side of the box (clipped to the image).

    Returns
    -------
    cropped : numpy.ndarray
        ``img[top:bottom, left:right]`` (a view).
    box : tuple of int
        ``(top, left, bottom, right)``, bottom/right exclusive; crop masks the same way with :func:`crop_roi`
        (``margin=0``) or by slicing.

    Raises
    ------
    ValueError
        If ``threshold`` is outside ``(0, 1)`` or nothing in the image is brighter than the threshold.
    """
    _check_image(img)
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold must be in (0, 1) (a fraction of the image maximum), got {threshold}")
    if not 0 < border_threshold < 1:
        raise ConfigError(f"border_threshold must be in (0, 1), got {border_threshold}")
    if not 0 <= min_occupancy < 1:
        raise ConfigError(f"min_occupancy must be in [0, 1), got {min_occupancy}")
    if margin < 0:
        raise ConfigError(f"margin must be >= 0 pixels, got {margin}")
    h, w = img.shape[:2]
    grey = _grey_level(img)
    peak = float(grey.max())
    if peak <= 0:
        raise DataError("crop_scan_region: the image is entirely black; no scan region to find")
    bright = grey > threshold * peak
    short = min(h, w)
    k_close = max(3, round(0.01 * short)) if close_size is None else int(close_size)
    k_open = max(5, round(0.03 * short)) if open_size is None else int(open_size)
    if k_close > 0:
        # dilate then erode with the border counted as foreground, so the closing does not eat the image edge
        bright = ndimage.binary_dilation(bright, structure=np.ones((k_close, k_close), bool))
        bright = ndimage.binary_erosion(bright, structure=np.ones((k_close, k_close), bool), border_value=1)
    if k_open > 0:
        opened = ndimage.binary_opening(bright, structure=np.ones((k_open, k_open), bool))
        if opened.any():  # a scan narrower than the opening: keep the closed mask
            bright = opened
    labels, n = ndimage.label(bright)
    if n == 0:
        raise DataError(f"crop_scan_region: no pixel is brighter than {threshold} x the image maximum")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = int(sizes.argmax())
    rows = np.flatnonzero((labels == largest).any(axis=1))
    cols = np.flatnonzero((labels == largest).any(axis=0))
    gap = max(2, round(0.02 * short)) if max_gap is None else int(max_gap)
    seed = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    t, lft, b, r = _grow_box(grey > border_threshold * peak, seed, min_occupancy, gap)
    box = _clip_box((t - margin, lft - margin, b + margin, r + margin), img.shape)
    top, left, bottom, right = box
    return img[top:bottom, left:right], box


def _extent(nonempty: np.ndarray, max_gap: int) -> int:
    """How many leading entries to take: up to the last non-empty one reached with gaps of at most ``max_gap``."""
    idx = np.flatnonzero(nonempty)
    if idx.size == 0:
        return 0
    steps = np.diff(np.concatenate(([-1], idx))) - 1  # empty entries before each non-empty one
    stop = np.flatnonzero(steps > max_gap)
    reached = idx if stop.size == 0 else idx[: stop[0]]
    return int(reached[-1]) + 1 if reached.size else 0


def _grow_box(occupied: np.ndarray, box: Box, min_occupancy: float, max_gap: int) -> Box:
    """Grow ``box`` outwards over non-empty rows/columns of ``occupied`` (bool, H x W) until stable."""
    t, lft, b, r = box
    h, w = occupied.shape
    for _ in range(10):
        before = (t, lft, b, r)
        band = occupied[:, lft:r].mean(axis=1) >= min_occupancy
        b += _extent(band[b:], max_gap)
        t -= _extent(band[:t][::-1], max_gap)
        band = occupied[t:b, :].mean(axis=0) >= min_occupancy
        r += _extent(band[r:], max_gap)
        lft -= _extent(band[:lft][::-1], max_gap)
        if (t, lft, b, r) == before:
            break
    return max(t, 0), max(lft, 0), min(b, h), min(r, w)
