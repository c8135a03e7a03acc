"""Exact bivariate binomial GLMM (logit sens and spec with correlated random effects), Laplace or AGHQ.

Model, for cohort ``i``::

    TP_i ~ Bin(TP_i + FN_i, expit(x_i' beta_sens + b_i1)),  TN_i ~ Bin(TN_i + FP_i, expit(x_i' beta_spec + b_i2)),
    b_i = L u_i ~ N(0, Sigma = L L'),  u_i ~ N(0, I_2)

(Chu & Cole 2006; Harbord et al. 2007; the model of Stata metandi and of
``lme4::glmer(cbind(events, n - events) ~ 0 + sens + spec + (0 + sens + spec | study), family = binomial)``).
Zero cells need no correction. The marginal likelihood of each cohort is a 2-D integral over ``u_i``; it is
approximated around the conditional mode ``u_i*`` (found by Newton's method) either by the Laplace approximation
(lme4's ``nAGQ = 1``) or by adaptive Gauss-Hermite quadrature with ``n_nodes`` per dimension (``n_nodes = 1`` is
the Laplace approximation). The approximate log-likelihood is maximised over ``(beta, L)`` by L-BFGS-B with
``L = [[a, 0], [b, c]]``, ``a, c >= 0`` (so boundary fits with ``rho = +-1`` or ``tau = 0`` are reachable, as in
lme4). Standard errors come from the **observed** information: the inverse of a central-difference Hessian of the
negative approximate log-likelihood over ``(beta, log tau_sens, log tau_spec, atanh rho)``, as lme4's default
``vcov`` (which also inverts a finite-difference Hessian over all parameters).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import gammaln, logsumexp

from nodescope.meta._counts import Counts
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


class GlmmProblem:
    """Approximate marginal log-likelihood of the bivariate binomial GLMM for one design."""

    def __init__(self, counts: Counts, X: np.ndarray, n_nodes: int = 1) -> None:
        self.e = np.column_stack([counts.tp, counts.tn])
        self.n = np.column_stack([counts.tp + counts.fn, counts.tn + counts.fp])
        self.X = X
        self.k, self.p = X.shape
        self.const = float(np.sum(gammaln(self.n + 1) - gammaln(self.e + 1) - gammaln(self.n - self.e + 1)))
        self.u = np.zeros((self.k, 2))
        self.n_nodes = n_nodes
        if n_nodes > 1:
            z, w = np.polynomial.hermite.hermgauss(n_nodes)
            zz = np.array(np.meshgrid(z, z, indexing="ij")).reshape(2, -1).T  # (q, 2)
            ww = np.outer(w, w).ravel()
            self.nodes = zz
            self.log_w = np.log(ww) + np.sum(zz**2, axis=1)

    def _h(self, m: np.ndarray, lab: tuple[float, float, float], u: np.ndarray) -> np.ndarray:
        """``log p(y | u) - u'u / 2`` without the binomial constants; ``u`` is ``(..., k, 2)``."""
        a, b, c = lab
        eta1 = m[:, 0] + a * u[..., 0]
        eta2 = m[:, 1] + b * u[..., 0] + c * u[..., 1]
        ll = (self.e[:, 0] * eta1 - self.n[:, 0] * np.logaddexp(0.0, eta1)
              + self.e[:, 1] * eta2 - self.n[:, 1] * np.logaddexp(0.0, eta2))
        return ll - 0.5 * np.sum(u * u, axis=-1)

    def modes(self, m: np.ndarray, lab: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Conditional modes ``u*`` (k, 2) and the 2x2 negative Hessians ``H = L'DL + I`` (k, 2, 2) there."""
        a, b, c = lab
        u = self.u.copy()
        h_old = self._h(m, lab, u)
        done = False
        for _ in range(100):
            eta1 = m[:, 0] + a * u[:, 0]
            eta2 = m[:, 1] + b * u[:, 0] + c * u[:, 1]
            p1, p2 = 1 / (1 + np.exp(-eta1)), 1 / (1 + np.exp(-eta2))
            g1b, g2b = self.e[:, 0] - self.n[:, 0] * p1, self.e[:, 1] - self.n[:, 1] * p2
            d1, d2 = self.n[:, 0] * p1 * (1 - p1), self.n[:, 1] * p2 * (1 - p2)
            g = np.column_stack([a * g1b + b * g2b - u[:, 0], c * g2b - u[:, 1]])
            h11 = a * a * d1 + b * b * d2 + 1
            h12 = b * c * d2
            h22 = c * c * d2 + 1
            det = h11 * h22 - h12 * h12
            step = np.column_stack([(h22 * g[:, 0] - h12 * g[:, 1]) / det, (h11 * g[:, 1] - h12 * g[:, 0]) / det])
            t = np.ones(self.k)
            new = u + step
            h_new = self._h(m, lab, new)
            for _ in range(30):
                worse = h_new < h_old - 1e-12
                if not worse.any():
                    break
                t[worse] *= 0.5
                new[worse] = u[worse] + t[worse, None] * step[worse]
                h_new = self._h(m, lab, new)
            u, h_old = new, h_new
            # one more (quadratically convergent) step after |step| < 1e-9 leaves u at machine precision: the
            # log-det term is first-order in any error of u, and the numerical Hessian divides that error by h^2
            if done:
                break
            done = bool(np.max(np.abs(step)) < 1e-9)
        eta1 = m[:, 0] + a * u[:, 0]
        eta2 = m[:, 1] + b * u[:, 0] + c * u[:, 1]
        p1, p2 = 1 / (1 + np.exp(-eta1)), 1 / (1 + np.exp(-eta2))
        d1, d2 = self.n[:, 0] * p1 * (1 - p1), self.n[:, 1] * p2 * (1 - p2)
        H = np.empty((self.k, 2, 2))
        H[:, 0, 0] = a * a * d1 + b * b * d2 + 1
        H[:, 0, 1] = H[:, 1, 0] = b * c * d2
        H[:, 1, 1] = c * c * d2 + 1
        self.u = u
        return u, H

    def loglik(self, beta: np.ndarray, sigma: np.ndarray) -> float:
        p = self.p
        m = np.column_stack([self.X @ beta[:p], self.X @ beta[p:]])
        lab = tuple(chol_from_sigma(sigma, rho_fixed=False))
        u, H = self.modes(m, lab)  # type: ignore[arg-type]
        det = H[:, 0, 0] * H[:, 1, 1] - H[:, 0, 1] ** 2
        if self.n_nodes == 1:
            return float(np.sum(self._h(m, lab, u)) - 0.5 * np.sum(np.log(det)) + self.const)  # type: ignore[arg-type]
        # C = chol(H^-1): lower triangular with C C' = H^-1
        inv11, inv12, inv22 = H[:, 1, 1] / det, -H[:, 0, 1] / det, H[:, 0, 0] / det
        c11 = np.sqrt(inv11)
        c21 = inv12 / c11
        c22 = np.sqrt(inv22 - c21 * c21)
        z = np.sqrt(2.0) * self.nodes  # (q, 2)
        uq = np.stack([u[None, :, 0] + c11[None] * z[:, 0:1],
                       u[None, :, 1] + c21[None] * z[:, 0:1] + c22[None] * z[:, 1:2]], axis=-1)  # (q, k, 2)
        hq = self._h(m, lab, uq)  # type: ignore[arg-type]  # (q, k)
        per = logsumexp(hq + self.log_w[:, None], axis=0) + np.log(c11 * c22) - np.log(np.pi)
        return float(np.sum(per) + self.const)


def brute_force_loglik(counts: Counts, beta: np.ndarray, sigma: np.ndarray, *, n_grid: int = 801,
                       half_width: float = 8.0) -> float:
    """Marginal log-likelihood by a dense, non-adaptive 2-D grid over ``u`` (test reference; slow)."""
    prob = GlmmProblem(counts, np.ones((counts.k, 1)))
    g = np.linspace(-half_width, half_width, n_grid)
    du = g[1] - g[0]
    uu = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)  # (q, 2)
    m = np.column_stack([np.full(counts.k, beta[0]), np.full(counts.k, beta[1])])
    lab = tuple(chol_from_sigma(sigma, rho_fixed=False))
    total = prob.const
    for i in range(counts.k):
        sub = GlmmProblem(counts.subset(np.arange(counts.k) == i), np.ones((1, 1)))
        h = sub._h(m[i : i + 1], lab, uu[:, None, :])[:, 0]  # type: ignore[arg-type]
        total += logsumexp(h) + 2 * np.log(du) - np.log(2 * np.pi)
    return float(total)


def fit_glmm(counts: Counts, X: np.ndarray, names: tuple[str, ...], *, n_nodes: int = 1,
             start: BivariateFit | None = None, rho_fixed: bool = False) -> BivariateFit:
    """Fit the bivariate binomial GLMM (internal). ``n_nodes = 1``: Laplace; ``> 1``: AGHQ."""
    prob = GlmmProblem(counts, X, n_nodes)
    p = X.shape[1]
    n_b = 2 * p
    if start is not None:
        beta0 = start.coef.reshape(-1)
        sig0 = start.sigma.copy()
    else:
        beta0 = np.zeros(n_b)
        sig0 = np.eye(2)
    if rho_fixed:
        sig0[0, 1] = sig0[1, 0] = 0.0
    sig0 = sig0 + np.eye(2) * 1e-2
    x0 = np.concatenate([beta0, chol_from_sigma(sig0, rho_fixed)])

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:n_b], sigma_from_chol(x[n_b:], rho_fixed)

    def nll(x: np.ndarray) -> float:
        beta, sigma = unpack(x)
        val = prob.loglik(beta, sigma)
        return -val if np.isfinite(val) else 1e300

    bounds: list[tuple[float | None, float | None]] = [(None, None)] * n_b
    bounds += [(0.0, None), (0.0, None)] if rho_fixed else [(0.0, None), (None, None), (0.0, None)]
    res = minimize_bounded(nll, x0, bounds)
    beta, sigma = unpack(res.x)
    loglik = prob.loglik(beta, sigma)
    tau = np.sqrt(np.diag(sigma))
    rho = sigma[0, 1] / (tau[0] * tau[1]) if np.all(tau > 0) else 0.0
    interior = bool(np.all(tau > 1e-4)) and abs(rho) < 1 - 1e-6
    cov_eta = cov_mu_eta = None
    se_method = "observed information: inverse central-difference Hessian over (beta, log tau, atanh rho)"
    if interior:
        n_eta = 2 if rho_fixed else 3
        e0 = eta_from_sigma(sigma)[:n_eta]

        def nll_eta(z: np.ndarray) -> float:
            e = np.append(z[n_b:], 0.0) if rho_fixed else z[n_b:]
            return -prob.loglik(z[:n_b], sigma_from_eta(e))

        hess = num_hessian(nll_eta, np.concatenate([beta, e0]), rel_step=1e-3)
        try:
            full = np.linalg.inv(hess)
            if np.any(np.diag(full) <= 0):
                raise np.linalg.LinAlgError
            cov_coef = full[:n_b, :n_b]
            cov_eta = np.zeros((3, 3))
            cov_eta[:n_eta, :n_eta] = full[n_b:, n_b:]
            cov_mu_eta = np.zeros((n_b, 3))
            cov_mu_eta[:, :n_eta] = full[:n_b, n_b:]
        except np.linalg.LinAlgError:
            interior = False
    if not interior:
        hess = num_hessian(lambda bb: -prob.loglik(bb, sigma), beta, rel_step=1e-3)
        cov_coef = np.linalg.inv(hess)
        se_method = "observed information for beta with Sigma fixed at its boundary estimate"
    approx = "laplace" if n_nodes == 1 else f"aghq{n_nodes}"
    return BivariateFit(
        model=f"glmm-{approx}", coef=np.vstack([beta[:p], beta[p:]]), cov_coef=cov_coef, sigma=sigma,
        cov_eta=cov_eta, cov_mu_eta=cov_mu_eta, loglik=loglik, n_params=n_b + (2 if rho_fixed else 3),
        converged=bool(res.success), names=names, rho_fixed=rho_fixed, se_method=se_method,
        message=str(res.message), details={"nit": int(res.nit), "nfev": int(res.nfev), "n_nodes": n_nodes},
    )
