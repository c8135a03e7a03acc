"""``nodescope evaluate``: every statistic of a predictions file, as metrics.json, tidy CSVs, figures and HTML.

:func:`evaluate_predictions` computes (nothing is written) and :func:`write_evaluation` writes. For each model the
operating threshold is chosen on its ``cv``/``val`` rows only and applied unchanged to every split, so ``test`` and
``external`` rows never influence it. The schema of ``metrics.json`` is documented in ``docs/evaluate.md`` and
versioned by :data:`METRICS_SCHEMA_VERSION`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodescope import __version__
from nodescope._estimate import Estimate
from nodescope.evaluation._calibration import calibration_metrics, reliability_curve
from nodescope.evaluation._compare import bootstrap_difference, compare_auc, mcnemar_test
from nodescope.evaluation._dca import decision_curve, net_benefit_difference
from nodescope.evaluation._multiclass import multiclass_metrics
from nodescope.evaluation._plots import (
    plot_calibration,
    plot_confusion_matrix,
    plot_decision_curve,
    plot_pr,
    plot_roc,
)
from nodescope.evaluation._predictions import Predictions
from nodescope.evaluation._readers import ReaderStudy, reader_study, validate_reads
from nodescope.evaluation._roc import average_precision, pr_curve, roc_auc, roc_band, roc_curve
from nodescope.evaluation._subgroups import subgroup_metrics
from nodescope.evaluation._threshold import ThresholdChoice, binary_metrics, choose_threshold
from nodescope.report import save_figure

__all__ = ["METRICS_SCHEMA_VERSION", "EvaluationRun", "ThresholdRule", "evaluate_predictions", "parse_threshold",
           "write_evaluation"]

log = logging.getLogger(__name__)

METRICS_SCHEMA_VERSION = "1.0"
SPLIT_ORDER: tuple[str, ...] = ("cv", "val", "test", "external")
TUNING_SPLITS: tuple[str, ...] = ("cv", "val")
HELD_OUT_SPLITS: tuple[str, ...] = ("test", "external")
_TRUTHY = {"1", "yes", "true", "y", "t"}


@dataclass(frozen=True)
class ThresholdRule:
    """How the operating threshold is chosen: ``method`` and ``target`` as :func:`choose_threshold`."""

    method: str
    target: float | None
    spec: str


def parse_threshold(spec: str) -> ThresholdRule:
    """Parse ``youden``, ``sens:0.9``, ``spec:0.9`` or a probability such as ``0.37``.

    Raises
    ------
    ValueError
        Anything else, or a rate/probability outside [0, 1].
    """
    text = str(spec).strip().lower()
    if text == "youden":
        return ThresholdRule("youden", None, text)
    m = re.fullmatch(r"(sens|sensitivity|spec|specificity)\s*[:=]\s*([0-9]*\.?[0-9]+)", text)
    if m:
        value = float(m.group(2))
        if not 0 <= value <= 1:
            raise ValueError(f"threshold {spec!r}: the target rate must be in [0, 1]")
        return ThresholdRule("sensitivity" if m.group(1).startswith("sens") else "specificity", value, text)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"threshold {spec!r} not understood; expected 'youden', 'sens:0.9', 'spec:0.9' or a "
                         "probability such as 0.37") from None
    if not 0 <= value <= 1:
        raise ValueError(f"threshold {spec!r}: a fixed threshold is a probability in [0, 1]")
    return ThresholdRule("fixed", value, text)


@dataclass
class EvaluationRun:
    """Everything :func:`write_evaluation` writes: the metrics document, tidy tables and figures."""

    metrics: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    readers: ReaderStudy | None = None
    notes: list[str] = field(default_factory=list)


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


def _is_synthetic(preds: Predictions) -> bool:
    f = preds.frame
    if "synthetic" in f.columns and f["synthetic"].astype(str).str.strip().str.lower().isin(_TRUTHY).any():
        return True
    for col in ("model", "run_id"):
        if col in f.columns and f[col].astype(str).str.lower().str.contains("synthetic").any():
            return True
    return False


def _splits(preds: Predictions) -> list[str]:
    present = set(preds.values("split"))
    return [s for s in SPLIT_ORDER if s in present]


def _row_keys(frame: pd.DataFrame) -> list[str]:
    return ["patient_id", *[c for c in ("image", "lesion_id") if c in frame.columns]]


def _est_rows(model: str, split: str, ests: list[Estimate], **extra: Any) -> list[dict[str, Any]]:
    return [{"model": model, "split": split, **extra, "metric": e.name, "estimate": e.estimate, "ci_low": e.ci_low,
             "ci_high": e.ci_high, "method": e.method, "alpha": e.alpha, "n": e.n, "note": e.note} for e in ests]


def _flow(preds: Predictions) -> pd.DataFrame:
    rows = []
    for model in preds.values("model"):
        for split in _splits(preds.where(model=model)):
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


def _choose(model: str, tune: Predictions, rule: ThresholdRule) -> tuple[ThresholdChoice | None, float, str]:
    """Threshold for ``model`` from its cv/val rows; returns (choice, threshold, where)."""
    if len(tune) == 0:
        if rule.method == "fixed":
            return None, float(rule.target), "given"  # type: ignore[arg-type]
        raise ValueError(f"model {model!r} has no cv/val rows to choose a threshold on ({rule.spec!r}); the test "
                         "set is never used for that. Give a fixed threshold, e.g. --threshold 0.5")
    choice = choose_threshold(tune.y_true(), tune.y_score(), method=rule.method,  # type: ignore[arg-type]
                              target=rule.target)
    return choice, choice.threshold, "+".join(tune.values("split"))


def _binary_split(model: str, split: str, sub: Predictions, threshold: float, tuned_here: bool, alpha: float,
                  n_boot: int, seed: int, out: dict[str, list], curves: dict[str, Any]) -> dict[str, Any]:
    y, s, g = sub.y_true(), sub.y_score(), sub.groups()
    clustered = len(set(g)) < len(g)
    groups = g if clustered else None
    auc = (roc_auc(y, s, method="bootstrap", n_boot=n_boot, groups=g, alpha=alpha, seed=seed) if clustered
           else roc_auc(y, s, method="delong", alpha=alpha))
    ap = average_precision(y, s, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed)
    bm = binary_metrics(y, s, threshold=threshold, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed)
    entry: dict[str, Any] = {"n": len(y), "n_patients": len(set(g)), "n_positive": int(y.sum()),
                             "prevalence": float(y.mean()), "clustered_by_patient": clustered,
                             "discrimination": {"auc": auc.to_dict(), "average_precision": ap.to_dict()},
                             "operating_point": {**bm.to_dict(), "threshold_tuned_on_this_split": tuned_here}}
    out["discrimination"] += _est_rows(model, split, [auc, ap])
    t = bm.table
    out["operating_point"] += _est_rows(model, split, bm.estimates(), threshold=threshold,
                                        threshold_tuned_here=tuned_here, tp=t.tp, fp=t.fp, fn=t.fn, tn=t.tn)
    both = 0 < y.sum() < len(y)
    if both:
        curves["roc"][split] = roc_curve(y, s)
        curves["band"][split] = roc_band(y, s, n_boot=n_boot, groups=groups, alpha=alpha, seed=seed)
        curves["auc"][split] = auc
        curves["pr"][split] = pr_curve(y, s)
        curves["ap"][split] = ap
        curves["point"].append((f"{split}: threshold {threshold:.3g}", 1 - bm.specificity.estimate,
                                bm.sensitivity.estimate))
    try:
        # held-out predictions come from a model fitted elsewhere: Hosmer-Lemeshow on g df, not g - 2
        cal = calibration_metrics(y, s, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed,
                                  hl_fitted_on_sample=split not in HELD_OUT_SPLITS)
        entry["calibration"] = jsonable(dataclasses.replace(
            cal, hosmer_lemeshow=dataclasses.replace(cal.hosmer_lemeshow, table=pd.DataFrame())))
        frame = cal.summary_frame()
        frame.insert(0, "split", split)
        frame.insert(0, "model", model)
        out["calibration"].append(frame)
        curves["reliability"][split] = reliability_curve(y, s, n_boot=min(n_boot, 200), alpha=alpha, seed=seed)
    except ValueError as exc:
        entry["calibration"] = {"note": f"undefined: {exc}"}
    if both:
        dc = decision_curve(y, s, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed)
        curves["dca"][split] = dc
        frame = dc.to_frame()
        frame.insert(0, "split", split)
        frame.insert(0, "model", model)
        out["dca"].append(frame)
        entry["dca"] = {"table": "dca.csv", "prevalence": dc.prevalence, "n_boot": dc.n_boot}
    curves["table"][split] = bm.table
    return entry


def _binary_confusion_figure(table: Any, classes: tuple[str, ...], title: str) -> Figure:
    fig = Figure(figsize=(4.2, 3.6), layout="constrained")
    ax = fig.subplots()
    counts = np.array([[table.tn, table.fp], [table.fn, table.tp]])
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = counts / np.where(rows > 0, rows, 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center", fontsize="small",
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=list(classes), yticklabels=list(classes),
           xlabel="predicted (at the operating threshold)", ylabel="reference", title=title)
    return fig


def _primary(splits: list[str]) -> str:
    held = [s for s in splits if s in HELD_OUT_SPLITS]
    return held[0] if held else splits[-1]


def _compare_binary(preds: Predictions, a: str, b: str, thresholds: dict[str, float], alpha: float, n_boot: int,
                    seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    docs: list[dict[str, Any]] = []
    for split in SPLIT_ORDER:
        pa, pb = preds.where(model=a, split=split), preds.where(model=b, split=split)
        if len(pa) == 0 or len(pb) == 0:
            continue
        keys = _row_keys(preds.frame)
        fa = pa.frame.assign(_y=pa.y_true(), _s=pa.y_score())
        fb = pb.frame.assign(_y=pb.y_true(), _s=pb.y_score())
        for lab, f in ((a, fa), (b, fb)):
            if f.duplicated(keys).any():
                raise ValueError(f"--compare: model {lab!r} has several rows for the same {keys} in split {split!r}; "
                                 "a paired comparison needs one row per case")
        m = fa[[*keys, "_y", "_s"]].merge(fb[[*keys, "_y", "_s"]], on=keys, suffixes=("_a", "_b"))
        if (m["_y_a"] != m["_y_b"]).any():
            raise ValueError(f"--compare: models {a!r} and {b!r} disagree on y_true for the same case in {split!r}")
        doc: dict[str, Any] = {"model_a": a, "model_b": b, "split": split, "n_paired": len(m),
                               "n_only_a": len(fa) - len(m), "n_only_b": len(fb) - len(m)}
        y = m["_y_a"].to_numpy()
        pid = m["patient_id"].to_numpy()
        clustered = len(set(pid)) < len(pid)
        doc["clustered_by_patient"] = clustered
        if len(m) and 2 <= y.sum() <= len(y) - 2 and clustered:
            # several rows per patient: DeLong, McNemar and a row bootstrap would treat correlated rows as
            # independent; paired cluster bootstrap over patients instead (same replicates for both models)
            doc["note"] = ("several rows per patient: AUC, sensitivity and specificity differences by paired "
                           "cluster bootstrap over patients (not DeLong/McNemar); net benefit likewise")
            for metric in ("auc", "sensitivity", "specificity"):
                e = bootstrap_difference(y, m["_s_a"], m["_s_b"], metric=metric, threshold_a=thresholds[a],
                                         threshold_b=thresholds[b], alpha=alpha, n_boot=n_boot,
                                         groups=pid, seed=seed)
                method = "cluster-bootstrap"
                doc[metric] = {"a": e.extra["estimate_a"], "b": e.extra["estimate_b"], "difference": e.to_dict(),
                               "p_value": e.extra["p_value"], "method": method}
                rows.append({"model_a": a, "model_b": b, "split": split, "metric": metric,
                             "estimate_a": e.extra["estimate_a"], "estimate_b": e.extra["estimate_b"],
                             "difference": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
                             "statistic": math.nan, "p_value": e.extra["p_value"], "method": method,
                             "n": len(m)})
            nb = net_benefit_difference(y, m["_s_a"], m["_s_b"], alpha=alpha, n_boot=n_boot, groups=pid, seed=seed)
            doc["net_benefit_difference"] = jsonable(nb.to_frame())
        elif len(m) and 2 <= y.sum() <= len(y) - 2:
            c = compare_auc(y, m["_s_a"], m["_s_b"], alpha=alpha)
            doc["auc"] = {"auc_a": c.auc_a, "auc_b": c.auc_b, "difference": c.difference.to_dict(),
                          "z": c.statistic, "p_value": c.p_value, "method": c.method}
            rows.append({"model_a": a, "model_b": b, "split": split, "metric": "auc", "estimate_a": c.auc_a,
                         "estimate_b": c.auc_b, "difference": c.difference.estimate, "ci_low": c.difference.ci_low,
                         "ci_high": c.difference.ci_high, "statistic": c.statistic, "p_value": c.p_value,
                         "method": c.method, "n": len(m)})
            for on in ("sensitivity", "specificity"):
                mc = mcnemar_test(y, (m["_s_a"] >= thresholds[a]).astype(int), (m["_s_b"] >= thresholds[b]).astype(int),
                                  on=on, method="exact", alpha=alpha)
                doc[on] = {"a": mc.proportion_a, "b": mc.proportion_b, "difference": mc.difference.to_dict(),
                           "table": list(mc.table), "p_value": mc.p_value, "method": f"mcnemar-{mc.method}"}
                rows.append({"model_a": a, "model_b": b, "split": split, "metric": on, "estimate_a": mc.proportion_a,
                             "estimate_b": mc.proportion_b, "difference": mc.difference.estimate,
                             "ci_low": mc.difference.ci_low, "ci_high": mc.difference.ci_high,
                             "statistic": mc.statistic, "p_value": mc.p_value, "method": f"mcnemar-{mc.method}",
                             "n": mc.difference.n})
            nb = net_benefit_difference(y, m["_s_a"], m["_s_b"], alpha=alpha, n_boot=n_boot, seed=seed)
            doc["net_benefit_difference"] = jsonable(nb.to_frame())
        else:
            doc["note"] = "too few paired cases of each class for paired tests"
        docs.append(doc)
    return rows, docs


def evaluate_predictions(
    preds: Predictions,
    *,
    threshold: str = "youden",
    by: tuple[str, ...] | list[str] = (),
    compare: tuple[str, str] | None = None,
    reads: pd.DataFrame | None = None,
    model: str | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    source: str | None = None,
    reads_source: str = "reads table",
) -> EvaluationRun:
    """Compute every statistic of a validated predictions table.

    Parameters
    ----------
    preds : Predictions
        From :func:`read_predictions`.
    threshold : str
        ``"youden"``, ``"sens:0.9"``, ``"spec:0.9"`` or a probability; chosen per model on its cv/val rows.
    by : sequence of str
        Subgroup columns (``split``, ``fold``, ``site``, ``modality`` or any column).
    compare : (str, str), optional
        Two model names compared on the same cases of each split (paired DeLong, McNemar, net benefit).
    reads : DataFrame, optional
        A reader-study reads table (binary tasks); compared with ``model`` on its test/external patients.
    model : str, optional
        Evaluate this model only (and use it for the reader study).
    alpha, n_boot, seed
        Interval level, bootstrap replicates and seed for every bootstrap.
    source : str, optional
        Path of the predictions file (recorded with its SHA-256).

    Returns
    -------
    EvaluationRun
    """
    rule = parse_threshold(threshold)
    models_all = preds.values("model")
    if model is not None and model not in models_all:
        raise ValueError(f"--model {model!r} not in the predictions; models are {models_all}")
    if compare is not None:
        missing = [m for m in compare if m not in models_all]
        if missing:
            raise ValueError(f"--compare: model(s) {missing} not in the predictions; models are {models_all}")
        if compare[0] == compare[1]:
            raise ValueError("--compare needs two different models")
    missing_by = [c for c in by if c not in preds.frame.columns]
    if missing_by:
        raise ValueError(f"--by: column(s) {missing_by} not in the predictions; columns are "
                         f"{list(preds.frame.columns)}")
    models = [model] if model else models_all
    out: dict[str, list] = {k: [] for k in ("discrimination", "operating_point", "calibration", "dca", "subgroups",
                                            "multiclass", "per_class", "confusion")}
    figures: dict[str, Figure] = {}
    thresholds: dict[str, float] = {}
    doc_models: dict[str, Any] = {}
    notes: list[str] = []
    roc_figs: dict[str, dict[str, Any]] = {}

    for name in models_all if compare else models:
        p = preds.where(model=name)
        if preds.task == "binary":
            choice, thr, where = _choose(name, p.where(split=list(TUNING_SPLITS)), rule)
            thresholds[name] = thr
            if name not in models:
                continue
            curves: dict[str, Any] = {k: {} for k in ("roc", "band", "auc", "pr", "ap", "reliability", "dca",
                                                      "table")}
            curves["point"] = []
            splits_doc = {}
            for split in _splits(p):
                splits_doc[split] = _binary_split(name, split, p.where(split=split), thr, split in TUNING_SPLITS,
                                                  alpha, n_boot, seed, out, curves)
            doc_models[name] = {
                "threshold": {"value": thr, "rule": rule.spec, "method": rule.method, "target": rule.target,
                              "chosen_on": where, "choice": jsonable(choice) if choice else None},
                "splits": splits_doc,
            }
            roc_figs[name] = curves
            prim = _primary(list(splits_doc))
            if curves["pr"]:
                figures[f"pr_{name}"] = plot_pr(curves["pr"], aps=curves["ap"], title=f"Precision-recall: {name}")
            if prim in curves["reliability"]:
                figures[f"calibration_{name}"] = plot_calibration(curves["reliability"][prim], label=prim,
                                                                  title=f"Calibration: {name} ({prim})")
            if curves["dca"]:
                figures[f"dca_{name}"] = plot_decision_curve(curves["dca"], title=f"Decision curve: {name}")
            for split, table in curves["table"].items():
                figures[f"confusion_{name}_{split}"] = _binary_confusion_figure(
                    table, preds.classes, f"{name}, {split}: threshold {thr:.3g}")
            if by:
                frame = p.frame.assign(y=p.y_true(), score=p.y_score())
                sg = subgroup_metrics(frame, list(by), threshold=thr, alpha=alpha, n_boot=n_boot, seed=seed)
                sg.insert(0, "model", name)
                out["subgroups"].append(sg)
        else:
            if name not in models:
                continue
            splits_doc = {}
            for split in _splits(p):
                sub = p.where(split=split)
                g = sub.groups()
                clustered = len(set(g)) < len(g)
                mm = multiclass_metrics(sub.y_true(), sub.y_score(), classes=preds.classes, alpha=alpha,
                                        n_boot=n_boot, groups=g if clustered else None, seed=seed)
                splits_doc[split] = {"n": len(sub), "n_patients": len(set(g)), "clustered_by_patient": clustered,
                                     **jsonable(mm.to_dict())}
                sf = mm.summary_frame()
                sf.insert(0, "split", split)
                sf.insert(0, "model", name)
                out["multiclass"].append(sf)
                pc = mm.per_class.copy()
                pc.insert(0, "split", split)
                pc.insert(0, "model", name)
                out["per_class"].append(pc)
                cm = mm.confusion.stack().rename("count").reset_index()
                cm.columns = ["true", "predicted", "count"]
                cm.insert(0, "split", split)
                cm.insert(0, "model", name)
                out["confusion"].append(cm)
                figures[f"confusion_{name}_{split}"] = plot_confusion_matrix(mm, title=f"{name}, {split}")
            doc_models[name] = {"splits": splits_doc}
            prim = _primary(list(splits_doc))
            sub = p.where(split=prim)
            yk, prob = sub.y_true(), sub.y_score()
            curves_k = {c: roc_curve((yk == k).astype(int), prob[:, k]) for k, c in enumerate(preds.classes)
                        if 0 < (yk == k).sum() < len(yk)}
            if curves_k:
                figures[f"roc_{name}"] = plot_roc(curves_k, title=f"One-vs-rest ROC: {name} ({prim})")
            if by:
                for k, c in enumerate(preds.classes):
                    frame = p.frame.assign(y=(p.y_true() == k).astype(int), score=p.y_score()[:, k])
                    sg = subgroup_metrics(frame, list(by), metrics=["auc"], alpha=alpha, n_boot=n_boot, seed=seed)
                    sg["metric"] = f"auc_{c}"
                    sg.insert(0, "model", name)
                    out["subgroups"].append(sg)

    comparisons: list[dict[str, Any]] = []
    comp_rows: list[dict[str, Any]] = []
    if compare is not None:
        if preds.task == "binary":
            comp_rows, comparisons = _compare_binary(preds, compare[0], compare[1], thresholds, alpha, n_boot, seed)
        else:
            notes.append("--compare on a multi-class task: per-class one-vs-rest DeLong tests")
            for split in SPLIT_ORDER:
                pa, pb = preds.where(model=compare[0], split=split), preds.where(model=compare[1], split=split)
                if len(pa) == 0 or len(pb) == 0:
                    continue
                keys = _row_keys(preds.frame)
                for lab, part in ((compare[0], pa), (compare[1], pb)):
                    dup = part.frame[keys][part.frame.duplicated(keys, keep=False)]
                    if len(dup):
                        raise ValueError(
                            f"--compare: model {lab!r} has several rows for the same {keys} in split {split!r} "
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
                        comp_rows.append({"model_a": compare[0], "model_b": compare[1], "split": split,
                                          "metric": f"auc_{c}", "estimate_a": r.auc_a, "estimate_b": r.auc_b,
                                          "difference": r.difference.estimate, "ci_low": r.difference.ci_low,
                                          "ci_high": r.difference.ci_high, "statistic": r.statistic,
                                          "p_value": r.p_value, "method": r.method, "n": len(yy)})
            comparisons = [{"model_a": compare[0], "model_b": compare[1], "rows": "comparisons.csv"}]

    study = None
    if reads is not None:
        if preds.task != "binary":
            raise ValueError("--readers needs a binary task (reader calls are positive/negative)")
        reader_model = model or (models_all[0] if len(models_all) == 1 else None)
        if reader_model is None:
            raise ValueError(f"--readers: several models in the predictions ({models_all}); name one with --model")
        rd = validate_reads(reads, positive=preds.positive, classes=preds.classes, source=reads_source)
        p = preds.where(model=reader_model)
        held = p.where(split=list(HELD_OUT_SPLITS))
        if len(held) == 0:
            notes.append("readers: the model has no test/external rows; compared on all its rows")
            held = p
        pf = held.frame.assign(_y=held.y_true(), _s=held.y_score())
        per_patient = pf.groupby("patient_id").agg(_y_min=("_y", "min"), _y_max=("_y", "max"), _s=("_s", "mean"),
                                                   _n=("_s", "size"))
        bad = per_patient.index[per_patient["_y_min"] != per_patient["_y_max"]].tolist()
        if bad:
            raise ValueError(f"--readers: patients {bad[:5]} have rows with different y_true; reader studies are "
                             "per patient")
        if (per_patient["_n"] > 1).any():
            notes.append("readers: patients with several prediction rows are scored by the mean probability")
        study = reader_study(rd, per_patient["_y_min"], model_score=per_patient["_s"],
                             threshold=thresholds[reader_model], model_name=reader_model, alpha=alpha)
        if reader_model in roc_figs:
            roc_figs[reader_model]["point"] += [
                (f"{pt.reader}" + ("" if pt.condition == "all" else f" ({pt.condition})"), pt.fpr,
                 pt.sensitivity.estimate) for pt in study.points if pt.sensitivity.defined]

    for name, curves in roc_figs.items():
        if curves["roc"]:
            figures[f"roc_{name}"] = plot_roc(curves["roc"], bands=curves["band"], aucs=curves["auc"],
                                              points=curves["point"], title=f"ROC: {name}")

    tables: dict[str, pd.DataFrame] = {"flow": _flow(preds.where(model=models) if model else preds)}
    for key, rows in out.items():
        if rows:
            tables[key] = pd.concat(rows, ignore_index=True) if isinstance(rows[0], pd.DataFrame) \
                else pd.DataFrame(rows)
    if comp_rows:
        tables["comparisons"] = pd.DataFrame(comp_rows)
    if study is not None:
        tables["readers"] = study.points_frame()
        cf = study.comparisons_frame()
        if len(cf):
            tables["reader_comparisons"] = cf
        if study.mrmc is not None:
            tables["mrmc"] = study.mrmc.summary_frame()

    sha = None
    if source and Path(source).is_file():
        sha = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    metrics = {
        "schema": "nodescope.evaluate.metrics",
        "schema_version": METRICS_SCHEMA_VERSION,
        "nodescope_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": {"predictions": source or preds.source, "sha256": sha, "n_rows": len(preds)},
        "task": preds.task,
        "classes": list(preds.classes),
        "positive": preds.positive,
        "synthetic": _is_synthetic(preds),
        "settings": {"threshold": rule.spec, "threshold_chosen_on": list(TUNING_SPLITS), "alpha": alpha,
                     "n_boot": n_boot, "seed": seed, "by": list(by), "compare": list(compare) if compare else None,
                     "model": model},
        "flow": jsonable(tables["flow"]),
        "models": jsonable(doc_models),
        "subgroups": jsonable(tables["subgroups"]) if "subgroups" in tables else [],
        "comparisons": jsonable(comparisons),
        "readers": jsonable(study.to_dict()) if study is not None else None,
        "notes": notes,
    }
    return EvaluationRun(metrics=metrics, tables=tables, figures=figures, readers=study, notes=notes)


def write_evaluation(run: EvaluationRun, out_dir: str | Path, *, title: str = "nodescope evaluation") -> dict[str, Any]:
    """Write ``metrics.json``, ``tables/*.csv``, ``figures/*.png|svg`` and ``report.html`` into ``out_dir``.

    Returns
    -------
    dict
        ``{"metrics": Path, "tables": [Path], "figures": [Path], "report": Path}``.
    """
    from nodescope.evaluation._report_html import build_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(jsonable(run.metrics), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tables = []
    (out / "tables").mkdir(exist_ok=True)
    for name, frame in run.tables.items():
        path = out / "tables" / f"{name}.csv"
        frame.to_csv(path, index=False)
        tables.append(path)
    figs = []
    for stem, fig in run.figures.items():
        figs += save_figure(fig, out / "figures", _safe(stem))
    report = build_report(run, title=title).write(out / "report.html")
    return {"metrics": metrics_path, "tables": tables, "figures": figs, "report": report}


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
