"""Minimal validation of 2x2 counts and the continuity-correction rules shared by the models.

The richer parsing of a studies CSV (2x2 reconstruction, duplicate cohorts, covariate levels) lives in
:mod:`nodescope.meta._studies`; the functions here only check what the models need: four columns of
non-negative integers, at least one diseased and one non-diseased subject per cohort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from nodescope.errors import ConfigError, StatisticsInputError

CELLS = ("TP", "FP", "FN", "TN")

Correction = Literal["studies-with-zero", "measure-cells-with-zero", "all-if-any-zero", "all", "none"]
CORRECTIONS: tuple[str, ...] = ("studies-with-zero", "measure-cells-with-zero", "all-if-any-zero", "all", "none")
# the cells each measure is computed from (the zero check of the "measure-cells-with-zero" rule)
MEASURE_CELLS: dict[str, tuple[str, ...]] = {
    "logit_sens": ("TP", "FN"), "logit_spec": ("FP", "TN"), "log_dor": CELLS, "log_lr_pos": CELLS,
    "log_lr_neg": CELLS,
}
Measure = Literal["log_dor", "logit_sens", "logit_spec", "log_lr_pos", "log_lr_neg"]
UNIVARIATE_MEASURES: tuple[str, ...] = ("log_dor", "logit_sens", "logit_spec", "log_lr_pos", "log_lr_neg")
LOGITS: tuple[str, str] = ("logit_sens", "logit_spec")  # outcomes of the bivariate models


@dataclass(frozen=True)
class Counts:
    """Validated 2x2 counts of ``k`` cohorts (arrays of shape ``(k,)``, float64 holding integers)."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray
    labels: tuple[str, ...]

    @property
    def k(self) -> int:
        return int(self.tp.shape[0])

    @property
    def n_diseased(self) -> np.ndarray:
        return self.tp + self.fn

    @property
    def n_healthy(self) -> np.ndarray:
        return self.tn + self.fp

    def subset(self, mask: np.ndarray) -> Counts:
        idx = np.flatnonzero(mask)
        return Counts(self.tp[idx], self.fp[idx], self.fn[idx], self.tn[idx], tuple(self.labels[i] for i in idx))


def as_counts(data: pd.DataFrame | Counts, *, study_col: str = "study", argname: str = "data") -> Counts:
    """Check a frame with integer columns ``TP, FP, FN, TN`` and return :class:`Counts`.

    Raises
    ------
    TypeError
        ``data`` is not a DataFrame.
    ValueError
        A column is missing, a value is missing, negative or not an integer, or a cohort has no diseased
        (``TP + FN == 0``) or no non-diseased (``TN + FP == 0``) subjects. The message names row and column.
    """
    if isinstance(data, Counts):
        return data
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{argname} must be a pandas DataFrame with columns TP, FP, FN, TN; got {type(data).__name__}")
    missing = [c for c in CELLS if c not in data.columns]
    if missing:
        raise StatisticsInputError(
            f"{argname} lacks column(s) {missing}; expected TP, FP, FN, TN (got columns {list(data.columns)})"
        )
    if len(data) == 0:
        raise StatisticsInputError(f"{argname} has no rows; expected one row per cohort")
    arrays = {}
    for col in CELLS:
        raw = data[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise StatisticsInputError(
                f"{argname}: column {col!r}, row {data.index[i]!r}: got {raw.iloc[i]!r}; "
                "expected a non-negative integer count"
            )
        arrays[col] = values
    labels = (
        tuple(str(v) for v in data[study_col]) if study_col in data.columns else tuple(str(i) for i in data.index)
    )
    for name, n in (("diseased (TP + FN)", arrays["TP"] + arrays["FN"]), ("non-diseased (TN + FP)", arrays["TN"] + arrays["FP"])):
        empty = np.flatnonzero(n == 0)
        if empty.size:
            i = int(empty[0])
            raise StatisticsInputError(f"{argname}: row {data.index[i]!r} ({labels[i]}) has no {name} subjects; an empty arm cannot be pooled")
    return Counts(arrays["TP"], arrays["FP"], arrays["FN"], arrays["TN"], labels)


def corrected(counts: Counts, correction: float, rule: Correction,
              cells: tuple[str, ...] = CELLS) -> tuple[Counts, np.ndarray]:
    """Add ``correction`` to the four cells of the cohorts chosen by ``rule``.

    Rules: ``"studies-with-zero"`` (each cohort with a zero in any of its four cells; mada's
    ``correction.control="single"``, and metafor's ``escalc(add=1/2, to="only0")`` for the measures computed from
    all four cells: ``"OR"``, ``"RR"``), ``"measure-cells-with-zero"`` (each cohort with a zero among ``cells``,
    the cells of the measure: metafor's ``escalc(measure="PLO", add=1/2, to="only0")`` for logit sensitivity
    (``TP, FN``) and logit specificity (``TN, FP``)), ``"all-if-any-zero"`` (every cohort when any cohort has a
    zero cell; mada's ``correction.control="all"``), ``"all"`` (every cohort), ``"none"``. Only the measure's own
    cells enter its estimate, so adding to the other two cells changes nothing.

    Returns
    -------
    counts : Counts
        The corrected counts (the input is not changed).
    corrected_mask : ndarray of bool, shape (k,)
        Which cohorts received the correction.
    """
    if rule not in CORRECTIONS:
        raise ConfigError(f"correction_rule={rule!r} is not valid; choose one of {CORRECTIONS}")
    if not np.isfinite(correction) or correction < 0:
        raise ConfigError(f"correction must be a non-negative number; got {correction!r}")
    arrays = {"TP": counts.tp, "FP": counts.fp, "FN": counts.fn, "TN": counts.tn}
    zero = (np.vstack([counts.tp, counts.fp, counts.fn, counts.tn]) == 0).any(axis=0)
    if rule == "studies-with-zero":
        mask = zero
    elif rule == "measure-cells-with-zero":
        mask = (np.vstack([arrays[c] for c in cells]) == 0).any(axis=0)
    elif rule == "all-if-any-zero":
        mask = np.full(counts.k, bool(zero.any()))
    elif rule == "all":
        mask = np.ones(counts.k, dtype=bool)
    else:
        mask = np.zeros(counts.k, dtype=bool)
    add = np.where(mask, correction, 0.0)
    out = Counts(counts.tp + add, counts.fp + add, counts.fn + add, counts.tn + add, counts.labels)
    return out, mask


def study_measures(c: Counts, measure: Measure) -> tuple[np.ndarray, np.ndarray]:
    """Per-cohort estimate ``y`` and within-cohort variance ``v`` (shape ``(k,)``) on the model scale.

    ``logit_sens``: ``log(TP/FN)``, ``v = 1/TP + 1/FN``; ``logit_spec``: ``log(TN/FP)``, ``v = 1/TN + 1/FP``;
    ``log_dor``: ``log(TP*TN/(FP*FN))``, ``v = 1/TP + 1/FP + 1/FN + 1/TN``;
    ``log_lr_pos``: ``log(sens/(1-spec))``, ``v = 1/TP - 1/(TP+FN) + 1/FP - 1/(FP+TN)``;
    ``log_lr_neg``: ``log((1-sens)/spec)``, ``v = 1/FN - 1/(TP+FN) + 1/TN - 1/(TN+FP)``.
    Counts must already be continuity-corrected where a cell is zero.
    """
    tp, fp, fn, tn = c.tp, c.fp, c.fn, c.tn
    with np.errstate(divide="ignore"):
        if measure == "logit_sens":
            return np.log(tp / fn), 1 / tp + 1 / fn
        if measure == "logit_spec":
            return np.log(tn / fp), 1 / tn + 1 / fp
        if measure == "log_dor":
            return np.log(tp * tn / (fp * fn)), 1 / tp + 1 / fp + 1 / fn + 1 / tn
        n1, n0 = tp + fn, fp + tn
        if measure == "log_lr_pos":
            return np.log((tp / n1) / (fp / n0)), 1 / tp - 1 / n1 + 1 / fp - 1 / n0
        if measure == "log_lr_neg":
            return np.log((fn / n1) / (tn / n0)), 1 / fn - 1 / n1 + 1 / tn - 1 / n0
    raise ConfigError(f"measure={measure!r} is not valid; choose one of {UNIVARIATE_MEASURES}")


def measure_data(counts: Counts, measures: tuple[str, ...], correction: float,
                 rule: Correction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Continuity-correct by ``rule`` and compute :func:`study_measures` for each of ``measures``.

    The one place where per-cohort model-scale estimates and their within-cohort variances are made (univariate
    pooling, the Reitsma model, Deeks' test, I2 of the bivariate models).

    Returns
    -------
    y, v : ndarray, shape (k, len(measures))
    corrected_mask : ndarray of bool, shape (k,)

    Raises
    ------
    ValueError
        A value is infinite (a zero cell left uncorrected); the message names the cohorts.
    """
    pairs = []
    mask = np.zeros(counts.k, dtype=bool)
    for m in measures:  # each measure is corrected by the rule on its own cells (matters for measure-cells-with-zero)
        cc, mask_m = corrected(counts, correction, rule, MEASURE_CELLS.get(m, CELLS))
        pairs.append(study_measures(cc, m))  # type: ignore[arg-type]
        mask |= mask_m
    y = np.column_stack([p[0] for p in pairs])
    v = np.column_stack([p[1] for p in pairs])
    bad_rows = ~(np.isfinite(y).all(axis=1) & np.isfinite(v).all(axis=1))
    if bad_rows.any():
        bad = [counts.labels[i] for i in np.flatnonzero(bad_rows)]
        raise StatisticsInputError(
            f"{' / '.join(measures)} is infinite for cohort(s) {bad}: a zero cell without continuity correction; "
            "use correction > 0 (e.g. correction_rule='studies-with-zero'), or the exact binomial GLMM "
            "(bivariate_glmm), which needs none"
        )
    return y, v, mask


def design_matrix(
    data: pd.DataFrame, covariates: list[str] | tuple[str, ...]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Intercept plus covariates: numeric columns as they are, others treatment-coded (first sorted level = reference).

    Returns ``X`` of shape ``(k, p)`` and the ``p`` column names (``"(Intercept)"``, ``"age"``,
    ``"modality[T.mri]"``, ...).
    """
    cols: list[np.ndarray] = [np.ones(len(data))]
    names: list[str] = ["(Intercept)"]
    for cov in covariates:
        if cov not in data.columns:
            raise StatisticsInputError(f"covariate {cov!r} is not a column of the data; columns are {list(data.columns)}")
        s = data[cov]
        if s.isna().any():
            i = int(np.flatnonzero(s.isna().to_numpy())[0])
            raise StatisticsInputError(f"covariate {cov!r} is missing at row {data.index[i]!r}; fill or drop that cohort")
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            cols.append(s.to_numpy(dtype=float))
            names.append(cov)
            continue
        levels = sorted(s.astype(str).unique())
        if len(levels) < 2:
            raise StatisticsInputError(f"covariate {cov!r} has a single level {levels}; a meta-regression needs at least two")
        values = s.astype(str).to_numpy()
        for lev in levels[1:]:
            cols.append((values == lev).astype(float))
            names.append(f"{cov}[T.{lev}]")
    X = np.column_stack(cols)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise StatisticsInputError(f"the design for covariates {list(covariates)} is rank-deficient (collinear columns {names})")
    return X, tuple(names)
