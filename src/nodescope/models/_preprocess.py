"""The one path from decoded pixels to what a model sees, with its geometry.

Steps, in order: optional crop to the scan region (``scan_crop``: UI, text, rulers and colour bars cut away by
:func:`nodescope.data.scan_region`); optional crop to the mask's bounding box plus a margin (``roi="mask"``; the box
of the mask inside the scan region); 16-bit pixels to 8 bits (below); optional inpainting of caliper and annotation marks (``marks="inpaint"``); optional tint removal (``grey="tint"``,
:func:`nodescope.data.untint`: a colour-tinted grey image becomes grey, colour Doppler is left alone); optional
intensity normalisation (``intensity``, :func:`nodescope.data.normalise_intensity`); channel conversion (grey
repeated to 3 channels, colour to grey by ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B); 16-bit pixels mapped to
8 bits by ``round(min(v, top) * 255 / top)`` over the file's declared range, no per-image stretching (see
:data:`UINT16_RULE`); zero-padding to a centred square (the aspect ratio, hence the anatomy, is kept); bilinear
resize with antialiasing to ``size x size``. Each call also returns the :class:`~nodescope.data.ImageTransform` of
those steps, so a mask or heat map on the model's grid maps back onto the original pixels
(``transform.inverse(...)``). Training, prediction, pretraining and every later stage use this path, through
:meth:`nodescope.models.InputSpec.prepare`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from nodescope.data import ImageTransform, roi_box_from_mask, scan_region
from nodescope.data._appearance import (
    GreyRule,
    IntensityRule,
    MarksRule,
    inpaint_marks,
    normalise_intensity,
    untint,
)
from nodescope.errors import BundleError, ConfigError, DataError

__all__ = ["UINT16_RULE", "RoiMode", "Uint16Rule", "cleaned_pixels", "context_box", "mask_box", "prepare_image",
           "prepare_mask", "prepare_two_view", "require_lesion", "stored_bits"]

log = logging.getLogger(__name__)

RoiMode = Literal["none", "mask", "two-view"]
Uint16Rule = Literal["bits_stored", "full_range"]

#: How uint16 pixels become 8 bits; recorded as ``input.uint16`` in model.json so prediction does the same.
#: ``bits_stored``: ``top = 2**BitsStored - 1`` for DICOM (a 12-bit image spans 0..4095), ``top = 65535`` for 16-bit
#: PNG/TIFF, which carry no such information (their full 16-bit range is assumed). Bundles without the key were
#: trained with ``full_range`` (``top = 65535`` for every file, i.e. the former ``v / 257``).
UINT16_RULE: Uint16Rule = "bits_stored"


def stored_bits(meta: dict, rule: str = UINT16_RULE) -> int | None:
    """The ``bits_stored`` argument of :func:`prepare_image` for an image whose ``read_image`` meta is ``meta``.

    ``rule`` is a bundle's ``input.uint16`` (``bits_stored`` or the legacy ``full_range``, which ignores it).
    """
    if rule == "full_range":
        return None
    if rule != "bits_stored":
        raise BundleError(f"input.uint16: unknown rule {rule!r}; expected 'bits_stored' or 'full_range'")
    b = meta.get("bits_stored")
    return int(b) if b is not None else None


def mask_box(mask: np.ndarray, margin: float = 0.1) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, left, bottom, right)`` (exclusive ends) of ``mask > 0`` grown by ``margin`` x its side.

    The box rule is :func:`nodescope.data.roi_box_from_mask`'s; this wrapper also takes multi-channel masks and
    returns None for an empty mask (the caller decides what an empty mask means).
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=-1)
    if not m.any():
        return None
    return roi_box_from_mask(m, margin=margin)


def _to_uint8(arr: np.ndarray, bits_stored: int | None) -> np.ndarray:
    if arr.dtype == np.uint16:
        bits = 16 if bits_stored is None else int(bits_stored)
        if not 1 <= bits <= 16:
            raise DataError(f"bits_stored: expected 1..16 for uint16 pixels, got {bits_stored!r}")
        top = float((1 << bits) - 1)
        return (np.minimum(arr.astype(np.float32), top) * (255.0 / top)).round().astype(np.uint8)
    if arr.dtype != np.uint8:
        raise TypeError(f"pixels: expected uint8 or uint16, got {arr.dtype}")
    return arr


def _square_resize(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int], float]:
    """``(C, h, w)`` float -> zero-padded centred square -> ``(C, size, size)``; returns the padding and scale."""
    _c, h, w = x.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    if h != w:
        x = F.pad(x, (left, side - w - left, top, side - h - top))
    if side != size:
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return x, (top, left), size / side


def _geometry(in_shape: tuple[int, int], box: tuple[int, int, int, int], pad: tuple[int, int], scale: float,
              size: int) -> ImageTransform:
    return ImageTransform(in_shape=in_shape, crop=box, scale=(scale, scale),
                          offset=(pad[0] * scale, pad[1] * scale), out_shape=(size, size))


def cleaned_pixels(pixels: np.ndarray, *, mask: np.ndarray | None = None, roi_margin: float = 0.1,
                   bits_stored: int | None = None, scan_crop: bool = False, grey: GreyRule = "auto",
                   marks: MarksRule = "keep") -> tuple[np.ndarray, tuple[int, int, int, int], tuple[int, int]]:
    """The first steps of :func:`prepare_image`: crops (scan region, mask ROI), 8 bits, marks, tint.

    Returns the ``(h, w, C)`` uint8 image before intensity normalisation, its crop box in the original pixels and
    the original ``(H, W)``; histogram-matching references are computed from these images.
    """
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"pixels: expected (H, W, C) with C in 1, 3, 4; got shape {arr.shape}")
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    in_shape = (int(arr.shape[0]), int(arr.shape[1]))
    if mask is not None and mask.shape[:2] != arr.shape[:2]:
        raise DataError(f"mask: size {mask.shape[:2]} differs from image size {arr.shape[:2]}")
    box = scan_region(arr) if scan_crop else (0, 0, *in_shape)
    arr = arr[box[0]:box[2], box[1]:box[3]]
    if mask is not None:
        found = mask_box(mask[box[0]:box[2], box[1]:box[3]], roi_margin)
        if found is None:
            log.warning("empty mask: the whole image is used")
        else:
            arr = arr[found[0]:found[2], found[1]:found[3]]
            box = (box[0] + found[0], box[1] + found[1], box[0] + found[2], box[1] + found[3])
    arr = _to_uint8(arr, bits_stored)
    if marks == "inpaint":
        arr = inpaint_marks(arr)
    elif marks != "keep":
        raise ConfigError(f"marks: expected 'keep' or 'inpaint', got {marks!r}")
    if grey == "tint":
        arr = untint(arr)
    elif grey != "auto":
        raise ConfigError(f"grey: expected 'auto' or 'tint', got {grey!r}")
    return arr, box, in_shape


def prepare_image(pixels: np.ndarray, *, size: int, channels: int = 3, mask: np.ndarray | None = None,
                  roi_margin: float = 0.1, bits_stored: int | None = None, scan_crop: bool = False,
                  grey: GreyRule = "auto", intensity: IntensityRule = "none", marks: MarksRule = "keep",
                  reference: Sequence[float] | None = None) -> tuple[torch.Tensor, ImageTransform]:
    """Decoded pixels -> ``(channels, size, size)`` uint8 tensor and the transform from the original pixels.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(H, W, C)`` or ``(H, W)``, uint8 or uint16, C in {1, 3} (4 = RGBA: alpha dropped).
    size : int
        Output side in pixels.
    channels : {1, 3}
    mask : numpy.ndarray, optional
        ``(H, W)`` or ``(H, W, 1)``, same size as the image; when given the image is cropped to its box first. An empty
        mask leaves the image whole (logged).
    roi_margin : float, default 0.1
        Margin around the mask box as a fraction of the box's height/width.
    bits_stored : int, optional
        Significant bits of uint16 pixels (DICOM BitsStored, see :func:`stored_bits`): values are mapped by
        ``round(min(v, 2**bits_stored - 1) * 255 / (2**bits_stored - 1))``. None (16-bit PNG/TIFF): the full range,
        ``v * 255 / 65535``. Ignored for uint8 pixels.
    scan_crop : bool, default False
        Crop to :func:`nodescope.data.scan_region` first (with a mask, the ROI is the mask's box inside it).
    marks : {"keep", "inpaint"}, default "keep"
        ``"inpaint"``: caliper and annotation marks filled in (:func:`nodescope.data.inpaint_marks`) after the 8-bit
        mapping, before the tint step.
    grey : {"auto", "tint"}, default "auto"
        ``"tint"``: :func:`nodescope.data.untint` after the 8-bit mapping; ``"auto"``: pixels as decoded.
    intensity : {"none", "percentile", "clahe", "match"}, default "none"
        :func:`nodescope.data.normalise_intensity` of the (cropped) image.
    reference : sequence of float, optional
        The histogram-matching reference (101 quantiles) for ``intensity="match"``.

    Returns
    -------
    tensor : torch.Tensor
        ``(channels, size, size)`` uint8.
    transform : ImageTransform
        Crop box, padding and scale: ``transform.inverse(array_on_model_grid)`` draws it back onto ``pixels``.
    """
    if channels not in (1, 3):
        raise ConfigError(f"channels: expected 1 or 3, got {channels!r}")
    arr, box, in_shape = cleaned_pixels(pixels, mask=mask, roi_margin=roi_margin, bits_stored=bits_stored,
                                        scan_crop=scan_crop, grey=grey, marks=marks)
    arr = normalise_intensity(arr, intensity, reference=reference)
    x = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float()  # (C, H, W); copy: arr may be read-only
    if x.shape[0] == 1 and channels == 3:
        x = x.expand(3, -1, -1)
    elif x.shape[0] == 3 and channels == 1:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    x, pad, scale = _square_resize(x, size)
    return x.round().clamp_(0, 255).to(torch.uint8), _geometry(in_shape, box, pad, scale, size)


def prepare_mask(mask: np.ndarray, transform: ImageTransform) -> torch.Tensor:
    """A label mask of the original image on the model's grid: the same crop, padding and resize as its image.

    ``mask`` is ``(H, W)`` or ``(H, W, 1)`` with ``(H, W) == transform.in_shape``; nonzero is foreground. The mask
    is resized as 0/1 floats (bilinear, antialiased, exactly as the image) and thresholded at 0.5, so image and
    mask stay aligned pixel for pixel. Returns ``(1, size, size)`` uint8 in {0, 1}.
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=-1)
    if tuple(m.shape) != tuple(transform.in_shape):
        raise DataError(f"mask: size {m.shape} differs from the image size {transform.in_shape}")
    t, lft, b, r = transform.crop
    x = torch.from_numpy((m[t:b, lft:r] > 0).astype(np.float32))[None]
    x, _pad, _scale = _square_resize(x, transform.out_shape[0])
    return (x >= 0.5).to(torch.uint8)


def require_lesion(mask: np.ndarray, image: object, mask_path: object) -> None:
    """Refuse an empty manual mask for a two-view network (its views are defined by the lesion's box): a
    :class:`~nodescope.errors.DataError` naming the image and its mask file."""
    if not np.asarray(mask).any():
        raise DataError(f"{image}: its mask {mask_path} is empty (no lesion pixel); roi 'two-view' needs the lesion's "
                        "box for both views (give the lesion's mask, or leave the row out)")


def context_box(roi_box: tuple[int, int, int, int], scale: float, bounds: tuple[int, int, int, int]
                ) -> tuple[int, int, int, int]:
    """The context view's box: ``roi_box`` scaled by ``scale`` about its centre, clipped to ``bounds``.

    Boxes are ``(top, left, bottom, right)`` (exclusive ends). The scaled box is ``centre +- scale x half side``
    per axis, widened to whole pixels (``floor`` of the top/left, ``ceil`` of the bottom/right) and clipped to
    ``bounds`` (the image, or its scan region). ``scale=0`` means the whole of ``bounds``; otherwise ``scale >= 1``,
    so the context box always holds ``roi_box`` (when ``roi_box`` lies inside ``bounds``).
    """
    import math

    if scale == 0:
        return tuple(int(v) for v in bounds)  # type: ignore[return-value]
    if not (math.isfinite(scale) and scale >= 1):
        raise ConfigError(f"context_scale: expected 0 (the whole image) or a value >= 1, got {scale!r}")
    t, lft, b, r = roi_box
    cy, cx, hh, hw = (t + b) / 2, (lft + r) / 2, (b - t) * scale / 2, (r - lft) * scale / 2
    bt, bl, bb, br = bounds
    return (max(bt, math.floor(cy - hh + 1e-9)), max(bl, math.floor(cx - hw + 1e-9)),
            min(bb, math.ceil(cy + hh - 1e-9)), min(br, math.ceil(cx + hw - 1e-9)))


def prepare_two_view(pixels: np.ndarray, *, size: int, channels: int = 3, mask: np.ndarray, roi_margin: float = 0.1,
                     context_scale: float = 3.0, bits_stored: int | None = None, scan_crop: bool = False,
                     grey: GreyRule = "auto", intensity: IntensityRule = "none", marks: MarksRule = "keep",
                     reference: Sequence[float] | None = None
                     ) -> tuple[torch.Tensor, tuple[ImageTransform, ImageTransform]]:
    """Two views of one image, stacked on the channel axis: the lesion crop and its surroundings.

    View 1 (the ROI view) is exactly :func:`prepare_image` with ``mask``: the mask's box plus ``roi_margin`` x its
    side (the ``roi="mask"`` input). View 2 (the context view) is the ROI view's box scaled by ``context_scale``
    about its centre and clipped to the image -- to its scan region with ``scan_crop`` -- (:func:`context_box`),
    or that whole image for ``context_scale=0``. Each view goes through the same steps (8 bits, marks, tint,
    intensity normalisation of its own crop, channels, centred zero padding, resize to ``size``). An empty mask
    makes both views the whole image (logged), as :func:`prepare_image` does.

    Returns
    -------
    tensor : torch.Tensor
        ``(2 * channels, size, size)`` uint8: channels ``[0, channels)`` the ROI view, ``[channels, 2 * channels)``
        the context view.
    transforms : tuple of ImageTransform
        ``(roi, context)``: each view's geometry from the original pixels.
    """
    steps = {"size": size, "channels": channels, "bits_stored": bits_stored, "grey": grey, "intensity": intensity,
             "marks": marks, "reference": reference}
    roi, roi_tr = prepare_image(pixels, mask=mask, roi_margin=roi_margin, scan_crop=scan_crop, **steps)
    h, w = roi_tr.in_shape
    bounds = (0, 0, h, w)
    if scan_crop:
        arr = np.asarray(pixels)
        arr = arr[..., None] if arr.ndim == 2 else arr[..., :3]  # as cleaned_pixels gives it to scan_region
        bounds = scan_region(arr)
    box = context_box(roi_tr.crop, float(context_scale), bounds)
    rect = np.zeros((h, w), dtype=bool)
    rect[box[0]:box[2], box[1]:box[3]] = True
    # the box is already inside the scan region: cropping to the rectangle is the scan crop and the context crop
    ctx, ctx_tr = prepare_image(pixels, mask=rect, roi_margin=0.0, scan_crop=False, **steps)
    return torch.cat([roi, ctx]), (roi_tr, ctx_tr)
