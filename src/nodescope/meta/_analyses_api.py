"""``summary()``, ``to_frame()`` and ``to_dict()`` of the analysis results (Deeks' test, meta-regression,
subgroups); the result classes in :mod:`nodescope.meta._analyses` delegate here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from nodescope.meta._results_api import json_safe, text_block

if TYPE_CHECKING:
    from nodescope.meta._analyses import DeeksResult, MetaRegressionResult, SubgroupResult

__all__ = ["deeks_frame", "deeks_summary", "deeks_to_dict", "regression_summary", "regression_to_dict",
           "subgroup_summary", "subgroup_to_dict"]


def deeks_frame(res: DeeksResult) -> pd.DataFrame:
    """Coefficient table of Deeks' regression: rows ``intercept``, ``slope`` (the asymmetry test); columns
    ``estimate, se, t, df, p_value``."""
    rows = []
    for name, est, se in (("intercept", res.intercept, res.intercept_se), ("slope", res.slope, res.slope_se)):
        t = est / se
        rows.append({"term": name, "estimate": est, "se": se, "t": t, "df": res.df,
                     "p_value": float(2 * stats.t.sf(abs(t), res.df))})
    return pd.DataFrame(rows).set_index("term")


def deeks_summary(res: DeeksResult, digits: int = 4) -> str:
    """R-like text of ``summary(lm(lnDOR ~ I(1/sqrt(ESS)), weights = ESS))``'s coefficients and the verdict."""
    flag = "asymmetry (p < 0.10)" if res.p_value < 0.10 else "no evidence of asymmetry at p < 0.10"
    corr = (f"continuity correction {res.correction} added to the cells of "
            f"{', '.join(res.corrected) if res.corrected else 'no cohort'}")
    return text_block("Deeks' funnel-plot asymmetry test (ln DOR on 1/sqrt(ESS), weights ESS)",
                      [("", f"k = {len(res.labels)} cohorts; {corr}"),
                       ("Coefficients:", deeks_frame(res)),
                       ("", f"slope t = {res.t:.{digits}f} on {res.df} df, p = {res.p_value:.{digits}g}: {flag}")],
                      digits=digits)


def deeks_to_dict(res: DeeksResult) -> dict[str, Any]:
    """JSON-safe dict (per-cohort ``x``, ``y``, ``weights`` and ``labels`` included)."""
    return json_safe({"slope": res.slope, "slope_se": res.slope_se, "intercept": res.intercept,
                      "intercept_se": res.intercept_se, "t": res.t, "df": res.df, "p_value": res.p_value,
                      "correction": res.correction, "corrected": res.corrected, "labels": res.labels,
                      "x": res.x, "y": res.y, "weights": res.weights})


def _lrt_line(res: MetaRegressionResult, digits: int) -> str:
    return (f"likelihood-ratio test against the intercept-only model: chi2 = {res.lrt_statistic:.{digits}f} on "
            f"{res.lrt_df} df, p = {res.lrt_p_value:.{digits}g} (logLik {res.loglik:.{digits}f} vs "
            f"{res.loglik_null:.{digits}f})")


def regression_summary(res: MetaRegressionResult, digits: int = 4) -> str:
    """R-like text: coefficients (logit scale, Wald), between-cohort covariance, LRT, warnings."""
    coef = res.coefficients.copy()
    coef.index = [f"{o}:{t}" for o, t in zip(coef.pop("outcome"), coef.pop("term"), strict=True)]
    sd = np.sqrt(np.diag(res.sigma))
    rho = res.sigma[0, 1] / (sd[0] * sd[1]) if np.all(sd > 0) else float("nan")
    var = pd.DataFrame({"tau2": np.diag(res.sigma), "tau": sd}, index=["logit_sens", "logit_spec"])
    sections: list[tuple[str, pd.DataFrame | str]] = [
        ("", f"model: {res.model}; k = {res.k} cohorts; terms: {', '.join(res.terms)}"),
        ("Coefficients (logit scale):", coef), ("Variance components:", var),
        ("", f"rho(sens, spec) = {rho:.{digits}f}"), ("", _lrt_line(res, digits))]
    if res.warnings:
        sections.append(("Warnings:", "\n".join(f"- {w}" for w in res.warnings)))
    return text_block("Bivariate meta-regression", sections, digits=digits)


def regression_to_dict(res: MetaRegressionResult) -> dict[str, Any]:
    """JSON-safe dict: coefficients, Sigma, log-likelihoods and the LRT, warnings."""
    return json_safe({"model": res.model, "k": res.k, "terms": res.terms, "coefficients": res.coefficients,
                      "sigma": res.sigma, "loglik": res.loglik, "loglik_null": res.loglik_null,
                      "lrt": {"statistic": res.lrt_statistic, "df": res.lrt_df, "p_value": res.lrt_p_value},
                      "warnings": res.warnings})


def subgroup_summary(res: SubgroupResult, digits: int = 4) -> str:
    """Text: pooled estimates per level, then the meta-regression LRT of a difference."""
    frame = res.summary_frame()
    frame.index = [f"{lev}: {name}" for lev, name in zip(frame.pop("level"), frame.pop("name"), strict=True)]
    return text_block(f"Subgroups by {res.column!r}",
                      [("Pooled estimates per level:", frame),
                       ("", _lrt_line(res.regression, digits))], digits=digits)


def subgroup_to_dict(res: SubgroupResult) -> dict[str, Any]:
    """JSON-safe dict: ``column``, ``levels`` (each a ``BivariateResult.to_dict()``) and ``regression``."""
    return {"column": res.column, "levels": {lev: fit.to_dict() for lev, fit in res.fits.items()},
            "regression": regression_to_dict(res.regression)}
