"""``metrics.json`` of ``nodescope evaluate``: the JSON document built from :class:`EvaluationResults`.

The schema is documented in ``docs/evaluate.md`` and versioned by
:data:`~nodescope.evaluation._run.METRICS_SCHEMA_VERSION`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import TYPE_CHECKING, Any

import pandas as pd

from nodescope import __version__
from nodescope.evaluation._run import METRICS_SCHEMA_VERSION, TUNING_SPLITS, jsonable

if TYPE_CHECKING:
    from nodescope.evaluation._compute import BinarySplitResult, EvaluationResults, ModelResult

__all__ = ["metrics_document"]

_TRUTHY = {"1", "yes", "true", "y", "t"}


def _is_synthetic(frame: pd.DataFrame) -> bool:
    if "synthetic" in frame.columns and frame["synthetic"].astype(str).str.strip().str.lower().isin(_TRUTHY).any():
        return True
    for col in ("model", "run_id"):
        if col in frame.columns and frame[col].astype(str).str.lower().str.contains("synthetic").any():
            return True
    return False


def _binary_split_doc(r: BinarySplitResult) -> dict[str, Any]:
    entry: dict[str, Any] = {"n": r.n, "n_patients": r.n_patients, "n_positive": r.n_positive,
                             "prevalence": r.prevalence, "clustered_by_patient": r.clustered,
                             "discrimination": {"auc": r.auc.to_dict(), "average_precision": r.ap.to_dict()},
                             "operating_point": {**r.metrics.to_dict(), "threshold_tuned_on_this_split": r.tuned_here}}
    if r.calibration_note is not None:
        entry["calibration"] = {"note": r.calibration_note}
    else:
        cal = r.calibration
        assert cal is not None  # a calibration without a note was computed
        entry["calibration"] = jsonable(dataclasses.replace(
            cal, hosmer_lemeshow=dataclasses.replace(cal.hosmer_lemeshow, table=pd.DataFrame())))
    if r.dca is not None:
        entry["dca"] = {"table": "dca.csv", "prevalence": r.dca.prevalence, "n_boot": r.dca.n_boot}
    return entry


def _model_doc(model: ModelResult, results: EvaluationResults) -> dict[str, Any]:
    if results.preds.task != "binary":
        return {"splits": {s.split: {"n": s.n, "n_patients": s.n_patients, "clustered_by_patient": s.clustered,
                                     **jsonable(s.metrics.to_dict())} for s in model.splits}}
    rule = results.options.rule
    return {
        "threshold": {"value": model.threshold, "rule": rule.spec, "method": rule.method, "target": rule.target,
                      "chosen_on": model.chosen_on, "choice": jsonable(model.choice) if model.choice else None},
        "splits": {s.split: _binary_split_doc(s) for s in model.splits},  # type: ignore[arg-type]
    }


def metrics_document(results: EvaluationResults, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The ``metrics.json`` document of an evaluation (``tables`` from :func:`evaluation_tables`).

    Parameters
    ----------
    results : EvaluationResults
        The computed results.
    tables : dict of str to pandas.DataFrame
        The tidy tables of the same results (``flow`` and ``subgroups`` are embedded).

    Returns
    -------
    dict
        JSON-ready except for values :func:`jsonable` converts when the document is written.
    """
    preds, opts = results.preds, results.options
    readers = results.readers
    return {
        "schema": "nodescope.evaluate.metrics",
        "schema_version": METRICS_SCHEMA_VERSION,
        "nodescope_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": {"predictions": results.source or preds.source, "sha256": results.sha256, "n_rows": len(preds)},
        "task": preds.task,
        "classes": list(preds.classes),
        "positive": preds.positive,
        "synthetic": _is_synthetic(preds.frame),
        "settings": {"threshold": opts.rule.spec, "threshold_chosen_on": list(TUNING_SPLITS), "alpha": opts.alpha,
                     "n_boot": opts.n_boot, "seed": opts.seed, "by": list(opts.by),
                     "compare": list(opts.compare) if opts.compare else None, "model": opts.model},
        "flow": jsonable(tables["flow"]),
        "models": jsonable({m.name: _model_doc(m, results) for m in results.models}),
        "subgroups": jsonable(tables["subgroups"]) if "subgroups" in tables else [],
        "comparisons": jsonable(list(results.comparison.docs)) if results.comparison else [],
        "readers": jsonable(readers.study.to_dict()) if readers is not None else None,
        "notes": list(results.notes),
    }
