"""Reader studies: radiologists' operating points, paired tests against the model, aided vs unaided, MRMC.

A *reads table* has one row per reader, patient and (optionally) condition:

========== =========================================================================================
column     meaning
========== =========================================================================================
patient_id the case read (joins the predictions' ``patient_id``)
reader     reader id
call       the reader's binary decision: 0/1 (also yes/no, true/false) or a class name
score      optional ordinal (or continuous) confidence that the case is positive, higher = more likely
aided      optional: was the read made with the model's help (yes/no, true/false, 1/0, aided/unaided)
========== =========================================================================================

At least one of ``call`` and ``score`` is required. Each reader's operating point comes from ``call`` (or from
``score >= reader_threshold`` when only scores are given and a cut-off is supplied); ROC AUCs and the
multi-reader multi-case analysis use ``score`` (or the calls when there are no scores).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._compare import McNemarResult, compare_auc, mcnemar_test
from nodescope.evaluation._mrmc import MRMCCov, MRMCResult, mrmc_analysis
from nodescope.evaluation._proportions import proportion_ci
from nodescope.evaluation._results import ResultsMixin, text_table
from nodescope.evaluation._roc import roc_auc
from nodescope.evaluation._validation import check_alpha, check_choice

__all__ = ["PairedComparison", "ReaderPoint", "ReaderStudy", "read_reads", "reader_study", "validate_reads"]

_TRUE = {"1", "yes", "y", "true", "t", "aided", "positive", "pos"}
_FALSE = {"0", "no", "n", "false", "f", "unaided", "negative", "neg"}
REQUIRED_READ_COLUMNS = ("patient_id", "reader")


def _as_flag(values: pd.Series, column: str, source: str, *, positive: str | None = None,
             classes: tuple[str, ...] = ()) -> pd.Series:
    """Map yes/no-like strings (or class names) to 0/1; an unknown value is an error naming rows."""
    text = values.astype(str).str.strip()
    lower = text.str.lower()
    out = pd.Series(np.nan, index=values.index, dtype=float)
    out[lower.isin(_TRUE)] = 1.0
    out[lower.isin(_FALSE)] = 0.0
    if positive is not None and classes:
        out[text == positive] = 1.0
        out[text.isin([c for c in classes if c != positive])] = 0.0
    bad = out.isna()
    if bad.any():
        rows = [int(i) + 2 for i in np.flatnonzero(bad.to_numpy())[:5]]  # +2: header line and 1-based
        vals = sorted(set(text[bad].tolist()))[:5]
        valid = "0/1, yes/no, true/false" + (f", or a class name {list(classes)}" if classes else "")
        raise StatisticsInputError(f"{source}: column {column!r} has values {vals} (lines {rows}); expected {valid}")
    return out


def read_reads(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a reads table from CSV, every column as text (check it with :func:`validate_reads`).

    Parameters
    ----------
    path : str or path-like
        The CSV file.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    MissingFileError
        ``path`` is not a file.
    StatisticsInputError
        The file is empty, not a readable CSV table, or repeats a column name.
    """
    from nodescope.data._io_base import read_csv_text

    return read_csv_text(Path(path), "reads table", StatisticsInputError)


def validate_reads(
    reads: pd.DataFrame,
    *,
    positive: str | None = None,
    classes: tuple[str, ...] = (),
    source: str = "reads table",
) -> pd.DataFrame:
    """Check a reads table and return it in canonical form.

    Parameters
    ----------
    reads : pandas.DataFrame
        The reads (see the module docstring); extra columns are ignored.
    positive : str, optional
        Positive class name, so that ``call`` may hold class names.
    classes : tuple of str
        All class names (with ``positive``).
    source : str
        Named in error messages (the file name).

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id`` (str), ``reader`` (str), ``condition`` (``"unaided"``/``"aided"``, or ``"all"``
        without an ``aided`` column), ``call`` (0/1 or ``nan``), ``score`` (float, or ``nan`` where the cell is
        empty: a reader may give calls only); input order kept.

    Raises
    ------
    ValueError
        Missing columns, empty ids, unknown call/aided values, non-numeric (non-empty) scores, or a reader reading
        the same patient twice in one condition.
    """
    if not isinstance(reads, pd.DataFrame):
        raise TypeError(f"{source}: expected a pandas DataFrame, got {type(reads).__name__}")
    missing = [c for c in REQUIRED_READ_COLUMNS if c not in reads.columns]
    if missing:
        raise StatisticsInputError(f"{source}: missing column(s) {missing}; found {list(reads.columns)}. "
                                   "A reads table needs patient_id, reader and call and/or score")
    if "call" not in reads.columns and "score" not in reads.columns:
        raise StatisticsInputError(f"{source}: needs a 'call' column (0/1 or class name) and/or a 'score' column "
                                   f"(ordinal confidence); found {list(reads.columns)}")
    if len(reads) == 0:
        raise StatisticsInputError(f"{source}: has no rows")
    out = pd.DataFrame(index=reads.index)
    for col in REQUIRED_READ_COLUMNS:
        vals = reads[col]
        empty = vals.isna() | (vals.astype(str).str.strip() == "")
        if empty.any():
            rows = [int(i) + 2 for i in np.flatnonzero(empty.to_numpy())[:5]]
            raise StatisticsInputError(f"{source}: column {col!r} is empty on lines {rows}")
        out[col] = vals.astype(str).str.strip()
    if "aided" in reads.columns:
        out["condition"] = _as_flag(reads["aided"], "aided", source).map({0.0: "unaided", 1.0: "aided"})
    else:
        out["condition"] = "all"
    out["call"] = (_as_flag(reads["call"], "call", source, positive=positive, classes=classes)
                   if "call" in reads.columns else np.nan)
    if "score" in reads.columns:
        blank = reads["score"].isna() | (reads["score"].astype(str).str.strip() == "")
        score = pd.to_numeric(reads["score"].where(~blank), errors="coerce")
        bad = (score.isna() & ~blank) | ~np.isfinite(score.fillna(0.0))
        if blank.all() and "call" not in reads.columns:
            raise StatisticsInputError(f"{source}: column 'score' is empty on every line and there is no 'call' column")
        if bad.any():
            rows = [int(i) + 2 for i in np.flatnonzero(bad.to_numpy())[:5]]
            raise StatisticsInputError(f"{source}: column 'score' must be numeric on every row; bad values "
                                       f"{reads['score'][bad].astype(str).tolist()[:5]} on lines {rows}")
        out["score"] = score.astype(float)
    else:
        out["score"] = np.nan
    dup = out.duplicated(["patient_id", "reader", "condition"], keep=False)
    if dup.any():
        first = out[dup].iloc[0]
        raise StatisticsInputError(f"{source}: reader {first['reader']!r} read patient {first['patient_id']!r} "
                                   f"more than once (condition {first['condition']!r}); {int(dup.sum())} duplicated rows")
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class ReaderPoint:
    """One reader's operating point in one condition.

    Attributes
    ----------
    reader, condition : str
    sensitivity, specificity : Estimate
        Wilson intervals (``nan`` with a note when the reader made no binary calls).
    auc : Estimate or None
        Empirical AUC of the ordinal scores with a DeLong interval, when scores were given.
    n_cases, n_positive, n_negative : int
    """

    reader: str
    condition: str
    sensitivity: Estimate
    specificity: Estimate
    auc: Estimate | None
    n_cases: int
    n_positive: int
    n_negative: int

    @property
    def fpr(self) -> float:
        """``1 - specificity`` (the x coordinate on a ROC plot)."""
        return 1.0 - self.specificity.estimate


@dataclass(frozen=True)
class PairedComparison:
    """Two readings of the same patients (reader vs model, or a reader aided vs unaided).

    Differences are ``a - b``; sensitivity is compared on the positive patients and specificity on the negative
    patients by an exact McNemar test (:func:`mcnemar_test`, with the Wald interval of the paired difference). ``auc_difference`` (DeLong test for correlated AUCs) is present when
    both readings have continuous/ordinal scores.
    """

    reader: str
    a: str
    b: str
    n_cases: int
    sensitivity_a: Estimate
    sensitivity_b: Estimate
    specificity_a: Estimate
    specificity_b: Estimate
    sensitivity_test: McNemarResult | None
    specificity_test: McNemarResult | None
    auc_difference: Estimate | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        def side(ea: Estimate, eb: Estimate, test: McNemarResult | None) -> dict[str, Any]:
            out: dict[str, Any] = {"a": ea.to_dict(), "b": eb.to_dict(), "difference": None, "test": None}
            if test is not None:
                out["difference"] = test.difference.to_dict()
                out["test"] = {"method": f"mcnemar-{test.method}", "statistic": test.statistic,
                               "p_value": test.p_value, "table": list(test.table),
                               "table_order": ["both correct", "only a correct", "only b correct", "both wrong"]}
            return out

        return {
            "reader": self.reader, "a": self.a, "b": self.b, "n_cases": self.n_cases,
            "sensitivity": side(self.sensitivity_a, self.sensitivity_b, self.sensitivity_test),
            "specificity": side(self.specificity_a, self.specificity_b, self.specificity_test),
            "auc_difference": self.auc_difference.to_dict() if self.auc_difference is not None else None,
        }


@dataclass(frozen=True)
class ReaderStudy(ResultsMixin):
    """Everything computed from a reads table.

    Attributes
    ----------
    points : tuple of ReaderPoint
        Per reader and condition.
    versus_model : tuple of PairedComparison
        Each reader (and condition) against the model's calls at the model's threshold, on the same patients.
    aided_vs_unaided : tuple of PairedComparison
        Per reader, ``a = "aided"``, ``b = "unaided"``, on the patients read in both conditions.
    mrmc : MRMCResult or None
        Obuchowski-Rockette analysis over readers x conditions (or one condition) when at least two readers read
        the same cases.
    model_name : str or None
    threshold : float or None
        The model's operating threshold (chosen on validation rows).
    rating : str
        ``"score"`` or ``"call"``: what the AUCs and the MRMC analysis used.
    notes : tuple of str
    """

    points: tuple[ReaderPoint, ...]
    versus_model: tuple[PairedComparison, ...]
    aided_vs_unaided: tuple[PairedComparison, ...]
    mrmc: MRMCResult | None
    model_name: str | None
    threshold: float | None
    rating: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_frame(self) -> pd.DataFrame:
        """Same as :meth:`points_frame` (``comparisons_frame()`` and ``mrmc.to_frame()`` hold the rest)."""
        return self.points_frame()

    def summary(self, digits: int = 4) -> str:
        """Readers' operating points, the paired comparisons and the MRMC analysis as text tables."""
        parts = [text_table(self.points_frame().drop(columns=["note"], errors="ignore"), "Reader study: "
                            "sensitivity, specificity and AUC per reader and condition", digits=digits)]
        comps = self.comparisons_frame()
        if not comps.empty:
            parts.append(text_table(comps, "Paired comparisons", digits=digits))
        if self.mrmc is not None:
            parts.append(self.mrmc.summary(digits))
        return "\n\n".join(parts + [f"note: {n}" for n in self.notes])

    def points_frame(self) -> pd.DataFrame:
        """Tidy table: one row per reader, condition and metric."""
        rows = []
        for p in self.points:
            for est in (p.sensitivity, p.specificity, *([p.auc] if p.auc is not None else [])):
                rows.append({"reader": p.reader, "condition": p.condition, "metric": est.name,
                             "estimate": est.estimate, "ci_low": est.ci_low, "ci_high": est.ci_high,
                             "method": est.method, "n": est.n, "note": est.note})
        return pd.DataFrame(rows)

    def comparisons_frame(self) -> pd.DataFrame:
        """Tidy table of the paired comparisons (reader vs model, aided vs unaided)."""
        rows = []
        for kind, comps in (("reader_vs_model", self.versus_model), ("aided_vs_unaided", self.aided_vs_unaided)):
            for c in comps:
                for metric, ea, eb, test in (("sensitivity", c.sensitivity_a, c.sensitivity_b, c.sensitivity_test),
                                             ("specificity", c.specificity_a, c.specificity_b, c.specificity_test)):
                    if test is None:
                        continue
                    d = test.difference
                    rows.append({"comparison": kind, "reader": c.reader, "a": c.a, "b": c.b, "metric": metric,
                                 "estimate_a": ea.estimate, "estimate_b": eb.estimate, "difference": d.estimate,
                                 "ci_low": d.ci_low, "ci_high": d.ci_high, "ci_method": d.method,
                                 "test": f"mcnemar-{test.method}", "p_value": test.p_value, "n": d.n})
                if c.auc_difference is not None:
                    d = c.auc_difference
                    rows.append({"comparison": kind, "reader": c.reader, "a": c.a, "b": c.b, "metric": "auc",
                                 "estimate_a": d.extra.get("auc_a"), "estimate_b": d.extra.get("auc_b"),
                                 "difference": d.estimate, "ci_low": d.ci_low, "ci_high": d.ci_high,
                                 "ci_method": d.method, "test": d.method, "p_value": d.extra.get("p_value"),
                                 "n": d.n})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "model": self.model_name,
            "model_threshold": self.threshold,
            "rating": self.rating,
            "points": [{"reader": p.reader, "condition": p.condition, "n_cases": p.n_cases,
                        "n_positive": p.n_positive, "n_negative": p.n_negative,
                        "sensitivity": p.sensitivity.to_dict(), "specificity": p.specificity.to_dict(),
                        "auc": p.auc.to_dict() if p.auc is not None else None} for p in self.points],
            "versus_model": [c.to_dict() for c in self.versus_model],
            "aided_vs_unaided": [c.to_dict() for c in self.aided_vs_unaided],
            "mrmc": self.mrmc.to_dict() if self.mrmc is not None else None,
            "notes": list(self.notes),
        }


def _auc_delong(y: np.ndarray, s: np.ndarray, alpha: float) -> Estimate:
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return Estimate("auc", math.nan, math.nan, math.nan, "delong", alpha, int(y.size),
                        f"undefined: {m} positive and {n} negative case(s)")
    return roc_auc(y.astype(int), s, method="delong", alpha=alpha)


def _auc_difference(y: np.ndarray, sa: np.ndarray, sb: np.ndarray, alpha: float) -> Estimate:
    """Paired DeLong test of AUC(a) - AUC(b) on the same cases (:func:`compare_auc`) as one Estimate."""
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return Estimate("auc_difference", math.nan, math.nan, math.nan, "delong-paired", alpha, int(y.size),
                        f"undefined: {m} positive and {n} negative case(s)")
    c = compare_auc(y.astype(int), sa, sb, alpha=alpha)
    d = c.difference
    return Estimate(d.name, d.estimate, d.ci_low, d.ci_high, d.method, d.alpha, d.n, d.note,
                    {"se": d.extra.get("se"), "auc_a": c.auc_a, "auc_b": c.auc_b, "z": c.statistic,
                     "p_value": c.p_value})


def _sens_spec(y: np.ndarray, call: np.ndarray, alpha: float) -> tuple[Estimate, Estimate]:
    tp, fn = int(np.sum(call & y)), int(np.sum(~call & y))
    tn, fp = int(np.sum(~call & ~y)), int(np.sum(call & ~y))
    return (proportion_ci(tp, tp + fn, method="wilson", alpha=alpha, name="sensitivity"),
            proportion_ci(tn, tn + fp, method="wilson", alpha=alpha, name="specificity"))


def _paired(reader: str, a: str, b: str, y: np.ndarray, call_a: np.ndarray | None, call_b: np.ndarray | None,
            score_a: np.ndarray | None, score_b: np.ndarray | None, alpha: float) -> PairedComparison:
    sens_test = spec_test = None
    if call_a is not None and call_b is not None:
        sa, pa = _sens_spec(y, call_a, alpha)
        sb, pb = _sens_spec(y, call_b, alpha)
        yi, ai, bi = y.astype(int), call_a.astype(int), call_b.astype(int)
        if y.any():
            sens_test = mcnemar_test(yi, ai, bi, on="sensitivity", method="exact", alpha=alpha)
        if (~y).any():
            spec_test = mcnemar_test(yi, ai, bi, on="specificity", method="exact", alpha=alpha)
    else:
        sa = sb = Estimate("sensitivity", math.nan, math.nan, math.nan, "wilson", alpha, None, "no calls")
        pa = pb = Estimate("specificity", math.nan, math.nan, math.nan, "wilson", alpha, None, "no calls")
    auc_diff = None
    if score_a is not None and score_b is not None:
        auc_diff = _auc_difference(y, score_a, score_b, alpha)
    return PairedComparison(reader, a, b, int(y.size), sa, sb, pa, pb, sens_test, spec_test, auc_diff)


def _aided_vs_unaided(rd: pd.DataFrame, readers: list[str], conditions: list[str], has_call: bool,
                      has_score: bool, alpha: float, notes: list[str]) -> list[PairedComparison]:
    """Aided vs unaided per reader, on the patients read in both conditions (appends to ``notes``)."""
    aided: list[PairedComparison] = []
    if {"aided", "unaided"} <= set(conditions):
        for reader in readers:
            a = rd[(rd["reader"] == reader) & (rd["condition"] == "aided")].set_index("patient_id")
            u = rd[(rd["reader"] == reader) & (rd["condition"] == "unaided")].set_index("patient_id")
            common = [p for p in u.index if p in a.index]
            if not common:
                notes.append(f"reader {reader!r}: no patient read both aided and unaided")
                continue
            y = u.loc[common, "y"].to_numpy()
            ca = a.loc[common, "call"].to_numpy() == 1.0 if has_call else None
            cu = u.loc[common, "call"].to_numpy() == 1.0 if has_call else None
            sa_, su_ = a.loc[common, "score"].to_numpy(), u.loc[common, "score"].to_numpy()
            scored = has_score and bool(np.isfinite(sa_).all() and np.isfinite(su_).all())
            aided.append(_paired(reader, "aided", "unaided", y, ca, cu, sa_ if scored else None,
                                 su_ if scored else None, alpha))

    return aided


def _mrmc_of_reads(rd: pd.DataFrame, readers: list[str], conditions: list[str], truth_s: pd.Series, has_call: bool,
                   has_score: bool, mrmc_cov: MRMCCov, alpha: float, notes: list[str]) -> MRMCResult | None:
    """Obuchowski-Rockette over the readers and patients of a fully crossed design (appends to ``notes``)."""
    mrmc = None
    if len(readers) >= 2:
        col = "score" if has_score else ("call" if has_call else "")
        if col:
            # a reader who did not read in every condition (or, when rating by score, left scores out) cannot enter
            # the fully crossed analysis: left out of the MRMC only, kept in the per-reader results
            complete = rd.groupby("reader")[col].apply(lambda v: bool(v.notna().all()))
            in_all = rd.groupby("reader")["condition"].agg(lambda v: set(conditions) <= set(v))
            mrmc_readers = [r for r in readers if complete[r] and in_all[r]]
            left_out = [r for r in readers if r not in mrmc_readers]
            if left_out:
                notes.append(f"MRMC: reader(s) {left_out} left out (not read in every condition"
                             + (" or with missing scores" if col == "score" else "") + "); their per-reader "
                             "results are kept")
            if len(mrmc_readers) < 2:
                notes.append("MRMC: fewer than two readers read in every condition; no MRMC analysis")
            else:
                sel = rd[rd["reader"].isin(mrmc_readers)]
                wide = sel.pivot_table(index="patient_id", columns=["condition", "reader"], values=col,
                                       aggfunc="first")
                full = wide.dropna()
                if len(full) < len(wide):
                    notes.append(f"MRMC: {len(wide) - len(full)} of {len(wide)} patients not read by every reader "
                                 "in every condition were left out of the MRMC analysis")
                y_m = full.index.map(truth_s).astype(int).to_numpy()
                if len(full) and y_m.sum() >= 2 and (1 - y_m).sum() >= 2:
                    x = np.stack([np.stack([full[(c, r)].to_numpy(dtype=float) for r in mrmc_readers])
                                  for c in conditions])
                    mrmc = mrmc_analysis(y_m, x, modalities=conditions, readers=mrmc_readers, cov=mrmc_cov,
                                         alpha=alpha)
                else:
                    notes.append("MRMC: too few fully crossed patients with both outcomes (need >= 2 of each)")
    else:
        notes.append("MRMC analysis needs at least two readers")
    return mrmc


def reader_study(
    reads: pd.DataFrame,
    truth: Mapping[str, int] | pd.Series,
    *,
    model_score: Mapping[str, float] | pd.Series | None = None,
    threshold: float | None = None,
    model_name: str | None = None,
    reader_threshold: float | None = None,
    mrmc_cov: MRMCCov = "delong",
    alpha: float = 0.05,
) -> ReaderStudy:
    """Analyse a reader study against the reference standard and (optionally) the model.

    Parameters
    ----------
    reads : pandas.DataFrame
        Output of :func:`validate_reads`.
    truth : Series or mapping, patient_id -> 0/1
        Reference standard per patient (1 = positive). Every read patient must be present.
    model_score : Series or mapping, patient_id -> float, optional
        The model's score per patient; with ``threshold`` the model's calls are ``score >= threshold``.
    threshold : float, optional
        The model's operating threshold, chosen on validation rows (never on these patients).
    model_name : str, optional
        Label for the model in comparisons.
    reader_threshold : float, optional
        When reads have scores but no calls: a reader's call is ``score >= reader_threshold``.
    mrmc_cov : {"delong", "jackknife"}
        Covariance method of the Obuchowski-Rockette analysis.
    alpha : float

    Returns
    -------
    ReaderStudy

    Notes
    -----
    * Operating points: sensitivity and specificity with Wilson intervals.
    * Reader vs model: exact McNemar tests on the positive patients (sensitivity) and on the negative patients
      (specificity) that the reader read, in each condition; with reader scores also the paired DeLong AUC test.
    * Aided vs unaided: the same paired tests per reader, on the patients read in both conditions.
    * MRMC: Obuchowski-Rockette (:func:`mrmc_analysis`) over readers x conditions on the patients read by every
      reader in every condition (other patients are left out of this analysis only, with a note). A reader who
      did not read in every condition, or (rating by score) has missing scores, is left out of the MRMC only, with a
      note; their per-reader results are kept.
    * Scores are decided per reader and condition: a reader whose reads lack scores gets no AUC and no
      score-based comparison (noted), the others are unaffected.
    """
    alpha = check_alpha(alpha)
    mrmc_cov = check_choice("mrmc_cov", mrmc_cov, ("delong", "jackknife"))  # type: ignore[assignment]
    truth_s = pd.Series(truth, dtype=object)
    truth_s.index = truth_s.index.astype(str)
    unknown = sorted(set(reads["patient_id"]) - set(truth_s.index))
    if unknown:
        raise StatisticsInputError(f"reads table: {len(unknown)} patient_id(s) not in the predictions, "
                                   f"e.g. {unknown[:5]}")
    if (model_score is None) != (threshold is None):
        raise StatisticsInputError("model_score and threshold go together: give both to compare readers with the model")
    model_s = None
    if model_score is not None:
        model_s = pd.Series(model_score, dtype=float)
        model_s.index = model_s.index.astype(str)

    has_call = bool(reads["call"].notna().any())
    has_score = bool(reads["score"].notna().any())
    notes: list[str] = []
    rd = reads.copy()
    if not has_call:
        if reader_threshold is not None:
            rd["call"] = (rd["score"] >= reader_threshold).astype(float)
            notes.append(f"reader calls derived as score >= {reader_threshold}")
            has_call = True
        else:
            notes.append("no 'call' column: reader operating points and McNemar tests need calls "
                         "(or reader_threshold=)")
    rating = "score" if has_score else "call"
    rd["y"] = rd["patient_id"].map(truth_s).astype(int).astype(bool)

    points: list[ReaderPoint] = []
    vs_model: list[PairedComparison] = []
    conditions = [c for c in ("aided", "unaided", "all") if c in set(rd["condition"])]
    readers = list(dict.fromkeys(rd["reader"]))
    for reader in readers:
        for cond in conditions:
            sub = rd[(rd["reader"] == reader) & (rd["condition"] == cond)]
            if sub.empty:
                continue
            y = sub["y"].to_numpy()
            # scores decided per reader and condition: a reader with missing scores gets no AUC (NaN never reaches
            # DeLong) and no score-based comparison
            scored = has_score and bool(sub["score"].notna().all())
            if has_score and not scored:
                notes.append(f"reader {reader!r}" + ("" if cond == "all" else f" ({cond})") + f": "
                             f"{int(sub['score'].isna().sum())} of {len(sub)} reads have no score; no AUC or "
                             "score-based comparison for this reader")
            if has_call:
                call = sub["call"].to_numpy() == 1.0
                sens, spec = _sens_spec(y, call, alpha)
            else:
                sens = Estimate("sensitivity", math.nan, math.nan, math.nan, "wilson", alpha, None, "no calls")
                spec = Estimate("specificity", math.nan, math.nan, math.nan, "wilson", alpha, None, "no calls")
            auc = _auc_delong(y, sub["score"].to_numpy(), alpha) if scored else None
            points.append(ReaderPoint(reader, cond, sens, spec, auc, len(sub), int(y.sum()), int((~y).sum())))
            if model_s is not None and has_call:
                ms = sub["patient_id"].map(model_s)
                if ms.isna().any():
                    missing = sub["patient_id"][ms.isna()].tolist()[:5]
                    raise StatisticsInputError(f"model {model_name!r} has no prediction for read patient(s) {missing}")
                m_score = ms.to_numpy(dtype=float)
                m_call = m_score >= float(threshold)  # type: ignore[arg-type]
                label = reader if cond == "all" else f"{reader} ({cond})"
                vs_model.append(_paired(label, "reader", model_name or "model", y, call, m_call,
                                        sub["score"].to_numpy() if scored else None,
                                        m_score if scored else None, alpha))

    aided = _aided_vs_unaided(rd, readers, conditions, has_call, has_score, alpha, notes)
    mrmc = _mrmc_of_reads(rd, readers, conditions, truth_s, has_call, has_score, mrmc_cov, alpha, notes)
    return ReaderStudy(tuple(points), tuple(vs_model), tuple(aided), mrmc, model_name,
                       float(threshold) if threshold is not None else None, rating, tuple(notes))
