"""Univariate random-effects pooling (DerSimonian-Laird, REML) of one accuracy measure at a time.

Validated against ``metafor::rma(yi, vi, method="DL"/"REML")`` (tests/meta/reference/meta_reference.R, block 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from nodescope._estimate import Estimate
from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.meta._counts import (
    UNIVARIATE_MEASURES,
    Correction,
    Counts,
    Measure,
    as_counts,
    measure_data,
    study_measures,
)
from nodescope.meta._results_api import deprecated_alias
from nodescope.meta._univariate_api import (
    heterogeneity_ci,
    tau2_estimate,
    univariate_fit_statistics,
    univariate_summary,
    univariate_to_dict,
)

__all__ = ["UNIVARIATE_MEASURES", "UnivariateResult", "study_measures", "univariate_pool"]

logger = logging.getLogger(__name__)

TauMethod = Literal["DL", "REML"]
PredictionMethod = Literal["z", "t"]
_BACK = {
    "log_dor": ("dor", np.exp),
    "logit_sens": ("sensitivity", expit),
    "logit_spec": ("specificity", expit),
    "log_lr_pos": ("lr_positive", np.exp),
    "log_lr_neg": ("lr_negative", np.exp),
}


@dataclass(frozen=True)
class UnivariateResult:
    """Random-effects pooling of one measure.

    Attributes
    ----------
    measure : str
        Model-scale measure (``"log_dor"``, ``"logit_sens"``, ...).
    pooled : Estimate
        Back-transformed pooled value (``exp`` or ``expit``) with its ``1 - alpha`` Wald CI.
    mu, se : float
        Pooled value and its standard error on the model scale.
    tau2 : float
        Between-cohort variance (model scale). ``tau = sqrt(tau2)``.
    q, q_df, q_p_value : float, int, float
        Cochran's ``Q = sum w_i (y_i - mu_FE)^2`` with ``w_i = 1/v_i``, its ``k - 1`` degrees of freedom and
        chi-square p-value.
    i2_percent : float
        ``I^2`` in percent, ``100 tau2 / (tau2 + s2)`` with the typical within-cohort variance
        ``s2 = (k-1) sum w / ((sum w)^2 - sum w^2)`` (Higgins & Thompson 2002; as metafor).
    h2 : float
        ``(tau2 + s2) / s2``.
    prediction : Estimate
        Back-transformed ``1 - alpha`` prediction interval for a new cohort's true value,
        ``mu +- q sqrt(tau2 + se^2)`` with ``q`` the normal quantile (``prediction="z"``, as
        ``metafor::predict.rma`` with ``test="z"``) or the ``t_(k-2)`` quantile (``prediction="t"``); its
        ``method`` says which (``"prediction-interval-z"`` / ``"prediction-interval-t"``).
    method : str
        ``"DL"`` or ``"REML"``.
    correction, correction_rule : float, str
        The continuity correction and the rule choosing which cohorts received it.
    corrected : tuple of str
        Labels of the cohorts that received it.
    k : int
        Number of cohorts.
    alpha : float
        ``1 - alpha`` is the level of the intervals.
    yi, vi : ndarray, shape (k,)
        Per-cohort estimates and variances on the model scale.
    labels : tuple of str
        Cohort labels.

    Notes
    -----
    ``q_pvalue`` and ``i2`` (the names before statistics API 1.0) still read, with a :class:`DeprecationWarning`.
    :meth:`heterogeneity_ci` gives Q-profile intervals of ``tau2`` and ``I2`` (``metafor::confint``),
    :meth:`fit_statistics` the log-likelihood, AIC and BIC (``metafor::logLik``, ``AIC``, ``BIC``).
    """

    measure: str
    pooled: Estimate
    mu: float
    se: float
    tau2: float
    q: float
    q_df: int
    q_p_value: float
    i2_percent: float
    h2: float
    prediction: Estimate
    method: str
    k: int
    correction: float
    correction_rule: str
    corrected: tuple[str, ...]
    alpha: float
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    labels: tuple[str, ...] = field(repr=False, default=())

    q_pvalue = deprecated_alias("q_p_value", "q_pvalue", "UnivariateResult")
    i2 = deprecated_alias("i2_percent", "i2", "UnivariateResult")

    @property
    def tau(self) -> float:
        """Between-cohort standard deviation ``sqrt(tau2)``."""
        return float(np.sqrt(self.tau2))

    def heterogeneity_ci(self, alpha: float | None = None) -> pd.DataFrame:
        """Q-profile ``1 - alpha`` intervals (Viechtbauer 2007) of ``tau2``, ``tau``, ``I2`` and ``H2``.

        The same intervals as ``metafor::confint(rma(...))`` (its default method). Returns a frame indexed
        ``tau2, tau, i2_percent, h2`` with columns ``estimate, ci_low, ci_high, method``.
        """
        return heterogeneity_ci(self, alpha)

    def tau2_ci(self, alpha: float | None = None) -> Estimate:
        """``tau2`` with its Q-profile interval, as an :class:`~nodescope.Estimate`."""
        return tau2_estimate(self, alpha)

    def fit_statistics(self) -> dict[str, float]:
        """``loglik, deviance, aic, bic, n_par, n_obs`` with metafor's conventions (REML log-likelihood for a
        REML fit, ML otherwise; ``n_par = 2``; ``n_obs = k``, ``k - 1`` for REML)."""
        return univariate_fit_statistics(self)

    def summary(self, digits: int = 4) -> str:
        """R-like text report (as ``print(rma(...))`` and ``confint``); ``print()`` it."""
        return univariate_summary(self, digits)

    def to_frame(self) -> pd.DataFrame:
        """Same as :meth:`summary_frame`."""
        return self.summary_frame()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: estimates, Wald row, ``tau2`` and ``I2`` with Q-profile intervals, Q test, fit
        statistics, correction, per-cohort ``yi`` and ``vi``."""
        return univariate_to_dict(self)

    def summary_frame(self) -> pd.DataFrame:
        """One row: pooled value, CI, prediction interval, tau2, Q, I2 (back-transformed scale)."""
        return pd.DataFrame(
            [
                {
                    "measure": self.pooled.name,
                    "estimate": self.pooled.estimate,
                    "ci_low": self.pooled.ci_low,
                    "ci_high": self.pooled.ci_high,
                    "pi_low": self.prediction.ci_low,
                    "pi_high": self.prediction.ci_high,
                    "tau2": self.tau2,
                    "Q": self.q,
                    "Q_df": self.q_df,
                    "Q_p": self.q_p_value,
                    "I2_percent": self.i2_percent,
                    "k": self.k,
                    "method": self.method,
                }
            ]
        )


def _tau2_dl(y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / v
    mu = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - mu) ** 2)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    return float(max(0.0, (q - (y.size - 1)) / c))


def _tau2_reml(y: np.ndarray, v: np.ndarray, *, tol: float = 1e-12, max_iter: int = 1000) -> tuple[float, bool]:
    """REML by Fisher scoring (as metafor), started at the DL value, truncated at zero."""
    tau2 = _tau2_dl(y, v)
    for _ in range(max_iter):
        w = 1 / (v + tau2)
        sw = w.sum()
        mu = np.sum(w * y) / sw
        r = y - mu
        # P = W - w w^T / sw ; y'PPy and tr(PP) in closed form
        py = w * r
        ypppy = np.sum(py**2)
        tr_p = sw - np.sum(w**2) / sw
        tr_pp = np.sum(w**2) - 2 * np.sum(w**3) / sw + (np.sum(w**2) / sw) ** 2
        new = max(0.0, tau2 + (ypppy - tr_p) / tr_pp)
        if abs(new - tau2) < tol * max(1.0, tau2):
            return float(new), True
        tau2 = new
    return float(tau2), False


def univariate_pool(
    data: pd.DataFrame | Counts,
    measure: Measure = "log_dor",
    *,
    method: TauMethod = "REML",
    correction: float = 0.5,
    correction_rule: Correction = "studies-with-zero",
    alpha: float = 0.05,
    prediction: PredictionMethod = "z",
) -> UnivariateResult:
    """Pool one accuracy measure across cohorts with a random-effects model.

    Model: ``y_i ~ N(mu, v_i + tau2)``; ``mu`` by inverse-variance weighting with ``w_i = 1/(v_i + tau2)``,
    ``SE(mu) = (sum w_i)^(-1/2)``, Wald CI ``mu +- z_(1-alpha/2) SE``.

    Parameters
    ----------
    data : DataFrame
        Columns ``TP, FP, FN, TN`` (non-negative integers), optionally ``study``.
    measure : {"log_dor", "logit_sens", "logit_spec", "log_lr_pos", "log_lr_neg"}
        The model-scale measure (see :func:`study_measures`).
    method : {"DL", "REML"}
        DerSimonian-Laird moment estimator or restricted maximum likelihood (Fisher scoring) for ``tau2``.
    correction : float, default 0.5
        Added to all four cells of the cohorts chosen by ``correction_rule``.
    correction_rule : {"studies-with-zero", "measure-cells-with-zero", "all-if-any-zero", "all", "none"}
        Which cohorts get the correction; default ``"studies-with-zero"``: 0.5 added to all four cells of each
        cohort with a zero in **any** of its four cells (mada's ``correction.control="single"``). For log DOR and
        the log likelihood ratios, which use all four cells, this is metafor's ``escalc(measure="OR"/"RR",
        add=1/2, to="only0")``; for logit sensitivity and logit specificity it is **not** metafor's
        ``escalc(measure="PLO", add=1/2, to="only0")``, which looks only at the measure's own two cells (``TP, FN``
        or ``TN, FP``): that is ``"measure-cells-with-zero"``. The two differ when a cohort has a zero in one arm
        only (e.g. ``FP = 0``: the default also corrects that cohort's logit sensitivity). The rule and the
        cohorts corrected are recorded in the result (``correction_rule``, ``corrected``).
    alpha : float, default 0.05
    prediction : {"z", "t"}, default "z"
        Quantile of the prediction interval ``mu +- q sqrt(tau2 + SE^2)``: ``"z"`` the normal quantile
        (metafor's ``predict.rma`` default, kept as the default so results match metafor); ``"t"`` the
        ``t`` quantile with ``k - 2`` degrees of freedom (Higgins, Thompson & Spiegelhalter 2009; Riley et al.
        2011; metafor's ``predict(..., pi.type = "riley")``), which widens the interval for few cohorts to allow
        for the uncertainty in ``tau2``. With ``"t"`` and ``k < 3`` the interval is undefined (``nan``, with a
        note).

    Returns
    -------
    UnivariateResult

    References
    ----------
    DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials 1986;7:177-188.
    Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw 2010;36(3).
    Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med 2002;21:1539-1558.
    Higgins JPT, Thompson SG, Spiegelhalter DJ. A re-evaluation of random-effects meta-analysis. J R Stat Soc A
    2009;172:137-159.
    Riley RD, Higgins JPT, Deeks JJ. Interpretation of random effects meta-analyses. BMJ 2011;342:d549.
    """
    if measure not in UNIVARIATE_MEASURES:
        raise ConfigError(f"measure={measure!r} is not valid; choose one of {UNIVARIATE_MEASURES}")
    if method not in ("DL", "REML"):
        raise ConfigError(f"method={method!r} is not valid; choose 'DL' or 'REML'")
    if prediction not in ("z", "t"):
        raise ConfigError(f"prediction={prediction!r} is not valid; choose 'z' (normal) or 't' (t with k-2 df)")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha!r}")
    counts = as_counts(data)
    y2, v2, mask = measure_data(counts, (measure,), correction, correction_rule)
    y, v = y2[:, 0], v2[:, 0]
    k = y.size
    if k < 2:
        raise StatisticsInputError(f"random-effects pooling needs at least 2 cohorts; got {k}")
    converged = True
    tau2 = _tau2_dl(y, v) if method == "DL" else None
    if tau2 is None:
        tau2, converged = _tau2_reml(y, v)
    if not converged:
        logger.warning("REML for %s did not converge in 1000 Fisher-scoring steps", measure)
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se = float(1 / np.sqrt(np.sum(w)))
    z = stats.norm.ppf(1 - alpha / 2)
    w0 = 1 / v
    mu0 = np.sum(w0 * y) / np.sum(w0)
    q = float(np.sum(w0 * (y - mu0) ** 2))
    s2 = (k - 1) * np.sum(w0) / (np.sum(w0) ** 2 - np.sum(w0**2))
    i2 = float(100 * tau2 / (tau2 + s2))
    h2 = float((tau2 + s2) / s2)
    name, back = _BACK[measure]
    note = f"{int(mask.sum())} cohort(s) corrected by +{correction}" if mask.any() else ""
    extra = {"mu": mu, "se": se, "scale": measure, "tau2": tau2}
    pooled = Estimate(name, float(back(mu)), float(back(mu - z * se)), float(back(mu + z * se)),
                      f"random-effects-{method}-wald", alpha, k, note, extra)
    sp = np.sqrt(tau2 + se**2)
    pred_note = "interval for a new cohort's true value"
    pred_extra: dict[str, float | int] = {"sd": float(sp)}
    if prediction == "z":
        q_pi = z
    elif k >= 3:
        q_pi = stats.t.ppf(1 - alpha / 2, k - 2)
        pred_extra["df"] = k - 2
    else:
        q_pi = float("nan")
        pred_note = "undefined: the t-based prediction interval needs k >= 3 cohorts (k - 2 degrees of freedom)"
    pred = Estimate(f"{name}_prediction", float(back(mu)), float(back(mu - q_pi * sp)), float(back(mu + q_pi * sp)),
                    f"prediction-interval-{prediction}", alpha, k, pred_note, pred_extra)
    return UnivariateResult(
        measure=measure, pooled=pooled, mu=mu, se=se, tau2=float(tau2), q=q, q_df=k - 1,
        q_p_value=float(stats.chi2.sf(q, k - 1)), i2_percent=i2, h2=h2, prediction=pred, method=method, k=k,
        correction=float(correction), correction_rule=correction_rule,
        corrected=tuple(counts.labels[i] for i in np.flatnonzero(mask)), alpha=alpha, yi=y, vi=v,
        labels=counts.labels,
    )
