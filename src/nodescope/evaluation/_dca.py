"""Decision curve analysis (Vickers & Elkin 2006).

At a threshold probability ``pt`` a patient is treated when ``p >= pt`` (a prediction equal to the threshold
counts as treat). With ``N`` patients:

    NB_model(pt) = TP(pt)/N - FP(pt)/N * pt / (1 - pt)
    NB_all(pt)   = prevalence - (1 - prevalence) * pt / (1 - pt)         (treat everyone)
    NB_none(pt)  = 0                                                      (treat no one)
    interventions avoided per 100 = (NB_model - NB_all) * (1 - pt) / pt * 100

References
----------
Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating prediction models.
Med Decis Making 2006;26:565-574. Vickers AJ, Van Calster B, Steyerberg EW. BMJ 2016;352:i6 (net benefit,
interventions avoided). Vickers AJ, Cronin AM, Elkin EB, Gonen M. Extensions to decision curve analysis.
BMC Med Inform Decis Mak 2008;8:53 (bootstrap intervals by plain resampling of patients; R ``dcurves`` does the
same).

Bootstrap bands resample patients plainly by default (``stratified=False``). Net benefit depends on the prevalence
(``NB ~ prevalence`` at a low threshold, where nearly everyone is treated), so an outcome-stratified bootstrap, which
fixes the prevalence in every replicate, would shrink the band there towards zero width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from nodescope.errors import StatisticsInputError
from nodescope.evaluation._bootstrap import SeedLike, bootstrap_weights, make_rng
from nodescope.evaluation._results import ResultsMixin
from nodescope.evaluation._validation import (
    as_binary_labels,
    as_groups,
    as_probabilities,
    check_alpha,
    check_n_boot,
)

__all__ = ["DecisionCurve", "NetBenefitDifference", "decision_curve", "net_benefit_difference"]


@dataclass(frozen=True)
class DecisionCurve(ResultsMixin):
    """Net benefit of a model, treat-all and treat-none over a grid of threshold probabilities.

    Attributes
    ----------
    thresholds : ndarray, shape (G,)
        Threshold probabilities ``pt`` in (0, 1); treat when ``p >= pt``.
    net_benefit, net_benefit_low, net_benefit_high : ndarray, shape (G,)
        Model net benefit and its pointwise percentile bootstrap band (``nan`` when ``n_boot = 0``).
    treat_all : ndarray, shape (G,)
    treat_none : ndarray, shape (G,)
        Zeros.
    interventions_avoided, interventions_avoided_low, interventions_avoided_high : ndarray, shape (G,)
        Per 100 patients, against treat-all.
    prevalence : float
    n : int
    alpha : float
    n_boot : int
    tp, fp : ndarray of int, shape (G,)
        True and false positives (patients treated with and without the outcome) at each threshold, the counts
        ``NB = TP/N - FP/N * pt/(1 - pt)`` is computed from.
    """

    thresholds: NDArray[np.float64]
    net_benefit: NDArray[np.float64]
    net_benefit_low: NDArray[np.float64]
    net_benefit_high: NDArray[np.float64]
    treat_all: NDArray[np.float64]
    treat_none: NDArray[np.float64]
    interventions_avoided: NDArray[np.float64]
    interventions_avoided_low: NDArray[np.float64]
    interventions_avoided_high: NDArray[np.float64]
    prevalence: float
    n: int
    alpha: float
    n_boot: int
    tp: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fp: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    _summary_title = "Decision curve (treat when p >= threshold)"

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per threshold, with the TP and FP counts behind each net benefit."""
        counts = {"tp": self.tp, "fp": self.fp} if self.tp.size == self.thresholds.size else {}
        return pd.DataFrame(
            {
                "threshold": self.thresholds,
                **counts,
                "net_benefit": self.net_benefit,
                "net_benefit_low": self.net_benefit_low,
                "net_benefit_high": self.net_benefit_high,
                "treat_all": self.treat_all,
                "treat_none": self.treat_none,
                "interventions_avoided_per_100": self.interventions_avoided,
                "interventions_avoided_low": self.interventions_avoided_low,
                "interventions_avoided_high": self.interventions_avoided_high,
            }
        )


@dataclass(frozen=True)
class NetBenefitDifference:
    """``NB_a - NB_b`` over thresholds with a paired bootstrap band (same resampled patients for both models)."""

    thresholds: NDArray[np.float64]
    difference: NDArray[np.float64]
    difference_low: NDArray[np.float64]
    difference_high: NDArray[np.float64]
    alpha: float
    n_boot: int

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per threshold."""
        return pd.DataFrame(
            {"threshold": self.thresholds, "difference": self.difference,
             "difference_low": self.difference_low, "difference_high": self.difference_high}
        )


def _grid(thresholds: ArrayLike | None) -> NDArray[np.float64]:
    if thresholds is None:
        return np.round(np.arange(1, 100) / 100, 2)
    g = np.asarray(thresholds, dtype=np.float64)
    if g.ndim != 1 or g.size == 0:
        raise StatisticsInputError(f"thresholds must be a non-empty 1-D array; got shape {g.shape}")
    bad = ~((g > 0) & (g < 1))
    if bad.any():
        raise StatisticsInputError(f"thresholds must lie strictly between 0 and 1; got {g[bad][:5].tolist()}")
    return g


def _nb_matrix(
    y: NDArray[np.bool_], p: NDArray[np.float64], grid: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Net benefit (rows of ``w`` x thresholds) and treat-all net benefit per row of ``w``."""
    treat = p[:, None] >= grid[None, :]
    tot = w.sum(axis=1, keepdims=True)
    tp = w @ (treat & y[:, None]) / tot
    fp = w @ (treat & ~y[:, None]) / tot
    odds = grid / (1 - grid)
    prev = (w @ y.astype(float))[:, None] / tot
    return tp - fp * odds, prev - (1 - prev) * odds


def _inputs(y_true: ArrayLike, y_prob: ArrayLike, name: str = "y_prob") -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    y = as_binary_labels(y_true)
    p = as_probabilities(y_prob, y.shape[0], name)
    if y.shape[0] == 0:
        raise StatisticsInputError("y_true is empty")
    return y, p


def decision_curve(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    thresholds: ArrayLike | None = None,
    alpha: float = 0.05,
    n_boot: int = 500,
    groups: ArrayLike | None = None,
    stratified: bool = False,
    seed: SeedLike = 0,
) -> DecisionCurve:
    """Decision curve: net benefit of treating when ``p >= pt``, with treat-all/treat-none and bootstrap bands.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        0/1 outcomes.
    y_prob : array-like, shape (N,)
        Predicted risks in [0, 1].
    thresholds : array-like, optional
        Threshold probabilities strictly inside (0, 1); default ``0.01, 0.02, ..., 0.99``.
    alpha : float, default 0.05
    n_boot : int, default 500
        Bootstrap replicates for the pointwise bands (0 for none).
    groups : array-like, optional
        Patient ids for a cluster bootstrap.
    stratified : bool, default False
        Plain resampling of patients (Vickers et al. 2008; R ``dcurves``). ``True`` resamples within outcome
        classes, which fixes the prevalence of every replicate and so understates the uncertainty of net benefit
        (the band collapses at low thresholds, where net benefit is about the prevalence).
    seed : int, Generator or None, default 0

    Returns
    -------
    DecisionCurve
        With the TP and FP counts at each threshold (``to_frame()``, ``summary()``, ``to_dict()``).
    """
    y, p = _inputs(y_true, y_prob)
    alpha = check_alpha(alpha)
    grid = _grid(thresholds)
    n = y.shape[0]
    nb, nb_all = _nb_matrix(y, p, grid, np.ones((1, n)))
    treat = p[:, None] >= grid[None, :]
    odds = grid / (1 - grid)
    ia = (nb[0] - nb_all[0]) / odds * 100
    lo = hi = ia_lo = ia_hi = np.full(grid.shape, np.nan)
    if n_boot:
        n_boot = check_n_boot(n_boot)
        g = as_groups(groups, n)
        w = bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), groups=g, stratified=stratified)
        nb_b, all_b = _nb_matrix(y, p, grid, w.astype(np.float64))
        lo, hi = np.quantile(nb_b, [alpha / 2, 1 - alpha / 2], axis=0)
        ia_lo, ia_hi = np.quantile((nb_b - all_b) / odds * 100, [alpha / 2, 1 - alpha / 2], axis=0)
    return DecisionCurve(
        thresholds=grid, net_benefit=nb[0], net_benefit_low=lo, net_benefit_high=hi, treat_all=nb_all[0],
        treat_none=np.zeros_like(grid), interventions_avoided=ia, interventions_avoided_low=ia_lo,
        interventions_avoided_high=ia_hi, prevalence=float(y.mean()), n=n, alpha=alpha, n_boot=int(n_boot),
        tp=np.sum(treat & y[:, None], axis=0), fp=np.sum(treat & ~y[:, None], axis=0),
    )


def net_benefit_difference(
    y_true: ArrayLike,
    prob_a: ArrayLike,
    prob_b: ArrayLike,
    *,
    thresholds: ArrayLike | None = None,
    alpha: float = 0.05,
    n_boot: int = 500,
    groups: ArrayLike | None = None,
    stratified: bool = False,
    seed: SeedLike = 0,
) -> NetBenefitDifference:
    """``NB_a(pt) - NB_b(pt)`` for two models on the same patients, with a paired bootstrap band.

    Parameters as :func:`decision_curve`; ``prob_a`` and ``prob_b`` are the two models' risks, row-aligned.
    """
    y, pa = _inputs(y_true, prob_a, "prob_a")
    pb = as_probabilities(prob_b, y.shape[0], "prob_b")
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot)
    grid = _grid(thresholds)
    n = y.shape[0]
    g = as_groups(groups, n)
    w = np.vstack([np.ones((1, n)), bootstrap_weights(y, n_boot=n_boot, rng=make_rng(seed), groups=g,
                                                       stratified=stratified).astype(np.float64)])
    d = _nb_matrix(y, pa, grid, w)[0] - _nb_matrix(y, pb, grid, w)[0]
    lo, hi = np.quantile(d[1:], [alpha / 2, 1 - alpha / 2], axis=0)
    return NetBenefitDifference(grid, d[0], lo, hi, alpha, n_boot)
