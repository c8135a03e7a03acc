"""Comparing two tests: DeLong for AUCs (paired and unpaired), McNemar for paired proportions, bootstrap for any metric.

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL. Biometrics 1988;44:837-845 (paired test).
Robin X et al. pROC. BMC Bioinformatics 2011;12:77 (``roc.test``: paired z test with the CI of the difference;
unpaired test ``D = (AUC1 - AUC2)/sqrt(V1 + V2)`` against Student's t with Welch-Satterthwaite df).
McNemar Q. Psychometrika 1947;12:153-157; Edwards AL. Psychometrika 1948 (continuity correction).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

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
from nodescope.evaluation._results import ResultsMixin, text_table
from nodescope.evaluation._roc import _weighted_ap
from nodescope.evaluation._threshold import table_metrics
from nodescope.evaluation._validation import (
    as_binary_labels,
    as_groups,
    as_scores,
    binary_inputs,
    check_alpha,
    check_choice,
    check_n_boot,
)

__all__ = [
    "AucComparison",
    "McNemarResult",
    "bootstrap_difference",
    "compare_auc",
    "compare_auc_unpaired",
    "mcnemar_paired",
    "mcnemar_test",
]


@dataclass(frozen=True)
class AucComparison:
    """Test of ``H0: AUC_a = AUC_b``.

    Attributes
    ----------
    auc_a, auc_b : float
    difference : Estimate
        ``AUC_a - AUC_b`` with its interval.
    statistic : float
        ``Z`` (paired) or ``D`` (unpaired, t-distributed with ``df``).
    p_value : float
        Two-sided.
    method : str
        ``"delong-paired"`` or ``"delong-unpaired"``.
    df : float or None
        Welch-Satterthwaite degrees of freedom (unpaired only).
    correlation : float or None
        DeLong correlation of the two AUC estimates (paired only).
    """

    auc_a: float
    auc_b: float
    difference: Estimate
    statistic: float
    p_value: float
    method: str
    df: float | None = None
    correlation: float | None = None


def compare_auc(y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, *, alpha: float = 0.05) -> AucComparison:
    """DeLong's test for two correlated AUCs (two scores on the same cases) and the CI of their difference.

    ``Z = (AUC_a - AUC_b) / sqrt(V_a + V_b - 2 C_ab)`` with the DeLong covariance; CI ``d +/- z_{1-alpha/2} sd``
    (not clipped). As pROC ``roc.test(roc_a, roc_b, method = "delong", paired = TRUE)``; when ``d = 0`` and the
    standard deviation is 0, ``Z = 0`` and ``p = 1`` (pROC's rule).

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 labels.
    score_a, score_b : array-like, shape (N,)
        Two scores for the same cases (same row order).
    alpha : float, default 0.05

    Raises
    ------
    ValueError
        One class absent, or fewer than 2 cases in a class (the covariance is undefined).
    """
    y, sa = binary_inputs(y_true, score_a)
    sb = as_scores(score_b, y.shape[0], "score_b")
    alpha = check_alpha(alpha)
    comp = delong_components(y, np.column_stack([sa, sb]))
    if comp.n_positive < 2 or comp.n_negative < 2:
        raise StatisticsInputError(
            f"DeLong's test needs >= 2 cases per class; got {comp.n_positive} positive(s), {comp.n_negative} negative(s)"
        )
    cov = comp.covariance
    d = float(comp.auc[0] - comp.auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    sd = math.sqrt(max(var, 0.0))
    if sd == 0.0:
        z = 0.0 if d == 0.0 else math.copysign(math.inf, d)
    else:
        z = d / sd
    p = float(2 * stats.norm.sf(abs(z)))
    crit = float(stats.norm.ppf(1 - alpha / 2))
    denom = math.sqrt(cov[0, 0] * cov[1, 1])
    corr = float(cov[0, 1] / denom) if denom > 0 else None
    diff = Estimate(
        "auc_difference", d, d - crit * sd, d + crit * sd, "delong-paired", alpha, int(y.shape[0]), "",
        {"se": sd, "covariance": cov.tolist()},
    )
    return AucComparison(float(comp.auc[0]), float(comp.auc[1]), diff, z, p, "delong-paired", None, corr)


def compare_auc_unpaired(
    y_true_a: ArrayLike,
    score_a: ArrayLike,
    y_true_b: ArrayLike,
    score_b: ArrayLike,
    *,
    alpha: float = 0.05,
) -> AucComparison:
    """Test for two AUCs from independent samples (different patients), as pROC ``roc.test(paired = FALSE)``.

    ``D = (AUC_a - AUC_b) / sqrt(V_a + V_b)`` with DeLong variances, referred to Student's t with
    ``df = (V_a + V_b)^2 / (V_a^2/(N_a - 1) + V_b^2/(N_b - 1))``. The difference interval
    ``d +/- t_{1-alpha/2, df} sqrt(V_a + V_b)`` is nodescope's (pROC prints no interval for this test).
    """
    ya, sa = binary_inputs(y_true_a, score_a)
    yb, sb = binary_inputs(y_true_b, score_b)
    alpha = check_alpha(alpha)
    ca, cb = delong_components(ya, sa), delong_components(yb, sb)
    for lab, c in (("a", ca), ("b", cb)):
        if c.n_positive < 2 or c.n_negative < 2:
            raise StatisticsInputError(f"sample {lab}: DeLong variance needs >= 2 cases per class")
    va, vb = float(ca.covariance[0, 0]), float(cb.covariance[0, 0])
    d = float(ca.auc[0] - cb.auc[0])
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (ya.shape[0] - 1) + vb**2 / (yb.shape[0] - 1)) if se > 0 else math.inf
    stat = d / se if se > 0 else (0.0 if d == 0 else math.copysign(math.inf, d))
    p = float(2 * stats.t.sf(abs(stat), df))
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    diff = Estimate(
        "auc_difference", d, d - crit * se, d + crit * se, "delong-unpaired", alpha,
        int(ya.shape[0] + yb.shape[0]), "", {"se": se, "df": df},
    )
    return AucComparison(float(ca.auc[0]), float(cb.auc[0]), diff, stat, p, "delong-unpaired", df, None)


@dataclass(frozen=True)
class McNemarResult(ResultsMixin):
    """McNemar test of two paired binary outcomes on the same cases (e.g. correct calls of two tests).

    Attributes
    ----------
    on : str
        What the outcome is: ``"sensitivity"`` (correct calls among reference positives), ``"specificity"``
        (among reference negatives), ``"accuracy"`` (among all cases) or ``"outcome"`` (any paired 0/1 outcome
        given to :func:`mcnemar_paired`).
    proportion_a, proportion_b : float
        Proportion of cases with outcome 1 under ``a`` and ``b``.
    difference : Estimate
        ``a - b`` with the Wald interval for paired proportions, ``se = sqrt(b + c - (b - c)^2/n) / n``.
    table : tuple of int
        ``(both 1, only a 1, only b 1, both 0)`` among the ``n`` cases (for calls: both correct, only a correct,
        only b correct, both wrong). :meth:`to_frame` labels it.
    statistic : float
        Exact: ``min(b, c)``; chi-square: ``(|b - c| - 1)^2/(b + c)`` corrected or ``(b - c)^2/(b + c)``.
    p_value : float
    method : str
        ``"exact"`` (binomial), ``"corrected"`` (chi-square with continuity correction, R ``mcnemar.test``'s
        default) or ``"uncorrected"``.
    labels : tuple of str
        Names of ``a`` and ``b`` (rows and columns of the table).
    """

    on: str
    proportion_a: float
    proportion_b: float
    difference: Estimate
    table: tuple[int, int, int, int]
    statistic: float
    p_value: float
    method: str
    labels: tuple[str, str] = ("a", "b")

    def to_frame(self) -> pd.DataFrame:
        """The labelled 2x2 table with margins: rows ``a``, columns ``b`` (as R ``table(a, b)``)."""
        n11, n10, n01, n00 = self.table
        a, b = self.labels
        one, zero = _OUTCOME_WORDS.get(self.on, ("1", "0"))
        return pd.DataFrame(
            {f"{b} {one}": [n11, n01, n11 + n01], f"{b} {zero}": [n10, n00, n10 + n00],
             "total": [n11 + n10, n01 + n00, sum(self.table)]},
            index=[f"{a} {one}", f"{a} {zero}", "total"],
        )

    def summary(self, digits: int = 4) -> str:
        """R ``mcnemar.test``-like text: the table, the statistic and p-value, the paired difference."""
        d = self.difference
        lines = [
            f"McNemar's test ({self.method}) on {self.on}: statistic = {self.statistic:.{digits}g}, "
            f"p-value = {self.p_value:.{digits}g}",
            f"{self.labels[0]} - {self.labels[1]}: {d.estimate:.{digits}f} "
            f"({100 * (1 - d.alpha):g}% CI {d.ci_low:.{digits}f} to {d.ci_high:.{digits}f}, {d.method})",
        ]
        if d.note:
            lines.append(f"note: {d.note}")
        return text_table(self.to_frame(), f"Paired 2x2 table ({self.on})") + "\n" + "\n".join(lines)


_OUTCOME_WORDS = {"sensitivity": ("correct", "wrong"), "specificity": ("correct", "wrong"),
                  "accuracy": ("correct", "wrong")}
_MCNEMAR_METHODS = ("exact", "corrected", "uncorrected")


def mcnemar_test(
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    *,
    on: Literal["sensitivity", "specificity", "accuracy"] = "sensitivity",
    method: Literal["exact", "corrected", "uncorrected"] = "exact",
    alpha: float = 0.05,
    labels: tuple[str, str] = ("a", "b"),
) -> McNemarResult:
    """McNemar's test comparing the sensitivities, specificities or accuracies of two binary tests on the same cases.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 reference labels.
    pred_a, pred_b : array-like, shape (N,)
        0/1 calls of the two tests (e.g. ``score >= threshold``, or a reader's call).
    on : {"sensitivity", "specificity", "accuracy"}
        Correct calls among reference positives, among reference negatives, or among all cases.
    method : {"exact", "corrected", "uncorrected"}, default "exact"
        Exact binomial test on the discordant pairs, or the chi-square test with/without continuity correction
        (:func:`statsmodels.stats.contingency_tables.mcnemar`).
    alpha : float, default 0.05
    labels : tuple of str, default ("a", "b")
        Names of the two tests in the table.

    Notes
    -----
    With no discordant pair the test is undefined: ``p = 1`` and ``statistic = 0`` for the exact test and
    ``nan`` for the chi-square tests (0/0); the note of ``difference`` says so. Any other paired 0/1 outcome:
    :func:`mcnemar_paired`.
    """
    y = as_binary_labels(y_true)
    a = as_binary_labels(pred_a, "pred_a")
    b = as_binary_labels(pred_b, "pred_b")
    if not (a.shape == b.shape == y.shape):
        raise StatisticsInputError(f"y_true, pred_a and pred_b must have the same length; got {y.shape}, {a.shape}, "
                                   f"{b.shape}")
    on = check_choice("on", on, ("sensitivity", "specificity", "accuracy"))  # type: ignore[assignment]
    if on == "accuracy":
        keep = np.ones_like(y)
        ca, cb = a == y, b == y
    else:
        keep = y if on == "sensitivity" else ~y
        target = on == "sensitivity"
        ca, cb = a[keep] == target, b[keep] == target
    if not keep.any():
        raise StatisticsInputError(f"McNemar on {on} needs reference {'positive' if on == 'sensitivity' else 'negative'}"
                                   " cases; got none")
    return _mcnemar(ca, cb, on=on, method=method, alpha=alpha, labels=labels)


def mcnemar_paired(
    outcome_a: ArrayLike,
    outcome_b: ArrayLike,
    *,
    method: Literal["exact", "corrected", "uncorrected"] = "exact",
    alpha: float = 0.05,
    labels: tuple[str, str] = ("a", "b"),
) -> McNemarResult:
    """McNemar's test for any paired binary outcome (two 0/1 vectors on the same cases), as R ``mcnemar.test``.

    Parameters
    ----------
    outcome_a, outcome_b : array-like, shape (N,)
        0/1 outcome of each case under ``a`` and ``b`` (correct call, positive call, complication, ...).
    method : {"exact", "corrected", "uncorrected"}, default "exact"
        ``"corrected"`` is R ``mcnemar.test(table(a, b))``'s default.
    alpha : float, default 0.05
    labels : tuple of str, default ("a", "b")

    Returns
    -------
    McNemarResult
        ``on = "outcome"``; the difference is ``mean(a) - mean(b)``.
    """
    a = as_binary_labels(outcome_a, "outcome_a")
    b = as_binary_labels(outcome_b, "outcome_b")
    if a.shape != b.shape:
        raise StatisticsInputError(f"outcome_a and outcome_b must have the same length; got {a.shape}, {b.shape}")
    if a.size == 0:
        raise StatisticsInputError("outcome_a is empty")
    return _mcnemar(a, b, on="outcome", method=method, alpha=alpha, labels=labels)


def _mcnemar(ca: NDArray[np.bool_], cb: NDArray[np.bool_], *, on: str, method: str, alpha: float,
             labels: tuple[str, str]) -> McNemarResult:
    method = check_choice("method", method, _MCNEMAR_METHODS)
    alpha = check_alpha(alpha)
    if len(labels) != 2 or not all(isinstance(x, str) for x in labels):
        raise StatisticsInputError(f"labels must be two strings; got {labels!r}")
    n = int(ca.size)
    n11, n10, n01, n00 = (int(np.sum(ca & cb)), int(np.sum(ca & ~cb)), int(np.sum(~ca & cb)), int(np.sum(~ca & ~cb)))
    note = ""
    if n10 + n01 == 0:
        note = "no discordant pair: the two tests agree on every case"
        stat, p = (0.0, 1.0) if method == "exact" else (math.nan, math.nan)
    else:
        res = mcnemar([[n11, n10], [n01, n00]], exact=method == "exact", correction=method == "corrected")
        stat, p = float(res.statistic), float(res.pvalue)
    d = (n10 - n01) / n
    se = math.sqrt(max(n10 + n01 - (n10 - n01) ** 2 / n, 0.0)) / n
    z = float(stats.norm.ppf(1 - alpha / 2))
    diff = Estimate(
        f"{on}_difference", d, max(d - z * se, -1.0), min(d + z * se, 1.0), "wald-paired", alpha, n, note,
        {"only_a_correct": n10, "only_b_correct": n01},
    )
    return McNemarResult(on, float(ca.mean()), float(cb.mean()), diff, (n11, n10, n01, n00), stat, p, method,
                         (str(labels[0]), str(labels[1])))


DIFFERENCE_METRICS: tuple[str, ...] = (
    "auc", "average_precision", "sensitivity", "specificity", "ppv", "npv", "accuracy",
    "balanced_accuracy", "f1", "mcc",
)
_THRESHOLD_METRICS = DIFFERENCE_METRICS[2:]


def _threshold_metric(
    name: str, y: NDArray[np.bool_], pred: NDArray[np.bool_], w: NDArray[np.float64]
) -> NDArray[np.float64]:
    tp, fp = w @ (pred & y), w @ (pred & ~y)
    fn, tn = w @ (~pred & y), w @ (~pred & ~y)
    with np.errstate(invalid="ignore", divide="ignore"):
        simple = {
            "sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp), "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn), "accuracy": (tp + tn) / (tp + fp + fn + tn),
        }
    if name in simple:
        return simple[name]
    return table_metrics(tp, fp, fn, tn)[name]


def bootstrap_difference(
    y_true: ArrayLike,
    score_a: ArrayLike,
    score_b: ArrayLike,
    *,
    metric: str | Callable[[NDArray[np.int_], NDArray[np.float64]], float] = "auc",
    threshold_a: float | None = None,
    threshold_b: float | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    groups: ArrayLike | None = None,
    stratified: bool = True,
    seed: SeedLike = 0,
) -> Estimate:
    """Paired (or cluster) bootstrap of ``metric(a) - metric(b)`` on the same cases.

    Both scores are resampled with the same replicate weights, so their correlation is kept.

    Parameters
    ----------
    y_true, score_a, score_b : array-like, shape (N,)
    metric : str or callable, default "auc"
        One of ``"auc"``, ``"average_precision"`` (threshold-free), ``"sensitivity"``, ``"specificity"``,
        ``"ppv"``, ``"npv"``, ``"accuracy"``, ``"balanced_accuracy"``, ``"f1"``, ``"mcc"`` (need ``threshold_a``
        and ``threshold_b``; ``score >= threshold`` is positive), or ``f(y_true, y_score) -> float`` (a Python loop).
    threshold_a, threshold_b : float, optional
    alpha, n_boot, groups, stratified, seed
        As :func:`nodescope.evaluation.roc_auc`.

    Returns
    -------
    Estimate
        ``name = "<metric>_difference"``, percentile interval; ``extra["p_value"]`` is the two-sided normal-theory
        p value ``2 Phi(-|d| / sd_boot)`` (as pROC's bootstrap ``roc.test``) and ``extra["sd"]`` the bootstrap SD.
    """
    y, sa = binary_inputs(y_true, score_a)
    sb = as_scores(score_b, y.shape[0], "score_b")
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot)
    g = as_groups(groups, y.shape[0])
    w = bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), groups=g, stratified=stratified)
    ones = np.ones((1, y.shape[0]), dtype=np.int32)
    if callable(metric):
        name = getattr(metric, "__name__", "metric")
        yi = y.astype(int)

        def values(s: NDArray[np.float64], thr: float | None) -> NDArray[np.float64]:
            out = np.empty(n_boot + 1)
            out[0] = metric(yi, s)
            for i in range(n_boot):
                idx = np.repeat(np.arange(y.shape[0]), w[i])
                try:
                    out[i + 1] = metric(yi[idx], s[idx])
                except ValueError:
                    out[i + 1] = math.nan
            return out
    else:
        name = check_choice("metric", metric, DIFFERENCE_METRICS)
        all_w = np.vstack([ones, w])
        if name in _THRESHOLD_METRICS:
            if threshold_a is None or threshold_b is None:
                raise StatisticsInputError(f"metric={name!r} needs threshold_a= and threshold_b= "
                                           "(score >= threshold is positive)")

            def values(s: NDArray[np.float64], thr: float | None) -> NDArray[np.float64]:
                return _threshold_metric(name, y, s >= float(thr), all_w.astype(np.float64))  # type: ignore[arg-type]
        elif name == "auc":

            def values(s: NDArray[np.float64], thr: float | None) -> NDArray[np.float64]:
                return weighted_auc(y, s, all_w)
        else:

            def values(s: NDArray[np.float64], thr: float | None) -> NDArray[np.float64]:
                return _weighted_ap(y, s, all_w)

    va, vb = values(sa, threshold_a), values(sb, threshold_b)
    d_all = va - vb
    point = float(d_all[0])
    reps = d_all[1:]
    lo, hi, used = percentile_interval(reps, alpha)
    sd = float(np.nanstd(reps, ddof=1)) if used > 1 else math.nan
    if sd > 0:
        p = float(2 * stats.norm.sf(abs(point) / sd))
    else:
        p = 1.0 if point == 0 else 0.0
    note = bootstrap_note(used, n_boot)
    if not math.isfinite(point):
        note = "undefined on the full data (see the metric's own policy)"
    return Estimate(
        f"{name}_difference", point, lo, hi, "bootstrap-percentile", alpha, int(y.shape[0]), note,
        {"estimate_a": float(va[0]), "estimate_b": float(vb[0]), "sd": sd, "p_value": p, "n_boot": n_boot,
         "n_boot_used": used, "stratified": stratified, "clustered": g is not None},
    )
