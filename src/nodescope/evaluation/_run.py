"""What :func:`~nodescope.evaluation.evaluate_predictions` returns, and the split names every part of it shares.

:class:`EvaluationRun` lives apart from the code that builds it (``_report``) and the code that renders it
(``_report_html``), so both import it from here and neither imports the other.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodescope._estimate import Estimate
from nodescope.evaluation._readers import ReaderStudy

__all__ = ["HELD_OUT_SPLITS", "METRICS_SCHEMA_VERSION", "SPLIT_ORDER", "TUNING_SPLITS", "EvaluationRun", "jsonable"]

METRICS_SCHEMA_VERSION = "1.0"
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


def jsonable(obj: Any) -> Any:
    """Convert results (dataclasses, Estimates, numpy, DataFrames) to JSON values; ``nan``/``inf`` become ``None``."""
    if isinstance(obj, Estimate):
        return jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, pd.DataFrame):
        return jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)
