"""``nodescope evaluate``: every statistic of a predictions file, as metrics.json, tidy CSVs, figures and HTML.

:func:`evaluate_predictions` computes (nothing is written) and :func:`write_evaluation` writes. The work goes in one
direction, as in :mod:`nodescope.meta`: options validated once (``_options``) -> frozen results (``_compute``,
``_comparisons``) -> tables (``_tables``), figures (``_figures``) and the JSON document (``_metrics_json``) -> one
writer. For each model the operating threshold is chosen on its ``cv``/``val`` rows only and applied unchanged to
every split, so ``test`` and ``external`` rows never influence it. The schema of ``metrics.json`` is documented in
``docs/evaluate.md`` and versioned by :data:`METRICS_SCHEMA_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nodescope.errors import StatisticsInputError
from nodescope.evaluation._compute import compute_evaluation
from nodescope.evaluation._external import external_validation
from nodescope.evaluation._external_report import external_figures
from nodescope.evaluation._figures import evaluation_figures
from nodescope.evaluation._metrics_json import metrics_document
from nodescope.evaluation._options import ThresholdRule, evaluation_options, parse_threshold
from nodescope.evaluation._predictions import Predictions
from nodescope.evaluation._report_html import build_report
from nodescope.evaluation._run import METRICS_SCHEMA_VERSION, EvaluationRun, jsonable
from nodescope.evaluation._tables import evaluation_tables
from nodescope.report import save_figure

__all__ = ["METRICS_SCHEMA_VERSION", "EvaluationRun", "ThresholdRule", "evaluate_predictions", "parse_threshold",
           "write_evaluation"]


def evaluate_predictions(
    preds: Predictions,
    *,
    threshold: str = "youden",
    by: Sequence[str] = (),
    compare: tuple[str, str] | None = None,
    reads: pd.DataFrame | None = None,
    model: str | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    source: str | None = None,
    reads_source: str = "reads table",
    recalibrate: bool = False,
    recalibration_sizes: Sequence[int] | None = None,
    recalibration_repeats: int = 200,
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
    reads_source : str
        How the reads table is named in error messages.
    recalibrate, recalibration_sizes, recalibration_repeats
        With ``external`` rows (binary task), every model is also validated per site (``site`` column; see
        :func:`~nodescope.evaluation.external_validation`): tables ``external`` (and ``recalibration_curve``),
        ``metrics.json["external"]``, figures and a report section. ``recalibrate=True`` adds each site's
        recalibration learning curve over local samples of ``recalibration_sizes`` patients, each size drawn
        ``recalibration_repeats`` times.

    Returns
    -------
    EvaluationRun

    Raises
    ------
    StatisticsInputError
        A bad option (see :func:`~nodescope.evaluation._options.evaluation_options`), a model without cv/val rows
        under a rule that needs them, a reads table that does not fit the predictions, or rows a comparison cannot
        pair (a ``ValueError``).
    """
    opts = evaluation_options(preds, threshold=threshold, by=by, compare=compare, model=model,
                              readers=reads is not None, alpha=alpha, n_boot=n_boot, seed=seed)
    sha = None
    if source and Path(source).is_file():
        sha = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    results = compute_evaluation(preds, opts, reads=reads, reads_source=reads_source, source=source, sha256=sha)
    tables = evaluation_tables(results)
    figures = evaluation_figures(results)
    metrics = metrics_document(results, tables)
    if recalibrate and not (preds.task == "binary" and "external" in preds.values("split")):
        raise StatisticsInputError(f"{source or preds.source}: recalibration curves need a binary task with "
                                   "'external' rows (the new site's labelled cases); there are none")
    if preds.task == "binary" and "external" in preds.values("split"):  # per-site external validation (issue 14)
        ext = external_validation(preds, threshold=threshold, thresholds=results.thresholds, models=opts.models,
                                  recalibrate=recalibrate, sizes=recalibration_sizes, repeats=recalibration_repeats,
                                  alpha=alpha, n_boot=n_boot, seed=seed)
        tables.update({"external": ext.to_frame(), **({"recalibration_curve": ext.curve_frame()} if ext.curves else {})})
        figures.update(external_figures(ext))
        metrics["external"] = ext.to_dict()
    return EvaluationRun(metrics=metrics, tables=tables, figures=figures,
                         readers=results.readers.study if results.readers is not None else None,
                         notes=metrics["notes"])


def write_evaluation(run: EvaluationRun, out_dir: str | Path, *, title: str = "nodescope evaluation") -> dict[str, Any]:
    """Write ``metrics.json``, ``tables/*.csv``, ``figures/*.png|svg`` and ``report.html`` into ``out_dir``.

    Returns
    -------
    dict
        ``{"metrics": Path, "tables": [Path], "figures": [Path], "report": Path}``.
    """
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
