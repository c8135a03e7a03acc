"""Bootstrap internal validation with optimism correction, as Harrell's rms ``validate`` and ``calibrate`` do it.

**validate** (Efron's optimism bootstrap, Harrell 2015 section 5.3.5): for each of ``B`` bootstrap samples the model is
refitted (same design: knots, levels) and its indexes computed twice -- on the bootstrap sample (*training*) and on
the original data with the bootstrap coefficients (*test*). Optimism is the mean of training - test; the corrected
index is the apparent one minus the optimism. The indexes are rms'

* ``Dxy`` -- Somers' rank correlation ``2 (C - 1/2)``;
* ``R2`` -- Nagelkerke's R2 (of the recalibrated predictor ``a + b lp`` on test data);
* ``Intercept``, ``Slope`` -- calibration intercept and slope from the logistic regression of ``y`` on ``lp``
  (0 and 1 on training data); ``Emax`` -- the largest absolute difference between ``p`` and ``plogis(a + b
  logit(p))`` for ``p`` in [0, 1], from the corrected intercept and slope;
* ``D`` -- discrimination ``(LR chi2 - 1) / n``; ``U`` -- unreliability ``(L(lp) - L(a + b lp) - 2) / n`` with
  ``L`` the deviance (``-2 / n`` on training data); ``Q = D - U``; ``B`` -- the Brier score;
* ``g`` and ``gp`` -- Gini's mean difference of the (recalibrated) linear predictor and of the probabilities.

**calibrate** (rms ``calibrate``, ``method = "boot"``): the apparent calibration curve is a lowess smooth
(``f = 2/3``, no robustness iterations, ``delta = 1%`` of the range: R's ``lowess(p, y, iter = 0)``, here statsmodels'
identical port) of the outcome on the predicted probability, read at 50 equally spaced predictions between the 5th
smallest and 5th largest; its optimism is estimated the same way, and ``calibrated.corrected = calibrated.orig -
optimism``. A point where a bootstrap smooth does not reach is left out of that point's mean (R: the ``n`` column).

Bootstrap samples are drawn with numpy's seeded generator; giving ``indices`` instead replays samples drawn elsewhere
(R's ``sample(n, replace = TRUE)``), which is how the tests reproduce rms' numbers exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from statsmodels.nonparametric.smoothers_lowess import lowess

from nodescope.clinical._lrm import LogisticFit, concordance, fit_matrix, gini_md, lrm_indexes
from nodescope.errors import StatisticsInputError

__all__ = ["Calibration", "Validation", "calibrate", "validate"]

_INDEXES = ["Dxy", "R2", "Intercept", "Slope", "D", "U", "Q", "B", "g", "gp"]


def _plogis(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1 / (1 + np.exp(-x))


def _apparent(lp: NDArray[np.float64], y: NDArray[np.float64], df: int) -> NDArray[np.float64]:
    st = lrm_indexes(lp, y, df=df)
    n = len(y)
    d = (st["Model L.R."] - 1) / n
    u = -2 / n
    return np.array([st["Dxy"], st["R2"], 0.0, 1.0, d, u, d - u, st["Brier"], st["g"], st["gp"]])


def _test(lp: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    n = len(y)
    xr = np.column_stack([np.ones(n), lp])
    (a, b), _, _ = fit_matrix(xr, y)
    lp_r = a + b * lp
    st = lrm_indexes(lp_r, y, df=1)
    d = (st["Model L.R."] - 1) / n
    l01 = -2 * float(np.sum(y * lp - np.logaddexp(0, lp)))
    dev_r = -2 * float(np.sum(y * lp_r - np.logaddexp(0, lp_r)))
    u = (l01 - dev_r - 2) / n
    brier = float(np.mean((_plogis(lp) - y) ** 2))
    dxy = 2 * (concordance(lp, y) - 0.5)
    return np.array([dxy, st["R2"], a, b, d, u, d - u, brier, gini_md(b * lp), gini_md(_plogis(lp_r))])


def _indices(n: int, b: int, seed: int, indices: ArrayLike | None) -> NDArray[np.intp]:
    if indices is None:
        if b < 1:
            raise StatisticsInputError(f"bootstrap repetitions must be >= 1, got {b}")
        return np.random.default_rng(seed).integers(0, n, size=(b, n))
    idx = np.asarray(indices)
    if idx.ndim != 2 or idx.shape[1] != n or idx.min() < 0 or idx.max() >= n:
        raise StatisticsInputError(f"bootstrap indices must have shape (B, {n}) with values in 0..{n - 1}, got "
                                   f"shape {idx.shape}")
    return idx.astype(np.intp)


@dataclass(frozen=True)
class Validation:
    """rms ``validate`` result.

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``Dxy, R2, Intercept, Slope, Emax, D, U, Q, B, g, gp``; columns ``index.orig, training, test,
        optimism, index.corrected, n`` (as rms prints them).
    B : int
        Bootstrap repetitions asked for; ``table["n"]`` says how many fitted.
    failed : int
        Repetitions left out because the refit did not converge (separation in the resample) or the resample held
        one outcome only -- rms leaves them out too ("Divergence or singularity in k samples").
    method : str
    """

    table: pd.DataFrame
    B: int
    failed: int = 0
    method: str = "bootstrap optimism (Efron-Harrell)"

    @property
    def corrected_c(self) -> float:
        """The optimism-corrected C statistic, ``Dxy / 2 + 1/2``."""
        return float(self.table.loc["Dxy", "index.corrected"] / 2 + 0.5)


def validate(fit: LogisticFit, *, B: int = 200, seed: int = 0, indices: ArrayLike | None = None) -> Validation:
    """Bootstrap-validate a fitted model (rms ``validate(fit, B)``).

    Parameters
    ----------
    fit : LogisticFit
    B : int, default 200
        Bootstrap repetitions (ignored when ``indices`` is given).
    seed : int, default 0
    indices : array_like of int, shape (B, n), optional
        0-based row indices of each bootstrap sample of the fitted rows (replays given samples).

    Returns
    -------
    Validation
    """
    x, y = fit.x, fit.y
    n, df = len(y), x.shape[1] - 1
    idx = _indices(n, B, seed, indices)
    orig = _apparent(fit.linear_predictor, y, df)
    train = np.zeros(len(_INDEXES))
    test = np.zeros(len(_INDEXES))
    num = np.zeros(len(_INDEXES))
    failed = 0
    for rows in idx:
        yb = y[rows]
        if yb.min() == yb.max():
            failed += 1
            continue
        beta, _, ok = fit_matrix(x[rows], yb, firth=fit.firth)
        if not ok or not np.all(np.isfinite(beta)):
            failed += 1
            continue
        tr = _apparent(x[rows] @ beta, yb, df)
        te = _test(x @ beta, y)
        good = np.isfinite(tr + te)
        train[good] += tr[good]
        test[good] += te[good]
        num += good
    with np.errstate(invalid="ignore", divide="ignore"):
        train, test = train / num, test / num
    optimism = train - test
    corrected = orig - optimism
    a, b = corrected[2], corrected[3]
    p = np.arange(0, 1 + 1e-12, 0.0005)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.abs(p - _plogis(a + b * np.log(p / (1 - p))))
    emax = float(np.nanmax(gap)) if np.isfinite(gap).any() else float("nan")
    table = pd.DataFrame({"index.orig": orig, "training": train, "test": test, "optimism": optimism,
                          "index.corrected": corrected, "n": num}, index=_INDEXES)
    emax_row = pd.DataFrame({"index.orig": [0.0], "training": [0.0], "test": [emax], "optimism": [emax],
                             "index.corrected": [emax], "n": [num[0]]}, index=["Emax"])
    table = pd.concat([table.iloc[:4], emax_row, table.iloc[4:]])
    return Validation(table=table, B=len(idx), failed=failed)


@dataclass(frozen=True)
class Calibration:
    """rms ``calibrate`` result: the apparent and overfitting-corrected calibration curves.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``predy`` (predicted probability), ``calibrated.orig`` (apparent), ``calibrated.corrected``,
        ``optimism``, ``n`` (bootstrap fits that reached the point).
    mean_absolute_error, q90_absolute_error : float
        Of the corrected curve over the patients' predicted probabilities (as rms prints them).
    B : int
    """

    table: pd.DataFrame
    mean_absolute_error: float
    q90_absolute_error: float
    B: int


def _smooth_at(lp: NDArray[np.float64], y: NDArray[np.float64], predy: NDArray[np.float64]) -> NDArray[np.float64]:
    """R: ``approx(lowess(plogis(lp), y, iter = 0), xout = predy, ties = first)$y`` (``nan`` outside the range)."""
    p = _plogis(lp)
    sm = lowess(y, p, frac=2 / 3, it=0, delta=0.01 * float(np.ptp(p)), return_sorted=True)
    xs, first = np.unique(sm[:, 0], return_index=True)
    ys = sm[first, 1]
    out = np.interp(predy, xs, ys) if len(xs) > 1 else np.full(len(predy), np.nan)
    out[(predy < xs[0]) | (predy > xs[-1])] = np.nan
    return out


def calibrate(fit: LogisticFit, *, B: int = 200, seed: int = 0, indices: ArrayLike | None = None,
              predy: ArrayLike | None = None) -> Calibration:
    """Bootstrap overfitting-corrected calibration curve (rms ``calibrate(fit, B)``).

    Parameters
    ----------
    fit : LogisticFit
    B : int, default 200
    seed : int, default 0
    indices : array_like of int, shape (B, n), optional
        0-based bootstrap samples to replay.
    predy : array_like of float, optional
        Predicted probabilities at which to estimate the curve; default 50 equally spaced values from the 5th
        smallest to the 5th largest prediction.

    Returns
    -------
    Calibration
    """
    x, y = fit.x, fit.y
    n = len(y)
    if n < 11 and predy is None:
        raise StatisticsInputError(f"calibrate: needs more than 10 patients (got {n}) unless predy is given")
    pred = _plogis(fit.linear_predictor)
    srt = np.sort(pred)
    grid = np.linspace(srt[4], srt[n - 5], 50) if predy is None else np.asarray(predy, float)
    idx = _indices(n, B, seed, indices)
    orig = _smooth_at(fit.linear_predictor, y, grid)
    train = np.zeros(len(grid))
    test = np.zeros(len(grid))
    num = np.zeros(len(grid))
    for rows in idx:
        yb = y[rows]
        if yb.min() == yb.max():
            continue
        beta, _, ok = fit_matrix(x[rows], yb, firth=fit.firth)
        if not ok or not np.all(np.isfinite(beta)):
            continue
        tr = _smooth_at(x[rows] @ beta, yb, grid) - grid
        te = _smooth_at(x @ beta, y, grid) - grid
        good = np.isfinite(tr + te)
        train[good] += tr[good]
        test[good] += te[good]
        num += good
    with np.errstate(invalid="ignore", divide="ignore"):
        optimism = train / num - test / num
    corrected = orig - optimism
    table = pd.DataFrame({"predy": grid, "calibrated.orig": orig, "calibrated.corrected": corrected,
                          "optimism": optimism, "n": num})
    reached = np.isfinite(corrected)
    err = (np.abs(np.interp(pred, grid[reached], corrected[reached] - grid[reached])) if reached.sum() > 1
           else np.array([math.nan]))
    return Calibration(table=table, mean_absolute_error=float(np.mean(err)),
                       q90_absolute_error=float(np.quantile(err, 0.9)), B=len(idx))
