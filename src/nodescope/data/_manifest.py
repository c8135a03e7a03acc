"""The manifest: one row per image, keyed by patient.

A manifest is a CSV file (see ``docs/manifest.md``). :func:`read_manifest` loads it verbatim (every cell a string,
nothing re-typed or dropped) and validates it, collecting *every* problem before raising one
:class:`ManifestError`, so a user fixes their file in one pass instead of one error at a time.

Row numbers in messages are line numbers of the CSV file, the header being line 1, so ``row 7`` is what an editor
or a spreadsheet shows as line/row 7.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nodescope.data._io import ImageReadError, read_image
from nodescope.data._io_base import read_csv_text
from nodescope.errors import DataError, MissingFileError

__all__ = [
    "KNOWN_MODALITIES",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "join_clinical",
    "read_clinical",
    "read_manifest",
    "validate_manifest",
]

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("patient_id", "image", "label")
OPTIONAL_COLUMNS: tuple[str, ...] = ("lesion_id", "modality", "view", "mask", "site", "date", "split")
KNOWN_MODALITIES: tuple[str, ...] = ("bmode", "cdfi", "elastography", "swe", "ceus", "ct", "mri", "mammography")

_HEADER_LINES = 1  # data row i (0-based) is on line i + 2 of the file


@dataclass(frozen=True)
class ManifestProblem:
    """One problem found in a manifest.

    Attributes
    ----------
    row : int or None
        Line number in the CSV file (header = line 1); ``None`` for problems of the whole file.
    column : str or None
        The column concerned.
    value : str or None
        The offending cell value as written in the file.
    message : str
        What is wrong and what was expected.
    """

    row: int | None
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        val = f" (value {self.value!r})" if self.value is not None else ""
        return f"{prefix}{val}: {self.message}" if prefix else f"{self.message}{val}"


class ManifestError(DataError):
    """A manifest failed validation; ``problems`` lists every problem found. ``unreadable``: the file could not be
    read as a CSV table at all (empty, repeated column names, not CSV), so nothing was validated; the message is
    then one line."""

    def __init__(self, source: str, problems: Sequence[ManifestProblem], *, unreadable: bool = False) -> None:
        self.source = source
        self.problems = list(problems)
        self.unreadable = unreadable
        if unreadable:
            super().__init__("; ".join(str(p) for p in self.problems))
            return
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''} found:\n{lines}")


@dataclass(frozen=True)
class Manifest:
    """A validated manifest.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows as read, every column kept verbatim as strings (missing cells are ``""``).
    root : Path
        The folder image and mask paths are relative to (the manifest's folder).
    path : Path or None
        The manifest file, when read from disk.
    classes : tuple of str
        The class names, in the order given by the caller or sorted.
    group_col : str
        The grouping column splits use (``patient_id`` unless the data lack patient ids).
    """

    frame: pd.DataFrame
    root: Path
    path: Path | None = None
    classes: tuple[str, ...] = ()
    group_col: str = "patient_id"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.frame)

    def image_paths(self) -> list[Path]:
        """Absolute image paths, in row order."""
        return [_resolve(self.root, v) for v in self.frame["image"]]

    def mask_paths(self) -> list[Path | None]:
        """Absolute mask paths in row order (``None`` where a row has no mask)."""
        if "mask" not in self.frame.columns:
            return [None] * len(self.frame)
        return [_resolve(self.root, v) if v else None for v in self.frame["mask"]]

    def labels(self) -> list[str]:
        """Class names in row order."""
        return list(self.frame["label"])

    def label_indices(self) -> list[int]:
        """Class indices (positions in :attr:`classes`) in row order."""
        index = {c: i for i, c in enumerate(self.classes)}
        return [index[v] for v in self.frame["label"]]

    def summary(self) -> dict[str, pd.DataFrame]:
        """Counts of patients and images per class, and per site / modality / split where present.

        Returns
        -------
        dict of str to pandas.DataFrame
            ``"overall"`` (patients, images) and one table per available column among ``label``, ``site``,
            ``modality``, ``split``, each with image and patient counts.
        """
        df = self.frame
        out = {
            "overall": pd.DataFrame(
                [{"patients": df[self.group_col].nunique(), "images": len(df), "classes": len(self.classes)}]
            )
        }
        for col in ("label", "site", "modality", "split"):
            if col in df.columns and (df[col] != "").any():
                g = df.assign(**{col: df[col].replace("", "(empty)")}).groupby(col, sort=True)
                out[col] = pd.DataFrame(
                    {"images": g.size(), "patients": g[self.group_col].nunique()}
                ).reset_index()
        return out


def _resolve(root: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else root / p


def _is_iso_date(value: str) -> bool:
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def validate_manifest(
    frame: pd.DataFrame,
    root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    check_images: bool = True,
    group_col: str = "patient_id",
) -> list[ManifestProblem]:
    """Check a manifest table and return every problem found (empty list when valid).

    Parameters
    ----------
    frame : pandas.DataFrame
        The manifest with string cells (as :func:`read_manifest` loads it); ``""`` means missing.
    root : str or Path
        Folder that relative image and mask paths start from.
    classes : sequence of str, optional
        The allowed class names; when ``None`` every non-empty label is allowed.
    check_images : bool
        Open every image and mask (headers, and a full decode of the image) to catch undecodable files and
        mask/image size mismatches. Turn off only for quick checks of huge manifests.
    group_col : str
        The grouping column that must be non-empty and must not span splits.

    Returns
    -------
    list of ManifestProblem
    """
    root = Path(root)
    problems = _table_problems(frame, group_col)
    if problems:
        return problems
    cols = list(frame.columns)
    allowed = set(classes) if classes is not None else None
    seen_images: dict[str, int] = {}
    for i, row in enumerate(frame.itertuples(index=False)):
        line = i + 1 + _HEADER_LINES
        rec = dict(zip(cols, row, strict=True))
        problems.extend(_field_problems(line, rec, group_col, allowed))
        problems.extend(_file_problems(line, rec, root, seen_images, check_images))
    if "split" in cols:
        problems.extend(_split_leak_problems(frame, group_col))
    return problems


def _table_problems(frame: pd.DataFrame, group_col: str) -> list[ManifestProblem]:
    """Problems with the table as a whole (columns, emptiness); any of them stops validation."""
    cols = list(frame.columns)
    required = [group_col, "image", "label"] if group_col != "patient_id" else list(REQUIRED_COLUMNS)
    missing = [c for c in required if c not in cols]
    if missing:
        return [ManifestProblem(None, None, None, f"missing required column(s) {missing}; columns found: {cols}")]
    dup_cols = [c for c in set(cols) if cols.count(c) > 1]
    if dup_cols:
        return [ManifestProblem(None, None, None, f"duplicate column name(s) {sorted(dup_cols)}")]
    if len(frame) == 0:
        return [ManifestProblem(None, None, None, "the manifest has no rows")]
    return []


def _field_problems(
    line: int, rec: dict[str, str], group_col: str, allowed: set[str] | None
) -> list[ManifestProblem]:
    """Problems with one row's group, label and date cells."""
    problems: list[ManifestProblem] = []
    group = rec[group_col]
    if group.strip() == "":
        problems.append(ManifestProblem(line, group_col, group, f"empty {group_col}; every image needs one"))
    label = rec["label"]
    if label.strip() == "":
        problems.append(ManifestProblem(line, "label", label, "empty label"))
    elif allowed is not None and label not in allowed:
        problems.append(ManifestProblem(line, "label", label, f"unknown label; expected one of {sorted(allowed)}"))
    if "date" in rec and rec["date"] != "" and not _is_iso_date(rec["date"]):
        problems.append(ManifestProblem(line, "date", rec["date"], "not a date; expected ISO 8601 YYYY-MM-DD"))
    return problems


def _file_problems(
    line: int, rec: dict[str, str], root: Path, seen_images: dict[str, int], check_images: bool
) -> list[ManifestProblem]:
    """Problems with one row's image and mask files; records the image in ``seen_images``."""
    problems: list[ManifestProblem] = []
    image = rec["image"]
    if image.strip() == "":
        problems.append(ManifestProblem(line, "image", image, "empty image path"))
        return problems
    key = str(_resolve(root, image).resolve())
    if key in seen_images:
        problems.append(
            ManifestProblem(line, "image", image, f"the same image is already listed on row {seen_images[key]}")
        )
    else:
        seen_images[key] = line
    img_size = None
    img_path = _resolve(root, image)
    if not img_path.is_file():
        problems.append(ManifestProblem(line, "image", image, f"file not found: {img_path}"))
    elif check_images:
        try:  # a full decode catches truncated files that a header read would pass
            img = read_image(img_path)
            img_size = (img.height, img.width)
        except ImageReadError as exc:
            problems.append(ManifestProblem(line, "image", image, f"cannot decode image: {exc}"))
    if "mask" in rec and rec["mask"] != "":
        problems.extend(_mask_problems(line, rec["mask"], root, img_size, check_images))
    return problems


def _mask_problems(
    line: int, mask: str, root: Path, img_size: tuple[int, int] | None, check_images: bool
) -> list[ManifestProblem]:
    """Problems with one row's mask file: missing, undecodable, or a size other than the image's."""
    mask_path = _resolve(root, mask)
    if not mask_path.is_file():
        return [ManifestProblem(line, "mask", mask, f"file not found: {mask_path}")]
    if not check_images:
        return []
    try:
        mimg = read_image(mask_path)
    except ImageReadError as exc:
        return [ManifestProblem(line, "mask", mask, f"cannot decode mask: {exc}")]
    if img_size is not None and (mimg.height, mimg.width) != img_size:
        return [
            ManifestProblem(
                line,
                "mask",
                mask,
                f"mask size {mimg.width}x{mimg.height} differs from image size "
                f"{img_size[1]}x{img_size[0]} (width x height)",
            )
        ]
    return []


def _split_leak_problems(frame: pd.DataFrame, group_col: str) -> list[ManifestProblem]:
    """One problem per group whose rows sit in more than one split."""
    problems: list[ManifestProblem] = []
    sub = frame[(frame[group_col] != "") & (frame["split"] != "")]
    spans = sub.groupby(group_col)["split"].agg(lambda s: sorted(set(s)))
    for group, parts in spans.items():
        if len(parts) > 1:
            rows = [int(i) + 1 + _HEADER_LINES for i in sub.index[sub[group_col] == group]]
            problems.append(
                ManifestProblem(
                    rows[0],
                    "split",
                    ", ".join(parts),
                    f"{group_col} {group!r} appears in several splits {parts} (rows {rows}); "
                    "a patient must stay in one split",
                )
            )
    return problems


def read_manifest(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    check_images: bool = True,
    group_col: str = "patient_id",
    root: str | Path | None = None,
) -> Manifest:
    """Read and validate a manifest CSV.

    Parameters
    ----------
    path : str or Path
        The manifest file.
    classes : sequence of str, optional
        Allowed class names, in the order class indices should follow. Default: the sorted distinct labels.
    check_images : bool
        Decode every image and read every mask header (see :func:`validate_manifest`).
    group_col : str
        Grouping column (``patient_id``; ``dup_group`` for BUSI, which has no patient ids).
    root : str or Path, optional
        Folder relative paths start from; default the manifest's folder.

    Returns
    -------
    Manifest

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ManifestError
        Listing every problem found, each with its row, column and value.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"manifest not found: {path}")
    try:
        frame = read_csv_text(path, "manifest", na_filter=False, encoding="utf-8-sig")
    except MissingFileError:
        raise
    except DataError as exc:
        raise ManifestError(str(path), [ManifestProblem(None, None, None, str(exc))], unreadable=True) from None
    frame = _strip_keys(frame, path, group_col)
    base = Path(root) if root is not None else path.parent
    problems = validate_manifest(frame, base, classes=classes, check_images=check_images, group_col=group_col)
    if problems:
        raise ManifestError(str(path), problems)
    found = sorted(set(frame["label"]))
    cls = tuple(classes) if classes is not None else tuple(found)
    warnings = _case_warnings(path, found)
    if "modality" in frame.columns:
        odd = sorted(set(frame["modality"]) - set(KNOWN_MODALITIES) - {""})
        if odd:
            msg = f"modalities not among the conventional names {list(KNOWN_MODALITIES)}: {odd} (kept as written)"
            logger.info(msg)
            warnings.append(msg)
    return Manifest(frame=frame, root=base, path=path, classes=cls, group_col=group_col, warnings=tuple(warnings))


#: Key columns whose surrounding whitespace read_manifest strips (with the group column); other cells stay verbatim.
_KEY_COLUMNS: tuple[str, ...] = ("patient_id", "lesion_id", "label")


def _strip_keys(frame: pd.DataFrame, path: Path, group_col: str) -> pd.DataFrame:
    """Ids and labels without surrounding whitespace (``"SYN0001 "`` is patient ``SYN0001``); logged when changed."""
    frame = frame.copy()
    for col in dict.fromkeys((*_KEY_COLUMNS, group_col)):
        if col not in frame.columns or col in ("image", "mask"):  # paths stay verbatim even as a group column
            continue
        stripped = frame[col].str.strip()
        changed = frame[col] != stripped
        if changed.any():
            eg = sorted(set(frame.loc[changed, col]))[:3]
            logger.info("%s: stripped surrounding whitespace from %d %r value(s), e.g. %s", path, int(changed.sum()),
                        col, eg)
            frame[col] = stripped
    return frame


def _case_warnings(path: Path, labels: Sequence[str]) -> list[str]:
    """A warning per set of labels that differ only in case (``Benign`` and ``benign`` are two classes)."""
    by_fold: dict[str, list[str]] = {}
    for lab in labels:
        by_fold.setdefault(lab.casefold(), []).append(lab)
    out = []
    for same in by_fold.values():
        if len(same) > 1:
            msg = (f"{path}: labels {same} differ only in case and are different classes; write them the same way "
                   "if they are one class")
            logger.warning(msg)
            out.append(msg)
    return out


def read_clinical(path: str | Path, *, id_col: str = "patient_id") -> pd.DataFrame:
    """Read a clinical table (one row per patient) keeping every cell verbatim as a string.

    Raises
    ------
    ValueError
        When ``id_col`` is missing, empty on some row, or repeated (rows named in the message).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"clinical table not found: {path}")
    df = read_csv_text(path, "clinical table", na_filter=False, encoding="utf-8-sig")
    if id_col not in df.columns:
        raise DataError(f"{path}: missing column '{id_col}'; columns found: {list(df.columns)}")
    empty = [int(i) + 2 for i in df.index[df[id_col].str.strip() == ""]]
    if empty:
        raise DataError(f"{path}: empty '{id_col}' on rows {empty}")
    dup = df[id_col][df[id_col].duplicated(keep=False)]
    if len(dup):
        rows = {v: [int(i) + 2 for i in dup.index[dup == v]] for v in dup.unique()}
        raise DataError(f"{path}: '{id_col}' must be unique (one row per patient); repeated: {rows}")
    return df


def join_clinical(manifest: Manifest, clinical: pd.DataFrame, *, id_col: str = "patient_id",
                  require_all: bool = True) -> pd.DataFrame:
    """Join a clinical table onto the manifest rows by patient id.

    Parameters
    ----------
    manifest : Manifest
    clinical : pandas.DataFrame
        One row per patient (see :func:`read_clinical`).
    id_col : str
        The key column in both tables.
    require_all : bool
        Raise when a manifest patient has no clinical row (default); else those rows get empty cells.

    Returns
    -------
    pandas.DataFrame
        The manifest rows, in order, with the clinical columns added. Clinical columns whose names clash with
        manifest columns get the suffix ``_clinical``.
    """
    if id_col not in clinical.columns:
        raise DataError(f"clinical table: missing column '{id_col}'; columns found: {list(clinical.columns)}")
    missing = sorted(set(manifest.frame[id_col]) - set(clinical[id_col]))
    if missing and require_all:
        shown = missing[:10]
        raise DataError(
            f"clinical table: {len(missing)} patient(s) of the manifest have no clinical row, e.g. {shown}"
        )
    merged = manifest.frame.merge(clinical, on=id_col, how="left", suffixes=("", "_clinical"), validate="m:1")
    return merged.fillna("")

