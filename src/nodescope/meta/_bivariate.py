"""Public entry points of the bivariate models, with the small-sample / degenerate-fit fallback.

Fallback policy (documented in docs/meta-models.md): with fewer than 4 cohorts, or when the full fit is
degenerate (optimiser not converged, ``|rho| > 0.999``, or a between-cohort variance below ``1e-6``), a
:class:`MetaAnalysisWarning` is raised and the model is refitted with ``rho`` fixed at 0 - equivalent to two
separate univariate random-effects models of logit sensitivity and logit specificity, as recommended by
Takwoingi et al. (2017, Stat Methods Med Res 26:1896-1911) when the bivariate model cannot be estimated.
``fallback="none"`` keeps the full fit (still warning). Fewer than 2 cohorts is an error.

**Separation (GLMM).** When a cell is zero in every cohort (e.g. ``FN = 0`` everywhere: sensitivity 100 % in each
cohort) the binomial likelihood keeps rising as ``|logit sens| -> inf``; the GLMM then drifts to a huge
``|mu|`` with a huge SE while the optimiser reports convergence. A pooled GLMM whose ``|mu| > 10`` on the logit
scale (sens or spec beyond 0.99995) or whose SE of ``mu`` exceeds 100 is declared divergent: a
:class:`MetaAnalysisWarning` says so and, unless ``fallback="none"``, the Reitsma normal-approximation model is fitted
instead (REML, 0.5 added to every cell of every cohort when any cell is zero), recorded in ``fallback``,
``correction`` and ``corrected`` of the result.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.meta._counts import LOGITS, Correction, Counts, as_counts, measure_data
from nodescope.meta._fit import BivariateFit
from nodescope.meta._glmm import GlmmStart, fit_glmm
from nodescope.meta._multilevel import robust_fit, study_labels
from nodescope.meta._reitsma import fit_reitsma, moment_start
from nodescope.meta._summary import BivariateResult, CiMethod, MetaAnalysisWarning, build_result

__all__ = ["MIN_COHORTS_BIVARIATE", "bivariate_glmm", "reitsma"]

MIN_COHORTS_BIVARIATE = 4
SEPARATION_MAX_LOGIT = 10.0
SEPARATION_MAX_SE = 100.0


def _divergent(fit: BivariateFit) -> str:
    """Why an intercept-only GLMM fit looks separated (empty string when it does not)."""
    mu = fit.coef[:, 0]
    se = np.sqrt(np.abs(np.diag(fit.cov_coef)))
    bad = [f"{name} = {m:.3g} (SE {s:.3g})" for name, m, s in zip(("logit sens", "logit spec"), mu, se, strict=True)
           if abs(m) > SEPARATION_MAX_LOGIT or not np.isfinite(s) or s > SEPARATION_MAX_SE]
    if not bad:
        return ""
    return ("the GLMM diverged (" + ", ".join(bad) + "): a proportion is 0 or 1 in (nearly) every cohort "
            "(separation), so the binomial likelihood has no finite maximum")


def _separated(counts: Counts) -> str:
    """Why the intercept-only GLMM cannot have a finite maximum: a cell that is zero in every cohort ("" if none)."""
    cells = {"TP": counts.tp, "FN": counts.fn, "FP": counts.fp, "TN": counts.tn}
    zero = [name for name, v in cells.items() if not np.any(v > 0)]
    if not zero:
        return ""
    return (f"the GLMM diverged ({' and '.join(zero)} = 0 in every cohort, found before fitting): a proportion is 0 "
            "or 1 in every cohort (separation), so the binomial likelihood has no finite maximum")


Fallback = Literal["rho0", "none"]
ModelName = Literal["glmm", "reitsma"]


def _degenerate(fit: BivariateFit) -> str:
    tau2 = np.diag(fit.sigma)
    if not fit.converged:
        return f"the optimiser did not converge ({fit.message})"
    if np.any(tau2 < 1e-6):
        return f"a between-cohort variance is ~0 (tau2 = {tau2[0]:.3g}, {tau2[1]:.3g})"
    rho = fit.sigma[0, 1] / np.sqrt(tau2[0] * tau2[1])
    if abs(rho) > 0.999:
        return f"the correlation is at the boundary (rho = {rho:.4f})"
    return ""


def fit_model(
    counts: Counts,
    X: np.ndarray,
    names: tuple[str, ...],
    *,
    model: ModelName,
    method: str,
    n_nodes: int,
    correction: float,
    correction_rule: str,
    fallback: Fallback,
    start: GlmmStart | None = None,
) -> tuple[BivariateFit, tuple[str, ...], str, np.ndarray]:
    """Fit with the fallback policy. Returns the fit, warnings, fallback description, corrected-cohort mask.

    ``start`` (GLMM only) replaces the moment starting values (a warm start, see :func:`bivariate_glmm`).
    """
    if fallback not in ("rho0", "none"):
        raise ConfigError(f"fallback={fallback!r} is not valid; choose 'rho0' or 'none'")
    k = counts.k
    if k < 2:
        raise StatisticsInputError(f"a bivariate meta-analysis needs at least 2 cohorts; got {k}")
    msgs: list[str] = []
    mask = np.zeros(k, dtype=bool)

    def run(rho_fixed: bool) -> BivariateFit:
        nonlocal mask
        if model == "reitsma":
            y, s, mask = measure_data(counts, LOGITS, correction, correction_rule)  # type: ignore[arg-type]
            return fit_reitsma(y, s, X, names, method=method, rho_fixed=rho_fixed)
        # GLMM: start from moment estimates of the normal approximation on 0.5-corrected data (zero cells are fine
        # there); the Laplace fit ends with Newton steps, so its estimates do not depend on the start
        y, s, _ = measure_data(counts, LOGITS, 0.5, "studies-with-zero")
        first = start if start is not None else moment_start(y, s, X, names, rho_fixed=rho_fixed)
        try:
            return fit_glmm(counts, X, names, n_nodes=n_nodes, start=first, rho_fixed=rho_fixed)
        except np.linalg.LinAlgError as err:  # a singular information matrix: the GLMM has no usable maximum
            raise StatisticsInputError(
                f"the exact binomial GLMM cannot be estimated on these {counts.k} cohorts (its information matrix "
                f"is singular: {err}); {_separated(counts) or 'the data are (nearly) separated'}; use the Reitsma "
                "model (model='reitsma') or the default fallback='rho0'") from err

    fallback_text = ""
    separated = _separated(counts) if model == "glmm" and X.shape[1] == 1 and fallback == "rho0" else ""
    if separated:  # no finite maximum: go straight to the documented fallback instead of a doomed fit
        return _separation_fallback(counts, X, names, msgs, separated)
    if k < MIN_COHORTS_BIVARIATE and fallback == "rho0":
        msgs.append(f"only {k} cohorts (< {MIN_COHORTS_BIVARIATE}): the correlation cannot be estimated reliably; "
                    "fitted with rho fixed at 0 (separate univariate random-effects models of logit sens and spec)")
        fallback_text = "rho fixed at 0: fewer than 4 cohorts"
        fit = run(True)
    else:
        fit = run(False)
        why = _degenerate(fit)
        if why and fallback == "rho0":
            msgs.append(f"degenerate bivariate fit: {why}; refitted with rho fixed at 0")
            fallback_text = f"rho fixed at 0: {why}"
            fit = run(True)
        elif why:
            msgs.append(f"degenerate bivariate fit: {why}; kept as requested (fallback='none')")
    if model == "glmm" and X.shape[1] == 1:
        why = _divergent(fit)
        if why and fallback == "rho0":
            return _separation_fallback(counts, X, names, msgs, why)
        if why:
            msgs.append(f"{why}; kept as requested (fallback='none')")
    if not fit.converged:
        msgs.append(f"the final fit did not converge: {fit.message}")
    for m in msgs:
        warnings.warn(m, MetaAnalysisWarning, stacklevel=3)
    return fit, tuple(msgs), fallback_text, mask


def _separation_fallback(counts: Counts, X: np.ndarray, names: tuple[str, ...], msgs: list[str],
                         why: str) -> tuple[BivariateFit, tuple[str, ...], str, np.ndarray]:
    """The documented fallback of a separated GLMM: the Reitsma model (REML, mada's 0.5 all-if-any-zero rule)."""
    msgs.append(f"{why}; fitted the Reitsma normal-approximation model instead (REML, 0.5 added to every "
                "cell of every cohort when any cell is zero)")
    fallback_text = f"Reitsma model with continuity correction 0.5 (all-if-any-zero): {why}"
    for m in msgs:
        warnings.warn(m, MetaAnalysisWarning, stacklevel=4)
    # the Reitsma fit warns about its own fallbacks
    inner = fit_model(counts, X, names, model="reitsma", method="REML", n_nodes=1, correction=0.5,
                      correction_rule="all-if-any-zero", fallback="rho0")
    if inner[2]:
        fallback_text += f"; then {inner[2]}"
    return inner[0], (*msgs, *inner[1]), fallback_text, inner[3]


def reitsma(
    data: pd.DataFrame,
    *,
    method: Literal["REML", "ML"] = "REML",
    correction: float = 0.5,
    correction_rule: Correction = "all-if-any-zero",
    alpha: float = 0.05,
    fallback: Fallback = "rho0",
    ci_method: CiMethod = "delta",
    n_sim: int = 10000,
    seed: int = 0,
    cluster: str | None = None,
) -> BivariateResult:
    """Bivariate normal-approximation model of Reitsma et al. (2005) (the model of R ``mada::reitsma``).

    Estimates, standard errors, variance components and log-likelihoods are validated against
    ``metafor::rma.mv(struct = "UN")`` (REML and ML); mada itself was not run, so no agreement with mada's
    output is claimed. The continuity-correction convention below is mada's, read from its source.

    Parameters
    ----------
    data : DataFrame
        Columns ``TP, FP, FN, TN`` (non-negative integers), optionally ``study``; one row per cohort.
    method : {"REML", "ML"}, default "REML"
    correction : float, default 0.5
    correction_rule : {"all-if-any-zero", "studies-with-zero", "measure-cells-with-zero", "all", "none"}, default "all-if-any-zero"
        mada's convention (``correction.control = "all"``, from mada's ``R/reitsma.R``): when any cohort has a zero cell, ``correction`` is
        added to all four cells of **every** cohort; otherwise nothing is added. ``"studies-with-zero"`` is
        mada's ``"single"``; ``"measure-cells-with-zero"`` corrects logit sens in cohorts with ``TP`` or ``FN`` zero
        and logit spec in cohorts with ``TN`` or ``FP`` zero (metafor's ``escalc("PLO", to="only0")``). The rule
        and the corrected cohorts are recorded in the result.
    alpha : float, default 0.05
    fallback : {"rho0", "none"}, default "rho0"
        What to do with fewer than 4 cohorts or a degenerate fit (see module docstring).
    ci_method : {"delta", "simulation"}, default "delta"
        CIs of LR+, LR- and DOR; ``simulation`` draws ``n_sim`` values of ``mu`` (seeded by ``seed``).
    cluster : str, optional
        Column naming the study of each cohort when studies contribute several cohorts: ``cov(mu)`` (and every CI)
        then comes from the CR1 cluster-robust sandwich over studies, as ``metafor::robust(fit, cluster,
        adjust = TRUE)``; ``mu`` and ``Sigma`` are unchanged. CIs stay Wald-z (metafor uses ``t`` with
        ``studies - 2`` df): with fewer than ~20 studies prefer :func:`multilevel_reitsma` (docs/meta-models.md).

    Returns
    -------
    BivariateResult

    References
    ----------
    Hedges LV, Tipton E, Johnson MC. Robust variance estimation in meta-regression with dependent effect size
    estimates. Res Synth Methods 2010;1:39-65.
    Reitsma JB et al. Bivariate analysis of sensitivity and specificity produces informative summary measures
    in diagnostic reviews. J Clin Epidemiol 2005;58:982-990.
    Doebler P. mada: Meta-Analysis of Diagnostic Accuracy (R package), reitsma().
    """
    if method not in ("REML", "ML"):
        raise ConfigError(f"method={method!r} is not valid; choose 'REML' or 'ML'")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha!r}")
    counts = as_counts(data)
    X = np.ones((counts.k, 1))
    studies = None if cluster is None else study_labels(data, cluster)
    fit, msgs, fb, mask = fit_model(counts, X, ("(Intercept)",), model="reitsma", method=method, n_nodes=1,
                                    correction=correction, correction_rule=correction_rule, fallback=fallback)
    if studies is not None:
        fit = robust_fit(fit, counts, X, studies, correction, correction_rule)
    return _normal_model_result(fit, counts, mask, correction, correction_rule, alpha=alpha, fallback=fb,
                                warnings_=msgs, ci_method=ci_method, n_sim=n_sim, seed=seed)


def _normal_model_result(
    fit: BivariateFit,
    counts: Counts,
    mask: np.ndarray,
    correction: float,
    correction_rule: Correction,
    *,
    alpha: float,
    fallback: str,
    warnings_: tuple[str, ...],
    ci_method: CiMethod,
    n_sim: int,
    seed: int,
) -> BivariateResult:
    """The result of a Reitsma (normal-approximation) fit: within-cohort variances and the cohorts corrected."""
    _, within, _ = measure_data(counts, LOGITS, correction, correction_rule)
    return build_result(fit, counts, alpha=alpha, correction=correction, correction_rule=correction_rule,
                        corrected=tuple(counts.labels[i] for i in np.flatnonzero(mask)), fallback=fallback,
                        warnings_=warnings_, within_var=within, ci_method=ci_method, n_sim=n_sim, seed=seed)


def bivariate_glmm(
    data: pd.DataFrame,
    *,
    method: Literal["laplace", "aghq"] = "laplace",
    n_nodes: int = 9,
    alpha: float = 0.05,
    fallback: Fallback = "rho0",
    ci_method: CiMethod = "delta",
    n_sim: int = 10000,
    seed: int = 0,
    start: BivariateResult | None = None,
) -> BivariateResult:
    """Exact bivariate binomial GLMM (the default model; Stata metandi/midas, ``lme4::glmer``).

    Parameters
    ----------
    data : DataFrame
        Columns ``TP, FP, FN, TN``; zero cells need no continuity correction.
    method : {"laplace", "aghq"}, default "laplace"
        Laplace approximation of each cohort's 2-D integral (lme4's ``nAGQ = 1``) or adaptive Gauss-Hermite
        quadrature with ``n_nodes`` x ``n_nodes`` points centred and scaled at the conditional mode.
    n_nodes : int, default 9
        Nodes per dimension for ``"aghq"`` (ignored for ``"laplace"``).
    alpha, fallback, ci_method, n_sim, seed
        As in :func:`reitsma`. With ``fallback="rho0"`` a divergent (separated) GLMM is replaced by the Reitsma
        model with continuity correction (module docstring); the result's ``model`` and ``fallback`` say so.
    start : BivariateResult, optional
        A warm start: a Laplace GLMM fit of nearly the same data (e.g. all cohorts, when leaving one out, as
        :func:`leave_one_out` does). Its estimates and inverse information drive chord steps to the maximum
        (falling back to the usual optimiser when they fail). The estimates do not depend on the start (every
        Laplace fit ends at a zero of the exact gradient), only the time does.

    Notes
    -----
    Standard errors of ``mu`` come from the observed information (Hessian of the negative approximate
    log-likelihood over all parameters, inverted; Laplace: central differences of its exact gradient), like lme4's
    default ``vcov``.

    References
    ----------
    Chu H, Cole SR. Bivariate meta-analysis of sensitivity and specificity with sparse data: a generalized
    linear mixed model approach. J Clin Epidemiol 2006;59:1331-1332.
    Harbord RM et al. A unification of models for meta-analysis of diagnostic accuracy studies.
    Biostatistics 2007;8:239-251.
    """
    if method not in ("laplace", "aghq"):
        raise ConfigError(f"method={method!r} is not valid; choose 'laplace' or 'aghq'")
    if method == "aghq" and (not isinstance(n_nodes, int) or n_nodes < 1 or n_nodes > 50):
        raise ConfigError(f"n_nodes must be an integer in 1..50; got {n_nodes!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha!r}")
    counts = as_counts(data)
    X = np.ones((counts.k, 1))
    nodes = 1 if method == "laplace" else n_nodes
    fit, msgs, fb, mask = fit_model(counts, X, ("(Intercept)",), model="glmm", method=method, n_nodes=nodes,
                                    correction=0.0, correction_rule="none", fallback=fallback,
                                    start=_warm_start(start) if nodes == 1 else None)
    if fit.model.startswith("reitsma"):  # separation fallback: the normal model with its continuity correction
        return _normal_model_result(fit, counts, mask, 0.5, "all-if-any-zero", alpha=alpha, fallback=fb,
                                    warnings_=msgs, ci_method=ci_method, n_sim=n_sim, seed=seed)
    # I2 needs within-cohort variances of the logits; the GLMM has none of its own, so use the univariate
    # convention (0.5 added to the cells of cohorts with a zero cell)
    _, within, _ = measure_data(counts, LOGITS, 0.5, "studies-with-zero")
    return build_result(fit, counts, alpha=alpha, correction=0.0, correction_rule="none", corrected=(),
                        fallback=fb, warnings_=msgs, within_var=within, ci_method=ci_method, n_sim=n_sim, seed=seed)


def _warm_start(r: BivariateResult | None) -> GlmmStart | None:
    """Starting values (and, for an interior Laplace GLMM fit, its inverse information) from a pooled result."""
    if r is None:
        return None
    if not isinstance(r, BivariateResult):
        raise TypeError(f"start must be a BivariateResult (a pooled fit) or None; got {type(r).__name__}")
    cov = None
    if r.model == "glmm-laplace" and r.cov_eta is not None and r.cov_mu_eta is not None:
        n_eta = 2 if r.rho_fixed else 3
        cov = np.block([[r.cov_mu, r.cov_mu_eta[:, :n_eta]],
                        [r.cov_mu_eta[:, :n_eta].T, r.cov_eta[:n_eta, :n_eta]]])
    return GlmmStart(coef=np.asarray(r.mu, dtype=float).reshape(2, 1), sigma=np.asarray(r.sigma, dtype=float),
                     cov=cov, rho_fixed=bool(r.rho_fixed))
