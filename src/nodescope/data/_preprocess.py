"""Ultrasound preprocessing on channel-last numpy arrays.

Conventions
-----------
- Images are ``(H, W, C)`` (``C`` in {1, 3}) or ``(H, W)``; every function returns the same number of dimensions
  it received and keeps the dtype.
- A box is ``(top, left, bottom, right)`` in pixels, ``bottom``/``right`` exclusive, so ``img[top:bottom, left:right]``
  is the crop; boxes returned here are always clipped to the image.
- Coordinates mapped by :class:`~nodescope.data.ImageTransform` are continuous ``(row, col)``: pixel ``(i, j)`` covers
  ``[i, i + 1) x [j, j + 1)``, so box corners map with the same formula as points.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from PIL import Image

from nodescope.data._transform import ImageTransform
from nodescope.errors import ConfigError, DataError

__all__ = [
    "COLOUR_MODALITIES",
    "GREY_MODALITIES",
    "Box",
    "crop_roi",
    "resize_pad",
    "roi_box_from_mask",
    "to_model_channels",
]

LOGGER = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
"""``(top, left, bottom, right)``, bottom/right exclusive."""

# every conventional modality name of the manifest (nodescope.data.KNOWN_MODALITIES) is in exactly one of these
GREY_MODALITIES = frozenset({"bmode", "ct", "mri", "mammography"})
COLOUR_MODALITIES = frozenset({"cdfi", "elastography", "swe", "ceus"})

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


def _check_image(img: np.ndarray, name: str = "img") -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(img).__name__}")
    if img.ndim == 3 and img.shape[-1] not in (1, 3):
        raise DataError(f"{name} must be (H, W), (H, W, 1) or (H, W, 3); got shape {img.shape}")
    if img.ndim not in (2, 3):
        raise DataError(f"{name} must be (H, W), (H, W, 1) or (H, W, 3); got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {img.shape})")
    return img


def _grey_level(img: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over channels, as float32 (a colour bar counts as bright)."""
    return (img.max(axis=-1) if img.ndim == 3 else img).astype(np.float32)


def _clip_box(box: tuple[float, float, float, float], shape: tuple[int, ...]) -> Box:
    top, left, bottom, right = box
    h, w = shape[0], shape[1]
    t, lft = max(0, int(np.floor(top))), max(0, int(np.floor(left)))
    b, r = min(h, int(np.ceil(bottom))), min(w, int(np.ceil(right)))
    if b <= t or r <= lft:
        raise DataError(f"box {box} does not overlap the image of shape {shape[:2]}")
    return t, lft, b, r


# --------------------------------------------------------------------------------------------------- ROI


def roi_box_from_mask(
    mask: np.ndarray, *, margin: float = 0.1, empty: Literal["raise", "whole"] = "raise"
) -> Box:
    """Bounding box of a mask's non-zero pixels, widened by a relative margin and clipped to the image.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)`` or ``(H, W, 1)``; any non-zero value is foreground.
    margin : float, default 0.1
        Added on each side as a fraction of the box's own size: ``round(margin * height)`` above and below,
        ``round(margin * width)`` left and right. ``0`` gives the tight box.
    empty : {"raise", "whole"}, default "raise"
        What an all-zero mask gives: a ``ValueError``, or the whole image ``(0, 0, H, W)``.

    Returns
    -------
    tuple of int
        ``(top, left, bottom, right)``, bottom/right exclusive.
    """
    m = _check_image(np.asarray(mask), "mask")
    if m.ndim == 3:
        if m.shape[-1] != 1:
            raise DataError(f"mask must be (H, W) or (H, W, 1); got shape {m.shape}")
        m = m[..., 0]
    if margin < 0:
        raise ConfigError(f"margin must be >= 0 (a fraction of the box size), got {margin}")
    if empty not in ("raise", "whole"):
        raise ConfigError(f"empty must be 'raise' or 'whole', got {empty!r}")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        if empty == "whole":
            return 0, 0, m.shape[0], m.shape[1]
        raise DataError("mask is empty (no non-zero pixel); pass empty='whole' to use the whole image")
    cols = np.flatnonzero(m.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return _expand_box((top, left, bottom, right), margin, m.shape)


def _expand_box(box: Box, margin: float, shape: tuple[int, ...]) -> Box:
    top, left, bottom, right = box
    dy, dx = round(margin * (bottom - top)), round(margin * (right - left))
    return _clip_box((top - dy, left - dx, bottom + dy, right + dx), shape)


def crop_roi(
    img: np.ndarray,
    box_or_mask: np.ndarray | tuple[int, int, int, int] | list[int],
    *,
    margin: float = 0.1,
    empty: Literal["raise", "whole"] = "raise",
) -> tuple[np.ndarray, Box]:
    """Crop a region of interest given by a box or a mask, with a relative margin, clipped to the image.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``.
    box_or_mask : tuple of 4 ints or numpy.ndarray
        A box ``(top, left, bottom, right)`` (bottom/right exclusive) or a mask of the image's height and width.
    margin : float, default 0.1
        Relative margin, as in :func:`roi_box_from_mask` (also applied to a given box; ``0`` crops it as is).
    empty : {"raise", "whole"}, default "raise"
        Policy for an all-zero mask.

    Returns
    -------
    cropped : numpy.ndarray
        The crop (a view of ``img``).
    box : tuple of int
        The box actually used.
    """
    _check_image(img)
    if isinstance(box_or_mask, np.ndarray) and box_or_mask.ndim >= 2:
        if box_or_mask.shape[:2] != img.shape[:2]:
            raise DataError(
                f"mask shape {box_or_mask.shape[:2]} differs from image shape {img.shape[:2]}; they must match"
            )
        box = roi_box_from_mask(box_or_mask, margin=margin, empty=empty)
    else:
        values = list(np.asarray(box_or_mask).ravel())
        if len(values) != 4:
            raise DataError(f"box must be (top, left, bottom, right), got {box_or_mask!r}")
        top, left, bottom, right = (int(v) for v in values)
        if bottom <= top or right <= left:
            raise DataError(f"box {tuple(values)} is empty: need bottom > top and right > left")
        if margin < 0:
            raise ConfigError(f"margin must be >= 0, got {margin}")
        box = _expand_box((top, left, bottom, right), margin, img.shape)
    t, lft, b, r = box
    return img[t:b, lft:r], box


# --------------------------------------------------------------------------------------------------- resize


def _resize(img: np.ndarray, shape: tuple[int, int], resample: str) -> np.ndarray:
    """Resize each channel as 32-bit float with Pillow, then round back to the input dtype."""
    if resample not in _RESAMPLE:
        raise ConfigError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
    if tuple(img.shape[:2]) == tuple(shape):
        return img.copy()
    chans = img[..., None] if img.ndim == 2 else img
    h, w = shape
    out = np.empty((h, w, chans.shape[-1]), dtype=np.float32)
    for c in range(chans.shape[-1]):
        plane = Image.fromarray(np.ascontiguousarray(chans[..., c], dtype=np.float32))  # mode "F"
        out[..., c] = np.asarray(plane.resize((w, h), resample=_RESAMPLE[resample]))
    if img.dtype == np.bool_:
        res = out >= 0.5
    elif np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        res = np.clip(np.rint(out), info.min, info.max).astype(img.dtype)
    else:
        res = out.astype(img.dtype)
    return res[..., 0] if img.ndim == 2 else res


def resize_pad(
    img: np.ndarray,
    size: int | tuple[int, int],
    *,
    pad_value: float = 0,
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos", "box"] = "bilinear",
) -> tuple[np.ndarray, ImageTransform]:
    """Resize keeping the aspect ratio, then pad (centred) to ``size``.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; dtype kept (integers are rounded and clipped).
    size : int or (int, int)
        Output ``(h, w)``; an int means a square.
    pad_value : float, default 0
        Value of the padding.
    resample : {"nearest", "bilinear", "bicubic", "lanczos", "box"}, default "bilinear"
        Pillow filter (antialiased when shrinking); ``"nearest"`` for label masks.

    Returns
    -------
    out : numpy.ndarray
        ``(h, w[, C])``.
    transform : ImageTransform
        ``scale = round(H * s) / H`` with ``s = min(h / H, w / W)``; ``offset`` = the padding
        ``((h - h') // 2, (w - w') // 2)`` before the resized ``(h', w')`` image. ``transform.to_input`` /
        ``inverse`` map results back.
    """
    _check_image(img)
    if isinstance(size, int | np.integer):
        out_h = out_w = int(size)
    else:
        if len(size) != 2:
            raise ConfigError(f"size must be an int or (h, w), got {size!r}")
        out_h, out_w = (int(v) for v in size)
    if out_h <= 0 or out_w <= 0:
        raise ConfigError(f"size must be positive, got {size!r}")
    h, w = img.shape[:2]
    s = min(out_h / h, out_w / w)
    new_h, new_w = max(1, min(out_h, round(h * s))), max(1, min(out_w, round(w * s)))
    resized = _resize(img, (new_h, new_w), resample)
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    out = np.full((out_h, out_w, *img.shape[2:]), pad_value, dtype=img.dtype)
    out[top : top + new_h, left : left + new_w] = resized
    transform = ImageTransform(in_shape=(h, w), crop=(0, 0, h, w), scale=(new_h / h, new_w / w),
                               offset=(float(top), float(left)), out_shape=(out_h, out_w))
    return out, transform


# --------------------------------------------------------------------------------------------------- channels


def _has_colour(img: np.ndarray, tol: float) -> bool:
    if img.ndim != 3 or img.shape[-1] != 3:
        return False
    spread = img.max(axis=-1).astype(np.int64) - img.min(axis=-1).astype(np.int64)
    return bool((spread > tol).any())


def to_model_channels(img: np.ndarray, modality: str | None, *, tol: float | None = None) -> np.ndarray:
    """Give an image the channel count its modality's model expects.

    Policy:

    - colour modalities (``cdfi``, ``elastography``) -> ``(H, W, 3)`` RGB; a grey input is repeated on 3 channels;
    - grey modalities (``bmode``, ``ct``, ``mri``) -> ``(H, W, 1)``; an RGB image with R == G == B (within ``tol``)
      keeps its first channel exactly; an RGB image with real colour content (burned-in colour annotations,
      calipers, a colour box) becomes luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), rounded, and a
      warning is logged, because a grey model must receive one channel;
    - ``modality=None`` -> decided by content: colour content -> 3 channels, otherwise 1.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``.
    modality : str or None
        Manifest ``modality`` value (case-insensitive).
    tol : float or None
        Largest channel spread still counted as grey; default 2 grey levels for 8-bit data (JPEG chroma rounding),
        scaled by ``(max + 1) / 256`` for other integer types, and 1e-6 for floats.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 1)`` or ``(H, W, 3)``, same dtype.

    Raises
    ------
    ValueError
        For a modality that is neither grey nor colour (the message lists both sets).
    """
    _check_image(img)
    arr = img[..., None] if img.ndim == 2 else img
    if tol is None:
        tol = 2.0 * (np.iinfo(arr.dtype).max + 1) / 256 if np.issubdtype(arr.dtype, np.integer) else 1e-6
    key = None if modality is None else str(modality).strip().lower()
    if key is not None and key not in GREY_MODALITIES | COLOUR_MODALITIES:
        raise DataError(
            f"unknown modality {modality!r}; grey modalities: {sorted(GREY_MODALITIES)}, colour modalities: "
            f"{sorted(COLOUR_MODALITIES)} (or None to decide from the pixels)"
        )
    colour = _has_colour(arr, tol)
    want_colour = key in COLOUR_MODALITIES or (key is None and colour)
    if want_colour:
        return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
    if arr.shape[-1] == 1:
        return arr
    if not colour:
        return np.ascontiguousarray(arr[..., :1])
    spread = arr.max(axis=-1).astype(np.int64) - arr.min(axis=-1).astype(np.int64)
    LOGGER.warning(
        "grey modality %r image has colour content (%.2f%% of pixels); converted to luma (BT.601)",
        modality,
        100.0 * float((spread > tol).mean()),
    )
    luma = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        luma = np.clip(np.rint(luma), info.min, info.max)
    return luma.astype(arr.dtype)[..., None]
