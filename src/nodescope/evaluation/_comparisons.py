"""Paired comparison of two models on the same cases of each split (the ``compare`` option of an evaluation).

Binary tasks: DeLong for the AUC, exact McNemar for sensitivity and specificity at each model's own threshold and the
net-benefit difference; where patients have several rows, a paired cluster bootstrap over patients instead.
Multi-class tasks: per-class one-vs-rest DeLong tests. Each comparison gives tidy rows (``comparisons.csv``) and, for
binary tasks, one record per split for ``metrics.json``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nodescope.errors import StatisticsInputError
from nodescope.evaluation._compare import bootstrap_difference, compare_auc, mcnemar_test
from nodescope.evaluation._dca import net_benefit_difference
from nodescope.evaluation._predictions import Predictions
from nodescope.evaluation._run import SPLIT_ORDER, jsonable

__all__ = ["ComparisonResult", "compare_models"]

MULTICLASS_NOTE = "--compare on a multi-class task: per-class one-vs-rest DeLong tests"


@dataclass(frozen=True, eq=False)
class ComparisonResult:
    """Rows of ``comparisons.csv``, the records of ``metrics.json`` and notes on how the models were compared."""

    rows: tuple[dict[str, Any], ...]
    docs: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()


def row_keys(frame: pd.DataFrame) -> list[str]:
    """The columns that identify a case: ``patient_id`` and ``image``/``lesion_id`` where present."""
    return ["patient_id", *[c for c in ("image", "lesion_id") if c in frame.columns]]


def pair_keys(fa: pd.DataFrame, fb: pd.DataFrame) -> list[str]:
    """The case columns for pairing two models' rows: :func:`row_keys` less any ``image``/``lesion_id`` column that
    one model leaves empty throughout (a late-fusion model scores the patient, with no image of its own)."""

    def filled(f: pd.DataFrame, col: str) -> bool:
        v = f[col]
        return bool(v.notna().any() and (v.astype(str).str.strip() != "").any())

    keys = row_keys(fa)
    return [k for k in keys if k == "patient_id" or (k in fb.columns and filled(fa, k) and filled(fb, k))]


def _row(a: str, b: str, split: str, metric: str, estimate_a: float, estimate_b: float, diff: Any,
         statistic: float, p_value: float, method: str, n: int | None) -> dict[str, Any]:
    """One row of ``comparisons.csv``; ``diff`` is an Estimate of the difference a - b."""
    return {"model_a": a, "model_b": b, "split": split, "metric": metric, "estimate_a": estimate_a,
            "estimate_b": estimate_b, "difference": diff.estimate, "ci_low": diff.ci_low, "ci_high": diff.ci_high,
            "statistic": statistic, "p_value": p_value, "method": method, "n": n}


def _split_pairs(preds: Predictions, a: str, b: str) -> Iterator[tuple[str, Predictions, Predictions]]:
    """``(split, rows of a, rows of b)`` for each split (in :data:`SPLIT_ORDER`) where both models have rows."""
    for split in SPLIT_ORDER:
        pa, pb = preds.where(model=a, split=split), preds.where(model=b, split=split)
        if len(pa) and len(pb):
            yield split, pa, pb


def _paired_binary(pa: Predictions, pb: Predictions, a: str, b: str, split: str, keys: list[str]) -> pd.DataFrame:
    """The cases both models scored: ``keys``, ``_y_a``, ``_s_a``, ``_y_b``, ``_s_b``."""
    fa = pa.frame.assign(_y=pa.y_true(), _s=pa.y_score())
    fb = pb.frame.assign(_y=pb.y_true(), _s=pb.y_score())
    for lab, f in ((a, fa), (b, fb)):
        if f.duplicated(keys).any():
            raise StatisticsInputError(f"compare: model {lab!r} has several rows for the same {keys} in split "
                                       f"{split!r}; a paired comparison needs one row per case")
    m = fa[[*keys, "_y", "_s"]].merge(fb[[*keys, "_y", "_s"]], on=keys, suffixes=("_a", "_b"))
    if (m["_y_a"] != m["_y_b"]).any():
        raise StatisticsInputError(f"compare: models {a!r} and {b!r} disagree on y_true for the same case in "
                                   f"{split!r}")
    return m


def _clustered(m: pd.DataFrame, a: str, b: str, split: str, thresholds: dict[str, float], alpha: float, n_boot: int,
               seed: int, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Paired cluster bootstrap over patients (several rows per patient); fills ``doc``, returns the rows."""
    y, pid = m["_y_a"].to_numpy(), m["patient_id"].to_numpy()
    # DeLong, McNemar and a row bootstrap would treat correlated rows as independent; paired cluster bootstrap
    # over patients instead (same replicates for both models)
    doc["note"] = ("several rows per patient: AUC, sensitivity and specificity differences by paired "
                   "cluster bootstrap over patients (not DeLong/McNemar); net benefit likewise")
    rows = []
    for metric in ("auc", "sensitivity", "specificity"):
        e = bootstrap_difference(y, m["_s_a"], m["_s_b"], metric=metric, threshold_a=thresholds[a],
                                 threshold_b=thresholds[b], alpha=alpha, n_boot=n_boot, groups=pid, seed=seed)
        method = "cluster-bootstrap"
        doc[metric] = {"a": e.extra["estimate_a"], "b": e.extra["estimate_b"], "difference": e.to_dict(),
                       "p_value": e.extra["p_value"], "method": method}
        rows.append(_row(a, b, split, metric, e.extra["estimate_a"], e.extra["estimate_b"], e, math.nan,
                         e.extra["p_value"], method, len(m)))
    nb = net_benefit_difference(y, m["_s_a"], m["_s_b"], alpha=alpha, n_boot=n_boot, groups=pid, seed=seed)
    doc["net_benefit_difference"] = jsonable(nb.to_frame())
    return rows


def _delong_mcnemar(m: pd.DataFrame, a: str, b: str, split: str, thresholds: dict[str, float], alpha: float,
                    n_boot: int, seed: int, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """DeLong (AUC) and exact McNemar (sensitivity, specificity) on one row per case; fills ``doc``."""
    y = m["_y_a"].to_numpy()
    c = compare_auc(y, m["_s_a"], m["_s_b"], alpha=alpha)
    doc["auc"] = {"auc_a": c.auc_a, "auc_b": c.auc_b, "difference": c.difference.to_dict(),
                  "z": c.statistic, "p_value": c.p_value, "method": c.method}
    rows = [_row(a, b, split, "auc", c.auc_a, c.auc_b, c.difference, c.statistic, c.p_value, c.method, len(m))]
    for on in ("sensitivity", "specificity"):
        mc = mcnemar_test(y, (m["_s_a"] >= thresholds[a]).astype(int), (m["_s_b"] >= thresholds[b]).astype(int),
                          on=on, method="exact", alpha=alpha)
        doc[on] = {"a": mc.proportion_a, "b": mc.proportion_b, "difference": mc.difference.to_dict(),
                   "table": list(mc.table), "p_value": mc.p_value, "method": f"mcnemar-{mc.method}"}
        rows.append(_row(a, b, split, on, mc.proportion_a, mc.proportion_b, mc.difference, mc.statistic, mc.p_value,
                         f"mcnemar-{mc.method}", mc.difference.n))
    nb = net_benefit_difference(y, m["_s_a"], m["_s_b"], alpha=alpha, n_boot=n_boot, seed=seed)
    doc["net_benefit_difference"] = jsonable(nb.to_frame())
    return rows


def _compare_binary(preds: Predictions, a: str, b: str, thresholds: dict[str, float], alpha: float, n_boot: int,
                    seed: int) -> ComparisonResult:
    rows: list[dict[str, Any]] = []
    docs: list[dict[str, Any]] = []
    for split, pa, pb in _split_pairs(preds, a, b):
        keys = pair_keys(pa.frame, pb.frame)
        m = _paired_binary(pa, pb, a, b, split, keys)
        doc: dict[str, Any] = {"model_a": a, "model_b": b, "split": split, "n_paired": len(m),
                               "n_only_a": len(pa) - len(m), "n_only_b": len(pb) - len(m)}
        y, pid = m["_y_a"].to_numpy(), m["patient_id"].to_numpy()
        clustered = len(set(pid)) < len(pid)
        doc["clustered_by_patient"] = clustered
        enough = len(m) and 2 <= y.sum() <= len(y) - 2
        if enough and clustered:
            rows += _clustered(m, a, b, split, thresholds, alpha, n_boot, seed, doc)
        elif enough:
            rows += _delong_mcnemar(m, a, b, split, thresholds, alpha, n_boot, seed, doc)
        else:
            doc["note"] = "too few paired cases of each class for paired tests"
        docs.append(doc)
    return ComparisonResult(rows=tuple(rows), docs=tuple(docs))


def _compare_multiclass(preds: Predictions, a: str, b: str, alpha: float) -> ComparisonResult:
    rows: list[dict[str, Any]] = []
    for split, pa, pb in _split_pairs(preds, a, b):
        keys = pair_keys(pa.frame, pb.frame)
        for lab, part in ((a, pa), (b, pb)):
            dup = part.frame[keys][part.frame.duplicated(keys, keep=False)]
            if len(dup):
                raise StatisticsInputError(
                    f"compare: model {lab!r} has several rows for the same {keys} in split {split!r} "
                    f"(e.g. {dup.iloc[0].tolist()}; {len(dup)} rows); a paired comparison needs one row per "
                    "case, or an 'image'/'lesion_id' column that tells the rows apart")
        # one-to-one, or a many-to-many merge would duplicate cases and inflate the test
        m = pa.frame[keys].assign(_i=np.arange(len(pa))).merge(
            pb.frame[keys].assign(_j=np.arange(len(pb))), on=keys, validate="one_to_one")
        ya, sa, sb = pa.y_true()[m["_i"]], pa.y_score()[m["_i"]], pb.y_score()[m["_j"]]
        for k, c in enumerate(preds.classes):
            yy = (ya == k).astype(int)
            if 2 <= yy.sum() <= len(yy) - 2:
                r = compare_auc(yy, sa[:, k], sb[:, k], alpha=alpha)
                rows.append(_row(a, b, split, f"auc_{c}", r.auc_a, r.auc_b, r.difference, r.statistic, r.p_value,
                                 r.method, len(yy)))
    return ComparisonResult(rows=tuple(rows), docs=({"model_a": a, "model_b": b, "rows": "comparisons.csv"},),
                            notes=(MULTICLASS_NOTE,))


def compare_models(preds: Predictions, models: tuple[str, str], thresholds: dict[str, float], *, alpha: float,
                   n_boot: int, seed: int) -> ComparisonResult:
    """Compare ``models[0]`` with ``models[1]`` on the cases both scored, split by split.

    Parameters
    ----------
    preds : Predictions
        Predictions holding both models.
    models : (str, str)
        The two (different) model names; differences are ``a - b``.
    thresholds : dict of str to float
        Each model's operating threshold (binary tasks).
    alpha, n_boot, seed
        Interval level, bootstrap replicates and seed.

    Returns
    -------
    ComparisonResult

    Raises
    ------
    StatisticsInputError
        A model with several rows for one case, or the two models disagreeing on ``y_true`` for a case.
    """
    a, b = models
    if preds.task == "binary":
        return _compare_binary(preds, a, b, thresholds, alpha, n_boot, seed)
    return _compare_multiclass(preds, a, b, alpha)
