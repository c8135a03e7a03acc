"""Pieces shared by the bivariate fitters: the raw fit record, Sigma parametrisations, numerical derivatives.

Conventions (all bivariate code): outcome 1 is logit sensitivity, outcome 2 is logit **specificity**; the
between-cohort covariance ``Sigma`` and correlation ``rho`` refer to (logit sens, logit spec). The correlation of
(logit sens, logit FPR), reported by mada and midas, is ``-rho``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from threadpoolctl import ThreadpoolController


@dataclass(frozen=True)
class BivariateFit:
    """Raw output of a bivariate fitter (internal; wrapped by the public result classes).

    ``coef`` has shape ``(2, p)`` (row 0: logit sens, row 1: logit spec; columns: ``names``), ``cov_coef``
    ``(2p, 2p)`` ordered ``[sens coefs..., spec coefs...]``, ``sigma`` ``(2, 2)``, ``cov_eta`` the ``(3, 3)``
    covariance of ``eta = (log tau_sens, log tau_spec, atanh rho)`` (``None`` at a boundary),
    ``cov_mu_eta`` the ``(2p, 3)`` cross-covariance (zeros for the normal model, where the blocks are
    asymptotically independent).
    """

    model: str
    coef: np.ndarray
    cov_coef: np.ndarray
    sigma: np.ndarray
    cov_eta: np.ndarray | None
    cov_mu_eta: np.ndarray | None
    loglik: float
    n_params: int
    converged: bool
    names: tuple[str, ...]
    rho_fixed: bool
    se_method: str
    message: str = ""
    details: dict = field(default_factory=dict)


def sigma_from_chol(theta: np.ndarray, rho_fixed: bool) -> np.ndarray:
    """``Sigma = L L^T`` with ``L = [[a, 0], [b, c]]``; ``theta = (a, b, c)`` or ``(a, c)`` when ``rho = 0``."""
    if rho_fixed:
        a, c = theta
        b = 0.0
    else:
        a, b, c = theta
    return np.array([[a * a, a * b], [a * b, b * b + c * c]])


def chol_from_sigma(sigma: np.ndarray, rho_fixed: bool) -> np.ndarray:
    a = np.sqrt(max(sigma[0, 0], 0.0))
    if rho_fixed:
        return np.array([a, np.sqrt(max(sigma[1, 1], 0.0))])
    b = sigma[0, 1] / a if a > 0 else 0.0
    c = np.sqrt(max(sigma[1, 1] - b * b, 0.0))
    return np.array([a, b, c])


def sigma_from_eta(eta: np.ndarray) -> np.ndarray:
    """``eta = (log tau_1, log tau_2, atanh rho)`` to ``Sigma``."""
    t1, t2, r = np.exp(eta[0]), np.exp(eta[1]), np.tanh(eta[2])
    return np.array([[t1 * t1, r * t1 * t2], [r * t1 * t2, t2 * t2]])


def eta_from_sigma(sigma: np.ndarray) -> np.ndarray:
    t1, t2 = np.sqrt(sigma[0, 0]), np.sqrt(sigma[1, 1])
    return np.array([np.log(t1), np.log(t2), np.arctanh(sigma[0, 1] / (t1 * t2))])


def num_hessian(f: Callable[[np.ndarray], float], x: np.ndarray, rel_step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function (``O(h^2)``; steps ``rel_step * max(1, |x_i|)``)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    h = rel_step * np.maximum(1.0, np.abs(x))
    hess = np.empty((n, n))
    f0 = f(x)
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = h[i]
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(n)
            ej[j] = h[j]
            val = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
            hess[i, j] = hess[j, i] = val
    return hess


def num_grad(f: Callable[[np.ndarray], float], x: np.ndarray, rel_step: float = 1e-6) -> np.ndarray:
    """Central-difference gradient."""
    x = np.asarray(x, dtype=float)
    g = np.empty(x.size)
    for i in range(x.size):
        h = rel_step * max(1.0, abs(x[i]))
        e = np.zeros(x.size)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


_CONTROLLER: list[ThreadpoolController] = []


def _blas_controller() -> ThreadpoolController:
    """One :class:`ThreadpoolController` per process: building it scans the loaded libraries (~5-8 ms), more than
    a whole Laplace GLMM fit's optimisation, so it is not rebuilt for every fit."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def grad_hessian(g: Callable[[np.ndarray], np.ndarray], x: np.ndarray, rel_step: float = 1e-4) -> np.ndarray:
    """Hessian by central differences of an exact gradient ``g`` (``2n`` gradient calls), symmetrised."""
    x = np.asarray(x, dtype=float)
    n = x.size
    h = rel_step * np.maximum(1.0, np.abs(x))
    hess = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h[j]
        hess[:, j] = (g(x + e) - g(x - e)) / (2 * h[j])
    return (hess + hess.T) / 2


def minimize_bounded(
    f: Callable[[np.ndarray], float],
    x0: np.ndarray,
    bounds: list[tuple[float | None, float | None]],
    *,
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
) -> optimize.OptimizeResult:
    """L-BFGS-B with tight tolerances (``ftol=1e-14``, ``gtol=1e-9``).

    ``fg`` returns the objective and its exact gradient; without it the gradient is by central differences of ``f``.
    Tight tolerances matter: estimates are compared with R to 1e-4, which a default ``ftol`` does not reach.
    """
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])

    def fg_num(x: np.ndarray) -> tuple[float, np.ndarray]:
        g = np.empty(x.size)
        for i in range(x.size):
            h = 1e-6 * max(1.0, abs(x[i]))
            xp, xm = x.copy(), x.copy()
            xp[i] = min(x[i] + h, hi[i])
            xm[i] = max(x[i] - h, lo[i])
            g[i] = (f(xp) - f(xm)) / (xp[i] - xm[i])
        return f(x), g

    # L-BFGS-B's tiny BLAS calls run 3-5x slower when BLAS spreads them over threads on a busy machine
    with _blas_controller().limit(limits=1, user_api="blas"):
        res = optimize.minimize(fg_num if fg is None else fg, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000, "maxls": 50})
    return res
