"""Operating point: choose a threshold on validation predictions, then the 2x2 table and its metrics with CIs.

Threshold rule: a case is called positive when ``score >= threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._bootstrap import (
    SeedLike,
    bootstrap_note,
    bootstrap_weights,
    make_rng,
    percentile_interval,
)
from nodescope.evaluation._proportions import (
    PROPORTION_METHODS,
    ProportionMethod,
    proportion_ci,
    ratio_estimates,
)
from nodescope.evaluation._results import ResultsMixin, text_table
from nodescope.evaluation._validation import (
    as_groups,
    binary_inputs,
    check_alpha,
    check_choice,
    check_n_boot,
)

__all__ = [
    "BinaryMetrics", "ConfusionTable", "OperatingPoint", "ThresholdChoice", "binary_metrics", "choose_threshold",
]

ThresholdMethod = Literal["youden", "sensitivity", "specificity", "fixed"]
THRESHOLD_METHODS: tuple[str, ...] = ("youden", "sensitivity", "specificity", "fixed")


@dataclass(frozen=True)
class ThresholdChoice(ResultsMixin):
    """A threshold chosen on (validation) predictions, with the operating point it gives there.

    Attributes
    ----------
    threshold : float
        ``score >= threshold`` is called positive. Apply it unchanged to test/external data.
    method : str
        ``"youden"``, ``"sensitivity"``, ``"specificity"`` or ``"fixed"``.
    target : float or None
        The required sensitivity/specificity, or the fixed threshold.
    sensitivity, specificity : float
        On the data the threshold was chosen on.
    n : int
        Rows used.
    table : ConfusionTable or None
        The 2x2 table at ``threshold`` on the choosing data.
    optima : tuple of OperatingPoint
        Every threshold reaching the optimum (several when the Youden index ties, as pROC
        ``coords(roc, "best", best.method = "youden")`` lists them), highest threshold first, each with its 2x2
        table. ``threshold`` is the first of them (the most specific). One entry for the other methods.
    """

    threshold: float
    method: str
    target: float | None
    sensitivity: float
    specificity: float
    n: int
    table: ConfusionTable | None = None
    optima: tuple[OperatingPoint, ...] = ()

    @property
    def youden(self) -> float:
        """``sensitivity + specificity - 1`` on the choosing data."""
        return self.sensitivity + self.specificity - 1.0

    _summary_title = "Operating threshold (score >= threshold is positive)"

    def to_frame(self) -> pd.DataFrame:
        """One row per optimum (tied optima included): threshold, sensitivity, specificity, Youden, TP, FP, FN, TN."""
        return pd.DataFrame([o.to_row() for o in self.optima])

    def _summary_footer(self) -> str:
        tgt = "" if self.target is None else f", target {self.target:g}"
        ties = f"; {len(self.optima)} tied optima, the first is used" if len(self.optima) > 1 else ""
        return f"method: {self.method}{tgt}; n = {self.n}{ties}"


@dataclass(frozen=True)
class OperatingPoint:
    """One threshold with its sensitivity, specificity and 2x2 table (``score >= threshold`` is positive)."""

    threshold: float
    sensitivity: float
    specificity: float
    table: ConfusionTable

    @property
    def youden(self) -> float:
        """``sensitivity + specificity - 1``."""
        return self.sensitivity + self.specificity - 1.0

    def to_row(self) -> dict[str, float | int]:
        """Flat ``dict``: threshold, sensitivity, specificity, youden, tp, fp, fn, tn."""
        t = self.table
        return {"threshold": self.threshold, "sensitivity": self.sensitivity, "specificity": self.specificity,
                "youden": self.youden, "tp": t.tp, "fp": t.fp, "fn": t.fn, "tn": t.tn}


def _operating_points(y: NDArray[np.bool_], s: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Candidate thresholds (distinct scores, descending) and the sensitivity/specificity at each."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp = np.cumsum(y_sorted)[last]
    fp = np.cumsum(~y_sorted)[last]
    m, n = y.sum(), (~y).sum()
    return s_sorted[last], tp / m, 1.0 - fp / n


def _point(y: NDArray[np.bool_], s: NDArray[np.float64], threshold: float) -> OperatingPoint:
    pred = s >= threshold
    t = ConfusionTable(int(np.sum(pred & y)), int(np.sum(pred & ~y)), int(np.sum(~pred & y)), int(np.sum(~pred & ~y)))
    return OperatingPoint(float(threshold), t.tp / (t.tp + t.fn), t.tn / (t.tn + t.fp), t)


def choose_threshold(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    method: ThresholdMethod = "youden",
    target: float | None = None,
) -> ThresholdChoice:
    """Choose an operating threshold on validation (``cv``/``val``) predictions; never on the test set.

    Candidates are the distinct observed scores (``score >= t`` positive), so the chosen threshold reproduces the
    operating point exactly on the choosing data.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 labels.
    y_score : array-like, shape (N,)
    method : {"youden", "sensitivity", "specificity", "fixed"}, default "youden"
        ``"youden"``: maximise ``J = sens + spec - 1``; ties broken by the higher threshold (more specific).
        ``"sensitivity"``: the highest threshold whose sensitivity is ``>= target`` (best specificity at that
        sensitivity). ``"specificity"``: the lowest threshold whose specificity is ``>= target`` (best sensitivity).
        ``"fixed"``: ``target`` is the threshold.
    target : float, optional
        Required for every method but ``"youden"``; a rate in [0, 1] for sensitivity/specificity.

    Returns
    -------
    ThresholdChoice
        With the 2x2 ``table`` at the chosen threshold and, in ``optima``, every tied optimum with its table.

    Raises
    ------
    ValueError
        One class absent, bad ``target``, or no threshold reaching the target specificity.
    """
    y, s = binary_inputs(y_true, y_score)
    method = check_choice("method", method, THRESHOLD_METHODS)  # type: ignore[assignment]
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise StatisticsInputError(f"choosing a threshold needs both classes; got {m} positive(s) and {n} negative(s)")
    tgt = math.nan
    if method == "youden":
        if target is not None:
            raise StatisticsInputError("target is not used with method='youden'; leave it out")
    else:
        if target is None or isinstance(target, bool) or not isinstance(target, (int, float, np.floating)):
            raise StatisticsInputError(f"method={method!r} needs a numeric target=; got {target!r}")
        tgt = float(target)
        if method != "fixed" and not 0.0 <= tgt <= 1.0:
            raise StatisticsInputError(f"target for method={method!r} must be a rate in [0, 1]; got {tgt}")
        if method == "fixed" and not math.isfinite(tgt):
            raise StatisticsInputError(f"a fixed threshold must be finite; got {tgt}")
    target_out = None if method == "youden" else tgt
    thr, sens, spec = _operating_points(y, s)
    if method == "fixed":
        pt = _point(y, s, tgt)
        return ThresholdChoice(
            tgt, method, target_out, pt.sensitivity, pt.specificity, int(y.shape[0]), pt.table, (pt,)
        )
    tied: list[int] = []
    if method == "youden":
        j = sens + spec - 1.0
        tied = [int(k) for k in np.flatnonzero(np.isclose(j, j.max(), rtol=0, atol=1e-12))]
        i = tied[0]
    elif method == "sensitivity":
        i = int(np.flatnonzero(sens >= tgt - 1e-12)[0])  # thresholds descend: first = highest
    else:
        ok = np.flatnonzero(spec >= tgt - 1e-12)
        if ok.size == 0:
            raise StatisticsInputError(
                f"no threshold reaches specificity >= {tgt}; the best is {spec.max():.4f} (at the highest score)"
            )
        i = int(ok[-1])  # lowest threshold still meeting the specificity
    optima = tuple(_point(y, s, float(thr[k])) for k in (tied or [i]))
    return ThresholdChoice(float(thr[i]), method, target_out, float(sens[i]), float(spec[i]), int(y.shape[0]),
                           optima[0].table, optima)


@dataclass(frozen=True)
class ConfusionTable:
    """2x2 table at a threshold: rows = reference (positive, negative), columns = test call."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def n(self) -> int:
        """Total cases."""
        return self.tp + self.fp + self.fn + self.tn

    def to_frame(self) -> pd.DataFrame:
        """The table as a labelled 2x2 DataFrame with margins."""
        return pd.DataFrame(
            {"test positive": [self.tp, self.fp, self.tp + self.fp],
             "test negative": [self.fn, self.tn, self.fn + self.tn],
             "total": [self.tp + self.fn, self.fp + self.tn, self.n]},
            index=["reference positive", "reference negative", "total"],
        )


@dataclass(frozen=True)
class BinaryMetrics(ResultsMixin):
    """Metrics of a binary test at one threshold, each an :class:`Estimate` with its interval method recorded.

    Attributes
    ----------
    threshold : float
        ``score >= threshold`` is positive.
    table : ConfusionTable
    sensitivity, specificity, ppv, npv, accuracy : Estimate
        Wilson (or the ``proportion_method`` asked for) intervals; cluster bootstrap with several rows per patient.
    balanced_accuracy, f1, mcc : Estimate
        Percentile bootstrap intervals (``nan`` bounds with ``n_boot=0``).
    lr_positive, lr_negative, dor : Estimate
        Log-method intervals.
    """

    threshold: float
    table: ConfusionTable
    sensitivity: Estimate
    specificity: Estimate
    ppv: Estimate
    npv: Estimate
    accuracy: Estimate
    balanced_accuracy: Estimate
    f1: Estimate
    mcc: Estimate
    lr_positive: Estimate
    lr_negative: Estimate
    dor: Estimate

    def estimates(self) -> list[Estimate]:
        """All metric estimates, in field order."""
        return [getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), Estimate)]

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: name, estimate, ci_low, ci_high, method, alpha, n, note."""
        return pd.concat([e.summary_frame() for e in self.estimates()], ignore_index=True)

    def summary_frame(self) -> pd.DataFrame:
        """Same as :meth:`to_frame` (the spelling of :meth:`Estimate.summary_frame`)."""
        return self.to_frame()

    _summary_title = "Binary test metrics"

    def summary(self, digits: int = 4) -> str:
        """The 2x2 table, then one line per metric with its interval and method."""
        head = text_table(self.table.to_frame(), f"Binary test metrics at threshold {self.threshold:g} "
                          "(score >= threshold is positive)", digits=digits)
        frame = self.to_frame().set_index("name").drop(columns=["note"])
        notes = "; ".join(f"{e.name}: {e.note}" for e in self.estimates() if e.note)
        return head + "\n\n" + text_table(frame, "", digits=digits, footer=f"notes: {notes}" if notes else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: threshold, 2x2 table and each metric."""
        return {
            "threshold": self.threshold,
            "rule": "score >= threshold is positive",
            "table": {"tp": self.table.tp, "fp": self.table.fp, "fn": self.table.fn, "tn": self.table.tn},
            "metrics": {e.name: e.to_dict() for e in self.estimates()},
        }


def table_metrics(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike, tn: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """Balanced accuracy, F1 and MCC from (arrays of) 2x2 counts; ``nan`` where undefined."""
    tp, fp, fn, tn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn, tn))
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = tp / (tp + fn)
        spec = tn / (tn + fp)
        f1 = 2 * tp / (2 * tp + fp + fn)
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), np.nan)
    return {"balanced_accuracy": (sens + spec) / 2, "f1": f1, "mcc": mcc}


_UNDEFINED_NOTES = {
    "balanced_accuracy": "undefined: needs both reference classes",
    "f1": "undefined: no reference positive and no positive call (0/0)",
    "mcc": "undefined: a row or column of the 2x2 table is empty (0/0)",
}


def binary_metrics(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    threshold: float,
    alpha: float = 0.05,
    proportion_method: ProportionMethod = "wilson",
    ratio_correction: float = 0.0,
    n_boot: int = 2000,
    groups: ArrayLike | None = None,
    seed: SeedLike = 0,
) -> BinaryMetrics:
    """2x2 table and accuracy metrics at ``threshold`` (``score >= threshold`` is positive), each with a CI.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 reference labels.
    y_score : array-like, shape (N,)
        Scores, or 0/1 calls (use ``threshold=1``; e.g. a reader's binary reads).
    threshold : float
        Usually :attr:`ThresholdChoice.threshold` from validation data.
    alpha : float, default 0.05
    proportion_method : {"wilson", "clopper-pearson"}, default "wilson"
        Interval for sensitivity, specificity, PPV, NPV and accuracy (Wilson without continuity correction).
    ratio_correction : float, default 0
        Added to every cell for LR+/LR-/DOR only when asked (0.5 = Haldane); recorded in the notes.
    n_boot : int, default 2000
        Stratified bootstrap replicates for balanced accuracy, F1 and MCC (percentile intervals).
    groups : array-like, optional
        Patient ids; the bootstrap then resamples patients. When a patient has several rows, the sensitivity,
        specificity, PPV, NPV and accuracy intervals are cluster-bootstrap percentile intervals too (a Wilson or
        Clopper-Pearson interval would treat correlated rows as independent and be too narrow; noted in each
        result). With one row per patient they stay Wilson/Clopper-Pearson.
    seed : int, Generator or None, default 0

    Returns
    -------
    BinaryMetrics

    Notes
    -----
    Undefined metrics (no reference positive: sensitivity; no positive call: PPV; an empty margin: MCC) are ``nan``
    with a note; they never raise. Formulas: sens = TP/(TP+FN), spec = TN/(TN+FP), PPV = TP/(TP+FP),
    NPV = TN/(TN+FN), accuracy = (TP+TN)/N, balanced accuracy = (sens+spec)/2, F1 = 2TP/(2TP+FP+FN),
    MCC = (TP TN - FP FN)/sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), LR+ = sens/(1-spec), LR- = (1-sens)/spec,
    DOR = TP TN/(FP FN).
    """
    y, s = binary_inputs(y_true, y_score)
    alpha = check_alpha(alpha)
    proportion_method = check_choice("proportion_method", proportion_method, PROPORTION_METHODS)  # type: ignore[assignment]
    n_boot = check_n_boot(n_boot, allow_zero=True)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)):
        raise TypeError(f"threshold must be a number; got {type(threshold).__name__}")
    threshold = float(threshold)
    pred = s >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))
    table = ConfusionTable(tp, fp, fn, tn)

    def prop(name: str, k: int, d: int, undefined: str) -> Estimate:
        e = proportion_ci(k, d, method=proportion_method, alpha=alpha, name=name)
        if d == 0:
            return Estimate(name, e.estimate, e.ci_low, e.ci_high, e.method, alpha, 0, undefined, e.extra)
        return e

    g = as_groups(groups, y.shape[0])
    clustered = g is not None and np.unique(g).size < g.size
    w = bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), groups=g, stratified=True).astype(np.float64)
    btp, bfp, bfn, btn = w @ (pred & y), w @ (pred & ~y), w @ (~pred & y), w @ (~pred & ~y)

    def cluster_prop(e: Estimate, k_rep: NDArray[np.float64], d_rep: NDArray[np.float64]) -> Estimate:
        # several rows per patient: rows are not independent, so a Wilson interval would be too narrow; the
        # interval comes from the same stratified cluster bootstrap over patients as the other metrics
        if not clustered or not e.defined:
            return e
        with np.errstate(invalid="ignore", divide="ignore"):
            lo, hi, used = percentile_interval(k_rep / d_rep, alpha)
        note = "; ".join(x for x in ("cluster bootstrap over patients (several rows per patient)",
                                     bootstrap_note(used, n_boot)) if x)
        return Estimate(e.name, e.estimate, lo, hi, "bootstrap-percentile", alpha, e.n, note,
                        {**e.extra, "n_boot": n_boot, "n_boot_used": used, "stratified": True, "clustered": True})

    sens = cluster_prop(prop("sensitivity", tp, tp + fn, "undefined: no reference positive"), btp, btp + bfn)
    spec = cluster_prop(prop("specificity", tn, tn + fp, "undefined: no reference negative"), btn, btn + bfp)
    ppv = cluster_prop(prop("ppv", tp, tp + fp, "undefined: no positive call at this threshold"), btp, btp + bfp)
    npv = cluster_prop(prop("npv", tn, tn + fn, "undefined: no negative call at this threshold"), btn, btn + bfn)
    acc = cluster_prop(prop("accuracy", tp + tn, table.n, "undefined: no case"), btp + btn,
                       btp + bfp + bfn + btn)

    point = {k: float(v) for k, v in table_metrics(tp, fp, fn, tn).items()}
    reps = table_metrics(btp, bfp, bfn, btn)
    boot: dict[str, Estimate] = {}
    for name, value in point.items():
        lo, hi, used = percentile_interval(reps[name], alpha)
        if not math.isfinite(value):
            note = _UNDEFINED_NOTES[name]
            lo = hi = math.nan
        else:
            note = bootstrap_note(used, n_boot)
        boot[name] = Estimate(
            name, value, lo, hi, "bootstrap-percentile", alpha, table.n, note,
            {"n_boot": n_boot, "n_boot_used": used, "stratified": True, "clustered": g is not None},
        )
    lrp, lrn, dor = ratio_estimates(tp, fp, fn, tn, alpha=alpha, correction=ratio_correction)
    rows_note = "log-method interval treats the rows as independent (several rows per patient)" if clustered else ""
    lrp, lrn, dor = (Estimate(e.name, e.estimate, e.ci_low, e.ci_high, e.method, e.alpha, table.n,
                              "; ".join(x for x in (e.note, rows_note) if x), e.extra)
                     for e in (lrp, lrn, dor))
    return BinaryMetrics(
        threshold=threshold, table=table, sensitivity=sens, specificity=spec, ppv=ppv, npv=npv, accuracy=acc,
        balanced_accuracy=boot["balanced_accuracy"], f1=boot["f1"], mcc=boot["mcc"],
        lr_positive=lrp, lr_negative=lrn, dor=dor,
    )
