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
lme4). Standard errors come from the **observed** information: the inverse Hessian of the negative approximate
log-likelihood over ``(beta, log tau_sens, log tau_spec, atanh rho)``, as lme4's default ``vcov`` (which also
inverts a finite-difference Hessian over all parameters).

Speed (Laplace): the exact gradient of the Laplace log-likelihood (:meth:`GlmmProblem.laplace_grad`) drives
L-BFGS-B, and an interior optimum is finished by Newton steps (Hessian by central differences of that gradient),
so the estimates sit on a zero of the gradient whatever the start; a warm start from a nearby fit
(:class:`GlmmStart`, leave-one-out) reaches it by chord steps. AGHQ keeps central differences of the objective.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp

from nodescope.meta._counts import Counts
from nodescope.meta._fit import (
    BivariateFit,
    chol_from_sigma,
    eta_from_sigma,
    grad_hessian,
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
                worse = h_new < h_old - 1e-12 * (1 + np.abs(h_old))  # relative: h sums counts up to 1e4+
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

    def laplace_grad(self, beta: np.ndarray, lab: tuple[float, float, float]) -> tuple[float, np.ndarray]:
        """Laplace log-likelihood and its exact gradient over ``(beta_sens, beta_spec, a, b, c)``.

        Per cohort ``l = h(u*, theta) - log det(H(u*, theta)) / 2`` with ``H = L'DL + I`` and
        ``D = diag(n_j p_j (1 - p_j))``. Because ``dh/du = 0`` at the mode, ``dh/dtheta`` is the partial derivative;
        the log-det term depends on ``theta`` directly (through ``L``) and through ``D(eta(u*(theta), theta))``,
        with ``du*/dtheta = H^-1 dF/dtheta`` (implicit function theorem on ``F = L'g - u = 0``, ``g_j = e_j - n_j
        p_j``). With ``l_j`` the rows of ``L`` and ``q_j = l_j' H^-1 l_j``, the chain rule reduces to one 2-vector
        ``z = H^-1 sum_j w_j l_j``, ``w_j = -q_j n_j p_j (1 - p_j) (1 - 2 p_j) / 2``, per cohort (validated against
        central differences in tests/meta/test_glmm.py).
        """
        a, b, c = lab
        p = self.p
        m = np.column_stack([self.X @ beta[:p], self.X @ beta[p:]])
        u, H = self.modes(m, lab)
        det = H[:, 0, 0] * H[:, 1, 1] - H[:, 0, 1] ** 2
        i11, i12, i22 = H[:, 1, 1] / det, -H[:, 0, 1] / det, H[:, 0, 0] / det  # H^-1
        u1, u2 = u[:, 0], u[:, 1]
        eta1 = m[:, 0] + a * u1
        eta2 = m[:, 1] + b * u1 + c * u2
        p1, p2 = 1 / (1 + np.exp(-eta1)), 1 / (1 + np.exp(-eta2))
        g1, g2 = self.e[:, 0] - self.n[:, 0] * p1, self.e[:, 1] - self.n[:, 1] * p2
        d1, d2 = self.n[:, 0] * p1 * (1 - p1), self.n[:, 1] * p2 * (1 - p2)
        # H^-1 l_1 with l_1 = (a, 0); H^-1 l_2 with l_2 = (b, c)
        k1a = i11 * a  # first component of H^-1 l_1 (only it enters)
        k2a, k2b = i11 * b + i12 * c, i12 * b + i22 * c
        w1 = -0.5 * a * k1a * d1 * (1 - 2 * p1)
        w2 = -0.5 * (b * k2a + c * k2b) * d2 * (1 - 2 * p2)
        v1, v2 = w1 * a + w2 * b, w2 * c
        z1, z2 = i11 * v1 + i12 * v2, i12 * v1 + i22 * v2
        s1 = g1 + w1 - z1 * a * d1
        s2 = g2 + w2 - (z1 * b + z2 * c) * d2
        grad = np.concatenate([
            self.X.T @ s1, self.X.T @ s2,
            [np.sum((g1 + w1) * u1 - d1 * k1a + z1 * (g1 - a * d1 * u1)),
             np.sum((g2 + w2) * u1 - d2 * k2a + z1 * (g2 - b * d2 * u1) - z2 * c * d2 * u1),
             np.sum((g2 + w2) * u2 - d2 * k2b - z1 * b * d2 * u2 + z2 * (g2 - c * d2 * u2))],
        ])
        ll = float(np.sum(self._h(m, lab, u)) - 0.5 * np.sum(np.log(det)) + self.const)
        return ll, grad

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


def _lab_from_eta(e: np.ndarray) -> tuple[tuple[float, float, float], np.ndarray]:
    """``(a, b, c)`` from ``eta = (log tau_sens, log tau_spec[, atanh rho])`` and the Jacobian ``d(a, b, c)/d eta``."""
    t1, t2 = np.exp(e[0]), np.exp(e[1])
    r = np.tanh(e[2]) if e.size > 2 else 0.0
    a, b, c = t1, r * t2, t2 * np.sqrt(1 - r * r)
    jac = np.array([[a, 0.0, 0.0], [0.0, b, t2 * (1 - r * r)], [0.0, c, -r * c]])
    return (a, b, c), jac[:, : e.size]


@dataclass(frozen=True)
class GlmmStart:
    """Starting values of a GLMM fit: ``coef`` ``(2, p)``, ``sigma`` ``(2, 2)`` and, for a warm start from a nearby
    Laplace fit (e.g. all cohorts, before leaving one out), its inverse observed information ``cov`` over
    ``(beta, log tau[, atanh rho])`` (``None`` for plain starting values)."""

    coef: np.ndarray
    sigma: np.ndarray
    cov: np.ndarray | None = None
    rho_fixed: bool = False


def _chord(prob: GlmmProblem, z: np.ndarray, hinv: np.ndarray, n_b: int, rho_fixed: bool,
           max_iter: int = 40) -> np.ndarray | None:
    """Maximise from a warm start by chord steps ``z <- z - hinv grad(z)`` (``hinv`` fixed: the inverse Hessian of
    a nearby fit). Converges linearly at rate ``||I - hinv H||`` (about 1/k when one of k cohorts is left out);
    ``None`` when a step lowers the log-likelihood, leaves the interior or 40 steps do not reach ``|step| < 1e-9``.
    """
    def ll(zz: np.ndarray) -> float:
        e = np.append(zz[n_b:], 0.0) if rho_fixed else zz[n_b:]
        return prob.loglik(zz[:n_b], sigma_from_eta(e))

    best = ll(z)
    for _ in range(max_iter):
        step = hinv @ _eta_gradient(prob, z, n_b)
        new = z - step
        val = ll(new)
        if not (np.isfinite(val) and val >= best - 1e-12 * abs(best)) or np.any(np.abs(new[n_b:]) > 10):
            return None
        z, best = new, val
        if np.max(np.abs(step)) < 1e-9:
            e = np.append(z[n_b:], 0.0) if rho_fixed else z[n_b:]
            return z if _interior(sigma_from_eta(e)) else None
    return None


def fit_glmm(counts: Counts, X: np.ndarray, names: tuple[str, ...], *, n_nodes: int = 1,
             start: BivariateFit | GlmmStart | None = None, rho_fixed: bool = False) -> BivariateFit:
    """Fit the bivariate binomial GLMM (internal). ``n_nodes = 1``: Laplace; ``> 1``: AGHQ.

    The Laplace fit uses the exact gradient (:meth:`GlmmProblem.laplace_grad`) in the optimiser and for the observed
    information (central differences of the gradient); AGHQ uses central differences of the objective for both.
    A :class:`GlmmStart` with ``cov`` (same ``rho_fixed``, interior) is used by chord steps (:func:`_chord`); if
    they fail, the fit starts L-BFGS-B from its values as from any other start.
    """
    prob = GlmmProblem(counts, X, n_nodes)
    p = X.shape[1]
    n_b = 2 * p
    if (n_nodes == 1 and isinstance(start, GlmmStart) and start.cov is not None and start.rho_fixed == rho_fixed
            and _interior(start.sigma) and start.cov.shape == (n_b + 3 - rho_fixed, n_b + 3 - rho_fixed)):
        n_eta = 2 if rho_fixed else 3
        z = _chord(prob, np.concatenate([start.coef.reshape(-1), eta_from_sigma(start.sigma)[:n_eta]]),
                   start.cov, n_b, rho_fixed)
        if z is not None:
            e = np.append(z[n_b:], 0.0) if rho_fixed else z[n_b:]
            return _result(prob, z[:n_b], sigma_from_eta(e), names, rho_fixed, True,
                           "converged by chord steps from a warm start", {"nit": 0, "nfev": 0, "n_nodes": 1})
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
    free = [0, 2] if rho_fixed else [0, 1, 2]  # which of (a, b, c) are optimised

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:n_b], sigma_from_chol(x[n_b:], rho_fixed)

    def lab_of(x: np.ndarray) -> tuple[float, float, float]:
        th = x[n_b:]
        return (th[0], 0.0, th[1]) if rho_fixed else (th[0], th[1], th[2])

    def nll(x: np.ndarray) -> float:
        beta, sigma = unpack(x)
        val = prob.loglik(beta, sigma)
        return -val if np.isfinite(val) else 1e300

    def nll_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        val, g = prob.laplace_grad(x[:n_b], lab_of(x))
        if not (np.isfinite(val) and np.all(np.isfinite(g))):
            return 1e300, np.zeros(x.size)
        return -val, -np.concatenate([g[:n_b], g[n_b:][free]])

    bounds: list[tuple[float | None, float | None]] = [(None, None)] * n_b
    bounds += [(0.0, None), (0.0, None)] if rho_fixed else [(0.0, None), (None, None), (0.0, None)]
    res = minimize_bounded(nll, x0, bounds, fg=nll_grad if n_nodes == 1 else None)
    beta, sigma = unpack(res.x)
    if n_nodes == 1:
        beta, sigma = _newton_polish(prob, beta, sigma, rho_fixed)
    return _result(prob, beta, sigma, names, rho_fixed, bool(res.success), str(res.message),
                   {"nit": int(res.nit), "nfev": int(res.nfev), "n_nodes": n_nodes})


def _result(prob: GlmmProblem, beta: np.ndarray, sigma: np.ndarray, names: tuple[str, ...], rho_fixed: bool,
            converged: bool, message: str, details: dict) -> BivariateFit:
    """The fit record at the maximum ``(beta, sigma)``, with the observed-information covariances."""
    p = prob.p
    cov_coef, cov_eta, cov_mu_eta, se_method = _observed_information(prob, beta, sigma, rho_fixed)
    approx = "laplace" if prob.n_nodes == 1 else f"aghq{prob.n_nodes}"
    return BivariateFit(
        model=f"glmm-{approx}", coef=np.vstack([beta[:p], beta[p:]]), cov_coef=cov_coef, sigma=sigma,
        cov_eta=cov_eta, cov_mu_eta=cov_mu_eta, loglik=prob.loglik(beta, sigma), n_params=2 * p + (2 if rho_fixed else 3),
        converged=converged, names=names, rho_fixed=rho_fixed, se_method=se_method, message=message, details=details,
    )


def _interior(sigma: np.ndarray) -> bool:
    tau = np.sqrt(np.diag(sigma))
    rho = sigma[0, 1] / (tau[0] * tau[1]) if np.all(tau > 0) else 0.0
    return bool(np.all(tau > 1e-4)) and abs(rho) < 1 - 1e-6


def _eta_gradient(prob: GlmmProblem, z: np.ndarray, n_b: int) -> np.ndarray:
    """Exact gradient of the negative Laplace log-likelihood over ``z = (beta, log tau[, atanh rho])``."""
    lab, jac = _lab_from_eta(z[n_b:])
    _, g = prob.laplace_grad(z[:n_b], lab)
    return -np.concatenate([g[:n_b], g[n_b:] @ jac])


def _newton_polish(prob: GlmmProblem, beta: np.ndarray, sigma: np.ndarray, rho_fixed: bool,
                   max_steps: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps in ``(beta, log tau, atanh rho)`` from the L-BFGS-B optimum of an interior Laplace fit.

    L-BFGS-B stops where the objective stops decreasing in the 14th digit, which in flat directions leaves
    estimates ~1e-6 (relative) from the maximum, and where it stops depends on the starting values. A Newton step
    with the exact gradient (Hessian by its central differences) lands on the maximum to ~1e-10, so the estimates do
    not depend on the start (warm starts in leave-one-out loops give the same numbers as cold ones). A step is kept
    only while the log-likelihood does not fall.
    """
    if not _interior(sigma):
        return beta, sigma
    n_b = beta.size
    n_eta = 2 if rho_fixed else 3
    z = np.concatenate([beta, eta_from_sigma(sigma)[:n_eta]])
    best = prob.loglik(beta, sigma)
    for _ in range(max_steps):
        g = _eta_gradient(prob, z, n_b)
        if np.max(np.abs(g)) < 1e-10:
            break
        try:
            step = np.linalg.solve(grad_hessian(lambda x: _eta_gradient(prob, x, n_b), z), g)
        except np.linalg.LinAlgError:
            break
        new = z - step
        e = np.append(new[n_b:], 0.0) if rho_fixed else new[n_b:]
        val = prob.loglik(new[:n_b], sigma_from_eta(e))
        if not (np.isfinite(val) and val >= best - 1e-12 * abs(best)):
            break
        z, best = new, val
        if np.max(np.abs(step)) < 1e-12:
            break
    e = np.append(z[n_b:], 0.0) if rho_fixed else z[n_b:]
    return z[:n_b], sigma_from_eta(e)


def _observed_information(
    prob: GlmmProblem, beta: np.ndarray, sigma: np.ndarray, rho_fixed: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """``cov(beta)``, ``cov(eta)``, ``cov(beta, eta)`` and how they were obtained, from the observed information.

    Interior fits: the inverse Hessian of the negative log-likelihood over ``(beta, log tau, atanh rho)``; at a
    boundary (or with a singular information) the Hessian over ``beta`` with ``Sigma`` fixed. Laplace: central
    differences (relative step 1e-4) of the exact gradient; AGHQ: central differences (1e-3) of the objective.
    """
    n_b = beta.size
    exact = prob.n_nodes == 1
    se_method = "observed information: inverse central-difference Hessian over (beta, log tau, atanh rho)"
    if _interior(sigma):
        n_eta = 2 if rho_fixed else 3
        e0 = eta_from_sigma(sigma)[:n_eta]

        def nll_eta(z: np.ndarray) -> float:
            e = np.append(z[n_b:], 0.0) if rho_fixed else z[n_b:]
            return -prob.loglik(z[:n_b], sigma_from_eta(e))

        z0 = np.concatenate([beta, e0])
        hess = grad_hessian(lambda z: _eta_gradient(prob, z, n_b), z0) if exact else num_hessian(nll_eta, z0, rel_step=1e-3)
        try:
            full = np.linalg.inv(hess)
            if np.any(np.diag(full) <= 0):
                raise np.linalg.LinAlgError
            cov_eta = np.zeros((3, 3))
            cov_eta[:n_eta, :n_eta] = full[n_b:, n_b:]
            cov_mu_eta = np.zeros((n_b, 3))
            cov_mu_eta[:, :n_eta] = full[:n_b, n_b:]
            return full[:n_b, :n_b], cov_eta, cov_mu_eta, se_method
        except np.linalg.LinAlgError:
            pass
    lab = tuple(chol_from_sigma(sigma, rho_fixed=False))
    if exact:
        hess = grad_hessian(lambda bb: -prob.laplace_grad(bb, lab)[1][:n_b], beta)  # type: ignore[arg-type]
    else:
        hess = num_hessian(lambda bb: -prob.loglik(bb, sigma), beta, rel_step=1e-3)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        # no curvature in some beta (separation: a proportion at 0 or 1 in every cohort): infinite SEs, which the
        # separation check of the public functions turns into the documented fallback instead of a failed run
        cov = np.diag(np.full(n_b, np.inf))
    return cov, None, None, "observed information for beta with Sigma fixed at its boundary estimate"
