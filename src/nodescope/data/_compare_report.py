"""The HTML report of a shift comparison: the answer first, then each kind of difference with its plots.

Figures are matplotlib :class:`~matplotlib.figure.Figure` objects (no pyplot), drawn from a computed
:class:`~nodescope.data._compare.ShiftComparison`; they compute nothing new. The page is built with
:class:`nodescope.report.HtmlReport` (self-contained, no scripts).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from nodescope.data._shift_features import FEATURE_GROUPS, HIST_BINS
from nodescope.report import HtmlReport

if TYPE_CHECKING:
    from nodescope._estimate import Estimate
    from nodescope.data._compare import ShiftComparison

__all__ = ["build_report", "summary_lines"]

_COLOURS = ("#2b5797", "#d9822b")


def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _p(v: float) -> str:
    return "n/a" if not math.isfinite(v) else ("< 0.001" if v < 0.001 else f"{v:.3f}")


def _auc(est: Estimate) -> str:
    return f"{_fmt(est.estimate)} ({_fmt(est.ci_low)}-{_fmt(est.ci_high)})"


def differences_figure(res: ShiftComparison) -> Figure:
    """Bar chart of the effect size of every descriptor (KS D; |difference in proportions| for flags)."""
    t = res.tests.dropna(subset=["statistic"]).copy()
    t["size"] = t["statistic"].abs()
    t = t.sort_values("size")
    fig = Figure(figsize=(7, 0.22 * len(t) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    groups = list(FEATURE_GROUPS)
    cmap = [f"C{groups.index(g)}" for g in t["group"]]
    ax.barh(t["feature"], t["size"], color=cmap)
    for y, (size, p) in enumerate(zip(t["size"], t["p_holm"], strict=True)):
        if p < 0.05:
            ax.text(size + 0.01, y, "*", va="center")
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("KS D (flags: |difference in proportions|); * Holm p < 0.05")
    handles = [Patch(color=f"C{i}", label=g) for i, g in enumerate(groups)]
    ax.legend(handles=handles, loc="lower right", fontsize=7)
    return fig


def ecdf_figure(res: ShiftComparison, features: list[str]) -> Figure:
    """ECDF overlays of ``features`` for sets A and B."""
    ncol = 4
    nrow = max(1, math.ceil(len(features) / ncol))
    fig = Figure(figsize=(11, 2.3 * nrow))
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.06, top=0.95, wspace=0.25, hspace=0.45)
    for i, f in enumerate(features):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        for tag, name, colour in zip(("A", "B"), res.names, _COLOURS, strict=True):
            v = np.sort(res.images.loc[res.images["set"] == tag, f].to_numpy(float))
            v = v[np.isfinite(v)]
            if len(v):
                ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", color=colour, label=name)
        ax.set_title(f, fontsize=9)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    return fig


def histogram_figure(res: ShiftComparison) -> Figure:
    """Mean intensity histogram of each set (scan region), with the 10-90 % band over images."""
    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = fig.add_subplot()
    centres = (np.arange(HIST_BINS) + 0.5) * 256 / HIST_BINS
    for tag, name, colour in zip(("A", "B"), res.names, _COLOURS, strict=True):
        h = res.histograms[(res.images["set"] == tag).to_numpy()]
        ax.plot(centres, h.mean(axis=0), color=colour, label=name)
        lo, hi = np.percentile(h, [10, 90], axis=0)
        ax.fill_between(centres, lo, hi, color=colour, alpha=0.2)
    ax.set_xlabel("grey level (scan region)")
    ax.set_ylabel("share of pixels")
    ax.legend()
    return fig


def prevalence_figure(res: ShiftComparison) -> Figure:
    """Class shares of both sets."""
    p = res.prevalence
    fig = Figure(figsize=(5, 2.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(p))
    for j, (col, name, colour) in enumerate(zip(("share_a", "share_b"), res.names, _COLOURS, strict=True)):
        ax.bar(x + (j - 0.5) * 0.4, p[col], width=0.4, color=colour, label=name)
    ax.set_xticks(x, p["class"])
    ax.set_ylabel("share of images")
    ax.legend()
    return fig


def thumbnails_figure(res: ShiftComparison, rows: list[int], captions: list[str], ncol: int = 8) -> Figure:
    """The stored thumbnails of ``rows`` (indices into ``res.images``) as one montage, a caption above each."""
    side, gap = res.thumbnails.shape[1], 18
    nrow = max(1, math.ceil(len(rows) / ncol))
    sheet = np.full((nrow * (side + gap), ncol * (side + 4)), 255, np.uint8)
    fig = Figure(figsize=(1.3 * ncol, 1.45 * nrow))
    ax = fig.add_axes((0, 0, 1, 1))
    for i, (r, cap) in enumerate(zip(rows, captions, strict=True)):
        y, x = (i // ncol) * (side + gap) + gap, (i % ncol) * (side + 4)
        sheet[y:y + side, x:x + side] = res.thumbnails[r]
        ax.text(x + side / 2, y - 3, cap, fontsize=6, ha="center", va="bottom")
    ax.imshow(sheet, cmap="gray", vmin=0, vmax=255)
    ax.axis("off")
    return fig


def summary_lines(res: ShiftComparison) -> list[str]:
    """The answer in plain sentences (the report's summary and the command's console output)."""
    n = [int((res.images["set"] == s).sum()) for s in ("A", "B")]
    a, b = res.names
    lines = [f"{a} ({n[0]} of {res.n_total[0]} images sampled) vs {b} ({n[1]} of {res.n_total[1]}): a logistic "
             f"regression on the {len(res.tests)} image descriptors tells them apart with cross-validated AUC "
             f"{_auc(res.overall)} (0.5: indistinguishable, 1: fully separable)."]
    top = res.largest_differences(3)
    parts = [f"{r.feature} ({'KS D' if r.test == 'ks' else 'difference'} {_fmt(r.statistic, 2)}; median "
             f"{r.median_a:.4g} vs {r.median_b:.4g})" for r in top.itertuples()]
    if len(top) and (top["p_holm"] < 0.05).any():
        lines.append("Largest differences: " + "; ".join(parts) + ".")
    else:
        lines.append("No descriptor differs significantly (every Holm-adjusted p >= 0.05); the largest: "
                     + "; ".join(parts) + ".")
    img = res.images
    share = {c: img.groupby("set")[c].mean() for c in ("not_grey", "tinted", "has_marks")}
    hue = img.loc[(img["set"] == "B") & (img["tinted"] == 1), "tint_hue"]
    lines.append(
        f"Colour: {share['not_grey'].get('A', 0):.0%} of {a} and {share['not_grey'].get('B', 0):.0%} of {b} are not "
        f"grey; tinted {share['tinted'].get('A', 0):.0%} vs {share['tinted'].get('B', 0):.0%}"
        + (f" (median tint hue in {b}: {hue.median():.0f} degrees)" if len(hue) else "")
        + f". Drawn marks in the scan region: {share['has_marks'].get('A', 0):.0%} vs "
          f"{share['has_marks'].get('B', 0):.0%}.")
    pt = res.prevalence_test
    lines.append(f"Class prevalence: chi-square p {_p(pt['p_value'])}, Cramer's V {_fmt(pt['cramers_v'], 2)}.")
    flagged = res.shortcuts[res.shortcuts["flagged"]]
    if len(flagged):
        lines.append("SHORTCUT FLAGS (acquisition descriptors alone separate): " + "; ".join(
            f"{r.target} AUC {_fmt(r.auc)} ({_fmt(r.ci_low)}-{_fmt(r.ci_high)})" for r in flagged.itertuples()) + ".")
    else:
        lines.append("No shortcut flag: no site or class is separable from acquisition descriptors alone at AUC >= "
                     f"{res.settings.get('flag_auc', 0.75)}.")
    if res.embedding is not None:
        e = res.embedding
        lines.append(f"Feature space of the bundle ({e.n_features} features): domain AUC {_auc(e.domain)}, MMD^2 "
                     f"{e.mmd.mmd2:.4f} (permutation p {_p(e.mmd.p_value)}, {e.mmd.n_permutations} permutations).")
    return lines


def _examples(res: ShiftComparison, rep: HtmlReport) -> None:
    img = res.images
    for tag, name in zip(("A", "B"), res.names, strict=True):
        idx = list(img.index[img["set"] == tag][:8])
        rep.figure(thumbnails_figure(res, idx, [f"{img.label[i]}" for i in idx]), caption=f"{name}: first sampled "
                   "images (grey thumbnails, aspect not kept)")
    marked = list(img.index[img["has_marks"] == 1][:16])
    if marked:
        rep.figure(thumbnails_figure(res, marked, [f"{res.names[0 if img.set[i] == 'A' else 1]} "
                                                   f"{img.marks_in_scan[i]:.1f}" for i in marked]),
                   caption="Images with drawn marks found in the scan region (set, marks per 1000 scan pixels)")


def _foreign(res: ShiftComparison, rep: HtmlReport) -> None:
    img = res.images
    for tag, name, other, asc in (("B", res.names[1], res.names[0], False), ("A", res.names[0], res.names[1], True)):
        part = img[img["set"] == tag].sort_values("p_domain", ascending=asc).head(8)
        rep.figure(thumbnails_figure(res, list(part.index), [f"p(B) {p:.2f}" for p in part["p_domain"]]),
                   caption=f"{name}: the images that look least like {other} in the bundle's feature space "
                           "(out-of-fold domain probability)")


def build_report(res: ShiftComparison) -> HtmlReport:
    """The report of a comparison, as an :class:`~nodescope.report.HtmlReport` (``render()`` / ``write()``)."""
    rep = HtmlReport(f"Shift diagnostics: {res.names[0]} vs {res.names[1]}")
    with rep.summary():
        for line in summary_lines(res):
            rep.paragraph(line, css_class="answer")
        rep.figure(differences_figure(res), caption="How different, and in what: effect size per descriptor")
    rep.contents()
    with rep.section("Data"):
        rep.table(pd.DataFrame({"set": ["A", "B"], "name": list(res.names), "manifest": list(res.sources),
                                "images": list(res.n_total),
                                "sampled": [int((res.images["set"] == s).sum()) for s in ("A", "B")]}), text=True)
        rep.paragraph(f"Settings: {res.settings}. Descriptors are defined in docs/data-shift.md.", css_class="note")
    with rep.section("Descriptor tests"):
        t = res.tests.drop(columns=["n_a", "n_b"])
        rep.table(t, caption="KS test (continuous) or Fisher's exact test (0/1 flags); SMD = (mean B - mean A) / "
                             "average SD; Holm-adjusted p over all descriptors", float_format="{:.4g}")
    ranked = res.largest_differences(len(res.tests))
    continuous = [f for f in ranked["feature"] if f not in ("not_grey", "tinted", "has_marks")][:12]
    with rep.section("Geometry, intensity and speckle"):
        rep.figure(histogram_figure(res), caption="Intensity histograms inside the scan region: mean over images, "
                                                  "band 10-90 %")
        rep.figure(ecdf_figure(res, continuous), caption="Empirical distribution functions of the (up to) 12 "
                                                          "continuous descriptors that differ most (KS D)")
    with rep.section("Colour and annotation marks"):
        _examples(res, rep)
    with rep.section("Class prevalence"):
        rep.table(res.prevalence)
        rep.figure(prevalence_figure(res), caption="Class shares")
    with rep.section("Shortcut flags"):
        rep.paragraph("Cross-validated AUC of a logistic regression on the acquisition descriptors only (image "
                      "geometry, colour, marks, side-panel text; nothing about the lesion). Flagged: AUC >= "
                      f"{res.settings.get('flag_auc', 0.75)} with the lower bound above 0.5.")
        rep.table(res.shortcuts, text=False)
    if res.embedding is not None:
        with rep.section("Shift in the bundle's feature space"):
            e = res.embedding
            rep.paragraph(f"Bundle {e.bundle}: domain AUC {_auc(e.domain)} ({e.domain.method}); MMD^2 "
                          f"{e.mmd.mmd2:.4f}, Gaussian kernel bandwidth {e.mmd.bandwidth:.3g}, permutation p "
                          f"{_p(e.mmd.p_value)}.")
            _foreign(res, rep)
    return rep
