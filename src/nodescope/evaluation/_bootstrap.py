"""Vectorised bootstrap: replicate weights (stratified, or clustered by patient) and statistics computed from them.

A bootstrap replicate is held as a vector of counts ``w`` (how many times each row was drawn), so that ``B``
replicates are a ``(B, N)`` integer matrix and any statistic that is a weighted sum (the Mann-Whitney AUC, the 2x2
table at a threshold, net benefit) is computed for all replicates at once with matrix operations.

Resampling schemes
------------------
* ``stratified`` (default, as pROC ``boot.stratified=TRUE``): positives and negatives are resampled separately, so
  every replicate keeps the observed ``m`` positives and ``n`` negatives.
* clustered (``groups=`` given, e.g. patient ids): whole clusters are drawn with replacement and each row gets its
  cluster's count. With ``stratified=True`` clusters are drawn separately within two strata, clusters that contain at
  least one positive row and clusters that contain none.
* plain: rows (or clusters) drawn with replacement from all; replicates that lack a class give an undefined AUC and
  are dropped (their number is recorded in the result).

Intervals are percentile intervals (quantiles of the replicates, linear interpolation as R's ``quantile`` type 7).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nodescope._estimate import Estimate
from nodescope.evaluation._validation import (
    as_groups,
    binary_inputs,
    check_alpha,
    check_n_boot,
)

__all__ = ["bootstrap_metric"]

SeedLike = int | np.random.Generator | None


NO_BOOTSTRAP_NOTE = "no interval: n_boot = 0 (no bootstrap asked for)"


def make_rng(seed: SeedLike) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator (used as is) or ``None`` (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _counts(idx: NDArray[np.intp], size: int) -> NDArray[np.int32]:
    """Row-wise bincount of a (B, k) index matrix into a (B, size) count matrix."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b, dtype=np.intp) * size)[:, None]).ravel()
    return np.bincount(flat, minlength=b * size).reshape(b, size).astype(np.int32)


def _draw(members: NDArray[np.intp], size: int, n_boot: int, rng: np.random.Generator) -> NDArray[np.int32]:
    """Counts over ``size`` units from drawing ``len(members)`` of ``members`` with replacement, B times."""
    k = members.shape[0]
    out = np.zeros((n_boot, size), dtype=np.int32)
    if k == 0:
        return out
    pick = members[rng.integers(0, k, size=(n_boot, k))]
    return _counts(pick, size)


def bootstrap_weights(
    y: NDArray[np.bool_],
    *,
    n_boot: int,
    rng: np.random.Generator,
    groups: NDArray[np.intp] | None = None,
    stratified: bool = True,
) -> NDArray[np.int32]:
    """Replicate counts, shape ``(n_boot, N)``; see the module docstring for the schemes."""
    n_rows = y.shape[0]
    if groups is None:
        if stratified:
            return _draw(np.flatnonzero(y), n_rows, n_boot, rng) + _draw(np.flatnonzero(~y), n_rows, n_boot, rng)
        return _draw(np.arange(n_rows), n_rows, n_boot, rng)
    n_groups = int(groups.max()) + 1
    if stratified:
        has_pos = np.zeros(n_groups, dtype=bool)
        has_pos[groups[y]] = True
        w_groups = _draw(np.flatnonzero(has_pos), n_groups, n_boot, rng) + _draw(
            np.flatnonzero(~has_pos), n_groups, n_boot, rng
        )
    else:
        w_groups = _draw(np.arange(n_groups), n_groups, n_boot, rng)
    return w_groups[:, groups]


def weighted_auc(y: NDArray[np.bool_], s: NDArray[np.float64], w: NDArray[np.integer]) -> NDArray[np.float64]:
    """Mann-Whitney AUC (ties 1/2) for each row of a weight matrix ``w`` (B, N); ``nan`` when a class is absent."""
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    ws = w[:, order].astype(np.float64)
    y_sorted = y[order]
    w_pos = np.add.reduceat(ws * y_sorted, starts, axis=1)
    w_neg = np.add.reduceat(ws * ~y_sorted, starts, axis=1)
    neg_below = np.cumsum(w_neg, axis=1) - w_neg
    num = np.sum(w_pos * (neg_below + 0.5 * w_neg), axis=1)
    den = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def percentile_interval(values: NDArray[np.float64], alpha: float) -> tuple[float, float, int]:
    """Percentile interval of the finite replicates (R quantile type 7) and the number of finite replicates."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan"), 0
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi), int(finite.size)


def bootstrap_note(n_used: int, n_boot: int) -> str:
    """A note when some replicates were undefined and dropped, or when none was drawn (``n_boot = 0``)."""
    if n_boot == 0:
        return NO_BOOTSTRAP_NOTE
    if n_used == n_boot:
        return ""
    return f"{n_boot - n_used} of {n_boot} bootstrap replicates undefined (a class absent) and dropped"


def bootstrap_metric(
    y_true: ArrayLike,
    y_score: ArrayLike,
    metric: Callable[[NDArray[np.int_], NDArray[np.float64]], float],
    *,
    name: str = "metric",
    n_boot: int = 2000,
    alpha: float = 0.05,
    groups: ArrayLike | None = None,
    stratified: bool = True,
    seed: SeedLike = 0,
) -> Estimate:
    """Percentile bootstrap interval for any metric ``metric(y_true, y_score) -> float``.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 labels.
    y_score : array-like, shape (N,)
        Scores or probabilities (higher = more likely positive).
    metric : callable
        ``metric(y_true_subset, y_score_subset)`` returning a float (``nan`` allowed when undefined). It is called
        ``n_boot + 1`` times in a Python loop; the built-in statistics use vectorised paths instead. A replicate in
        which it raises ``ValueError`` counts as undefined (dropped, counted in ``extra["n_boot_used"]``).
    name : str
        Name recorded in the result.
    n_boot : int, default 2000
    alpha : float, default 0.05
    groups : array-like, shape (N,), optional
        Cluster ids (patients); whole clusters are resampled.
    stratified : bool, default True
        Resample positives and negatives (or clusters with/without a positive row) separately.
    seed : int, Generator or None, default 0

    Returns
    -------
    Estimate
        Point estimate on the full data, percentile interval, ``method="bootstrap-percentile"``.
    """
    y, s = binary_inputs(y_true, y_score)
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot, allow_zero=True)
    g = as_groups(groups, y.shape[0])
    rng = make_rng(seed)
    w = bootstrap_weights(y, n_boot=n_boot, rng=rng, groups=g, stratified=stratified)
    yi = y.astype(int)
    point = float(metric(yi, s))
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.repeat(np.arange(y.shape[0]), w[b])
        try:
            reps[b] = float(metric(yi[idx], s[idx]))
        except ValueError:  # e.g. a class absent in this replicate: undefined, dropped and counted
            reps[b] = np.nan
    lo, hi, used = percentile_interval(reps, alpha)
    return Estimate(
        name=name,
        estimate=point,
        ci_low=lo,
        ci_high=hi,
        method="bootstrap-percentile",
        alpha=alpha,
        n=int(y.shape[0]),
        note=bootstrap_note(used, n_boot),
        extra={
            "n_boot": n_boot,
            "n_boot_used": used,
            "stratified": stratified,
            "clustered": g is not None,
            "seed": seed if isinstance(seed, int) else None,
        },
    )


def multiclass_weights(
    codes: NDArray[np.intp],
    *,
    n_boot: int,
    rng: np.random.Generator,
    groups: NDArray[np.intp] | None = None,
    stratified: bool = True,
) -> NDArray[np.int32]:
    """Replicate counts for a multi-class outcome: stratified by class, or clustered (unstratified) by ``groups``."""
    n_rows = codes.shape[0]
    if groups is not None:
        n_groups = int(groups.max()) + 1
        return _draw(np.arange(n_groups), n_groups, n_boot, rng)[:, groups]
    if not stratified:
        return _draw(np.arange(n_rows), n_rows, n_boot, rng)
    out = np.zeros((n_boot, n_rows), dtype=np.int32)
    for k in np.unique(codes):
        out += _draw(np.flatnonzero(codes == k), n_rows, n_boot, rng)
    return out
