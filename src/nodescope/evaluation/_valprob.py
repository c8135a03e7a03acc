"""Validation indices of predicted probabilities as rms ``val.prob`` prints them, with standard errors.

For 0/1 outcomes ``y`` and predicted probabilities ``p`` (``L = logit(p)``; rows with ``p`` exactly 0 or 1 are
left out of every logistic index, as ``val.prob`` does, and counted in the note; ``n`` is the number of rows
kept there):

* ``C`` (``C (ROC)``): the concordance index = AUC, with the DeLong SE (pROC ``var()``); ``Dxy = 2 (C - 1/2)``,
  SE ``2 SE(C)``.
* ``D:Chi-sq = L0 - L01``: ``L0`` the -2 log likelihood of the intercept-only model (``logit P = log(ybar/(1-ybar))``),
  ``L01`` that of the predictions as they are (``logit P = L``). ``D = (D:Chi-sq - 1) / n`` is Harrell's
  discrimination index; ``D:p`` its p-value on 1 df (rms 6.5 prints ``NA`` here; the 1-df value is what its
  documentation describes).
* ``R2``: Nagelkerke's ``(1 - exp(-D:Chi-sq / n)) / (1 - exp(-L0 / n))`` of the predictions as they are.
* ``U:Chi-sq = L01 - L_recal`` with ``L_recal`` the -2 log likelihood of the recalibration fit
  ``logit P = a + b L``; ``U = (U:Chi-sq - 2) / n`` is the unreliability index, ``U:p`` its p-value on 2 df.
  ``Q = D - U`` is the quality index.
* ``Brier = mean((p - y)^2)`` (all rows).
* ``Intercept`` and ``Slope`` are ``a`` and ``b`` of the recalibration fit, with Wald SEs: the **recalibration
  intercept** goes with the slope and is *not* calibration-in-the-large. Calibration-in-the-large is ``a`` in
  ``logit P = a + offset(L)`` (slope fixed at 1); ``val.prob`` does not print it; it is given here beside them.
* ``Emax``, ``E90``, ``Eavg``: max, 90th percentile and mean of ``|p - lowess(p, y, iter = 0)|``; ``S:z``, ``S:p``:
  Spiegelhalter's z test (see :mod:`nodescope.evaluation._calibration`).

Every value is checked against ``rms::val.prob`` (R 4.2, rms 6.5) in tests/evaluation/test_api15.py, with the R
script tests/evaluation/reference/evaluation_api15.R and its output beside it.

References
----------
Harrell FE. Regression Modeling Strategies, 2nd ed. Springer 2015, sec. 10.9 (D, U, Q) and rms ``val.prob``.
Nagelkerke NJD. Biometrika 1991;78:691-692. Spiegelhalter DJ. Stat Med 1986;5:421-433.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from nodescope._estimate import Estimate
from nodescope.evaluation._calibration import _inputs, _logistic_fits, calibration_metrics
from nodescope.evaluation._results import ResultsMixin
from nodescope.evaluation._roc import roc_auc
from nodescope.evaluation._validation import check_alpha

__all__ = ["VAL_PROB_LABELS", "ValProb", "val_prob"]

#: ``val.prob``'s printed label for each field of :class:`ValProb`, in its print order.
VAL_PROB_LABELS: dict[str, str] = {
    "dxy": "Dxy", "c_index": "C (ROC)", "r2": "R2", "d": "D", "d_chisq": "D:Chi-sq", "d_p": "D:p",
    "u": "U", "u_chisq": "U:Chi-sq", "u_p": "U:p", "q": "Q", "brier": "Brier",
    "recalibration_intercept": "Intercept", "calibration_slope": "Slope", "emax": "Emax", "e90": "E90",
    "eavg": "Eavg", "spiegelhalter_z": "S:z", "spiegelhalter_p": "S:p",
}


@dataclass(frozen=True)
class ValProb(ResultsMixin):
    """rms ``val.prob`` indices (module docstring), each field named for what it is.

    Attributes
    ----------
    c_index, dxy : Estimate
        ``C (ROC)`` with its DeLong SE and interval; ``Dxy = 2C - 1`` (SE ``2 SE(C)``, interval mapped).
    recalibration_intercept, calibration_slope : Estimate
        ``Intercept`` and ``Slope`` of ``val.prob``: the fit ``logit P = a + b logit(p)``, Wald SEs and intervals.
    calibration_in_the_large : Estimate
        ``a`` in ``logit P = a + offset(logit(p))`` (slope fixed at 1), Wald SE and interval; not printed by
        ``val.prob``.
    r2, d, d_chisq, d_p, u, u_chisq, u_p, q, brier, emax, e90, eavg, spiegelhalter_z, spiegelhalter_p : float
        As ``val.prob``'s ``R2, D, D:Chi-sq, D:p, U, U:Chi-sq, U:p, Q, Brier, Emax, E90, Eavg, S:z, S:p``.
    n : int
        Rows in the logistic indices (``p`` strictly between 0 and 1).
    alpha : float
    note : str
        Rows left out, undefined indices.
    """

    dxy: Estimate
    c_index: Estimate
    r2: float
    d: float
    d_chisq: float
    d_p: float
    u: float
    u_chisq: float
    u_p: float
    q: float
    brier: float
    recalibration_intercept: Estimate
    calibration_slope: Estimate
    emax: float
    e90: float
    eavg: float
    spiegelhalter_z: float
    spiegelhalter_p: float
    calibration_in_the_large: Estimate
    n: int
    alpha: float = 0.05
    note: str = ""

    _summary_title = "Validation of predicted probabilities (rms val.prob indices)"

    def to_frame(self) -> pd.DataFrame:
        """One row per index in ``val.prob``'s order (its label in ``index``), then calibration-in-the-large.

        Columns ``name`` (field), ``estimate``, ``se``, ``ci_low``, ``ci_high`` (``nan`` where an index has none).
        """
        rows = []
        labels = {**VAL_PROB_LABELS, "calibration_in_the_large": "CITL (slope 1)"}
        for name, label in labels.items():
            v = getattr(self, name)
            if isinstance(v, Estimate):
                se = v.extra.get("se")
                rows.append({"index": label, "name": name, "estimate": v.estimate,
                             "se": math.nan if se is None else se, "ci_low": v.ci_low, "ci_high": v.ci_high})
            else:
                rows.append({"index": label, "name": name, "estimate": v, "se": math.nan, "ci_low": math.nan,
                             "ci_high": math.nan})
        return pd.DataFrame(rows).set_index("index")

    def _summary_footer(self) -> str:
        ci = f"{100 * (1 - self.alpha):g}% CI: C and Dxy DeLong; Intercept, Slope, CITL Wald (glm)"
        return ci + (f"\nnote: {self.note}" if self.note else "")

    def as_r_vector(self) -> dict[str, float]:
        """The 18 values under ``val.prob``'s printed names (``{"Dxy": ..., "C (ROC)": ..., ...}``)."""
        out: dict[str, float] = {}
        for name, label in VAL_PROB_LABELS.items():
            v = getattr(self, name)
            out[label] = v.estimate if isinstance(v, Estimate) else v
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe ``dict``: every field, plus ``val_prob`` (the 18 values under R's names)."""
        out = super().to_dict()
        out["val_prob"] = {k: (v if math.isfinite(v) else None) for k, v in self.as_r_vector().items()}
        return out


def _minus2ll(y: np.ndarray, eta: np.ndarray) -> float:
    """``-2 sum(y eta - log(1 + exp(eta)))`` of a logistic linear predictor."""
    return float(-2 * np.sum(y * eta - np.logaddexp(0.0, eta)))


def _with_se(e: Estimate, name: str, se: float | None) -> Estimate:
    extra = {**e.extra, "se": se}
    extra.pop("intercept_se", None)
    return Estimate(name, e.estimate, e.ci_low, e.ci_high, e.method, e.alpha, e.n, e.note, extra)


def _recal_intercept(a2: float, e_slope: Estimate, alpha: float, n: int) -> Estimate:
    se = e_slope.extra.get("intercept_se")
    z = float(stats.norm.ppf(1 - alpha / 2))
    lo, hi = (a2 - z * se, a2 + z * se) if se is not None else (math.nan, math.nan)
    return Estimate("recalibration_intercept", a2, lo, hi, "wald-glm", alpha, n, e_slope.note, {"se": se})


def val_prob(y_true: ArrayLike, y_prob: ArrayLike, *, alpha: float = 0.05) -> ValProb:
    """rms ``val.prob(p, y)`` indices with standard errors and unmistakable names (module docstring).

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 outcomes.
    y_prob : array-like, shape (N,)
        Predicted probabilities of outcome 1, in [0, 1].
    alpha : float, default 0.05
        For the intervals of C, Dxy, the recalibration intercept and slope, and calibration-in-the-large.

    Returns
    -------
    ValProb
        Undefined indices (one outcome class, all predictions equal, ``logit(p)`` separating the outcomes) are
        ``nan`` with a note; nothing raises for them.
    """
    y, p = _inputs(y_true, y_prob)
    alpha = check_alpha(alpha)
    cal = calibration_metrics(y, p, alpha=alpha, n_boot=0)
    e_int, e_slope, a2, note = _logistic_fits(y, p, alpha)
    keep = (p > 0) & (p < 1)
    yy, lg = y[keep].astype(float), np.log(p[keep] / (1 - p[keep]))
    n = int(keep.sum())
    auc = roc_auc(yy, lg, alpha=alpha) if n else None
    nan = math.nan
    if auc is None or not auc.defined:
        c = Estimate("c_index", nan, nan, nan, "delong", alpha, n, "undefined: needs both outcomes", {"se": None})
    else:
        se_c = auc.se if math.isfinite(auc.se) else None
        c = Estimate("c_index", auc.estimate, auc.ci_low, auc.ci_high, "delong", alpha, n, auc.note, {"se": se_c})
    se_c = c.extra["se"]
    dxy = Estimate("dxy", 2 * c.estimate - 1, 2 * c.ci_low - 1, 2 * c.ci_high - 1, c.method, alpha, n, c.note,
                   {"se": None if se_c is None else 2 * se_c})
    ybar = float(yy.mean()) if n else nan
    both = n > 0 and 0 < ybar < 1
    l0 = _minus2ll(yy, np.full(n, math.log(ybar / (1 - ybar)))) if both else nan
    l01 = _minus2ll(yy, lg)
    d_chisq = l0 - l01
    r2 = (1 - math.exp(-d_chisq / n)) / (1 - math.exp(-l0 / n)) if both else nan
    b = e_slope.estimate
    u_chisq = l01 - _minus2ll(yy, a2 + b * lg) if math.isfinite(b) else nan
    d = (d_chisq - 1) / n if n else nan
    u = (u_chisq - 2) / n if n else nan
    return ValProb(
        dxy=dxy, c_index=c, r2=r2, d=d, d_chisq=d_chisq,
        d_p=float(stats.chi2.sf(d_chisq, 1)) if math.isfinite(d_chisq) else nan,
        u=u, u_chisq=u_chisq, u_p=float(stats.chi2.sf(u_chisq, 2)) if math.isfinite(u_chisq) else nan,
        q=d - u, brier=cal.brier.estimate,
        recalibration_intercept=_recal_intercept(a2, e_slope, alpha, n),
        calibration_slope=_with_se(e_slope, "calibration_slope", e_slope.extra.get("se")),
        emax=cal.emax, e90=cal.e90, eavg=cal.eavg,
        spiegelhalter_z=cal.spiegelhalter_z, spiegelhalter_p=cal.spiegelhalter_p,
        calibration_in_the_large=_with_se(e_int, "calibration_in_the_large", e_int.extra.get("se")),
        n=n, alpha=alpha, note=note,
    )
