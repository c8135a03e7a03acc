"""Overlays: an image with the contours of a predicted (and optionally a reference) mask drawn on it."""

from __future__ import annotations

import numpy as np

__all__ = ["PRED_COLOUR", "TRUE_COLOUR", "contour", "overlay_contours"]

#: Colour of the predicted mask's contour (RGB; yellow).
PRED_COLOUR: tuple[int, int, int] = (255, 215, 0)
#: Colour of the reference mask's contour (RGB; green).
TRUE_COLOUR: tuple[int, int, int] = (0, 200, 83)


def _as_mask(mask: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.ndim == 3:
        m = m.max(axis=-1)
    if tuple(m.shape) != shape:
        raise ValueError(f"{name}: expected a mask of the image's size {shape}, got shape {m.shape}")
    return m > 0


def contour(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """The inner boundary of a binary mask, ``width`` pixels thick (``mask & ~erode(mask, width)``)."""
    from scipy import ndimage

    m = np.asarray(mask) > 0
    if not m.any():
        return m
    inner = ndimage.binary_erosion(m, structure=np.ones((3, 3), bool), iterations=max(1, int(width)),
                                   border_value=0)
    return m & ~inner


def _rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    if img.dtype != np.uint8:
        raise TypeError(f"image: expected uint8 (or uint16) pixels, got {img.dtype}")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=-1)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        return np.ascontiguousarray(img[..., :3])
    raise ValueError(f"image: expected (H, W) or (H, W, 3), got shape {img.shape}")


def overlay_contours(image: np.ndarray, pred_mask: np.ndarray, true_mask: np.ndarray | None = None, *,
                     width: int | None = None, pred_colour: tuple[int, int, int] = PRED_COLOUR,
                     true_colour: tuple[int, int, int] = TRUE_COLOUR) -> np.ndarray:
    """The image in RGB with the contour of the predicted mask (yellow) and of the reference mask (green).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)`` uint8 (uint16 is scaled to 8 bits).
    pred_mask : numpy.ndarray
        ``(H, W)``; nonzero = foreground.
    true_mask : numpy.ndarray, optional
        ``(H, W)`` reference mask; its contour is drawn first, so the prediction's stays visible where they meet.
    width : int, optional
        Line width in pixels; default ``max(1, round(min(H, W) / 150))``.
    pred_colour, true_colour : tuple of int

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8; the input is not modified.
    """
    out = _rgb(image).copy()
    shape = (int(out.shape[0]), int(out.shape[1]))
    w = max(1, round(min(shape) / 150)) if width is None else int(width)
    if w < 1:
        raise ValueError(f"width: expected >= 1, got {width!r}")
    if true_mask is not None:
        out[contour(_as_mask(true_mask, shape, "true_mask"), w)] = true_colour
    out[contour(_as_mask(pred_mask, shape, "pred_mask"), w)] = pred_colour
    return out
