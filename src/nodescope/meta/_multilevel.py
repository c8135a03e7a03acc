"""Several cohorts from one study: a cluster-robust variance for the Reitsma model and a three-level bivariate model.

The bivariate models give every cohort (row) its own random effect and treat cohorts as independent. When a study
contributes several cohorts (several readers, thresholds, populations, validation sets), their results share
patients, protocol and centre, and are correlated. Three answers, compared by :func:`compare_cohorts_per_study`:

1. **One cohort per study** (:func:`nodescope.meta.one_per_study`): independence holds, information is thrown away,
   and which cohort is kept is a choice (highest Youden index by default).
2. **Cluster-robust variance** (``reitsma(..., cluster="study_id")``): the Reitsma fit with every cohort (working
   independence), with ``cov(mu)`` replaced by the sandwich over studies (CR1)::

       cov_R(mu) = m / (m - q) A^-1 (sum_c s_c s_c') A^-1,   A = sum_i D_i' W_i D_i,   s_c = sum_(i in c) D_i' W_i r_i

   with ``W_i = (Sigma + S_i)^-1``, ``r_i = y_i - D_i mu``, ``m`` studies and ``q`` coefficients: what
   ``metafor::robust(fit, cluster, adjust = TRUE)`` computes (validated in tests/meta/reference/meta_multilevel.R).
   ``mu`` and ``Sigma`` are those of the ordinary fit.
3. **Three-level bivariate model** (:func:`multilevel_reitsma`): ``y_ij = mu + u_i + v_ij + e_ij`` with study effects
   ``u_i ~ N(0, Sigma_study)``, cohort-within-study effects ``v_ij ~ N(0, Sigma_cohort)`` and the within-cohort
   sampling error ``e_ij ~ N(0, S_ij)`` of the Reitsma model, so two cohorts of one study have covariance
   ``Sigma_study``. REML or ML on the normal-approximation likelihood, as
   ``metafor::rma.mv(yi, V, mods = ~ 0 + outcome, random = list(~ outcome | study, ~ outcome | cohort),
   struct = c("UN", "UN"))`` (validated there, same constants).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.meta._counts import LOGITS, Correction, Counts, as_counts, measure_data
from nodescope.meta._fit import BivariateFit, chol_from_sigma, minimize_bounded, sigma_from_chol
from nodescope.meta._summary import BivariateResult, MetaAnalysisWarning, build_result

__all__ = ["MultilevelResult", "cluster_robust_cov", "multilevel_reitsma", "study_labels"]

_LOG2PI = np.log(2 * np.pi)


def study_labels(data: pd.DataFrame, study_col: str) -> np.ndarray:
    """The study of each row as strings; a clear error for a missing column or an empty label."""
    if study_col not in data.columns:
        raise StatisticsInputError(
            f"study column {study_col!r} (several cohorts per study) is not in the data; columns are {list(data.columns)}")
    raw = data[study_col]
    bad = [int(i) + 1 for i in np.flatnonzero(raw.isna().to_numpy() | (raw.astype(str).str.strip() == "").to_numpy())]
    if bad:
        raise StatisticsInputError(f"study column {study_col!r} is empty in row(s) {bad[:10]}; every cohort needs "
                                   "the study it belongs to")
    return raw.astype(str).to_numpy()


def cluster_robust_cov(y: np.ndarray, s: np.ndarray, X: np.ndarray, coef: np.ndarray, sigma: np.ndarray,
                       clusters: np.ndarray, *, adjust: bool = True) -> np.ndarray:
    """CR1 sandwich covariance of the GLS coefficients of the bivariate normal model, clustered by ``clusters``.

    Parameters
    ----------
    y, s : ndarray, shape (k, 2)
        Logits and within-cohort variances of each cohort.
    X : ndarray, shape (k, p)
        Covariates (intercept first); the coefficient vector is ``[sens coefs..., spec coefs...]``.
    coef : ndarray, shape (2, p)
    sigma : ndarray, shape (2, 2)
        The fitted between-cohort covariance (working model).
    clusters : ndarray, shape (k,)
        Study label of each cohort.
    adjust : bool, default True
        Multiply by ``m / (m - 2p)`` (``m`` clusters), as ``metafor::robust(adjust = TRUE)``.

    Returns
    -------
    ndarray, shape (2p, 2p)
    """
    k, p = X.shape
    v11, v22 = sigma[0, 0] + s[:, 0], sigma[1, 1] + s[:, 1]
    v12 = np.full(k, sigma[0, 1])
    det = v11 * v22 - v12 * v12
    w11, w12, w22 = v22 / det, -v12 / det, v11 / det
    r1, r2 = y[:, 0] - X @ coef[0], y[:, 1] - X @ coef[1]
    bread = np.block([[(X.T * w11) @ X, (X.T * w12) @ X], [(X.T * w12) @ X, (X.T * w22) @ X]])
    score = np.hstack([X * (w11 * r1 + w12 * r2)[:, None], X * (w12 * r1 + w22 * r2)[:, None]])  # (k, 2p)
    labels, idx = np.unique(clusters, return_inverse=True)
    m = labels.size
    if m <= 2 * p:
        raise StatisticsInputError(f"a cluster-robust variance needs more studies than coefficients ({2 * p}); "
                                   f"got {m} studies")
    per = np.zeros((m, 2 * p))
    np.add.at(per, idx, score)
    inv = np.linalg.inv(bread)
    cov = inv @ (per.T @ per) @ inv
    return cov * (m / (m - 2 * p)) if adjust else cov


@dataclass(frozen=True)
class MultilevelResult:
    """A three-level bivariate fit (cohorts within studies), :func:`multilevel_reitsma`.

    Attributes
    ----------
    pooled : BivariateResult
        Pooled estimates with CIs; its ``sigma`` is the **total** between-cohort covariance
        ``Sigma_study + Sigma_cohort`` (that of a new cohort from a new study), used by its SROC curve, prediction
        region and I2; ``cov_eta`` is ``None`` (the AUC interval reflects ``mu`` only).
    sigma_study, sigma_cohort : ndarray, shape (2, 2)
        Between-study and between-cohort-within-study covariances of (logit sens, logit spec).
    n_studies, n_cohorts : int
    loglik : float
        Maximised (restricted, for REML) log-likelihood with metafor's constants.
    method : {"REML", "ML"}
    """

    pooled: BivariateResult
    sigma_study: np.ndarray
    sigma_cohort: np.ndarray
    n_studies: int
    n_cohorts: int
    loglik: float
    method: str
    converged: bool
    warnings: tuple[str, ...] = field(default=())

    @property
    def share_between_studies(self) -> np.ndarray:
        """``tau2_study / (tau2_study + tau2_cohort)`` for (logit sens, logit spec): the intra-study correlation of
        the cohorts' true logits (``nan`` where both variances are 0)."""
        tot = np.diag(self.sigma_study) + np.diag(self.sigma_cohort)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, np.diag(self.sigma_study) / tot, np.nan)

    def summary_frame(self) -> pd.DataFrame:
        """One row per pooled measure (estimate, CI) followed by the variance components."""
        r = self.pooled
        rows = [{"name": e.name, "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high}
                for e in (r.sensitivity, r.specificity, r.lr_positive, r.lr_negative, r.dor)]
        for lev, sg in (("study", self.sigma_study), ("cohort", self.sigma_cohort)):
            rows += [{"name": f"tau2_sens_{lev}", "estimate": float(sg[0, 0])},
                     {"name": f"tau2_spec_{lev}", "estimate": float(sg[1, 1])},
                     {"name": f"cov_{lev}", "estimate": float(sg[0, 1])}]
        return pd.DataFrame(rows)


class _ThreeLevel:
    """(Restricted) log-likelihood of the intercept-only three-level bivariate normal model, studies batched by size."""

    def __init__(self, y: np.ndarray, s: np.ndarray, studies: np.ndarray, reml: bool) -> None:
        self.reml = reml
        self.k = y.shape[0]
        _, idx = np.unique(studies, return_inverse=True)
        groups: dict[int, list[np.ndarray]] = {}
        for c in range(idx.max() + 1):
            rows = np.flatnonzero(idx == c)
            groups.setdefault(rows.size, []).append(rows)
        # per study size n: responses (g, 2n) ordered cohort by cohort (sens, spec), sampling variances (g, 2n)
        self.batches = [(n, np.stack([y[r].ravel() for r in rs]), np.stack([s[r].ravel() for r in rs]))
                        for n, rs in sorted(groups.items())]

    def parts(self, s_study: np.ndarray, s_cohort: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, list]:
        """GLS ``mu``, ``A = sum D'V^-1 D``, ``sum log det V`` and the per-batch Cholesky factors."""
        a = np.zeros((2, 2))
        c = np.zeros(2)
        logdet = 0.0
        facs = []
        for n, yb, sb in self.batches:
            v = np.tile(s_study, (n, n)) + np.kron(np.eye(n), s_cohort)
            v = v[None] + sb[:, :, None] * np.eye(2 * n)[None]
            chol = np.linalg.cholesky(v)
            d = np.tile(np.eye(2), (n, 1))
            vinv_d = np.linalg.solve(v, np.broadcast_to(d, (yb.shape[0], 2 * n, 2)))
            a += np.einsum("ja,gjb->ab", d, vinv_d)
            c += np.einsum("gja,gj->a", vinv_d, yb)
            logdet += 2 * float(np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2))))
            facs.append(v)
        return np.linalg.solve(a, c), a, logdet, facs

    def loglik(self, theta: np.ndarray) -> float:
        s_study, s_cohort = sigma_from_chol(theta[:3], False), sigma_from_chol(theta[3:], False)
        try:
            mu, a, logdet, facs = self.parts(s_study, s_cohort)
        except np.linalg.LinAlgError:
            return -np.inf
        quad = 0.0
        for (n, yb, _), v in zip(self.batches, facs, strict=True):
            r = yb - np.tile(mu, n)[None]
            quad += float(np.sum(r * np.linalg.solve(v, r[:, :, None])[:, :, 0]))
        n_obs = 2 * self.k
        if not self.reml:
            return -0.5 * (n_obs * _LOG2PI + logdet + quad)
        # metafor's REML constant: + log det(X'X) / 2 with X'X = k I_2
        return -0.5 * ((n_obs - 2) * _LOG2PI + logdet + quad + np.linalg.slogdet(a)[1]) + np.log(self.k)


def multilevel_reitsma(
    data: pd.DataFrame,
    *,
    study_col: str = "study",
    method: Literal["REML", "ML"] = "REML",
    correction: float = 0.5,
    correction_rule: Correction = "all-if-any-zero",
    alpha: float = 0.05,
) -> MultilevelResult:
    """Three-level bivariate normal model: cohorts (rows) within studies (``study_col``).

    Parameters
    ----------
    data : DataFrame
        ``TP, FP, FN, TN`` per cohort and the study column.
    study_col : str, default "study"
        The column naming the study each cohort comes from (e.g. ``study_id`` in the mada examples).
    method : {"REML", "ML"}, default "REML"
    correction, correction_rule
        As in :func:`nodescope.meta.reitsma` (default: mada's convention, 0.5 added to all cells of all cohorts
        when any cell is zero).
    alpha : float, default 0.05

    Returns
    -------
    MultilevelResult

    Notes
    -----
    Each covariance is ``L L'`` with ``L`` lower-triangular, non-negative diagonal (boundary fits reachable);
    L-BFGS-B on the (restricted) log-likelihood, started from half the total covariance of the Reitsma fit at each
    level. ``cov(mu) = (sum_studies D' V^-1 D)^-1`` as metafor. A variance component at 0 or a correlation at +-1
    is a legitimate estimate here (e.g. no extra spread among cohorts of one study) and is reported with a warning,
    not refitted. See docs/meta-models.md, "Several cohorts from one study".
    """
    if method not in ("REML", "ML"):
        raise ConfigError(f"method={method!r} is not valid; choose 'REML' or 'ML'")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha!r}")
    counts = as_counts(data)
    studies = study_labels(data, study_col)
    m = np.unique(studies).size
    if m < 3 or m == counts.k:
        raise StatisticsInputError(
            f"a three-level model needs at least 3 studies and at least one study with several cohorts; got "
            f"{counts.k} cohorts in {m} studies (column {study_col!r})")
    y, s, mask = measure_data(counts, LOGITS, correction, correction_rule)
    from nodescope.meta._reitsma import _start_sigma

    half = _start_sigma(y, s) / 2
    theta0 = np.concatenate([chol_from_sigma(half, False), chol_from_sigma(half, False)])
    prob = _ThreeLevel(y, s, studies, reml=method == "REML")

    def nll(theta: np.ndarray) -> float:
        val = prob.loglik(theta)
        return -val if np.isfinite(val) else 1e300

    bounds: list[tuple[float | None, float | None]] = [(0.0, None), (None, None), (0.0, None)] * 2
    res = minimize_bounded(nll, theta0, bounds)
    s_study, s_cohort = sigma_from_chol(res.x[:3], False), sigma_from_chol(res.x[3:], False)
    mu, a, _, _ = prob.parts(s_study, s_cohort)
    msgs = _boundary_messages(s_study, s_cohort)
    if not res.success:
        msgs.append(f"the optimiser did not converge: {res.message}")
    for msg in msgs:
        warnings.warn(msg, MetaAnalysisWarning, stacklevel=2)
    loglik = prob.loglik(res.x)
    fit = BivariateFit(
        model=f"multilevel-{method.lower()}", coef=mu.reshape(2, 1), cov_coef=np.linalg.inv(a),
        sigma=s_study + s_cohort, cov_eta=None, cov_mu_eta=None, loglik=loglik, n_params=8,
        converged=bool(res.success), names=("(Intercept)",), rho_fixed=False,
        se_method="GLS over studies: cov(mu) = (sum_studies D' V_study^-1 D)^-1 at the estimated covariances",
        message=str(res.message), details={"nit": int(res.nit), "nfev": int(res.nfev)},
    )
    _, within, _ = measure_data(counts, LOGITS, correction, correction_rule)
    pooled = build_result(fit, counts, alpha=alpha, correction=correction, correction_rule=correction_rule,
                          corrected=tuple(counts.labels[i] for i in np.flatnonzero(mask)), fallback="",
                          warnings_=tuple(msgs), within_var=within)
    return MultilevelResult(pooled=pooled, sigma_study=s_study, sigma_cohort=s_cohort, n_studies=m,
                            n_cohorts=counts.k, loglik=loglik, method=method, converged=bool(res.success),
                            warnings=tuple(msgs))


def _boundary_messages(s_study: np.ndarray, s_cohort: np.ndarray) -> list[str]:
    out = []
    for lev, sg in (("between-study", s_study), ("between-cohort (within-study)", s_cohort)):
        tau2 = np.diag(sg)
        if np.any(tau2 < 1e-6):
            out.append(f"three-level model: a {lev} variance is ~0 (tau2 = {tau2[0]:.3g}, {tau2[1]:.3g})")
        elif abs(sg[0, 1] / np.sqrt(tau2[0] * tau2[1])) > 0.999:
            out.append(f"three-level model: the {lev} correlation is at the boundary "
                       f"(rho = {sg[0, 1] / np.sqrt(tau2[0] * tau2[1]):.4f})")
    return out


def robust_fit(fit: BivariateFit, counts: Counts, X: np.ndarray, studies: np.ndarray, correction: float,
               correction_rule: str) -> BivariateFit:
    """The Reitsma fit with ``cov_coef`` replaced by the CR1 cluster-robust covariance over ``studies``."""
    y, s, _ = measure_data(counts, LOGITS, correction, correction_rule)  # type: ignore[arg-type]
    cov = cluster_robust_cov(y, s, X, fit.coef, fit.sigma, studies)
    m = np.unique(studies).size
    return replace(fit, cov_coef=cov, cov_mu_eta=None if fit.cov_mu_eta is None else np.zeros_like(fit.cov_mu_eta),
                   se_method=f"cluster-robust (CR1 sandwich over {m} studies, factor m/(m-{2 * X.shape[1]}), as "
                             "metafor::robust(adjust = TRUE)); mu and Sigma from the ordinary fit")
