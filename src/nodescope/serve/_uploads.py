"""Uploads: type sniffed from the content, size and pixel limits, safe decoding, de-identified keeping.

Every upload is decoded in memory by :func:`nodescope.data.read_image` (the reader of files on disk), after three
checks that answer with an HTTP status and a reason instead of an exception: the content is PNG, JPEG or DICOM by its
signature (the file name and the declared type are ignored; 415 otherwise), it is not empty (422), and its header
announces at most ``max_pixels`` pixels (413, before any pixel is decoded: decompression bombs never expand). A file
the decoder cannot read (truncated, corrupt, an unsupported layout) is a 422 naming the reason.

Names: the messages call an upload by its form field (``upload 'bmode'``), never by the client's file name, which
in a hospital often holds a patient's name. DICOM headers are read only for the pixel module; nothing from them is
logged or returned (only pixel-module attributes are read; as a second guard pydicom's warnings, which quote the
values of malformed elements, are silenced while an upload is decoded, and the service turns pydicom's logger off,
see :func:`quiet_dicom_logging`). :func:`deidentify_dicom` is what ``--keep-uploads`` stores (DICOM PS3.15 Annex E, basic
application level confidentiality profile, by the "retain only safe attributes" route: every attribute not needed
to display the pixels is removed, which removes each one the profile lists; UIDs are replaced).
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nodescope.data import UltrasoundImage, image_info, read_image
from nodescope.errors import DataError
from nodescope.explain._overlay import display_pixels

__all__ = ["DecodedUpload", "UploadRejected", "decode_upload", "deidentify_dicom", "keep_upload",
           "png_bytes", "quiet_dicom_logging", "sniff_format"]

log = logging.getLogger(__name__)

_PNG = b"\x89PNG\r\n\x1a\n"
#: Attributes a kept DICOM retains: the image pixel module and what displaying it needs; none identifies anyone.
DICOM_SAFE_KEYWORDS = (
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "PlanarConfiguration", "NumberOfFrames", "FrameIncrementPointer", "FrameTime",
    "PixelSpacing", "PixelAspectRatio", "RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth",
    "Modality", "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod", "PixelData",
)


class UploadRejected(Exception):
    """An upload the service refuses: ``status`` (413, 415, 422) and a reason for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class DecodedUpload:
    """A decoded upload.

    Attributes
    ----------
    label : str
        How messages call it (``upload 'bmode'``).
    format : {"png", "jpeg", "dicom"}
    image : UltrasoundImage
        First frame, ``(H, W, C)``.
    data : bytes
        The raw upload (kept only in memory unless ``--keep-uploads``).
    """

    label: str
    format: str
    image: UltrasoundImage
    data: bytes


def sniff_format(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"`` or ``"dicom"`` from the first bytes of ``data``, else None."""
    if data.startswith(_PNG):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    return None


def decode_upload(data: bytes, label: str, *, max_pixels: int) -> DecodedUpload:
    """Check and decode one upload (see the module docstring).

    Parameters
    ----------
    data : bytes
        The file's content.
    label : str
        Its name in messages (the form field, not the client's file name).
    max_pixels : int
        Width x height x frames allowed.

    Raises
    ------
    UploadRejected
        415 unknown type, 413 too many pixels, 422 empty, corrupt, truncated or unsupported.
    """
    if not data:
        raise UploadRejected(422, f"{label}: the file is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise UploadRejected(415, f"{label}: not a PNG, JPEG or DICOM file (recognised from the content; the file "
                                  "name and declared type are not trusted)")
    name = f"{label}"
    try:
        with warnings.catch_warnings():  # pydicom's warnings quote the values of malformed elements
            warnings.simplefilter("ignore")
            return _decode(data, label, name, fmt, max_pixels)
    except UploadRejected:
        raise
    except DataError as exc:
        raise UploadRejected(422, _no_path(str(exc), name)) from None
    except MemoryError:
        raise UploadRejected(413, f"{label}: the image does not fit in this server's memory") from None
    except Exception as exc:  # a decoder's own failure on hostile input: refused, never a 500 or a dead worker
        log.warning("decoder failure on %s (%s): %s", label, fmt, type(exc).__name__)
        raise UploadRejected(422, f"{label}: cannot decode the {fmt.upper()} file ({type(exc).__name__})") from None


def _decode(data: bytes, label: str, name: str, fmt: str, max_pixels: int) -> DecodedUpload:
    """Header check (pixel limit) then decoding; see :func:`decode_upload`."""
    info = image_info(data, name=name)
    pixels = int(info.width) * int(info.height) * max(1, int(info.frames))
    if pixels > max_pixels:
        raise UploadRejected(413, f"{label}: {info.width}x{info.height}"
                                  f"{f' x {info.frames} frames' if info.frames > 1 else ''} = {pixels:,} pixels "
                                  f"exceeds this server's limit of {max_pixels:,} pixels")
    if info.width < 1 or info.height < 1:
        raise UploadRejected(422, f"{label}: the header announces an empty image ({info.width}x{info.height})")
    img = read_image(data, name=name, max_pixels=max_pixels)
    px = img.pixels
    if px.ndim != 3 or px.shape[0] < 1 or px.shape[1] < 1 or px.shape[2] not in (1, 3):
        raise UploadRejected(422, f"{label}: unsupported pixel layout {tuple(px.shape)}; expected (H, W, 1 or 3)")
    return DecodedUpload(label=label, format=fmt, image=img, data=data)


def quiet_dicom_logging() -> None:
    """Turn pydicom's logger off for this process: its warnings quote the values of malformed elements."""
    logging.getLogger("pydicom").disabled = True


def _no_path(message: str, name: str) -> str:
    """A reader's message, starting with the upload's name, without the repr of an in-memory stream."""
    message = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "the upload", message)
    return message if message.startswith(name) else f"{name}: {message}"


def png_bytes(pixels: np.ndarray, *, max_side: int | None = None) -> bytes:
    """PNG encoding of uint8 ``(H, W)`` or ``(H, W, 3)`` pixels, shrunk to ``max_side`` when larger (no metadata)."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(pixels))
    if max_side is not None and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def deidentify_dicom(data: bytes) -> bytes:
    """A de-identified copy of a DICOM file (PS3.15 E.1 basic profile by retaining only safe attributes).

    Only :data:`DICOM_SAFE_KEYWORDS` are kept (the pixel module and its geometry); every other attribute -- names,
    ids, dates, institutions, device serials, free text, sequences, private tags, overlays -- is dropped. New study,
    series and instance UIDs are generated; ``PatientIdentityRemoved`` is ``YES`` and
    ``DeidentificationMethodCodeSequence`` records code 113100 (DCM, basic application confidentiality profile).
    Text burned into the pixels is not removed (the profile's "clean pixel data" option is not claimed).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    src = pydicom.dcmread(io.BytesIO(data), force=True)
    out = Dataset()
    for kw in DICOM_SAFE_KEYWORDS:
        if kw in src:
            out[kw] = src[kw]
    sop_class = UID(str(getattr(src, "SOPClassUID", "") or UltrasoundImageStorage))
    out.SOPClassUID = sop_class
    out.SOPInstanceUID = generate_uid()
    out.StudyInstanceUID = generate_uid()
    out.SeriesInstanceUID = generate_uid()
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = "PS3.15 E.1 basic profile; pixel module kept (nodescope)"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    out.DeidentificationMethodCodeSequence = [code]
    meta = FileMetaDataset()
    src_meta = getattr(src, "file_meta", None)
    meta.TransferSyntaxUID = getattr(src_meta, "TransferSyntaxUID", None) or ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.file_meta = meta
    buf = io.BytesIO()
    out.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def keep_upload(folder: Path, stem: str, upload: DecodedUpload) -> Path:
    """Store a de-identified copy of ``upload`` in ``folder`` as ``<stem>.dcm`` or ``<stem>.png``; returns the path.

    DICOM: :func:`deidentify_dicom`. PNG/JPEG: the decoded pixels re-encoded as PNG (no EXIF, text chunks or
    other metadata). Names are unique per request (``stem`` holds the request id); an existing file is never
    replaced.
    """
    from nodescope._files import atomic_path

    if upload.format == "dicom":
        payload, suffix = deidentify_dicom(upload.data), ".dcm"
    else:
        px: Any = np.asarray(upload.image.pixels)
        if px.dtype != np.uint8:
            px = display_pixels(upload.image)
        payload, suffix = png_bytes(px[..., 0] if px.ndim == 3 and px.shape[-1] == 1 else px), ".png"
    target = folder / f"{stem}{suffix}"
    if target.exists():
        raise FileExistsError(f"{target} exists; kept uploads are never replaced")
    with atomic_path(target) as tmp:
        tmp.write_bytes(payload)
    return target
