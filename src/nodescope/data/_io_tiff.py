"""TIFF reading for :func:`nodescope.data.read_image` (tifffile; single and multi-page, grey and RGB)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nodescope.data._io_base import ImageInfo, ImageReadError, Source, UltrasoundImage, select_frames

__all__ = ["info_tiff", "read_tiff"]


def _tiff_layout(p: Source, tf: Any) -> tuple[Any, str, tuple[int, ...], int, int, int, str, str]:
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


def read_tiff(p: Source, frame: int | str | None) -> UltrasoundImage:
    import tifffile

    try:
        with tifffile.TiffFile(p.target) as tf:
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
    pixels = select_frames(p, arr, n_frames, frame)
    meta: dict[str, Any] = {"format": "tiff", "mode": mode, "frames": n_frames, "inverted": inverted}
    meta["frame"] = "all" if frame == "all" else (0 if frame is None else int(frame))
    return UltrasoundImage(pixels=np.ascontiguousarray(pixels), path=p.path, meta=meta)


def info_tiff(p: Source) -> ImageInfo:
    import tifffile

    try:
        with tifffile.TiffFile(p.target) as tf:
            _, _, _, n_frames, height, width, photometric, dtype = _tiff_layout(p, tf)
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"{p}: cannot read TIFF header ({exc})") from exc
    channels = 3 if photometric == "RGB" else 1
    return ImageInfo(
        width=width, height=height, channels=channels, frames=n_frames, dtype=dtype, format="tiff"
    )
