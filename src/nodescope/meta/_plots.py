"""Figures of a diagnostic-accuracy meta-analysis (matplotlib; each function returns a Figure).

The figures are drawn on :class:`matplotlib.figure.Figure` objects created directly (no pyplot state), so they can be
saved with :func:`nodescope.report.save_figure` (PNG + SVG) or embedded in an HTML report, and are freed with the object.
Nothing here computes a pooled model: pooled points, curves, regions and regression lines are passed in, so the plots
can show any model's output. Artists that tests and callers look for carry a ``gid``
(``"cohorts"``, ``"sroc_curve"``, ``"summary"``, ``"confidence_region"``, ``"prediction_region"``, ``"pooled"``,
``"deeks_line"``, ``"lr_positive"``, ``"lr_negative"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Patch, Polygon
from matplotlib.ticker import FuncFormatter, NullFormatter

from nodescope._estimate import Estimate
from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.evaluation import proportion_ci
from nodescope.meta._quadas import (
    APPLICABILITY_DOMAINS,
    DOMAIN_LABELS,
    QUADAS_LEVELS,
    RISK_OF_BIAS_DOMAINS,
    QuadasTable,
)
from nodescope.meta._studies import Studies

__all__ = [
    "deeks_funnel_plot",
    "fagan_nomogram",
    "forest_plot",
    "quadas_summary_plot",
    "quadas_traffic_light",
    "sroc_plot",
]

LEVEL_COLORS = {"low": "#3a9a4a", "high": "#c8382f", "unclear": "#f0b929"}
LEVEL_SYMBOLS = {"low": "+", "high": "\u2212", "unclear": "?"}
_POINT = "#2b5797"
_POOLED = "#c8382f"


def clopper_pearson_bounds(events: np.ndarray, totals: np.ndarray,
                           alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per-cohort Clopper-Pearson bounds of ``events / totals``: :func:`nodescope.evaluation.proportion_ci`
    (``method="clopper-pearson"``, exact 0 at ``x = 0`` and 1 at ``x = n``) applied element-wise.

    Returns ``low, high``, arrays of shape ``(k,)``.
    """
    ev = np.asarray(events)
    tot = np.asarray(totals)
    if ev.shape != tot.shape:
        raise StatisticsInputError(f"events and totals must have the same shape, got {ev.shape} and {tot.shape}")
    bounds = [proportion_ci(int(x), int(n), method="clopper-pearson", alpha=alpha) for x, n in zip(ev, tot, strict=True)]
    return np.array([b.ci_low for b in bounds]), np.array([b.ci_high for b in bounds])


def _check_studies(studies: Studies) -> Studies:
    if not isinstance(studies, Studies):
        raise TypeError(f"studies must be a nodescope.meta.Studies (from read_studies), got {type(studies).__name__}")
    return studies


def _check_pooled(value: Estimate | None, name: str) -> Estimate | None:
    if value is not None and not isinstance(value, Estimate):
        raise TypeError(f"{name} must be a nodescope Estimate or None, got {type(value).__name__}")
    return value


def forest_plot(
    studies: Studies,
    *,
    pooled_sensitivity: Estimate | None = None,
    pooled_specificity: Estimate | None = None,
    alpha: float = 0.05,
    title: str | None = None,
) -> Figure:
    """Paired forest plot: sensitivity and specificity of each cohort with exact CIs and the pooled diamonds.

    Parameters
    ----------
    studies : Studies
        The cohorts (one row each, in table order, top to bottom).
    pooled_sensitivity, pooled_specificity : Estimate, optional
        Pooled estimates drawn as diamonds spanning their CIs at the bottom (``gid="pooled"``).
    alpha : float
        Coverage of the per-cohort Clopper-Pearson intervals is ``1 - alpha``.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes: the table of labels and counts (``TP FP FN TN``), the sensitivity panel and the specificity panel;
        each panel has one ``Line2D`` of ``k`` points (``gid="cohorts"``) and ``k`` interval segments.
    """
    studies = _check_studies(studies)
    _check_pooled(pooled_sensitivity, "pooled_sensitivity")
    _check_pooled(pooled_specificity, "pooled_specificity")
    k = len(studies)
    tp, fp, fn, tn = studies.tp, studies.fp, studies.fn, studies.tn
    pooled = pooled_sensitivity is not None or pooled_specificity is not None
    n_rows = k + (2 if pooled else 0)
    fig = Figure(figsize=(13.5, 1.4 + 0.28 * n_rows + (0.35 if title else 0.0)))
    grid = fig.add_gridspec(1, 5, width_ratios=(1.55, 1.0, 0.42, 1.0, 0.42), wspace=0.04)
    ax_tab = fig.add_subplot(grid[0])
    y = np.arange(k)[::-1] + (2 if pooled else 0)
    top = n_rows + 0.2
    pct = round(100 * (1 - alpha))
    ax_tab.set_ylim(-0.8, top)
    ax_tab.axis("off")
    labels = studies.labels()
    ax_tab.text(0.0, n_rows, "Study: cohort", fontweight="bold", va="center", fontsize=8.5)
    for j, head in enumerate(("TP", "FP", "FN", "TN")):
        ax_tab.text(0.68 + 0.085 * j, n_rows, head, fontweight="bold", ha="right", va="center", fontsize=8.5)
    for i in range(k):
        text = labels[i] if len(labels[i]) <= 44 else labels[i][:42] + "\u2026"
        ax_tab.text(0.0, y[i], text, va="center", fontsize=8.5)
        for j, v in enumerate((tp[i], fp[i], fn[i], tn[i])):
            ax_tab.text(0.68 + 0.085 * j, y[i], str(v), ha="right", va="center", fontsize=8.5)
    if pooled:
        ax_tab.text(0.0, 0.5, "Pooled", va="center", fontweight="bold", fontsize=8.5)
    ax_tab.set_xlim(0, 1)

    for col, (name, ev, tot, pooled_est) in enumerate(
        (("Sensitivity", tp, tp + fn, pooled_sensitivity), ("Specificity", tn, tn + fp, pooled_specificity))
    ):
        ax = fig.add_subplot(grid[1 + 2 * col], sharey=ax_tab)
        ax_txt = fig.add_subplot(grid[2 + 2 * col], sharey=ax_tab)
        ax_txt.axis("off")
        ax_txt.set_xlim(0, 1)
        ax_txt.text(0.05, n_rows, f"{name[:4]}. ({pct}% CI)", fontweight="bold", va="center", fontsize=8)
        p = ev / tot
        low, high = clopper_pearson_bounds(ev, tot, alpha)
        ax.hlines(y, low, high, color="#33415c", lw=1.1)
        (pts,) = ax.plot(p, y, ls="none", marker="s", ms=5, color=_POINT)
        pts.set_gid("cohorts")
        for yi, pi, lo, hi in zip(y, p, low, high, strict=True):
            ax_txt.text(0.05, yi, f"{pi:.2f} ({lo:.2f}-{hi:.2f})", va="center", fontsize=8)
        if pooled_est is not None and pooled_est.defined:
            e, lo, hi = pooled_est.estimate, pooled_est.ci_low, pooled_est.ci_high
            diamond = Polygon([(lo, 0.5), (e, 0.85), (hi, 0.5), (e, 0.15)], closed=True, color=_POOLED, zorder=3)
            diamond.set_gid("pooled")
            ax.add_patch(diamond)
            ax.axvline(e, color=_POOLED, lw=0.8, ls=":", zorder=1)
            ax_txt.text(0.05, 0.5, f"{e:.2f} ({lo:.2f}-{hi:.2f})", va="center", fontsize=8, fontweight="bold")
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "0.25", "0.5", "0.75", "1"])
        ax.set_xlabel(f"{name} ({pct}% CI)")
        ax.tick_params(axis="y", left=False, labelleft=False)
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.set_title(name, fontsize=10)
    height = fig.get_figheight()
    top_in = 0.45 + (0.35 if title else 0.0)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - top_in / height, bottom=0.55 / height)
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / height, va="top")
    return fig


def _xy(arrays: tuple[np.ndarray, np.ndarray] | np.ndarray | None, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Accept ``(fpr, sens)`` as a pair of arrays or an ``(m, 2)`` array; check values lie in [0, 1]."""
    if arrays is None:
        return None
    if isinstance(arrays, np.ndarray) and arrays.ndim == 2 and arrays.shape[1] == 2:
        x, y = arrays[:, 0], arrays[:, 1]
    else:
        try:
            x, y = (np.asarray(a, dtype=float) for a in arrays)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a pair (fpr, sens) of arrays or an (m, 2) array") from err
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    if x.shape != y.shape:
        raise StatisticsInputError(f"{name}: fpr and sens have different shapes {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    if np.any((x[ok] < -1e-12) | (x[ok] > 1 + 1e-12) | (y[ok] < -1e-12) | (y[ok] > 1 + 1e-12)):
        raise StatisticsInputError(f"{name}: values must be proportions in [0, 1] (fpr = 1 - specificity, sensitivity)")
    return x, y


def sroc_plot(
    studies: Studies,
    *,
    summary: tuple[float, float] | None = None,
    curve: tuple[np.ndarray, np.ndarray] | np.ndarray | None = None,
    confidence_region: tuple[np.ndarray, np.ndarray] | np.ndarray | None = None,
    prediction_region: tuple[np.ndarray, np.ndarray] | np.ndarray | None = None,
    restrict_curve: bool = True,
    coverage: float = 0.95,
    title: str | None = None,
) -> Figure:
    """SROC plot in ROC space: cohorts as circles sized by n, the SROC curve, summary point and 95% regions.

    Parameters
    ----------
    studies : Studies
        The cohorts; each is drawn at ``(FP / (FP + TN), TP / (TP + FN))`` with marker area proportional to its size.
    summary : (fpr, sens), optional
        The summary operating point (``gid="summary"``).
    curve : (fpr, sens) arrays or (m, 2) array, optional
        The SROC curve; with ``restrict_curve`` only the part within the observed FPR range of the cohorts is drawn
        (extrapolating beyond the data is misleading), ``gid="sroc_curve"``.
    confidence_region, prediction_region : (fpr, sens) arrays or (m, 2) array, optional
        Closed contours of the confidence region of the summary point and the prediction region for a new cohort.
    restrict_curve : bool
        Clip the curve to ``[min FPR, max FPR]`` of the cohorts. Default True.
    coverage : float
        Coverage shown in the legend of the regions. Default 0.95.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; the cohorts are one ``PathCollection`` with ``k`` offsets (``gid="cohorts"``).
    """
    studies = _check_studies(studies)
    fpr = studies.fp / (studies.fp + studies.tn)
    sens = studies.tp / (studies.tp + studies.fn)
    n = studies.tp + studies.fp + studies.fn + studies.tn
    fig = Figure(figsize=(6.2, 6.0))
    ax = fig.add_subplot(1, 1, 1)
    size = 20 + 380 * n / n.max()
    pts = ax.scatter(fpr, sens, s=size, facecolors="none", edgecolors=_POINT, linewidths=1.1, label="Cohorts (area ∝ n)")
    pts.set_gid("cohorts")
    pct = f"{100 * coverage:g}%"
    c = _xy(curve, "curve")
    if c is not None:
        x, yv = c
        order = np.argsort(x)
        x, yv = x[order], yv[order]
        if restrict_curve:
            keep = (x >= fpr.min() - 1e-12) & (x <= fpr.max() + 1e-12)
            x, yv = x[keep], yv[keep]
        (line,) = ax.plot(x, yv, color="#33415c", lw=1.6, label="SROC curve")
        line.set_gid("sroc_curve")
    for region, name, style, gid in ((confidence_region, f"{pct} confidence region", "--", "confidence_region"),
                                     (prediction_region, f"{pct} prediction region", ":", "prediction_region")):
        r = _xy(region, gid)
        if r is not None:
            (line,) = ax.plot(np.r_[r[0], r[0][:1]], np.r_[r[1], r[1][:1]], ls=style, color=_POOLED, lw=1.3,
                              label=name)
            line.set_gid(gid)
    if summary is not None:
        sx, sy = (float(v) for v in summary)
        if not (0 <= sx <= 1 and 0 <= sy <= 1):
            raise StatisticsInputError(f"summary must be (fpr, sens) in [0, 1], got {summary!r}")
        (point,) = ax.plot([sx], [sy], marker="D", ms=8, color=_POOLED, ls="none", label="Summary point")
        point.set_gid("summary")
    ax.plot([0, 1], [0, 1], color="#b0b8c8", lw=0.8, ls="-", zorder=0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("1 \u2212 specificity (false-positive rate)")
    ax.set_ylabel("Sensitivity")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title or "Summary ROC", fontsize=11)
    return fig


def deeks_funnel_plot(
    log_dor: np.ndarray,
    inv_sqrt_ess: np.ndarray,
    *,
    intercept: float,
    slope: float,
    p_value: float,
    labels: Sequence[str] | None = None,
) -> Figure:
    """Deeks' funnel plot: log DOR against ``1 / sqrt(ESS)`` with the fitted regression line.

    Deeks et al. (J Clin Epidemiol 2005;58:882-893) regress ``ln DOR`` on ``1 / sqrt(ESS)``, ``ESS = 4 n1 n2 /
    (n1 + n2)``, weighted by ESS; a slope different from 0 suggests small-study effects. As in Stata midas, the
    vertical axis is ``1 / sqrt(ESS)`` (0 at the bottom) and the horizontal axis the DOR on a log scale.

    Parameters
    ----------
    log_dor : array, shape (k,)
        Natural log of each cohort's diagnostic odds ratio (as the test used it, for example with a 0.5 correction).
    inv_sqrt_ess : array, shape (k,)
        ``1 / sqrt(ESS)`` of each cohort (> 0).
    intercept, slope : float
        The fitted line ``ln DOR = intercept + slope / sqrt(ESS)``.
    p_value : float
        The p-value of the slope, shown in the legend.
    labels : sequence of str, optional
        Cohort labels written beside the points.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with a ``Line2D`` of ``k`` points (``gid="cohorts"``) and the regression line (``gid="deeks_line"``).
    """
    x = np.asarray(log_dor, dtype=float)
    y = np.asarray(inv_sqrt_ess, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise StatisticsInputError(f"log_dor and inv_sqrt_ess must be 1-D of the same length, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(y > 0)):
        raise StatisticsInputError("log_dor must be finite and inv_sqrt_ess finite and > 0 (use a continuity correction for "
                         "cohorts with zero cells)")
    if labels is not None and len(labels) != len(x):
        raise StatisticsInputError(f"labels has {len(labels)} entries; expected {len(x)}, one per cohort")
    for name, v in (("intercept", intercept), ("slope", slope), ("p_value", p_value)):
        if not math.isfinite(float(v)):
            raise StatisticsInputError(f"{name} must be finite, got {v!r}")
    fig = Figure(figsize=(6.4, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    (pts,) = ax.plot(np.exp(x), y, ls="none", marker="o", ms=6, mfc="none", mec=_POINT, label="Cohorts")
    pts.set_gid("cohorts")
    yy = np.linspace(0, y.max() * 1.1, 50)
    (line,) = ax.plot(np.exp(intercept + slope * yy), yy, color=_POOLED, lw=1.4,
                      label=f"Regression line (slope p = {p_value:.3g})")
    line.set_gid("deeks_line")
    if labels is not None:
        for xi, yi, lab in zip(x, y, labels, strict=True):
            ax.annotate(str(lab), (math.exp(xi), yi), xytext=(4, 2), textcoords="offset points", fontsize=6.5,
                        color="#5a6478")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, y.max() * 1.15)
    ax.set_xlabel("Diagnostic odds ratio (log scale)")
    ax.set_ylabel("1 / \u221aESS (effective sample size)")
    ax.set_title("Deeks' funnel plot asymmetry test", fontsize=11)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    return fig


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def fagan_nomogram(pretest: float, lr_positive: float, lr_negative: float, *, title: str | None = None) -> Figure:
    """Fagan's nomogram (N Engl J Med 1975;293:257): pre-test probability, likelihood ratio, post-test probability.

    Three vertical log-odds axes at ``x = -1, 0, 1``: pre-test probability at height ``-logit(p)`` (0.1% at the top),
    the likelihood ratio at ``ln(LR) / 2`` and post-test probability at ``logit(p)``. A straight line from the pre-test
    probability through a likelihood ratio meets the post-test probability, because
    ``logit(post) = logit(pre) + ln(LR)`` (Bayes' theorem in odds form).

    Parameters
    ----------
    pretest : float
        Pre-test probability in (0, 1), for example the prevalence of nodal metastasis.
    lr_positive, lr_negative : float
        Positive and negative likelihood ratios (> 0).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with the lines ``gid="lr_positive"`` and ``gid="lr_negative"``; the legend gives the post-test
        probabilities.
    """
    if not (isinstance(pretest, int | float) and 0.0 < float(pretest) < 1.0):
        raise ConfigError(f"pretest must be a probability in (0, 1), got {pretest!r}")
    for name, v in (("lr_positive", lr_positive), ("lr_negative", lr_negative)):
        if not (isinstance(v, int | float) and math.isfinite(float(v)) and float(v) > 0):
            raise StatisticsInputError(f"{name} must be a finite number > 0, got {v!r}")
    probs = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99,
             0.995, 0.998, 0.999]
    lrs = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    lim = _logit(0.999) + 0.3
    fig = Figure(figsize=(5.4, 7.2))
    ax = fig.add_subplot(1, 1, 1)
    for xpos, ticks, height, fmt in (
        (-1.0, probs, lambda p: -_logit(p), lambda p: f"{100 * p:g}"),
        (0.0, lrs, lambda r: math.log(r) / 2.0, lambda r: f"{r:g}"),
        (1.0, probs, _logit, lambda p: f"{100 * p:g}"),
    ):
        ax.plot([xpos, xpos], [-lim, lim], color="#1d2433", lw=1.0)
        side = -1 if xpos < 0 else 1
        for t in ticks:
            h = height(t)
            if abs(h) <= lim:
                ax.plot([xpos, xpos + 0.04 * side], [h, h], color="#1d2433", lw=0.8)
                ax.text(xpos + 0.07 * side, h, fmt(t), ha="right" if side < 0 else "left", va="center", fontsize=7)
    pre_odds = pretest / (1.0 - pretest)
    for lr, gid, color, name in ((lr_positive, "lr_positive", _POOLED, "LR+"),
                                 (lr_negative, "lr_negative", _POINT, "LR\u2212")):
        post = pre_odds * lr / (1.0 + pre_odds * lr)
        yl, yr = -_logit(pretest), _logit(min(max(post, 1e-9), 1 - 1e-9))
        (line,) = ax.plot([-1.0, 1.0], [yl, yr], color=color, lw=1.6,
                          label=f"{name} {lr:.3g}: post-test probability {100 * post:.1f}%")
        line.set_gid(gid)
    ax.plot([-1.0], [-_logit(pretest)], marker="o", color="#1d2433", ms=5)
    for xpos, text in ((-1.0, "Pre-test\nprobability (%)"), (0.0, "Likelihood\nratio"),
                       (1.0, "Post-test\nprobability (%)")):
        ax.text(xpos, lim + 0.35, text, ha="center", va="bottom", fontsize=9, fontweight="bold")
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-lim - 0.2, lim + 1.6)
    ax.axis("off")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.1), fontsize=8, frameon=False,
              title=f"Pre-test probability {100 * pretest:.3g}%", title_fontsize=8)
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def _check_quadas(quadas: QuadasTable) -> QuadasTable:
    if not isinstance(quadas, QuadasTable):
        raise TypeError(f"quadas must be a nodescope.meta.QuadasTable (from read_quadas), got {type(quadas).__name__}")
    return quadas


def quadas_traffic_light(quadas: QuadasTable) -> Figure:
    """QUADAS-2 traffic-light table: one row per study, one coloured circle per domain (+ low, - high, ? unclear).

    Parameters
    ----------
    quadas : QuadasTable
        The validated judgements.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with ``7 * n_studies`` :class:`~matplotlib.patches.Circle` patches, each with ``gid`` equal to its
        level.
    """
    quadas = _check_quadas(quadas)
    frame = quadas.frame
    k = len(frame)
    cols = (*RISK_OF_BIAS_DOMAINS, *APPLICABILITY_DOMAINS)
    fig = Figure(figsize=(9.0, 1.9 + 0.34 * k))
    ax = fig.add_subplot(1, 1, 1)
    xs = [0, 1, 2, 3, 5.0, 6.0, 7.0]
    for i, study in enumerate(frame["study"]):
        yi = k - 1 - i
        ax.text(-0.7, yi, str(study), ha="right", va="center", fontsize=8.5)
        for xpos, col in zip(xs, cols, strict=True):
            level = frame[col].iloc[i]
            circle = Circle((xpos, yi), 0.36, color=LEVEL_COLORS[level], ec="white")
            circle.set_gid(level)
            ax.add_patch(circle)
            ax.text(xpos, yi, LEVEL_SYMBOLS[level], ha="center", va="center", color="white", fontsize=10,
                    fontweight="bold")
    for xpos, col in zip(xs, cols, strict=True):
        ax.text(xpos, k - 0.2, DOMAIN_LABELS[col], rotation=40, ha="left", va="bottom", fontsize=8)
    ax.text(1.5, k + 2.9, "Risk of bias", ha="center", fontweight="bold", fontsize=8.5)
    ax.text(6.0, k + 2.9, "Applicability concerns", ha="center", fontweight="bold", fontsize=8.5)
    ax.plot([-0.4, 3.4], [k + 2.75, k + 2.75], color="#33415c", lw=0.8)
    ax.plot([4.6, 7.4], [k + 2.75, k + 2.75], color="#33415c", lw=0.8)
    ax.set_xlim(-0.7, 8.6)
    ax.set_ylim(-0.8, k + 3.5)
    ax.set_aspect("equal")
    ax.axis("off")
    handles = [Patch(color=LEVEL_COLORS[lev], label=f"{lev} ({LEVEL_SYMBOLS[lev]})") for lev in QUADAS_LEVELS]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    return fig


def quadas_summary_plot(quadas: QuadasTable) -> Figure:
    """QUADAS-2 summary: proportion of studies at low / high / unclear risk (and concern) per domain.

    Parameters
    ----------
    quadas : QuadasTable
        The validated judgements.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes (risk of bias: 4 domains; applicability concerns: 3 domains) of horizontal stacked bars
        (3 bars per domain, one per level, widths in % of studies).
    """
    quadas = _check_quadas(quadas)
    summary = quadas.summary()
    fig = Figure(figsize=(9.5, 3.6))
    grid = fig.add_gridspec(1, 2, wspace=0.55)
    for j, part in enumerate(("risk of bias", "applicability concerns")):
        ax = fig.add_subplot(grid[j])
        rows = summary[summary["part"] == part].iloc[::-1]
        left = np.zeros(len(rows))
        for level in QUADAS_LEVELS:
            width = rows[f"pct_{level}"].to_numpy()
            ax.barh(rows["domain"], width, left=left, color=LEVEL_COLORS[level], label=level, edgecolor="white")
            left = left + width
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of studies")
        ax.set_title(part.capitalize(), fontsize=10)
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    fig.axes[0].legend(loc="upper center", bbox_to_anchor=(1.2, -0.22), ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"QUADAS-2 summary ({len(quadas)} studies)", fontsize=11)
    return fig

