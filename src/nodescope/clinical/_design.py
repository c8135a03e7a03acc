"""Model formulas and design matrices, with rms' column names and parametrisation.

A formula is ``outcome ~ term + term + ...``; a term is a variable name (numeric: linear; text: categorical),
```a name with spaces```, ``cat(name)`` (categorical even when numeric), ``rcs(name, k)`` (restricted cubic spline
with ``k`` knots at Hmisc's default places), ``a * b`` (both main effects and their interaction) or ``a:b`` (the
interaction only). Main effects come first in the order written, interactions last, as rms orders them.

Categorical variables use treatment coding against their first level in sorted order (R's default factor levels);
columns are named as rms names them: ``age``, ``age'``, ``age''``, ``sex=M``, ``sex=M * marker``. The distribution
summary that rms keeps in a ``datadist`` (quartiles, median, mode, range, 10th smallest and largest values) is kept
in :class:`Limits` for effect estimates and nomograms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nodescope.clinical._rcs import rcs_basis, rcs_knots
from nodescope.clinical._table import as_float, require_columns
from nodescope.errors import ConfigError, DataError

__all__ = ["Design", "Limits", "Term", "build_design", "parse_formula"]

_ATOM = re.compile(r"^\s*(?:(rcs|cat)\(\s*(`[^`]+`|[^,()]+?)\s*(?:,\s*(\d+)\s*)?\)|(`[^`]+`|[^*:()`]+?))\s*$")


@dataclass(frozen=True)
class Limits:
    """A variable's distribution summary (rms ``datadist``): adjust-to value and effect range.

    Attributes
    ----------
    adjust : float or str
        Median (continuous) or most frequent level (categorical): where other variables are held for effects.
    low, high : float or str
        Lower and upper quartile (continuous, R type 7) for inter-quartile effects; for categorical variables the
        reference level and the adjust-to level.
    range : tuple of float
        Minimum and maximum (continuous; ``()`` for categorical).
    """

    adjust: float | str
    low: float | str
    high: float | str
    range: tuple[float, ...] = ()


@dataclass(frozen=True)
class Term:
    """One term of a model formula.

    Attributes
    ----------
    kind : {"linear", "rcs", "categorical", "interaction"}
    variable : str
        The variable (for an interaction, ``"a * b"``).
    nk : int
        Knots requested for ``rcs``.
    knots : tuple of float
        The knots placed on the fitting data (``rcs``).
    levels : tuple of str
        Levels of a categorical variable, reference first.
    parts : tuple of Term
        The two main-effect terms of an interaction.
    """

    kind: Literal["linear", "rcs", "categorical", "interaction"]
    variable: str
    nk: int = 0
    knots: tuple[float, ...] = ()
    levels: tuple[str, ...] = ()
    parts: tuple[Term, ...] = ()

    @property
    def variables(self) -> tuple[str, ...]:
        """The data columns the term reads."""
        return tuple(p.variable for p in self.parts) if self.kind == "interaction" else (self.variable,)

    def columns(self) -> list[str]:
        """Design column names, as rms prints them."""
        if self.kind == "linear":
            return [self.variable]
        if self.kind == "rcs":
            return [self.variable + "'" * j for j in range(len(self.knots) - 1)]
        if self.kind == "categorical":
            return [f"{self.variable}={lev}" for lev in self.levels[1:]]
        a, b = self.parts
        return [f"{ca} * {cb}" for ca in a.columns() for cb in b.columns()]

    def matrix(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """The term's design columns for the rows of ``frame`` (shape ``(n, len(columns()))``)."""
        if self.kind == "interaction":
            a, b = (p.matrix(frame) for p in self.parts)
            return np.einsum("ni,nj->nij", a, b).reshape(len(frame), -1)
        if self.kind == "categorical":
            values = frame[self.variable].astype(str).to_numpy()
            unknown = sorted(set(values) - set(self.levels))
            if unknown:
                raise DataError(f"column {self.variable!r}: level(s) {', '.join(map(repr, unknown))} not seen when "
                                f"the model was fitted (known: {', '.join(self.levels)})")
            return np.column_stack([(values == lev).astype(float) for lev in self.levels[1:]]) if len(
                self.levels) > 1 else np.empty((len(frame), 0))
        x = as_float(frame, self.variable).to_numpy(float)
        return x[:, None] if self.kind == "linear" else rcs_basis(x, self.knots)


@dataclass(frozen=True)
class Design:
    """A parsed formula fixed on a data set: outcome, terms (knots and levels placed) and variable limits."""

    outcome: str
    terms: tuple[Term, ...]
    limits: dict[str, Limits] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Every design column name, after ``Intercept``."""
        return [c for t in self.terms for c in t.columns()]

    @property
    def variables(self) -> list[str]:
        """The predictor variables in order of first appearance."""
        out: list[str] = []
        for t in self.terms:
            out += [v for v in t.variables if v not in out]
        return out

    def matrix(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """The design matrix with a leading column of ones (shape ``(n, 1 + len(columns))``)."""
        parts = [np.ones((len(frame), 1))] + [t.matrix(frame) for t in self.terms]
        return np.hstack(parts)

    def term_columns(self, variable: str) -> list[int]:
        """Indices (in the design matrix, intercept = 0) of every column that involves ``variable``."""
        idx, pos = [], 1
        for t in self.terms:
            n = len(t.columns())
            if variable in t.variables:
                idx += list(range(pos, pos + n))
            pos += n
        return idx

    def kind(self, variable: str) -> str:
        """``categorical``, ``rcs`` or ``linear`` for a predictor variable."""
        for t in self.terms:
            if t.kind != "interaction" and t.variable == variable:
                return t.kind
        raise ConfigError(f"{variable!r} is not a main effect of the model")


def _name(token: str) -> str:
    token = token.strip()
    return token[1:-1] if token.startswith("`") and token.endswith("`") else token


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and backticks."""
    out, depth, tick, cur = [], 0, False, ""
    for ch in text:
        if ch == "`":
            tick = not tick
        elif not tick and ch == "(":
            depth += 1
        elif not tick and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not tick:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def parse_formula(formula: str) -> tuple[str, list[tuple[str, str, int]], list[tuple[str, str]]]:
    """Parse ``outcome ~ terms`` into the outcome, main effects ``(kind, name, nk)`` and interactions ``(a, b)``.

    ``kind`` is ``"rcs"``, ``"cat"`` or ``""`` (decided by the data). Raises :class:`ConfigError` naming the part
    it cannot read.
    """
    lhs, sep, rhs = formula.partition("~")
    if not sep or not lhs.strip() or not rhs.strip():
        raise ConfigError(f"formula {formula!r}: expected 'outcome ~ term + term', e.g. 'y ~ rcs(age, 4) + sex'")
    mains: list[tuple[str, str, int]] = []
    inter: list[tuple[str, str]] = []

    def atom(text: str) -> tuple[str, str, int]:
        m = _ATOM.match(text)
        if not m:
            raise ConfigError(f"formula {formula!r}: cannot read term {text.strip()!r} (expected name, `name`, "
                              "cat(name) or rcs(name, k))")
        if m.group(1):
            nk = int(m.group(3)) if m.group(3) else (5 if m.group(1) == "rcs" else 0)
            return (m.group(1), _name(m.group(2)), nk)
        return ("", _name(m.group(4)), 0)

    def add(a: tuple[str, str, int]) -> None:
        if a[1] not in [x[1] for x in mains]:
            mains.append(a)

    for part in _split(rhs, "+"):
        star, colon = _split(part, "*"), _split(part, ":")
        if len(star) == 2:
            a, b = atom(star[0]), atom(star[1])
            add(a)
            add(b)
            inter.append((a[1], b[1]))
        elif len(colon) == 2:
            inter.append((atom(colon[0])[1], atom(colon[1])[1]))
        elif len(star) > 2 or len(colon) > 2:
            raise ConfigError(f"formula {formula!r}: only two-way interactions are supported ({part.strip()!r})")
        else:
            add(atom(part))
    for ia, ib in inter:
        for v in (ia, ib):
            if v not in [x[1] for x in mains]:
                raise ConfigError(f"formula {formula!r}: interaction {ia}:{ib} needs the main effect {v!r} too")
    return _name(lhs), mains, inter


def _limits(frame: pd.DataFrame, var: str, categorical: bool) -> Limits:
    col = frame[var].dropna()
    if categorical:
        counts = col.astype(str).value_counts()
        levels = sorted(counts.index)
        mode = str(counts.sort_index().idxmax())
        return Limits(adjust=mode, low=levels[0], high=mode)
    x = as_float(frame, var).dropna().to_numpy(float)
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    return Limits(adjust=float(med), low=float(q1), high=float(q3), range=(float(x.min()), float(x.max())))


def build_design(formula: str, frame: pd.DataFrame) -> Design:
    """Fix a formula on a data set: decide variable kinds, place knots and levels, record limits.

    Parameters
    ----------
    formula : str
        See the module docstring.
    frame : pandas.DataFrame
        The fitting data (text cells, ``None`` for missing, as read by ``read_clinical_table``); knots are placed on
        the non-missing values of each variable, limits are taken over them (as ``datadist`` on the table).

    Returns
    -------
    Design
    """
    outcome, mains, inter = parse_formula(formula)
    require_columns(frame, [outcome] + [m[1] for m in mains])
    terms: dict[str, Term] = {}
    limits: dict[str, Limits] = {}
    for kind, var, nk in mains:
        numeric = pd.to_numeric(frame[var].dropna(), errors="coerce").notna().all() and frame[var].notna().any()
        if kind == "rcs":
            x = as_float(frame, var).to_numpy(float)
            terms[var] = Term("rcs", var, nk=nk, knots=tuple(float(k) for k in rcs_knots(x, nk)))
        elif kind == "cat" or not numeric:
            levels = sorted(frame[var].dropna().astype(str).unique(), key=_level_key)
            if len(levels) < 2:
                raise DataError(f"{frame.attrs.get('source', 'data')}: column {var!r} has a single level "
                                f"({', '.join(levels)}); it cannot be a predictor")
            terms[var] = Term("categorical", var, levels=tuple(levels))
        else:
            terms[var] = Term("linear", var)
        limits[var] = _limits(frame, var, terms[var].kind == "categorical")
    inters = tuple(Term("interaction", f"{a} * {b}", parts=(terms[a], terms[b])) for a, b in inter)
    return Design(outcome=outcome, terms=(*terms.values(), *inters), limits=limits)


def _level_key(level: str) -> tuple[int, float, str]:
    """R sorts a factor's text levels; numeric-looking levels sort by value (as a factor of numbers does)."""
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level)
