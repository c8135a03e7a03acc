"""What :func:`~nodescope.evaluation.evaluate_predictions` returns, and the split names every part of it shares.

:class:`EvaluationRun` lives apart from the code that builds it (``_report``) and the code that renders it
(``_report_html``), so both import it from here and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nodescope.evaluation._readers import ReaderStudy
from nodescope.evaluation._results import jsonable  # re-exported: the one JSON converter of the package

__all__ = ["HELD_OUT_SPLITS", "METRICS_SCHEMA_VERSION", "SPLIT_ORDER", "TUNING_SPLITS", "EvaluationRun", "jsonable"]

METRICS_SCHEMA_VERSION = "2.0"  # 2.0: calibration intercept/slope renamed (statistics API 1.0), external
SPLIT_ORDER: tuple[str, ...] = ("cv", "val", "test", "external")
TUNING_SPLITS: tuple[str, ...] = ("cv", "val")
HELD_OUT_SPLITS: tuple[str, ...] = ("test", "external")


@dataclass(frozen=True, eq=False)
class EvaluationRun:
    """Everything :func:`~nodescope.evaluation.write_evaluation` writes: the metrics document, tables and figures.

    Attributes
    ----------
    metrics : dict
        The ``metrics.json`` document (schema in ``docs/evaluate.md``).
    tables : dict of str to pandas.DataFrame
        Tidy tables, written as ``tables/<name>.csv``.
    figures : dict of str to matplotlib.figure.Figure
        Figures, written as ``figures/<stem>.png|svg``.
    readers : ReaderStudy or None
        The reader study, when a reads table was given.
    notes : list of str
        Remarks on how the run was done (shown in the report and in ``metrics.json``).
    """

    metrics: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    readers: ReaderStudy | None = None
    notes: list[str] = field(default_factory=list)


def split_order(present: set[str] | list[str]) -> list[str]:
    """The known splits among ``present``, in :data:`SPLIT_ORDER`."""
    have = set(present)
    return [s for s in SPLIT_ORDER if s in have]


def primary_split(splits: list[str]) -> str:
    """The split a model's single-split figures show: the first held-out split, else the last one."""
    held = [s for s in splits if s in HELD_OUT_SPLITS]
    return held[0] if held else splits[-1]
