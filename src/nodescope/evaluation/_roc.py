"""Binary discrimination: ROC curve, AUC with DeLong or bootstrap interval, ROC confidence band, PR curve, AP.

Threshold rule (everywhere in nodescope): a case is called positive when ``score >= threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm
from sklearn import metrics as skm

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._bootstrap import (
    SeedLike,
    bootstrap_note,
    bootstrap_weights,
    make_rng,
    percentile_interval,
    weighted_auc,
)
from nodescope.evaluation._delong import delong_components
from nodescope.evaluation._results import ResultsMixin, jsonable, text_table
from nodescope.evaluation._validation import (
    as_groups,
    binary_inputs,
    check_alpha,
    check_choice,
    check_n_boot,
)

__all__ = [
    "AucEstimate",
    "PrCurve",
    "RocBand",
    "RocCurve",
    "average_precision",
    "pr_curve",
    "roc_auc",
    "roc_band",
    "roc_curve",
]

AucMethod = Literal["delong", "bootstrap"]
AUC_METHODS: tuple[str, ...] = ("delong", "bootstrap")


@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC curve.

    Attributes
    ----------
    fpr, tpr : ndarray, shape (L + 1,)
        False- and true-positive rates, starting at (0, 0).
    thresholds : ndarray, shape (L + 1,)
        Decreasing; point ``i`` calls ``score >= thresholds[i]`` positive. ``thresholds[0] = inf``.
    n_positive, n_negative : int
    """

    fpr: NDArray[np.float64]
    tpr: NDArray[np.float64]
    thresholds: NDArray[np.float64]
    n_positive: int
    n_negative: int

    @property
    def sensitivity(self) -> NDArray[np.float64]:
        """Same as ``tpr``."""
        return self.tpr

    @property
    def specificity(self) -> NDArray[np.float64]:
        """``1 - fpr``."""
        return 1.0 - self.fpr


@dataclass(frozen=True)
class RocBand:
    """Pointwise bootstrap confidence band of sensitivity at fixed false-positive rates.

    Attributes
    ----------
    fpr : ndarray, shape (G,)
        Grid of false-positive rates (``1 - specificity``).
    tpr : ndarray, shape (G,)
        Sensitivity of the observed curve at each grid point (the highest sensitivity with ``fpr <= grid``).
    tpr_low, tpr_high : ndarray, shape (G,)
        Percentile bounds over the bootstrap replicates.
    alpha : float
    n_boot : int
    """

    fpr: NDArray[np.float64]
    tpr: NDArray[np.float64]
    tpr_low: NDArray[np.float64]
    tpr_high: NDArray[np.float64]
    alpha: float
    n_boot: int


@dataclass(frozen=True)
class PrCurve:
    """Precision-recall curve (as :func:`sklearn.metrics.precision_recall_curve`).

    Attributes
    ----------
    precision, recall : ndarray, shape (L + 1,)
        Recall decreasing to 0; the last point is (recall 0, precision 1) by convention.
    thresholds : ndarray, shape (L,)
        Increasing; ``score >= thresholds[i]`` is positive for point ``i``.
    prevalence : float
        Fraction of positives, the precision of a no-skill classifier.
    """

    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    thresholds: NDArray[np.float64]
    prevalence: float


@dataclass(frozen=True)
class AucEstimate(ResultsMixin, Estimate):
    """The AUC with its interval (an :class:`Estimate`), plus the DeLong variance as a field.

    Attributes
    ----------
    name, estimate, ci_low, ci_high, method, alpha, n, note, extra
        As :class:`Estimate` (``name="auc"``).
    variance : float
        DeLong variance of the AUC, pROC's ``var(roc)`` (``nan`` when undefined: a class with fewer than 2 cases).
        Given whatever the interval ``method``.
    n_positive, n_negative : int
        Cases in each class.
    """

    variance: float = math.nan
    n_positive: int = 0
    n_negative: int = 0

    _summary_title = "Area under the ROC curve"

    @property
    def se(self) -> float:
        """DeLong standard error ``sqrt(variance)`` (``nan`` when undefined)."""
        return math.sqrt(self.variance) if math.isfinite(self.variance) and self.variance >= 0 else math.nan

    def to_frame(self) -> pd.DataFrame:
        """One row: estimate, interval, DeLong variance and SE, counts."""
        frame = self.summary_frame()
        frame.insert(4, "variance_delong", self.variance)
        frame.insert(5, "se_delong", self.se)
        frame.insert(frame.columns.get_loc("n") + 1, "n_positive", self.n_positive)
        frame.insert(frame.columns.get_loc("n_positive") + 1, "n_negative", self.n_negative)
        return frame

    def summary(self, digits: int = 4) -> str:
        """pROC-like text: the AUC, its interval and method, the DeLong variance."""
        frame = self.to_frame().drop(columns=["name", "note"]).rename(index={0: "AUC"})
        foot = (f"{100 * (1 - self.alpha):g}% CI: {self.method}; controls (y = 0) < cases (y = 1)"
                + (f"\nnote: {self.note}" if self.note else ""))
        return text_table(frame, self._summary_title, digits=digits, footer=foot)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe ``dict``: the :class:`Estimate` fields plus ``variance``, ``n_positive``, ``n_negative``."""
        out = jsonable(Estimate.to_dict(self))
        assert isinstance(out, dict)
        return out


def _one_class_note(m: int, n: int) -> str:
    return f"undefined: needs both classes, got {m} positive(s) and {n} negative(s)"


def roc_curve(y_true: ArrayLike, y_score: ArrayLike) -> RocCurve:
    """Empirical ROC curve with every distinct score as a threshold (``score >= t`` is positive).

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 labels (1 = positive).
    y_score : array-like, shape (N,)
        Higher = more likely positive.

    Raises
    ------
    ValueError
        When one class is absent (a rate would be 0/0).
    """
    y, s = binary_inputs(y_true, y_score)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise StatisticsInputError(f"ROC curve {_one_class_note(m, n)}")
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=thr, n_positive=m, n_negative=n)


def roc_auc(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    method: AucMethod = "delong",
    alpha: float = 0.05,
    n_boot: int = 2000,
    groups: ArrayLike | None = None,
    stratified: bool = True,
    seed: SeedLike = 0,
) -> AucEstimate:
    """Area under the ROC curve with a ``1 - alpha`` confidence interval.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 labels.
    y_score : array-like, shape (N,)
        Higher = more likely positive (pROC ``direction = "<"`` with controls = 0, cases = 1).
    method : {"delong", "bootstrap"}, default "delong"
        ``"delong"``: ``AUC +/- z_{1-alpha/2} sqrt(Var_DeLong)`` on the raw AUC scale, bounds clipped to [0, 1]
        (as pROC ``ci.auc(method = "delong")``). ``"bootstrap"``: percentile interval of ``n_boot`` replicates.
    alpha : float, default 0.05
    n_boot : int, default 2000
        Bootstrap replicates (``method="bootstrap"`` only).
    groups : array-like, shape (N,), optional
        Cluster (patient) ids when a patient has several rows; resamples whole clusters. Bootstrap only: DeLong's
        variance assumes independent rows.
    stratified : bool, default True
        Stratified resampling (see :mod:`nodescope.evaluation._bootstrap`).
    seed : int, Generator or None, default 0

    Returns
    -------
    AucEstimate
        An :class:`Estimate` (``name="auc"``) with the DeLong ``variance`` (pROC ``var()``), ``se``,
        ``n_positive`` and ``n_negative`` as fields, and ``summary()``, ``to_frame()``, ``to_dict()``; ``extra``
        holds ``se`` (DeLong for ``method="delong"``, the bootstrap SD for ``"bootstrap"``), ``n_positive``,
        ``n_negative``. When one class is absent the
        estimate and bounds are ``nan`` and ``note`` says why. When fewer than 2 cases are in a class the DeLong
        variance is undefined (``nan`` bounds, as pROC). When all scores are tied, AUC = 0.5 and the DeLong variance
        is 0 (a degenerate interval [0.5, 0.5], noted).

    References
    ----------
    DeLong et al., Biometrics 1988; Sun & Xu, IEEE SPL 2014; Robin et al., BMC Bioinformatics 2011 (pROC).
    """
    y, s = binary_inputs(y_true, y_score)
    method = check_choice("method", method, AUC_METHODS)  # type: ignore[assignment]
    alpha = check_alpha(alpha)
    m, n = int(y.sum()), int((~y).sum())
    g = as_groups(groups, y.shape[0])
    if method == "delong" and g is not None:
        raise StatisticsInputError(
            "groups= (clustered rows) needs method='bootstrap'; DeLong's variance assumes one row per patient"
        )
    base = {"n_positive": m, "n_negative": n}
    if m == 0 or n == 0:
        return AucEstimate("auc", math.nan, math.nan, math.nan, method, alpha, y.shape[0], _one_class_note(m, n), base,
                           math.nan, m, n)
    comp = delong_components(y, s)
    auc = float(comp.auc[0])
    var = float(comp.covariance[0, 0])
    if method == "delong":
        note = ""
        if not math.isfinite(var):
            lo = hi = math.nan
            note = "DeLong variance undefined with fewer than 2 cases in a class"
        else:
            se = math.sqrt(max(var, 0.0))
            z = float(norm.ppf(1 - alpha / 2))
            lo, hi = max(auc - z * se, 0.0), min(auc + z * se, 1.0)
            if se == 0.0:
                note = "DeLong variance is 0 (e.g. all scores tied or perfect separation): degenerate interval"
        return AucEstimate("auc", auc, lo, hi, "delong", alpha, y.shape[0], note,
                           {**base, "se": math.sqrt(var) if math.isfinite(var) else None}, var, m, n)
    n_boot = check_n_boot(n_boot)
    w = bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), groups=g, stratified=stratified)
    reps = weighted_auc(y, s, w)
    lo, hi, used = percentile_interval(reps, alpha)
    extra = {
        **base,
        "n_boot": n_boot,
        "n_boot_used": used,
        "stratified": stratified,
        "clustered": g is not None,
        "seed": seed if isinstance(seed, int) else None,
        "se": float(np.nanstd(reps, ddof=1)) if used > 1 else None,
    }
    return AucEstimate("auc", auc, lo, hi, "bootstrap-percentile", alpha, y.shape[0], bootstrap_note(used, n_boot), extra,
                       var, m, n)


def _weighted_curves(
    y: NDArray[np.bool_], s: NDArray[np.float64], w: NDArray[np.integer]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cumulative weighted TP and FP counts at each distinct threshold, descending; shape (B, L + 1) from 0."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    ws = w[:, order].astype(np.float64)
    y_sorted = y[order]
    tp = np.cumsum(np.add.reduceat(ws * y_sorted, starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(ws * ~y_sorted, starts, axis=1), axis=1)
    zeros = np.zeros((w.shape[0], 1))
    return np.hstack([zeros, tp]), np.hstack([zeros, fp])


def _tpr_at(fpr: NDArray[np.float64], tpr: NDArray[np.float64], grid: NDArray[np.float64]) -> NDArray[np.float64]:
    """Highest sensitivity reachable with ``fpr <= grid`` on a monotone empirical curve."""
    idx = np.searchsorted(fpr, grid + 1e-12, side="right") - 1
    return tpr[np.clip(idx, 0, None)]


def roc_band(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    fpr_grid: ArrayLike | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    groups: ArrayLike | None = None,
    stratified: bool = True,
    seed: SeedLike = 0,
) -> RocBand:
    """Pointwise percentile bootstrap band of sensitivity at fixed false-positive rates (pROC ``ci.se`` analogue).

    Parameters
    ----------
    fpr_grid : array-like, optional
        False-positive rates in [0, 1]; default 101 points ``0, 0.01, ..., 1``.
    Other parameters as :func:`roc_auc`.
    """
    y, s = binary_inputs(y_true, y_score)
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise StatisticsInputError(f"ROC band {_one_class_note(m, n)}")
    grid = np.linspace(0, 1, 101) if fpr_grid is None else np.asarray(fpr_grid, dtype=float)
    if grid.ndim != 1 or np.any((grid < 0) | (grid > 1)):
        raise StatisticsInputError("fpr_grid must be a 1-D array of rates in [0, 1]")
    g = as_groups(groups, y.shape[0])
    w = bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), groups=g, stratified=stratified)
    tp, fp = _weighted_curves(y, s, w)
    p_tot, n_tot = tp[:, -1:], fp[:, -1:]
    ok = (p_tot[:, 0] > 0) & (n_tot[:, 0] > 0)
    tpr_b = tp[ok] / p_tot[ok]
    fpr_b = fp[ok] / n_tot[ok]
    curves = np.vstack([_tpr_at(fpr_b[i], tpr_b[i], grid) for i in range(tpr_b.shape[0])])
    lo, hi = np.quantile(curves, [alpha / 2, 1 - alpha / 2], axis=0)
    obs = roc_curve(y, s)
    return RocBand(
        fpr=grid,
        tpr=_tpr_at(obs.fpr, obs.tpr, grid),
        tpr_low=lo,
        tpr_high=hi,
        alpha=alpha,
        n_boot=int(ok.sum()),
    )


def pr_curve(y_true: ArrayLike, y_score: ArrayLike) -> PrCurve:
    """Precision-recall curve (``score >= t`` is positive); raises ValueError when there is no positive."""
    y, s = binary_inputs(y_true, y_score)
    if not y.any():
        raise StatisticsInputError("PR curve undefined: y_true has no positive case (recall would be 0/0)")
    precision, recall, thr = skm.precision_recall_curve(y, s)
    return PrCurve(precision=precision, recall=recall, thresholds=thr, prevalence=float(y.mean()))


def _weighted_ap(y: NDArray[np.bool_], s: NDArray[np.float64], w: NDArray[np.integer]) -> NDArray[np.float64]:
    """Average precision ``sum_k (R_k - R_{k-1}) P_k`` per weight row (sklearn's definition, no interpolation)."""
    tp, fp = _weighted_curves(y, s, w)
    tp, fp = tp[:, 1:], fp[:, 1:]
    p_tot = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), 1.0)
        recall = tp / p_tot
        d_recall = np.diff(np.hstack([np.zeros((w.shape[0], 1)), recall]), axis=1)
        ap = np.sum(d_recall * precision, axis=1)
    return np.where(p_tot[:, 0] > 0, ap, np.nan)


def average_precision(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    alpha: float = 0.05,
    n_boot: int = 2000,
    groups: ArrayLike | None = None,
    stratified: bool = True,
    seed: SeedLike = 0,
) -> Estimate:
    """Average precision ``AP = sum_k (R_k - R_{k-1}) P_k`` (as sklearn) with a percentile bootstrap interval.

    ``nan`` with a note when there is no positive case. Parameters as :func:`roc_auc`.
    """
    y, s = binary_inputs(y_true, y_score)
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot, allow_zero=True)
    m, n = int(y.sum()), int((~y).sum())
    base = {"n_positive": m, "n_negative": n, "prevalence": float(y.mean())}
    if m == 0:
        return Estimate(
            "average_precision", math.nan, math.nan, math.nan, "bootstrap-percentile", alpha, y.shape[0],
            "undefined: no positive case", base,
        )
    point = float(skm.average_precision_score(y, s))
    g = as_groups(groups, y.shape[0])
    w = bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), groups=g, stratified=stratified)
    reps = _weighted_ap(y, s, w)
    lo, hi, used = percentile_interval(reps, alpha)
    extra = {**base, "n_boot": n_boot, "n_boot_used": used, "stratified": stratified, "clustered": g is not None}
    return Estimate(
        "average_precision", point, lo, hi, "bootstrap-percentile", alpha, y.shape[0], bootstrap_note(used, n_boot), extra
    )
