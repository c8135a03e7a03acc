"""DeLong's structural components and covariance of correlated AUCs, by the fast midrank algorithm.

For ``m`` positives with scores ``X`` and ``n`` negatives with scores ``Y`` the Mann-Whitney AUC is
``theta = 1/(m n) sum_i sum_j psi(X_i, Y_j)`` with ``psi = 1`` if ``X > Y``, ``1/2`` if equal, ``0`` otherwise
(exact on ties). DeLong et al. (1988) define the structural components (placement values)

    V10_i = 1/n sum_j psi(X_i, Y_j)        (one per positive)
    V01_j = 1/m sum_i psi(X_i, Y_j)        (one per negative)

and, for ``k`` scores on the same cases, the covariance ``S = S10 / m + S01 / n`` where ``S10`` and ``S01`` are the
sample covariance matrices (denominators ``m - 1`` and ``n - 1``) of the components. Sun & Xu (2014) compute the
components from midranks in ``O(N log N)``: with ``Tz`` the midranks in the pooled sample, ``Tx`` within positives and
``Ty`` within negatives, ``V10_i = (Tz_i - Tx_i) / n`` and ``V01_j = 1 - (Tz_{m+j} - Ty_j) / m``.

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated receiver operating
characteristic curves: a nonparametric approach. Biometrics 1988;44:837-845.
Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under correlated receiver operating
characteristic curves. IEEE Signal Processing Letters 2014;21:1389-1393.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from nodescope.errors import StatisticsInputError
from nodescope.evaluation._validation import as_binary_labels

__all__ = ["DelongComponents", "delong_components"]


@dataclass(frozen=True)
class DelongComponents:
    """DeLong structural components of ``k`` AUCs computed on the same cases.

    Attributes
    ----------
    auc : ndarray, shape (k,)
        Mann-Whitney AUCs (ties count 1/2).
    v10 : ndarray, shape (m, k)
        Structural components of the ``m`` positive cases (rows in the order the positives appear in ``y_true``).
    v01 : ndarray, shape (n, k)
        Structural components of the ``n`` negative cases.
    covariance : ndarray, shape (k, k)
        ``S10 / m + S01 / n``; ``nan`` when ``m < 2`` or ``n < 2`` (no sample covariance).
    n_positive, n_negative : int
        ``m`` and ``n``.
    """

    auc: NDArray[np.float64]
    v10: NDArray[np.float64]
    v01: NDArray[np.float64]
    covariance: NDArray[np.float64]
    n_positive: int
    n_negative: int

    @property
    def s10(self) -> NDArray[np.float64]:
        """Sample covariance (``m - 1`` denominator) of the positive components, shape (k, k)."""
        return _sample_cov(self.v10)

    @property
    def s01(self) -> NDArray[np.float64]:
        """Sample covariance (``n - 1`` denominator) of the negative components, shape (k, k)."""
        return _sample_cov(self.v01)


def _sample_cov(v: NDArray[np.float64]) -> NDArray[np.float64]:
    k = v.shape[1]
    if v.shape[0] < 2:
        return np.full((k, k), np.nan)
    d = v - v.mean(axis=0)
    return (d.T @ d) / (v.shape[0] - 1)


def _midranks(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Midranks (average ranks, 1-based) down each column of a 2-D array."""
    return rankdata(a, method="average", axis=0)


def delong_components(y_true: ArrayLike, y_scores: ArrayLike) -> DelongComponents:
    """DeLong structural components and covariance matrix of one or several correlated AUCs.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 labels, 1 = positive (diseased). Scores are oriented so that higher means more likely positive.
    y_scores : array-like, shape (N,) or (N, k)
        One score per case, or ``k`` scores per case (models, readers, modalities) on the same cases.

    Returns
    -------
    DelongComponents
        AUCs, structural components ``V10`` (positives) and ``V01`` (negatives), and the covariance matrix
        ``S = S10/m + S01/n`` (the variance of each AUC on its diagonal, as pROC ``var(roc, method="delong")``).

    Raises
    ------
    ValueError
        When ``y_true`` lacks one of the two classes (the AUC is undefined).

    Notes
    -----
    Fast midrank algorithm of Sun & Xu (2014), ``O(k N log N)``; exact with ties (a tie counts 1/2). This is the
    covariance used by DeLong's test for correlated AUCs and by the Obuchowski-Rockette MRMC analysis.
    """
    y = as_binary_labels(y_true)
    s = np.asarray(y_scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or s.shape[0] != y.shape[0]:
        raise StatisticsInputError(f"y_scores must have shape ({y.shape[0]},) or ({y.shape[0]}, k); got {s.shape}")
    if not np.isfinite(s).all():
        raise StatisticsInputError("y_scores must be finite")
    m = int(y.sum())
    n = int(y.shape[0] - m)
    if m == 0 or n == 0:
        raise StatisticsInputError(
            f"the AUC needs both classes; y_true has {m} positive(s) and {n} negative(s)"
        )
    x = s[y]
    yy = s[~y]
    tz = _midranks(np.concatenate([x, yy], axis=0))
    tx = _midranks(x)
    ty = _midranks(yy)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    auc = v10.mean(axis=0)
    cov = _sample_cov(v10) / m + _sample_cov(v01) / n
    return DelongComponents(auc=auc, v10=v10, v01=v01, covariance=cov, n_positive=m, n_negative=n)
