"""QUADAS-2 risk-of-bias and applicability judgements: reading and validation.

QUADAS-2 (Whiting et al., Ann Intern Med 2011;155:529-536) judges each primary study in four domains for risk of bias
(patient selection, index test, reference standard, flow and timing) and in the first three for concerns about
applicability. Each judgement is ``low``, ``high`` or ``unclear``.

The CSV has one row per study with the columns of :data:`QUADAS_COLUMNS` (``study`` plus seven judgements). Headers and
levels are matched case-insensitively (``Low`` is ``low``); the stored frame holds the lower-case level. Any other
column (reviewer notes, ...) is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nodescope.errors import StatisticsInputError
from nodescope.meta._studies import did_you_mean, read_source_table

__all__ = [
    "APPLICABILITY_DOMAINS",
    "QUADAS_COLUMNS",
    "QUADAS_LEVELS",
    "RISK_OF_BIAS_DOMAINS",
    "QuadasError",
    "QuadasTable",
    "read_quadas",
]

RISK_OF_BIAS_DOMAINS: tuple[str, ...] = (
    "rob_patient_selection",
    "rob_index_test",
    "rob_reference_standard",
    "rob_flow_timing",
)
APPLICABILITY_DOMAINS: tuple[str, ...] = (
    "applicability_patient_selection",
    "applicability_index_test",
    "applicability_reference_standard",
)
QUADAS_COLUMNS: tuple[str, ...] = ("study", *RISK_OF_BIAS_DOMAINS, *APPLICABILITY_DOMAINS)
QUADAS_LEVELS: tuple[str, ...] = ("low", "high", "unclear")

#: Human-readable domain names for tables and plots.
DOMAIN_LABELS: dict[str, str] = {
    "rob_patient_selection": "Patient selection",
    "rob_index_test": "Index test",
    "rob_reference_standard": "Reference standard",
    "rob_flow_timing": "Flow and timing",
    "applicability_patient_selection": "Patient selection",
    "applicability_index_test": "Index test",
    "applicability_reference_standard": "Reference standard",
}


class QuadasError(StatisticsInputError):
    """A QUADAS-2 table has problems; :attr:`problems` lists each with its row, column and value."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        head = f"{source}: {len(problems)} QUADAS-2 problem{'s' if len(problems) != 1 else ''}"
        super().__init__(head + ":\n  " + "\n  ".join(problems))


@dataclass(frozen=True, eq=False)
class QuadasTable:
    """Validated QUADAS-2 judgements, one row per study.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns of :data:`QUADAS_COLUMNS` (judgements lower-case, one of :data:`QUADAS_LEVELS`), then any extra
        columns verbatim.
    source : str
        The file read, or ``"<DataFrame>"``.
    """

    frame: pd.DataFrame
    source: str = "<DataFrame>"

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def studies(self) -> list[str]:
        """Study labels in file order."""
        return [str(s) for s in self.frame["study"]]

    def summary(self) -> pd.DataFrame:
        """Counts and percentages of each level per domain.

        Returns
        -------
        pandas.DataFrame
            One row per domain: ``part`` ("risk of bias" or "applicability concerns"), ``domain`` (label),
            ``column``, ``n_low, n_high, n_unclear`` and ``pct_low, pct_high, pct_unclear`` (0-100).
        """
        rows = []
        k = len(self.frame)
        for col in (*RISK_OF_BIAS_DOMAINS, *APPLICABILITY_DOMAINS):
            counts = self.frame[col].value_counts()
            row: dict[str, object] = {
                "part": "risk of bias" if col.startswith("rob_") else "applicability concerns",
                "domain": DOMAIN_LABELS[col],
                "column": col,
            }
            for level in QUADAS_LEVELS:
                row[f"n_{level}"] = int(counts.get(level, 0))
            for level in QUADAS_LEVELS:
                row[f"pct_{level}"] = 100.0 * int(counts.get(level, 0)) / k
            rows.append(row)
        return pd.DataFrame(rows)

    def check_studies(self, studies: Iterable[str]) -> list[str]:
        """Compare with the studies of a meta-analysis.

        Parameters
        ----------
        studies : iterable of str
            Study labels of the 2x2 table (repeats allowed: several cohorts per study).

        Returns
        -------
        list of str
            The studies of ``studies`` with no QUADAS-2 row (an empty list when every study is judged).

        Raises
        ------
        QuadasError
            When the QUADAS-2 table names studies that are not in ``studies`` (likely a typo).
        """
        wanted = list(dict.fromkeys(str(s) for s in studies))
        unknown = [s for s in self.studies if s not in wanted]
        if unknown:
            problems = []
            for s in unknown:
                hint = did_you_mean(s, wanted)
                problems.append(f"study {s!r} is not in the studies table{hint}")
            raise QuadasError(self.source, problems)
        have = set(self.studies)
        return [s for s in wanted if s not in have]


def read_quadas(source: str | Path | pd.DataFrame) -> QuadasTable:
    """Read and validate a QUADAS-2 table (one row per study).

    Parameters
    ----------
    source : str, Path or pandas.DataFrame
        A CSV file or frame with the columns of :data:`QUADAS_COLUMNS`; headers matched case-insensitively.

    Returns
    -------
    QuadasTable

    Raises
    ------
    QuadasError
        (a ``ValueError``) listing every missing column, empty or duplicate study, and judgement outside
        ``low``/``high``/``unclear`` with its row (1-based data row), column and value.
    TypeError
        When ``source`` is neither a path nor a DataFrame.
    FileNotFoundError
        When the file does not exist.
    """
    raw, name, _ = read_source_table(source, "QUADAS-2")
    raw.columns = [str(c).strip() for c in raw.columns]
    problems: list[str] = []
    lower: dict[str, list[str]] = {}
    for c in raw.columns:
        lower.setdefault(c.lower(), []).append(c)
    mapping: dict[str, str] = {}
    for want in QUADAS_COLUMNS:
        hits = lower.get(want, [])
        if len(hits) == 1:
            mapping[hits[0]] = want
        elif len(hits) > 1:
            problems.append(f"column {want!r}: several headers match it case-insensitively ({hits}); keep one")
        else:
            hint = did_you_mean(want, list(raw.columns))
            problems.append(f"column {want!r} is missing{hint}; expected columns {list(QUADAS_COLUMNS)}")
    if len(raw) == 0:
        problems.append("the table has no rows; expected one row per study")
    if problems:
        raise QuadasError(name, problems)
    frame = raw.rename(columns=mapping)
    frame = frame[[*QUADAS_COLUMNS, *[c for c in frame.columns if c not in QUADAS_COLUMNS]]].copy()
    studies = []
    for i, s in enumerate(frame["study"]):
        empty = s is None or (isinstance(s, float) and math.isnan(s)) or str(s).strip() == ""
        if empty:
            problems.append(f"row {i + 1}, column 'study': empty study label")
        studies.append("" if empty else str(s).strip())
    frame["study"] = studies
    dup = frame["study"].duplicated(keep=False) & (frame["study"] != "")
    for s, grp in frame[dup].groupby("study", sort=False):
        rows = ", ".join(str(i + 1) for i in grp.index)
        problems.append(f"rows {rows}: study {s!r} appears more than once; QUADAS-2 judges each study once")
    for col in (*RISK_OF_BIAS_DOMAINS, *APPLICABILITY_DOMAINS):
        levels = []
        for i, value in enumerate(frame[col]):
            text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()
            if text.lower() in QUADAS_LEVELS:
                levels.append(text.lower())
                continue
            hint = did_you_mean(text.lower(), QUADAS_LEVELS, cutoff=0.5)
            shown = repr(text) if text else "empty"
            problems.append(f"row {i + 1} (study {frame['study'].iloc[i]!r}), column {col!r}: {shown}{hint}; "
                            f"expected one of {list(QUADAS_LEVELS)}")
            levels.append(text)
        frame[col] = levels
    if problems:
        raise QuadasError(name, problems)
    return QuadasTable(frame=frame.reset_index(drop=True), source=name)
