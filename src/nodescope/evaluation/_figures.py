"""The figures of ``nodescope evaluate`` (``figures/<stem>.png|svg``), drawn from :class:`EvaluationResults`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import rcParams
from matplotlib.figure import Figure

from nodescope.evaluation._plots import (
    plot_calibration,
    plot_confusion_matrix,
    plot_decision_curve,
    plot_pr,
    plot_roc,
)
from nodescope.evaluation._run import TUNING_SPLITS, primary_split, split_order

if TYPE_CHECKING:
    from nodescope.evaluation._compute import (
        BinarySplitResult,
        EvaluationResults,
        ModelResult,
        MulticlassSplitResult,
        ReaderResult,
    )

__all__ = ["evaluation_figures"]


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


def _binary_figures(model: ModelResult, classes: tuple[str, ...], figures: dict[str, Figure]) -> None:
    name, thr = model.name, model.threshold
    splits: tuple[BinarySplitResult, ...] = model.splits  # type: ignore[assignment]
    prs = {s.split: s.pr for s in splits if s.pr is not None}
    prim = primary_split([s.split for s in splits])
    if prs:
        figures[f"pr_{name}"] = plot_pr(prs, aps={s.split: s.ap for s in splits if s.pr is not None},
                                        title=f"Precision-recall: {name}")
    rel = {s.split: s.reliability for s in splits if s.reliability is not None}
    if prim in rel:
        figures[f"calibration_{name}"] = plot_calibration(rel[prim], label=prim, title=f"Calibration: {name} ({prim})")
    dca = {s.split: s.dca for s in splits if s.dca is not None}
    if dca:
        figures[f"dca_{name}"] = plot_decision_curve(dca, title=f"Decision curve: {name}")
    for s in splits:
        figures[f"confusion_{name}_{s.split}"] = _binary_confusion_figure(s.metrics.table, classes,
                                                                          f"{name}, {s.split}: threshold {thr:.3g}")


def _roc_figure(model: ModelResult, readers: ReaderResult | None) -> Figure | None:
    """ROC curves of every split with both classes, the operating points and the readers' points."""
    every: tuple[BinarySplitResult, ...] = model.splits  # type: ignore[assignment]
    rocs = {s.split: s.roc for s in every if s.roc is not None}
    if not rocs:
        return None
    splits = [s for s in every if s.roc is not None]
    points = [(f"{s.split}: threshold {s.threshold:.3g}", 1 - s.metrics.specificity.estimate,
               s.metrics.sensitivity.estimate) for s in splits]
    if readers is not None and readers.model == model.name:
        points += [(f"{pt.reader}" + ("" if pt.condition == "all" else f" ({pt.condition})"), pt.fpr,
                    pt.sensitivity.estimate) for pt in readers.study.points if pt.sensitivity.defined]
    return plot_roc(rocs, bands={s.split: s.band for s in splits if s.band is not None},
                    aucs={s.split: s.auc for s in splits}, points=points, title=f"ROC: {model.name}")


def _roc_overlay(models: tuple[ModelResult, ...]) -> Figure | None:
    """One panel per split, each overlaying the ROC curves of every model with its AUC (CI) and operating point.

    A model keeps its colour in every panel; splits where no model has both classes are left out.
    """
    splits = split_order({s.split for m in models for s in m.splits if s.roc is not None})  # type: ignore[union-attr]
    if not splits:
        return None
    cycle = [c["color"] for c in rcParams["axes.prop_cycle"]]
    colour = {m.name: cycle[i % len(cycle)] for i, m in enumerate(models)}
    fig = Figure(figsize=(4.1 * len(splits), 4.3), layout="constrained")
    for ax, split in zip(fig.subplots(1, len(splits), squeeze=False)[0], splits, strict=True):
        rows: dict[str, BinarySplitResult] = {m.name: s for m in models for s in m.splits  # type: ignore[misc]
                                              if s.split == split and s.roc is not None}
        ax.set_prop_cycle(color=[colour[name] for name in rows])
        plot_roc({name: r.roc for name, r in rows.items()}, aucs={name: r.auc for name, r in rows.items()},  # type: ignore[misc]
                 ax=ax, title=f"ROC, {split}" + (" (threshold tuned here)" if split in TUNING_SPLITS else ""))
        for name, r in rows.items():
            ax.plot([1 - r.metrics.specificity.estimate], [r.metrics.sensitivity.estimate], marker="o",
                    linestyle="none", color=colour[name], markeredgecolor="black", zorder=3)
    return fig


def _multiclass_figures(model: ModelResult, figures: dict[str, Figure]) -> None:
    name = model.name
    splits: tuple[MulticlassSplitResult, ...] = model.splits  # type: ignore[assignment]
    for s in splits:
        figures[f"confusion_{name}_{s.split}"] = plot_confusion_matrix(s.metrics, title=f"{name}, {s.split}")
    if model.ovr_roc:
        figures[f"roc_{name}"] = plot_roc(model.ovr_roc, title=f"One-vs-rest ROC: {name} ({model.ovr_split})")


def evaluation_figures(results: EvaluationResults) -> dict[str, Figure]:
    """Every figure of an evaluation, keyed by file stem.

    Parameters
    ----------
    results : EvaluationResults
        From :func:`~nodescope.evaluation._compute.compute_evaluation`.

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        Binary tasks: ``pr_<model>``, ``calibration_<model>`` (first held-out split), ``dca_<model>``,
        ``confusion_<model>_<split>`` per model, then ``roc_<model>`` (with reader points), then ``summary_roc`` (every
        model, one panel per split; the report's summary figure). Multi-class tasks:
        ``confusion_<model>_<split>`` and ``roc_<model>`` (one-vs-rest) per model.
    """
    figures: dict[str, Figure] = {}
    binary = results.preds.task == "binary"
    for model in results.models:
        if binary:
            _binary_figures(model, results.preds.classes, figures)
        else:
            _multiclass_figures(model, figures)
    for model in results.models if binary else ():
        fig = _roc_figure(model, results.readers)
        if fig is not None:
            figures[f"roc_{model.name}"] = fig
    overlay = _roc_overlay(results.models) if binary else None
    if overlay is not None:
        figures["summary_roc"] = overlay
    return figures
