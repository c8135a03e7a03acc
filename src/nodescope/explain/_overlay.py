"""Heat maps drawn over images: colour blending, and the 8-bit display form of an original image."""

from __future__ import annotations

import numpy as np

from nodescope.data import UltrasoundImage

__all__ = ["display_pixels", "overlay_heatmap"]


def display_pixels(image: UltrasoundImage | np.ndarray, *, uint16: str = "bits_stored") -> np.ndarray:
    """An original image as uint8 ``(H, W)`` or ``(H, W, 3)`` for drawing, 16-bit pixels mapped as the model's input.

    Parameters
    ----------
    image : UltrasoundImage or numpy.ndarray
        Decoded pixels (uint8 or uint16; ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or RGBA, whose alpha is dropped).
    uint16 : {"bits_stored", "full_range"}
        A bundle's ``input.uint16`` rule (see :data:`nodescope.models.UINT16_RULE`).
    """
    from nodescope.models._preprocess import _to_uint8, stored_bits

    meta = image.meta if isinstance(image, UltrasoundImage) else {}
    arr = np.asarray(image.pixels if isinstance(image, UltrasoundImage) else image)
    if arr.ndim == 3 and arr.shape[-1] in (1, 4):
        arr = arr[..., 0] if arr.shape[-1] == 1 else arr[..., :3]
    return _to_uint8(arr, stored_bits(dict(meta), uint16))


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45, *,
                    colormap: str = "jet") -> np.ndarray:
    """Blend a heat map's colours over an image.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 ``(H, W)`` grey, ``(H, W, 1)`` or ``(H, W, 3)`` RGB (grey is repeated to three channels).
    heatmap : numpy.ndarray
        ``(H, W)`` values in [0, 1] (e.g. :attr:`CamResult.heatmap`).
    alpha : float, default 0.45
        Weight of the colour: ``out = (1 - alpha) * image + alpha * colormap(heatmap)``.
    colormap : str, default "jet"
        A matplotlib colormap name.

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W, 3)`` RGB.
    """
    import matplotlib

    img = np.asarray(image)
    heat = np.asarray(heatmap, dtype=np.float32)
    if img.dtype != np.uint8:
        raise TypeError(f"image: expected uint8 pixels, got {img.dtype} (use display_pixels for 16-bit images)")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"image: expected (H, W), (H, W, 1) or (H, W, 3), got shape {np.asarray(image).shape}")
    if heat.shape != img.shape[:2]:
        raise ValueError(f"heatmap: shape {heat.shape} differs from the image's {img.shape[:2]}")
    if not np.isfinite(heat).all() or heat.min(initial=0) < 0 or heat.max(initial=0) > 1:
        raise ValueError("heatmap: expected finite values in [0, 1]")
    if not 0 <= float(alpha) <= 1:
        raise ValueError(f"alpha: expected a value in [0, 1], got {alpha!r}")
    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        raise ValueError(f"colormap: unknown matplotlib colormap {colormap!r}") from None
    colour = cmap(heat)[..., :3].astype(np.float32) * 255.0
    out = (1.0 - float(alpha)) * img.astype(np.float32) + float(alpha) * colour
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
