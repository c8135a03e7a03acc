"""Bivariate normal-approximation model of Reitsma et al. (2005) by REML or ML (the model of R ``mada::reitsma``).

Model, for cohort ``i`` with ``y_i = (logit sens_i, logit spec_i)`` from continuity-corrected counts::

    y_i ~ N(B x_i, Sigma + S_i),   S_i = diag(1/TP + 1/FN, 1/TN + 1/FP)

``B`` (2 x p) holds the coefficients of the covariates ``x_i`` (intercept first) for each logit. For a given
``Sigma`` the coefficients are the GLS estimate, so the (restricted) log-likelihood is maximised over the
Cholesky factor of ``Sigma`` alone; ``cov(B) = (sum D_i' W_i D_i)^-1`` with ``W_i = (Sigma + S_i)^-1``, as in
metafor. Validated against ``metafor::rma.mv(yi, V, mods = ~ 0 + outcome, random = ~ outcome | study,
struct = "UN", method = "REML"/"ML")`` (tests/meta/reference/meta_reference.R, block 2); mada itself was not run
(not installed), so agreement with ``mada::reitsma`` output is not shown. Only mada's continuity-correction
convention is taken from it, read from its source (``R/reitsma.R``).
"""

from __future__ import annotations

import logging

import numpy as np

from nodescope.meta._fit import (
    BivariateFit,
    chol_from_sigma,
    eta_from_sigma,
    minimize_bounded,
    num_hessian,
    sigma_from_chol,
    sigma_from_eta,
)

logger = logging.getLogger(__name__)
_LOG2PI = np.log(2 * np.pi)


class _Problem:
    """Vectorised (restricted) log-likelihood of the bivariate normal model for a fixed design."""

    def __init__(self, y: np.ndarray, s: np.ndarray, X: np.ndarray, reml: bool) -> None:
        self.y, self.s, self.X, self.reml = y, s, X, reml
        self.k, self.p = X.shape
        self.xx = np.einsum("ia,ib->iab", X, X)  # (k, p, p)
        _sign, logdet_xtx = np.linalg.slogdet(X.T @ X)
        self.logdet_xtx = logdet_xtx

    def gls(self, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        v11 = sigma[0, 0] + self.s[:, 0]
        v22 = sigma[1, 1] + self.s[:, 1]
        v12 = np.full(self.k, sigma[0, 1])
        det = v11 * v22 - v12 * v12
        w11, w22, w12 = v22 / det, v11 / det, -v12 / det
        p = self.p
        a = np.empty((2 * p, 2 * p))
        a[:p, :p] = np.einsum("i,iab->ab", w11, self.xx)
        a[:p, p:] = np.einsum("i,iab->ab", w12, self.xx)
        a[p:, :p] = a[:p, p:].T
        a[p:, p:] = np.einsum("i,iab->ab", w22, self.xx)
        y1, y2 = self.y[:, 0], self.y[:, 1]
        c = np.concatenate([self.X.T @ (w11 * y1 + w12 * y2), self.X.T @ (w12 * y1 + w22 * y2)])
        beta = np.linalg.solve(a, c)
        return beta, a, np.stack([w11, w12, w22]), det

    def loglik(self, sigma: np.ndarray) -> float:
        beta, a, w, det = self.gls(sigma)
        if np.any(det <= 0):
            return -np.inf
        p = self.p
        r1 = self.y[:, 0] - self.X @ beta[:p]
        r2 = self.y[:, 1] - self.X @ beta[p:]
        quad = np.sum(w[0] * r1 * r1 + 2 * w[1] * r1 * r2 + w[2] * r2 * r2)
        n = 2 * self.k
        if not self.reml:
            return float(-0.5 * (n * _LOG2PI + np.sum(np.log(det)) + quad))
        _sign, logdet_a = np.linalg.slogdet(a)
        return float(-0.5 * ((n - 2 * p) * _LOG2PI + np.sum(np.log(det)) + quad + logdet_a) + self.logdet_xtx)


def _start_sigma(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Moment start: DerSimonian-Laird variance of each logit, Pearson correlation of the logits."""
    tau2 = []
    for j in range(2):
        w = 1 / s[:, j]
        mu = np.sum(w * y[:, j]) / w.sum()
        q = np.sum(w * (y[:, j] - mu) ** 2)
        c = w.sum() - np.sum(w**2) / w.sum()
        tau2.append(max((q - (len(w) - 1)) / c, 0.05))
    r = np.corrcoef(y[:, 0], y[:, 1])[0, 1] if y.shape[0] > 2 else 0.0
    r = float(np.clip(np.nan_to_num(r), -0.8, 0.8))
    off = r * np.sqrt(tau2[0] * tau2[1])
    return np.array([[tau2[0], off], [off, tau2[1]]])


def fit_reitsma(
    y: np.ndarray, s: np.ndarray, X: np.ndarray, names: tuple[str, ...], *, method: str, rho_fixed: bool = False
) -> BivariateFit:
    """Fit the bivariate normal model (internal). ``method`` is ``"REML"`` or ``"ML"``."""
    prob = _Problem(y, s, X, reml=(method == "REML"))

    def nll(theta: np.ndarray) -> float:
        val = prob.loglik(sigma_from_chol(theta, rho_fixed))
        return -val if np.isfinite(val) else 1e300

    start = _start_sigma(y, s)
    if rho_fixed:
        start[0, 1] = start[1, 0] = 0.0
    x0 = chol_from_sigma(start, rho_fixed)
    bounds: list[tuple[float | None, float | None]] = (
        [(0.0, None), (0.0, None)] if rho_fixed else [(0.0, None), (None, None), (0.0, None)]
    )
    res = minimize_bounded(nll, x0, bounds)
    sigma = sigma_from_chol(res.x, rho_fixed)
    beta, a, _, _ = prob.gls(sigma)
    p = X.shape[1]
    cov_coef = np.linalg.inv(a)
    cov_eta = None
    tau = np.sqrt(np.diag(sigma))
    interior = bool(np.all(tau > 1e-4)) and (rho_fixed or abs(sigma[0, 1] / (tau[0] * tau[1])) < 1 - 1e-6)
    if interior:
        # covariance of eta = (log tau_sens, log tau_spec, atanh rho); with rho fixed at 0 only the two log taus
        # are free (the rho row and column stay 0), as the GLMM does
        n_eta = 2 if rho_fixed else 3
        h = num_hessian(lambda e: -prob.loglik(sigma_from_eta(np.append(e, 0.0) if rho_fixed else e)),
                        eta_from_sigma(sigma)[:n_eta])
        try:
            inv = np.linalg.inv(h)
            if np.any(np.diag(inv) <= 0):
                raise np.linalg.LinAlgError
            cov_eta = np.zeros((3, 3))
            cov_eta[:n_eta, :n_eta] = inv
        except np.linalg.LinAlgError:
            cov_eta = None
    n_var = 2 if rho_fixed else 3
    return BivariateFit(
        model=f"reitsma-{method.lower()}",
        coef=np.vstack([beta[:p], beta[p:]]),
        cov_coef=cov_coef,
        sigma=sigma,
        cov_eta=cov_eta,
        cov_mu_eta=np.zeros((2 * p, 3)) if cov_eta is not None else None,
        loglik=prob.loglik(sigma),
        n_params=2 * p + n_var,
        converged=bool(res.success),
        names=names,
        rho_fixed=rho_fixed,
        se_method="GLS: cov(B) = (sum D_i' (Sigma + S_i)^-1 D_i)^-1 at the estimated Sigma",
        message=str(res.message),
        details={"nit": int(res.nit), "nfev": int(res.nfev)},
    )


def moment_start(y: np.ndarray, s: np.ndarray, X: np.ndarray, names: tuple[str, ...], *,
                 rho_fixed: bool = False) -> BivariateFit:
    """Starting values without optimisation: the moment ``Sigma`` of :func:`_start_sigma` and the GLS ``B`` at it."""
    sigma = _start_sigma(y, s)
    if rho_fixed:
        sigma[0, 1] = sigma[1, 0] = 0.0
    beta, a, _, _ = _Problem(y, s, X, reml=False).gls(sigma)
    p = X.shape[1]
    return BivariateFit(model="moment-start", coef=np.vstack([beta[:p], beta[p:]]), cov_coef=np.linalg.inv(a),
                        sigma=sigma, cov_eta=None, cov_mu_eta=None, loglik=float("nan"), n_params=0, converged=True,
                        names=names, rho_fixed=rho_fixed, se_method="")
