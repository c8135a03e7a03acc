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
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from nodescope.errors import ConfigError, MissingFileError, StatisticsInputError

__all__ = ["COUNT_COLUMNS", "ReconstructionWarning", "Studies", "StudiesError", "read_studies", "reconstruct_2x2"]

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
        close = difflib.get_close_matches(wanted, [str(c) for c in columns], n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
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
    if isinstance(source, pd.DataFrame):
        raw = source.copy()
        name = "<DataFrame>"
        from_csv = False
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise MissingFileError(f"studies file not found: {path}")
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        name = str(path)
        from_csv = True
    else:
        raise TypeError(f"source must be a path or a pandas DataFrame, got {type(source).__name__}")
    raw.columns = [str(c) for c in raw.columns]
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
            close = difflib.get_close_matches(want, cov_cols, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"covariate column {want!r} is missing{hint}; the covariates are {cov_cols}")
    if len(raw) == 0:
        problems.append("the table has no rows; expected one row per validation cohort")
    if problems:
        raise StudiesError(name, problems)

    n = len(raw)
    counts = {c: np.zeros(n, dtype=np.int64) for c in COUNT_COLUMNS}
    study = raw[study_src]
    cohort = (raw[cohort_src] if cohort_src is not None else pd.Series([""] * n, index=raw.index))
    cohort = cohort.where(cohort.notna(), "").astype(str).str.strip()
    for i in range(n):
        row = i + 1
        label = study.iloc[i]
        label_ok = not pd.isna(label) and str(label).strip() != ""
        label = str(label).strip() if label_ok else ""
        where = f"row {row} (study {label!r})" if label_ok else f"row {row}"
        if not label_ok:
            problems.append(f"row {row}, column {study_src!r}: empty study label; expected a non-empty name")
        parsed: dict[str, int | None] = {}
        for c in COUNT_COLUMNS:
            value, why = _parse_count(raw[count_src[c]].iloc[i])
            parsed[c] = value
            if value is None:
                problems.append(f"{where}, column {count_src[c]!r}: {why}")
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

    frame = pd.DataFrame({"study": keys["study"], "cohort": keys["cohort"]})
    for c in COUNT_COLUMNS:
        frame[c] = counts[c]
    for c in cov_cols:
        frame[cov_names[c]] = _as_covariate(raw[c]).to_numpy() if from_csv else raw[c].to_numpy()
    cov_cols = [cov_names[c] for c in cov_cols]
    for col, allowed in (levels or {}).items():
        if col not in frame.columns or col in ("study", "cohort", *COUNT_COLUMNS):
            problems.append(f"levels given for {col!r}, which is not a covariate column; the covariates are {cov_cols}")
            continue
        allowed_set = {str(a) for a in allowed}
        for i, value in enumerate(frame[col]):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if str(value) not in allowed_set:
                close = [a for a in sorted(allowed_set) if a.lower() == str(value).lower()]
                close = close or difflib.get_close_matches(str(value), sorted(allowed_set), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"row {i + 1} (study {frame['study'].iloc[i]!r}), column {col!r}: unknown level "
                                f"{value!r}{hint}; expected one of {sorted(allowed_set)}")
    if problems:
        raise StudiesError(name, problems)
    return Studies(frame=frame, covariates=tuple(cov_cols), source=name, renamed=renamed)


# --------------------------------------------------------------------------------------------------------------------
# Reconstruction of 2x2 tables from reported sensitivity / specificity

_EPS = 1e-9


def _decimals_of(value: object) -> int:
    """Number of decimals written in ``value`` (``"85.40"`` -> 2; a float uses its shortest repr: 0.854 -> 3)."""
    text = str(value).strip() if isinstance(value, str) else repr(float(value))  # type: ignore[arg-type]
    if "e" in text.lower():
        mantissa, _, exp = text.lower().partition("e")
        return max(0, _decimals_of(mantissa) - int(exp))
    return len(text.partition(".")[2])


def _half_up(x: float) -> int:
    return math.floor(x + 0.5 + _EPS)


def _number(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if text == "":
        return None
    return float(text)


def _feasible(reported: float, half: float, denom: int) -> tuple[int, int]:
    """Integer numerators ``k`` in ``[0, denom]`` with ``|k / denom - reported| <= half`` as ``(lo, hi)``; lo > hi if none."""
    lo = max(0, math.ceil((reported - half) * denom - _EPS))
    hi = min(denom, math.floor((reported + half) * denom + _EPS))
    return lo, hi


def reconstruct_2x2(
    table: pd.DataFrame,
    *,
    sensitivity: str = "sensitivity",
    specificity: str = "specificity",
    n_diseased: str = "n_diseased",
    n_nondiseased: str = "n_nondiseased",
    n: str = "n",
    prevalence: str = "prevalence",
    scale: Literal["proportion", "percent"] = "proportion",
    decimals: int | None = None,
) -> pd.DataFrame:
    """Rebuild 2x2 tables from reported sensitivity, specificity and arm sizes, showing the rounding.

    For each row the arm sizes come from ``n_diseased`` and ``n_nondiseased`` when both are given, else from ``n`` and
    ``prevalence`` (``D = round(n * prevalence)``, ``N = n - D``). Then::

        TP = round(sens * D)    FN = D - TP
        TN = round(spec * N)    FP = N - TN

    with round-half-up. A reported figure ``x`` written with ``d`` decimals stands for any true value in
    ``x +/- 0.5 * 10**-d`` (divided by 100 for percentages); a row is *consistent* when some integer numerator falls in
    that interval for every reported proportion. Inconsistent rows are kept (the nearest integer is used) and named in
    one :class:`ReconstructionWarning`; several feasible numerators are noted, not warned about.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per cohort; every column is kept. Read CSV files with ``dtype=str`` so the written decimals are seen
        (for floats the shortest ``repr`` is used: ``0.85`` has 2 decimals, so ``0.850`` read as float too).
    sensitivity, specificity, n_diseased, n_nondiseased, n, prevalence : str
        Column names of the reported figures. Either both arm columns or both ``n`` and ``prevalence`` must be
        present (per row, the arm sizes win when both are filled in).
    scale : {"proportion", "percent"}
        Whether sensitivity, specificity and prevalence are in [0, 1] or in [0, 100]. Default ``"proportion"``; a value
        above 1 with ``"proportion"`` is an error, never silently divided by 100.
    decimals : int, optional
        The number of decimals the reports used, overriding the inference from each value's text.

    Returns
    -------
    pandas.DataFrame
        The input columns unchanged, followed by ``TP, FP, FN, TN`` (int64), ``sens_2x2`` and ``spec_2x2`` (the
        proportions the rebuilt table gives), ``sens_decimals``, ``spec_decimals``, ``consistent`` (bool) and
        ``reconstruction_note`` (why a row is inconsistent or ambiguous; empty otherwise).

    Raises
    ------
    ValueError
        Missing columns, empty or non-numeric values, proportions outside their scale, non-integer or negative arm
        sizes; the message names the row and column.

    Warns
    -----
    ReconstructionWarning
        When a row's reported figures cannot all come from one integer table.

    Examples
    --------
    Zhou et al. (Radiology 2020) report 85% sensitivity and 73% specificity for 41 node-positive and 40 node-negative
    images of their independent test set:

    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": ["Zhou 2020"], "sensitivity": ["85"], "specificity": ["73"],
    ...                   "n_diseased": ["41"], "n_nondiseased": ["40"]})
    >>> reconstruct_2x2(t, scale="percent")[["TP", "FP", "FN", "TN", "consistent"]].to_dict("records")
    [{'TP': 35, 'FP': 11, 'FN': 6, 'TN': 29, 'consistent': True}]
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if scale not in ("proportion", "percent"):
        raise ConfigError(f"scale must be 'proportion' or 'percent', got {scale!r}")
    if decimals is not None and (not isinstance(decimals, int) or decimals < 0):
        raise ConfigError(f"decimals must be an integer >= 0 or None, got {decimals!r}")
    cols = list(table.columns)
    missing = [c for c in (sensitivity, specificity) if c not in cols]
    has_arms = n_diseased in cols and n_nondiseased in cols
    has_prev = n in cols and prevalence in cols
    if not (has_arms or has_prev):
        missing.append(f"({n_diseased!r} and {n_nondiseased!r}) or ({n!r} and {prevalence!r})")
    if missing:
        raise StatisticsInputError(f"reconstruct_2x2: missing column(s) {', '.join(map(str, missing))}; the columns are {cols}")
    unit = 100.0 if scale == "percent" else 1.0

    def prop(i: int, col: str) -> tuple[float, int]:
        raw = table[col].iloc[i]
        try:
            value = _number(raw)
        except ValueError:
            raise StatisticsInputError(f"row {i + 1}, column {col!r}: {str(raw).strip()!r} is not a number") from None
        if value is None:
            raise StatisticsInputError(f"row {i + 1}, column {col!r}: empty; expected a {scale}")
        if not 0.0 <= value <= unit:
            hint = " (percentages? pass scale='percent')" if scale == "proportion" and value <= 100 else ""
            raise StatisticsInputError(f"row {i + 1}, column {col!r}: {str(raw).strip()} is outside [0, {unit:g}]{hint}")
        return value / unit, (decimals if decimals is not None else _decimals_of(raw))

    def count(i: int, col: str) -> int | None:
        raw = table[col].iloc[i]
        if _number_or_none(raw) is None:
            return None
        value, why = _parse_count(raw)
        if why is not None:
            raise StatisticsInputError(f"row {i + 1}, column {col!r}: {why}")
        return value

    def _number_or_none(raw: object) -> float | None:
        try:
            return _number(raw)
        except ValueError:
            return 0.0  # let _parse_count explain

    out_rows = []
    bad: list[str] = []
    for i in range(len(table)):
        notes: list[str] = []
        ok = True
        dis = count(i, n_diseased) if has_arms else None
        non = count(i, n_nondiseased) if has_arms else None
        if dis is None or non is None:
            if not has_prev:
                raise StatisticsInputError(f"row {i + 1}: {n_diseased!r} / {n_nondiseased!r} empty and no {n!r} / "
                                 f"{prevalence!r} columns to fall back on")
            total = count(i, n)
            if total is None:
                raise StatisticsInputError(f"row {i + 1}, column {n!r}: empty; expected the number of participants")
            prev, prev_dec = prop(i, prevalence)
            dis = _half_up(prev * total)
            non = total - dis
            lo, hi = _feasible(prev, 0.5 * 10.0**-prev_dec / unit, total)
            if lo > hi:
                ok = False
                notes.append(f"prevalence {table[prevalence].iloc[i]} with n={total}: no integer number of diseased "
                             f"reproduces it (used {dis}, giving {dis / total * unit:.{prev_dec + 2}f})")
            elif hi > lo:
                notes.append(f"diseased could be {lo}-{hi}; used {dis}")
        cells = {}
        for name, col, denom in (("sens", sensitivity, dis), ("spec", specificity, non)):
            value, dec = prop(i, col)
            if denom == 0:
                raise StatisticsInputError(f"row {i + 1}: {'diseased' if name == 'sens' else 'non-diseased'} arm is empty; "
                                 f"{col!r} cannot be turned into a count")
            k = _half_up(value * denom)
            lo, hi = _feasible(value, 0.5 * 10.0**-dec / unit, denom)
            if lo > hi:
                ok = False
                notes.append(f"{col} {table[col].iloc[i]} ({dec} decimals) with {denom} "
                             f"{'diseased' if name == 'sens' else 'non-diseased'}: no integer count reproduces it "
                             f"(used {k}, giving {k / denom * unit:.{dec + 2}f})")
            elif hi > lo:
                notes.append(f"{'TP' if name == 'sens' else 'TN'} could be {lo}-{hi}; used {k}")
            cells[name] = (k, denom, dec)
        tp, d, sens_dec = cells["sens"]
        tn, nn, spec_dec = cells["spec"]
        out_rows.append({"TP": tp, "FP": nn - tn, "FN": d - tp, "TN": tn, "sens_2x2": tp / d, "spec_2x2": tn / nn,
                         "sens_decimals": sens_dec, "spec_decimals": spec_dec, "consistent": ok,
                         "reconstruction_note": "; ".join(notes)})
        if not ok:
            label = table["study"].iloc[i] if "study" in cols else ""
            bad.append(f"row {i + 1}{f' ({label})' if label != '' else ''}: " + "; ".join(notes))
    added = pd.DataFrame(out_rows, index=table.index,
                         columns=["TP", "FP", "FN", "TN", "sens_2x2", "spec_2x2", "sens_decimals", "spec_decimals",
                                  "consistent", "reconstruction_note"])
    clash = [c for c in added.columns if c in cols]
    if clash:
        raise StatisticsInputError(f"reconstruct_2x2: the table already has column(s) {clash}; drop them first")
    if bad:
        warnings.warn("reported figures inconsistent beyond rounding in " + f"{len(bad)} row(s): " + " | ".join(bad),
                      ReconstructionWarning, stacklevel=2)
    for c in ("TP", "FP", "FN", "TN", "sens_decimals", "spec_decimals"):
        added[c] = added[c].astype(np.int64)
    added["consistent"] = added["consistent"].astype(bool)
    return pd.concat([table, added], axis=1)
