"""The one-screen summaries printed at the end of ``train``, ``evaluate`` and ``meta``.

Each is built from what the command wrote, never from numbers held in memory: ``train`` reads the run's
``predictions.csv`` back and computes each split's AUC with its 95% CI there; ``evaluate`` ranks the models of its
``metrics.json``; ``meta`` reports the pooled estimates and the model actually fitted as recorded in
``results.json`` (a requested GLMM that fell back to another fit says so).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

__all__ = ["evaluate_summary", "meta_summary", "train_summary"]

#: Bootstrap replicates of the train summary's patient-clustered AUC CI (seeded; the report uses its own setting).
N_BOOT = 2000


def _split_auc(frame: Any, positive: str) -> Any:
    """AUC with a 95% CI: DeLong with one row per patient, else a bootstrap resampling whole patients."""
    from nodescope.evaluation import roc_auc

    y = (frame["y_true"].astype(str) == positive).to_numpy(int)
    score = frame[f"p_{positive}"].to_numpy(float)
    patients = frame["patient_id"].astype(str).to_numpy()
    if len(set(patients)) == len(patients):
        return roc_auc(y, score, method="delong"), "DeLong"
    return (roc_auc(y, score, method="bootstrap", groups=patients, n_boot=N_BOOT, seed=0),
            f"bootstrap by patient ({N_BOOT})")


def train_summary(run_dir: Path, summary: Any) -> list[Any]:
    """Renderables for the end of ``nodescope train``.

    Parameters
    ----------
    run_dir : Path
        The run folder (``predictions.csv`` is read from it).
    summary : RunSummary
        The run's summary (threshold, per-fold AUCs, metric name).

    Returns
    -------
    list
        A title line, a table (split, n, patients, AUC with 95% CI, CI method, sensitivity/specificity at the
        threshold), the threshold line and the files.
    """
    from nodescope.evaluation import read_predictions

    pred = read_predictions(run_dir / "predictions.csv", positive=summary.positive)
    table = Table(title=f"{summary.metric} from {run_dir / 'predictions.csv'}", title_justify="left")
    for col in ("split", "n", "patients", f"{summary.metric} (95% CI)", "CI", "sens / spec at threshold"):
        table.add_column(col)
    for split, rec in summary.splits.items():
        frame = pred.frame[pred.frame["split"] == split]
        if summary.positive is not None and frame["y_true"].astype(str).nunique() == 2:
            est, how = _split_auc(frame, summary.positive)
            auc = est.format(3)
        else:  # multi-class, or one class present: the estimate alone; evaluate gives the CIs
            auc, how = ("n/a" if rec.auc is None else f"{rec.auc:.3f}"), "nodescope evaluate"
        at = rec.at_threshold
        ss = "" if at is None else " / ".join("n/a" if v is None else f"{v:.2f}" for v in (at.sensitivity,
                                                                                            at.specificity))
        if at is not None and split == "cv":
            ss += " (in-sample)"
        table.add_row(str(split), str(rec.n), str(rec.patients), auc, how, ss)
    out: list[Any] = [f"[bold]run[/] {escape(str(run_dir))}" + ("  [yellow](SYNTHETIC data)[/]" if summary.synthetic_data
                                                    else ""), table]
    cv = summary.splits.get("cv")
    if cv is not None and cv.auc_per_fold:
        out.append("  per-fold AUC (cv): " + ", ".join("n/a" if v is None else f"{v:.3f}"
                                                        for v in cv.auc_per_fold.values()))
    if summary.threshold is not None:
        t = summary.threshold
        out.append(f"  threshold: {t.rule.replace('value', f'{t.value:.4f}')} ({t.method}, chosen on {t.chosen_on})")
    final = run_dir / "final" / "bundle"
    files = [("predictions", run_dir / "predictions.csv"), ("summary", run_dir / "summary.json"),
             ("model", final if final.is_dir() else run_dir / "folds" / "fold_*" / "bundle"),
             ("log", run_dir / "train.log")]
    out += [f"  {name + ':':<13}{escape(str(path))}" for name, path in files if name != "log" or path.is_file()]
    out.append(escape(f"  next: nodescope evaluate {run_dir / 'predictions.csv'} -o {run_dir / 'evaluation'}"))
    return out


def evaluate_summary(metrics: dict[str, Any], report: Path) -> list[Any]:
    """Renderables for the end of ``nodescope evaluate``: per split, the models ranked by AUC with CIs.

    Parameters
    ----------
    metrics : dict
        The content of ``metrics.json``.
    report : Path
        The HTML report.
    """
    rows: dict[str, list[tuple[float, str, str, int]]] = {}
    for name, doc in metrics["models"].items():
        for split, entry in doc["splits"].items():
            auc = entry.get("discrimination", {}).get("auc") or entry.get("estimates", {}).get("macro_auc")
            if auc and auc.get("estimate") is not None:
                lo, hi = auc.get("ci_low"), auc.get("ci_high")
                ci = f" ({lo:.3f}-{hi:.3f})" if lo is not None and hi is not None else ""
                rows.setdefault(split, []).append((auc["estimate"], name, f"{auc['estimate']:.3f}{ci}", entry["n"]))
    table = Table(title="models ranked by AUC (95% CI) within each split", title_justify="left")
    for col in ("split", "rank", "model", "AUC (95% CI)", "n"):
        table.add_column(col)
    for split, items in rows.items():
        for i, (_, name, text, n) in enumerate(sorted(items, key=lambda r: -r[0]), start=1):
            table.add_row(split if i == 1 else "", str(i), name, text, str(n))
    return [table, f"  report: {escape(str(report))}"]


def _fmt_ci(e: dict[str, Any]) -> str:
    """``0.827 (0.778-0.867)`` from an estimate's JSON; ``n/a`` when undefined, the estimate alone without a CI."""
    est, lo, hi = e.get("estimate"), e.get("ci_low"), e.get("ci_high")
    if est is None:
        return "n/a"
    return f"{est:.3f}" + (f" ({lo:.3f}-{hi:.3f})" if lo is not None and hi is not None else "")


def meta_summary(results: Path, report: Path) -> list[str]:
    """Lines for the end of ``nodescope meta``, read from the ``results.json`` just written.

    Parameters
    ----------
    results : Path
        ``results.json``.
    report : Path
        The HTML report.
    """
    doc = json.loads(results.read_text(encoding="utf-8"))
    pooled = doc["pooled"]
    fitted = pooled["model"]
    notes = ["converged" if pooled.get("converged", True) else "[red]NOT converged[/]"]
    if pooled.get("rho_fixed"):
        notes.append("correlation fixed at 0")
    if pooled.get("correction"):
        notes.append(f"continuity correction {pooled['correction']:g} ({pooled.get('correction_rule', '')})")
    lines = [f"[bold]{doc['k_cohorts']} cohorts[/] from {doc['k_studies']} studies; model requested "
             f"{doc['options']['model']}, fitted [bold]{fitted}[/] ({', '.join(notes)})"]
    if pooled.get("fallback"):
        lines.append(f"  [yellow]fallback:[/] {escape(pooled['fallback'])}")
    for key in ("sensitivity", "specificity", "auc", "lr_positive", "lr_negative", "dor"):
        e = pooled["estimates"].get(key)
        if e:
            lines.append(f"  {key:<12} {_fmt_ci(e)}  {e.get('method', '')}")
    for name, why in doc.get("skipped", {}).items():
        lines.append(f"  [yellow]skipped[/] {escape(name)}: {escape(str(why))}")
    if doc.get("warnings"):
        lines.append(f"  {len(doc['warnings'])} warning(s): see the report")
    lines += [f"  report:  {escape(str(report))}", f"  results: {escape(str(results))}"]
    return lines
