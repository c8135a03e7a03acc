"""Image reading for nodescope.

Conventions (every reader in nodescope follows them):

- pixel arrays are numpy, channel-last: ``(H, W, C)`` for one frame and ``(F, H, W, C)`` for a cine clip, ``C`` being 1
  (grey) or 3 (RGB);
- the dtype of the file is kept (``uint8`` or ``uint16``); nothing is rescaled on read;
- the frame axis of a DICOM cine is decided from the header (``NumberOfFrames``, ``SamplesPerPixel``), never guessed
  from the array shape, so a 3-frame grey clip and a 1-frame RGB image cannot be confused;
- every error names the file.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import warnings
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from PIL import Image

from nodescope.data._io_base import (
    ImageInfo,
    ImageReadError,
    ImageSource,
    Source,
    UltrasoundImage,
    as_source,
    check_frame_arg,
    check_pixel_count,
    frame_index,
    max_pixels,
    max_pixels_limit,
)
from nodescope.data._io_dicom import info_dicom, read_dicom
from nodescope.data._io_tiff import info_tiff, read_tiff

__all__ = ["ImageInfo", "ImageReadError", "ImageSource", "UltrasoundImage", "image_info", "max_pixels",
           "max_pixels_limit", "read_image"]

LOGGER = logging.getLogger(__name__)

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
#: Every file suffix :func:`read_image` decodes (lower case); the one list importers and predict scan folders with.
IMAGE_SUFFIXES = RASTER_SUFFIXES + DICOM_SUFFIXES
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Pillow modes that decode to one grey channel without any change of value.
_PIL_GREY = ("L", "I;16", "I;16B", "I;16L", "I;16N", "I")


# --------------------------------------------------------------------------------------------------- dispatch


def _sniff(p: Source) -> str:
    """Return the format of ``p`` from its magic bytes, falling back on the suffix."""
    if not p.is_file():
        raise ImageReadError(f"{p}: file not found")
    try:
        with p.open("rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise ImageReadError(f"{p}: cannot open file ({exc})") from exc
    if len(head) == 0:
        raise ImageReadError(f"{p}: file is empty")
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in _TIFF_MAGICS:
        return "tiff"
    suffix = p.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return "dicom"  # DICOM without preamble; pydicom is asked to force-read it
    if suffix in RASTER_SUFFIXES:
        raise ImageReadError(f"{p}: the content is not a {suffix} image (unrecognised file signature)")
    raise ImageReadError(
        f"{p}: unsupported image format; expected PNG, JPEG, BMP, TIFF or DICOM (suffixes "
        f"{', '.join(RASTER_SUFFIXES + DICOM_SUFFIXES)})"
    )


def read_image(path: ImageSource, *, frame: int | Literal["all"] | None = None, name: str | None = None,
               max_pixels: int | None = None) -> UltrasoundImage:
    """Read one image file into a channel-last array.

    Parameters
    ----------
    path : str, Path, bytes or binary file object
        PNG, JPEG, BMP, TIFF or DICOM file (the format is recognised from the file signature, then the suffix), or
        its content in memory (an upload): the same sniffing, decoding and errors apply.
    frame : int, "all" or None
        For multi-frame files (DICOM cine, multi-page TIFF): the frame index to return (``0 <= frame < frames``),
        ``"all"`` for every frame as ``(F, H, W, C)``, or ``None`` (default) for the first frame.
    name : str, optional
        For in-memory content: the name used in messages and as ``path`` of the result (default: the file object's
        ``name``, else ``<memory>``); its suffix is the fallback format hint, as a file's suffix is.
    max_pixels : int, optional
        Refuse files whose header announces more than this many pixels (width x height x frames), before decoding.
        Default: :func:`max_pixels` (100 megapixels, or ``$NODESCOPE_MAX_PIXELS``, or a :func:`max_pixels_limit`).

    Returns
    -------
    UltrasoundImage
        ``pixels`` is ``(H, W, C)`` (or ``(F, H, W, C)`` with ``frame="all"``), ``uint8`` or ``uint16``, C in {1, 3}.

    Raises
    ------
    ImageReadError
        When the file is missing, cannot be decoded, needs a codec that is not installed, has an unsupported pixel
        layout, ``frame`` is out of range, or it holds more pixels than allowed (a decompression bomb); the message
        names the file.

    Notes
    -----
    - Grey images give ``C = 1``; palette, CMYK and YCbCr images are converted to RGB; an alpha channel is dropped
      (all recorded in ``meta["mode"]``). 1-bit images become ``uint8`` 0/255.
    - DICOM: ``MONOCHROME1`` is inverted (``2**BitsStored - 1 - value``) so that higher means brighter
      (``meta["inverted"] = True``); ``YBR_FULL``/``YBR_FULL_422`` are converted to RGB by pydicom's default decoding
      (``as_rgb=True``, ITU-R BT.601 full-range equations of DICOM PS3.3 C.7.6.3.1.2). Spacing comes from
      ``PixelSpacing`` (mm) when present, else from the largest 2D region of ``SequenceOfUltrasoundRegions`` whose
      units are cm (``PhysicalDeltaY``, ``PhysicalDeltaX`` times 10).
    - Pillow would silently reduce 16-bit colour PNGs to 8 bits; they are refused with an error instead (save them
      as TIFF).
    """
    p = as_source(path, name)
    check_frame_arg(p, frame)
    info = image_info(p)  # header only: the pixel count is checked before anything is decoded
    check_pixel_count(p, info.width, info.height, info.frames, max_pixels)
    fmt = info.format or _sniff(p)
    if fmt == "dicom":
        return read_dicom(p, frame)
    if fmt == "tiff":
        return read_tiff(p, frame)
    return _read_pil(p, fmt, frame)


def image_info(path: ImageSource, *, name: str | None = None) -> ImageInfo:
    """Describe an image from its header, without decoding pixels (for fast manifest checks).

    Parameters
    ----------
    path : str, Path, bytes or binary file object
        Anything :func:`read_image` accepts.
    name : str, optional
        As for :func:`read_image`.

    Returns
    -------
    ImageInfo
        Width, height, channels and dtype as :func:`read_image` would return them, frame count and spacing.

    Raises
    ------
    ImageReadError
        When the file is missing, its header is unreadable or its layout unsupported; the message names the file.
    """
    p = path if isinstance(path, Source) else as_source(path, name)
    fmt = _sniff(p)
    if fmt == "dicom":
        return info_dicom(p)
    if fmt == "tiff":
        return info_tiff(p)
    return _info_pil(p, fmt)


# --------------------------------------------------------------------------------------------------- Pillow


@contextlib.contextmanager
def _pillow_open(p: Source, fmt: str) -> Iterator[Image.Image]:
    """``Image.open`` with Pillow's own bomb check replaced by nodescope's (:func:`check_pixel_count`)."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # read_image checks the header against max_pixels() itself
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p.target)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{p}: refused as a decompression bomb ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    with im:
        yield im


def _png_header(p: Source) -> tuple[int, int]:
    """Return (bit depth, colour type) from a PNG's IHDR chunk."""
    with p.open("rb") as fh:
        head = fh.read(29)
    if len(head) < 29 or head[12:16] != b"IHDR":
        raise ImageReadError(f"{p}: PNG header (IHDR) missing or truncated")
    bit_depth, colour_type = struct.unpack(">BB", head[24:26])
    return bit_depth, colour_type


def _refuse_16bit_colour_png(p: Source, fmt: str) -> None:
    if fmt != "png":
        return
    bit_depth, colour_type = _png_header(p)
    if bit_depth == 16 and colour_type in (2, 6):
        raise ImageReadError(
            f"{p}: 16-bit colour PNG is not supported (Pillow would reduce it to 8 bits); save it as 16-bit TIFF"
        )


def _pil_target(mode: str) -> tuple[int, str]:
    """Channels and dtype :func:`read_image` returns for a Pillow mode."""
    if mode in ("L", "1", "LA", "La"):
        return 1, "uint8"
    if mode.startswith("I;16") or mode == "I":
        return 1, "uint16"
    if mode in ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        return 3, "uint8"
    raise ValueError(f"unsupported Pillow mode {mode!r}")


def _read_pil(p: Source, fmt: str, frame: int | str | None) -> UltrasoundImage:
    _refuse_16bit_colour_png(p, fmt)
    try:
        with _pillow_open(p, fmt) as im:
            n_frames = int(getattr(im, "n_frames", 1))
            if frame != "all":
                im.seek(frame_index(p, n_frames, frame))
                frames = [_pil_to_array(p, im)]
            else:
                frames = []
                for i in range(n_frames):
                    im.seek(i)
                    frames.append(_pil_to_array(p, im))
            mode = frames[0][1]
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{p}: cannot decode {fmt.upper()} image ({exc})") from exc
    arrays = [a for a, _ in frames]
    pixels = np.stack(arrays) if frame == "all" else arrays[0]
    meta: dict[str, Any] = {"format": fmt, "mode": mode, "frames": n_frames}
    meta["frame"] = "all" if frame == "all" else (0 if frame is None else int(frame))
    return UltrasoundImage(pixels=np.ascontiguousarray(pixels), path=p.path, meta=meta)


def _pil_to_array(p: Source, im: Image.Image) -> tuple[np.ndarray, str]:
    im.load()
    mode = im.mode
    if mode in _PIL_GREY:
        arr = np.asarray(im)
        if arr.dtype.kind in "iu" and arr.dtype != np.uint8 and arr.dtype != np.uint16:
            if arr.size and (arr.min() < 0 or arr.max() > 65535):
                raise ImageReadError(f"{p}: {mode} image with values outside 0..65535 is not supported")
            arr = arr.astype(np.uint16)
        elif arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr[..., None], mode
    if mode == "1":
        return np.asarray(im.convert("L"))[..., None], "1->L"
    if mode in ("LA", "La"):
        return np.asarray(im.convert("L"))[..., None], f"{mode}->L"
    if mode == "RGB":
        return np.asarray(im), mode
    try:
        _pil_target(mode)
    except ValueError as exc:
        raise ImageReadError(f"{p}: {exc}; expected grey (L, I;16), RGB, palette, CMYK or YCbCr") from exc
    return np.asarray(im.convert("RGB")), f"{mode}->RGB"


def _info_pil(p: Source, fmt: str) -> ImageInfo:
    _refuse_16bit_colour_png(p, fmt)
    try:
        with _pillow_open(p, fmt) as im:  # lazy: reads the header only
            width, height = im.size
            mode = im.mode
            n_frames = int(getattr(im, "n_frames", 1))
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{p}: cannot read {fmt.upper()} header ({exc})") from exc
    try:
        channels, dtype = _pil_target(mode)
    except ValueError as exc:
        raise ImageReadError(f"{p}: {exc}") from exc
    return ImageInfo(width=width, height=height, channels=channels, frames=n_frames, dtype=dtype, format=fmt)
