"""Reconstruction of 2x2 tables from reported sensitivity, specificity and arm sizes (or n and prevalence).

Split from :mod:`nodescope.meta._studies`, whose count parsing and :class:`ReconstructionWarning` it uses.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.meta._studies import ReconstructionWarning, _parse_count

__all__ = ["reconstruct_2x2"]

_EPS = 1e-9


def _decimals_of(value: object) -> int:
    """Number of decimals written in ``value`` (``"85.40"`` -> 2; a float uses its shortest repr: 0.854 -> 3)."""
    text = str(value).strip() if isinstance(value, str) else repr(float(value))  # type: ignore[arg-type]
    if "e" in text.lower():
        mantissa, _, exp = text.lower().partition("e")
        return max(0, _decimals_of(mantissa) - int(exp))
    return len(text.partition(".")[2])


def _half_up(x: float) -> int:
    return math.floor(x + 0.5 + _EPS)


def _number(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if text == "":
        return None
    return float(text)


def _feasible(reported: float, half: float, denom: int) -> tuple[int, int]:
    """Integer numerators ``k`` in ``[0, denom]`` with ``|k / denom - reported| <= half`` as ``(lo, hi)``; lo > hi if none."""
    lo = max(0, math.ceil((reported - half) * denom - _EPS))
    hi = min(denom, math.floor((reported + half) * denom + _EPS))
    return lo, hi


def reconstruct_2x2(
    table: pd.DataFrame,
    *,
    sensitivity: str = "sensitivity",
    specificity: str = "specificity",
    n_diseased: str = "n_diseased",
    n_nondiseased: str = "n_nondiseased",
    n: str = "n",
    prevalence: str = "prevalence",
    scale: Literal["proportion", "percent"] = "proportion",
    decimals: int | None = None,
) -> pd.DataFrame:
    """Rebuild 2x2 tables from reported sensitivity, specificity and arm sizes, showing the rounding.

    For each row the arm sizes come from ``n_diseased`` and ``n_nondiseased`` when both are given, else from ``n`` and
    ``prevalence`` (``D = round(n * prevalence)``, ``N = n - D``). Then::

        TP = round(sens * D)    FN = D - TP
        TN = round(spec * N)    FP = N - TN

    with round-half-up. A reported figure ``x`` written with ``d`` decimals stands for any true value in
    ``x +/- 0.5 * 10**-d`` (divided by 100 for percentages); a row is *consistent* when some integer numerator falls in
    that interval for every reported proportion. Inconsistent rows are kept (the nearest integer is used) and named in
    one :class:`ReconstructionWarning`; several feasible numerators are noted, not warned about.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per cohort; every column is kept. Read CSV files with ``dtype=str`` so the written decimals are seen
        (for floats the shortest ``repr`` is used: ``0.85`` has 2 decimals, so ``0.850`` read as float too).
    sensitivity, specificity, n_diseased, n_nondiseased, n, prevalence : str
        Column names of the reported figures. Either both arm columns or both ``n`` and ``prevalence`` must be
        present (per row, the arm sizes win when both are filled in).
    scale : {"proportion", "percent"}
        Whether sensitivity, specificity and prevalence are in [0, 1] or in [0, 100]. Default ``"proportion"``; a value
        above 1 with ``"proportion"`` is an error, never silently divided by 100.
    decimals : int, optional
        The number of decimals the reports used, overriding the inference from each value's text.

    Returns
    -------
    pandas.DataFrame
        The input columns unchanged, followed by ``TP, FP, FN, TN`` (int64), ``sens_2x2`` and ``spec_2x2`` (the
        proportions the rebuilt table gives), ``sens_decimals``, ``spec_decimals``, ``consistent`` (bool) and
        ``reconstruction_note`` (why a row is inconsistent or ambiguous; empty otherwise).

    Raises
    ------
    ValueError
        Missing columns, empty or non-numeric values, proportions outside their scale, non-integer or negative arm
        sizes; the message names the row and column.

    Warns
    -----
    ReconstructionWarning
        When a row's reported figures cannot all come from one integer table.

    Examples
    --------
    Zhou et al. (Radiology 2020) report 85% sensitivity and 73% specificity for 41 node-positive and 40 node-negative
    images of their independent test set:

    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": ["Zhou 2020"], "sensitivity": ["85"], "specificity": ["73"],
    ...                   "n_diseased": ["41"], "n_nondiseased": ["40"]})
    >>> reconstruct_2x2(t, scale="percent")[["TP", "FP", "FN", "TN", "consistent"]].to_dict("records")
    [{'TP': 35, 'FP': 11, 'FN': 6, 'TN': 29, 'consistent': True}]
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if scale not in ("proportion", "percent"):
        raise ConfigError(f"scale must be 'proportion' or 'percent', got {scale!r}")
    if decimals is not None and (not isinstance(decimals, int) or decimals < 0):
        raise ConfigError(f"decimals must be an integer >= 0 or None, got {decimals!r}")
    cols = list(table.columns)
    missing = [c for c in (sensitivity, specificity) if c not in cols]
    has_arms = n_diseased in cols and n_nondiseased in cols
    has_prev = n in cols and prevalence in cols
    if not (has_arms or has_prev):
        missing.append(f"({n_diseased!r} and {n_nondiseased!r}) or ({n!r} and {prevalence!r})")
    if missing:
        raise StatisticsInputError(f"reconstruct_2x2: missing column(s) {', '.join(map(str, missing))}; the columns are {cols}")
    rep = _Reported(table, sensitivity, specificity, n_diseased, n_nondiseased, n, prevalence, scale, decimals,
                    has_arms, has_prev)
    out_rows = []
    bad: list[str] = []
    for i in range(len(table)):
        row, notes = rep.rebuild(i)
        out_rows.append(row)
        if not row["consistent"]:
            label = table["study"].iloc[i] if "study" in cols else ""
            bad.append(f"row {i + 1}{f' ({label})' if label != '' else ''}: " + "; ".join(notes))
    added = pd.DataFrame(out_rows, index=table.index,
                         columns=["TP", "FP", "FN", "TN", "sens_2x2", "spec_2x2", "sens_decimals", "spec_decimals",
                                  "consistent", "reconstruction_note"])
    clash = [c for c in added.columns if c in cols]
    if clash:
        raise StatisticsInputError(f"reconstruct_2x2: the table already has column(s) {clash}; drop them first")
    if bad:
        warnings.warn("reported figures inconsistent beyond rounding in " + f"{len(bad)} row(s): " + " | ".join(bad),
                      ReconstructionWarning, stacklevel=2)
    for c in ("TP", "FP", "FN", "TN", "sens_decimals", "spec_decimals"):
        added[c] = added[c].astype(np.int64)
    added["consistent"] = added["consistent"].astype(bool)
    return pd.concat([table, added], axis=1)


@dataclass(frozen=True)
class _Reported:
    """The reported figures of a :func:`reconstruct_2x2` table: column names, scale and how to read each cell."""

    table: pd.DataFrame
    sensitivity: str
    specificity: str
    n_diseased: str
    n_nondiseased: str
    n: str
    prevalence: str
    scale: str
    decimals: int | None
    has_arms: bool
    has_prev: bool

    @property
    def unit(self) -> float:
        return 100.0 if self.scale == "percent" else 1.0

    def prop(self, i: int, col: str) -> tuple[float, int]:
        """Row ``i``'s proportion in ``col`` (on the 0-1 scale) and its number of decimals."""
        raw = self.table[col].iloc[i]
        try:
            value = _number(raw)
        except ValueError:
            raise StatisticsInputError(f"row {i + 1}, column {col!r}: {str(raw).strip()!r} is not a number") from None
        if value is None:
            raise StatisticsInputError(f"row {i + 1}, column {col!r}: empty; expected a {self.scale}")
        if not 0.0 <= value <= self.unit:
            hint = " (percentages? pass scale='percent')" if self.scale == "proportion" and value <= 100 else ""
            raise StatisticsInputError(f"row {i + 1}, column {col!r}: {str(raw).strip()} is outside [0, {self.unit:g}]{hint}")
        return value / self.unit, (self.decimals if self.decimals is not None else _decimals_of(raw))

    def count(self, i: int, col: str) -> int | None:
        """Row ``i``'s count in ``col``; ``None`` when empty."""
        raw = self.table[col].iloc[i]
        try:
            present = _number(raw)
        except ValueError:
            present = 0.0  # let _parse_count explain
        if present is None:
            return None
        value, why = _parse_count(raw)
        if why is not None:
            raise StatisticsInputError(f"row {i + 1}, column {col!r}: {why}")
        return value

    def arms(self, i: int, notes: list[str]) -> tuple[int, int, bool]:
        """Row ``i``'s diseased and non-diseased counts, and whether the prevalence (if used) is reproducible."""
        dis = self.count(i, self.n_diseased) if self.has_arms else None
        non = self.count(i, self.n_nondiseased) if self.has_arms else None
        if dis is not None and non is not None:
            return dis, non, True
        n, prevalence = self.n, self.prevalence
        if not self.has_prev:
            raise StatisticsInputError(f"row {i + 1}: {self.n_diseased!r} / {self.n_nondiseased!r} empty and no {n!r} / "
                             f"{prevalence!r} columns to fall back on")
        total = self.count(i, n)
        if total is None:
            raise StatisticsInputError(f"row {i + 1}, column {n!r}: empty; expected the number of participants")
        prev, prev_dec = self.prop(i, prevalence)
        dis = _half_up(prev * total)
        non = total - dis
        lo, hi = _feasible(prev, 0.5 * 10.0**-prev_dec / self.unit, total)
        if lo > hi:
            notes.append(f"prevalence {self.table[prevalence].iloc[i]} with n={total}: no integer number of diseased "
                         f"reproduces it (used {dis}, giving {dis / total * self.unit:.{prev_dec + 2}f})")
            return dis, non, False
        if hi > lo:
            notes.append(f"diseased could be {lo}-{hi}; used {dis}")
        return dis, non, True

    def rebuild(self, i: int) -> tuple[dict[str, object], list[str]]:
        """Row ``i``'s rebuilt table (the columns :func:`reconstruct_2x2` adds) and the notes about it."""
        notes: list[str] = []
        dis, non, ok = self.arms(i, notes)
        cells = {}
        for name, col, denom in (("sens", self.sensitivity, dis), ("spec", self.specificity, non)):
            value, dec = self.prop(i, col)
            if denom == 0:
                raise StatisticsInputError(f"row {i + 1}: {'diseased' if name == 'sens' else 'non-diseased'} arm is empty; "
                                 f"{col!r} cannot be turned into a count")
            k = _half_up(value * denom)
            lo, hi = _feasible(value, 0.5 * 10.0**-dec / self.unit, denom)
            if lo > hi:
                ok = False
                notes.append(f"{col} {self.table[col].iloc[i]} ({dec} decimals) with {denom} "
                             f"{'diseased' if name == 'sens' else 'non-diseased'}: no integer count reproduces it "
                             f"(used {k}, giving {k / denom * self.unit:.{dec + 2}f})")
            elif hi > lo:
                notes.append(f"{'TP' if name == 'sens' else 'TN'} could be {lo}-{hi}; used {k}")
            cells[name] = (k, denom, dec)
        tp, d, sens_dec = cells["sens"]
        tn, nn, spec_dec = cells["spec"]
        row = {"TP": tp, "FP": nn - tn, "FN": d - tp, "TN": tn, "sens_2x2": tp / d, "spec_2x2": tn / nn,
               "sens_decimals": sens_dec, "spec_decimals": spec_dec, "consistent": ok,
               "reconstruction_note": "; ".join(notes)}
        return row, notes
