"""Tables and text of a :class:`~nodescope.meta.UnivariateResult`: Q-profile intervals of ``tau2`` and ``I2``,
log-likelihood, AIC and BIC, Wald table, ``summary()`` and ``to_dict()`` (see :mod:`nodescope.meta._profile`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from nodescope._estimate import Estimate
from nodescope.errors import ConfigError
from nodescope.meta._profile import information_criteria, q_profile_tau2, univariate_loglik
from nodescope.meta._results_api import json_safe, text_block

if TYPE_CHECKING:
    from nodescope.meta._univariate import UnivariateResult

__all__ = ["heterogeneity_ci", "univariate_fit_statistics", "univariate_summary", "univariate_to_dict"]


def _typical_within_var(vi: np.ndarray) -> float:
    w = 1 / vi
    return float((vi.size - 1) * w.sum() / (w.sum() ** 2 - np.sum(w**2)))


def heterogeneity_ci(res: UnivariateResult, alpha: float | None = None) -> pd.DataFrame:
    """Q-profile intervals of ``tau2``, ``tau``, ``I2`` (percent) and ``H2``, as ``metafor::confint(rma)``.

    Rows ``tau2, tau, i2_percent, h2``; columns ``estimate, ci_low, ci_high, method``.
    """
    a = res.alpha if alpha is None else alpha
    if not 0 < a < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha!r}")
    lo, hi = q_profile_tau2(res.yi, res.vi, a)
    s2 = _typical_within_var(res.vi)
    rows = {
        "tau2": (res.tau2, lo, hi),
        "tau": (math.sqrt(res.tau2), math.sqrt(lo), math.sqrt(hi)),
        "i2_percent": tuple(100 * t / (t + s2) for t in (res.tau2, lo, hi)),
        "h2": tuple((t + s2) / s2 for t in (res.tau2, lo, hi)),
    }
    out = pd.DataFrame([{"name": k, "estimate": v[0], "ci_low": v[1], "ci_high": v[2], "method": "q-profile"}
                        for k, v in rows.items()])
    return out.set_index("name")


def univariate_fit_statistics(res: UnivariateResult) -> dict[str, float]:
    """``loglik, deviance, aic, bic, n_par, n_obs`` at the fitted ``tau2``: the REML log-likelihood for a REML
    fit, the ML one otherwise (as ``metafor::logLik``); ``n_par = 2`` (``mu``, ``tau2``), ``n_obs = k``
    (``k - 1`` for REML)."""
    reml = res.method == "REML"
    ll = univariate_loglik(res.yi, res.vi, res.tau2, reml=reml)
    return information_criteria(ll, 2, res.k, 1, reml=reml)


def coef_frame(res: UnivariateResult) -> pd.DataFrame:
    """Wald row of ``mu`` on the model scale: ``estimate, se, z, p_value, ci_low, ci_high``."""
    z = res.mu / res.se
    q = stats.norm.ppf(1 - res.alpha / 2)
    return pd.DataFrame([{"estimate": res.mu, "se": res.se, "z": z, "p_value": 2 * stats.norm.sf(abs(z)),
                          "ci_low": res.mu - q * res.se, "ci_high": res.mu + q * res.se}],
                        index=pd.Index([res.measure], name="term"))


def univariate_summary(res: UnivariateResult, digits: int = 4) -> str:
    """R-like text (the layout of ``print(metafor::rma(...))``)."""
    fs = univariate_fit_statistics(res)
    het = heterogeneity_ci(res)
    est = pd.DataFrame([{"estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high, "method": e.method}
                        for e in (res.pooled, res.prediction)], index=[res.pooled.name, "prediction interval"])
    corr = (f"continuity correction: {res.correction} ({res.correction_rule}); corrected: "
            f"{', '.join(res.corrected) if res.corrected else 'none'}")
    return text_block(
        f"Random-effects model ({res.method}), {res.measure}",
        [("", f"k = {res.k}; alpha = {res.alpha}\n{corr}"),
         ("", f"logLik = {fs['loglik']:.{digits}f}; deviance = {fs['deviance']:.{digits}f}; "
              f"AIC = {fs['aic']:.{digits}f}; BIC = {fs['bic']:.{digits}f} (n = {fs['n_obs']})"),
         ("Heterogeneity (Q-profile intervals):", het),
         ("", f"Test for heterogeneity: Q(df = {res.q_df}) = {res.q:.{digits}f}, p = {res.q_p_value:.{digits}g}"),
         ("Model results (model scale):", coef_frame(res)),
         ("Back-transformed:", est)],
        digits=digits)


def univariate_to_dict(res: UnivariateResult) -> dict[str, Any]:
    """JSON-safe dict of the result (per-cohort ``yi``/``vi`` included as lists)."""
    het = heterogeneity_ci(res)
    return json_safe({
        "measure": res.measure, "method": res.method, "k": res.k, "alpha": res.alpha,
        "pooled": res.pooled, "prediction": res.prediction, "mu": res.mu, "se": res.se,
        "coefficients": coef_frame(res).reset_index(),
        "tau2": res.tau2, "tau2_ci": [het.loc["tau2", "ci_low"], het.loc["tau2", "ci_high"]],
        "q": res.q, "q_df": res.q_df, "q_p_value": res.q_p_value, "i2_percent": res.i2_percent,
        "i2_percent_ci": [het.loc["i2_percent", "ci_low"], het.loc["i2_percent", "ci_high"]], "h2": res.h2,
        "fit_statistics": univariate_fit_statistics(res), "correction": res.correction,
        "correction_rule": res.correction_rule, "corrected": res.corrected, "labels": res.labels,
        "yi": res.yi, "vi": res.vi,
    })


def tau2_estimate(res: UnivariateResult, alpha: float | None = None) -> Estimate:
    """``tau2`` with its Q-profile interval as an :class:`Estimate`."""
    a = res.alpha if alpha is None else alpha
    het = heterogeneity_ci(res, a)
    return Estimate("tau2", res.tau2, float(het.loc["tau2", "ci_low"]), float(het.loc["tau2", "ci_high"]),
                    "q-profile", a, res.k, "", {"scale": res.measure})
