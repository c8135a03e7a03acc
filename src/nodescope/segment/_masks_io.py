"""Mask files and segmentation prediction tables: writing masks as PNG, scoring a table of saved masks.

A *segmentation predictions table* (``predictions.csv`` of ``nodescope segment train``, ``segment evaluate``) has
one row per image and model: ``patient_id``, ``group``, ``image`` (absolute path), ``mask`` (the reference mask,
absolute path, may be empty), ``pred_mask`` (the saved predicted mask, a path relative to the table's folder),
``model``, ``split``, ``fold``. Every metric is computed from the saved mask files (:func:`score_table`), so any
figure can be recomputed from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from nodescope._files import atomic_path
from nodescope.errors import DataError, MissingFileError

__all__ = ["SCORE_COLUMNS", "read_mask", "score_table", "write_mask_png"]

#: Columns :func:`score_table` adds (:class:`~nodescope.segment.MaskScores` fields).
SCORE_COLUMNS = ("dice", "iou", "hd95", "assd", "detected", "truth_empty", "pred_empty", "unit")


def write_mask_png(mask: np.ndarray, path: str | Path) -> Path:
    """Write a binary mask as an 8-bit PNG (0 background, 255 lesion), atomically; returns the path."""
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask: expected (H, W), got shape {m.shape}")
    with atomic_path(p) as tmp:
        Image.fromarray(((m > 0) * 255).astype(np.uint8)).save(tmp, format="PNG")
    return p


def read_mask(path: str | Path, shape: tuple[int, int] | None = None, *, what: str = "mask") -> np.ndarray:
    """A mask file as ``(H, W)`` bool (nonzero in any channel = lesion); ``shape`` checked when given."""
    from nodescope.data import read_image

    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"{what}: {p} does not exist")
    m = read_image(p).pixels
    if m.ndim == 3:
        m = m.max(axis=-1)
    if shape is not None and tuple(m.shape) != tuple(shape):
        raise DataError(f"{what}: {p} is {m.shape[1]}x{m.shape[0]} pixels; expected the image's size "
                        f"{shape[1]}x{shape[0]}")
    return m > 0


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def score_table(table: pd.DataFrame, base: str | Path, *, spacing_col: str | None = None,
                columns: Sequence[str] = ("mask", "pred_mask")) -> pd.DataFrame:
    """Score every row of a segmentation predictions table from its saved mask files.

    Parameters
    ----------
    table : DataFrame
        Needs the reference and predicted mask columns (``columns``); rows with an empty reference are skipped
        (counted in ``table.attrs["unscored"]``).
    base : str or Path
        Folder relative paths are resolved against (the table's folder).
    spacing_col : str, optional
        Column of the isotropic pixel size in mm (distances then in mm); rows with an empty value make the whole
        table use pixels.
    columns : (str, str)
        Reference and prediction columns.

    Returns
    -------
    DataFrame
        The scored rows with :data:`SCORE_COLUMNS` added.
    """
    from nodescope.segment._metrics import mask_scores

    ref_col, pred_col = columns
    for c in (ref_col, pred_col):
        if c not in table.columns:
            raise DataError(f"predictions table: column {c!r} missing (have {list(table.columns)})")
    b = Path(base)
    has_ref = table[ref_col].fillna("").astype(str) != ""
    rows = table[has_ref].copy()
    spacing = None
    if spacing_col is not None and spacing_col in rows.columns:
        sp = pd.to_numeric(rows[spacing_col], errors="coerce")
        spacing = None if sp.isna().any() or (sp <= 0).any() else sp.to_numpy(float)
    scores = []
    for i, (ref, pred) in enumerate(zip(rows[ref_col].astype(str), rows[pred_col].astype(str), strict=True)):
        t = read_mask(_resolve(b, ref), what=f"reference mask (column {ref_col!r})")
        p = read_mask(_resolve(b, pred), t.shape, what=f"predicted mask (column {pred_col!r}, row {i + 2})")
        s = None if spacing is None else (float(spacing[i]), float(spacing[i]))
        scores.append(asdict(mask_scores(p, t, spacing=s)))
    out = pd.concat([rows.reset_index(drop=True), pd.DataFrame(scores, columns=list(SCORE_COLUMNS))], axis=1)
    out.attrs["unscored"] = int((~has_ref).sum())
    return out
