"""Near-duplicate images and the grouping key that keeps them (and each patient's images) in one split part.

Public data sets without patient ids (BUSI) hold exact and near duplicates: the same scan saved twice, with other
calipers, or cropped slightly differently. Splitting such images by image puts copies on both sides of a split
(leakage). :func:`duplicate_groups` finds them from small grey thumbnails and joins them, with the images of each
patient, into one group per connected component; a manifest's ``dup_group`` column built this way is the
``group_col`` to split and train on.

The rule -- 64 x 64 grey thumbnails (Pillow's ``L`` conversion, ITU-R 601-2 luma, then bilinear resize) whose mean
absolute difference is below 4 grey levels are near duplicates; identical pixels are a difference of 0 -- is the one
``../shared/data/busi/SOURCE.txt`` documents for the shared BUSI copy; on the 780 full-resolution BUSI images it
reproduces that file's ``dup_group`` partition exactly (108 images in 49 groups; ``tests/data/test_duplicates.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from nodescope.data._io import read_image
from nodescope.errors import ConfigError, DataError

__all__ = ["duplicate_groups", "thumbnail"]

#: Images compared per block of the pairwise distance matrix (bounds memory: block x N float64 values).
_BLOCK = 512


def as_uint8_pixels(pixels: np.ndarray, name: str) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` uint8 pixels (uint16 mapped as ``round(v * 255 / 65535)``; ``(H, W, 1)`` squeezed);
    anything else is a :class:`~nodescope.errors.DataError` naming ``name``."""
    arr = np.asarray(pixels)
    if arr.dtype == np.uint16:
        arr = np.rint(arr.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    if arr.dtype != np.uint8:
        raise DataError(f"{name}: pixels must be uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3) or 0 in arr.shape[:2]:
        raise DataError(f"{name}: pixels must be (H, W), (H, W, 1) or (H, W, 3); got shape {arr.shape}")
    return arr


def thumbnail(pixels: np.ndarray, size: int = 64) -> np.ndarray:
    """The grey ``size`` x ``size`` thumbnail images are compared by.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(H, W, C)`` with C in {1, 3} (as :func:`nodescope.data.read_image` returns), or ``(H, W)``; ``uint8``, or
        ``uint16`` (mapped to 8 bits over the full range, ``round(v * 255 / 65535)``).
    size : int, default 64
        Side of the thumbnail (the aspect ratio is not kept).

    Returns
    -------
    numpy.ndarray
        ``(size * size,)`` float32 grey levels 0..255: colour is converted with Pillow's ``L`` mode (ITU-R 601-2
        luma, ``L = 0.299 R + 0.587 G + 0.114 B``), then resized bilinearly.
    """
    arr = as_uint8_pixels(pixels, "thumbnail")
    img = Image.fromarray(np.ascontiguousarray(arr))
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32).ravel()


def duplicate_groups(
    images: Sequence[str | Path],
    *,
    patients: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    size: int = 64,
    max_diff: float = 4.0,
) -> list[str]:
    """Group images that are near duplicates of each other or belong to one patient.

    Two images are linked when the mean absolute difference of their grey thumbnails (:func:`thumbnail`) is
    below ``max_diff`` grey levels, or when they carry the same non-empty patient id; a group is a connected
    component of these links (so A~B and B~C put A, B and C together even when A and C differ more).

    Parameters
    ----------
    images : sequence of str or Path
        The image files (read with :func:`nodescope.data.read_image`; one frame each).
    patients : sequence of str, optional
        A patient id per image; empty strings link nothing.
    names : sequence of str, optional
        A name per image to name the groups by (default: the patient id when given and non-empty, else the image
        path as given).
    size : int, default 64
        Thumbnail side.
    max_diff : float, default 4.0
        Largest mean absolute thumbnail difference (0..255 grey levels), exclusive, of two near duplicates.

    Returns
    -------
    list of str
        Per image, its group's name: the name of the group's first image in input order. An image without
        duplicates or fellow images of its patient is a group of its own, named after itself.

    Raises
    ------
    ConfigError
        ``size`` < 1, ``max_diff`` not a finite number > 0, or ``patients``/``names`` of another length.
    nodescope.data.ImageReadError
        An image cannot be read (the message names the file).
    """
    n = len(images)
    if size < 1:
        raise ConfigError(f"size: must be >= 1, got {size}")
    if not np.isfinite(max_diff) or max_diff <= 0:
        raise ConfigError(f"max_diff: must be a finite number > 0, got {max_diff}")
    for what, seq in (("patients", patients), ("names", names)):
        if seq is not None and len(seq) != n:
            raise ConfigError(f"{what}: expected {n} value(s), one per image; got {len(seq)}")
    if n == 0:
        return []
    thumbs = np.stack([thumbnail(read_image(p).pixels, size) for p in images])
    rows, cols = [], []
    for start in range(0, n, _BLOCK):
        d = cdist(thumbs[start:start + _BLOCK], thumbs, "cityblock") / thumbs.shape[1]
        r, c = np.nonzero(d < max_diff)
        rows.append(r + start)
        cols.append(c)
    if patients is not None:
        first: dict[str, int] = {}
        for i, pid in enumerate(patients):
            pid = str(pid).strip()
            if pid:
                rows.append(np.array([i]))
                cols.append(np.array([first.setdefault(pid, i)]))
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    if names is None:
        given = [str(p).strip() for p in patients] if patients is not None else [""] * n
        names = [g or str(img) for g, img in zip(given, images, strict=True)]
    leader: dict[int, str] = {}
    return [leader.setdefault(int(k), str(names[i])) for i, k in enumerate(comp)]
