"""Summaries of a bivariate fit: pooled accuracy, LRs, DOR, HSROC parameters, SROC curve and AUC, regions, I2.

Parametrisation: ``mu = (logit sens, logit spec)``, ``Sigma`` the between-cohort covariance of these two logits.
Formulas (``sd_A = tau_sens``, ``sd_B = tau_spec``, ``s_AB = Sigma[0, 1]``):

- pooled sensitivity ``expit(mu_A)``, specificity ``expit(mu_B)``, CIs ``expit(mu +- z SE)`` (logit scale);
- ``log LR+ = log expit(mu_A) - log expit(-mu_B)``, gradient ``(1 - sens, spec)``;
  ``log LR- = log expit(-mu_A) - log expit(mu_B)``, gradient ``(-sens, -(1 - spec))``;
  ``log DOR = mu_A + mu_B``; Wald CIs on the log scale with ``cov(mu)`` (delta method), or percentiles of
  ``n_sim`` draws of ``mu ~ N(mu_hat, cov(mu))`` (``ci_method="simulation"``);
- HSROC (Harbord et al. 2007, Biostatistics 8:239-251, with the bivariate model in (logit sens, logit spec)):
  ``beta = log(sd_B / sd_A)``, ``Theta = (sqrt(sd_B/sd_A) mu_A - sqrt(sd_A/sd_B) mu_B) / 2``,
  ``Lambda = sqrt(sd_B/sd_A) mu_A + sqrt(sd_A/sd_B) mu_B``, ``sigma2_theta = (sd_A sd_B - s_AB) / 2``,
  ``sigma2_alpha = 2 (sd_A sd_B + s_AB)``;
- SROC curve (Rutter & Gatsonis 2001): ``logit(sens) = Lambda exp(-beta/2) + exp(-beta) logit(FPR)``,
  i.e. the line through ``(-mu_B, mu_A)`` with slope ``sd_A / sd_B`` in (logit FPR, logit sens) space;
  ``AUC = int_0^1 sens(t) dt`` (adaptive quadrature), CI by the delta method on ``logit(AUC)`` over
  ``(mu_A, mu_B, log sd_A, log sd_B)`` with the fitted joint covariance;
- confidence region: ``{m : (m - mu)' cov(mu)^-1 (m - mu) <= chi2_2(1 - alpha)}``; prediction region: the
  same with ``Sigma + cov(mu)`` (a new cohort's true (sens, spec)); both drawn in logit space and mapped to
  (FPR, sens) = ``(expit(-m_B), expit(m_A))``;
- heterogeneity (percent): per-logit ``I2_j = 100 tau2_j / (tau2_j + s2_j)`` with the Higgins-Thompson typical
  within-cohort variance ``s2_j = (k-1) sum w / ((sum w)^2 - sum w^2)``, ``w = 1/v_ij`` (``v`` the within-cohort
  variances of the model: Reitsma's with its own continuity correction; for the GLMM, which uses none, from counts
  with 0.5 added to cohorts with a zero cell), and the generalised-variance bivariate
  ``I2_biv = 100 sqrt(det Sigma) / (sqrt(det Sigma) + sqrt(s2_1 s2_2))`` (Zhou & Dendukuri 2014, Stat Med
  33:2701-2717, with a diagonal typical within-cohort covariance).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import integrate, stats
from scipy.special import expit, logit

from nodescope._estimate import Estimate
from nodescope.errors import ConfigError
from nodescope.meta._bivariate_api import (
    FLIP,
    Parametrisation,
    coef_table,
    fit_statistics,
    profile_table,
    summary_text,
)
from nodescope.meta._counts import LOGITS, Counts
from nodescope.meta._fit import BivariateFit
from nodescope.meta._results_api import deprecated_alias, json_safe

CiMethod = Literal["delta", "simulation"]
_LOG_SCALE = {"lr_positive": "log_lr_pos", "lr_negative": "log_lr_neg", "dor": "log_dor"}


class MetaAnalysisWarning(UserWarning):
    """A meta-analysis fell back to a simpler model or is degenerate; the result records why."""


@dataclass(frozen=True)
class HsrocParameters:
    """Rutter-Gatsonis HSROC parameters implied by the bivariate fit (Harbord et al. 2007).

    Attributes
    ----------
    lambda_ : float
        Accuracy parameter ``Lambda`` (the SROC curve's location).
    theta : float
        Threshold parameter ``Theta``.
    beta : float
        Shape (asymmetry) parameter, ``log(tau_spec / tau_sens)``.
    sigma2_alpha, sigma2_theta : float
        Between-cohort variances of accuracy and threshold.
    """

    lambda_: float
    theta: float
    beta: float
    sigma2_alpha: float
    sigma2_theta: float


@dataclass(frozen=True)
class Heterogeneity:
    """Between-cohort heterogeneity of a bivariate fit, ``I2`` **in percent** (0-100, as metafor and the literature
    report it, and as :attr:`UnivariateResult.i2_percent <nodescope.meta.UnivariateResult>`).

    Attributes
    ----------
    i2_sens_percent, i2_spec_percent : float
        ``I2`` of logit sensitivity and logit specificity, ``100 tau2 / (tau2 + s2)``.
    i2_bivariate_percent : float
        Generalised-variance bivariate ``I2`` (Zhou & Dendukuri 2014).
    typical_within_var : tuple of float
        Higgins-Thompson typical within-cohort variances ``s2`` of (logit sens, logit spec), from the within-cohort
        variances the model used.

    The names ``i2_sens``, ``i2_spec`` and ``i2_bivariate`` (before statistics API 1.0) still read, with a
    :class:`DeprecationWarning`.
    """

    i2_sens_percent: float
    i2_spec_percent: float
    i2_bivariate_percent: float
    typical_within_var: tuple[float, float]

    i2_sens = deprecated_alias("i2_sens_percent", "i2_sens", "Heterogeneity")
    i2_spec = deprecated_alias("i2_spec_percent", "i2_spec", "Heterogeneity")
    i2_bivariate = deprecated_alias("i2_bivariate_percent", "i2_bivariate", "Heterogeneity")


@dataclass(frozen=True)
class BivariateResult:
    """A fitted bivariate meta-analysis (GLMM or Reitsma) and its summaries.

    Attributes
    ----------
    model : str
        ``"glmm-laplace"``, ``"glmm-aghq<n>"``, ``"reitsma-reml"`` or ``"reitsma-ml"``.
    sensitivity, specificity, lr_positive, lr_negative, dor, auc : Estimate
        Pooled values with ``1 - alpha`` CIs.
    mu : ndarray, shape (2,)
        ``(logit sens, logit spec)``; ``cov_mu`` its (2, 2) covariance.
    sigma : ndarray, shape (2, 2)
        Between-cohort covariance of (logit sens, logit spec).
    hsroc : HsrocParameters or None
        ``None`` when a between-cohort variance is zero (the SROC curve is then undefined).
    heterogeneity : Heterogeneity
        ``I2`` in percent per logit and bivariate.
    loglik : float
        Maximised (restricted, for REML) log-likelihood: metafor's constants for the Reitsma model (REML with
        ``+1/2 log|X'X|``), the binomial constants ``log C(n, x)`` included for the GLMM (as ``lme4::glmer``).
        :meth:`fit_statistics` adds AIC and BIC.
    n_params : int
        Free parameters: 2 means and 3 variance parameters (2 with ``rho`` fixed at 0).
    k : int
        Number of cohorts.
    converged : bool
        The optimiser's convergence flag.
    rho_fixed : bool
        ``rho`` fixed at 0 (fallback, see ``fallback``).
    se_method : str
        How ``cov_mu`` was obtained.
    correction, correction_rule : float, str
        Continuity correction of the normal model (0 and ``"none"`` for the GLMM, which needs none).
    corrected : tuple of str
        Labels of the cohorts that received it.
    fallback : str
        ``""`` or what was done instead of the full model (e.g. ``"rho fixed at 0"``) and why.
    warnings : tuple of str
        Every warning raised while fitting.
    alpha : float
        ``1 - alpha`` is the level of every interval.
    labels : tuple of str
        Cohort labels; ``counts`` the ``(k, 4)`` integer counts ``TP, FP, FN, TN``.
    cov_eta, cov_mu_eta : ndarray or None
        Covariance of ``(log tau_sens, log tau_spec, atanh rho)`` and its cross-covariance with ``mu`` (``None`` at
        a boundary).

    Notes
    -----
    mada's (sens, FPR) parametrisation is available beside it: :attr:`mu_fpr`, :attr:`cov_mu_fpr`,
    :attr:`sigma_fpr`, :attr:`tau2_fpr`, :attr:`rho_sens_fpr` and ``coef_table("sens_fpr")`` (Wald ``z`` and ``p``).
    """

    model: str
    sensitivity: Estimate
    specificity: Estimate
    lr_positive: Estimate
    lr_negative: Estimate
    dor: Estimate
    auc: Estimate
    mu: np.ndarray
    cov_mu: np.ndarray
    sigma: np.ndarray
    hsroc: HsrocParameters | None
    heterogeneity: Heterogeneity
    loglik: float
    n_params: int
    k: int
    converged: bool
    rho_fixed: bool
    se_method: str
    correction: float
    correction_rule: str
    corrected: tuple[str, ...]
    fallback: str
    warnings: tuple[str, ...]
    alpha: float
    labels: tuple[str, ...] = field(repr=False)
    counts: np.ndarray = field(repr=False)  # (k, 4): TP, FP, FN, TN
    cov_eta: np.ndarray | None = field(repr=False, default=None)
    cov_mu_eta: np.ndarray | None = field(repr=False, default=None)

    @property
    def tau2_sens(self) -> float:
        return float(self.sigma[0, 0])

    @property
    def tau2_spec(self) -> float:
        return float(self.sigma[1, 1])

    @property
    def rho(self) -> float:
        """Between-cohort correlation of (logit sens, logit spec); ``nan`` when a variance is zero."""
        d = np.sqrt(self.sigma[0, 0] * self.sigma[1, 1])
        return float(self.sigma[0, 1] / d) if d > 0 else float("nan")

    @property
    def rho_sens_fpr(self) -> float:
        """Correlation of (logit sens, logit FPR) as mada/midas report it: ``-rho``."""
        return -self.rho

    @property
    def mu_fpr(self) -> np.ndarray:
        """``(logit sens, logit FPR) = (mu[0], -mu[1])`` (mada's ``coef(fit)``: ``tsens``, ``tfpr``)."""
        return FLIP @ self.mu

    @property
    def cov_mu_fpr(self) -> np.ndarray:
        """Covariance of :attr:`mu_fpr` (mada's ``vcov(fit)``): ``J cov_mu J`` with ``J = diag(1, -1)``."""
        return FLIP @ self.cov_mu @ FLIP

    @property
    def sigma_fpr(self) -> np.ndarray:
        """Between-cohort covariance of (logit sens, logit FPR): ``J Sigma J``."""
        return FLIP @ self.sigma @ FLIP

    @property
    def tau2_fpr(self) -> float:
        """Between-cohort variance of logit FPR (equal to :attr:`tau2_spec`)."""
        return float(self.sigma[1, 1])

    def coef_table(self, parametrisation: Parametrisation = "sens_spec") -> pd.DataFrame:
        """Wald table of the pooled logits, like ``summary(mada::reitsma(...))``'s coefficient table.

        Parameters
        ----------
        parametrisation : {"sens_spec", "sens_fpr"}
            Rows ``logit_sens, logit_spec`` or mada's ``logit_sens, logit_fpr``.

        Returns
        -------
        DataFrame
            Columns ``estimate, se, z, p_value, ci_low, ci_high`` (logit scale, ``1 - alpha`` Wald intervals).
        """
        return coef_table(self, parametrisation)

    def fit_statistics(self) -> dict[str, float]:
        """``loglik, deviance, aic, bic, n_par, n_obs``.

        ``AIC = -2 loglik + 2 n_par``, ``BIC = -2 loglik + n_par log(n_obs)`` with ``n_obs = 2k`` (``2k - 2``
        for REML, as metafor; lme4's ``glmer`` counts the ``2k`` rows); ``loglik`` as :attr:`loglik`.
        """
        return fit_statistics(self)

    @property
    def aic(self) -> float:
        """Akaike information criterion (see :meth:`fit_statistics`)."""
        return fit_statistics(self)["aic"]

    @property
    def bic(self) -> float:
        """Bayesian information criterion (see :meth:`fit_statistics`)."""
        return fit_statistics(self)["bic"]

    def profile_ci(self, alpha: float | None = None) -> pd.DataFrame:
        """Profile-likelihood ``1 - alpha`` intervals of ``tau2_sens``, ``tau2_spec`` and the per-logit ``I2``.

        The (restricted) log-likelihood of the fitted model is maximised over the other parameters at each value
        (``metafor::confint(rma.mv)``, ``lme4::confint(method = "profile")`` squared). Takes a few hundred
        likelihood evaluations (milliseconds for Reitsma; seconds for the GLMM).

        Returns
        -------
        DataFrame
            Index ``tau2_sens, tau2_spec, i2_sens_percent, i2_spec_percent``; columns ``estimate, ci_low,
            ci_high, method``.
        """
        return profile_table(self, alpha)

    def summary(self, digits: int = 4) -> str:
        """R-like text report: fixed effects in both parametrisations (estimate, SE, z, p, CI), summary estimates,
        variance components, ``rho``, ``I2``, logLik/AIC/BIC, HSROC parameters, warnings. ``print()`` it."""
        return summary_text(self, digits=digits)

    def to_frame(self) -> pd.DataFrame:
        """Same as :meth:`summary_frame`: one row per summary, variance component, HSROC parameter and ``I2``."""
        return self.summary_frame()

    def sroc_curve(self, fpr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """SROC curve ``(fpr, sens)`` (Rutter-Gatsonis form); default grid ``fpr = 0.001 .. 0.999``."""
        f = np.linspace(0.001, 0.999, 500) if fpr is None else np.asarray(fpr, dtype=float)
        if self.hsroc is None:
            return f, np.full_like(f, np.nan)
        a, b = _sroc_ab(self.mu, np.sqrt(np.diag(self.sigma)))
        return f, expit(a + b * logit(f))

    def confidence_region(self, *, level: float | None = None, n_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """``(fpr, sens)`` of the confidence ellipse for the summary point (default level ``1 - alpha``)."""
        return _ellipse(self.mu, self.cov_mu, 1 - self.alpha if level is None else level, n_points)

    def prediction_region(self, *, level: float | None = None, n_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """``(fpr, sens)`` of the prediction ellipse (covariance ``Sigma + cov(mu)``)."""
        return _ellipse(self.mu, self.sigma + self.cov_mu, 1 - self.alpha if level is None else level, n_points)

    def summary_frame(self) -> pd.DataFrame:
        """One row per summary (estimates, CIs), then variance components, HSROC parameters and I2."""
        rows = [e.summary_frame() for e in (self.sensitivity, self.specificity, self.lr_positive,
                                              self.lr_negative, self.dor, self.auc)]
        out = pd.concat(rows, ignore_index=True)
        extra = {"tau2_sens": self.tau2_sens, "tau2_spec": self.tau2_spec, "rho_sens_spec": self.rho,
                 "i2_sens_percent": self.heterogeneity.i2_sens_percent,
                 "i2_spec_percent": self.heterogeneity.i2_spec_percent,
                 "i2_bivariate_percent": self.heterogeneity.i2_bivariate_percent, "loglik": self.loglik}
        if self.hsroc is not None:
            extra.update({f"hsroc_{k}": v for k, v in asdict(self.hsroc).items()})
        more = pd.DataFrame([{"name": k, "estimate": v, "method": self.model, "alpha": self.alpha, "n": self.k}
                             for k, v in extra.items()])
        return pd.concat([out, more], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no per-cohort arrays; ``nan`` as ``None``): estimates, ``mu`` and variances in both
        parametrisations, Wald tables, fit statistics, correction, fallback and warnings."""
        return {
            "model": self.model, "k": self.k, "alpha": self.alpha, "converged": self.converged,
            "estimates": {e.name: e.to_dict() for e in (self.sensitivity, self.specificity, self.lr_positive,
                                                          self.lr_negative, self.dor, self.auc)},
            "mu_logit": self.mu.tolist(), "cov_mu": self.cov_mu.tolist(), "sigma": self.sigma.tolist(),
            "tau2_sens": self.tau2_sens, "tau2_spec": self.tau2_spec,
            "rho_sens_spec": None if np.isnan(self.rho) else self.rho,
            "hsroc": None if self.hsroc is None else asdict(self.hsroc),
            "heterogeneity": json_safe(asdict(self.heterogeneity)), "loglik": self.loglik, "n_params": self.n_params,
            "rho_fixed": self.rho_fixed, "se_method": self.se_method, "correction": self.correction,
            "correction_rule": self.correction_rule, "corrected": list(self.corrected),
            "fallback": self.fallback, "warnings": list(self.warnings),
            "coefficients": {"sens_spec": json_safe(self.coef_table().reset_index()),
                             "sens_fpr": json_safe(self.coef_table("sens_fpr").reset_index())},
            "mu_logit_fpr": self.mu_fpr.tolist(), "cov_mu_fpr": self.cov_mu_fpr.tolist(),
            "tau2_fpr": self.tau2_fpr, "rho_sens_fpr": None if np.isnan(self.rho) else -self.rho,
            "fit_statistics": json_safe(self.fit_statistics()),
        }


def _sroc_ab(mu: np.ndarray, sd: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the SROC line in (logit FPR, logit sens): ``a = mu_A + b mu_B``, ``b = sd_A/sd_B``."""
    b = sd[0] / sd[1]
    return float(mu[0] + b * mu[1]), float(b)


def sroc_auc(mu: np.ndarray, sd: np.ndarray) -> float:
    """Area under the Rutter-Gatsonis SROC curve over FPR in (0, 1)."""
    a, b = _sroc_ab(mu, sd)
    # substitute FPR = expit(x): dFPR = expit(x) expit(-x) dx, integrand smooth on the real line
    val, _ = integrate.quad(lambda x: expit(a + b * x) * expit(x) * expit(-x), -np.inf, np.inf,
                            epsabs=1e-12, epsrel=1e-10, limit=200)
    return float(val)


def hsroc_parameters(mu: np.ndarray, sigma: np.ndarray) -> HsrocParameters:
    """Harbord et al. (2007) conversion of (mu, Sigma) in (logit sens, logit spec) to HSROC parameters."""
    sa, sb = np.sqrt(sigma[0, 0]), np.sqrt(sigma[1, 1])
    sab = sigma[0, 1]
    r = np.sqrt(sb / sa)
    return HsrocParameters(
        lambda_=float(r * mu[0] + mu[1] / r),
        theta=float(0.5 * (r * mu[0] - mu[1] / r)),
        beta=float(np.log(sb / sa)),
        sigma2_alpha=float(2 * (sa * sb + sab)),
        sigma2_theta=float(0.5 * (sa * sb - sab)),
    )


def _ellipse(centre: np.ndarray, cov: np.ndarray, level: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < level < 1:
        raise ConfigError(f"level must lie in (0, 1); got {level!r}")
    t = np.linspace(0, 2 * np.pi, n)
    r = np.sqrt(stats.chi2.ppf(level, 2))
    chol = np.linalg.cholesky(cov + np.eye(2) * 1e-14)
    pts = centre[:, None] + r * chol @ np.vstack([np.cos(t), np.sin(t)])
    return expit(-pts[1]), expit(pts[0])


def heterogeneity(sigma: np.ndarray, within_var: np.ndarray) -> Heterogeneity:
    """Per-logit and bivariate I2 in percent (see module docstring).

    ``within_var`` (k, 2): the within-cohort variances of (logit sens, logit spec) **the model used** (Reitsma:
    its own continuity correction; GLMM, which needs none: 0.5 added to cohorts with a zero cell).
    """
    v = np.asarray(within_var, dtype=float)
    k = v.shape[0]
    s2 = []
    for j in range(2):
        w = 1 / v[:, j]
        s2.append(float((k - 1) * w.sum() / (w.sum() ** 2 - np.sum(w**2))) if k > 1 else float("nan"))
    t1, t2 = sigma[0, 0], sigma[1, 1]
    det = max(float(np.linalg.det(sigma)), 0.0)
    return Heterogeneity(
        i2_sens_percent=float(100 * t1 / (t1 + s2[0])), i2_spec_percent=float(100 * t2 / (t2 + s2[1])),
        i2_bivariate_percent=float(100 * np.sqrt(det) / (np.sqrt(det) + np.sqrt(s2[0] * s2[1]))),
        typical_within_var=(s2[0], s2[1]),
    )


def build_result(
    fit: BivariateFit,
    counts: Counts,
    *,
    alpha: float,
    correction: float,
    correction_rule: str,
    corrected: tuple[str, ...],
    fallback: str,
    warnings_: tuple[str, ...],
    within_var: np.ndarray,
    ci_method: CiMethod = "delta",
    n_sim: int = 10000,
    seed: int = 0,
) -> BivariateResult:
    """Turn an intercept-only :class:`BivariateFit` into a :class:`BivariateResult`."""
    if fit.coef.shape[1] != 1:
        raise ConfigError("summaries need an intercept-only fit; use meta_regression for covariates")
    if ci_method not in ("delta", "simulation"):
        raise ConfigError(f"ci_method={ci_method!r} is not valid; choose 'delta' or 'simulation'")
    mu = fit.coef[:, 0].copy()
    cov = fit.cov_coef
    se = np.sqrt(np.diag(cov))
    z = stats.norm.ppf(1 - alpha / 2)
    k = counts.k
    sens_p, spec_p = expit(mu[0]), expit(mu[1])
    method = f"{fit.model}-wald-logit"

    def prop(name: str, j: int) -> Estimate:
        return Estimate(name, float(expit(mu[j])), float(expit(mu[j] - z * se[j])), float(expit(mu[j] + z * se[j])),
                        method, alpha, k, "", {"scale": LOGITS[j], "mu": float(mu[j]), "se": float(se[j])})

    funcs = {
        "lr_positive": (lambda m: np.log(expit(m[..., 0])) - np.log(expit(-m[..., 1])), np.array([1 - sens_p, spec_p])),
        "lr_negative": (lambda m: np.log(expit(-m[..., 0])) - np.log(expit(m[..., 1])), np.array([-sens_p, -(1 - spec_p)])),
        "dor": (lambda m: m[..., 0] + m[..., 1], np.array([1.0, 1.0])),
    }
    ratio = {}
    draws = None
    if ci_method == "simulation":
        draws = np.random.default_rng(seed).multivariate_normal(mu, cov, size=n_sim)
    for name, (f, grad) in funcs.items():
        val = float(f(mu))
        if draws is None:
            s = float(np.sqrt(grad @ cov @ grad))
            lo, hi = val - z * s, val + z * s
            meth, extra = f"{fit.model}-delta-log", {"scale": _LOG_SCALE[name], "mu": val, "se": s}
        else:
            lo, hi = np.quantile(f(draws), [alpha / 2, 1 - alpha / 2])
            meth, extra = f"{fit.model}-simulation-{n_sim}", {"scale": _LOG_SCALE[name], "mu": val, "seed": seed}
        ratio[name] = Estimate(name, float(np.exp(val)), float(np.exp(lo)), float(np.exp(hi)), meth, alpha, k, "", extra)
    sd = np.sqrt(np.diag(fit.sigma))
    hs = None
    auc = Estimate("auc", float("nan"), float("nan"), float("nan"), "sroc-rutter-gatsonis", alpha, k,
                   "undefined: a between-cohort variance is zero, so the SROC slope is not identified")
    if np.all(sd > 1e-8):
        hs = hsroc_parameters(mu, fit.sigma)
        auc = _auc_estimate(fit, mu, sd, alpha, k)
    return BivariateResult(
        model=fit.model, sensitivity=prop("sensitivity", 0), specificity=prop("specificity", 1),
        lr_positive=ratio["lr_positive"], lr_negative=ratio["lr_negative"], dor=ratio["dor"], auc=auc,
        mu=mu, cov_mu=cov, sigma=fit.sigma, hsroc=hs, heterogeneity=heterogeneity(fit.sigma, within_var),
        loglik=fit.loglik, n_params=fit.n_params, k=k, converged=fit.converged, rho_fixed=fit.rho_fixed,
        se_method=fit.se_method, correction=correction, correction_rule=correction_rule, corrected=corrected,
        fallback=fallback, warnings=warnings_, alpha=alpha, labels=counts.labels,
        counts=np.column_stack([counts.tp, counts.fp, counts.fn, counts.tn]).astype(int),
        cov_eta=fit.cov_eta, cov_mu_eta=fit.cov_mu_eta,
    )


def _auc_estimate(fit: BivariateFit, mu: np.ndarray, sd: np.ndarray, alpha: float, k: int) -> Estimate:
    val = sroc_auc(mu, sd)
    note = ""
    # joint covariance of (mu_A, mu_B, log sd_A, log sd_B)
    cov4 = np.zeros((4, 4))
    cov4[:2, :2] = fit.cov_coef
    if fit.cov_eta is not None:
        cov4[2:, 2:] = fit.cov_eta[:2, :2]
        if fit.cov_mu_eta is not None:
            cov4[:2, 2:] = fit.cov_mu_eta[:, :2]
            cov4[2:, :2] = fit.cov_mu_eta[:, :2].T
    else:
        tau2 = np.diag(fit.sigma)
        why = (f"a between-cohort variance is at or near 0 (tau2 = {tau2[0]:.3g}, {tau2[1]:.3g})"
               if np.any(np.sqrt(tau2) <= 1e-4) else
               "the correlation is at +-1" if not fit.rho_fixed and abs(fit.sigma[0, 1]) >= (1 - 1e-6) * np.sqrt(tau2.prod())
               else "the information matrix of the variance parameters is not invertible")
        note = f"CI ignores the uncertainty in tau_sens and tau_spec ({why}); it reflects the uncertainty in mu only"
    if fit.rho_fixed:
        note = (note + "; " if note else "") + "rho fixed at 0 and treated as known"
    x0 = np.concatenate([mu, np.log(sd)])
    g = np.empty(4)
    for i in range(4):
        h = 1e-5
        e = np.zeros(4)
        e[i] = h
        g[i] = (logit(sroc_auc((x0 + e)[:2], np.exp((x0 + e)[2:]))) - logit(sroc_auc((x0 - e)[:2], np.exp((x0 - e)[2:])))) / (2 * h)
    s = float(np.sqrt(max(g @ cov4 @ g, 0.0)))
    z = stats.norm.ppf(1 - alpha / 2)
    return Estimate("auc", val, float(expit(logit(val) - z * s)), float(expit(logit(val) + z * s)),
                    "sroc-rutter-gatsonis-delta-logit", alpha, k, note,
                    {"scale": "logit_auc", "mu": float(logit(val)), "se": s})
