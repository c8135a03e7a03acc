"""What every image reader of :mod:`nodescope.data` shares: the result types, the error, the source, frame rules."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from nodescope.errors import DataError

__all__ = ["ImageInfo", "ImageReadError", "ImageSource", "Source", "UltrasoundImage", "as_source", "check_frame_arg",
           "frame_index", "select_frames"]

#: What :func:`nodescope.data.read_image` accepts: a path, the file's bytes, or a binary file object (an upload).
ImageSource = str | Path | bytes | bytearray | memoryview | IO[bytes]


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


class Source:
    """A file on disk or its bytes in memory, with the name every message uses.

    It offers the part of :class:`pathlib.Path` the readers use (``open("rb")``, ``is_file()``, ``suffix``, ``str()``)
    and :attr:`target`, what Pillow, tifffile and pydicom are given (the path itself, or a fresh in-memory stream).
    """

    def __init__(self, path: Path, data: bytes | None = None) -> None:
        self.path = path
        self.data = data

    def __str__(self) -> str:
        return str(self.path)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    @property
    def suffix(self) -> str:
        return self.path.suffix

    def is_file(self) -> bool:
        return self.data is not None or self.path.is_file()

    def open(self, mode: str = "rb") -> IO[bytes]:
        if self.data is not None:
            return io.BytesIO(self.data)
        return self.path.open(mode)  # type: ignore[return-value]

    @property
    def target(self) -> Path | IO[bytes]:
        return self.path if self.data is None else io.BytesIO(self.data)


def as_source(source: ImageSource, name: str | None = None) -> Source:
    """Wrap a path, bytes or a binary file object; in-memory data is named ``name`` (or its file name, or
    ``<memory>``) in messages and in :attr:`UltrasoundImage.path`."""
    if isinstance(source, str | Path):
        return Source(Path(source))
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, bytes):
            raise TypeError(f"{name or getattr(source, 'name', '<memory>')}: the file object must be opened in binary "
                            f"mode (read() returned {type(data).__name__})")
    else:
        raise TypeError(f"image source must be a path, bytes or a binary file object, got {type(source).__name__}")
    label = name or getattr(source, "name", None) or "<memory>"
    return Source(Path(str(label)), data)


def check_frame_arg(p: Path, frame: object) -> None:
    if frame is None or frame == "all":
        return
    if isinstance(frame, bool) or not isinstance(frame, int | np.integer):
        raise TypeError(f"{p}: frame must be an int, 'all' or None, got {frame!r}")


def select_frames(p: Path, arr: np.ndarray, n_frames: int, frame: int | str | None) -> np.ndarray:
    """``arr`` is ``(F, H, W, C)``; return one frame ``(H, W, C)`` or all of them."""
    if frame == "all":
        return arr
    idx = frame_index(p, n_frames, frame)
    return arr[idx]


def frame_index(p: Path, n_frames: int, frame: int | str | None) -> int:
    idx = 0 if frame is None else int(frame)
    if not 0 <= idx < n_frames:
        raise ImageReadError(
            f"{p}: frame {idx} is out of range; the file has {n_frames} frame(s) (valid: 0..{n_frames - 1} or 'all')"
        )
    return idx
