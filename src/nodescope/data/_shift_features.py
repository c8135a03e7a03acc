"""Per-image descriptors for shift diagnostics: geometry, intensity, speckle, colour, annotation marks, lesion size.

Each function works on one decoded image (``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``, 8-bit) and, for the lesion,
its mask. The descriptors are deliberately simple, so that a reader can tell what a difference between two data sets
means; :mod:`nodescope.data._compare` compares them between sets. Definitions (``grey`` is the BT.601 luma of an RGB
image, or the single channel; levels are 0..255):

- **geometry**: ``height``, ``width``, ``aspect`` (width / height), ``megapixels``, ``spacing_mm`` (pixel spacing
  where known: DICOM, or a manifest column), and ``scan_fraction``: the area of the scan region found by
  :func:`nodescope.data.crop_scan_region` (on a copy subsampled to at most 320 pixels a side) over the image area (screen captures with side panels have small values).
- **intensity** (inside the scan region): ``mean``, ``std``, ``p05``, ``p50``, ``p95`` of grey; ``dark_fraction``
  (grey < 10); a 32-bin histogram for the report.
- **speckle** (inside the scan region, outside the lesion mask and any detected mark): the region is cut into square
  patches of side ``max(8, round(short side / 24))``; patches with mean grey <= 15 (anechoic or border) are dropped,
  and of the rest the *homogeneous* ones are those whose mean lies between the 25th and 75th percentile of patch
  means. Over those, the medians of ``speckle_snr`` = mean / std (1.91 for fully developed speckle of a Rayleigh
  envelope; log compression raises it), ``speckle_var_mean`` = variance / mean (the local variance-to-mean ratio,
  larger for coarser, higher-gain speckle) and ``nakagami_m`` = E[I^2]^2 / Var(I^2), the moment estimator of the
  Nakagami shape (m = 1: Rayleigh; m < 1 pre-Rayleigh, m > 1 post-Rayleigh or smoothed). NaN when no patch is left.
- **colour**: ``colour_fraction`` = share of non-black pixels (max channel > 20) whose channel spread (max - min) is
  above 8 levels (more than JPEG chroma rounding); ``not_grey`` = colour_fraction > 0.001; ``tinted`` =
  colour_fraction >= 0.5 (a colour cast over the whole scan, as in tinted B-mode, rather than overlays);
  ``tint_hue`` = circular mean HSV hue in degrees (0 red, 120 green, 240 blue) of the coloured pixels (NaN if none);
  ``saturated_fraction`` = share of pixels with spread > 60 (pure-colour overlays, calipers, Doppler boxes).
- **annotation marks**: a mark pixel is a pixel of a *thin, high-contrast bright structure* -- white top-hat of grey
  with a 5x5 square ``>= 110`` (drawn marks stand far above their surroundings; bright tissue echoes in BUSI and
  BrEaST reach 60-100) and grey ``>= 150`` -- or a saturated-colour pixel (spread > 60). Mark pixels are grouped into
  8-connected components; a component is a mark when it has at least 6 pixels and its bounding box is at least 4 x 5
  pixels (caliper crosses, characters, body-marker icons; the thin horizontal streaks of bright tissue interfaces and
  isolated speckle grains are left out -- and so is a purely horizontal measuring line). ``marks_in_scan`` = mark pixels inside the scan region per
  1000 scan pixels (calipers, measurement lines, body markers drawn on the image); ``has_marks`` = at least 20 mark
  pixels in the scan region; ``text_outside`` = share of pixels outside the scan region brighter than 100 (text,
  rulers, logos and colour bars in the side panels; 0 when the scan region is the whole image).
- **lesion** (from the mask, NaN without one or for an empty mask): ``lesion_fraction`` = mask area / image area,
  ``lesion_scan_fraction`` = mask area / scan-region area, ``lesion_aspect`` = width / height of the mask's bounding box.

These are heuristics, not validated detectors: a bright calcification or needle can count as a mark, and a faint
grey caliper can be missed. They are meant for *comparing* two sets of images measured the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from nodescope.data._duplicates import as_uint8_pixels
from nodescope.data._scan_region import crop_scan_region
from nodescope.errors import DataError

__all__ = ["ACQUISITION_FEATURES", "FEATURE_GROUPS", "HIST_BINS", "image_descriptors"]

#: Number of bins of the intensity histogram (over 0..255).
HIST_BINS = 32

#: The scalar descriptors by group, in report order. ``has_marks``, ``not_grey`` and ``tinted`` are 0/1.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "geometry": ("height", "width", "aspect", "megapixels", "spacing_mm", "scan_fraction"),
    "intensity": ("mean", "std", "p05", "p50", "p95", "dark_fraction"),
    "speckle": ("speckle_snr", "speckle_var_mean", "nakagami_m"),
    "colour": ("colour_fraction", "not_grey", "tinted", "tint_hue", "saturated_fraction"),
    "annotation": ("marks_in_scan", "has_marks", "text_outside"),
    "lesion": ("lesion_fraction", "lesion_scan_fraction", "lesion_aspect"),
}

#: Descriptors that say nothing about the lesion or the tissue: how the image was acquired, displayed and annotated.
#: A classifier that separates sites or classes on these alone points at a shortcut.
ACQUISITION_FEATURES: tuple[str, ...] = (
    "height", "width", "aspect", "scan_fraction", "colour_fraction", "saturated_fraction", "marks_in_scan",
    "text_outside",
)

_BLACK = 20  # max channel at or below this: black (border, background)
_TINT_SPREAD = 8  # channel spread above JPEG chroma rounding
_SATURATED = 60  # channel spread of pure-colour overlays
_TOPHAT = 110
_MARK_GREY = 150
_MARK_MIN_PIXELS = 6
_MARK_MIN_SPAN = 5
_MARK_MIN_WIDTH = 4
_HAS_MARKS_PIXELS = 20
_TEXT_GREY = 100


def _luma(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        return arr.astype(np.float32)
    f = arr.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def _hue_degrees(rgb: np.ndarray) -> np.ndarray:
    """HSV hue (degrees) of ``(N, 3)`` float RGB rows with max > min."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    d = mx - mn
    h = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4))
    return h * 60.0


def _colour(arr: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Colour descriptors and the saturated-pixel mask."""
    if arr.ndim == 2:
        zero = np.zeros(arr.shape, bool)
        return {"colour_fraction": 0.0, "not_grey": 0.0, "tinted": 0.0, "tint_hue": math.nan,
                "saturated_fraction": 0.0}, zero
    spread = arr.max(axis=-1).astype(np.int16) - arr.min(axis=-1).astype(np.int16)
    lit = arr.max(axis=-1) > _BLACK
    coloured = (spread > _TINT_SPREAD) & lit
    frac = float(coloured.sum() / max(int(lit.sum()), 1))
    hue = math.nan
    if coloured.any():
        h = np.deg2rad(_hue_degrees(arr[coloured].astype(np.float64)))
        hue = float(np.rad2deg(np.arctan2(np.sin(h).mean(), np.cos(h).mean())) % 360.0)
    saturated = spread > _SATURATED
    return {"colour_fraction": frac, "not_grey": float(frac > 0.001), "tinted": float(frac >= 0.5),
            "tint_hue": hue, "saturated_fraction": float(saturated.mean())}, saturated


def _marks(grey: np.ndarray, saturated: np.ndarray) -> np.ndarray:
    """Pixels of thin bright or pure-colour structures, in components large enough to be drawn marks."""
    tophat = grey - ndimage.grey_opening(grey, size=(5, 5))
    cand = ((tophat >= _TOPHAT) & (grey >= _MARK_GREY)) | saturated
    labels, n = ndimage.label(cand, structure=np.ones((3, 3), bool))
    if n == 0:
        return cand
    keep = np.zeros(n + 1, bool)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        spans = sorted((sl[0].stop - sl[0].start, sl[1].stop - sl[1].start))
        keep[i] = spans[0] >= _MARK_MIN_WIDTH and spans[1] >= _MARK_MIN_SPAN
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep &= sizes >= _MARK_MIN_PIXELS
    keep[0] = False
    return keep[labels]


def _speckle(grey: np.ndarray, exclude: np.ndarray) -> dict[str, float]:
    """Median speckle statistics over homogeneous patches of ``grey`` (see the module docstring)."""
    side = max(8, round(min(grey.shape) / 24))
    nr, nc = grey.shape[0] // side, grey.shape[1] // side
    nan = {"speckle_snr": math.nan, "speckle_var_mean": math.nan, "nakagami_m": math.nan}
    if nr == 0 or nc == 0:
        return nan
    tiles = grey[:nr * side, :nc * side].astype(np.float64).reshape(nr, side, nc, side).transpose(0, 2, 1, 3)
    g = tiles.reshape(nr * nc, side * side)
    ex = exclude[:nr * side, :nc * side].reshape(nr, side, nc, side).any(axis=(1, 3)).ravel()
    mean, std = g.mean(axis=1), g.std(axis=1)
    ok = (~ex) & (mean > 15) & (std > 0)
    if ok.sum() < 2:
        return nan
    lo, hi = np.percentile(mean[ok], [25, 75])
    ok &= (mean >= lo) & (mean <= hi)
    if not ok.any():
        return nan
    sq = g[ok] ** 2
    var_sq = sq.var(axis=1)
    m = np.where(var_sq > 0, sq.mean(axis=1) ** 2 / np.where(var_sq > 0, var_sq, 1), np.nan)
    return {"speckle_snr": float(np.median(mean[ok] / std[ok])),
            "speckle_var_mean": float(np.median(std[ok] ** 2 / mean[ok])),
            "nakagami_m": float(np.nanmedian(m)) if np.isfinite(m).any() else math.nan}


def _lesion(mask: np.ndarray | None, shape: tuple[int, int], scan_area: int, name: str) -> dict[str, float]:
    out = {"lesion_fraction": math.nan, "lesion_scan_fraction": math.nan, "lesion_aspect": math.nan}
    if mask is None:
        return out
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != shape:
        raise DataError(f"{name}: the mask is {m.shape[1]}x{m.shape[0]} pixels but the image is {shape[1]}x{shape[0]}")
    m = m > 0
    area = int(m.sum())
    if area == 0:
        return out
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return {"lesion_fraction": area / m.size, "lesion_scan_fraction": area / scan_area,
            "lesion_aspect": (cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1)}


def _scan_box(arr: np.ndarray) -> tuple[int, int, int, int]:
    """The scan region of :func:`crop_scan_region`, found on a copy subsampled to a longer side of at most 320
    pixels (every ``f``-th pixel; the morphology on full-resolution frames is slow) and scaled back; the whole
    frame for an all-black image."""
    h, w = arr.shape[:2]
    f = max(1, math.ceil(max(h, w) / 320))
    try:
        _, (t, lft, b, r) = crop_scan_region(arr[::f, ::f])
    except DataError:  # an all-black image: the whole frame
        return 0, 0, h, w
    return t * f, lft * f, min(h, b * f), min(w, r * f)


def image_descriptors(pixels: np.ndarray, *, mask: np.ndarray | None = None,
                      spacing_mm: float | None = None, name: str = "image") -> tuple[dict[str, float], np.ndarray]:
    """The shift descriptors of one image (definitions in :mod:`nodescope.data._shift_features`).

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``, uint8 (uint16 is mapped to 8 bits over the full range).
    mask : numpy.ndarray, optional
        The lesion mask, ``(H, W)`` or ``(H, W, C)``, non-zero inside.
    spacing_mm : float, optional
        Pixel spacing in millimetres, when known.
    name : str
        Used in error messages (the image's path).

    Returns
    -------
    descriptors : dict of str to float
        Every name of :data:`FEATURE_GROUPS` (NaN where undefined).
    histogram : numpy.ndarray
        ``(HIST_BINS,)`` share of scan-region pixels per grey-level bin (sums to 1).

    Raises
    ------
    DataError
        For pixels that are not an 8/16-bit grey or RGB image, or a mask of another size.
    """
    arr = as_uint8_pixels(pixels, name)
    h, w = arr.shape[:2]
    grey = _luma(arr)
    t, lft, b, r = _scan_box(arr)
    colour, saturated = _colour(arr)
    marks = _marks(grey, saturated)
    inside = np.zeros((h, w), bool)
    inside[t:b, lft:r] = True
    scan_area = int((b - t) * (r - lft))
    scan = grey[t:b, lft:r]
    hist = np.histogram(scan, bins=HIST_BINS, range=(0, 256))[0].astype(np.float64)
    out: dict[str, Any] = {
        "height": float(h), "width": float(w), "aspect": w / h, "megapixels": h * w / 1e6,
        "spacing_mm": math.nan if spacing_mm is None else float(spacing_mm), "scan_fraction": scan_area / (h * w),
        "mean": float(scan.mean()), "std": float(scan.std()),
        **dict(zip(("p05", "p50", "p95"), map(float, np.percentile(scan, [5, 50, 95])), strict=True)),
        "dark_fraction": float((scan < 10).mean()),
    }
    lesion_mask = None if mask is None else np.asarray(mask)
    exclude = marks.copy()
    if lesion_mask is not None and lesion_mask.shape[:2] == (h, w):
        exclude |= (lesion_mask[..., 0] if lesion_mask.ndim == 3 else lesion_mask) > 0
    out.update(_speckle(scan, exclude[t:b, lft:r]))
    out.update(colour)
    n_in = int(marks[inside].sum())
    outside = ~inside
    out.update({"marks_in_scan": 1000.0 * n_in / scan_area, "has_marks": float(n_in >= _HAS_MARKS_PIXELS),
                "text_outside": float((grey[outside] > _TEXT_GREY).mean()) if outside.any() else 0.0})
    out.update(_lesion(lesion_mask, (h, w), scan_area, name))
    return out, hist / hist.sum()
