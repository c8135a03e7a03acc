"""Reading a clinical table (one row per patient) and deciding each column's kind.

A clinical table is a CSV with a ``patient_id`` column (required when it is joined to predictions, optional for a
Table 1) and one column per variable. Cells are read as text first so that ids such as ``007`` survive; a column is
*continuous* when every non-missing cell parses as a number and it has more than ``max_levels`` distinct values,
otherwise *categorical*. Both can be overridden per column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from nodescope.errors import DataError, MissingFileError

__all__ = ["MISSING_TOKENS", "VariableKind", "as_float", "column_kinds", "read_clinical_table", "require_columns"]

#: Cell values read as missing (compared after stripping white space, case-insensitively).
MISSING_TOKENS: tuple[str, ...] = ("", "na", "n/a", "nan", "null", "none", "not available", "missing", ".")

VariableKind = Literal["continuous", "categorical"]


def read_clinical_table(path: str | Path, *, missing: Sequence[str] = MISSING_TOKENS) -> pd.DataFrame:
    """Read a clinical CSV with every cell as text and the missing tokens as ``NA``.

    Parameters
    ----------
    path : str or Path
        The CSV file (comma-separated, header row).
    missing : sequence of str, default :data:`MISSING_TOKENS`
        Cell values (case-insensitive, stripped) that mean "not recorded".

    Returns
    -------
    pandas.DataFrame
        Object columns; missing cells are ``None``.

    Raises
    ------
    MissingFileError
        The file does not exist.
    DataError
        The file is empty, cannot be parsed, or has duplicate column names.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"clinical table {path} not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"clinical table {path}: cannot be read as CSV ({exc})") from None
    if raw.empty:
        raise DataError(f"clinical table {path}: no rows")
    dup = [c for c in raw.columns if "." in c and c.rsplit(".", 1)[0] in raw.columns and c.rsplit(".", 1)[1].isdigit()]
    if dup:
        raise DataError(f"clinical table {path}: duplicate column name(s) {', '.join(dup)}")
    tokens = {m.strip().lower() for m in missing}
    out = raw.apply(lambda s: s.map(lambda v: None if v.strip().lower() in tokens else v.strip()))
    out.attrs["source"] = str(path)
    return out


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, what: str = "clinical table") -> None:
    """Raise :class:`DataError` naming the table and every column of ``columns`` it lacks."""
    src = frame.attrs.get("source", what)
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise DataError(f"{src}: no column {', '.join(repr(c) for c in lacking)}; it has "
                        f"{', '.join(repr(c) for c in frame.columns)}")


def _numeric(series: pd.Series) -> pd.Series | None:
    """The column as floats when every non-missing cell parses as a finite number, else ``None``."""
    num = pd.to_numeric(series, errors="coerce")
    given = series.notna()
    if not given.any() or num[given].isna().any() or not np.isfinite(num[given].to_numpy(float)).all():
        return None
    return num.astype(float)


def column_kinds(frame: pd.DataFrame, columns: Iterable[str], *, max_levels: int = 5,
                 continuous: Iterable[str] = (), categorical: Iterable[str] = ()) -> dict[str, VariableKind]:
    """Decide whether each column is continuous or categorical.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table as read by :func:`read_clinical_table`.
    columns : iterable of str
        The columns to classify.
    max_levels : int, default 5
        A numeric column with at most this many distinct values is categorical (a 0/1 flag, a 1-5 score).
    continuous, categorical : iterable of str
        Columns forced to a kind. A column forced continuous must be numeric.

    Returns
    -------
    dict
        ``{column: "continuous" | "categorical"}`` in the order of ``columns``.

    Raises
    ------
    DataError
        A forced column is absent, forced both ways, or forced continuous while holding text.
    """
    cont, cat = list(continuous), list(categorical)
    require_columns(frame, [*cont, *cat])
    both = sorted(set(cont) & set(cat))
    if both:
        raise DataError(f"column(s) {', '.join(both)} given as both continuous and categorical")
    out: dict[str, VariableKind] = {}
    for col in columns:
        num = _numeric(frame[col])
        if col in cat:
            out[col] = "categorical"
        elif col in cont:
            if num is None:
                bad = frame[col][frame[col].notna() & pd.to_numeric(frame[col], errors="coerce").isna()]
                row = int(bad.index[0]) + 2 if len(bad) else "?"
                raise DataError(f"{frame.attrs.get('source', 'clinical table')}: column {col!r} was declared "
                                f"continuous but line {row} holds {bad.iloc[0] if len(bad) else ''!r}, not a number")
            out[col] = "continuous"
        else:
            out[col] = "continuous" if num is not None and num.nunique() > max_levels else "categorical"
    return out


def as_float(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column parsed as floats (``nan`` where missing); :class:`DataError` naming the line of a text cell."""
    num = _numeric(frame[column])
    if num is None:
        bad = frame[column][frame[column].notna() & pd.to_numeric(frame[column], errors="coerce").isna()]
        where = f" (line {int(bad.index[0]) + 2}: {bad.iloc[0]!r})" if len(bad) else ""
        raise DataError(f"{frame.attrs.get('source', 'clinical table')}: column {column!r} must be numeric{where}")
    return num
