"""Tables and text of a :class:`~nodescope.meta.BivariateResult`: Wald table of ``mu`` in the (sens, spec) and
mada's (sens, FPR) parametrisation, fit statistics, profile-likelihood intervals of the variances, ``summary()``.

mada's parametrisation: ``logit FPR = -logit spec``, so with ``J = diag(1, -1)``: ``mu_fpr = J mu``,
``cov_fpr = J cov(mu) J``, ``Sigma_fpr = J Sigma J`` (``tau2_fpr = tau2_spec``, ``rho_sens_fpr = -rho``); Wald
``z = mu / SE``, two-sided ``p = 2 (1 - Phi(|z|))``, CI ``mu +- z_(1-alpha/2) SE`` on the logit scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from nodescope.errors import ConfigError
from nodescope.meta._counts import Counts
from nodescope.meta._profile import bivariate_profile_ci, information_criteria, model_loglik
from nodescope.meta._results_api import format_table, text_block

if TYPE_CHECKING:
    from nodescope.meta._summary import BivariateResult

__all__ = ["FLIP", "coef_table", "fit_statistics", "profile_table", "summary_text"]

Parametrisation = Literal["sens_spec", "sens_fpr"]
FLIP = np.diag([1.0, -1.0])


def coef_table(res: BivariateResult, parametrisation: Parametrisation = "sens_spec") -> pd.DataFrame:
    """Wald table of the pooled logits: index ``logit_sens`` and ``logit_spec`` (or ``logit_fpr``), columns
    ``estimate, se, z, p_value, ci_low, ci_high`` (module docstring)."""
    if parametrisation not in ("sens_spec", "sens_fpr"):
        raise ConfigError(f"parametrisation={parametrisation!r} is not valid; choose 'sens_spec' or 'sens_fpr'")
    j = FLIP if parametrisation == "sens_fpr" else np.eye(2)
    mu, cov = j @ res.mu, j @ res.cov_mu @ j
    se = np.sqrt(np.diag(cov))
    zq = stats.norm.ppf(1 - res.alpha / 2)
    z = mu / se
    names = ["logit_sens", "logit_fpr" if parametrisation == "sens_fpr" else "logit_spec"]
    return pd.DataFrame({"estimate": mu, "se": se, "z": z, "p_value": 2 * stats.norm.sf(np.abs(z)),
                         "ci_low": mu - zq * se, "ci_high": mu + zq * se}, index=pd.Index(names, name="term"))


def fit_statistics(res: BivariateResult) -> dict[str, float]:
    """``loglik, deviance, aic, bic, n_par, n_obs``: ``n_par`` = 2 means + the free variance parameters, ``n_obs``
    = ``2k`` (two logits per cohort; ``2k - 2`` for REML, metafor's convention; lme4 counts ``2k`` rows)."""
    return information_criteria(res.loglik, res.n_params, 2 * res.k, 2, reml=res.model == "reitsma-reml")


def _counts(res: BivariateResult) -> Counts:
    c = res.counts.astype(float)
    return Counts(c[:, 0], c[:, 1], c[:, 2], c[:, 3], res.labels)


def profile_table(res: BivariateResult, alpha: float | None = None) -> pd.DataFrame:
    """Profile-likelihood intervals of ``tau2_sens``, ``tau2_spec`` and the ``I2`` they imply (percent).

    Rows ``tau2_sens, tau2_spec, i2_sens_percent, i2_spec_percent``; columns ``estimate, ci_low, ci_high, method``.
    The ``I2`` bounds map the ``tau2`` bounds through ``100 tau2 / (tau2 + s2)`` with the model's typical
    within-cohort variance (as ``metafor::confint``).
    """
    a = res.alpha if alpha is None else alpha
    if not 0 < a < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha!r}")
    f, free_mu = model_loglik(res.model, _counts(res), res.correction, res.correction_rule)
    ci = bivariate_profile_ci(f, res.mu, res.sigma, profile_mu=free_mu, rho_fixed=res.rho_fixed, alpha=a)
    meth = f"profile-likelihood-{res.model}" + ("-rho0" if res.rho_fixed else "")
    rows = []
    s2 = res.heterogeneity.typical_within_var
    for j, name in enumerate(("sens", "spec")):
        lo, hi = ci[f"tau2_{name}"]
        t = float(res.sigma[j, j])
        rows.append({"name": f"tau2_{name}", "estimate": t, "ci_low": lo, "ci_high": hi, "method": meth})
    for j, name in enumerate(("sens", "spec")):
        r = rows[j]
        rows.append({"name": f"i2_{name}_percent",
                     **{c: 100 * r[c] / (r[c] + s2[j]) for c in ("estimate", "ci_low", "ci_high")},
                     "method": meth + "-mapped"})
    return pd.DataFrame(rows).set_index("name")


def summary_text(res: BivariateResult, *, digits: int = 4) -> str:
    """The R-like text of :meth:`BivariateResult.summary` (see there)."""
    title = {"glmm": "Bivariate binomial GLMM (exact likelihood)",
             "reitsma": "Bivariate normal model of Reitsma et al. (mada::reitsma)"}[res.model.split("-")[0]]
    est = pd.DataFrame([{"estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high, "method": e.method}
                        for e in (res.sensitivity, res.specificity, res.lr_positive, res.lr_negative, res.dor,
                                  res.auc)],
                       index=["sensitivity", "specificity", "LR+", "LR-", "DOR", "AUC (SROC)"])
    tau = np.sqrt(np.diag(res.sigma))
    var = pd.DataFrame({"tau2": np.diag(res.sigma), "tau": tau,
                        "I2_percent": [res.heterogeneity.i2_sens_percent, res.heterogeneity.i2_spec_percent]},
                       index=["logit_sens", "logit_spec"])
    fs = fit_statistics(res)
    rho = "NA" if np.isnan(res.rho) else f"{res.rho:.{digits}f}"
    lines = [f"model: {res.model}; k = {res.k} cohorts; alpha = {res.alpha}; converged: {res.converged}",
             f"continuity correction: {res.correction} ({res.correction_rule}); corrected: {len(res.corrected)} "
             f"cohort(s)", f"fallback: {res.fallback or 'none'}"]
    sections: list[tuple[str, pd.DataFrame | str]] = [
        ("", "\n".join(lines)),
        ("Fixed effects (logit scale), (sens, spec) parametrisation:", coef_table(res, "sens_spec")),
        ("Fixed effects (logit scale), mada's (sens, FPR) parametrisation:", coef_table(res, "sens_fpr")),
        ("Summary estimates:", est),
        ("Variance components:", var),
        ("", f"rho(sens, spec) = {rho}; rho(sens, FPR) = {'NA' if np.isnan(res.rho) else f'{-res.rho:.{digits}f}'}"
             + ("  (fixed at 0)" if res.rho_fixed else "")
             + f"; bivariate I2 = {res.heterogeneity.i2_bivariate_percent:.1f} %"),
        ("", f"logLik = {fs['loglik']:.{digits}f} (df = {fs['n_par']}); AIC = {fs['aic']:.{digits}f}; "
             f"BIC = {fs['bic']:.{digits}f} (n = {fs['n_obs']})"),
    ]
    if res.hsroc is not None:
        hs = pd.DataFrame([vars(res.hsroc)], index=["HSROC"]).rename(columns={"lambda_": "Lambda"})
        sections.append(("HSROC parameters (Harbord et al. 2007):", format_table(hs, digits=digits)))
    if res.warnings:
        sections.append(("Warnings:", "\n".join(f"- {w}" for w in res.warnings)))
    return text_block(title, sections, digits=digits)
