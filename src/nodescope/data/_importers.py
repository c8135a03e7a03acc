"""Importers: build a manifest from common folder layouts without touching the source files.

- :func:`import_image_folder`: one folder per class (torchvision's ``ImageFolder`` layout), masks optionally beside
  the images as ``<stem>_mask.<ext>``;
- :func:`import_busi`: the BUSI release (``benign/benign (1).png`` with ``benign (1)_mask.png``,
  ``benign (1)_mask_1.png``, ...); several masks of one image are merged (pixel-wise union) into a new file;
- :func:`import_table`: a labels table that already lists the images (a data set's ``labels.csv``), its columns
  renamed to the manifest's by a column map, optionally keeping only some labels.

Every importer can add a ``dup_group`` column (``dup_groups=True``): near-duplicate images and the images of one
patient share a group (:func:`nodescope.data.duplicate_groups`), the key to split by when a data set has no
patient ids.

Source images are never modified or copied: the manifest points at them. Only merged masks are written, under the
output folder.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from nodescope._files import atomic_write_csv
from nodescope.data._duplicates import duplicate_groups
from nodescope.data._io import IMAGE_SUFFIXES, read_image
from nodescope.data._io_base import read_csv_text
from nodescope.errors import ConfigError, DataError, MissingFileError

__all__ = ["DUP_GROUP_COLUMN", "ImportResult", "import_busi", "import_image_folder", "import_table"]

#: The column ``dup_groups=True`` adds: one group per set of near duplicates and images of one patient.
DUP_GROUP_COLUMN = "dup_group"

logger = logging.getLogger(__name__)

_MASK_RE = re.compile(r"^(?P<stem>.+?)_mask(?:_(?P<k>\d+))?$")


@dataclass(frozen=True)
class ImportResult:
    """What an importer wrote.

    Attributes
    ----------
    manifest_path : Path
        The manifest written.
    n_images : int
        Rows in the manifest.
    classes : tuple of str
        Class folders found (labels kept, for :func:`import_table`).
    n_merged_masks : int
        Images whose several mask files were merged into one.
    n_dup_groups : int or None
        With ``dup_groups=True``: groups holding more than one image (near duplicates or one patient's images);
        ``None`` otherwise.
    n_dropped : int
        Rows left out because their label was not asked for (:func:`import_table`).
    """

    manifest_path: Path
    n_images: int
    classes: tuple[str, ...]
    n_merged_masks: int = 0
    n_dup_groups: int | None = None
    n_dropped: int = 0


def _rel(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # different drives on Windows
        return path.resolve().as_posix()


def _natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _scan_class_folder(folder: Path) -> tuple[list[Path], dict[str, list[tuple[int, Path]]]]:
    images: list[Path] = []
    masks: dict[str, list[tuple[int, Path]]] = {}
    for p in sorted(folder.iterdir(), key=lambda q: _natural_key(q.name)):
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = _MASK_RE.match(p.stem)
        if m:
            masks.setdefault(m.group("stem"), []).append((int(m.group("k") or 0), p))
        else:
            images.append(p)
    return images, masks


def _merge_masks(paths: list[Path], out_path: Path) -> None:
    union = None
    for p in paths:
        arr = read_image(p).pixels
        fg = arr.max(axis=-1) > 0
        if union is None:
            union = fg
        elif fg.shape != union.shape:
            raise DataError(f"{p}: mask size {fg.shape[1]}x{fg.shape[0]} differs from {paths[0]} "
                             f"({union.shape[1]}x{union.shape[0]})")
        else:
            union |= fg
    assert union is not None  # paths is never empty here
    out_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((union * 255).astype(np.uint8)).save(out_path)


def _add_dup_groups(frame: pd.DataFrame, out_dir: Path, src: Path) -> int:
    """Add the ``dup_group`` column in place (image paths relative to ``out_dir``); returns the multi-image groups."""
    if DUP_GROUP_COLUMN in frame.columns:
        raise DataError(f"{src}: the table already has a {DUP_GROUP_COLUMN!r} column; refusing to replace it (import "
                        f"without dup_groups to keep it, or map it to another name, e.g. orig_dup_group=dup_group)")
    paths = [p if Path(p).is_absolute() else out_dir / p for p in frame["image"]]
    groups = duplicate_groups(paths, patients=list(frame["patient_id"]) if "patient_id" in frame.columns else None,
                              names=[str(v) for v in frame["image"]] if "patient_id" not in frame.columns else None)
    frame[DUP_GROUP_COLUMN] = groups
    sizes = pd.Series(groups).value_counts()
    multi = int((sizes > 1).sum())
    logger.info("%d image(s) in %d group(s) of near duplicates or one patient's images", int(sizes[sizes > 1].sum()),
                multi)
    return multi


def _keep_labels(frame: pd.DataFrame, labels: Sequence[str] | None, src: Path
                 ) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Rows whose label is in ``labels`` (all rows when ``None``) and the classes kept; an absent label is refused."""
    if labels is None:
        return frame, tuple(sorted(set(frame["label"])))
    wanted = tuple(str(v) for v in labels)
    absent = [v for v in wanted if v not in set(frame["label"])]
    if absent:
        raise DataError(f"{src}: label(s) {absent} have no image; its labels are {sorted(set(frame['label']))}")
    kept = frame[frame["label"].isin(wanted)].reset_index(drop=True)
    if len(kept) < len(frame):
        logger.info("%s: %d image(s) with labels outside %s left out", src, len(frame) - len(kept), list(wanted))
    return kept, wanted


def _build(src: Path, out_dir: Path, *, patient_regex: str | None, masks_dir: str, id_from: str,
           dup_groups: bool = False, labels: Sequence[str] | None = None) -> ImportResult:
    if not src.is_dir():
        raise MissingFileError(f"source folder not found: {src}")
    out_dir = Path(out_dir)
    if out_dir.resolve() == src.resolve():
        raise ConfigError(f"output folder {out_dir} must differ from the source folder (sources are never modified)")
    try:
        pattern = re.compile(patient_regex) if patient_regex else None
    except re.error as exc:
        raise ConfigError(f"patient_regex {patient_regex!r} is not a valid regular expression: {exc}") from None
    classes = sorted(p.name for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{src}: no class folders found (expected one sub-folder per class)")
    if labels is not None:
        absent = [v for v in labels if v not in classes]
        if absent:
            raise DataError(f"{src}: no class folder(s) {absent}; its class folders are {classes}")
        classes = [c for c in classes if c in labels]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    merged = 0
    for cls in classes:
        images, masks = _scan_class_folder(src / cls)
        orphan = sorted(set(masks) - {p.stem for p in images})
        if orphan:
            raise DataError(f"{src / cls}: mask file(s) without an image: {orphan[:5]}")
        for img in images:
            if pattern is not None:
                m = pattern.search(img.name)
                if not m:
                    raise DataError(f"{img}: file name does not match patient_regex {patient_regex!r}")
                pid = m.group("patient") if "patient" in pattern.groupindex else m.group(1 if pattern.groups else 0)
            else:
                pid = f"{cls}/{img.stem}" if id_from == "path" else img.stem
            mask_rel = ""
            found = sorted(masks.get(img.stem, []))
            if len(found) == 1:
                mask_rel = _rel(found[0][1], out_dir)
            elif len(found) > 1:
                target = out_dir / masks_dir / cls / f"{img.stem}_mask.png"
                _merge_masks([p for _, p in found], target)
                mask_rel = _rel(target, out_dir)
                merged += 1
            rows.append(
                {
                    "patient_id": pid,
                    "image": _rel(img, out_dir),
                    "label": cls,
                    "mask": mask_rel,
                    "orig_name": img.name,
                    "n_mask_files": str(len(found)),
                }
            )
    if not rows:
        raise DataError(f"{src}: no images found in the class folders {classes}")
    frame = pd.DataFrame(rows)
    n_dup = _add_dup_groups(frame, out_dir, src) if dup_groups else None
    manifest = out_dir / "manifest.csv"
    atomic_write_csv(frame, manifest, index=False)
    if pattern is None and not dup_groups:
        logger.warning(
            "no patient_regex given: every image is taken as its own patient (patient_id = file name). Splits by "
            "patient are then splits by image; give patient_regex if several images share a patient, and import "
            "with dup_groups to group near-duplicate images."
        )
    return ImportResult(manifest, len(frame), tuple(classes), merged, n_dup)


def import_image_folder(src: str | Path, out_dir: str | Path, *, patient_regex: str | None = None,
                        dup_groups: bool = False, labels: Sequence[str] | None = None) -> ImportResult:
    """Build a manifest from a class-per-folder layout (``src/<class>/<image>``).

    Parameters
    ----------
    src : str or Path
        The root folder; each sub-folder is a class, named as the label.
    out_dir : str or Path
        Where ``manifest.csv`` (and merged masks) are written; must differ from ``src``.
    patient_regex : str, optional
        A regular expression searched in each file name to extract the patient id: the named group ``patient``,
        else group 1, else the whole match (e.g. ``r"^(case\\d+)_"``). Without it each image is its own patient and a
        warning is logged.
    dup_groups : bool, default False
        Add a ``dup_group`` column: near-duplicate images and the images of one patient share a group, named
        after its first image's patient id (:func:`nodescope.data.duplicate_groups`).
    labels : sequence of str, optional
        Import only these class folders (each must exist); the others are not read.

    Returns
    -------
    ImportResult

    Notes
    -----
    Files named ``<stem>_mask.<ext>`` (and ``<stem>_mask_<k>.<ext>``) beside an image are its mask(s); several masks
    are merged by pixel-wise union into ``out_dir/masks/<class>/<stem>_mask.png``.
    """
    return _build(Path(src), Path(out_dir), patient_regex=patient_regex, masks_dir="masks", id_from="path",
                  dup_groups=dup_groups, labels=labels)


def import_busi(src: str | Path, out_dir: str | Path, *, dup_groups: bool = False,
                labels: Sequence[str] | None = None) -> ImportResult:
    """Build a manifest from the BUSI release layout (Al-Dhabyani et al., Data in Brief 2020).

    Parameters
    ----------
    src : str or Path
        The ``Dataset_BUSI_with_GT`` folder with ``benign/``, ``malignant/`` and ``normal/`` sub-folders holding
        ``<class> (N).png`` and ``<class> (N)_mask[_k].png``.
    out_dir : str or Path
        Where ``manifest.csv`` and the merged masks are written.
    dup_groups : bool, default False
        Add a ``dup_group`` column grouping exact and near-duplicate images (see Notes).
    labels : sequence of str, optional
        Import only these classes, e.g. ``["benign", "malignant"]`` without the lesion-free ``normal`` images.

    Returns
    -------
    ImportResult

    Notes
    -----
    BUSI publishes no patient ids: ``patient_id`` is set to the image name (``"benign (1)"``), and the data contain
    exact and near duplicates (108 of the 780 images fall in 49 groups, 3 of them across classes). Import with
    ``dup_groups=True`` and split and train by ``dup_group``, or copies of one scan land in training and test.
    Images with several mask files (``_mask``, ``_mask_1``, ...) get the pixel-wise union of their masks.
    """
    res = _build(Path(src), Path(out_dir), patient_regex=None, masks_dir="merged_masks", id_from="stem",
                 dup_groups=dup_groups, labels=labels)
    expected = {"benign", "malignant", "normal"}
    if not set(res.classes) <= expected:
        logger.warning("BUSI layout expected class folders %s; found %s", sorted(expected), list(res.classes))
    return res


def _parse_columns(columns: Mapping[str, str] | None, frame: pd.DataFrame, src: Path) -> dict[str, str]:
    """``{source column: manifest column}`` from a ``{manifest column: source column}`` map, checked."""
    rename: dict[str, str] = {}
    for target, source in (columns or {}).items():
        if source not in frame.columns:
            raise DataError(f"{src}: column {source!r} (mapped to {target!r}) not found; its columns are "
                            f"{list(frame.columns)}")
        if target in frame.columns and target != source and target not in (columns or {}).values():
            raise DataError(f"{src}: mapping {source!r} to {target!r} would replace its own column {target!r}; "
                            f"map {target!r} to another name first (e.g. orig_{target}={target})")
        if source in rename:
            raise ConfigError(f"columns: source column {source!r} is mapped twice ({rename[source]!r} and {target!r})")
        rename[source] = target
    return rename


def import_table(src: str | Path, out_dir: str | Path, *, columns: Mapping[str, str] | None = None,
                 labels: Sequence[str] | None = None, dup_groups: bool = False) -> ImportResult:
    """Build a manifest from a table that lists the images (e.g. a public data set's ``labels.csv``).

    Parameters
    ----------
    src : str or Path
        The CSV table; its image and mask paths are relative to its own folder (or absolute).
    out_dir : str or Path
        Where ``manifest.csv`` is written; its paths are rewritten relative to this folder, so they point at the
        source files (nothing is copied).
    columns : mapping of str to str, optional
        ``{manifest column: source column}``, e.g. ``{"label": "Classification", "patient_id": "case"}``. The
        manifest needs ``patient_id``, ``image`` and ``label`` (and may have ``mask`` etc., see
        :data:`nodescope.data.OPTIONAL_COLUMNS`); unmapped columns are kept verbatim.
    labels : sequence of str, optional
        Keep only rows with these labels (e.g. ``["benign", "malignant"]`` without ``normal``); each must occur.
    dup_groups : bool, default False
        Add a ``dup_group`` column (near duplicates and each patient's images; see :func:`import_busi`).

    Returns
    -------
    ImportResult
        ``classes`` are the labels kept (in the order of ``labels``, else sorted); ``n_dropped`` the rows left out.

    Raises
    ------
    MissingFileError
        ``src`` is not a file.
    DataError
        A mapped column is missing, a required manifest column is missing after mapping (named with the columns
        the table has), or a label asked for has no row.
    """
    src, out_dir = Path(src), Path(out_dir)
    frame = read_csv_text(src, "labels table")
    frame = frame.rename(columns=_parse_columns(columns, frame, src))
    missing = [c for c in ("patient_id", "image", "label") if c not in frame.columns]
    if missing:
        raise DataError(f"{src}: no column(s) {missing} for the manifest; its columns are {list(frame.columns)}; "
                        "map them with columns={manifest column: source column}")
    n_all = len(frame)
    if frame.empty:
        raise DataError(f"{src}: the table has no rows")
    frame, classes = _keep_labels(frame, labels, src)
    out_dir.mkdir(parents=True, exist_ok=True)
    base, out_abs = src.parent.resolve(), out_dir.resolve()
    for col in ("image", "mask"):
        if col in frame.columns:
            frame[col] = [v if not v or Path(v).is_absolute() else _rel(base / v, out_abs) for v in frame[col]]
    front = [c for c in ("patient_id", "image", "label", "mask") if c in frame.columns]
    frame = frame[front + [c for c in frame.columns if c not in front]]
    n_dup = _add_dup_groups(frame, out_dir, src) if dup_groups else None
    manifest = out_dir / "manifest.csv"
    atomic_write_csv(frame, manifest, index=False)
    return ImportResult(manifest, len(frame), classes, 0, n_dup, n_all - len(frame))
