"""Tests and effects of a fitted logistic model: rms' ``anova`` (Wald), likelihood-ratio tests, ``summary`` (odds ratios).

* :func:`wald_anova` -- a chunk Wald chi-square ``b' V^-1 b`` for every factor (all its columns, interactions
  included, labelled "(Factor+Higher Order Factors)" as rms does), its non-linear part, its interactions, and the
  totals, with rms' row names so the tables can be compared line by line.
* :func:`lr_tests` -- for every factor, twice the log-likelihood drop when all its columns are removed and the model
  refitted on the same patients (R: ``lrtest(full, reduced)``).
* :func:`effects` -- rms ``summary``: the log odds ratio (and odds ratio) between the upper and lower quartile of a
  continuous variable, and between each level and the reference of a categorical one, other variables held at their
  median or mode; standard errors from the covariance, Wald intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from nodescope.clinical._lrm import LogisticFit, fit_matrix

__all__ = ["effects", "lr_tests", "wald_anova"]


def _wald(fit: LogisticFit, idx: list[int]) -> tuple[float, int, float]:
    b = fit.coef.to_numpy()[idx]
    v = fit.cov.to_numpy()[np.ix_(idx, idx)]
    chi = float(b @ np.linalg.solve(v, b))
    return chi, len(idx), float(stats.chi2.sf(chi, len(idx)))


def wald_anova(fit: LogisticFit) -> pd.DataFrame:
    """rms ``anova(fit)``: Wald chi-square, df and p per factor, non-linear part, interactions and totals.

    Returns
    -------
    pandas.DataFrame
        Index: rms' row labels (``age``, `` Nonlinear``, ``sex  (Factor+Higher Order Factors)``, `` All
        Interactions``, ..., ``TOTAL``); columns ``Chi-Square``, ``d.f.``, ``P``.
    """
    design = fit.design
    names = ["Intercept", *design.columns]
    inter_terms = [t for t in design.terms if t.kind == "interaction"]
    rows: list[tuple[str, list[int]]] = []
    nonlinear_all: list[int] = []
    nonlinear_factors = 0
    for var in design.variables:
        cols = design.term_columns(var)
        in_inter = any(var in t.variables for t in inter_terms)
        rows.append((f"{var}  (Factor+Higher Order Factors)" if in_inter else var, cols))
        if in_inter:
            icols = [i for i in cols if " * " in names[i]]
            rows.append((" All Interactions", icols))
        if design.kind(var) == "rcs":
            nl = [i for i in cols if any(part.startswith(var + "'") for part in names[i].split(" * "))]
            rows.append((" Nonlinear", nl) if not in_inter else (" Nonlinear (Factor+Higher Order Factors)", nl))
            nonlinear_all += [i for i in nl if i not in nonlinear_all]
            nonlinear_factors += 1
    inter_all: list[int] = []
    for t in inter_terms:
        a, b = t.parts
        cols = [i for i in range(1, len(names)) if " * " in names[i] and set(t.variables) <= {
            p.split("=")[0].rstrip("'") for p in names[i].split(" * ")}]
        rows.append((f"{a.variable} * {b.variable}  (Factor+Higher Order Factors)", cols))
        inter_all += cols
    if nonlinear_factors > 1:
        rows.append(("TOTAL NONLINEAR", nonlinear_all))
    if len(inter_terms) > 1:
        rows.append(("TOTAL INTERACTION", inter_all))
    if nonlinear_all and inter_all:
        rows.append(("TOTAL NONLINEAR + INTERACTION", sorted(set(nonlinear_all) | set(inter_all))))
    rows.append(("TOTAL", list(range(1, len(names)))))
    out = [(label, *_wald(fit, idx)) for label, idx in rows if idx]
    return pd.DataFrame([o[1:] for o in out], index=[o[0] for o in out], columns=["Chi-Square", "d.f.", "P"])


def lr_tests(fit: LogisticFit) -> pd.DataFrame:
    """Likelihood-ratio test of each factor: refit without all its columns on the same patients.

    Returns
    -------
    pandas.DataFrame
        Index: factor; columns ``L.R. Chisq``, ``d.f.``, ``P``. For a Firth fit the penalised likelihoods are
        compared (the penalised likelihood-ratio test of Heinze & Schemper 2002).
    """
    def loglik(x: NDArray[np.float64]) -> float:
        beta, cov, _ = fit_matrix(x, fit.y, firth=fit.firth)
        lp = x @ beta
        ll = float(np.sum(fit.y * lp - np.logaddexp(0, lp)))
        if fit.firth:
            ll -= 0.5 * float(np.linalg.slogdet(cov)[1])
        return ll

    full = loglik(fit.x)
    rows = []
    for var in fit.design.variables:
        drop = fit.design.term_columns(var)
        keep = [i for i in range(fit.x.shape[1]) if i not in drop]
        chi = 2 * (full - loglik(fit.x[:, keep]))
        rows.append((var, chi, len(drop), float(stats.chi2.sf(chi, len(drop)))))
    return pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=["L.R. Chisq", "d.f.", "P"])


def effects(fit: LogisticFit, *, alpha: float = 0.05) -> pd.DataFrame:
    """rms ``summary(fit)``: inter-quartile and level-vs-reference log odds ratios and odds ratios.

    Parameters
    ----------
    fit : LogisticFit
    alpha : float, default 0.05
        Wald intervals at ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        One row per contrast: ``factor``, ``low``, ``high`` (quartiles, or reference and level), ``effect`` (log odds
        ratio), ``se``, ``lower``, ``upper``, ``OR``, ``OR lower``, ``OR upper``.
    """
    design = fit.design
    adjust = {v: design.limits[v].adjust for v in design.variables}
    q = stats.norm.ppf(1 - alpha / 2)
    b = fit.coef.to_numpy()
    v = fit.cov.to_numpy()
    rows = []

    def contrast(var: str, low: object, high: object) -> tuple[float, float]:
        base = pd.DataFrame([{**adjust, var: low}, {**adjust, var: high}]).astype(object)
        base = base.map(lambda x: x if isinstance(x, str) else repr(float(x)))
        x = design.matrix(base)
        d = x[1] - x[0]
        return float(d @ b), float(np.sqrt(d @ v @ d))

    for var in design.variables:
        lim = design.limits[var]
        if design.kind(var) == "categorical":
            levels = next(t.levels for t in design.terms if t.kind == "categorical" and t.variable == var)
            pairs: list[tuple[str, float | str, float | str]] = [
                (f"{var} - {lev}:{levels[0]}", levels[0], lev) for lev in levels[1:]]
        else:
            pairs = [(var, lim.low, lim.high)]
        for label, low, high in pairs:
            eff, se = contrast(var, low, high)
            rows.append({"factor": label, "low": low, "high": high, "effect": eff, "se": se,
                         "lower": eff - q * se, "upper": eff + q * se, "OR": np.exp(eff),
                         "OR lower": np.exp(eff - q * se), "OR upper": np.exp(eff + q * se)})
    return pd.DataFrame(rows)
