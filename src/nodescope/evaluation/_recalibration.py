"""Logistic recalibration of a model at a new site from a small labelled local sample, and its learning curve.

With ``L = logit(p)`` the model's linear predictor (Steyerberg 2019, ch. 20; Van Calster et al. 2016):

* ``"intercept"`` (recalibration-in-the-large): ``logit p' = a + L``; ``a`` is the calibration intercept of the
  local sample (``logit P(y=1) = a + offset(L)``). It corrects the average risk and keeps the model's spread.
* ``"logistic"`` (logistic recalibration): ``logit p' = a' + b L``; ``a'``, ``b`` are the intercept and slope of
  ``logit P(y=1) = a' + b L`` fitted on the local sample. It also shrinks (``b < 1``) or stretches the spread.

Both fits are the package's one calibration fit (``_calibration._logistic_fits``: statsmodels GLM, binomial,
Wald intervals), the same numbers ``calibration_metrics`` reports as ``intercept``, ``recalibration_intercept``
and ``slope``. A monotone recalibration (``b > 0``) leaves the ranking, and so the AUC, unchanged; it moves the
probabilities, and with them the operating point of a fixed probability threshold.

:func:`recalibration_curve` answers "how many local cases are needed": for each size ``n`` it draws ``repeats``
random local samples of ``n`` patients, recalibrates on them and evaluates the recalibrated predictions on the rest
of the site (calibration intercept and slope, Brier score, and sensitivity/specificity at a fixed threshold), beside
the unrecalibrated predictions on the same rest.

References
----------
Steyerberg EW. Clinical Prediction Models, 2nd ed. Springer 2019 (ch. 20, updating for a new setting).
Van Calster B et al. A calibration hierarchy for risk models. J Clin Epidemiol 2016;74:167-176.
Janssen KJM et al. Updating methods improved the performance of a clinical prediction model in new patients.
J Clin Epidemiol 2008;61:76-86.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._bootstrap import SeedLike, make_rng
from nodescope.evaluation._calibration import _logistic_fits
from nodescope.evaluation._validation import (
    as_binary_labels,
    as_groups,
    as_probabilities,
    check_alpha,
    check_choice,
)

__all__ = ["RECALIBRATION_METHODS", "Recalibration", "RecalibrationCurve", "recalibrate", "recalibration_curve"]

RecalibrationMethod = Literal["intercept", "logistic"]
RECALIBRATION_METHODS: tuple[str, ...] = ("intercept", "logistic")
#: Local sample sizes tried by default (those leaving at least half of the site to evaluate on are used).
DEFAULT_SIZES: tuple[int, ...] = (10, 20, 30, 50, 75, 100, 150, 200, 300, 500)
#: Fewest patients left to evaluate a local sample on.
MIN_REST = 10
CURVE_METRICS: tuple[str, ...] = ("calibration_in_the_large", "calibration_slope", "brier", "sensitivity",
                                  "specificity")


@dataclass(frozen=True)
class Recalibration:
    """A logistic recalibration ``logit p' = intercept + slope * logit(p)`` fitted on a local sample.

    Attributes
    ----------
    method : {"intercept", "logistic"}
    intercept : Estimate
        ``a`` (``"intercept"``: the calibration intercept, Wald CI) or ``a'`` (``"logistic"``: the intercept of the
        joint fit; its interval is not computed, ``nan``).
    slope : Estimate
        ``b`` with its Wald CI (``"logistic"``), or 1 fixed (``"intercept"``, method ``"fixed"``).
    n, n_positive : int
        Rows of the local sample used by the fit (rows with ``p`` exactly 0 or 1 are left out, as in the
        calibration fit) and their events.
    note : str
    """

    method: str
    intercept: Estimate
    slope: Estimate
    n: int
    n_positive: int
    note: str = ""

    def apply(self, y_prob: ArrayLike) -> NDArray[np.float64]:
        """Recalibrated probabilities ``expit(intercept + slope * logit(p))``, shape (N,).

        A ``p`` of exactly 0 or 1 stays 0 or 1 (its logit is infinite) when the slope is positive.
        """
        p = as_probabilities(y_prob, int(np.size(y_prob)), "y_prob")
        with np.errstate(divide="ignore"):
            lp = np.log(p) - np.log1p(-p)
        return np.asarray(expit(self.intercept.estimate + self.slope.estimate * lp), dtype=np.float64)

    def summary_frame(self) -> pd.DataFrame:
        """Two rows (``intercept``, ``slope``): estimate, interval, method, n, note."""
        out = pd.concat([self.intercept.summary_frame(), self.slope.summary_frame()], ignore_index=True)
        out.insert(0, "recalibration", self.method)
        return out


def _fit(y: NDArray[np.bool_], p: NDArray[np.float64], alpha: float,
         methods: Sequence[str]) -> dict[str, Recalibration | str]:
    """Each method's recalibration from one calibration fit, or the reason it is undefined."""
    e_int, e_slope, a2, note = _logistic_fits(y, p, alpha)
    n, n_pos = e_int.n or 0, int(y[(p > 0) & (p < 1)].sum())
    out: dict[str, Recalibration | str] = {}
    for m in methods:
        if m == "intercept":
            if not e_int.defined:
                out[m] = e_int.note or "undefined intercept"
                continue
            a = Estimate("recalibration_intercept", e_int.estimate, e_int.ci_low, e_int.ci_high, e_int.method,
                         alpha, n, e_int.note, dict(e_int.extra))
            b = Estimate("recalibration_slope", 1.0, math.nan, math.nan, "fixed", alpha, n, "fixed at 1", {})
        else:
            if not (e_slope.defined and math.isfinite(a2)):
                out[m] = e_slope.note or "undefined slope"
                continue
            a = Estimate("recalibration_intercept", a2, math.nan, math.nan, "glm", alpha, n,
                         "interval not computed", {})
            b = Estimate("recalibration_slope", e_slope.estimate, e_slope.ci_low, e_slope.ci_high, e_slope.method,
                         alpha, n, e_slope.note, dict(e_slope.extra))
        out[m] = Recalibration(m, a, b, n, n_pos, note)
    return out


def recalibrate(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    method: RecalibrationMethod = "logistic",
    alpha: float = 0.05,
) -> Recalibration:
    """Fit a logistic recalibration of predicted probabilities on a labelled local sample.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 outcomes of the local sample.
    y_prob : array-like, shape (N,)
        The model's predicted probabilities of outcome 1 for the same cases.
    method : {"intercept", "logistic"}, default "logistic"
        ``"intercept"``: ``logit p' = a + logit(p)``; ``"logistic"``: ``logit p' = a' + b logit(p)``.
    alpha : float, default 0.05
        For the Wald intervals.

    Returns
    -------
    Recalibration
        Apply it to new predictions of the same site with :meth:`Recalibration.apply`.

    Raises
    ------
    StatisticsInputError
        Bad labels or probabilities, one outcome class only, or (``"logistic"``) a sample that ``logit(p)``
        separates perfectly or whose predictions are all equal, so the fit has no maximum-likelihood estimate.
    """
    y = as_binary_labels(y_true)
    p = as_probabilities(y_prob, y.shape[0], "y_prob")
    method = check_choice("method", method, RECALIBRATION_METHODS)  # type: ignore[assignment]
    alpha = check_alpha(alpha)
    fitted = _fit(y, p, alpha, (method,))[method]
    if isinstance(fitted, str):
        raise StatisticsInputError(f"{method} recalibration on {y.shape[0]} case(s) ({int(y.sum())} positive): "
                                   f"{fitted}")
    return fitted


@dataclass(frozen=True)
class RecalibrationCurve:
    """How recalibration from ``n`` local patients performs on the rest of the site (see the module docstring).

    Attributes
    ----------
    table : DataFrame
        One row per ``(n_local, method, metric)``: ``n_local``, ``method`` (``none``, ``intercept``,
        ``logistic``), ``metric`` (:data:`CURVE_METRICS`), ``median``, ``q_low``, ``q_high`` (the ``alpha/2`` and
        ``1 - alpha/2`` quantiles over the repeats), ``mean``, ``n_repeats`` (repeats with a defined value),
        ``n_failed`` (repeats whose local sample could not be fitted: one class only, separation).
    repeats : DataFrame
        Every repeat: ``n_local``, ``repeat``, ``method``, one column per metric (``nan`` when undefined).
    sizes : tuple of int
        Local sample sizes used (patients).
    skipped_sizes : tuple of int
        Sizes asked for that leave fewer than half of the site (or fewer than 10 patients) to evaluate on.
    threshold : float or None
        The fixed probability threshold of the sensitivity/specificity columns (``score >= threshold``).
    n, n_patients : int
        Rows and patients of the site.
    alpha : float
    seed : int or None
    """

    table: pd.DataFrame
    repeats: pd.DataFrame
    sizes: tuple[int, ...]
    skipped_sizes: tuple[int, ...]
    threshold: float | None
    n: int
    n_patients: int
    alpha: float
    seed: int | None


def check_curve_options(sizes: Sequence[int] | None, repeats: int) -> None:
    """Refuse local sample sizes that are not ints >= 2 and ``repeats`` that is not an int >= 1."""
    for s in list(sizes or ()):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 2:
            raise StatisticsInputError(f"sizes: each local sample size must be an int >= 2; got {s!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise StatisticsInputError(f"repeats must be an int >= 1; got {repeats!r}")


def _check_sizes(sizes: Sequence[int] | None, n_groups: int) -> tuple[list[int], list[int]]:
    """The usable local sample sizes (at least half of the site, and MIN_REST patients, left to evaluate on)."""
    explicit = sizes is not None
    asked = list(DEFAULT_SIZES if sizes is None else sizes)
    limit = min(n_groups // 2, n_groups - MIN_REST)
    use = sorted({int(s) for s in asked if s <= limit})
    skipped = sorted({int(s) for s in asked if s > limit})
    if not use:
        what = f"sizes {asked}" if explicit else "the default sizes"
        raise StatisticsInputError(f"the site has {n_groups} patient(s): {what} leave fewer than half of them (or "
                                   f"fewer than {MIN_REST}) to evaluate on; use sizes of at most {max(limit, 0)}")
    return use, skipped


def _evaluate(y: NDArray[np.bool_], p: NDArray[np.float64], threshold: float | None,
              alpha: float) -> dict[str, float]:
    """Calibration intercept and slope (the package's fit), Brier, and sensitivity/specificity at ``threshold``."""
    e_int, e_slope, _, _ = _logistic_fits(y, p, alpha)
    out = {"calibration_in_the_large": e_int.estimate, "calibration_slope": e_slope.estimate,
           "brier": float(np.mean((p - y) ** 2))}
    if threshold is not None:
        call = p >= threshold
        out["sensitivity"] = float(call[y].mean()) if y.any() else math.nan
        out["specificity"] = float((~call[~y]).mean()) if (~y).any() else math.nan
    return out


def recalibration_curve(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    sizes: Sequence[int] | None = None,
    repeats: int = 200,
    methods: Sequence[RecalibrationMethod] = ("intercept", "logistic"),
    threshold: float | None = None,
    groups: ArrayLike | None = None,
    alpha: float = 0.05,
    seed: SeedLike = 0,
) -> RecalibrationCurve:
    """Learning curve of recalibration: repeated random local samples of ``n`` patients, evaluated on the rest.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 outcomes at the site.
    y_prob : array-like, shape (N,)
        The model's predicted probabilities at the site (before recalibration).
    sizes : sequence of int, optional
        Local sample sizes in patients; default :data:`DEFAULT_SIZES`. Sizes leaving fewer than half of the
        site's patients (or fewer than 10) to evaluate on are skipped and listed in ``skipped_sizes``.
    repeats : int, default 200
        Random local samples per size (simple random samples of patients, without replacement).
    methods : sequence of {"intercept", "logistic"}
        The recalibrations compared with the unrecalibrated predictions (``"none"``).
    threshold : float, optional
        A fixed probability threshold (the source model's): sensitivity and specificity of
        ``p' >= threshold`` on the rest are reported when given.
    groups : array-like, shape (N,), optional
        Patient ids: a local sample takes whole patients. Default: one patient per row.
    alpha : float, default 0.05
        The band is the ``alpha/2`` to ``1 - alpha/2`` quantile range over repeats.
    seed : int, Generator or None, default 0

    Returns
    -------
    RecalibrationCurve

    Raises
    ------
    StatisticsInputError
        Bad inputs, a site too small for any size, ``repeats < 1``, an unknown method or a threshold outside [0, 1].
    """
    y = as_binary_labels(y_true)
    p = as_probabilities(y_prob, y.shape[0], "y_prob")
    alpha = check_alpha(alpha)
    methods = [check_choice("methods", m, RECALIBRATION_METHODS) for m in methods]  # type: ignore[misc]
    check_curve_options(sizes, repeats)
    if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
        raise StatisticsInputError(f"threshold must be a probability in [0, 1]; got {threshold!r}")
    g = as_groups(groups, y.shape[0])
    ids = np.arange(y.shape[0]) if g is None else g
    n_groups = int(ids.max()) + 1 if ids.size else 0
    use, skipped = _check_sizes(sizes, n_groups)
    rng = make_rng(seed)
    rows = []
    for n_local in use:
        for r in range(int(repeats)):
            local = np.isin(ids, rng.choice(n_groups, size=n_local, replace=False))
            rest = ~local
            fits = _fit(y[local], p[local], alpha, methods)
            rows.append({"n_local": n_local, "repeat": r, "method": "none",
                         **_evaluate(y[rest], p[rest], threshold, alpha)})
            for m in methods:
                fit = fits[m]
                vals = (_evaluate(y[rest], fit.apply(p[rest]), threshold, alpha) if isinstance(fit, Recalibration)
                        else dict.fromkeys(CURVE_METRICS[:3], math.nan))
                rows.append({"n_local": n_local, "repeat": r, "method": m, "failed": isinstance(fit, str), **vals})
    reps = pd.DataFrame(rows)
    reps["failed"] = reps["failed"].fillna(False).astype(bool)
    metrics = [c for c in CURVE_METRICS if c in reps.columns]
    return RecalibrationCurve(_summarise(reps, metrics, alpha), reps, tuple(use), tuple(skipped),
                              None if threshold is None else float(threshold), int(y.shape[0]), n_groups, alpha,
                              seed if isinstance(seed, int) else None)


def _summarise(reps: pd.DataFrame, metrics: list[str], alpha: float) -> pd.DataFrame:
    """Median, quantile band and mean of each metric over the repeats, per size and method."""
    out = []
    for (n_local, method), part in reps.groupby(["n_local", "method"], sort=False):
        failed = int(part["failed"].sum())
        for metric in metrics:
            v = part[metric].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            lo, med, hi = (np.quantile(v, [alpha / 2, 0.5, 1 - alpha / 2]) if v.size else (math.nan,) * 3)
            out.append({"n_local": int(n_local), "method": method, "metric": metric, "median": float(med),
                        "q_low": float(lo), "q_high": float(hi), "mean": float(v.mean()) if v.size else math.nan,
                        "n_repeats": int(v.size), "n_failed": failed})
    return pd.DataFrame(out)
