"""Input of a diagnostic-accuracy meta-analysis: one 2x2 table per validation cohort.

Conventions (documented in ``docs/meta.md``):

- one row per validation cohort; ``study`` names the publication, the optional ``cohort`` the validation set within it
  (internal test, external site A, ...); ``(study, cohort)`` must be unique;
- the four cells are ``TP, FP, FN, TN``; headers of the required columns are matched **case-insensitively** and only
  exactly (``tp`` or ``Tp`` is ``TP``; ``true_pos`` is not); the header renaming is recorded in
  :attr:`Studies.renamed`; values are never changed;
- counts are integers >= 0 (``35`` or ``35.0``; not ``35.5``, not empty); each cohort needs at least one diseased
  (``TP + FN > 0``) and one non-diseased (``FP + TN > 0``) participant;
- every other column is a covariate, kept verbatim (numbers when all its non-empty values are numbers);
- every problem of a file is reported at once, naming the row (1-based data row; the file line is row + 1), the
  column, the value and what was expected.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nodescope.errors import MissingFileError, StatisticsInputError

__all__ = ["COUNT_COLUMNS", "ReconstructionWarning", "Studies", "StudiesError", "read_studies"]

COUNT_COLUMNS: tuple[str, str, str, str] = ("TP", "FP", "FN", "TN")

logger = logging.getLogger(__name__)


class ReconstructionWarning(UserWarning):
    """Reported accuracy figures that no integer 2x2 table reproduces within the rounding of their decimals."""


class StudiesError(StatisticsInputError):
    """A studies table has one or more problems; :attr:`problems` lists each with its row, column and value."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        head = f"{source}: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        super().__init__(head + ":\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True, eq=False)
class Studies:
    """A validated table of 2x2 counts, one row per validation cohort.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``study`` (str), ``cohort`` (str, empty when the file has none), ``TP, FP, FN, TN`` (int64) and the
        covariates, in file order; index ``0..k-1``.
    covariates : tuple of str
        The covariate column names (every column that is not study, cohort or a count).
    source : str
        The file read, or ``"<DataFrame>"``.
    renamed : dict
        Original header -> canonical name for headers matched case-insensitively or given as ``study_col`` /
        ``cohort_col`` (empty when every header was already canonical).
    """

    frame: pd.DataFrame
    covariates: tuple[str, ...]
    source: str = "<DataFrame>"
    renamed: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    def _cell(self, name: str) -> np.ndarray:
        return self.frame[name].to_numpy(dtype=np.int64)

    @property
    def tp(self) -> np.ndarray:
        """True positives, shape ``(k,)``, int64."""
        return self._cell("TP")

    @property
    def fp(self) -> np.ndarray:
        """False positives, shape ``(k,)``, int64."""
        return self._cell("FP")

    @property
    def fn(self) -> np.ndarray:
        """False negatives, shape ``(k,)``, int64."""
        return self._cell("FN")

    @property
    def tn(self) -> np.ndarray:
        """True negatives, shape ``(k,)``, int64."""
        return self._cell("TN")

    @property
    def study(self) -> np.ndarray:
        """Study label of each cohort, shape ``(k,)``, object (str)."""
        return self.frame["study"].to_numpy(dtype=object)

    @property
    def has_cohorts(self) -> bool:
        """``True`` when at least one cohort label is non-empty."""
        return bool((self.frame["cohort"] != "").any())

    def labels(self) -> list[str]:
        """One display label per row: ``"study"`` or ``"study: cohort"``."""
        return [f"{s}: {c}" if c else str(s) for s, c in zip(self.frame["study"], self.frame["cohort"], strict=True)]

    def subset(self, mask: np.ndarray | pd.Series | Sequence[bool]) -> Studies:
        """The rows where ``mask`` is true, as a new :class:`Studies` (index reset)."""
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != (len(self),):
            raise StatisticsInputError(f"mask has shape {keep.shape}; expected ({len(self)},), one value per cohort")
        return Studies(self.frame.loc[keep].reset_index(drop=True), self.covariates, self.source, dict(self.renamed))

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`frame`."""
        return self.frame.copy()


def did_you_mean(value: str, choices: Sequence[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` (:func:`difflib.get_close_matches`), else ``""``."""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _match_header(columns: Sequence[str], wanted: str, renamed: dict[str, str], problems: list[str],
                  required: bool) -> str | None:
    """Find ``wanted`` among ``columns`` exactly, else case-insensitively; record renames and problems."""
    hits = [c for c in columns if str(c).strip().lower() == wanted.lower()]
    if len(hits) == 1 and hits[0] == wanted:
        return wanted
    if len(hits) == 1:
        renamed[hits[0]] = wanted
        return hits[0]
    if len(hits) > 1:
        problems.append(f"column {wanted!r}: several headers match it case-insensitively ({hits}); keep one")
        return None
    if required:
        hint = did_you_mean(wanted, [str(c) for c in columns])
        problems.append(f"column {wanted!r} is missing{hint}; the columns are {list(columns)}")
    return None


def _parse_count(value: object) -> tuple[int | None, str | None]:
    """Parse one cell: ``(count, None)`` or ``(None, why)``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, "empty; expected an integer >= 0"
    if isinstance(value, bool | np.bool_):
        return None, f"{value!r} is a boolean; expected an integer >= 0"
    text = str(value).strip()
    if text == "":
        return None, "empty; expected an integer >= 0"
    try:
        number = float(text)
    except ValueError:
        return None, f"{text!r} is not a number; expected an integer >= 0"
    if not math.isfinite(number):
        return None, f"{text!r} is not finite; expected an integer >= 0"
    if number != math.floor(number):
        return None, f"{text!r} is not an integer; expected a whole count (reconstructed tables must be rounded " \
                     "explicitly, see reconstruct_2x2)"
    if number < 0:
        return None, f"{text!r} is negative; expected an integer >= 0"
    return int(number), None


def _as_covariate(column: pd.Series) -> pd.Series:
    """Strings from a CSV: numbers when every non-empty value is a number, else str with empty -> NaN."""
    stripped = column.astype(str).str.strip()
    empty = stripped == ""
    try:
        numbers = pd.to_numeric(stripped[~empty])
    except (ValueError, TypeError):
        return column.where(~empty, np.nan).astype(object)
    out = pd.Series(np.nan, index=column.index, dtype=float)
    out[~empty] = numbers.astype(float)
    if (~empty).all() and np.all(np.mod(out, 1) == 0):
        return out.astype(np.int64)
    return out


def read_studies(
    source: str | Path | pd.DataFrame,
    *,
    study_col: str = "study",
    cohort_col: str | None = "cohort",
    covariates: Sequence[str] = (),
    levels: Mapping[str, Sequence[str]] | None = None,
) -> Studies:
    """Read and validate a studies table (one 2x2 table per validation cohort).

    Parameters
    ----------
    source : str, Path or pandas.DataFrame
        A CSV file or a frame with columns ``study``, optional ``cohort``, ``TP, FP, FN, TN`` and covariates.
        Headers of these columns are matched exactly first, then case-insensitively.
    study_col : str
        The column naming the study (publication); renamed to ``study``. Default ``"study"``.
    cohort_col : str or None
        The column naming the cohort within a study; renamed to ``cohort``. Optional in the file: when absent every
        cohort label is empty. ``None`` ignores any cohort column (it is then a covariate).
    covariates : sequence of str
        Covariate columns that must be present (for example those used for subgroups or meta-regression).
    levels : mapping of str to sequence of str, optional
        Allowed values per covariate (``{"modality": ["US", "MRI", "CT"]}``); any other non-empty value is an error.

    Returns
    -------
    Studies

    Raises
    ------
    StudiesError
        (a ``ValueError``) listing every problem: missing or ambiguous columns, empty, non-numeric, non-integer or
        negative counts, empty arms (``TP + FN == 0`` or ``FP + TN == 0``), empty study labels, duplicate
        ``(study, cohort)``, missing covariates, values outside ``levels``.
    TypeError
        When ``source`` is neither a path nor a DataFrame.
    FileNotFoundError
        When the file does not exist.

    Examples
    --------
    >>> import pandas as pd
    >>> s = read_studies(pd.DataFrame({"study": ["A", "B"], "tp": [9, 5], "FP": [1, 2], "FN": [1, 5], "TN": [9, 8]}))
    >>> s.tp.tolist(), s.renamed
    ([9, 5], {'tp': 'TP'})
    """
    raw, name, from_csv = read_source_table(source, "studies")
    raw.columns = [str(c) for c in raw.columns]
    cols = _study_columns(raw, name, study_col, cohort_col, covariates)
    problems: list[str] = []
    counts, keys = _parse_rows(raw, cols, problems)
    frame = pd.DataFrame({"study": keys["study"], "cohort": keys["cohort"]})
    for c in COUNT_COLUMNS:
        frame[c] = counts[c]
    for c in cols.covariates:
        frame[cols.cov_names[c]] = _as_covariate(raw[c]).to_numpy() if from_csv else raw[c].to_numpy()
    cov_cols = [cols.cov_names[c] for c in cols.covariates]
    problems.extend(_level_problems(frame, levels or {}, cov_cols))
    if problems:
        raise StudiesError(name, problems)
    _warn_implausible_counts(frame, name)
    return Studies(frame=frame, covariates=tuple(cov_cols), source=name, renamed=cols.renamed)


#: Counts above these are beyond any real diagnostic-accuracy study (a typo, or a value in the wrong unit): warned.
MAX_PLAUSIBLE_CELL = 10**7
MAX_PLAUSIBLE_N = 10**8


def _warn_implausible_counts(frame: pd.DataFrame, name: str) -> list[str]:
    """A logged warning per cohort whose 2x2 cell exceeds :data:`MAX_PLAUSIBLE_CELL` or whose total exceeds
    :data:`MAX_PLAUSIBLE_N` (the fits still run, but slowly, and the numbers are probably wrong)."""
    out = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = {c: int(getattr(row, c)) for c in COUNT_COLUMNS}
        n = sum(cells.values())
        big = {c: v for c, v in cells.items() if v > MAX_PLAUSIBLE_CELL}
        if big or n > MAX_PLAUSIBLE_N:
            who = f"{row.study}" + (f" ({row.cohort})" if row.cohort else "")
            what = ", ".join(f"{c}={v:,}" for c, v in big.items()) or f"n={n:,}"
            msg = (f"{name}: study {who!r} (row {i + 1}) has {what}, beyond any real study (a cell above "
                   f"{MAX_PLAUSIBLE_CELL:,} or n above {MAX_PLAUSIBLE_N:,}); check the counts, the fits may be slow")
            logger.warning(msg)
            out.append(msg)
    return out


def read_source_table(source: str | Path | pd.DataFrame, what: str) -> tuple[pd.DataFrame, str, bool]:
    """A copy of a frame, or a CSV read as strings: ``(raw, name for messages, whether it came from a CSV)``.

    ``what`` names the table in the file-not-found message (``"studies"``, ``"QUADAS-2"``).
    """
    if isinstance(source, pd.DataFrame):
        return source.copy(), "<DataFrame>", False
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise MissingFileError(f"{what} file not found: {path}")
        from nodescope.data._io_base import read_csv_text

        return read_csv_text(path, f"{what} table", StatisticsInputError, skipinitialspace=True), str(path), True
    raise TypeError(f"source must be a path or a pandas DataFrame, got {type(source).__name__}")


@dataclass(frozen=True)
class _StudyColumns:
    """Where the study, cohort and count columns of a raw table are, and what its covariate columns are called."""

    study: str
    cohort: str | None
    counts: dict[str, str]
    covariates: list[str]  # raw headers
    cov_names: dict[str, str]  # raw header -> column name in Studies.frame
    renamed: dict[str, str]


def _study_columns(
    raw: pd.DataFrame, name: str, study_col: str, cohort_col: str | None, covariates: Sequence[str]
) -> _StudyColumns:
    """Match the headers of ``raw``; raise :class:`StudiesError` with every header problem (and an empty table)."""
    problems: list[str] = []
    renamed: dict[str, str] = {}
    columns = list(raw.columns)

    study_src = _match_header(columns, study_col, renamed, problems, required=True)
    if study_src is not None and study_src != "study":
        renamed[study_src] = "study"
    cohort_src = _match_header(columns, cohort_col, renamed, problems, required=False) if cohort_col else None
    if cohort_src is not None and cohort_src != "cohort":
        renamed[cohort_src] = "cohort"
    count_src = {c: _match_header(columns, c, renamed, problems, required=True) for c in COUNT_COLUMNS}
    used = {study_src, cohort_src, *count_src.values()} - {None}
    cov_cols = [c for c in columns if c not in used]
    # A covariate whose header is a canonical name (``study`` when ``study_col="study_id"``) keeps its values under
    # ``original_<name>``; the renaming is recorded.
    cov_names = {c: (f"original_{c}" if c in ("study", "cohort", *COUNT_COLUMNS) else c) for c in cov_cols}
    for c, new in cov_names.items():
        if new != c:
            if new in columns:
                problems.append(f"column {c!r} is not used as {c} and {new!r} exists too; rename or drop one")
            renamed[c] = new
    for want in covariates:
        if want not in cov_names.values():
            hint = did_you_mean(want, cov_cols)
            problems.append(f"covariate column {want!r} is missing{hint}; the covariates are {cov_cols}")
    if len(raw) == 0:
        problems.append("the table has no rows; expected one row per validation cohort")
    if problems:
        raise StudiesError(name, problems)
    assert study_src is not None
    return _StudyColumns(study_src, cohort_src, count_src, cov_cols, cov_names, renamed)  # type: ignore[arg-type]


def _parse_rows(
    raw: pd.DataFrame, cols: _StudyColumns, problems: list[str]
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """The counts and the ``(study, cohort)`` keys of every row; row problems and duplicates go to ``problems``."""
    n = len(raw)
    counts = {c: np.zeros(n, dtype=np.int64) for c in COUNT_COLUMNS}
    study = raw[cols.study]
    cohort = (raw[cols.cohort] if cols.cohort is not None else pd.Series([""] * n, index=raw.index))
    cohort = cohort.where(cohort.notna(), "").astype(str).str.strip()
    for i in range(n):
        row = i + 1
        label = study.iloc[i]
        label_ok = not pd.isna(label) and str(label).strip() != ""
        label = str(label).strip() if label_ok else ""
        where = f"row {row} (study {label!r})" if label_ok else f"row {row}"
        if not label_ok:
            problems.append(f"row {row}, column {cols.study!r}: empty study label; expected a non-empty name")
        parsed: dict[str, int | None] = {}
        for c in COUNT_COLUMNS:
            value, why = _parse_count(raw[cols.counts[c]].iloc[i])
            parsed[c] = value
            if value is None:
                problems.append(f"{where}, column {cols.counts[c]!r}: {why}")
            else:
                counts[c][i] = value
        if parsed["TP"] is not None and parsed["FN"] is not None and parsed["TP"] + parsed["FN"] == 0:
            problems.append(f"{where}: empty diseased arm (TP + FN == 0); a cohort needs at least one diseased "
                            "participant for a sensitivity")
        if parsed["FP"] is not None and parsed["TN"] is not None and parsed["FP"] + parsed["TN"] == 0:
            problems.append(f"{where}: empty non-diseased arm (FP + TN == 0); a cohort needs at least one "
                            "non-diseased participant for a specificity")
    keys = pd.DataFrame({"study": [str(v).strip() if not pd.isna(v) else "" for v in study],
                         "cohort": cohort.to_numpy()})
    dup = keys.duplicated(keep=False)
    if dup.any():
        for (s, c), grp in keys[dup].groupby(["study", "cohort"], sort=False):
            rows = ", ".join(str(i + 1) for i in grp.index)
            what = f"study {s!r}, cohort {c!r}" if c else f"study {s!r} (no cohort column)"
            problems.append(f"rows {rows}: duplicate {what}; each validation cohort must appear once "
                            "(add or fix the 'cohort' column)")
    return counts, keys


def _level_problems(frame: pd.DataFrame, levels: Mapping[str, Sequence[str]], cov_cols: list[str]) -> list[str]:
    """Covariate values outside their allowed ``levels`` (and levels given for non-covariates)."""
    problems: list[str] = []
    for col, allowed in levels.items():
        if col not in frame.columns or col in ("study", "cohort", *COUNT_COLUMNS):
            problems.append(f"levels given for {col!r}, which is not a covariate column; the covariates are {cov_cols}")
            continue
        allowed_set = {str(a) for a in allowed}
        for i, value in enumerate(frame[col]):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if str(value) not in allowed_set:
                close = [a for a in sorted(allowed_set) if a.lower() == str(value).lower()]
                hint = f" (did you mean {close[0]!r}?)" if close else did_you_mean(str(value), sorted(allowed_set))
                problems.append(f"row {i + 1} (study {frame['study'].iloc[i]!r}), column {col!r}: unknown level "
                                f"{value!r}{hint}; expected one of {sorted(allowed_set)}")
    return problems
