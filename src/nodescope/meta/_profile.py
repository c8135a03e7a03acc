"""Confidence intervals for between-cohort variances, and log-likelihoods of the univariate model.

**Univariate (Q-profile, Viechtbauer 2007).** The generalised Cochran statistic
``Q(tau2) = sum w_i (y_i - mu(tau2))^2`` with ``w_i = 1/(v_i + tau2)`` follows ``chi2_(k-1)`` at the true
``tau2`` and falls as ``tau2`` grows; the interval is ``{tau2 : chi2_(k-1, alpha/2) <= Q(tau2) <=
chi2_(k-1, 1-alpha/2)}``, a bound truncated at 0 when ``Q(0)`` is already below its quantile (as
``metafor::confint(rma)``, its default method). ``I2`` and ``H2`` bounds follow from the ``tau2`` bounds with the
typical within-cohort variance ``s2`` (``I2 = 100 tau2 / (tau2 + s2)``, ``H2 = (tau2 + s2) / s2``), as metafor.

**Bivariate (profile likelihood).** For ``tau2_sens`` (or ``tau2_spec``) fixed at ``t``, the (restricted, for
REML) log-likelihood is maximised over the other parameters (the other variance and the correlation; for the
GLMM also ``mu``); the interval is ``{t : 2 (l_max - l_prof(t)) <= chi2_1(1 - alpha)}``, found by Brent's
method, with 0 as the lower bound when the profile at ``t = 0`` is still inside (as ``metafor::confint(rma.mv)``
and ``lme4::confint(method = "profile")``, which bound the standard deviation ``tau``: the same interval squared).
With ``rho`` fixed at 0 (the fallback) it stays 0 in the profile.

**Log-likelihoods.** Univariate ML: ``-1/2 (k log 2 pi + sum log(v_i + tau2) + sum w_i r_i^2)``; REML adds
``log(sum x x') - log(sum w_i)`` inside and uses ``k - 1`` for ``k`` in the ``2 pi`` term (metafor's convention,
with ``+1/2 log|X'X|``). ``AIC = -2 l + 2 n_par``, ``BIC = -2 l + n_par log(n)`` with ``n_par`` counting the fixed
effects and the variance parameters and ``n`` the number of observations (``k``; ``2k`` for the bivariate
models), less the number of fixed effects for REML (metafor's convention; lme4 for the GLMM).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from nodescope.errors import ConfigError
from nodescope.meta._counts import LOGITS, Counts, measure_data
from nodescope.meta._glmm import GlmmProblem
from nodescope.meta._reitsma import _Problem

__all__ = ["bivariate_profile_ci", "information_criteria", "model_loglik", "profile_bounds", "q_profile_tau2", "univariate_loglik"]


def _q_gen(y: np.ndarray, v: np.ndarray, tau2: float) -> float:
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


def _solve_decreasing(f: Callable[[float], float], target: float, start: float) -> float:
    """The ``x >= 0`` with ``f(x) = target`` for a decreasing ``f``, given ``f(start) >= target``."""
    hi = max(start, 1e-4)
    for _ in range(200):
        if f(hi) < target:
            break
        hi *= 2
    else:
        return math.inf
    return float(optimize.brentq(lambda t: f(t) - target, start, hi, xtol=1e-12, rtol=1e-12, maxiter=500))


def q_profile_tau2(y: np.ndarray, v: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """Q-profile ``1 - alpha`` interval of ``tau2`` (module docstring). Needs ``k >= 2``."""
    y, v = np.asarray(y, dtype=float), np.asarray(v, dtype=float)
    k = y.size
    q_lo = stats.chi2.ppf(1 - alpha / 2, k - 1)  # Q(tau2_low) = upper quantile
    q_hi = stats.chi2.ppf(alpha / 2, k - 1)
    q0 = _q_gen(y, v, 0.0)
    lo = 0.0 if q0 < q_lo else _solve_decreasing(lambda t: _q_gen(y, v, t), q_lo, 0.0)
    hi = 0.0 if q0 < q_hi else _solve_decreasing(lambda t: _q_gen(y, v, t), q_hi, lo)
    return lo, hi


def univariate_loglik(y: np.ndarray, v: np.ndarray, tau2: float, *, reml: bool) -> float:
    """Log-likelihood of ``y_i ~ N(mu, v_i + tau2)`` at ``tau2`` (``mu`` at its GLS estimate); metafor's constants."""
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    rss = np.sum(w * (y - mu) ** 2)
    k = y.size
    if not reml:
        return float(-0.5 * (k * np.log(2 * np.pi) + np.sum(np.log(v + tau2)) + rss))
    return float(-0.5 * ((k - 1) * np.log(2 * np.pi) + np.sum(np.log(v + tau2)) + np.log(np.sum(w)) + rss)
                 + 0.5 * np.log(k))


def information_criteria(loglik: float, n_par: int, n_obs: int, n_fixed: int, *, reml: bool) -> dict[str, float]:
    """``{"loglik", "deviance", "aic", "bic", "n_par", "n_obs"}`` (module docstring); ``n_obs`` before REML's loss."""
    n = n_obs - n_fixed if reml else n_obs
    return {"loglik": float(loglik), "deviance": float(-2 * loglik), "aic": float(-2 * loglik + 2 * n_par),
            "bic": float(-2 * loglik + n_par * np.log(n)), "n_par": int(n_par), "n_obs": int(n)}


def profile_bounds(profile: Callable[[float], float], estimate: float, loglik_max: float,
                   alpha: float = 0.05) -> tuple[float, float]:
    """Profile-likelihood interval of a non-negative parameter.

    ``profile(t)`` is the log-likelihood maximised over the other parameters with the parameter at ``t``.
    Returns the ``t`` where ``2 (loglik_max - profile(t)) = chi2_1(1 - alpha)`` on either side of ``estimate``
    (0 when the profile at 0 is still inside; ``inf`` when no upper crossing is found below ``1e6``).
    """
    crit = stats.chi2.ppf(1 - alpha, 1) / 2

    def dev(t: float) -> float:
        return loglik_max - profile(t) - crit

    est = max(float(estimate), 0.0)
    lo = 0.0
    if est > 0 and dev(0.0) > 0:
        lo = float(optimize.brentq(dev, 0.0, est, xtol=1e-9, rtol=1e-7))
    hi_b = max(est, 1e-3) * 2
    while dev(hi_b) < 0:
        hi_b *= 2
        if hi_b > 1e6:
            return lo, math.inf
    hi = float(optimize.brentq(dev, est, hi_b, xtol=1e-9, rtol=1e-7))
    return lo, hi


def _sigma(j: int, t: float, log_tau_other: float, z_rho: float) -> np.ndarray:
    """Sigma with ``tau2_j = t``, the other SD ``exp(log_tau_other)`` and correlation ``tanh(z_rho)``."""
    tj, to = math.sqrt(max(t, 0.0)), math.exp(log_tau_other)
    taus = (tj, to) if j == 0 else (to, tj)
    off = math.tanh(z_rho) * taus[0] * taus[1]
    return np.array([[taus[0] ** 2, off], [off, taus[1] ** 2]])


def bivariate_profile_ci(
    loglik: Callable[[np.ndarray, np.ndarray], float],
    mu: np.ndarray,
    sigma: np.ndarray,
    *,
    profile_mu: bool,
    rho_fixed: bool,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Profile-likelihood intervals of ``tau2_sens`` and ``tau2_spec`` (module docstring).

    ``loglik(mu, sigma)`` is the model's (restricted) log-likelihood; for the normal model, whose ``mu`` is profiled
    in closed form (GLS), it ignores ``mu`` and ``profile_mu`` is ``False``; for the GLMM ``mu`` is maximised too.
    """
    # L-BFGS-B's tiny BLAS calls run several times slower when BLAS spreads them over threads
    with threadpool_limits(limits=1, user_api="blas"):
        return _bivariate_profile_ci(loglik, mu, sigma, profile_mu=profile_mu, rho_fixed=rho_fixed, alpha=alpha)


def _bivariate_profile_ci(loglik: Callable[[np.ndarray, np.ndarray], float], mu: np.ndarray, sigma: np.ndarray, *,
                          profile_mu: bool, rho_fixed: bool, alpha: float) -> dict[str, tuple[float, float]]:
    tau = np.sqrt(np.maximum(np.diag(sigma), 0.0))
    rho = float(sigma[0, 1] / (tau[0] * tau[1])) if np.all(tau > 0) else 0.0
    ll_max = loglik(mu, sigma)
    out = {}
    for j, name in enumerate(("tau2_sens", "tau2_spec")):
        z0 = [math.log(max(tau[1 - j], 1e-4))] + ([] if rho_fixed else [math.atanh(float(np.clip(rho, -0.99, 0.99)))])
        x0 = np.concatenate([mu, z0]) if profile_mu else np.asarray(z0)
        prof = _Profile(loglik, j, mu, x0, profile_mu=profile_mu, rho_fixed=rho_fixed)
        ll_hat = max(ll_max, prof(float(sigma[j, j])))
        prof.x = x0.copy()
        out[name] = profile_bounds(prof, float(sigma[j, j]), ll_hat, alpha)
    return out


class _Profile:
    """``t -> max over the other parameters of loglik`` with ``tau2_j = t``, warm-started at the last maximum."""

    def __init__(self, loglik: Callable[[np.ndarray, np.ndarray], float], j: int, mu: np.ndarray, x0: np.ndarray,
                 *, profile_mu: bool, rho_fixed: bool) -> None:
        self.loglik, self.j, self.mu, self.x = loglik, j, mu, x0.copy()
        self.n_mu = 2 if profile_mu else 0
        self.rho_fixed = rho_fixed
        self.bounds = [(None, None)] * self.n_mu + [(-15.0, 5.0)] + ([] if rho_fixed else [(-6.0, 6.0)])

    def _negll(self, x: np.ndarray, t: float) -> float:
        m = x[: self.n_mu] if self.n_mu else self.mu
        zr = 0.0 if self.rho_fixed else x[self.n_mu + 1]
        val = self.loglik(m, _sigma(self.j, t, x[self.n_mu], zr))
        return -val if np.isfinite(val) else 1e300

    def __call__(self, t: float) -> float:
        res = optimize.minimize(self._negll, self.x, args=(t,), method="L-BFGS-B", bounds=self.bounds,
                                options={"ftol": 1e-13, "gtol": 1e-8, "maxiter": 500})
        self.x = res.x
        return float(-res.fun)


def model_loglik(model: str, counts: Counts, correction: float,
                 correction_rule: str) -> tuple[Callable[[np.ndarray, np.ndarray], float], bool]:
    """The log-likelihood ``f(mu, sigma)`` of a fitted intercept-only model named ``model``, and whether ``mu`` is
    a free parameter of it (GLMM) or profiled out in closed form (Reitsma, GLS)."""
    X = np.ones((counts.k, 1))
    if model.startswith("reitsma-"):
        y, s, _ = measure_data(counts, LOGITS, correction, correction_rule)  # type: ignore[arg-type]
        prob = _Problem(y, s, X, reml=model == "reitsma-reml")
        return (lambda _m, sig: prob.loglik(sig)), False
    if model.startswith("glmm-"):
        n_nodes = 1 if model == "glmm-laplace" else int(model.removeprefix("glmm-aghq"))
        gp = GlmmProblem(counts, X, n_nodes)
        return (lambda m, sig: gp.loglik(np.asarray(m, dtype=float), sig)), True
    raise ConfigError(f"no log-likelihood for model {model!r}")
