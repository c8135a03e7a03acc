"""The geometry of preprocessing: where each pixel of a model's input came from in the original image.

Every path from a decoded image to a fixed-size array (the model input of :class:`nodescope.models.InputSpec`,
:func:`nodescope.data.resize_pad`) returns an :class:`ImageTransform`, so that anything computed on the model's grid
-- a predicted mask, a heat map, a box -- can be drawn back onto the original pixels.

Coordinates are continuous ``(row, col)``: pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)`` and its centre is
``(i + 0.5, j + 0.5)``, so box corners and points map with the same formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["ImageTransform"]

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class ImageTransform:
    """An axis-aligned crop, scale and shift from an original image to an output grid.

    ``out = (in - (crop_top, crop_left)) * scale + offset``, per axis, in continuous ``(row, col)`` coordinates.

    Attributes
    ----------
    in_shape : tuple of int
        ``(H, W)`` of the original image.
    crop : tuple of int
        ``(top, left, bottom, right)`` of the region of the original that was kept (bottom/right exclusive); the
        whole image when nothing was cropped.
    scale : tuple of float
        ``(row_scale, col_scale)``: output pixels per original pixel.
    offset : tuple of float
        ``(row, col)`` position of the crop's top-left corner on the output grid (the padding before it, in output
        pixels; fractional when the padding was added before resizing).
    out_shape : tuple of int
        ``(h, w)`` of the output grid.
    """

    in_shape: tuple[int, int]
    crop: Box
    scale: tuple[float, float]
    offset: tuple[float, float]
    out_shape: tuple[int, int]

    # ---------------------------------------------------------------------------------------------- coordinates
    def to_output(self, coords: np.ndarray | list) -> np.ndarray:
        """Map ``(..., 2)`` original ``(row, col)`` coordinates to output coordinates."""
        c = np.asarray(coords, dtype=float)
        return (c - np.asarray(self.crop[:2], float)) * np.asarray(self.scale) + np.asarray(self.offset)

    def to_input(self, coords: np.ndarray | list) -> np.ndarray:
        """Map ``(..., 2)`` output ``(row, col)`` coordinates back to original coordinates."""
        c = np.asarray(coords, dtype=float)
        return (c - np.asarray(self.offset)) / np.asarray(self.scale) + np.asarray(self.crop[:2], float)

    def box_to_input(self, box: Box | tuple[float, float, float, float]) -> Box:
        """A box ``(top, left, bottom, right)`` on the output grid as the smallest pixel box of the original that
        holds it, clipped to the crop."""
        (t, lft), (b, r) = self.to_input([[box[0], box[1]], [box[2], box[3]]])
        ct, cl, cb, cr = self.crop
        return (max(ct, math.floor(t + 1e-9)), max(cl, math.floor(lft + 1e-9)),
                min(cb, math.ceil(b - 1e-9)), min(cr, math.ceil(r - 1e-9)))

    def content_box(self) -> tuple[int, int, int, int]:
        """Output pixels whose centres fall inside the kept region (the rest is padding)."""
        (t, lft), (b, r) = self.to_output([[self.crop[0], self.crop[1]], [self.crop[2], self.crop[3]]])
        top, left = math.ceil(t - 0.5 - 1e-9), math.ceil(lft - 0.5 - 1e-9)
        bottom, right = math.ceil(b - 0.5 - 1e-9), math.ceil(r - 0.5 - 1e-9)
        h, w = self.out_shape
        return max(0, top), max(0, left), min(h, max(bottom, top + 1)), min(w, max(right, left + 1))

    # ---------------------------------------------------------------------------------------------- arrays
    def inverse(self, out: np.ndarray, *, resample: Literal["bilinear", "nearest"] = "bilinear",
                fill: float = 0) -> np.ndarray:
        """Draw an output-grid array (a predicted mask, a heat map) back onto the original image's pixels.

        Each original pixel inside :attr:`crop` takes the value of ``out`` at its centre's output position (bilinear
        or nearest); samples are taken inside the non-padding part of the grid only, so padding never bleeds into
        the edge. Pixels outside the crop get ``fill``.

        Parameters
        ----------
        out : numpy.ndarray
            ``(h, w)`` or ``(h, w, C)`` with ``(h, w) == out_shape``.
        resample : {"bilinear", "nearest"}
            ``nearest`` for label masks.
        fill : float, default 0

        Returns
        -------
        numpy.ndarray
            ``(H, W[, C])`` = :attr:`in_shape`; integer and boolean inputs keep their dtype (bilinear values are
            rounded), floats become float32.
        """
        from scipy import ndimage

        arr = np.asarray(out)
        if tuple(arr.shape[:2]) != tuple(self.out_shape):
            raise ValueError(f"array shape {arr.shape[:2]} differs from the transform's output shape {self.out_shape}")
        if resample not in ("bilinear", "nearest"):
            raise ValueError(f"resample must be 'bilinear' or 'nearest', got {resample!r}")
        ct, cl, cb, cr = self.crop
        rows = (np.arange(ct, cb) + 0.5 - ct) * self.scale[0] + self.offset[0] - 0.5
        cols = (np.arange(cl, cr) + 0.5 - cl) * self.scale[1] + self.offset[1] - 0.5
        t, lft, b, r = self.content_box()
        rows, cols = np.clip(rows, t, b - 1), np.clip(cols, lft, r - 1)
        if resample == "nearest":
            rows, cols = np.floor(rows + 0.5), np.floor(cols + 0.5)
        grid = np.meshgrid(rows, cols, indexing="ij")
        order = 0 if resample == "nearest" else 1
        planes = arr[..., None] if arr.ndim == 2 else arr
        dtype = arr.dtype
        work = planes.astype(np.float32)
        res = np.full((*self.in_shape, planes.shape[-1]), fill, dtype=np.float32)
        for c in range(planes.shape[-1]):
            res[ct:cb, cl:cr, c] = ndimage.map_coordinates(work[..., c], grid, order=order, mode="nearest")
        if dtype == np.bool_:
            out_arr: np.ndarray = res >= 0.5
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            out_arr = np.clip(np.rint(res), info.min, info.max).astype(dtype)
        else:
            out_arr = res
        return out_arr[..., 0] if arr.ndim == 2 else out_arr
