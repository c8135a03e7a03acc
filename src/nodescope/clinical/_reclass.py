"""Net reclassification improvement (NRI) and integrated discrimination improvement (IDI) of a new model.

For events (``y = 1``) and non-events, count how many patients the new model moves up or down -- in predicted
probability (category-free or "continuous" NRI) or across risk categories (categorical NRI, ``cutoffs`` given):

    NRI = [P(up | event) - P(down | event)] + [P(down | non-event) - P(up | non-event)]
    IDI = mean(p_new - p_old | event) - mean(p_new - p_old | non-event)

Standard errors are Pencina's asymptotic ones, as Hmisc's ``improveProb`` computes them: for events
``var = (n_up + n_down) / n_ev^2 - (n_up - n_down)^2 / n_ev^3`` (likewise for non-events, summed for the NRI), and
``var(IDI) = var(d | event) / n_ev + var(d | non-event) / n_ne``; intervals are Wald intervals, z tests two-sided.
Checked against Hmisc 4.8 ``improveProb`` in tests/clinical/test_reclass.py (the categorical NRI by applying it to
the category indices, which is the same formula).

References: Pencina MJ, D'Agostino RB Sr, D'Agostino RB Jr, Vasan RS. Stat Med 2008;27:157-172. Pencina MJ,
D'Agostino RB Sr, Steyerberg EW. Stat Med 2011;30:11-21.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError

__all__ = ["Reclassification", "reclassification"]


@dataclass(frozen=True)
class Reclassification:
    """NRI and IDI of a new model against an old one on the same patients.

    Attributes
    ----------
    nri, nri_events, nri_nonevents, idi : Estimate
        Each with ``extra = {"se", "z", "p_value"}``.
    cutoffs : tuple of float
        Risk-category bounds (``()`` for the category-free NRI).
    counts : dict
        ``up_events, down_events, up_nonevents, down_nonevents, n_events, n_nonevents``.
    """

    nri: Estimate
    nri_events: Estimate
    nri_nonevents: Estimate
    idi: Estimate
    cutoffs: tuple[float, ...]
    counts: dict[str, int]

    def summary_frame(self) -> pd.DataFrame:
        """One row per statistic: estimate, CI, SE, z, p."""
        return pd.DataFrame([{"statistic": e.name, "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
                              "se": e.extra["se"], "z": e.extra["z"], "p_value": e.extra["p_value"],
                              "method": e.method} for e in (self.nri, self.nri_events, self.nri_nonevents, self.idi)])


def _est(name: str, value: float, se: float, alpha: float, n: int, method: str) -> Estimate:
    q = stats.norm.ppf(1 - alpha / 2)
    z = value / se if se > 0 else math.nan
    p = float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else math.nan
    return Estimate(name=name, estimate=float(value), ci_low=float(value - q * se), ci_high=float(value + q * se),
                    method=method, alpha=alpha, n=n, note="" if se > 0 else "standard error is 0",
                    extra={"se": float(se), "z": z, "p_value": p})


def reclassification(y_true: ArrayLike, p_old: ArrayLike, p_new: ArrayLike, *,
                     cutoffs: Sequence[float] | None = None, alpha: float = 0.05) -> Reclassification:
    """NRI (category-free, or categorical at ``cutoffs``) and IDI of ``p_new`` over ``p_old``.

    Parameters
    ----------
    y_true : array_like of {0, 1}, shape (n,)
    p_old, p_new : array_like of float in [0, 1], shape (n,)
        Predicted probabilities of the old and new model for the same patients.
    cutoffs : sequence of float in (0, 1), optional
        Risk-category bounds; a probability equal to a bound falls in the upper category.
    alpha : float, default 0.05

    Returns
    -------
    Reclassification

    Raises
    ------
    StatisticsInputError
        Arrays of different lengths, missing values, probabilities outside [0, 1], an outcome that is not 0/1
        with both values present, cutoffs outside (0, 1) or not increasing.
    """
    y = np.asarray(y_true, float)
    a, b = np.asarray(p_old, float), np.asarray(p_new, float)
    if not (len(y) == len(a) == len(b)):
        raise StatisticsInputError(f"y_true, p_old and p_new must have the same length, got {len(y)}, {len(a)}, "
                                   f"{len(b)}")
    if np.isnan(y).any() or np.isnan(a).any() or np.isnan(b).any():
        raise StatisticsInputError("y_true, p_old and p_new must not contain missing values")
    if set(np.unique(y)) != {0.0, 1.0}:
        raise StatisticsInputError(f"y_true must hold 0 and 1 (both present), got {sorted(set(np.unique(y)))[:5]}")
    if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) > 1:
        raise StatisticsInputError("p_old and p_new must be probabilities in [0, 1]")
    cuts = tuple(float(c) for c in cutoffs) if cutoffs else ()
    if cuts and (min(cuts) <= 0 or max(cuts) >= 1 or np.any(np.diff(cuts) <= 0)):
        raise StatisticsInputError(f"cutoffs must be increasing values in (0, 1), got {list(cuts)}")
    if cuts:
        d = (np.searchsorted(cuts, b, side="right") - np.searchsorted(cuts, a, side="right")).astype(float)
    else:
        d = b - a
    ev, ne = y == 1, y == 0
    n_ev, n_ne = int(ev.sum()), int(ne.sum())
    up_ev, down_ev = int((d[ev] > 0).sum()), int((d[ev] < 0).sum())
    up_ne, down_ne = int((d[ne] > 0).sum()), int((d[ne] < 0).sum())
    v_ev = (up_ev + down_ev) / n_ev**2 - (up_ev - down_ev) ** 2 / n_ev**3
    v_ne = (down_ne + up_ne) / n_ne**2 - (down_ne - up_ne) ** 2 / n_ne**3
    nri_ev = (up_ev - down_ev) / n_ev
    nri_ne = (down_ne - up_ne) / n_ne
    kind = f"categorical NRI at {', '.join(f'{c:g}' for c in cuts)}" if cuts else "category-free NRI"
    diff = b - a
    idi = float(diff[ev].mean() - diff[ne].mean())
    se_idi = math.sqrt(np.var(diff[ev], ddof=1) / n_ev + np.var(diff[ne], ddof=1) / n_ne)
    n = len(y)
    method = "Pencina asymptotic SE, Wald interval"
    return Reclassification(
        nri=_est(f"NRI ({kind})", nri_ev + nri_ne, math.sqrt(v_ev + v_ne), alpha, n, method),
        nri_events=_est("NRI events", nri_ev, math.sqrt(max(v_ev, 0.0)), alpha, n_ev, method),
        nri_nonevents=_est("NRI non-events", nri_ne, math.sqrt(max(v_ne, 0.0)), alpha, n_ne, method),
        idi=_est("IDI", idi, se_idi, alpha, n, method),
        cutoffs=cuts,
        counts={"up_events": up_ev, "down_events": down_ev, "up_nonevents": up_ne, "down_nonevents": down_ne,
                "n_events": n_ev, "n_nonevents": n_ne},
    )
