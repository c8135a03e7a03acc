"""What every image reader of :mod:`nodescope.data` shares: the result types, the error, the source, frame rules,
the pixel limit; and the one way nodescope reads a CSV table as text (:func:`read_csv_text`).

The pixel limit (:data:`DEFAULT_MAX_PIXELS`, 100 megapixels) is checked from a file's header before any pixel is
decoded: ultrasound frames are below 2 MP, so only a decompression bomb or a whole-slide-like TIFF reaches it. Raise
it with the ``max_pixels=`` argument of :func:`nodescope.data.read_image`, :func:`max_pixels_limit` (for a block of
code) or the environment variable ``NODESCOPE_MAX_PIXELS``.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from nodescope.errors import DataError, MissingFileError, NodescopeError

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_PIXELS_ENV", "ImageInfo", "ImageReadError", "ImageSource", "Source",
           "UltrasoundImage", "as_source", "check_frame_arg", "check_pixel_count", "frame_index", "max_pixels",
           "max_pixels_limit", "read_csv_text", "select_frames"]

#: Images with more pixels (width x height x frames, from the header) are refused before decoding.
DEFAULT_MAX_PIXELS = 100_000_000
#: Environment variable that replaces :data:`DEFAULT_MAX_PIXELS` (a positive whole number).
MAX_PIXELS_ENV = "NODESCOPE_MAX_PIXELS"
_max_pixels_setting: list[int] = []  # innermost max_pixels_limit() last

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


def max_pixels() -> int:
    """The pixel limit in force: the innermost :func:`max_pixels_limit`, else ``$NODESCOPE_MAX_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`.

    Raises
    ------
    DataError
        ``NODESCOPE_MAX_PIXELS`` is set but is not a positive whole number.
    """
    if _max_pixels_setting:
        return _max_pixels_setting[-1]
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"environment variable {MAX_PIXELS_ENV}={raw!r}: must be a whole number >= 1 (pixels)")
    return value


@contextlib.contextmanager
def max_pixels_limit(limit: int | None) -> Iterator[None]:
    """Use ``limit`` as the pixel limit of every image read inside the ``with`` block (``None``: leave it as is).

    Parameters
    ----------
    limit : int or None
        Largest width x height x frames accepted (>= 1).

    Raises
    ------
    DataError
        ``limit`` is below 1.
    """
    if limit is None:
        yield
        return
    if isinstance(limit, bool) or int(limit) < 1:
        raise DataError(f"max_pixels: must be >= 1, got {limit!r}")
    _max_pixels_setting.append(int(limit))
    try:
        yield
    finally:
        _max_pixels_setting.pop()


def check_pixel_count(p: object, width: int, height: int, frames: int, limit: int | None = None) -> None:
    """Refuse an image whose header announces more than ``limit`` pixels (default :func:`max_pixels`).

    Raises
    ------
    ImageReadError
        Naming the file, its size and the limit, and how to raise it.
    """
    lim = max_pixels() if limit is None else limit
    total = int(width) * int(height) * max(int(frames), 1)
    if total > lim:
        size = f"{width}x{height}" + (f"x{frames} frames" if frames > 1 else "")
        raise ImageReadError(
            f"{p}: {size} = {total:,} pixels exceeds the limit of {lim:,} pixels (a decompression bomb or a huge "
            f"image); raise the limit with max_pixels or the environment variable {MAX_PIXELS_ENV} if it is genuine")


def read_csv_text(path: Path, what: str, error: type[NodescopeError] = DataError, **kwargs: object) -> pd.DataFrame:
    """Read a CSV table with every cell as text, refusing what pandas would silently change.

    Parameters
    ----------
    path : Path
        The file.
    what : str
        What the file is, for messages (``"manifest"``, ``"splits file"``).
    error : type of NodescopeError
        The error raised.
    **kwargs
        Further :func:`pandas.read_csv` arguments.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    MissingFileError
        ``path`` is not a file.
    NodescopeError
        (``error``) The file is empty (0 bytes or no header), not a readable CSV, or its header repeats a column
        name (pandas would rename the second ``label`` to ``label.1``); the message names the file and the column,
        and the error's ``unreadable`` attribute is ``True``.
    """
    opts: dict[str, object] = {"dtype": str, "keep_default_na": False, **kwargs}
    if not Path(path).is_file():
        raise MissingFileError(f"{what} not found: {path}")
    try:
        header = pd.read_csv(path, header=None, nrows=1, **opts)  # type: ignore[call-overload]
        frame = pd.read_csv(path, **opts)  # type: ignore[call-overload]
    except pd.errors.EmptyDataError:
        raise _unreadable(error, f"{path}: the {what} file is empty (no header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _unreadable(error, f"{path}: not a readable CSV {what} ({exc})") from None
    names = [str(v) for v in header.iloc[0]] if len(header) else []
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise _unreadable(error, f"{path}: the {what} header repeats column name(s) {dups}; each column must be "
                                 "named once")
    return frame


def _unreadable(error: type[NodescopeError], message: str) -> NodescopeError:
    """``error(message)`` marked ``unreadable = True``: the table could not be read at all (nothing was checked)."""
    exc = error(message)
    exc.unreadable = True  # type: ignore[attr-defined]
    return exc
