"""Reading, validating and building ``predictions.csv`` (the contract in docs/architecture.md and docs/evaluation.md).

Columns: ``patient_id``, ``y_true`` (class name), one probability column ``p_<class>`` per class (a binary task may
give only ``p_<positive>``), ``split`` (``cv``/``val``/``test``/``external``), ``fold`` (int; empty or -1 outside
CV; required when a ``cv`` row exists), ``model``; ``run_id`` and any other columns are kept verbatim.

Every problem found is reported at once in a :class:`PredictionsError` naming the column, the offending values and
their rows (CSV line numbers when read from a file: header = line 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nodescope.errors import MissingFileError, StatisticsInputError

__all__ = ["POSITIVE_NAMES", "Predictions", "PredictionsError", "make_predictions", "read_predictions"]

POSITIVE_NAMES: frozenset[str] = frozenset({"malignant", "metastatic", "metastasis", "positive", "1", "yes"})
SPLITS: tuple[str, ...] = ("cv", "val", "test", "external")
REQUIRED: tuple[str, ...] = ("patient_id", "y_true", "split", "model")
SUM_TOLERANCE = 0.01


class PredictionsError(StatisticsInputError):
    """Invalid predictions table; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the predictions table:\n{lines}")


@dataclass(frozen=True)
class Predictions:
    """A validated predictions table.

    Attributes
    ----------
    frame : DataFrame
        The rows as read; text columns verbatim (str), ``p_*`` columns as float, ``fold`` as nullable Int64.
    classes : tuple of str
        Class names; for a binary task ``(negative, positive)``, else the order of the ``p_`` columns.
    positive : str or None
        The positive class (always set for a binary task).
    task : {"binary", "multiclass"}
    source : str
        File path or ``"<DataFrame>"``.
    """

    frame: pd.DataFrame
    classes: tuple[str, ...]
    positive: str | None
    task: Literal["binary", "multiclass"]
    source: str

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def prob_columns(self) -> tuple[str, ...]:
        """The ``p_<class>`` columns present, in ``classes`` order."""
        return tuple(f"p_{c}" for c in self.classes if f"p_{c}" in self.frame.columns)

    def y_true(self) -> NDArray[np.int_]:
        """Binary: 1 where ``y_true == positive`` else 0. Multi-class: the index of ``y_true`` in ``classes``."""
        yt = self.frame["y_true"].to_numpy(dtype=str)
        if self.task == "binary":
            return (yt == self.positive).astype(int)
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array([lookup[v] for v in yt], dtype=int)

    def y_score(self) -> NDArray[np.float64]:
        """Binary: ``p_<positive>`` (or ``1 - p_<negative>`` when only that is given), shape (N,).

        Multi-class: the probability matrix, shape (N, K), columns in ``classes`` order.
        """
        if self.task == "binary":
            pos_col = f"p_{self.positive}"
            if pos_col in self.frame.columns:
                return self.frame[pos_col].to_numpy(dtype=np.float64)
            return 1.0 - self.frame[f"p_{self.classes[0]}"].to_numpy(dtype=np.float64)
        return self.frame[[f"p_{c}" for c in self.classes]].to_numpy(dtype=np.float64)

    def groups(self) -> NDArray[Any]:
        """``patient_id`` per row (for clustered bootstraps)."""
        return self.frame["patient_id"].to_numpy(dtype=str)

    def where(self, **equals: str | Iterable[str]) -> Predictions:
        """Rows whose columns equal the given value (or one of the given values); e.g. ``where(split=["cv", "val"])``.

        Raises
        ------
        KeyError
            An unknown column.
        """
        mask = np.ones(len(self.frame), dtype=bool)
        for col, val in equals.items():
            if col not in self.frame.columns:
                raise KeyError(f"no column {col!r}; columns are {list(self.frame.columns)}")
            values = [val] if isinstance(val, str) else [str(v) for v in val]
            mask &= self.frame[col].astype(str).isin(values).to_numpy()
        return Predictions(self.frame.loc[mask], self.classes, self.positive, self.task, self.source)

    def values(self, column: str) -> list[str]:
        """Distinct values of a column, in order of first appearance."""
        if column not in self.frame.columns:
            raise KeyError(f"no column {column!r}; columns are {list(self.frame.columns)}")
        return list(dict.fromkeys(self.frame[column].astype(str)))


def make_predictions(
    ids: Sequence[Any] | NDArray[Any],
    y_true: Sequence[Any] | NDArray[Any],
    probs: NDArray[np.floating[Any]],
    classes: Sequence[str],
    *,
    split: str,
    fold: int | Sequence[int] | NDArray[np.integer[Any]],
    model: str,
    run_id: str,
    extra: Mapping[str, Any] | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Build a predictions table in the contract's column order (what :func:`read_predictions` reads).

    Columns: ``patient_id``, ``y_true``, ``p_<class>`` (one per class, in ``classes`` order), ``split``, ``fold``,
    ``model``, ``run_id``, then the ``extra`` columns in their order. Values are stored as given (probabilities keep
    their dtype), so a table written with ``to_csv`` is the same whoever builds it.

    Parameters
    ----------
    ids : array-like, shape (N,)
        ``patient_id`` of each row.
    y_true : array-like, shape (N,)
        True class names (empty text where unknown).
    probs : ndarray, shape (N, K)
        Class probabilities, columns in ``classes`` order.
    classes : sequence of str
        The K class names.
    split : str
        ``cv``, ``val``, ``test`` or ``external``.
    fold : int or array-like of int
        The fold of each row (-1 outside cross-validation).
    model, run_id : str
        The model's name and the run it comes from.
    extra : mapping of str to array-like, or DataFrame, optional
        Further columns (``image``, ``lesion_id``, ``site``, ...), each of length N; a name already in the table is
        left out (the contract's value is kept).

    Returns
    -------
    DataFrame

    Raises
    ------
    ValueError
        ``probs`` is not (N, len(classes)) or ``y_true``/an extra column is not N long.
    """
    ids = np.asarray(ids) if not isinstance(ids, np.ndarray) else ids
    n = len(ids)
    if np.ndim(probs) != 2 or np.shape(probs) != (n, len(classes)):
        raise StatisticsInputError(f"probs: expected shape ({n}, {len(classes)}) for {n} id(s) and classes {list(classes)}; "
                         f"got {np.shape(probs)}")
    if len(y_true) != n:
        raise StatisticsInputError(f"y_true: expected {n} value(s), one per id; got {len(y_true)}")
    out = pd.DataFrame({"patient_id": ids, "y_true": y_true})
    for j, c in enumerate(classes):
        out[f"p_{c}"] = probs[:, j]
    out["split"] = split
    out["fold"] = fold
    out["model"] = model
    out["run_id"] = run_id
    columns: Mapping[str, Any] = extra if extra is not None else {}
    for col in list(columns.keys()):
        if col in out.columns:
            continue
        values = columns[col]
        values = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values
        if len(values) != n:
            raise StatisticsInputError(f"extra column {col!r}: expected {n} value(s), one per id; got {len(values)}")
        out[col] = values
    return out


def _rows(labels: Iterable[Any], from_file: bool, limit: int = 5) -> str:
    labels = list(labels)
    shown = [f"line {int(i) + 2}" if from_file else f"index {i!r}" for i in labels[:limit]]
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(shown) + more


def read_predictions(
    path_or_frame: str | PathLike[str] | pd.DataFrame,
    *,
    positive: str | None = None,
) -> Predictions:
    """Read and validate a predictions table.

    Parameters
    ----------
    path_or_frame : path or DataFrame
        A CSV file (read with every column as text) or a DataFrame (not modified; a copy is validated).
    positive : str, optional
        The positive class of a binary task. When omitted it is inferred only when exactly one class is in
        ``{"malignant", "metastatic", "metastasis", "positive", "1", "yes"}`` (case-insensitive); otherwise a
        :class:`PredictionsError` lists the classes. For a multi-class task it is recorded when given.

    Returns
    -------
    Predictions

    Raises
    ------
    MissingFileError
        The file does not exist (a FileNotFoundError).
    TypeError
        ``path_or_frame`` is neither a path nor a DataFrame.
    PredictionsError
        (a ValueError) listing every problem with its column, values and rows.
    """
    frame, source, from_file = _load_frame(path_or_frame)
    problems: list[str] = []

    missing = [c for c in REQUIRED if c not in frame.columns]
    prob_cols = [c for c in frame.columns if c.startswith("p_")]
    if missing:
        problems.append(f"missing required column(s) {missing}; columns are {list(frame.columns)}")
    if not prob_cols:
        problems.append("no probability column: expected one 'p_<class>' column per class")
    if not prob_cols or "y_true" not in frame.columns:
        raise PredictionsError(source, problems)
    if len(frame) == 0:
        raise PredictionsError(source, [*problems, "the table has no rows"])

    for col in ("patient_id", "y_true", "model"):
        if col in frame.columns:
            empty = frame.index[frame[col].astype(str).str.strip() == ""]
            if len(empty):
                problems.append(f"column {col!r} is empty at {_rows(empty, from_file)}")
    _check_probabilities(frame, prob_cols, from_file, problems)
    classes = _classes(frame, prob_cols, positive, from_file, problems, source)
    task: Literal["binary", "multiclass"] = "binary" if len(classes) == 2 else "multiclass"
    positive = _positive(classes, positive, task, problems)
    if task == "binary" and positive in classes:
        classes = [c for c in classes if c != positive] + [positive]  # (negative, positive)
    _check_split_and_fold(frame, from_file, problems)
    if problems:
        raise PredictionsError(source, problems)
    return Predictions(frame, tuple(classes), positive, task, source)


def _load_frame(path_or_frame: str | PathLike[str] | pd.DataFrame) -> tuple[pd.DataFrame, str, bool]:
    """The table as text columns (``p_*`` kept as given), its name for messages, and whether it came from a file."""
    if isinstance(path_or_frame, pd.DataFrame):
        frame = path_or_frame.copy()
        source, from_file = "<DataFrame>", False
        for col in frame.columns:
            if not str(col).startswith("p_"):
                frame[col] = frame[col].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    elif isinstance(path_or_frame, (str, PathLike)):
        p = Path(path_or_frame)
        if not p.is_file():
            raise MissingFileError(f"predictions file not found: {p}")
        from nodescope.data._io_base import read_csv_text

        frame = read_csv_text(p, "predictions", StatisticsInputError)
        source, from_file = str(p), True
    else:
        raise TypeError(f"path_or_frame must be a path or a pandas DataFrame; got {type(path_or_frame).__name__}")
    frame.columns = [str(c) for c in frame.columns]
    return frame, source, from_file


def _check_probabilities(frame: pd.DataFrame, prob_cols: list[str], from_file: bool, problems: list[str]) -> None:
    """``p_*`` columns parsed to float in place; non-numbers and values outside [0, 1] reported."""
    for col in prob_cols:
        raw = frame[col]
        num = pd.to_numeric(raw, errors="coerce").astype(float)
        bad = frame.index[num.isna().to_numpy() | ~np.isfinite(num.to_numpy())]
        if len(bad):
            vals = sorted({str(v) for v in raw.loc[bad]})[:5]
            problems.append(f"column {col!r} must hold numbers; got {vals} at {_rows(bad, from_file)}")
        out = frame.index[((num < 0) | (num > 1)).to_numpy()]
        if len(out):
            got = [float(v) for v in num.loc[out][:5]]
            problems.append(f"column {col!r} must be a probability in [0, 1]; got {got} at {_rows(out, from_file)}")
        frame[col] = num


def _classes(frame: pd.DataFrame, prob_cols: list[str], positive: str | None, from_file: bool,
             problems: list[str], source: str) -> list[str]:
    """The task's classes from the ``p_*`` columns and ``y_true`` (one column: binary, the other label negative)."""
    prob_classes = [c[2:] for c in prob_cols]
    labels = list(dict.fromkeys(frame["y_true"].astype(str)))
    labels = [v for v in labels if v.strip()]
    if len(prob_classes) == 1:
        others = [v for v in labels if v != prob_classes[0]]
        if len(others) > 1:
            problems.append(
                f"only one probability column {prob_cols[0]!r} but y_true has classes {labels}; "
                "a single column is allowed only for a binary task (add one 'p_<class>' column per class)"
            )
            raise PredictionsError(source, problems)
        if not others:
            problems.append(
                f"only {prob_cols[0]!r} is given and y_true holds only {labels}: the negative class cannot be named; "
                "add its 'p_<class>' column"
            )
            raise PredictionsError(source, problems)
        if positive is not None and positive != prob_classes[0]:
            problems.append(
                f"positive={positive!r} but the only probability column is {prob_cols[0]!r}; "
                f"give p_{positive} or use positive={prob_classes[0]!r}"
            )
        return [others[0], prob_classes[0]]
    unknown = [v for v in labels if v not in prob_classes]
    if unknown:
        bad = frame.index[frame["y_true"].astype(str).isin(unknown)]
        problems.append(
            f"column 'y_true' has class(es) {unknown} with no probability column "
            f"(expected one of {prob_classes}) at {_rows(bad, from_file)}"
        )
    else:
        sums = frame[prob_cols].to_numpy(dtype=float).sum(axis=1)
        off = frame.index[np.abs(sums - 1) > SUM_TOLERANCE]
        if len(off):
            problems.append(
                f"probability columns {prob_cols} must sum to 1 (+/- {SUM_TOLERANCE}) on each row; got sums "
                f"{[round(float(s), 4) for s in sums[np.abs(sums - 1) > SUM_TOLERANCE][:5]]} at {_rows(off, from_file)}"
            )
    return prob_classes


def _positive(classes: list[str], positive: str | None, task: str, problems: list[str]) -> str | None:
    """The caller's positive class (checked), else the one conventional positive name of a binary task."""
    if positive is not None:
        if positive not in classes:
            problems.append(f"positive={positive!r} is not a class; classes are {classes}")
        return positive
    if task == "binary":
        hits = [c for c in classes if c.lower() in POSITIVE_NAMES]
        if len(hits) == 1:
            return hits[0]
        problems.append(
            f"cannot infer the positive class from classes {classes}; pass positive= one of them "
            f"(inferred only when exactly one class is in {sorted(POSITIVE_NAMES)})"
        )
    return None


def _check_split_and_fold(frame: pd.DataFrame, from_file: bool, problems: list[str]) -> None:
    """``split`` values from the contract; ``fold`` integers (parsed in place), required on ``cv`` rows."""
    if "split" in frame.columns:
        bad = frame.index[~frame["split"].astype(str).isin(SPLITS)]
        if len(bad):
            vals = sorted({str(v) for v in frame.loc[bad, "split"]})[:5]
            problems.append(f"column 'split' must be one of {list(SPLITS)}; got {vals} at {_rows(bad, from_file)}")
    if "fold" in frame.columns:
        text = frame["fold"].astype(str).str.strip()
        fold = pd.to_numeric(text.where(text != ""), errors="coerce")
        not_int = frame.index[(text != "") & (fold.isna() | (fold % 1 != 0)).to_numpy()]
        if len(not_int):
            vals = sorted({str(v) for v in frame.loc[not_int, "fold"]})[:5]
            problems.append(f"column 'fold' must be an integer or empty; got {vals} at {_rows(not_int, from_file)}")
        else:
            frame["fold"] = fold.astype("Int64")
            if "split" in frame.columns:
                cv_bad = frame.index[(frame["split"].astype(str) == "cv").to_numpy()
                                     & (frame["fold"].isna() | (frame["fold"] < 0)).to_numpy()]
                if len(cv_bad):
                    problems.append(f"rows with split 'cv' need a fold >= 0 in column 'fold' at {_rows(cv_bad, from_file)}")
    elif "split" in frame.columns and (frame["split"].astype(str) == "cv").any():
        problems.append("rows with split 'cv' exist but there is no 'fold' column")
