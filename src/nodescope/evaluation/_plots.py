"""Figures (matplotlib) drawn from computed results; every function returns a Figure and computes nothing new.

Figures are built with :class:`matplotlib.figure.Figure` (not pyplot), so they need no display and are freed when
dropped; save them with ``nodescope.report.save_figure`` or ``fig.savefig``. Pass ``ax=`` to draw into an existing
axes (the axes' figure is returned).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nodescope._estimate import Estimate
from nodescope.evaluation._calibration import ReliabilityCurve
from nodescope.evaluation._dca import DecisionCurve
from nodescope.evaluation._multiclass import MulticlassMetrics
from nodescope.evaluation._roc import PrCurve, RocBand, RocCurve

__all__ = ["plot_calibration", "plot_confusion_matrix", "plot_decision_curve", "plot_pr", "plot_roc"]


def _axes(ax: Axes | None, size: tuple[float, float] = (5.0, 5.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(), ax  # type: ignore[return-value]
    fig = Figure(figsize=size, layout="constrained")  # no pyplot: no global figure registry to leak
    return fig, fig.subplots()


def _as_mapping(obj: object, cls: type) -> Mapping[str, object]:
    if isinstance(obj, cls):
        return {"": obj}
    if isinstance(obj, Mapping):
        return obj
    raise TypeError(f"expected a {cls.__name__} or a mapping name -> {cls.__name__}; got {type(obj).__name__}")


def plot_roc(
    curves: RocCurve | Mapping[str, RocCurve],
    *,
    bands: RocBand | Mapping[str, RocBand] | None = None,
    aucs: Mapping[str, Estimate] | Estimate | None = None,
    points: Sequence[tuple[str, float, float]] = (),
    ax: Axes | None = None,
    title: str = "ROC curve",
) -> Figure:
    """ROC curve(s) with optional bootstrap sensitivity bands, AUC (CI) in the legend and operating points.

    Parameters
    ----------
    curves : RocCurve or mapping name -> RocCurve
    bands : RocBand or mapping name -> RocBand, optional
        Drawn as shaded bands (same keys as ``curves``).
    aucs : Estimate or mapping name -> Estimate, optional
        Shown in the legend as ``AUC 0.912 (0.871-0.944)``.
    points : sequence of (label, fpr, tpr)
        Operating points (e.g. the model threshold, readers), drawn as markers.
    """
    fig, ax = _axes(ax)
    curves_m = _as_mapping(curves, RocCurve)
    bands_m = _as_mapping(bands, RocBand) if bands is not None else {}
    aucs_m = _as_mapping(aucs, Estimate) if aucs is not None else {}
    for name, curve in curves_m.items():
        label = name or "model"
        if name in aucs_m:
            label += f"  AUC {aucs_m[name].format()}"  # type: ignore[attr-defined]
        (line,) = ax.step(curve.fpr, curve.tpr, where="post", label=label)  # type: ignore[attr-defined]
        band = bands_m.get(name)
        if band is not None:
            ax.fill_between(band.fpr, band.tpr_low, band.tpr_high, step="post", alpha=0.2,  # type: ignore[attr-defined]
                            color=line.get_color(), linewidth=0)
    for label, fpr, tpr in points:
        ax.plot([fpr], [tpr], marker="o", linestyle="none", label=label)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1)
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="1 - specificity (false-positive rate)",
           ylabel="sensitivity (true-positive rate)", title=title, aspect="equal")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_pr(
    curves: PrCurve | Mapping[str, PrCurve],
    *,
    aps: Mapping[str, Estimate] | Estimate | None = None,
    ax: Axes | None = None,
    title: str = "Precision-recall curve",
) -> Figure:
    """Precision-recall curve(s) with the no-skill line at the prevalence."""
    fig, ax = _axes(ax)
    curves_m = _as_mapping(curves, PrCurve)
    aps_m = _as_mapping(aps, Estimate) if aps is not None else {}
    for name, curve in curves_m.items():
        label = name or "model"
        if name in aps_m:
            label += f"  AP {aps_m[name].format()}"  # type: ignore[attr-defined]
        ax.step(curve.recall, curve.precision, where="post", label=label)  # type: ignore[attr-defined]
        ax.axhline(curve.prevalence, color="0.6", linestyle=":", linewidth=1)  # type: ignore[attr-defined]
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="recall (sensitivity)", ylabel="precision (PPV)",
           title=title)
    ax.legend(loc="lower left", fontsize="small")
    return fig


def plot_calibration(
    curve: ReliabilityCurve,
    *,
    label: str = "model",
    ax: Axes | None = None,
    title: str = "Calibration",
) -> Figure:
    """Reliability diagram: binned event rates with Wilson intervals, lowess smooth with its bootstrap band."""
    fig, ax = _axes(ax)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="ideal")
    b = curve.bins
    if len(b):
        yerr = np.vstack([b["observed"] - b["ci_low"], b["ci_high"] - b["observed"]])
        ax.errorbar(b["mean_predicted"], b["observed"], yerr=yerr, fmt="o", capsize=2, label=f"{label} (binned)")
    (line,) = ax.plot(curve.grid, curve.smooth, label=f"{label} (lowess)")
    if np.isfinite(curve.smooth_low).any():
        ax.fill_between(curve.grid, curve.smooth_low, curve.smooth_high, alpha=0.2, color=line.get_color(),
                        linewidth=0)
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.05, 1.05), xlabel="predicted probability", ylabel="observed proportion",
           title=title, aspect="equal")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_decision_curve(
    curves: DecisionCurve | Mapping[str, DecisionCurve],
    *,
    ax: Axes | None = None,
    title: str = "Decision curve",
) -> Figure:
    """Net benefit against threshold probability for each model, treat-all and treat-none."""
    fig, ax = _axes(ax, (6.0, 4.5))
    curves_m = _as_mapping(curves, DecisionCurve)
    first = next(iter(curves_m.values()))
    for name, dc in curves_m.items():
        (line,) = ax.plot(dc.thresholds, dc.net_benefit, label=name or "model")  # type: ignore[attr-defined]
        if np.isfinite(dc.net_benefit_low).any():  # type: ignore[attr-defined]
            ax.fill_between(dc.thresholds, dc.net_benefit_low, dc.net_benefit_high, alpha=0.2,  # type: ignore[attr-defined]
                            color=line.get_color(), linewidth=0)
    ax.plot(first.thresholds, first.treat_all, color="0.4", linestyle="--", label="treat all")  # type: ignore[attr-defined]
    ax.plot(first.thresholds, first.treat_none, color="0.2", linewidth=1, label="treat none")  # type: ignore[attr-defined]
    prev = first.prevalence  # type: ignore[attr-defined]
    ax.set(ylim=(-0.05 * max(prev, 0.05), max(prev, 0.05) * 1.1), xlim=(0, 1),
           xlabel="threshold probability (treat if p >= threshold)", ylabel="net benefit", title=title)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def plot_confusion_matrix(
    result: MulticlassMetrics,
    *,
    normalize: bool = True,
    ax: Axes | None = None,
    title: str = "Confusion matrix",
) -> Figure:
    """Confusion matrix heat map (rows = true class); cells show the row proportion and the count."""
    fig, ax = _axes(ax, (5.0, 4.5))
    counts = result.confusion.to_numpy()
    shown = result.confusion_normalized.to_numpy() if normalize else counts
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    k = len(result.classes)
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}\n({counts[i, j]})" if normalize else f"{counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if normalize and shown[i, j] > 0.5 else "black")
    ax.set(xticks=range(k), yticks=range(k), xticklabels=result.classes, yticklabels=result.classes,
           xlabel="predicted class", ylabel="true class", title=title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig
