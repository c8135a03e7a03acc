"""Rebuild the BUSI release layout (``Dataset_BUSI_with_GT/<class>/<class> (N).png`` + ``_mask[_k].png``) from a
staged copy in ``../shared/data`` (``busi`` or ``busi_256``), whose ``labels.csv`` keeps each image's release name in
``orig_name``.

Images and single masks are symbolic links to the staged files (nothing is copied). The staged copy keeps only the
union of an image's several release masks; such an image gets two masks again, its union split left and right of
the foreground's middle column, so the importer's merge step has real work to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from nodescope.data import read_image

__all__ = ["rebuild_busi_release"]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


def rebuild_busi_release(base: Path, dst: Path, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write the release layout of ``rows`` (default: every row of ``base/labels.csv``) under ``dst``.

    Returns the rows written (``labels.csv`` as text).
    """
    if rows is None:
        rows = pd.read_csv(base / "labels.csv", dtype=str, keep_default_na=False)
    for row in rows.itertuples():
        stem = Path(row.orig_name).stem  # "benign (12)"
        _link(base / row.image, dst / row.label / row.orig_name)
        if int(row.n_mask_files) == 1:
            _link(base / row.mask, dst / row.label / f"{stem}_mask.png")
            continue
        union = read_image(base / row.mask).pixels[..., 0] > 0
        cols = np.nonzero(union.any(axis=0))[0]
        mid = int(np.median(cols)) if len(cols) else union.shape[1] // 2
        left, right = union.copy(), union.copy()
        left[:, mid:] = False
        right[:, :mid] = False
        Image.fromarray(left.astype(np.uint8) * 255).save(dst / row.label / f"{stem}_mask.png")
        Image.fromarray(right.astype(np.uint8) * 255).save(dst / row.label / f"{stem}_mask_1.png")
    return rows
