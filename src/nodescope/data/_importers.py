"""Importers: build a manifest from common folder layouts without touching the source files.

- :func:`import_image_folder`: one folder per class (torchvision's ``ImageFolder`` layout), masks optionally beside
  the images as ``<stem>_mask.<ext>``;
- :func:`import_busi`: the BUSI release (``benign/benign (1).png`` with ``benign (1)_mask.png``,
  ``benign (1)_mask_1.png``, ...); several masks of one image are merged (pixel-wise union) into a new file.

Source images are never modified or copied: the manifest points at them. Only merged masks are written, under the
output folder.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from nodescope._files import atomic_write_csv
from nodescope.data._io import IMAGE_SUFFIXES, read_image
from nodescope.errors import ConfigError, DataError, MissingFileError

__all__ = ["ImportResult", "import_busi", "import_image_folder"]

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
        Class folders found.
    n_merged_masks : int
        Images whose several mask files were merged into one.
    """

    manifest_path: Path
    n_images: int
    classes: tuple[str, ...]
    n_merged_masks: int = 0


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


def _build(src: Path, out_dir: Path, *, patient_regex: str | None, masks_dir: str, id_from: str) -> ImportResult:
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
    manifest = out_dir / "manifest.csv"
    atomic_write_csv(pd.DataFrame(rows), manifest, index=False)
    if pattern is None:
        logger.warning(
            "no patient_regex given: every image is taken as its own patient (patient_id = file name). Splits by "
            "patient are then splits by image; give patient_regex if several images share a patient."
        )
    return ImportResult(manifest, len(rows), tuple(classes), merged)


def import_image_folder(src: str | Path, out_dir: str | Path, *, patient_regex: str | None = None) -> ImportResult:
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

    Returns
    -------
    ImportResult

    Notes
    -----
    Files named ``<stem>_mask.<ext>`` (and ``<stem>_mask_<k>.<ext>``) beside an image are its mask(s); several masks
    are merged by pixel-wise union into ``out_dir/masks/<class>/<stem>_mask.png``.
    """
    return _build(Path(src), Path(out_dir), patient_regex=patient_regex, masks_dir="masks", id_from="path")


def import_busi(src: str | Path, out_dir: str | Path) -> ImportResult:
    """Build a manifest from the BUSI release layout (Al-Dhabyani et al., Data in Brief 2020).

    Parameters
    ----------
    src : str or Path
        The ``Dataset_BUSI_with_GT`` folder with ``benign/``, ``malignant/`` and ``normal/`` sub-folders holding
        ``<class> (N).png`` and ``<class> (N)_mask[_k].png``.
    out_dir : str or Path
        Where ``manifest.csv`` and the merged masks are written.

    Returns
    -------
    ImportResult

    Notes
    -----
    BUSI publishes no patient ids: ``patient_id`` is set to the image name (``"benign (1)"``), and the data contain
    exact and near duplicates. Group by a duplicate-aware key before splitting when one is available.
    Images with several mask files (``_mask``, ``_mask_1``, ...) get the pixel-wise union of their masks.
    """
    res = _build(Path(src), Path(out_dir), patient_regex=None, masks_dir="merged_masks", id_from="stem")
    expected = {"benign", "malignant", "normal"}
    if not set(res.classes) <= expected:
        logger.warning("BUSI layout expected class folders %s; found %s", sorted(expected), list(res.classes))
    return res
