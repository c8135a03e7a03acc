"""Appearance steps that make images from different scanners look alike: tint removal and intensity normalisation.

Each is an input option recorded in a bundle's ``input`` block (:class:`nodescope.models.InputSpec`: ``grey``,
``intensity``), so prediction repeats exactly what training did; ``marks``: caliper and annotation marks inpainted. All work on ``(H, W, C)`` uint8 arrays
(``C`` in {1, 3}) and return uint8 arrays.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from nodescope.errors import ConfigError, DataError

__all__ = ["N_QUANTILES", "GreyRule", "IntensityRule", "MarksRule", "grey_quantiles", "inpaint_marks", "mark_mask",
           "normalise_intensity", "tint_direction", "untint"]

GreyRule = Literal["auto", "tint"]
IntensityRule = Literal["none", "percentile", "clahe", "match"]

#: Quantile levels of a histogram-matching reference: 0, 1, ..., 100 %.
N_QUANTILES = 101
MarksRule = Literal["keep", "inpaint"]


def _check_uint8(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise DataError(f"expected a (H, W, 1) or (H, W, 3) uint8 image, got {arr.dtype} of shape {arr.shape}")
    return arr


def tint_direction(img: np.ndarray) -> tuple[np.ndarray, float]:
    """The dominant colour direction of an RGB image and the fraction of pixels off it.

    The direction ``v`` (unit, non-negative) is the leading eigenvector of ``X^T X`` over the pixels ``X (N, 3)``
    -- the uncentred first principal axis, i.e. the colour a tinted grey image is made of, ``x = g * k``. A pixel
    is *off* the direction when its residual ``|x - (x . v) v|`` exceeds 8 grey levels.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W, 3)`` uint8.

    Returns
    -------
    v : numpy.ndarray
        ``(3,)`` unit vector.
    off : float
        Fraction of pixels more than 8 grey levels from the line through 0 along ``v``.
    """
    arr = _check_uint8(img)
    if arr.shape[-1] != 3:
        raise DataError(f"tint_direction needs an RGB image, got shape {arr.shape}")
    x = arr.reshape(-1, 3).astype(np.float64)
    _w, vecs = np.linalg.eigh(x.T @ x)
    v = np.abs(vecs[:, -1])
    if not np.any(v > 0):  # an all-black image
        return np.full(3, 1 / np.sqrt(3)), 0.0
    res = x - np.outer(x @ v, v)
    return v, float((np.einsum("ij,ij->i", res, res) > 64.0).mean())


def untint(img: np.ndarray, *, max_off: float = 0.02) -> np.ndarray:
    """Tint-robust grey conversion: a colour-tinted grey image -> its grey levels; real colour left alone.

    A tinted B-mode image stores ``x = g * k`` with one colour ``k`` (e.g. ``(0.85, 0.90, 1.00)`` for the bluish
    tint of many BrEaST images); luma would darken it by ``0.299 k_R + 0.587 k_G + 0.114 k_B``. With ``v`` from
    :func:`tint_direction` and ``k = v / max(v)``, the grey level is ``g = (x . v) / |k|``, exact for a pure tint
    (``k = (1, 1, 1)`` gives back a grey image unchanged). Images with real colour content -- colour Doppler,
    elastography: more than ``max_off`` of the pixels off the dominant direction -- are returned unchanged, so a
    colour modality is never turned grey; small colour marks (calipers, text) below that fraction are projected
    like the rest.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W, C)`` uint8, ``C`` in {1, 3}; one channel is returned as is.
    max_off : float, default 0.02
        Largest fraction of off-direction pixels for the image to count as tinted grey.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 1)`` uint8 for a tinted grey image, otherwise ``img`` itself.
    """
    arr = _check_uint8(img)
    if not 0 <= max_off < 1:
        raise ConfigError(f"max_off must be in [0, 1), got {max_off}")
    if arr.shape[-1] == 1:
        return arr
    v, off = tint_direction(arr)
    if off > max_off:
        return arr
    k = v / v.max()
    g = arr.astype(np.float64) @ v / np.linalg.norm(k)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)[..., None]


def _percentile(arr: np.ndarray, lo_q: float, hi_q: float) -> np.ndarray:
    level = arr.max(axis=-1)
    lo, hi = np.percentile(level, [lo_q, hi_q])
    if hi <= lo:
        return arr
    out = (arr.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _clahe(arr: np.ndarray, clip_limit: float, tiles: int) -> np.ndarray:
    cv2: Any = _cv2()
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles), int(tiles)))
    if arr.shape[-1] == 1:
        return clahe.apply(np.ascontiguousarray(arr[..., 0]))[..., None]
    lab = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2LAB)
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def grey_quantiles(img: np.ndarray) -> np.ndarray:
    """The 0, 1, ..., 100 % quantiles of an image's grey levels (per-pixel channel maximum), float64 ``(101,)``."""
    arr = _check_uint8(img)
    return np.percentile(arr.max(axis=-1), np.linspace(0, 100, N_QUANTILES))


def _match(arr: np.ndarray, reference: np.ndarray) -> np.ndarray:
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != (N_QUANTILES,) or not np.all(np.isfinite(ref)) or np.any(np.diff(ref) < 0):
        raise ConfigError(f"intensity 'match': the reference must be {N_QUANTILES} non-decreasing quantiles, got "
                          f"shape {ref.shape}")
    src = grey_quantiles(arr)
    src = np.maximum.accumulate(src) + np.arange(N_QUANTILES) * 1e-6  # strictly increasing for np.interp
    out = np.interp(arr.astype(np.float64), src, ref)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def normalise_intensity(img: np.ndarray, rule: IntensityRule, *, low: float = 1.0, high: float = 99.0,
                        clip_limit: float = 2.0, tiles: int = 8, reference: Any = None) -> np.ndarray:
    """Per-image intensity normalisation, so gain and dynamic-range settings of other scanners matter less.

    - ``"none"``: unchanged.
    - ``"percentile"``: linear stretch ``255 * (x - p_low) / (p_high - p_low)``, clipped to 0..255, with the
      percentiles of the per-pixel channel maximum (all channels share one map, so colours keep their hue); an
      image with ``p_high <= p_low`` (flat) is unchanged.
    - ``"clahe"``: contrast-limited adaptive histogram equalisation (OpenCV ``createCLAHE``, ``clip_limit``,
      ``tiles x tiles`` grid) of a grey image, or of the L channel (CIE L*a*b*) of a colour image.
    - ``"match"``: histogram matching to ``reference`` (the 101 quantiles 0..100 % of the training images' grey
      levels, recorded in the bundle): the image's own quantiles are mapped piecewise-linearly onto the reference
      ones, the same map for every channel.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W, C)`` uint8, ``C`` in {1, 3}.
    rule : {"none", "percentile", "clahe", "match"}
    reference : sequence of float, optional
        Required for ``"match"``: ``N_QUANTILES`` non-decreasing grey levels.
    low, high : float, default 1, 99
        Percentiles of the stretch.
    clip_limit : float, default 2.0
    tiles : int, default 8

    Returns
    -------
    numpy.ndarray
        Same shape, uint8.
    """
    arr = _check_uint8(img)
    if rule == "none":
        return arr
    if rule == "percentile":
        if not 0 <= low < high <= 100:
            raise ConfigError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
        return _percentile(arr, low, high)
    if rule == "clahe":
        return _clahe(arr, clip_limit, tiles)
    if rule == "match":
        if reference is None:
            raise ConfigError("intensity 'match' needs the reference quantiles (recorded in the bundle at training)")
        return _match(arr, reference)
    raise ConfigError(f"intensity: expected 'none', 'percentile', 'clahe' or 'match', got {rule!r}")


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("this step needs OpenCV (the opencv-python-headless package, installed with the explain "
                          "extra); install it or leave the option off") from None
    return cv2


def mark_mask(img: np.ndarray, *, colour_spread: int = 60, contrast: int = 70, min_level: int = 180,
              window: int = 9, max_off: float = 0.02) -> np.ndarray:
    """Pixels of burned-in annotation marks: calipers, measurement lines, text, coloured symbols.

    A pixel is a mark when it is (a) strongly coloured -- channel spread ``max - min > colour_spread`` -- in an image
    whose colour is otherwise a tint of grey (:func:`tint_direction` off-fraction <= ``max_off``; in colour Doppler
    or elastography images colour is signal, so rule (a) is skipped), or (b) a thin bright structure: brighter than
    ``min_level`` and more than ``contrast`` grey levels above the median of its ``window x window`` neighbourhood
    (OpenCV ``medianBlur``, odd ``window``, replicated border)
    (a white top-hat against speckle, whose bright grains are far less above their local median). The mask is
    dilated by one pixel to cover anti-aliased edges.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W, C)`` uint8, ``C`` in {1, 3}.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` bool.
    """
    from scipy import ndimage

    arr = _check_uint8(img)
    if int(window) < 3 or int(window) % 2 == 0:
        raise ConfigError(f"window must be an odd number of pixels >= 3, got {window}")
    level = arr.max(axis=-1)
    marks = np.zeros(level.shape, bool)
    if arr.shape[-1] == 3:
        spread = level.astype(np.int16) - arr.min(axis=-1).astype(np.int16)
        if tint_direction(arr)[1] <= max_off:
            marks |= spread > colour_spread
    local = _cv2().medianBlur(np.ascontiguousarray(level), int(window))  # OpenCV: ~50x faster than scipy here
    marks |= (level >= min_level) & (level.astype(np.int16) - local.astype(np.int16) > contrast)
    return ndimage.binary_dilation(marks, structure=np.ones((3, 3), bool))


def inpaint_marks(img: np.ndarray, *, radius: int = 3) -> np.ndarray:
    """Annotation marks (:func:`mark_mask`) filled in from their surroundings (OpenCV ``inpaint``, Telea 2004).

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W, C)`` uint8, ``C`` in {1, 3}.
    radius : int, default 3
        Inpainting neighbourhood radius in pixels.

    Returns
    -------
    numpy.ndarray
        Same shape; pixels outside the mark mask are unchanged.
    """
    arr = _check_uint8(img)
    mask = mark_mask(arr)
    if not mask.any():
        return arr
    cv2 = _cv2()
    m8 = mask.astype(np.uint8) * 255
    if arr.shape[-1] == 1:
        out = cv2.inpaint(np.ascontiguousarray(arr[..., 0]), m8, int(radius), cv2.INPAINT_TELEA)[..., None]
    else:
        out = cv2.inpaint(np.ascontiguousarray(arr), m8, int(radius), cv2.INPAINT_TELEA)
    out[~mask] = arr[~mask]
    return out
