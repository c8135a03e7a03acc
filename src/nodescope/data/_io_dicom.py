"""DICOM reading for :func:`nodescope.data.read_image` (pydicom; single and multi-frame, grey and colour)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nodescope.data._io_base import ImageInfo, ImageReadError, Source, UltrasoundImage, frame_index

__all__ = ["info_dicom", "read_dicom"]

LOGGER = logging.getLogger(__name__)

_CM_TO_MM = 10.0
_US_UNITS_CM = 3  # PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.1)
_US_SPATIAL_2D = 1  # RegionSpatialFormat code for a 2D (tissue or flow) region


def _dcmread(p: Source, *, stop_before_pixels: bool) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(p.target, stop_before_pixels=stop_before_pixels, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise ImageReadError(f"{p}: cannot read DICOM file ({exc})") from exc


def _dicom_geometry(p: Source, ds: Any) -> tuple[int, int, int, int, int, int, str]:
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


def info_dicom(p: Source) -> ImageInfo:
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


def read_dicom(p: Source, frame: int | str | None) -> UltrasoundImage:
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
    index = None if frame == "all" else frame_index(p, n_frames, frame)
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
    return UltrasoundImage(pixels=np.ascontiguousarray(pixels), path=p.path, spacing=spacing, meta=meta)


def _dicom_dtype(p: Source, arr: np.ndarray, ds: Any) -> np.ndarray:
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
