"""Restricted cubic splines exactly as Harrell's Hmisc ``rcspline.eval`` / rms ``rcs`` build them.

Knots (``rcspline.eval(x, nk)``): at quantiles (R's type 7) of the non-missing values -- 3 knots at
0.10/0.50/0.90, 4-6 knots equally spaced from 0.05 to 0.95, 7 or more from 0.025 to 0.975; with fewer than 100 values
the outer knots move to the 5th smallest and 5th largest value; with ``nk - 2`` or fewer distinct values the knots
are the interior distinct values. (Hmisc's rule for a heavily tied first or last value, ``fractied``, is applied.)

Basis (``norm = 2``, rms' parametrisation): ``x`` itself, then for ``j = 1 .. k-2``

    ((x - t_j)_+^3 - (x - t_{k-1})_+^3 (t_k - t_j) / (t_k - t_{k-1})
     + (x - t_k)_+^3 (t_{k-1} - t_j) / (t_k - t_{k-1})) / (t_k - t_1)^2

so coefficients are those ``lrm(y ~ rcs(x, k))`` prints (``x``, ``x'``, ``x''``, ...). Checked against Hmisc 4.8 in
tests/clinical/test_lrm_reference.py.

Reference: Harrell FE. Regression Modeling Strategies, 2nd ed. Springer 2015, section 2.4.5.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nodescope.errors import StatisticsInputError

__all__ = ["rcs_basis", "rcs_knots"]


def _quantile7(x: NDArray[np.float64], p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.quantile(x, p, method="linear")


def rcs_knots(x: ArrayLike, nk: int = 5) -> NDArray[np.float64]:
    """Knot locations of a restricted cubic spline with ``nk`` knots (Hmisc's default placement).

    Parameters
    ----------
    x : array_like of float, shape (n,)
        The values (``nan`` ignored).
    nk : int, default 5
        The number of knots, >= 3.

    Returns
    -------
    ndarray, shape (k,)
        Sorted distinct knots (``k`` may be below ``nk`` when ``x`` has few distinct values).

    Raises
    ------
    StatisticsInputError
        Fewer than 6 non-missing values, ``nk < 3``, or fewer than 3 distinct knots.
    """
    xx = np.asarray(x, float)
    xx = xx[~np.isnan(xx)]
    n = len(xx)
    if n < 6:
        raise StatisticsInputError(f"restricted cubic spline: {n} non-missing values; at least 6 are needed")
    if nk < 3:
        raise StatisticsInputError(f"restricted cubic spline: nk must be >= 3, got {nk}")
    xu = np.unique(xx)
    if len(xu) - 2 <= nk:
        knots = xu[1:-1]
    else:
        outer = 0.025 if nk > 6 else (0.05 if nk > 3 else 0.1)
        first: list[float] = []
        last: list[float] = []
        nke = nk
        over_first = over_last = False
        _, counts = np.unique(xx, return_counts=True)
        f = counts / n
        if len(f) > 2 and f[1:-1].max() < 0.05:
            if f[0] >= 0.05:
                first = [float(xx[xx > xx.min()].min())]
                xx = xx[xx > first[0]]
                nke -= 1
                over_first = True
            if f[-1] >= 0.05:
                last = [float(xx[xx < xx.max()].max())]
                xx = xx[xx < last[0]]
                nke -= 1
                over_last = True
        if nke == 1:
            inner = np.array([np.median(xx)])
        elif len(xu) <= nke:
            inner = xu
        else:
            p = np.linspace(0.5, 1 - outer, nke) if nke == 2 else np.linspace(outer, 1 - outer, nke)
            inner = _quantile7(xx, p)
            if len(np.unique(inner)) < min(nke, 3):
                raise StatisticsInputError(f"restricted cubic spline: could not place {nk} distinct knots "
                                           f"({len(xu)} distinct values); use fewer knots")
            if len(xx) < 100:
                srt = np.sort(xx)
                if not over_first:
                    inner[0] = srt[4]
                if not over_last:
                    inner[-1] = srt[len(srt) - 5]
        knots = np.concatenate([first, inner, last])
    knots = np.unique(knots)
    if len(knots) < 3:
        raise StatisticsInputError(f"restricted cubic spline: fewer than 3 distinct knots ({len(xu)} distinct "
                                   "values); treat the variable as linear or categorical")
    return knots.astype(float)


def rcs_basis(x: ArrayLike, knots: ArrayLike) -> NDArray[np.float64]:
    """The restricted cubic spline design columns of ``x`` (``x`` first, then the ``k - 2`` non-linear terms).

    Parameters
    ----------
    x : array_like of float, shape (n,)
    knots : array_like of float, shape (k,)
        Sorted knots, ``k >= 3`` (from :func:`rcs_knots` or chosen by hand).

    Returns
    -------
    ndarray, shape (n, k - 1)
        Hmisc's ``rcspline.eval(x, knots, inclx = TRUE)`` with ``norm = 2``.
    """
    xv = np.asarray(x, float)
    t = np.asarray(knots, float)
    k = len(t)
    if k < 3 or np.any(np.diff(t) <= 0):
        raise StatisticsInputError(f"restricted cubic spline: need >= 3 increasing knots, got {t.tolist()}")
    kd = (t[-1] - t[0]) ** (2 / 3)
    out = np.empty((len(xv), k - 1))
    out[:, 0] = xv
    for j in range(k - 2):
        out[:, j + 1] = (np.maximum((xv - t[j]) / kd, 0) ** 3
                         + ((t[-2] - t[j]) * np.maximum((xv - t[-1]) / kd, 0) ** 3
                            - (t[-1] - t[j]) * np.maximum((xv - t[-2]) / kd, 0) ** 3) / (t[-1] - t[-2]))
    return out
