"""The tidy tables of ``nodescope evaluate`` (``tables/<name>.csv``), built from :class:`EvaluationResults`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from nodescope._estimate import Estimate
from nodescope.evaluation._predictions import Predictions
from nodescope.evaluation._run import split_order

if TYPE_CHECKING:
    from nodescope.evaluation._compute import BinarySplitResult, EvaluationResults, MulticlassSplitResult

__all__ = ["evaluation_tables"]


def _est_rows(model: str, split: str, ests: list[Estimate], **extra: Any) -> list[dict[str, Any]]:
    return [{"model": model, "split": split, **extra, "metric": e.name, "estimate": e.estimate, "ci_low": e.ci_low,
             "ci_high": e.ci_high, "method": e.method, "alpha": e.alpha, "n": e.n, "note": e.note} for e in ests]


def _labelled(frame: pd.DataFrame, model: str, split: str) -> pd.DataFrame:
    """``frame`` with ``model`` and ``split`` as its first two columns."""
    frame.insert(0, "split", split)
    frame.insert(0, "model", model)
    return frame


def _flow(preds: Predictions) -> pd.DataFrame:
    rows = []
    for model in preds.values("model"):
        for split in split_order(preds.where(model=model).values("split")):
            sub = preds.where(model=model, split=split)
            counts = sub.frame["y_true"].value_counts()
            row: dict[str, Any] = {"model": model, "split": split, "n_rows": len(sub),
                                   "n_patients": int(sub.frame["patient_id"].nunique())}
            for c in preds.classes:
                row[f"n_{c}"] = int(counts.get(c, 0))
            if preds.task == "binary":
                row["prevalence"] = row[f"n_{preds.positive}"] / len(sub)
            rows.append(row)
    return pd.DataFrame(rows)


def _binary_rows(model: str, r: BinarySplitResult, out: dict[str, list]) -> None:
    out["discrimination"] += _est_rows(model, r.split, [r.auc, r.ap])
    t = r.metrics.table
    out["operating_point"] += _est_rows(model, r.split, r.metrics.estimates(), threshold=r.threshold,
                                        threshold_tuned_here=r.tuned_here, tp=t.tp, fp=t.fp, fn=t.fn, tn=t.tn)
    if r.calibration is not None:
        out["calibration"].append(_labelled(r.calibration.summary_frame(), model, r.split))
    if r.dca is not None:
        out["dca"].append(_labelled(r.dca.to_frame(), model, r.split))


def _multiclass_rows(model: str, r: MulticlassSplitResult, out: dict[str, list]) -> None:
    mm = r.metrics
    out["multiclass"].append(_labelled(mm.summary_frame(), model, r.split))
    out["per_class"].append(_labelled(mm.per_class.copy(), model, r.split))
    cm = mm.confusion.stack().rename("count").reset_index()
    cm.columns = ["true", "predicted", "count"]
    out["confusion"].append(_labelled(cm, model, r.split))


def evaluation_tables(results: EvaluationResults) -> dict[str, pd.DataFrame]:
    """Every table of an evaluation, keyed by file stem; tables without rows are left out.

    Parameters
    ----------
    results : EvaluationResults
        From :func:`~nodescope.evaluation._compute.compute_evaluation`.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``flow`` always; then ``discrimination``, ``operating_point``, ``calibration``, ``dca``, ``subgroups``
        (binary) or ``multiclass``, ``per_class``, ``confusion``, ``subgroups`` (multi-class); ``comparisons``;
        ``readers``, ``reader_comparisons`` and ``mrmc`` of a reader study.
    """
    preds, opts = results.preds, results.options
    out: dict[str, list] = {k: [] for k in ("discrimination", "operating_point", "calibration", "dca", "subgroups",
                                            "multiclass", "per_class", "confusion")}
    for model in results.models:
        for r in model.splits:
            if preds.task == "binary":
                _binary_rows(model.name, r, out)  # type: ignore[arg-type]
            else:
                _multiclass_rows(model.name, r, out)  # type: ignore[arg-type]
        out["subgroups"] += model.subgroups
    tables: dict[str, pd.DataFrame] = {"flow": _flow(preds.where(model=list(opts.models)) if opts.model else preds)}
    for key, rows in out.items():
        if rows:
            tables[key] = pd.concat(rows, ignore_index=True) if isinstance(rows[0], pd.DataFrame) \
                else pd.DataFrame(rows)
    if results.comparison is not None and results.comparison.rows:
        tables["comparisons"] = pd.DataFrame(list(results.comparison.rows))
    if results.readers is not None:
        study = results.readers.study
        tables["readers"] = study.points_frame()
        cf = study.comparisons_frame()
        if len(cf):
            tables["reader_comparisons"] = cf
        if study.mrmc is not None:
            tables["mrmc"] = study.mrmc.summary_frame()
    return tables
