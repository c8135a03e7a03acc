"""Analyses on top of the models: Deeks' test, meta-regression, subgroups, leave-one-out, one cohort per study,
post-test probabilities (Fagan)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from nodescope._estimate import Estimate
from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.meta._analyses_api import (
    deeks_frame,
    deeks_summary,
    deeks_to_dict,
    regression_summary,
    regression_to_dict,
    subgroup_summary,
    subgroup_to_dict,
)
from nodescope.meta._bivariate import Fallback, ModelName, _separated, bivariate_glmm, fit_model, reitsma
from nodescope.meta._counts import LOGITS, Correction, as_counts, design_matrix, measure_data
from nodescope.meta._fit import BivariateFit
from nodescope.meta._summary import BivariateResult, MetaAnalysisWarning

logger = logging.getLogger(__name__)

__all__ = [
    "DeeksResult",
    "MetaRegressionResult",
    "PostTestResult",
    "SubgroupResult",
    "deeks_test",
    "leave_one_out",
    "meta_regression",
    "one_per_study",
    "post_test_probability",
    "subgroup_analysis",
]


@dataclass(frozen=True)
class DeeksResult:
    """Deeks' funnel-plot asymmetry test: WLS of ``ln DOR_i`` on ``1/sqrt(ESS_i)`` with weights ``ESS_i``.

    ``ESS = 4 n1 n0 / (n1 + n0)`` (``n1`` diseased, ``n0`` non-diseased). ``slope``'s t-test on ``k - 2``
    degrees of freedom is the asymmetry test (p < 0.10 is the usual flag). ``x``, ``y``, ``weights`` and the
    fitted line (``intercept + slope * x``) are what a funnel plot needs. ``correction`` is added to the cells of
    the cohorts chosen by ``correction_rule`` (those named in ``corrected``) before ``ln DOR`` is computed.

    Attributes
    ----------
    slope, slope_se, intercept, intercept_se : float
        WLS coefficients and their standard errors (residual variance estimated, as R's ``lm``).
    t, df, p_value : float, int, float
        The slope's t statistic, ``k - 2`` degrees of freedom and two-sided p-value.
    x, y, weights : ndarray, shape (k,)
        ``1/sqrt(ESS)``, ``ln DOR`` (continuity-corrected) and ``ESS`` per cohort.
    labels : tuple of str
        Cohort labels.
    correction : float
        The continuity correction; ``corrected`` the cohorts that received it.
    correction_rule : str
        Which cohorts were corrected (see :func:`nodescope.meta.study_measures`).
    """

    slope: float
    slope_se: float
    intercept: float
    intercept_se: float
    t: float
    df: int
    p_value: float
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    labels: tuple[str, ...] = field(repr=False)
    correction: float = 0.5
    corrected: tuple[str, ...] = ()
    correction_rule: str = "studies-with-zero"

    def line(self, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fitted regression line ``(x, intercept + slope x)`` over the observed range by default."""
        xs = np.linspace(0, self.x.max() * 1.05, 50) if x is None else np.asarray(x, dtype=float)
        return xs, self.intercept + self.slope * xs

    def to_frame(self) -> pd.DataFrame:
        """Coefficient table: rows ``intercept, slope``; columns ``estimate, se, t, df, p_value``."""
        return deeks_frame(self)

    def summary(self, digits: int = 4) -> str:
        """R-like text (coefficients of the weighted regression and the verdict); ``print()`` it."""
        return deeks_summary(self, digits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field."""
        return deeks_to_dict(self)


def deeks_test(data: pd.DataFrame, *, correction: float = 0.5,
               correction_rule: Correction = "studies-with-zero") -> DeeksResult:
    """Deeks' test for small-study effects in diagnostic accuracy (Deeks, Macaskill, Irwig 2005).

    Parameters
    ----------
    data : DataFrame
        ``TP, FP, FN, TN`` per cohort (at least 3 cohorts).
    correction, correction_rule
        Continuity correction for ``ln DOR`` (default: 0.5 added to all cells of cohorts with a zero cell,
        ``"studies-with-zero"``; ``ln DOR`` uses all four cells, so ``"measure-cells-with-zero"`` gives the same).
        Both are recorded in the result.

    References
    ----------
    Deeks JJ, Macaskill P, Irwig L. The performance of tests of publication bias and other sample size effects
    in systematic reviews of diagnostic test accuracy was assessed. J Clin Epidemiol 2005;58:882-893.
    """
    counts = as_counts(data)
    if counts.k < 3:
        raise StatisticsInputError(f"Deeks' test needs at least 3 cohorts; got {counts.k}")
    y2, _, mask = measure_data(counts, ("log_dor",), correction, correction_rule)
    y = y2[:, 0]
    n1, n0 = counts.n_diseased, counts.n_healthy
    ess = 4 * n1 * n0 / (n1 + n0)
    x = 1 / np.sqrt(ess)
    if np.ptp(x) <= 1e-12 * np.max(x):
        raise StatisticsInputError(
            f"Deeks' test regresses ln DOR on 1/sqrt(ESS), but 1/sqrt(ESS) does not vary: all {counts.k} cohorts "
            f"have the same effective sample size ESS = 4 n1 n0 / (n1 + n0) = {ess[0]:.6g}, so the slope is not "
            "identified (small-study effects cannot be assessed without cohorts of different sizes)"
        )
    X = np.column_stack([np.ones_like(x), x])
    w = ess
    xtwx = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(xtwx, X.T @ (w * y))
    resid = y - X @ beta
    df = counts.k - 2
    s2 = float(np.sum(w * resid**2) / df)
    cov = s2 * np.linalg.inv(xtwx)
    se = np.sqrt(np.diag(cov))
    t = float(beta[1] / se[1])
    return DeeksResult(
        slope=float(beta[1]), slope_se=float(se[1]), intercept=float(beta[0]), intercept_se=float(se[0]), t=t,
        df=df, p_value=float(2 * stats.t.sf(abs(t), df)), x=x, y=y, weights=w, labels=counts.labels,
        correction=correction, corrected=tuple(counts.labels[i] for i in np.flatnonzero(mask)),
        correction_rule=correction_rule,
    )


@dataclass(frozen=True)
class MetaRegressionResult:
    """Bivariate meta-regression of logit sens and logit spec on the same covariates.

    Attributes
    ----------
    model : str
        The model fitted (``"glmm-laplace"``, ``"reitsma-ml"``, ...).
    terms : tuple of str
        Design columns, intercept first (``"modality[T.mri]"`` for treatment-coded levels).
    coefficients : DataFrame
        One row per (``outcome``, ``term``): ``estimate, se, z, p_value, ci_low, ci_high`` on the logit scale.
    sigma : ndarray, shape (2, 2)
        Between-cohort covariance of (logit sens, logit spec), common to all covariate values.
    loglik, loglik_null : float
        Log-likelihoods of this and of the intercept-only model (same method: ML for Reitsma, the GLMM's
        (approximate) ML).
    lrt_statistic, lrt_df, lrt_p_value : float, int, float
        Likelihood-ratio test of the covariates, ``df = 2 (p - 1)``.
    k : int
        Number of cohorts.
    warnings : tuple of str
        Every warning raised while fitting.
    fit : BivariateFit
        The raw fit (internal).
    """

    model: str
    terms: tuple[str, ...]
    coefficients: pd.DataFrame
    sigma: np.ndarray
    loglik: float
    loglik_null: float
    lrt_statistic: float
    lrt_df: int
    lrt_p_value: float
    k: int
    warnings: tuple[str, ...]
    fit: BivariateFit = field(repr=False)

    def predict_logits(self, x: np.ndarray) -> np.ndarray:
        """``(logit sens, logit spec)`` for design rows ``x`` of shape ``(m, p)`` (intercept first); ``(m, 2)``."""
        return np.asarray(x, dtype=float) @ self.fit.coef.T

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (a copy of :attr:`coefficients`)."""
        return self.coefficients.copy()

    def summary(self, digits: int = 4) -> str:
        """R-like text: coefficients, variance components, LRT, warnings; ``print()`` it."""
        return regression_summary(self, digits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (coefficients as records, ``sigma``, log-likelihoods, ``lrt``, warnings)."""
        return regression_to_dict(self)


def _coef_table(fit: BivariateFit, alpha: float) -> pd.DataFrame:
    p = fit.coef.shape[1]
    se = np.sqrt(np.diag(fit.cov_coef))
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for j, outcome in enumerate(("logit_sens", "logit_spec")):
        for t, term in enumerate(fit.names):
            est, s = float(fit.coef[j, t]), float(se[j * p + t])
            rows.append({"outcome": outcome, "term": term, "estimate": est, "se": s, "z": est / s,
                         "p_value": float(2 * stats.norm.sf(abs(est / s))), "ci_low": est - z * s, "ci_high": est + z * s})
    return pd.DataFrame(rows)


def meta_regression(
    data: pd.DataFrame,
    covariates: list[str] | tuple[str, ...],
    *,
    model: ModelName = "glmm",
    method: str | None = None,
    n_nodes: int = 1,
    correction: float = 0.5,
    correction_rule: Correction = "all-if-any-zero",
    alpha: float = 0.05,
    fallback: Fallback = "rho0",
) -> MetaRegressionResult:
    """Meta-regression of both logits on one or more covariates, with a likelihood-ratio test.

    Categorical covariates are treatment-coded (first sorted level is the reference), numeric ones enter as
    they are. ``model="glmm"`` (default; exact binomial, Laplace or ``n_nodes``-point AGHQ) or ``"reitsma"``
    (``method`` defaults to ``"ML"``: the LRT needs ML, not REML, fits). Sigma is common to all covariate
    values. A GLMM on data with a cell that is zero in every cohort (separation: no finite maximum) is replaced,
    with ``fallback="rho0"``, by the Reitsma model (ML, mada's 0.5 all-if-any-zero correction), with a
    :class:`MetaAnalysisWarning`; the result's ``model`` and ``warnings`` say so.
    """
    if model not in ("glmm", "reitsma"):
        raise ConfigError(f"model={model!r} is not valid; choose 'glmm' or 'reitsma'")
    covariates = list(covariates)
    if not covariates:
        raise ConfigError("covariates is empty; give at least one column name")
    counts = as_counts(data)
    X, names = design_matrix(data, covariates)
    separated = _separated(counts) if model == "glmm" and fallback == "rho0" else ""
    if separated:  # no finite GLMM maximum: the documented fallback, as for the pooled fit
        model, method = "reitsma", "ML"
        correction, correction_rule = 0.5, "all-if-any-zero"
        note = (f"{separated}; the meta-regression uses the Reitsma model instead (ML, 0.5 added to every cell of "
                "every cohort when any cell is zero)")
        warnings.warn(note, MetaAnalysisWarning, stacklevel=2)
    if model == "reitsma":
        meth = method or "ML"
        if meth not in ("ML", "REML"):
            raise ConfigError(f"method={meth!r} is not valid for reitsma; choose 'ML' or 'REML'")
    else:
        meth = "laplace"
    kw = dict(model=model, method=meth, n_nodes=n_nodes, correction=correction, correction_rule=correction_rule,
              fallback=fallback)
    if model == "glmm":
        kw.update(correction=0.0, correction_rule="none")
    fit, msgs, _, _ = fit_model(counts, X, names, **kw)  # type: ignore[arg-type]
    null, msgs0, _, _ = fit_model(counts, np.ones((counts.k, 1)), ("(Intercept)",), **kw)  # type: ignore[arg-type]
    if fit.rho_fixed != null.rho_fixed:
        # compare like with like: refit whichever has rho free with rho fixed at 0
        from nodescope.meta._glmm import fit_glmm
        from nodescope.meta._reitsma import fit_reitsma

        def refit(Xd: np.ndarray, nm: tuple[str, ...]) -> BivariateFit:
            if model == "reitsma":
                y, s, _ = measure_data(counts, LOGITS, correction, correction_rule)
                return fit_reitsma(y, s, Xd, nm, method=meth, rho_fixed=True)
            return fit_glmm(counts, Xd, nm, n_nodes=n_nodes, rho_fixed=True)

        if not fit.rho_fixed:
            fit = refit(X, names)
        else:
            null = refit(np.ones((counts.k, 1)), ("(Intercept)",))
        msgs = (*msgs, "LRT compares both models with rho fixed at 0")
    if model == "reitsma" and meth == "REML":
        msgs = (*msgs, "REML log-likelihoods of models with different fixed effects are not comparable; use ML for the LRT")
    if separated:
        msgs = (note, *msgs)
    stat = max(0.0, 2 * (fit.loglik - null.loglik))
    df = 2 * (X.shape[1] - 1)
    return MetaRegressionResult(
        model=fit.model, terms=names, coefficients=_coef_table(fit, alpha), sigma=fit.sigma, loglik=fit.loglik,
        loglik_null=null.loglik, lrt_statistic=stat, lrt_df=df, lrt_p_value=float(stats.chi2.sf(stat, df)),
        k=counts.k, warnings=tuple(dict.fromkeys((*msgs, *msgs0))), fit=fit,
    )


@dataclass(frozen=True)
class SubgroupResult:
    """Separate pooled fits per level of a covariate plus the meta-regression LRT of a difference.

    Attributes
    ----------
    column : str
        The subgrouping column.
    fits : dict of str to BivariateResult
        The pooled fit of each level.
    regression : MetaRegressionResult
        The meta-regression on the column whose LRT tests a difference between levels.
    """

    column: str
    fits: dict[str, BivariateResult]
    regression: MetaRegressionResult

    def to_frame(self) -> pd.DataFrame:
        """Same as :meth:`summary_frame`."""
        return self.summary_frame()

    def summary(self, digits: int = 4) -> str:
        """Text: pooled estimates per level and the LRT of a difference; ``print()`` it."""
        return subgroup_summary(self, digits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``column``, ``levels`` (``BivariateResult.to_dict()`` each), ``regression``."""
        return subgroup_to_dict(self)

    def summary_frame(self) -> pd.DataFrame:
        """One row per (level, estimate): ``level, k, name, estimate, ci_low, ci_high, fallback``."""
        rows = []
        for level, r in self.fits.items():
            for e in (r.sensitivity, r.specificity, r.lr_positive, r.lr_negative, r.dor):
                rows.append({"level": level, "k": r.k, "name": e.name, "estimate": e.estimate, "ci_low": e.ci_low,
                             "ci_high": e.ci_high, "fallback": r.fallback})
        return pd.DataFrame(rows)


def _pooled(data: pd.DataFrame, model: ModelName, **kw: object) -> BivariateResult:
    if model == "glmm":
        return bivariate_glmm(data, **kw)  # type: ignore[arg-type]
    if model == "reitsma":
        return reitsma(data, **kw)  # type: ignore[arg-type]
    raise ConfigError(f"model={model!r} is not valid; choose 'glmm' or 'reitsma'")


def subgroup_analysis(data: pd.DataFrame, column: str, *, model: ModelName = "glmm",
                      alpha: float = 0.05, fallback: Fallback = "rho0") -> SubgroupResult:
    """Pool each level of ``column`` separately and test the difference by a bivariate meta-regression LRT.

    The per-level fits use the default method of the model (GLMM Laplace; Reitsma REML); the test uses ML
    (Reitsma) or the GLMM likelihood, ``df = 2 (levels - 1)``. The column is always treated as categorical: a
    numerically coded subgroup (``1/2/3``) is cast to ``str`` before the meta-regression, so the test compares
    the same levels as the per-level fits (a numeric column passed to :func:`meta_regression` directly is
    instead a linear trend with ``df = 2``). The caller's frame is not changed.
    """
    if column not in data.columns:
        raise StatisticsInputError(f"subgroup column {column!r} is not a column of the data; columns are {list(data.columns)}")
    data = data.assign(**{column: data[column].astype(str)})
    levels = sorted(data[column].unique())
    if len(levels) < 2:
        raise StatisticsInputError(f"subgroup column {column!r} has a single level {levels}; nothing to compare")
    fits = {}
    for lev in levels:
        sub = data[data[column] == lev]
        fits[lev] = _pooled(sub, model, alpha=alpha, fallback=fallback)
    reg = meta_regression(data, [column], model=model, alpha=alpha, fallback=fallback)
    return SubgroupResult(column=column, fits=fits, regression=reg)


def leave_one_out(data: pd.DataFrame, *, model: ModelName = "glmm", alpha: float = 0.05,
                  fallback: Fallback = "rho0", study_col: str = "study") -> pd.DataFrame:
    """Refit without each cohort in turn; one row per omitted cohort with pooled sens/spec/DOR and CIs.

    Each row names the model actually fitted (``model``, ``rho_fixed``, ``fallback``): a refit may fall back to
    rho = 0 or, for the GLMM, to the Reitsma model, independently of the other refits.
    """
    counts = as_counts(data)
    rows = []
    warm: dict[str, object] = {}
    if model == "glmm":  # warm start from the fit on all cohorts (same estimates, fewer iterations)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetaAnalysisWarning)
            warm["start"] = _pooled(data, model, alpha=alpha, fallback=fallback)
    for i in range(counts.k):
        logger.info("leave-one-out: refit %d of %d, without %s", i + 1, counts.k, counts.labels[i])
        sub = data.iloc[[j for j in range(counts.k) if j != i]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetaAnalysisWarning)
            r = _pooled(sub, model, alpha=alpha, fallback=fallback, **warm)
        row = {"omitted": counts.labels[i], "k": r.k, "model": r.model, "rho_fixed": r.rho_fixed}
        for e in (r.sensitivity, r.specificity, r.dor, r.auc):
            row.update({e.name: e.estimate, f"{e.name}_ci_low": e.ci_low, f"{e.name}_ci_high": e.ci_high})
        row["fallback"] = r.fallback
        rows.append(row)
    return pd.DataFrame(rows)


def one_per_study(data: pd.DataFrame, *, study_col: str = "study", by: Literal["youden"] = "youden") -> pd.DataFrame:
    """Keep, per study, the cohort with the highest Youden index ``sens + spec - 1`` (raw proportions).

    Ties keep the first row in the input order. Returns a copy of the selected rows (original index kept);
    the input is not changed.
    """
    if by != "youden":
        raise ConfigError(f"by={by!r} is not valid; only 'youden' is implemented")
    if study_col not in data.columns:
        raise StatisticsInputError(f"study column {study_col!r} is not in the data; columns are {list(data.columns)}")
    counts = as_counts(data)
    youden = counts.tp / counts.n_diseased + counts.tn / counts.n_healthy - 1
    tmp = pd.DataFrame({"study": data[study_col].to_numpy(), "youden": youden, "pos": np.arange(len(data))})
    keep = tmp.sort_values(["study", "youden", "pos"], ascending=[True, False, True], kind="stable")
    keep = keep.drop_duplicates("study", keep="first").sort_values("pos")["pos"].to_numpy()
    out = data.iloc[keep].copy()
    out["youden"] = youden[keep]
    return out


@dataclass(frozen=True)
class PostTestResult:
    """Fagan nomogram numbers: post-test probabilities after a positive and a negative test."""

    pretest: float
    positive: Estimate
    negative: Estimate


def post_test_probability(pretest: float, lr_positive: Estimate | float,
                          lr_negative: Estimate | float) -> PostTestResult:
    """Post-test probability ``= post-odds / (1 + post-odds)``, ``post-odds = pre-odds x LR`` (Fagan 1975).

    CIs (when the LRs are :class:`Estimate` with CIs) map the LR interval bounds through the same monotone
    formula, holding the pre-test probability fixed.
    """
    if not (isinstance(pretest, int | float) and 0 < pretest < 1):
        raise ConfigError(f"pretest must be a probability strictly between 0 and 1; got {pretest!r}")
    odds = pretest / (1 - pretest)

    def post(lr: Estimate | float, name: str) -> Estimate:
        if isinstance(lr, Estimate):
            vals = (lr.estimate, lr.ci_low, lr.ci_high)
            alpha = lr.alpha
        else:
            if not lr > 0:
                raise ConfigError(f"{name} likelihood ratio must be > 0; got {lr!r}")
            vals = (float(lr), float("nan"), float("nan"))
            alpha = 0.05
        p = [odds * v / (1 + odds * v) for v in vals]
        return Estimate(f"post_test_{name}", p[0], p[1], p[2], "fagan-bayes", alpha, None,
                        f"pre-test probability {pretest}", {"lr": vals[0]})

    return PostTestResult(pretest=float(pretest), positive=post(lr_positive, "positive"),
                          negative=post(lr_negative, "negative"))
