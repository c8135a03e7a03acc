"""Table 1: the cohort described per group, with the test and standardised mean difference for each variable.

Rules (docs/clinical.md states them for readers of a paper):

* **Continuous** variables are summarised as mean +/- SD when a Shapiro-Wilk test does not reject normality
  (p >= ``normality_alpha``) in every group with at least 3 values, otherwise as median [Q1, Q3] (quartiles by
  linear interpolation, R's type 7); ``summary={"col": "mean" | "median"}`` overrides the choice per variable. The test
  follows the summary: Welch's t test or one-way ANOVA for means, Mann-Whitney U or Kruskal-Wallis for medians
  (``scipy.stats.ttest_ind(equal_var=False)``, ``f_oneway``, ``mannwhitneyu`` (two-sided, asymptotic with continuity
  correction as R's ``wilcox.test(exact=FALSE)``), ``kruskal``).
* **Categorical** variables are shown as n (%) per level, percentages of the non-missing values of the group. The
  test is Pearson's chi-square without continuity correction; when any expected count is below 5 it is Fisher's exact
  test instead -- the classic 2 x 2 test, and for larger r x c tables the Freeman-Halton generalisation with its
  p-value from a seeded Monte Carlo of 20 000 tables with the observed margins (``scipy.stats.fisher_exact`` with
  ``MonteCarloMethod``, as R's ``fisher.test(simulate.p.value = TRUE)``), so the same seed gives the same p.
* **Missing** values are counted per group and left out of summaries and tests.
* **SMD**: for two groups, Cohen's d with the pooled-variance denominator ``sqrt((s1^2 + s2^2) / 2)`` for continuous
  variables and Yang & Dalton's multinomial SMD for categorical ones; for more groups the mean of the pairwise SMDs
  (as R's tableone). References: Austin PC, Stat Med 2009;28:3083; Yang D, Dalton JE, SAS Global Forum 2012.
* **p-values** are formatted as most journals ask (AMA style): ``<0.001``; three decimals below 0.01; otherwise two,
  unless two would read 0.05, where three are kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from nodescope.clinical._table import as_float, column_kinds, require_columns
from nodescope.errors import ConfigError, DataError

__all__ = ["Table1", "Table1Row", "format_p", "smd_categorical", "smd_continuous", "table1"]

Summary = Literal["mean", "median"]

#: Tables drawn for the Monte Carlo Fisher-Freeman-Halton p-value of r x c tables (seeded).
_MC_TABLES = 20000


def format_p(p: float) -> str:
    """Format a p-value as journals do (AMA style).

    Parameters
    ----------
    p : float
        The p-value (``nan`` gives ``""``).

    Returns
    -------
    str
        ``"<0.001"`` below 0.001; three decimals below 0.01; otherwise two decimals, or three when two would read
        ``0.05``; ``">0.99"`` above 0.99.

    Examples
    --------
    >>> [format_p(p) for p in (0.0004, 0.0042, 0.0494, 0.051, 0.23, 0.996)]
    ['<0.001', '0.004', '0.049', '0.051', '0.23', '>0.99']
    """
    if p is None or not math.isfinite(p):
        return ""
    if p < 0.001:
        return "<0.001"
    if p < 0.01:
        return f"{p:.3f}"
    if p > 0.99:
        return ">0.99"
    if round(p, 2) == 0.05:  # 0.046..0.054 would all read "0.05": keep the digit that says which side
        return f"{p:.3f}"
    return f"{p:.2f}"


def smd_continuous(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference ``(mean_a - mean_b) / sqrt((var_a + var_b) / 2)`` (sample variances, ddof=1)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    den = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return float((a.mean() - b.mean()) / den) if den > 0 else float("nan")


def smd_categorical(p1: np.ndarray, p2: np.ndarray) -> float:
    """Yang & Dalton's SMD of two level-proportion vectors: ``sqrt(d' S^-1 d)``, first level dropped.

    Parameters
    ----------
    p1, p2 : array of float, shape (k,)
        Proportions of the k levels in each group (each sums to 1).

    Returns
    -------
    float
        The (non-negative) SMD; for two levels it equals ``|p1 - p2| / sqrt((p1 q1 + p2 q2) / 2)``. Levels absent
        from both groups are dropped first and a singular pooled covariance is inverted by the Moore-Penrose
        generalised inverse (as R's tableone); ``nan`` when fewer than two levels remain.
    """
    p1, p2 = np.asarray(p1, float), np.asarray(p2, float)
    seen = (p1 > 0) | (p2 > 0)
    t, c = p1[seen][1:], p2[seen][1:]
    if len(t) == 0:
        return float("nan")
    def cov(p: np.ndarray) -> np.ndarray:
        return np.diag(p) - np.outer(p, p)
    s = (cov(t) + cov(c)) / 2
    d = t - c
    val = float(d @ np.linalg.pinv(s) @ d)  # generalised inverse where S is singular, as R's tableone (MASS::ginv)
    return math.sqrt(max(val, 0.0))


@dataclass(frozen=True)
class Table1Row:
    """One variable of Table 1.

    Attributes
    ----------
    variable : str
    kind : {"continuous", "categorical"}
    summary : {"mean", "median", "n (%)"}
    cells : dict
        ``{level or "": {group: text}}``: the display text per level (one key ``""`` for a continuous variable).
    missing : dict
        ``{group: count}`` of missing values.
    test : str
        The test that gave ``p`` (``""`` when none could be run).
    statistic, p, smd : float
    note : str
        Why a test was not run, or what was substituted.
    """

    variable: str
    kind: str
    summary: str
    cells: dict[str, dict[str, str]]
    missing: dict[str, int]
    test: str
    statistic: float
    p: float
    smd: float
    note: str = ""


@dataclass(frozen=True)
class Table1:
    """A Table 1: per-group summaries, tests and SMDs.

    Attributes
    ----------
    group : str
        The grouping column.
    groups : tuple of str
        Its levels in column order.
    n : dict
        Patients per group (rows with a missing group are dropped and counted in ``notes``).
    rows : tuple of Table1Row
    notes : tuple of str
        Footnotes: the rules applied, dropped rows, substituted tests.
    source : str
        The file the table was read from (``frame.attrs["source"]``), named in the HTML page.
    """

    group: str
    groups: tuple[str, ...]
    n: dict[str, int]
    rows: tuple[Table1Row, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    source: str = ""

    def to_frame(self, *, show_missing: bool = True) -> pd.DataFrame:
        """The display table: ``Variable``, one column per group (``name (n=..)``), ``p``, ``Test``, ``SMD``."""
        heads = [f"{g} (n={self.n[g]})" for g in self.groups]
        out: list[dict[str, str]] = []
        for row in self.rows:
            label = f"{row.variable}, {'mean ± SD' if row.summary == 'mean' else 'median [IQR]'}" \
                if row.kind == "continuous" else f"{row.variable}, n (%)"
            first = {"Variable": label, **dict.fromkeys(heads, ""), "p": format_p(row.p), "Test": row.test,
                     "SMD": "" if not math.isfinite(row.smd) else f"{row.smd:.3f}"}
            if row.kind == "continuous":
                first.update({h: row.cells[""][g] for h, g in zip(heads, self.groups, strict=True)})
                out.append(first)
            else:
                out.append(first)
                for level, cells in row.cells.items():
                    out.append({"Variable": f"    {level}", **{h: cells[g] for h, g in zip(heads, self.groups,
                                                                                            strict=True)},
                                "p": "", "Test": "", "SMD": ""})
            if show_missing and any(row.missing.values()):
                out.append({"Variable": "    missing", **{h: str(row.missing[g]) for h, g in
                                                          zip(heads, self.groups, strict=True)},
                            "p": "", "Test": "", "SMD": ""})
        return pd.DataFrame(out, columns=["Variable", *heads, "p", "Test", "SMD"])

    def stats_frame(self) -> pd.DataFrame:
        """One row per variable with the raw numbers: kind, summary, test, statistic, p, smd, missing, note."""
        return pd.DataFrame([{"variable": r.variable, "kind": r.kind, "summary": r.summary, "test": r.test,
                              "statistic": r.statistic, "p": r.p, "smd": r.smd,
                              "missing": sum(r.missing.values()), "note": r.note} for r in self.rows])

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table followed by the footnotes."""
        frame = self.to_frame()
        def esc(v: object) -> str:
            return str(v).replace("|", "\\|")
        lines = ["| " + " | ".join(esc(c) for c in frame.columns) + " |",
                 "|" + "|".join(" --- " for _ in frame.columns) + "|"]
        lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
        return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in self.notes) + "\n"

    def to_latex(self) -> str:
        """A LaTeX ``tabular`` (booktabs rules) followed by the footnotes as a comment-free paragraph."""
        frame = self.to_frame().map(lambda v: _latex_escape(str(v)).replace("    ", r"\quad ", 1))
        frame.columns = [_latex_escape(str(c)) for c in frame.columns]
        body = frame.to_latex(index=False, escape=False, column_format="l" + "r" * (frame.shape[1] - 1))
        notes = "\n".join(_latex_escape(n) + r"\\" for n in self.notes)
        return body + "\n" + notes + "\n"

    def to_html(self) -> str:
        """A self-contained HTML page with the table and the footnotes."""
        from nodescope.report import HtmlReport

        rep = HtmlReport(f"Table 1 by {self.group}")
        if self.source:
            rep.paragraph(f"Source: {self.source}")
        rep.table(self.to_frame())
        rep.bullets(list(self.notes))
        return rep.render()


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("<", r"$<$"), (">", r"$>$")):
        text = text.replace(a, b)
    return text


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def _continuous(name: str, values: dict[str, np.ndarray], missing: dict[str, int], forced: str | None,
                normality_alpha: float, digits: int) -> Table1Row:
    groups = list(values)
    normal = True
    for v in values.values():
        if len(v) >= 3 and np.ptp(v) > 0 and stats.shapiro(v).pvalue < normality_alpha:
            normal = False
    summary = forced or ("mean" if normal else "median")
    cells: dict[str, str] = {}
    for g, v in values.items():
        if len(v) == 0:
            cells[g] = "-"
        elif summary == "mean":
            sd = v.std(ddof=1) if len(v) > 1 else float("nan")
            cells[g] = f"{_fmt(v.mean(), digits)} ± {_fmt(sd, digits)}"
        else:
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            cells[g] = f"{_fmt(med, digits)} [{_fmt(q1, digits)}, {_fmt(q3, digits)}]"
    usable = [values[g] for g in groups if len(values[g]) >= 2]
    test, stat, p, note = "", float("nan"), float("nan"), ""
    if len(usable) < len(groups) or np.ptp(np.concatenate(usable)) == 0:
        note = "test not run: a group has fewer than 2 values or all values are equal"
    elif summary == "mean":
        if len(groups) == 2:
            res = stats.ttest_ind(usable[0], usable[1], equal_var=False)
            test, stat, p = "Welch t", float(res.statistic), float(res.pvalue)
        else:
            res = stats.f_oneway(*usable)
            test, stat, p = "ANOVA", float(res.statistic), float(res.pvalue)
    elif len(groups) == 2:
        res = stats.mannwhitneyu(usable[0], usable[1], alternative="two-sided", method="asymptotic",
                                 use_continuity=True)
        test, stat, p = "Mann-Whitney U", float(res.statistic), float(res.pvalue)
    else:
        res = stats.kruskal(*usable)
        test, stat, p = "Kruskal-Wallis", float(res.statistic), float(res.pvalue)
    pairs = [smd_continuous(values[a], values[b]) for i, a in enumerate(groups) for b in groups[i + 1:]]
    smd = float(np.mean(np.abs(pairs))) if len(groups) > 2 else (abs(pairs[0]) if pairs else float("nan"))
    return Table1Row(name, "continuous", summary, {"": cells}, missing, test, stat, p, smd, note)


def _categorical(name: str, col: pd.Series, grp: pd.Series, groups: list[str], missing: dict[str, int],
                 seed: int) -> Table1Row:
    given = col.notna()
    tab = pd.crosstab(col[given], grp[given]).reindex(columns=groups, fill_value=0)
    levels = [str(x) for x in tab.index]
    counts = tab.to_numpy(dtype=np.int64)
    totals = counts.sum(axis=0)
    cells = {lev: {g: (f"{counts[i, j]} ({100 * counts[i, j] / totals[j]:.1f})" if totals[j] else "0 (-)")
                   for j, g in enumerate(groups)} for i, lev in enumerate(levels)}
    test, stat, p, note = "", float("nan"), float("nan"), ""
    keep = counts[:, totals > 0]
    keep = keep[keep.sum(axis=1) > 0]
    if keep.shape[0] < 2 or keep.shape[1] < 2:
        note = "test not run: fewer than two levels or two non-empty groups"
    else:
        expected = stats.contingency.expected_freq(keep)
        if (expected < 5).any():
            if keep.shape == (2, 2):
                res = stats.fisher_exact(keep)
                test, p = "Fisher exact", float(res.pvalue)
            else:
                res = stats.fisher_exact(keep, method=stats.MonteCarloMethod(
                    n_resamples=_MC_TABLES, rng=np.random.default_rng(seed)))
                test, p = "Fisher-Freeman-Halton (Monte Carlo)", float(res.pvalue)
            note = f"expected count < 5 in {int((expected < 5).sum())} of {expected.size} cells: Fisher's exact test"
        else:
            res = stats.chi2_contingency(keep, correction=False)
            test, stat, p = "Chi-square", float(res.statistic), float(res.pvalue)
    props = counts / np.where(totals > 0, totals, 1)
    pairs = [smd_categorical(props[:, i], props[:, j]) for i in range(len(groups)) for j in range(i + 1, len(groups))
             if totals[i] and totals[j]]
    smd = float(np.mean(pairs)) if pairs else float("nan")
    return Table1Row(name, "categorical", "n (%)", cells, missing, test, stat, p, smd, note)


def table1(frame: pd.DataFrame, group: str, *, variables: Sequence[str] | None = None,
           summary: Mapping[str, Summary] | None = None, continuous: Sequence[str] = (),
           categorical: Sequence[str] = (), max_levels: int = 5, normality_alpha: float = 0.05, digits: int = 1,
           seed: int = 0) -> Table1:
    """Describe a cohort per group (Table 1).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per patient, as read by :func:`~nodescope.clinical.read_clinical_table` (text cells, ``None`` for
        missing).
    group : str
        The grouping column (for example nodal status); its levels become the table's columns in sorted order.
    variables : sequence of str, optional
        The rows, in order; default every column except ``group`` and ``patient_id``.
    summary : mapping, optional
        ``{variable: "mean" | "median"}`` overriding the normality-based choice for continuous variables.
    continuous, categorical : sequence of str
        Variables forced to a kind (see :func:`~nodescope.clinical.column_kinds`).
    max_levels : int, default 5
        A numeric variable with at most this many distinct values is treated as categorical.
    normality_alpha : float, default 0.05
        Shapiro-Wilk level below which a group is taken as non-normal.
    digits : int, default 1
        Decimals of the continuous summaries.
    seed : int, default 0
        Seed of the Monte Carlo Fisher-Freeman-Halton test (r x c tables with small expected counts).

    Returns
    -------
    Table1

    Raises
    ------
    DataError
        A column is absent, the group has fewer than 2 levels, a forced-continuous column holds text.
    ConfigError
        A ``summary`` value other than ``mean``/``median``, or one given for a categorical variable.
    """
    require_columns(frame, [group])
    src = frame.attrs.get("source", "clinical table")
    variables = list(variables) if variables is not None else [c for c in frame.columns
                                                               if c not in (group, "patient_id")]
    require_columns(frame, variables)
    if group in variables:
        raise DataError(f"{src}: the group column {group!r} cannot also be a variable")
    grp = frame[group]
    dropped = int(grp.isna().sum())
    data = frame[grp.notna()]
    grp = data[group].astype(str)
    groups = sorted(grp.unique(), key=_natural)
    if len(groups) < 2:
        raise DataError(f"{src}: group column {group!r} has {len(groups)} level(s) ({', '.join(groups)}); "
                        "Table 1 needs at least 2")
    summary = dict(summary or {})
    for var, how in summary.items():
        if how not in ("mean", "median"):
            raise ConfigError(f"summary for {var!r}: must be 'mean' or 'median', got {how!r}")
    kinds = column_kinds(data, variables, max_levels=max_levels, continuous=continuous, categorical=categorical)
    bad = [v for v in summary if v not in kinds or kinds[v] != "continuous"]
    if bad:
        raise ConfigError(f"summary given for {', '.join(map(repr, bad))}, which is not a continuous variable")
    rows: list[Table1Row] = []
    for var in variables:
        missing = {g: int(data[var][grp == g].isna().sum()) for g in groups}
        if kinds[var] == "continuous":
            num = as_float(data, var)
            values = {g: num[(grp == g) & num.notna()].to_numpy(float) for g in groups}
            rows.append(_continuous(var, values, missing, summary.get(var), normality_alpha, digits))
        else:
            rows.append(_categorical(var, data[var], grp, groups, missing, seed))
    notes = [
        f"Continuous: mean ± SD when Shapiro-Wilk p >= {normality_alpha:g} in every group, else median [IQR]; "
        "Welch t / ANOVA for means, Mann-Whitney U / Kruskal-Wallis for medians.",
        "Categorical: n (%) of non-missing; Pearson chi-square without continuity correction, Fisher's exact test "
        "when any expected count is below 5 (r x c: Freeman-Halton, Monte Carlo p from 20000 tables).",
        "SMD: standardised mean difference (Yang & Dalton for categorical variables"
        + ("; mean of pairwise SMDs" if len(groups) > 2 else "") + ").",
        "Missing values are counted and excluded from summaries and tests.",
    ]
    if dropped:
        notes.append(f"{dropped} row(s) with a missing {group!r} were left out.")
    n = {g: int((grp == g).sum()) for g in groups}
    return Table1(group=group, groups=tuple(groups), n=n, rows=tuple(rows), notes=tuple(notes),
                  source=str(frame.attrs.get("source", "")))


def _natural(text: str) -> tuple[float, str]:
    try:
        return (float(text), text)
    except ValueError:
        return (math.inf, text)
