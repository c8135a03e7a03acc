"""SROC curves beside the Rutter-Gatsonis curve of the main fit: Moses-Littenberg, partial AUC, and the SROC used
when the main fit's AUC is undefined.

All curves here are straight lines in (logit FPR, logit sens) space, ``logit(sens) = a + b logit(FPR)``:

- **Rutter-Gatsonis** (the bivariate fit's SROC; :meth:`BivariateResult.sroc_curve`): ``b = tau_sens / tau_spec``,
  ``a = mu_sens + b mu_spec``. Undefined when a between-cohort variance is zero (``b`` is 0 or infinite).
- **Moses-Littenberg** (Moses, Shapiro & Littenberg, Stat Med 1993;12:1293-1316; R ``mada::mslSROC``): per cohort
  ``D = logit(sens) - logit(FPR)`` (the log DOR) and ``S = logit(sens) + logit(FPR)``, ordinary least squares
  ``D = A + B S`` (unweighted, as mada), hence ``a = A / (1 - B)``, ``b = (1 + B) / (1 - B)`` (defined for
  ``B < 1``). Continuity correction as mada's default: 0.5 added to every cell of every cohort when any cell is
  zero (``"all-if-any-zero"``). No random effects, so it exists when a between-cohort variance is zero; it has no
  accepted CI.
- **Area**: ``AUC = int_0^1 expit(a + b logit t) dt`` (adaptive quadrature after ``t = expit(x)``); the **partial
  AUC** over the observed FPR range ``[min FPR_i, max FPR_i]`` is the same integral over that range, reported with
  its normalised form ``pAUC / (max - min)`` (the mean sensitivity of the curve over the range).

mada's ``AUC()`` and its ``pAUC`` are trapezoid sums on 99 points divided by 99 (``fpr = 0.01..0.99`` for the AUC,
99 points across the observed range for the pAUC); nodescope integrates exactly. The relation is stated in
docs/meta-models.md and computed in tests/meta/reference/meta_api15.R.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import integrate
from scipy.special import expit, logit

from nodescope._estimate import Estimate
from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.meta._counts import Correction, Counts, as_counts, corrected

__all__ = ["CURVE_LABELS", "MosesLittenbergResult", "SrocSummary", "line_auc", "moses_littenberg", "observed_fpr_range",
           "partial_auc", "sroc_summary"]

SrocCurve = Literal["rutter-gatsonis", "moses"]


def line_auc(a: float, b: float, fpr_low: float = 0.0, fpr_high: float = 1.0) -> float:
    """``int_{fpr_low}^{fpr_high} expit(a + b logit t) dt`` for the SROC line ``logit(sens) = a + b logit(FPR)``.

    Parameters
    ----------
    a, b : float
        Intercept and slope of the line in (logit FPR, logit sens) space.
    fpr_low, fpr_high : float
        The FPR range, ``0 <= fpr_low < fpr_high <= 1``.
    """
    if not 0.0 <= fpr_low < fpr_high <= 1.0:
        raise ConfigError(f"FPR range must satisfy 0 <= low < high <= 1; got ({fpr_low!r}, {fpr_high!r})")
    lo = -np.inf if fpr_low == 0 else float(logit(fpr_low))
    hi = np.inf if fpr_high == 1 else float(logit(fpr_high))
    # t = expit(x): dt = expit(x) expit(-x) dx, a smooth integrand on the real line
    val, _ = integrate.quad(lambda x: expit(a + b * x) * expit(x) * expit(-x), lo, hi,
                            epsabs=1e-13, epsrel=1e-11, limit=200)
    return float(val)


def observed_fpr_range(data: pd.DataFrame | Counts) -> tuple[float, float]:
    """``(min, max)`` of the cohorts' observed ``FPR = FP / (FP + TN)`` (no continuity correction)."""
    c = as_counts(data)
    fpr = c.fp / (c.fp + c.tn)
    return float(fpr.min()), float(fpr.max())


def partial_auc(a: float, b: float, fpr_range: tuple[float, float], *, curve: str, alpha: float = 0.05,
                k: int | None = None) -> Estimate:
    """Partial area under the SROC line over ``fpr_range`` (no CI).

    Returns
    -------
    Estimate
        ``name="partial_auc"``, the area ``int sens dFPR`` over the range; ``extra``: ``fpr_low``, ``fpr_high`` and
        ``normalised`` (area / width, the curve's mean sensitivity over the range). Undefined (``nan``) when the
        range has no width.
    """
    lo, hi = fpr_range
    method = f"sroc-{curve}-partial-auc-observed-fpr"
    if not hi > lo:
        return Estimate("partial_auc", float("nan"), float("nan"), float("nan"), method, alpha, k,
                        f"undefined: the observed FPR range [{lo:.3g}, {hi:.3g}] has no width", {})
    val = line_auc(a, b, lo, hi)
    return Estimate("partial_auc", val, float("nan"), float("nan"), method, alpha, k,
                    f"area over the observed FPR range [{lo:.3f}, {hi:.3f}]; no CI",
                    {"fpr_low": lo, "fpr_high": hi, "normalised": val / (hi - lo)})


@dataclass(frozen=True)
class MosesLittenbergResult:
    """The Moses-Littenberg SROC regression ``D = A + B S`` and its curve (see the module docstring).

    Attributes
    ----------
    intercept, slope : float
        ``A`` and ``B`` of the OLS fit of ``D`` on ``S``; ``intercept_se``, ``slope_se`` their OLS SEs
        (``k - 2`` df).
    a, b : float
        The SROC line ``logit(sens) = a + b logit(FPR)``: ``a = A / (1 - B)``, ``b = (1 + B) / (1 - B)``
        (``nan`` when ``B >= 1``).
    auc, partial_auc : Estimate
        Area under the curve over FPR in (0, 1) and over the observed FPR range (no CIs).
    correction, correction_rule, corrected
        The continuity correction, its rule and the cohorts that received it.
    """

    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    a: float
    b: float
    auc: Estimate
    partial_auc: Estimate
    k: int
    correction: float
    correction_rule: str
    corrected: tuple[str, ...]
    d: np.ndarray = field(repr=False)
    s: np.ndarray = field(repr=False)

    def sroc_curve(self, fpr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The curve ``(fpr, sens)``; default grid ``fpr = 0.001 .. 0.999``; ``nan`` when ``B >= 1``."""
        f = np.linspace(0.001, 0.999, 500) if fpr is None else np.asarray(fpr, dtype=float)
        return f, expit(self.a + self.b * logit(f))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"intercept": self.intercept, "slope": self.slope, "intercept_se": self.intercept_se,
                "slope_se": self.slope_se, "a": self.a, "b": self.b, "auc": self.auc.to_dict(),
                "partial_auc": self.partial_auc.to_dict(), "k": self.k, "correction": self.correction,
                "correction_rule": self.correction_rule, "corrected": list(self.corrected)}


def moses_littenberg(data: pd.DataFrame | Counts, *, correction: float = 0.5,
                     correction_rule: Correction = "all-if-any-zero", alpha: float = 0.05) -> MosesLittenbergResult:
    """Moses-Littenberg SROC: OLS of ``D = logit sens - logit FPR`` on ``S = logit sens + logit FPR``.

    Parameters
    ----------
    data : DataFrame or Counts
        ``TP, FP, FN, TN`` per cohort (at least 3 cohorts).
    correction : float, default 0.5
    correction_rule : str, default "all-if-any-zero"
        mada's ``mslSROC`` default (``correction.control = "all"``); see :func:`nodescope.meta.univariate_pool`
        for the rules.
    alpha : float, default 0.05
        Recorded in the estimates (they have no CI).

    Returns
    -------
    MosesLittenbergResult

    References
    ----------
    Moses LE, Shapiro D, Littenberg B. Combining independent studies of a diagnostic test into a summary ROC
    curve. Stat Med 1993;12:1293-1316. Doebler P. mada (R package), ``mslSROC()``.
    """
    counts = as_counts(data)
    if counts.k < 3:
        raise StatisticsInputError(f"the Moses-Littenberg regression needs at least 3 cohorts; got {counts.k}")
    cc, mask = corrected(counts, correction, correction_rule)
    with np.errstate(divide="ignore"):
        ls, lf = np.log(cc.tp / cc.fn), np.log(cc.fp / cc.tn)
    if not (np.all(np.isfinite(ls)) and np.all(np.isfinite(lf))):
        bad = [counts.labels[i] for i in np.flatnonzero(~(np.isfinite(ls) & np.isfinite(lf)))]
        raise StatisticsInputError(f"logit sens / logit FPR is infinite for cohort(s) {bad}: a zero cell without "
                                   "continuity correction; use correction > 0")
    d, s = ls - lf, ls + lf
    if np.ptp(s) <= 1e-12:
        raise StatisticsInputError("the Moses-Littenberg regression needs cohorts with different S = logit sens + "
                                   "logit FPR; all cohorts have the same S")
    X = np.column_stack([np.ones_like(s), s])
    coef, *_ = np.linalg.lstsq(X, d, rcond=None)
    resid = d - X @ coef
    df = counts.k - 2
    s2 = float(resid @ resid / df) if df > 0 else float("nan")
    se = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
    big_a, big_b = float(coef[0]), float(coef[1])
    labels = tuple(counts.labels[i] for i in np.flatnonzero(mask))
    rng = observed_fpr_range(counts)
    if big_b < 1:
        a, b = big_a / (1 - big_b), (1 + big_b) / (1 - big_b)
        auc = Estimate("auc", line_auc(a, b), float("nan"), float("nan"), "sroc-moses-littenberg", alpha, counts.k,
                       "no CI", {"a": a, "b": b})
        pauc = partial_auc(a, b, rng, curve="moses-littenberg", alpha=alpha, k=counts.k)
    else:
        a = b = float("nan")
        why = f"undefined: the Moses-Littenberg slope B = {big_b:.3g} >= 1 gives no increasing SROC curve"
        auc = Estimate("auc", a, a, a, "sroc-moses-littenberg", alpha, counts.k, why, {})
        pauc = Estimate("partial_auc", a, a, a, "sroc-moses-littenberg-partial-auc-observed-fpr", alpha, counts.k,
                        why, {})
    return MosesLittenbergResult(
        intercept=big_a, slope=big_b, intercept_se=float(se[0]), slope_se=float(se[1]), a=a, b=b, auc=auc,
        partial_auc=pauc, k=counts.k, correction=float(correction), correction_rule=correction_rule,
        corrected=labels, d=d, s=s)


CURVE_LABELS = {
    "rutter-gatsonis": "Rutter-Gatsonis SROC of the main fit",
    "rutter-gatsonis-reitsma-rho0": "Rutter-Gatsonis SROC of the Reitsma fit with rho fixed at 0 (REML, 0.5 added "
                                    "to every cell when any cell is zero)",
    "moses-littenberg": "Moses-Littenberg SROC (unweighted regression of D on S, no random effects)",
}


@dataclass(frozen=True)
class SrocSummary:
    """The SROC curve a report shows, its AUC and partial AUC, and why the main fit's AUC is undefined (if it is).

    Attributes
    ----------
    curve : {"rutter-gatsonis", "rutter-gatsonis-reitsma-rho0", "moses-littenberg", "none"}
        Which curve: the main fit's (default when defined), the rho = 0 Reitsma fit's (when the main fit has a
        between-cohort variance at zero and this fit has none), Moses-Littenberg (asked for, or the last resort),
        or none (no curve could be drawn).
    label : str
        The curve in words (:data:`CURVE_LABELS`).
    auc, partial_auc : Estimate
        Area under that curve over FPR in (0, 1) and over the observed FPR range (see :func:`partial_auc`).
    main_auc_reason : str
        ``""`` when the main fit's SROC AUC is defined, otherwise why it is not.
    a, b : float
        The curve ``logit(sens) = a + b logit(FPR)`` (``nan`` for ``"none"``).
    moses : MosesLittenbergResult or None
    rho0_fit : BivariateResult or None
        The rho = 0 Reitsma fit, when it was tried.
    """

    curve: str
    label: str
    auc: Estimate
    partial_auc: Estimate
    main_auc_reason: str
    a: float
    b: float
    moses: MosesLittenbergResult | None = None
    rho0_fit: Any = None

    def sroc_curve(self, fpr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(fpr, sens)`` of the curve; default grid ``fpr = 0.001 .. 0.999``."""
        f = np.linspace(0.001, 0.999, 500) if fpr is None else np.asarray(fpr, dtype=float)
        return f, expit(self.a + self.b * logit(f))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        fit = self.rho0_fit
        return {"curve": self.curve, "label": self.label, "auc": self.auc.to_dict(),
                "partial_auc": self.partial_auc.to_dict(), "main_auc_undefined_reason": self.main_auc_reason,
                "a": self.a, "b": self.b, "moses": None if self.moses is None else self.moses.to_dict(),
                "rho0_fit": None if fit is None else {"model": fit.model, "tau2_sens": fit.tau2_sens,
                                                      "tau2_spec": fit.tau2_spec, "auc": fit.auc.to_dict()}}


def _variance_reason(fit: Any) -> str:
    return (f"{fit.model} estimates tau2 logit sens = {fit.tau2_sens:.3g} and tau2 logit spec = {fit.tau2_spec:.3g}; "
            "with a between-cohort variance at zero the Rutter-Gatsonis slope tau_sens / tau_spec is 0 or infinite, "
            "so the SROC curve and its AUC are not defined")


def _reitsma_rho0(counts: Counts, alpha: float) -> Any:
    """The Reitsma REML fit with rho fixed at 0 (mada's 0.5 all-if-any-zero correction)."""
    from nodescope.meta._bivariate import _normal_model_result
    from nodescope.meta._counts import LOGITS, measure_data
    from nodescope.meta._reitsma import fit_reitsma

    y, s, mask = measure_data(counts, LOGITS, 0.5, "all-if-any-zero")
    fit = fit_reitsma(y, s, np.ones((counts.k, 1)), ("(Intercept)",), method="REML", rho_fixed=True)
    return _normal_model_result(fit, counts, mask, 0.5, "all-if-any-zero", alpha=alpha,
                                fallback="rho fixed at 0 (alternative SROC)", warnings_=(), ci_method="delta",
                                n_sim=10000, seed=0)


def sroc_summary(pooled: Any, data: pd.DataFrame | Counts, *, curve: SrocCurve = "rutter-gatsonis",
                 alpha: float = 0.05) -> SrocSummary:
    """Choose the SROC curve to report and compute its AUC and partial AUC over the observed FPR range.

    Parameters
    ----------
    pooled : BivariateResult
        The main fit.
    data : DataFrame or Counts
        The cohorts it was fitted on.
    curve : {"rutter-gatsonis", "moses"}
        ``"rutter-gatsonis"`` (default): the main fit's curve; when its AUC is undefined (a between-cohort variance
        at zero), the curve of the Reitsma fit with rho fixed at 0 when both its variances are positive, otherwise
        Moses-Littenberg. ``"moses"``: Moses-Littenberg.
    alpha : float

    Returns
    -------
    SrocSummary
    """
    from nodescope.meta._summary import _sroc_ab

    if curve not in ("rutter-gatsonis", "moses"):
        raise ConfigError(f"sroc curve {curve!r} is not valid; choose 'rutter-gatsonis' or 'moses'")
    counts = as_counts(data)
    rng = observed_fpr_range(counts)
    reason = "" if pooled.hsroc is not None else _variance_reason(pooled)
    moses = moses_littenberg(counts, alpha=alpha) if counts.k >= 3 else None
    rho0 = None
    if curve == "rutter-gatsonis" and pooled.hsroc is not None:
        a, b = _sroc_ab(pooled.mu, np.sqrt(np.diag(pooled.sigma)))
        return SrocSummary("rutter-gatsonis", CURVE_LABELS["rutter-gatsonis"], pooled.auc,
                           partial_auc(a, b, rng, curve="rutter-gatsonis", alpha=alpha, k=counts.k), "", a, b,
                           moses=moses)
    if curve == "rutter-gatsonis" and not (pooled.model.startswith("reitsma") and pooled.rho_fixed):
        try:
            rho0 = _reitsma_rho0(counts, alpha)
        except (ValueError, np.linalg.LinAlgError) as err:  # not estimable: go on to Moses-Littenberg
            reason += f"; the Reitsma fit with rho fixed at 0 could not be made ({err})"
        if rho0 is not None and np.all(np.diag(rho0.sigma) > 1e-6) and rho0.hsroc is not None:
            a, b = _sroc_ab(rho0.mu, np.sqrt(np.diag(rho0.sigma)))
            name = "rutter-gatsonis-reitsma-rho0"
            auc = Estimate("auc", rho0.auc.estimate, rho0.auc.ci_low, rho0.auc.ci_high, f"sroc-{name}", alpha,
                           counts.k, rho0.auc.note, dict(rho0.auc.extra))
            return SrocSummary(name, CURVE_LABELS[name], auc, partial_auc(a, b, rng, curve=name, alpha=alpha,
                                                                          k=counts.k), reason, a, b, moses, rho0)
        if rho0 is not None:
            reason += (f"; the Reitsma fit with rho fixed at 0 has a variance at zero too (tau2 logit sens = "
                       f"{rho0.tau2_sens:.3g}, tau2 logit spec = {rho0.tau2_spec:.3g})")
    if moses is not None and np.isfinite(moses.a):
        return SrocSummary("moses-littenberg", CURVE_LABELS["moses-littenberg"], moses.auc, moses.partial_auc,
                           reason, moses.a, moses.b, moses, rho0)
    why = "no SROC curve: " + (moses.auc.note if moses is not None else
                               f"Moses-Littenberg needs at least 3 cohorts; got {counts.k}")
    nan = float("nan")
    return SrocSummary("none", "no SROC curve", Estimate("auc", nan, nan, nan, "none", alpha, counts.k, why),
                       Estimate("partial_auc", nan, nan, nan, "none", alpha, counts.k, why), reason, nan, nan,
                       moses, rho0)
