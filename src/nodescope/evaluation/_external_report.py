"""Figures, the opening sentence and the report section of the external validation (``_external``).

Every number shown is read from the run's ``external`` and ``recalibration_curve`` tables (computed once by
:func:`~nodescope.evaluation._external.external_validation`); nothing is recomputed here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodescope.evaluation._external import ExternalValidation
from nodescope.evaluation._run import EvaluationRun
from nodescope.report import HtmlReport

__all__ = ["external_figures", "external_section", "external_summary", "external_summary_table"]

_METHOD_LABELS = {"none": "no recalibration", "intercept": "intercept only", "logistic": "intercept + slope"}


def _fmt(est: float, lo: float = math.nan, hi: float = math.nan, digits: int = 3) -> str:
    if est is None or not math.isfinite(est):
        return "n/a"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{est:.{digits}f}"
    return f"{est:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def _rows(ext: pd.DataFrame, model: str, site: str) -> dict[str, pd.Series]:
    part = ext[(ext["model"] == model) & (ext["site"] == site)]
    return {str(r["metric"]): r for _, r in part.iterrows()}


def _cell(rows: dict[str, pd.Series], metric: str, ci: bool = True) -> str:
    r = rows.get(metric)
    if r is None:
        return "n/a"
    return _fmt(r["estimate"], r["ci_low"], r["ci_high"]) if ci else _fmt(r["estimate"])


def external_summary_table(run: EvaluationRun) -> pd.DataFrame:
    """One row per model and site (internal reference first): AUC and its change, calibration, both operating points.

    Read from ``run.tables["external"]``; empty when the run has no external validation.
    """
    ext = run.tables.get("external")
    if ext is None or ext.empty:
        return pd.DataFrame()
    out = []
    for (model, site), part in ext.groupby(["model", "site"], sort=False):
        rows = _rows(ext, str(model), str(site))
        head = part.iloc[0]
        out.append({
            "model": model, "site": site if head["role"] == "external" else f"internal ({head['rows']})",
            "patients (positive)": f"{head['n_patients']} ({head['n_positive']})",
            "AUC": _cell(rows, "auc"), "AUC change": _cell(rows, "auc_difference"),
            "calibration-in-the-large": _cell(rows, "calibration_in_the_large"),
            "calibration slope": _cell(rows, "calibration_slope"),
            "source threshold": _cell(rows, "threshold_source", ci=False),
            "sens / spec at source threshold": f"{_cell(rows, 'sensitivity_source_threshold', ci=False)} / "
                                               f"{_cell(rows, 'specificity_source_threshold', ci=False)}",
            "site threshold (optimistic)": _cell(rows, "threshold_site", ci=False),
            "sens / spec at site threshold": f"{_cell(rows, 'sensitivity_site_threshold', ci=False)} / "
                                             f"{_cell(rows, 'specificity_site_threshold', ci=False)}",
        })
    return pd.DataFrame(out)


def _answer(run: EvaluationRun) -> str:
    """The opening sentence: how much each model loses at each new site."""
    ext = run.tables["external"]
    parts = []
    for model in dict.fromkeys(ext["model"]):
        m = ext[ext["model"] == model]
        internal = m[m["role"] == "internal"]
        ref = _rows(ext, str(model), "internal") if len(internal) else {}
        for site in dict.fromkeys(m.loc[m["role"] == "external", "site"]):
            r = _rows(ext, str(model), str(site))
            head = r["auc"]
            text = (f"{model} at {site} ({head['n_patients']} patients, {head['n_positive']} positive): "
                    f"AUC {_cell(r, 'auc')}")
            if ref:
                text += (f" vs {_cell(ref, 'auc', ci=False)} internal, a change of {_cell(r, 'auc_difference')}; "
                         f"sensitivity / specificity at the source threshold "
                         f"{_cell(r, 'sensitivity_source_threshold', ci=False)} / "
                         f"{_cell(r, 'specificity_source_threshold', ci=False)} vs "
                         f"{_cell(ref, 'sensitivity_source_threshold', ci=False)} / "
                         f"{_cell(ref, 'specificity_source_threshold', ci=False)} internal")
            text += (f"; calibration-in-the-large {_cell(r, 'calibration_in_the_large', ci=False)} (ideal 0) and "
                     f"slope {_cell(r, 'calibration_slope', ci=False)} (ideal 1)")
            parts.append(text)
    return "External validation: " + ". ".join(parts) + "."


def external_summary(rep: HtmlReport, run: EvaluationRun) -> None:
    """The opening sentence of the external validation, in the report's summary (nothing when there is none)."""
    if "external" in run.tables and not run.tables["external"].empty:
        rep.paragraph(_answer(run), css_class="answer")


def external_section(rep: HtmlReport, run: EvaluationRun) -> None:
    """The folded section: per-site table, figures, the recalibration curves and their tables."""
    if "external" not in run.tables or run.tables["external"].empty:
        return
    doc = run.metrics.get("external", {})
    with rep.section("External validation by site"):
        rep.paragraph(
            "Each external site beside the model's internal reference (test rows, else out-of-fold cv/val rows). "
            "AUC change: external - internal with the unpaired DeLong interval. The source threshold is chosen on "
            "the model's cv/val rows and applied unchanged; the site threshold is re-chosen at the site by the same "
            f"rule ('{doc.get('rule', '')}') on the same rows it is evaluated on, so its operating point is "
            "optimistic (what re-tuning could reach, not what it will).", css_class="note")
        rep.table(external_summary_table(run), caption="External validation by site (TRIPOD+AI 12, 23)")
        for stem, fig in run.figures.items():
            if stem.startswith("external_"):
                rep.figure(fig, caption=f"{stem[len('external_'):]}: AUC, calibration slope and the operating "
                           "points at the source and the site threshold, per site")
        curves = run.tables.get("recalibration_curve")
        if curves is not None and not curves.empty:
            rep.heading("Recalibration from a local sample", 3)
            rep.paragraph(
                "Repeated random local samples of n patients recalibrate the model (intercept only: logit p' = a + "
                "logit p; intercept + slope: logit p' = a' + b logit p); the recalibrated predictions are evaluated "
                "on the rest of the site. Lines: median over repeats; bands: the central (1 - alpha) range. "
                "Recalibration moves probabilities, not the ranking: the AUC does not change.", css_class="note")
            for stem, fig in run.figures.items():
                if stem.startswith("recalibration_"):
                    rep.figure(fig, caption=f"Recalibration learning curve, {stem[len('recalibration_'):]}")
            show = curves[curves["metric"].isin(["calibration_slope", "calibration_in_the_large", "sensitivity"])]
            rep.table(show.drop(columns=["mean"]), caption="Recalibration learning curve (all metrics in "
                      "tables/recalibration_curve.csv)")
        for note in doc.get("notes", []):
            rep.paragraph(note, css_class="note")


def _site_figure(model: str, ext: pd.DataFrame) -> Figure:
    """Three dot plots per site: AUC, calibration slope, sensitivity/specificity at both thresholds."""
    m = ext[ext["model"] == model]
    labels = [s if role == "external" else "internal" for s, role in
              dict.fromkeys(zip(m["site"], m["role"], strict=True))]
    sites = list(dict.fromkeys(m["site"]))
    fig = Figure(figsize=(12.5, 1.4 + 0.45 * len(sites)), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    ypos = np.arange(len(sites))[::-1]

    def get(site: str, metric: str) -> tuple[float, float, float]:
        r = m[(m["site"] == site) & (m["metric"] == metric)]
        return (float(r["estimate"].iloc[0]), float(r["ci_low"].iloc[0]), float(r["ci_high"].iloc[0])) \
            if len(r) else (math.nan,) * 3

    for ax, metric, ideal, title in ((axes[0], "auc", None, "AUC"),
                                     (axes[1], "calibration_slope", 1.0, "calibration slope")):
        for y, site in zip(ypos, sites, strict=True):
            e, lo, hi = get(site, metric)
            err = [[e - lo], [hi - e]] if math.isfinite(lo) and math.isfinite(hi) else None
            ax.errorbar([e], [y], xerr=err, fmt="o", color="C0", capsize=3)
        if ideal is not None:
            ax.axvline(ideal, color="0.6", linestyle=":")
        ax.set(title=title)
    ax = axes[2]
    for k, (what, color) in enumerate((("sensitivity", "C1"), ("specificity", "C2"))):
        for y, site in zip(ypos, sites, strict=True):
            src = get(site, f"{what}_source_threshold")[0]
            loc = get(site, f"{what}_site_threshold")[0]
            ax.plot([src], [y + 0.12 * (1 - 2 * k)], "o", color=color, label=f"{what}, source threshold"
                    if y == ypos[0] else None)
            ax.plot([loc], [y + 0.12 * (1 - 2 * k)], "o", mfc="none", color=color,
                    label=f"{what}, site threshold (optimistic)" if y == ypos[0] else None)
    ax.set(title="operating point", xlim=(-0.02, 1.02))
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    axes[0].set_yticks(ypos, labels)
    fig.suptitle(f"{model}: external validation by site")
    return fig


def _curve_figure(model: str, site: str, table: pd.DataFrame, alpha: float) -> Figure:
    """Median and band over repeats against the local sample size, one panel per metric."""
    metrics = [(m, lab, ideal) for m, lab, ideal in (("calibration_slope", "calibration slope", 1.0),
                                                     ("calibration_in_the_large", "calibration-in-the-large", 0.0),
                                                     ("brier", "Brier score", None),
                                                     ("sensitivity", "sensitivity at the source threshold", None))
               if m in set(table["metric"])]
    fig = Figure(figsize=(4.0 * len(metrics), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, (metric, label, ideal) in zip(axes, metrics, strict=True):
        for method, part in table[table["metric"] == metric].groupby("method", sort=False):
            part = part.sort_values("n_local")
            (line,) = ax.plot(part["n_local"], part["median"], marker="o", label=_METHOD_LABELS.get(str(method),
                                                                                                     str(method)))
            ax.fill_between(part["n_local"], part["q_low"], part["q_high"], alpha=0.15, color=line.get_color(),
                            linewidth=0)
        if ideal is not None:
            ax.axhline(ideal, color="0.6", linestyle=":")
        if metric == "calibration_slope":  # 1/b of a small sample's slope b can be huge: keep the useful range
            ax.set_ylim(-0.5, 3.0)
            label += " (axis cut at -0.5..3)"
        ax.set(xlabel="local cases used (patients)", title=label)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"{model} at {site}: recalibration from n local cases, evaluated on the rest "
                 f"(median, {100 * (1 - alpha):g}% range)")
    return fig


def external_figures(result: ExternalValidation) -> dict[str, Figure]:
    """``external_<model>`` per model and ``recalibration_<model>_<site>`` per recalibration curve."""
    ext = result.to_frame()
    figs: dict[str, Figure] = {}
    for model in dict.fromkeys(ext["model"]):
        figs[f"external_{model}"] = _site_figure(str(model), ext)
    for (model, site), curve in result.curves.items():
        figs[f"recalibration_{model}_{site}"] = _curve_figure(model, site, curve.table, result.alpha)
    return figs
