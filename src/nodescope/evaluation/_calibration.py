"""Calibration of predicted probabilities: logistic recalibration, Brier, Hosmer-Lemeshow, ECE, lowess curve.

Definitions (``y`` 0/1, ``p`` predicted probability of ``y = 1``, ``L = logit(p)``):

* calibration-in-the-large (``calibration_in_the_large``; the "calibration intercept"): ``a`` in
  ``logit P(y=1) = a + offset(L)`` (slope fixed at 1);
  0 when the average risk is right (Steyerberg 2019; Van Calster et al. 2016).
* calibration slope (``calibration_slope``): ``b`` in ``logit P(y=1) = a' + b L``; 1 is ideal, ``< 1`` means too
  extreme predictions.
  ``a'`` is what rms ``val.prob`` prints as ``Intercept``.
  Both are maximum-likelihood logistic fits (statsmodels GLM, Wald intervals). Rows with ``p`` exactly 0 or 1
  (infinite logit) are left out of these two fits, as in ``val.prob``, and counted in the note.
* Brier score ``mean((p - y)^2)``; scaled Brier ``1 - Brier / (ybar (1 - ybar))`` (1 perfect, 0 no better than
  predicting the prevalence).
* Hosmer-Lemeshow ``C``-statistic with ``g`` groups at the quantiles of ``p`` (type 7), intervals closed on the
  right with the lowest included: ``sum_groups (O1 - E1)^2/E1 + (O0 - E0)^2/E0`` on ``g - 2`` df when the model
  was fitted on these data (``ResourceSelection::hoslem.test(y, p, g = 10)``), and on ``g`` df for predictions on
  data no parameter was estimated from (test/external validation; Hosmer, Lemeshow & Sturdivant, Applied Logistic
  Regression, 3rd ed. 2013, ch. 5: sec. 5.2.2 for the test, the external-validation section for ``g`` df).
  Tied quantiles are merged (fewer groups; noted). A group with zero expected events or non-events (every ``p``
  in it exactly 0 or 1) makes ``C`` undefined: ``nan`` with a note naming the groups.
* ECE: ``sum_b (n_b / n) |ybar_b - pbar_b|`` over ``M`` equal-width bins of [0, 1] (default 10; bins
  ``[k/M, (k+1)/M)``, the last closed).
* Emax, E90, Eavg (= ICI, Austin & Steyerberg 2019), E50: absolute differences between ``p`` and the lowess smooth of
  ``y`` on ``p`` at each ``p`` (``lowess(p, y, iter = 0)``, span 2/3, as ``val.prob``).
* Spiegelhalter's z: ``sum (y - p)(1 - 2p) / sqrt(sum (1 - 2p)^2 p (1 - p))``.

References
----------
Harrell FE. rms: ``val.prob``. Hosmer DW, Lemeshow S. Applied Logistic Regression. Wiley.
Steyerberg EW. Clinical Prediction Models, 2nd ed. Springer 2019. Austin PC, Steyerberg EW. Stat Med 2019;38:4051.
Van Calster B et al. J Clin Epidemiol 2016;74:167-176. Naeini MP et al. AAAI 2015 (ECE).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess
from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._bootstrap import (
    SeedLike,
    bootstrap_note,
    bootstrap_weights,
    make_rng,
    percentile_interval,
)
from nodescope.evaluation._proportions import proportion_ci
from nodescope.evaluation._results import ResultsMixin, deprecated_alias
from nodescope.evaluation._validation import (
    as_binary_labels,
    as_groups,
    as_probabilities,
    check_alpha,
    check_choice,
    check_n_boot,
)

__all__ = [
    "CalibrationMetrics",
    "HosmerLemeshow",
    "ReliabilityCurve",
    "calibration_metrics",
    "hosmer_lemeshow",
    "reliability_curve",
]


@dataclass(frozen=True)
class HosmerLemeshow(ResultsMixin):
    """Hosmer-Lemeshow goodness-of-fit test.

    Attributes
    ----------
    statistic, df, p_value : float
    n_groups : int
        Groups actually used (fewer than asked when quantiles tie).
    table : DataFrame
        One row per group: ``low``, ``high`` (interval ``(low, high]``), ``n``, ``observed`` and ``expected``
        events (``y1`` and ``yhat1`` of ``hoslem.test``), ``observed_nonevents`` and ``expected_nonevents``
        (``y0``, ``yhat0``).
    note : str
    df_rule : str
        ``"g-2"`` (model fitted on these data) or ``"g"`` (external/test predictions: no parameter estimated on
        these data).
    """

    statistic: float
    df: int
    p_value: float
    n_groups: int
    table: pd.DataFrame
    note: str = ""
    df_rule: str = "g-2"

    _summary_title = "Hosmer-Lemeshow goodness of fit: observed and expected events and non-events per group"

    def to_frame(self) -> pd.DataFrame:
        """The per-group table (see ``table``)."""
        return self.table.copy()

    def _summary_footer(self) -> str:
        return (f"X-squared = {self.statistic:.4f}, df = {self.df} ({self.df_rule}), p-value = {self.p_value:.4g}"
                + (f"\nnote: {self.note}" if self.note else ""))


@dataclass(frozen=True)
class CalibrationMetrics(ResultsMixin):
    """Calibration summary of predicted probabilities (see the module docstring for each definition).

    Attributes
    ----------
    calibration_in_the_large : Estimate
        ``a`` in ``logit P = a + offset(logit p)`` (slope fixed at 1), Wald interval. Not ``val.prob``'s
        ``Intercept``, which is ``recalibration_intercept``. (Was ``intercept``, kept as a deprecated alias.)
    calibration_slope : Estimate
        ``b`` in the recalibration fit ``logit P = a' + b logit p`` (``val.prob``'s ``Slope``), Wald interval.
        (Was ``slope``, kept as a deprecated alias.)
    recalibration_intercept : float
        ``a'`` of that fit (``val.prob``'s ``Intercept``); with its SE in :func:`val_prob`.
    brier, scaled_brier, ece : Estimate
        Percentile bootstrap intervals (``nan`` bounds with ``n_boot=0``).
    hosmer_lemeshow : HosmerLemeshow
    emax, e90, e50, eavg : float
        Lowess calibration errors (``val.prob``'s Emax, E90, Eavg; E50 the median).
    spiegelhalter_z, spiegelhalter_p : float
    observed_rate, mean_predicted : float
    n : int
    note : str

    See Also
    --------
    val_prob : all 18 ``rms::val.prob`` indices, with SEs.
    """

    _summary_title = "Calibration of predicted probabilities"

    calibration_in_the_large: Estimate
    calibration_slope: Estimate
    recalibration_intercept: float
    brier: Estimate
    scaled_brier: Estimate
    ece: Estimate
    hosmer_lemeshow: HosmerLemeshow
    emax: float
    e90: float
    e50: float
    eavg: float
    spiegelhalter_z: float
    spiegelhalter_p: float
    observed_rate: float
    mean_predicted: float
    n: int
    note: str = ""

    intercept = deprecated_alias("intercept", "calibration_in_the_large")
    slope = deprecated_alias("slope", "calibration_slope")

    def summary_frame(self) -> pd.DataFrame:
        """Same as :meth:`to_frame` (the spelling of :meth:`Estimate.summary_frame`)."""
        return self.to_frame()

    def to_frame(self) -> pd.DataFrame:
        """One row per statistic with its interval when it has one."""
        rows = [e.summary_frame() for e in (self.calibration_in_the_large, self.calibration_slope, self.brier,
                                            self.scaled_brier, self.ece)]
        extra = pd.DataFrame(
            [
                {"name": k, "estimate": v, "ci_low": math.nan, "ci_high": math.nan, "method": "", "alpha": math.nan,
                 "n": self.n, "note": ""}
                for k, v in (
                    ("recalibration_intercept", self.recalibration_intercept), ("emax", self.emax),
                    ("e90", self.e90), ("e50", self.e50), ("eavg", self.eavg),
                    ("spiegelhalter_z", self.spiegelhalter_z), ("spiegelhalter_p", self.spiegelhalter_p),
                    ("hosmer_lemeshow_chi2", self.hosmer_lemeshow.statistic),
                    ("hosmer_lemeshow_df", self.hosmer_lemeshow.df),
                    ("hosmer_lemeshow_p", self.hosmer_lemeshow.p_value),
                    ("observed_rate", self.observed_rate), ("mean_predicted", self.mean_predicted),
                )
            ]
        )
        return pd.concat([*rows, extra], ignore_index=True)


def _inputs(y_true: ArrayLike, y_prob: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    y = as_binary_labels(y_true)
    p = as_probabilities(y_prob, y.shape[0], "y_prob")
    if y.shape[0] == 0:
        raise StatisticsInputError("y_true is empty")
    return y, p


def hosmer_lemeshow(
    y_true: ArrayLike, y_prob: ArrayLike, *, n_groups: int = 10, fitted_on_sample: bool = True
) -> HosmerLemeshow:
    """Hosmer-Lemeshow test with ``n_groups`` groups at the type-7 quantiles of ``y_prob`` (as hoslem.test).

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 outcomes.
    y_prob : array-like, shape (N,)
        Predicted probabilities in [0, 1].
    n_groups : int, default 10
        Deciles of risk by default.
    fitted_on_sample : bool, default True
        ``True``: the model was fitted on these data, ``df = groups used - 2`` (as ``hoslem.test``). ``False``:
        the predictions come from a model fitted elsewhere (test or external validation), no parameter was
        estimated on these data and ``df = groups used`` (Hosmer, Lemeshow & Sturdivant, Applied Logistic
        Regression, 3rd ed., ch. 5). Recorded in ``df_rule``.
    """
    y, p = _inputs(y_true, y_prob)
    if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 3:
        raise StatisticsInputError(f"n_groups must be an int >= 3; got {n_groups!r}")
    if not isinstance(fitted_on_sample, (bool, np.bool_)):
        raise TypeError(f"fitted_on_sample must be a bool; got {type(fitted_on_sample).__name__}")
    df_rule = "g-2" if fitted_on_sample else "g"
    breaks = np.unique(np.quantile(p, np.linspace(0, 1, n_groups + 1)))
    note = ""
    if breaks.size - 1 < n_groups:
        note = f"tied quantiles: {breaks.size - 1} groups used instead of {n_groups}"
    if breaks.size < 2:
        return HosmerLemeshow(math.nan, 0, math.nan, 1, pd.DataFrame(), "undefined: all predictions are equal",
                              df_rule)
    idx = np.clip(np.searchsorted(breaks, p, side="left") - 1, 0, breaks.size - 2)
    k = breaks.size - 1
    n = np.bincount(idx, minlength=k).astype(float)
    o1 = np.bincount(idx, weights=y.astype(float), minlength=k)
    e1 = np.bincount(idx, weights=p, minlength=k)
    o0, e0 = n - o1, n - e1
    keep = n > 0
    df = int(keep.sum()) - (2 if fitted_on_sample else 0)
    table = pd.DataFrame(
        {"low": breaks[:-1], "high": breaks[1:], "n": n.astype(int), "observed": o1, "expected": e1,
         "observed_nonevents": o0, "expected_nonevents": e0}
    )[keep]
    # a group whose predictions are all exactly 0 (or all 1) has zero expected events (non-events): its term
    # (O - E)^2 / E is 0/0 or x/0, and the chi-square approximation does not hold; undefined rather than nan/inf
    empty_cell = keep & ((e1 <= 0) | (e0 <= 0))
    if empty_cell.any():
        which = [int(i) + 1 for i in np.flatnonzero(empty_cell[keep])]
        why = (f"undefined: group(s) {which} have zero expected events or non-events (every p exactly 0 or 1), "
               "so (O - E)^2/E is 0/0 or infinite")
        return HosmerLemeshow(math.nan, df, math.nan, int(keep.sum()), table.reset_index(drop=True),
                              "; ".join(x for x in (note, why) if x), df_rule)
    chi = np.sum((o1[keep] - e1[keep]) ** 2 / e1[keep]) + np.sum((o0[keep] - e0[keep]) ** 2 / e0[keep])
    pval = float(stats.chi2.sf(chi, df)) if df > 0 else math.nan
    return HosmerLemeshow(float(chi), df, pval, int(keep.sum()), table.reset_index(drop=True), note, df_rule)


def _logistic_fits(
    y: NDArray[np.bool_], p: NDArray[np.float64], alpha: float
) -> tuple[Estimate, Estimate, float, str]:
    """Calibration-in-the-large (slope fixed at 1), recalibration slope, recalibration intercept, note.

    The recalibration fit's intercept SE is in the slope's ``extra["intercept_se"]``.
    """
    finite = (p > 0) & (p < 1)
    note = ""
    if not finite.all():
        note = f"{int((~finite).sum())} row(s) with p = 0 or 1 left out of the logistic recalibration (infinite logit)"
    yy, lp = y[finite].astype(float), np.log(p[finite] / (1 - p[finite]))
    nan = math.nan
    if yy.size < 3 or yy.min() == yy.max():
        why = "; ".join(x for x in (note, "undefined: logistic recalibration needs both outcomes") if x)
        e1 = Estimate("calibration_in_the_large", nan, nan, nan, "wald-glm", alpha, int(yy.size), why, {})
        e2 = Estimate("calibration_slope", nan, nan, nan, "wald-glm", alpha, int(yy.size), why, {})
        return e1, e2, nan, why
    z = float(stats.norm.ppf(1 - alpha / 2))
    fit_off = sm.GLM(yy, np.ones((yy.size, 1)), family=sm.families.Binomial(), offset=lp).fit()
    a, se_a = float(fit_off.params[0]), float(fit_off.bse[0])
    e_int = Estimate(
        "calibration_in_the_large", a, a - z * se_a, a + z * se_a, "wald-glm", alpha, int(yy.size), note, {"se": se_a}
    )
    # With one covariate the maximum-likelihood slope does not exist when logit(p) (quasi-)separates the outcomes
    # (Albert & Anderson, Biometrika 1984;71:1-10): the fit drifts to a huge slope with a huger SE. Checked
    # directly, and statsmodels' PerfectSeparationWarning/Error is caught as a second line.
    if lp.min() == lp.max():
        why = "; ".join(x for x in (note, "undefined: all predictions are equal, so no recalibration slope") if x)
        e_slope = Estimate("calibration_slope", nan, nan, nan, "wald-glm", alpha, int(yy.size), why, {})
        return e_int, e_slope, nan, why
    separated = bool(lp[yy == 0].max() <= lp[yy == 1].min() or lp[yy == 1].max() <= lp[yy == 0].min())
    if not separated:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                fit = sm.GLM(yy, sm.add_constant(lp, has_constant="add"), family=sm.families.Binomial()).fit()
            except (PerfectSeparationWarning, PerfectSeparationError):
                separated = True
    if separated:
        why = "; ".join(x for x in (note, "undefined: logit(p) separates the outcomes perfectly, so the "
                                    "recalibration slope has no maximum-likelihood estimate") if x)
        e_slope = Estimate("calibration_slope", nan, nan, nan, "wald-glm", alpha, int(yy.size), why, {})
        return e_int, e_slope, nan, why
    a2, b, se_b = float(fit.params[0]), float(fit.params[1]), float(fit.bse[1])
    e_slope = Estimate(
        "calibration_slope", b, b - z * se_b, b + z * se_b, "wald-glm", alpha, int(yy.size), note,
        {"se": se_b, "intercept_se": float(fit.bse[0])},
    )
    return e_int, e_slope, a2, note


def _lowess_errors(y: NDArray[np.bool_], p: NDArray[np.float64]) -> NDArray[np.float64]:
    """``|p - smooth(p)|`` for each row, the smooth being R's ``lowess(p, y, iter = 0)`` interpolated at ``p``."""
    xs, fitted = _lowess_fit(y, p)
    return np.abs(p - np.interp(p, xs, fitted))


def _lowess_fit(y: NDArray[np.bool_], p: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lowess of ``y`` on ``p`` (span 2/3, no robustness iterations, ``delta = 0.01 range(p)`` as R) at unique ``p``."""
    rng = float(p.max() - p.min())
    with np.errstate(invalid="ignore", divide="ignore"):
        out = lowess(y.astype(float), p, frac=2 / 3, it=0, delta=0.01 * rng, return_sorted=True)
    xs, fitted = out[:, 0], out[:, 1]
    ux, inv = np.unique(xs, return_inverse=True)
    mean_fit = np.bincount(inv, weights=fitted) / np.bincount(inv)  # approx(ties = mean)
    return ux, mean_fit


def _ece_bins(p: NDArray[np.float64], n_bins: int) -> NDArray[np.intp]:
    return np.minimum((p * n_bins).astype(np.intp), n_bins - 1)


def calibration_metrics(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    alpha: float = 0.05,
    hl_groups: int = 10,
    hl_fitted_on_sample: bool = True,
    ece_bins: int = 10,
    n_boot: int = 2000,
    groups: ArrayLike | None = None,
    stratified: bool = False,
    seed: SeedLike = 0,
) -> CalibrationMetrics:
    """Calibration summary: intercept, slope, Brier (scaled), ECE, Hosmer-Lemeshow, Emax/E90/Eavg, Spiegelhalter.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 outcomes.
    y_prob : array-like, shape (N,)
        Predicted probabilities of outcome 1, in [0, 1].
    alpha : float, default 0.05
    hl_groups : int, default 10
        Hosmer-Lemeshow groups (deciles of risk).
    hl_fitted_on_sample : bool, default True
        Passed to :func:`hosmer_lemeshow` as ``fitted_on_sample``: ``False`` for test/external predictions
        (``g`` df instead of ``g - 2``).
    ece_bins : int, default 10
        Equal-width bins for the ECE.
    n_boot : int, default 2000
        Bootstrap replicates for the Brier, scaled Brier and ECE intervals (percentile).
    groups : array-like, shape (N,), optional
        Patient ids: whole patients are resampled (cluster bootstrap) when a patient has several rows.
    stratified : bool, default False
        Plain resampling by default. The Brier score and the ECE move with the prevalence (Brier = mean of
        ``(p - y)^2``, whose value differs most between the outcome classes), so resampling within outcome classes,
        which fixes the prevalence of every replicate, understates their uncertainty; the ordinary bootstrap (Efron &
        Tibshirani 1993) resamples patients. ``True`` resamples within outcome classes (or within clusters
        with/without a positive row).
    seed : int, Generator or None, default 0

    Returns
    -------
    CalibrationMetrics
        Checked against rms ``val.prob`` (Intercept, Slope, Brier, Emax, E90, Eavg, S:z, S:p).
    """
    y, p = _inputs(y_true, y_prob)
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot, allow_zero=True)
    if isinstance(ece_bins, bool) or not isinstance(ece_bins, (int, np.integer)) or ece_bins < 1:
        raise StatisticsInputError(f"ece_bins must be an int >= 1; got {ece_bins!r}")
    n = y.shape[0]
    yf = y.astype(float)
    e_int, e_slope, a2, note = _logistic_fits(y, p, alpha)
    hl = hosmer_lemeshow(y, p, n_groups=hl_groups, fitted_on_sample=hl_fitted_on_sample)
    g = as_groups(groups, n)
    w = bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), groups=g,
                          stratified=stratified).astype(np.float64)
    all_w = np.vstack([np.ones((1, n)), w])
    tot = all_w.sum(axis=1)
    brier_all = all_w @ (p - yf) ** 2 / tot
    ybar = all_w @ yf / tot
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled_all = 1 - brier_all / (ybar * (1 - ybar))
    bins = _ece_bins(p, int(ece_bins))
    onehot = np.zeros((n, int(ece_bins)))
    onehot[np.arange(n), bins] = 1.0
    nb = all_w @ onehot
    ob = all_w @ (onehot * yf[:, None])
    pb = all_w @ (onehot * p[:, None])
    ece_all = np.sum(np.abs(ob - pb), axis=1) / tot  # sum_b n_b/n |ybar_b - pbar_b| = sum_b |O_b - P_b| / n
    del nb

    def boot_est(name: str, vals: NDArray[np.float64], undefined: str = "") -> Estimate:
        lo, hi, used = percentile_interval(vals[1:], alpha)
        point = float(vals[0])
        if not math.isfinite(point):
            return Estimate(name, math.nan, math.nan, math.nan, "bootstrap-percentile", alpha, n, undefined, {})
        return Estimate(
            name, point, lo, hi, "bootstrap-percentile", alpha, n, bootstrap_note(used, n_boot),
            {"n_boot": n_boot, "n_boot_used": used, "stratified": stratified, "clustered": g is not None},
        )

    if p.min() == p.max():
        errs = np.abs(p - yf.mean())  # lowess of a constant p is the mean outcome (val.prob's rule)
    else:
        errs = _lowess_errors(y, p)
    one_minus = 1 - 2 * p
    den = math.sqrt(float(np.sum(one_minus**2 * p * (1 - p))))
    sz = float(np.sum((yf - p) * one_minus) / den) if den > 0 else math.nan
    return CalibrationMetrics(
        calibration_in_the_large=e_int,
        calibration_slope=e_slope,
        recalibration_intercept=a2,
        brier=boot_est("brier", brier_all),
        scaled_brier=boot_est("scaled_brier", scaled_all, "undefined: one outcome class only (Brier_max = 0)"),
        ece=boot_est("ece", ece_all),
        hosmer_lemeshow=hl,
        emax=float(errs.max()),
        e90=float(np.quantile(errs, 0.9)),
        e50=float(np.quantile(errs, 0.5)),
        eavg=float(errs.mean()),
        spiegelhalter_z=sz,
        spiegelhalter_p=float(2 * stats.norm.sf(abs(sz))) if math.isfinite(sz) else math.nan,
        observed_rate=float(yf.mean()),
        mean_predicted=float(p.mean()),
        n=n,
        note=note,
    )


@dataclass(frozen=True)
class ReliabilityCurve:
    """Data of a reliability (calibration) diagram.

    Attributes
    ----------
    bins : DataFrame
        One row per non-empty bin: ``low``, ``high``, ``n``, ``mean_predicted``, ``observed`` (event rate) and its
        Wilson ``ci_low``/``ci_high``.
    grid : ndarray, shape (G,)
        Probabilities where the smooth curve is evaluated (within the observed range of ``p``).
    smooth : ndarray, shape (G,)
        Lowess smooth of the outcome on ``p`` (span ``frac``, no robustness iterations).
    smooth_low, smooth_high : ndarray, shape (G,)
        Pointwise percentile bootstrap band of the smooth (``nan`` when ``n_boot = 0``).
    strategy : str
    alpha : float
    """

    bins: pd.DataFrame
    grid: NDArray[np.float64]
    smooth: NDArray[np.float64]
    smooth_low: NDArray[np.float64]
    smooth_high: NDArray[np.float64]
    strategy: str
    alpha: float


def reliability_curve(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
    frac: float = 2 / 3,
    n_boot: int = 200,
    alpha: float = 0.05,
    stratified: bool = False,
    seed: SeedLike = 0,
) -> ReliabilityCurve:
    """Binned and lowess-smoothed observed event rate against predicted probability, with a bootstrap band.

    Parameters
    ----------
    y_true, y_prob : array-like, shape (N,)
    n_bins : int, default 10
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins on [0, 1], or bins at quantiles of ``y_prob`` (equal counts up to ties).
    frac : float, default 2/3
        Lowess span (R's ``f``).
    n_boot : int, default 200
        Bootstrap replicates for the band of the smooth (a Python loop of lowess fits); 0 for none.
    alpha : float, default 0.05
    stratified : bool, default False
        Plain resampling (the observed event rate varies between replicates, as it would between samples);
        ``True`` resamples within outcome classes, which fixes the overall event rate and narrows the band.
    seed : int, Generator or None, default 0
    """
    y, p = _inputs(y_true, y_prob)
    alpha = check_alpha(alpha)
    strategy = check_choice("strategy", strategy, ("uniform", "quantile"))  # type: ignore[assignment]
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise StatisticsInputError(f"n_bins must be an int >= 1; got {n_bins!r}")
    if not 0 < frac <= 1:
        raise StatisticsInputError(f"frac must be in (0, 1]; got {frac}")
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
        idx = _ece_bins(p, n_bins)
    else:
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
        idx = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, max(edges.size - 2, 0))
    rows = []
    for b in range(max(edges.size - 1, 1)):
        sel = idx == b
        if not sel.any():
            continue
        pr = proportion_ci(int(y[sel].sum()), int(sel.sum()), method="wilson", alpha=alpha)
        rows.append({"low": edges[b], "high": edges[min(b + 1, edges.size - 1)], "n": int(sel.sum()),
                     "mean_predicted": float(p[sel].mean()), "observed": pr.estimate,
                     "ci_low": pr.ci_low, "ci_high": pr.ci_high})
    bins = pd.DataFrame(rows)
    grid = np.linspace(p.min(), p.max(), 101)

    def smooth_on_grid(yy: NDArray[np.bool_], pp: NDArray[np.float64]) -> NDArray[np.float64]:
        if pp.max() == pp.min():
            return np.full(grid.shape, yy.mean())
        with np.errstate(invalid="ignore", divide="ignore"):
            out = lowess(yy.astype(float), pp, frac=frac, it=0, delta=0.01 * float(pp.max() - pp.min()))
        ux, inv = np.unique(out[:, 0], return_inverse=True)
        fit = np.bincount(inv, weights=out[:, 1]) / np.bincount(inv)
        return np.interp(grid, ux, fit, left=np.nan, right=np.nan)

    smooth = smooth_on_grid(y, p)
    lo = hi = np.full(grid.shape, np.nan)
    if n_boot:
        n_boot = check_n_boot(n_boot)
        w = bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), stratified=stratified)
        reps = np.vstack([smooth_on_grid(y[np.repeat(np.arange(y.size), wb)], p[np.repeat(np.arange(y.size), wb)])
                          for wb in w])
        with np.errstate(all="ignore"):
            lo, hi = np.nanquantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
    return ReliabilityCurve(bins, grid, smooth, lo, hi, strategy, alpha)
