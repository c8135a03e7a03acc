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

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from nodescope.errors import DataError

__all__ = ["ImageInfo", "ImageReadError", "UltrasoundImage", "image_info", "read_image"]

LOGGER = logging.getLogger(__name__)

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
#: Every file suffix :func:`read_image` decodes (lower case); the one list importers and predict scan folders with.
IMAGE_SUFFIXES = RASTER_SUFFIXES + DICOM_SUFFIXES
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Pillow modes that decode to one grey channel without any change of value.
_PIL_GREY = ("L", "I;16", "I;16B", "I;16L", "I;16N", "I")
_CM_TO_MM = 10.0
_US_UNITS_CM = 3  # PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.1)
_US_SPATIAL_2D = 1  # RegionSpatialFormat code for a 2D (tissue or flow) region


class ImageReadError(DataError):
    """An image file is missing, unreadable or of an unsupported kind; the message names the file."""


@dataclass(frozen=True)
class UltrasoundImage:
    """Decoded pixels and what the file says about them.

    Attributes
    ----------
    pixels : numpy.ndarray
        ``(H, W, C)`` for a single frame, ``(F, H, W, C)`` when ``frame="all"`` was requested; ``C`` in {1, 3};
        ``uint8`` or ``uint16``.
    path : Path
        The file read.
    spacing : tuple of float or None
        Physical pixel size ``(row_mm, col_mm)`` when the file records one.
    meta : dict
        Format details: always ``format`` and ``frames`` (number of frames in the file); DICOM adds
        ``photometric_interpretation`` (as stored), ``inverted`` (MONOCHROME1 turned into higher = brighter),
        ``converted_to_rgb``, ``transfer_syntax``, ``bits_stored``, ``frame`` (index returned, or "all"),
        ``spacing_source``.
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


@dataclass(frozen=True)
class ImageInfo:
    """What an image file holds, read from its header only (no pixel decoding).

    Attributes
    ----------
    width, height : int
        Size of one frame in pixels.
    channels : int
        Channels :func:`read_image` will return (1 or 3).
    frames : int
        Number of frames (1 for still images).
    dtype : str
        ``"uint8"`` or ``"uint16"`` (the dtype :func:`read_image` will return).
    spacing : tuple of float or None
        ``(row_mm, col_mm)`` when the file records it.
    format : str
        ``"png"``, ``"jpeg"``, ``"bmp"``, ``"tiff"`` or ``"dicom"``.
    """

    width: int
    height: int
    channels: int
    frames: int
    dtype: str
    spacing: tuple[float, float] | None = None
    format: str = ""


# --------------------------------------------------------------------------------------------------- dispatch


def _sniff(p: Path) -> str:
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


def read_image(path: str | Path, *, frame: int | Literal["all"] | None = None) -> UltrasoundImage:
    """Read one image file into a channel-last array.

    Parameters
    ----------
    path : str or Path
        PNG, JPEG, BMP, TIFF or DICOM file (the format is recognised from the file signature, then the suffix).
    frame : int, "all" or None
        For multi-frame files (DICOM cine, multi-page TIFF): the frame index to return (``0 <= frame < frames``),
        ``"all"`` for every frame as ``(F, H, W, C)``, or ``None`` (default) for the first frame.

    Returns
    -------
    UltrasoundImage
        ``pixels`` is ``(H, W, C)`` (or ``(F, H, W, C)`` with ``frame="all"``), ``uint8`` or ``uint16``, C in {1, 3}.

    Raises
    ------
    ImageReadError
        When the file is missing, cannot be decoded, needs a codec that is not installed, has an unsupported pixel
        layout, or ``frame`` is out of range; the message names the file.

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
    p = Path(path)
    _check_frame_arg(p, frame)
    fmt = _sniff(p)
    if fmt == "dicom":
        return _read_dicom(p, frame)
    if fmt == "tiff":
        return _read_tiff(p, frame)
    return _read_pil(p, fmt, frame)


def image_info(path: str | Path) -> ImageInfo:
    """Describe an image from its header, without decoding pixels (for fast manifest checks).

    Parameters
    ----------
    path : str or Path
        Any file :func:`read_image` accepts.

    Returns
    -------
    ImageInfo
        Width, height, channels and dtype as :func:`read_image` would return them, frame count and spacing.

    Raises
    ------
    ImageReadError
        When the file is missing, its header is unreadable or its layout unsupported; the message names the file.
    """
    p = Path(path)
    fmt = _sniff(p)
    if fmt == "dicom":
        return _info_dicom(p)
    if fmt == "tiff":
        return _info_tiff(p)
    return _info_pil(p, fmt)


def _check_frame_arg(p: Path, frame: object) -> None:
    if frame is None or frame == "all":
        return
    if isinstance(frame, bool) or not isinstance(frame, int | np.integer):
        raise TypeError(f"{p}: frame must be an int, 'all' or None, got {frame!r}")


def _select_frames(p: Path, arr: np.ndarray, n_frames: int, frame: int | str | None) -> np.ndarray:
    """``arr`` is ``(F, H, W, C)``; return one frame ``(H, W, C)`` or all of them."""
    if frame == "all":
        return arr
    idx = _frame_index(p, n_frames, frame)
    return arr[idx]


def _frame_index(p: Path, n_frames: int, frame: int | str | None) -> int:
    idx = 0 if frame is None else int(frame)
    if not 0 <= idx < n_frames:
        raise ImageReadError(
            f"{p}: frame {idx} is out of range; the file has {n_frames} frame(s) (valid: 0..{n_frames - 1} or 'all')"
        )
    return idx


# --------------------------------------------------------------------------------------------------- Pillow


def _png_header(p: Path) -> tuple[int, int]:
    """Return (bit depth, colour type) from a PNG's IHDR chunk."""
    with p.open("rb") as fh:
        head = fh.read(29)
    if len(head) < 29 or head[12:16] != b"IHDR":
        raise ImageReadError(f"{p}: PNG header (IHDR) missing or truncated")
    bit_depth, colour_type = struct.unpack(">BB", head[24:26])
    return bit_depth, colour_type


def _refuse_16bit_colour_png(p: Path, fmt: str) -> None:
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


def _read_pil(p: Path, fmt: str, frame: int | str | None) -> UltrasoundImage:
    _refuse_16bit_colour_png(p, fmt)
    try:
        with Image.open(p) as im:
            n_frames = int(getattr(im, "n_frames", 1))
            if frame != "all":
                im.seek(_frame_index(p, n_frames, frame))
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
    return UltrasoundImage(pixels=np.ascontiguousarray(pixels), path=p, meta=meta)


def _pil_to_array(p: Path, im: Image.Image) -> tuple[np.ndarray, str]:
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


def _info_pil(p: Path, fmt: str) -> ImageInfo:
    _refuse_16bit_colour_png(p, fmt)
    try:
        with Image.open(p) as im:  # lazy: reads the header only
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


# --------------------------------------------------------------------------------------------------- TIFF


def _tiff_layout(p: Path, tf: Any) -> tuple[Any, str, tuple[int, ...], int, int, int, str, str]:
    """Return (series, axes, shape, frames, height, width, channels-note, photometric) of the first series."""
    import tifffile

    if not tf.series:
        raise ImageReadError(f"{p}: TIFF file holds no image")
    series = tf.series[0]
    axes, shape = series.axes, tuple(series.shape)
    if "Y" not in axes or "X" not in axes:
        raise ImageReadError(f"{p}: TIFF axes {axes!r} have no Y/X plane")
    page = series.keyframe
    photometric = tifffile.PHOTOMETRIC(page.photometric).name
    if photometric not in ("MINISBLACK", "MINISWHITE", "RGB"):
        raise ImageReadError(
            f"{p}: TIFF photometric {photometric} is not supported; expected MINISBLACK, MINISWHITE or RGB"
        )
    dtype = np.dtype(series.dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise ImageReadError(f"{p}: TIFF sample type {dtype} is not supported; expected uint8 or uint16")
    samples = shape[axes.index("S")] if "S" in axes else 1
    frames = int(np.prod([n for a, n in zip(axes, shape, strict=True) if a not in "YXS"], dtype=np.int64))
    if photometric == "RGB" and samples < 3:
        raise ImageReadError(f"{p}: RGB TIFF with {samples} sample(s) per pixel")
    return (
        series,
        axes,
        shape,
        frames,
        shape[axes.index("Y")],
        shape[axes.index("X")],
        photometric,
        str(dtype),
    )


def _read_tiff(p: Path, frame: int | str | None) -> UltrasoundImage:
    import tifffile

    try:
        with tifffile.TiffFile(p) as tf:
            series, axes, _, n_frames, _, _, photometric, _ = _tiff_layout(p, tf)
            arr = series.asarray()
    except ImageReadError:
        raise
    # tifffile raises many kinds (TiffFileError, ValueError, struct.error, codec errors)
    except Exception as exc:
        raise ImageReadError(f"{p}: cannot decode TIFF image ({exc})") from exc
    # Move to (frames..., Y, X, S) then flatten the frame axes.
    order = [i for i, a in enumerate(axes) if a not in "YXS"] + [axes.index("Y"), axes.index("X")]
    if "S" in axes:
        order.append(axes.index("S"))
    arr = np.transpose(arr, order)
    if "S" not in axes:
        arr = arr[..., None]
    arr = arr.reshape((n_frames, *arr.shape[-3:]))
    mode = photometric
    if photometric == "RGB" and arr.shape[-1] > 3:
        arr = arr[..., :3]
        mode = "RGB+extra->RGB"
    elif photometric != "RGB" and arr.shape[-1] > 1:
        arr = arr[..., :1]
        mode = f"{photometric}+extra->grey"
    inverted = photometric == "MINISWHITE"
    if inverted:
        arr = np.iinfo(arr.dtype).max - arr
    pixels = _select_frames(p, arr, n_frames, frame)
    meta: dict[str, Any] = {"format": "tiff", "mode": mode, "frames": n_frames, "inverted": inverted}
    meta["frame"] = "all" if frame == "all" else (0 if frame is None else int(frame))
    return UltrasoundImage(pixels=np.ascontiguousarray(pixels), path=p, meta=meta)


def _info_tiff(p: Path) -> ImageInfo:
    import tifffile

    try:
        with tifffile.TiffFile(p) as tf:
            _, _, _, n_frames, height, width, photometric, dtype = _tiff_layout(p, tf)
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"{p}: cannot read TIFF header ({exc})") from exc
    channels = 3 if photometric == "RGB" else 1
    return ImageInfo(
        width=width, height=height, channels=channels, frames=n_frames, dtype=dtype, format="tiff"
    )


# --------------------------------------------------------------------------------------------------- DICOM


def _dcmread(p: Path, *, stop_before_pixels: bool) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(p, stop_before_pixels=stop_before_pixels, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise ImageReadError(f"{p}: cannot read DICOM file ({exc})") from exc


def _dicom_geometry(p: Path, ds: Any) -> tuple[int, int, int, int, int, int, str]:
    """Return (frames, rows, cols, samples, bits_allocated, bits_stored, photometric) from the header."""
    missing = [k for k in ("Rows", "Columns", "BitsAllocated") if k not in ds]
    if missing:
        raise ImageReadError(f"{p}: DICOM file has no image (missing {', '.join(missing)})")
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits_allocated = int(ds.BitsAllocated)
        bits_stored = int(ds.get("BitsStored", bits_allocated) or bits_allocated)
    except (TypeError, ValueError) as exc:
        raise ImageReadError(f"{p}: invalid DICOM image header ({exc})") from exc
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2" if samples == 1 else "RGB")).strip()
    if samples not in (1, 3):
        raise ImageReadError(f"{p}: SamplesPerPixel={samples} is not supported; expected 1 or 3")
    if bits_allocated > 16:
        raise ImageReadError(f"{p}: BitsAllocated={bits_allocated} is not supported; expected 1, 8 or 16")
    if photometric in ("PALETTE COLOR",):
        raise ImageReadError(f"{p}: PhotometricInterpretation {photometric} is not supported")
    return n_frames, rows, cols, samples, bits_allocated, bits_stored, photometric


def _dicom_spacing(ds: Any) -> tuple[tuple[float, float] | None, str | None]:
    """(row_mm, col_mm) from PixelSpacing, else from the largest 2D cm region of SequenceOfUltrasoundRegions."""
    ps = ds.get("PixelSpacing")
    if ps is not None:
        try:
            values = [float(v) for v in ps]
            if len(values) == 2 and all(v > 0 for v in values):
                return (values[0], values[1]), "PixelSpacing"
        except (TypeError, ValueError):
            pass
    regions = ds.get("SequenceOfUltrasoundRegions")
    best: tuple[int, tuple[float, float]] | None = None
    candidates = set()
    for item in regions or []:
        try:
            if int(item.get("PhysicalUnitsXDirection", -1)) != _US_UNITS_CM:
                continue
            if int(item.get("PhysicalUnitsYDirection", -1)) != _US_UNITS_CM:
                continue
            fmt = item.get("RegionSpatialFormat")
            if fmt is not None and int(fmt) != _US_SPATIAL_2D:
                continue
            dx, dy = abs(float(item.PhysicalDeltaX)), abs(float(item.PhysicalDeltaY))
            area = (int(item.get("RegionLocationMaxX1", 0)) - int(item.get("RegionLocationMinX0", 0)) + 1) * (
                int(item.get("RegionLocationMaxY1", 0)) - int(item.get("RegionLocationMinY0", 0)) + 1
            )
        except (AttributeError, TypeError, ValueError):
            continue
        if dx <= 0 or dy <= 0:
            continue
        spacing = (dy * _CM_TO_MM, dx * _CM_TO_MM)
        candidates.add(spacing)
        if best is None or area > best[0]:
            best = (area, spacing)
    if best is None:
        return None, None
    if len(candidates) > 1:
        LOGGER.warning(
            "ultrasound regions disagree on spacing %s; using the largest region's", sorted(candidates)
        )
    return best[1], "SequenceOfUltrasoundRegions"


def _info_dicom(p: Path) -> ImageInfo:
    ds = _dcmread(p, stop_before_pixels=True)
    n_frames, rows, cols, samples, bits_allocated, _, _ = _dicom_geometry(p, ds)
    spacing, _ = _dicom_spacing(ds)
    dtype = "uint8" if bits_allocated <= 8 else "uint16"
    return ImageInfo(
        width=cols,
        height=rows,
        channels=samples,
        frames=n_frames,
        dtype=dtype,
        spacing=spacing,
        format="dicom",
    )


def _read_dicom(p: Path, frame: int | str | None) -> UltrasoundImage:
    from pydicom.pixels import as_pixel_options, get_decoder

    ds = _dcmread(p, stop_before_pixels=False)
    n_frames, rows, cols, samples, _, bits_stored, photometric = _dicom_geometry(p, ds)
    if "PixelData" not in ds:
        raise ImageReadError(f"{p}: DICOM file has no Pixel Data element (only 'Pixel Data' is supported)")
    file_meta = getattr(ds, "file_meta", None)
    tsyntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if tsyntax is None:
        raise ImageReadError(f"{p}: DICOM file meta has no TransferSyntaxUID")
    ts_name = getattr(tsyntax, "name", str(tsyntax))
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise ImageReadError(
            f"{p}: transfer syntax {ts_name} ({tsyntax}) cannot be decoded by pydicom (no decoder exists, e.g. video "
            "syntaxes); export the study uncompressed or as JPEG"
        ) from exc
    if not decoder.is_available:
        raise ImageReadError(
            f"{p}: transfer syntax {ts_name} ({tsyntax}) needs a decoding plugin that is not installed; install one "
            f"of: {'; '.join(decoder.missing_dependencies)}"
        )
    index = None if frame == "all" else _frame_index(p, n_frames, frame)
    try:
        opts = as_pixel_options(ds, as_rgb=True)  # pydicom's default: YBR_FULL(_422) -> RGB
        arr, changes = decoder.as_array(ds, index=index, validate=True, **opts)
    except ImageReadError:
        raise
    except Exception as exc:  # pydicom/plugins raise ValueError, RuntimeError, struct.error, ...
        raise ImageReadError(f"{p}: cannot decode DICOM pixel data ({ts_name}): {exc}") from exc
    out_frames = n_frames if index is None else 1
    expected = (out_frames, rows, cols, samples)
    if arr.size != int(np.prod(expected)):
        raise ImageReadError(
            f"{p}: decoded {arr.size} values but the header (NumberOfFrames={n_frames}, Rows={rows}, "
            f"Columns={cols}, SamplesPerPixel={samples}) implies {int(np.prod(expected))}"
        )
    # pydicom returns frames-major, then rows, columns, samples; reshape from the header, not from arr.ndim.
    arr = arr.reshape(expected)
    arr = _dicom_dtype(p, arr, ds)
    final_pi = str(changes.get("photometric_interpretation", photometric))
    inverted = photometric == "MONOCHROME1"
    if inverted:
        top = (1 << bits_stored) - 1 if bits_stored < arr.dtype.itemsize * 8 else np.iinfo(arr.dtype).max
        arr = (top - np.minimum(arr, top)).astype(arr.dtype)
    spacing, spacing_source = _dicom_spacing(ds)
    pixels = arr if frame == "all" else arr[0]
    meta: dict[str, Any] = {
        "format": "dicom",
        "frames": n_frames,
        "frame": "all" if frame == "all" else index,
        "photometric_interpretation": photometric,
        "converted_to_rgb": photometric.startswith("YBR") and final_pi == "RGB",
        "inverted": inverted,
        "transfer_syntax": str(tsyntax),
        "bits_stored": bits_stored,
        "spacing_source": spacing_source,
        "modality": str(ds.get("Modality", "")),
    }
    return UltrasoundImage(pixels=np.ascontiguousarray(pixels), path=p, spacing=spacing, meta=meta)


def _dicom_dtype(p: Path, arr: np.ndarray, ds: Any) -> np.ndarray:
    """Keep unsigned data; signed data is accepted only when every value is >= 0 (a lossless cast)."""
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype.kind == "i" and arr.dtype.itemsize <= 2:
        if arr.size and int(arr.min()) < 0:
            raise ImageReadError(
                f"{p}: signed pixel data with negative values (PixelRepresentation=1, e.g. CT in HU) is not "
                "supported; export a windowed unsigned image"
            )
        return arr.astype(np.uint8 if arr.dtype.itemsize == 1 else np.uint16)
    raise ImageReadError(f"{p}: pixel dtype {arr.dtype} is not supported; expected 8- or 16-bit integers")
