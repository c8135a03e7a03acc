"""A publication nomogram of a fitted logistic model, with rms ``nomogram``'s scaling.

Each predictor ``v`` contributes ``f_v(value) = X_v(value) . b_v`` to the linear predictor (its design columns times
their coefficients, uncentred). Over the axis values shown, the predictor whose contribution has the widest range
spans 0 to ``maxscale`` (100) points; every axis uses the same scale ``sc = maxscale / max_v range_v``, so
``points_v(value) = (f_v(value) - min_v f_v) sc``. The total points ``T`` of a patient then give back the linear
predictor exactly: ``lp = intercept + T / sc`` with ``intercept = b_0 + sum_v min_v f_v`` -- the property the tests
check on random patients. Axis values default to R's ``pretty(range, 10)`` over each continuous variable's observed
range (rms' ``type.range = "full"``) and to every level of a categorical one.

Models with interaction terms are refused: their nomogram needs one axis per level of the interacting factor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import NDArray

from nodescope.clinical._lrm import LogisticFit
from nodescope.errors import ConfigError

__all__ = ["Nomogram", "NomogramAxis", "nomogram", "plot_nomogram", "pretty"]


def pretty(lo: float, hi: float, n: int = 5) -> NDArray[np.float64]:
    """R's ``pretty(c(lo, hi), n)``: about ``n + 1`` equally spaced round values covering ``[lo, hi]``.

    A port of R's ``R_pretty`` (src/appl/pretty.c) with its default biases (``high.u.bias = 1.5``,
    ``u5.bias = 2.75``, ``min.n = n %/% 3``).
    """
    h, h5 = 1.5, 0.5 + 1.5 * 1.5
    min_n = n // 3
    dx = hi - lo
    if dx == 0 and hi == 0:
        cell, small = 1.0, True
    else:
        cell = max(abs(lo), abs(hi))
        u = 1 + (1 / (1 + h) if h5 >= 1.5 * h + 0.5 else 1.5 / (1 + h5))
        u *= max(1, n) * np.finfo(float).eps
        small = bool(dx < cell * u * 3)
    if small:
        if cell > 10:
            cell = 9 + cell / 10
        cell *= 0.75
        if min_n > 1:
            cell /= min_n
    else:
        cell = dx / n if n > 1 else dx
    base = 10.0 ** math.floor(math.log10(cell))
    unit = base
    if 2 * base - cell < h * (cell - unit):
        unit = 2 * base
        if 5 * base - cell < h5 * (cell - unit):
            unit = 5 * base
            if 10 * base - cell < h * (cell - unit):
                unit = 10 * base
    ns = math.floor(lo / unit + 1e-7)
    nu = math.ceil(hi / unit - 1e-7)
    while ns * unit > lo + 1e-10 * unit:
        ns -= 1
    while nu * unit < hi - 1e-10 * unit:
        nu += 1
    k = int(0.5 + nu - ns)
    if k < min_n:
        k = min_n - k
        if ns >= 0:
            nu += k // 2
            ns -= k // 2 + k % 2
        else:
            ns -= k // 2
            nu += k // 2 + k % 2
    return np.round(np.arange(ns, nu + 1) * unit, 12)


@dataclass(frozen=True)
class NomogramAxis:
    """One predictor's axis: the values shown and their points."""

    variable: str
    values: tuple[float | str, ...]
    points: tuple[float, ...]


@dataclass(frozen=True)
class Nomogram:
    """A nomogram: predictor axes, the points scale and the total-points -> linear predictor map.

    Attributes
    ----------
    axes : tuple of NomogramAxis
    scale : float
        Points per unit of linear predictor (rms ``sc``).
    intercept : float
        The linear predictor at 0 total points (rms' ``Intercept`` of the nomogram).
    maxscale : float
    """

    fit: LogisticFit
    axes: tuple[NomogramAxis, ...]
    scale: float
    intercept: float
    maxscale: float = 100.0

    def _contribution(self, variable: str, values: Sequence[float | str]) -> NDArray[np.float64]:
        return _contribution(self.fit, variable, values)

    def points(self, variable: str, values: Sequence[float | str]) -> NDArray[np.float64]:
        """Points of ``variable`` at any ``values`` (not only the axis ticks)."""
        axis = next(a for a in self.axes if a.variable == variable)
        low = float(np.min(self._contribution(variable, list(axis.values))))
        return (self._contribution(variable, values) - low) * self.scale

    def total_points(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """Total points of each row of ``frame`` (one column per predictor)."""
        return np.sum([self.points(a.variable, frame[a.variable].tolist()) for a in self.axes], axis=0)

    def linear_predictor(self, total_points: float | ArrayLike) -> NDArray[np.float64]:
        """``intercept + total / scale``."""
        return self.intercept + np.asarray(total_points, float) / self.scale

    def probability(self, total_points: float | ArrayLike) -> NDArray[np.float64]:
        """The predicted probability at the given total points."""
        return 1 / (1 + np.exp(-self.linear_predictor(total_points)))

    def to_frame(self) -> pd.DataFrame:
        """Long table: ``variable``, ``value``, ``points``."""
        return pd.DataFrame([{"variable": a.variable, "value": v, "points": p} for a in self.axes
                             for v, p in zip(a.values, a.points, strict=True)])


ArrayLike = Sequence[float] | NDArray[np.float64]


def _contribution(fit: LogisticFit, variable: str, values: Sequence[float | str]) -> NDArray[np.float64]:
    term = next(t for t in fit.design.terms if t.kind != "interaction" and t.variable == variable)
    cols = fit.design.term_columns(variable)
    cells = [v if isinstance(v, str) else repr(float(v)) for v in values]
    x = term.matrix(pd.DataFrame({variable: cells}))
    return x @ fit.coef.to_numpy()[cols]


def nomogram(fit: LogisticFit, *, axes: Mapping[str, Sequence[float | str]] | None = None,
             maxscale: float = 100.0) -> Nomogram:
    """Build the nomogram of a fitted model (rms ``nomogram(fit)``).

    Parameters
    ----------
    fit : LogisticFit
        A model without interaction terms.
    axes : mapping, optional
        ``{variable: values}`` to show on an axis instead of the default (``pretty(range, 10)`` for continuous
        variables, every level for categorical ones). The scale depends on the values shown, as in rms.
    maxscale : float, default 100
        Points of the widest axis.

    Returns
    -------
    Nomogram

    Raises
    ------
    ConfigError
        The model has interaction terms, or ``axes`` names a variable the model does not have.
    """
    design = fit.design
    if any(t.kind == "interaction" for t in design.terms):
        raise ConfigError("nomogram: the model has interaction terms; draw one nomogram per level of the "
                          "interacting factor (fit the model within each level) or drop the interaction")
    axes = dict(axes or {})
    unknown = sorted(set(axes) - set(design.variables))
    if unknown:
        raise ConfigError(f"nomogram: {', '.join(map(repr, unknown))} not in the model ({', '.join(design.variables)})")
    values: dict[str, list[float | str]] = {}
    for var in design.variables:
        if var in axes:
            values[var] = list(axes[var])
        elif design.kind(var) == "categorical":
            values[var] = list(next(t.levels for t in design.terms if t.variable == var))
        else:
            lo, hi = design.limits[var].range
            values[var] = [float(v) for v in pretty(lo, hi, 10)]
    contrib = {v: _contribution(fit, v, values[v]) for v in design.variables}
    ranges = {v: float(np.ptp(c)) for v, c in contrib.items()}
    widest = max(ranges.values())
    if widest <= 0:
        raise ConfigError("nomogram: every predictor has a zero effect over its axis")
    sc = maxscale / widest
    intercept = float(fit.coef.iloc[0] + sum(float(np.min(c)) for c in contrib.values()))
    out = tuple(NomogramAxis(v, tuple(values[v]), tuple(float(p) for p in (contrib[v] - np.min(contrib[v])) * sc))
                for v in design.variables)
    return Nomogram(fit=fit, axes=out, scale=sc, intercept=intercept, maxscale=maxscale)


def plot_nomogram(nom: Nomogram, *, probabilities: Sequence[float] = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
                                                                       0.7, 0.8, 0.9, 0.95, 0.99),
                  title: str | None = None) -> Figure:
    """Draw the nomogram: a points ruler, one axis per predictor, total points and the probability axis.

    Parameters
    ----------
    nom : Nomogram
    probabilities : sequence of float
        Probabilities marked on the bottom axis (those reachable with the total points are drawn).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    total_max = sum(max(a.points) for a in nom.axes)
    rows = len(nom.axes) + 3
    fig = Figure(figsize=(9, 0.55 * rows + 0.8))
    ax = fig.add_subplot()
    ax.set_xlim(-0.32 * nom.maxscale, 1.05 * nom.maxscale)
    ax.set_ylim(-rows + 0.3, 0.8)
    ax.axis("off")

    def ruler(y: float, label: str, xs: Sequence[float], texts: Sequence[str]) -> None:
        ax.text(-0.3 * nom.maxscale, y, label, va="center", ha="left", fontsize=9, fontweight="bold")
        if len(xs):
            ax.plot([min(xs), max(xs)], [y, y], color="black", lw=0.8)
        # a U-shaped effect folds the axis back: ticks after the turning point go below the line; a label closer
        # than 3% of the width to the last one shown on its side is left out (its tick stays)
        steps = np.sign(np.diff(xs)) if len(xs) > 1 else np.array([])
        change = np.flatnonzero(steps != steps[0]) if len(steps) else np.array([])
        turn = int(change[0]) if len(change) else len(xs)
        shown: dict[bool, list[float]] = {True: [], False: []}
        for i, (x, t) in enumerate(zip(xs, texts, strict=True)):
            below = i > turn
            ax.plot([x, x], [y, y - 0.12 if below else y + 0.12], color="black", lw=0.8)
            if all(abs(x - s) >= 0.03 * nom.maxscale for s in shown[below]):
                shown[below].append(x)
                ax.text(x, y - 0.18 if below else y + 0.18, t, ha="center", va="top" if below else "bottom",
                        fontsize=7)

    ticks = pretty(0, nom.maxscale, 10)
    ruler(0, "Points", list(ticks), [f"{t:g}" for t in ticks])
    for i, axis in enumerate(nom.axes, start=1):
        labels = [v if isinstance(v, str) else f"{v:g}" for v in axis.values]
        ruler(-i, axis.variable, list(axis.points), labels)
    tot = pretty(0, total_max, 10)
    k = len(nom.axes) + 1
    ruler(-k, "Total points", list(tot / tot.max() * nom.maxscale), [f"{t:g}" for t in tot])
    lo_lp, hi_lp = nom.linear_predictor(0.0), nom.linear_predictor(tot.max())
    ps = [p for p in probabilities if lo_lp <= math.log(p / (1 - p)) <= hi_lp]
    xs = [(math.log(p / (1 - p)) - nom.intercept) * nom.scale / tot.max() * nom.maxscale for p in ps]
    ruler(-(k + 1), "Probability", xs, [f"{p:g}" for p in ps])
    if title:
        ax.set_title(title, fontsize=10)
    return fig
