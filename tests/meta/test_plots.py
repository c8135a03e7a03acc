"""Figures of the meta-analysis: the expected artists, their data and the input checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Polygon

import nodescope.meta
from nodescope._estimate import Estimate
from nodescope.evaluation import proportion_ci
from nodescope.meta import (
    deeks_funnel_plot,
    fagan_nomogram,
    forest_plot,
    quadas_summary_plot,
    quadas_traffic_light,
    read_quadas,
    read_studies,
    sroc_plot,
)
from nodescope.meta import example_paths as _paths
from nodescope.meta._plots import clopper_pearson_bounds
from nodescope.report import save_figure


@pytest.fixture(scope="module")
def studies():
    return read_studies(pd.DataFrame({"study": ["A", "B", "C", "D"], "TP": [35, 30, 0, 12], "FP": [11, 15, 3, 0],
                                      "FN": [6, 11, 4, 12], "TN": [29, 25, 40, 30]}))


def _by_gid(fig: Figure, gid: str) -> list:
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def test_exact_ci_matches_clopper_pearson_reference():
    # Zhou 2020 CNN: 35/41 sensitivity, published 95% CI 70%-94%;
    # R 4.x: print(binom.test(35, 41)$conf.int, digits = 7) -> 0.7082695 0.9443426
    low, high = clopper_pearson_bounds(np.array([35, 29, 0, 41]), np.array([41, 40, 41, 41]))
    assert low[0] == pytest.approx(0.7082695, abs=1e-6) and high[0] == pytest.approx(0.9443426, abs=1e-6)
    # specificity 29/40, published 56%-85%; print(binom.test(29, 40)$conf.int, digits = 7) -> 0.5611171 0.8539910
    assert low[1] == pytest.approx(0.5611171, abs=1e-6) and high[1] == pytest.approx(0.8539910, abs=1e-6)
    # x = 0: lower bound 0, upper 1 - (alpha/2)^(1/n); x = n: upper 1
    assert low[2] == 0.0 and high[2] == pytest.approx(1 - 0.025 ** (1 / 41))
    assert high[3] == 1.0
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        clopper_pearson_bounds(np.array([5]), np.array([4]))
    # one implementation of the exact interval: the evaluation stage's
    ref = proportion_ci(35, 41, method="clopper-pearson")
    assert (low[0], high[0]) == (ref.ci_low, ref.ci_high)
    assert not hasattr(nodescope.meta, "exact_ci")


def test_forest_plot_points_intervals_and_diamonds(studies):
    pooled = Estimate("sensitivity", 0.6, 0.4, 0.75, "test")
    fig = forest_plot(studies, pooled_sensitivity=pooled, pooled_specificity=Estimate("specificity", 0.8, 0.7, 0.9, "t"))
    points = _by_gid(fig, "cohorts")
    assert len(points) == 2
    sens_pts, spec_pts = points
    assert sens_pts.get_xdata().tolist() == pytest.approx([35 / 41, 30 / 41, 0.0, 0.5])
    assert spec_pts.get_xdata().tolist() == pytest.approx([29 / 40, 25 / 40, 40 / 43, 1.0])
    diamonds = _by_gid(fig, "pooled")
    assert len(diamonds) == 2 and all(isinstance(d, Polygon) for d in diamonds)
    xs = diamonds[0].get_xy()[:, 0]
    assert xs.min() == pytest.approx(0.4) and xs.max() == pytest.approx(0.75)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "35" in texts and "Zhou" not in texts and "0.85 (0.71-0.94)" in texts
    assert not _by_gid(forest_plot(studies), "pooled")


def test_sroc_plot_cohorts_curve_restricted_and_regions(studies):
    t = np.linspace(0, 2 * np.pi, 60)
    curve_x = np.linspace(0, 1, 101)
    fig = sroc_plot(studies, summary=(0.2, 0.6), curve=(curve_x, curve_x**0.4),
                    confidence_region=np.column_stack([0.2 + 0.05 * np.cos(t), 0.6 + 0.05 * np.sin(t)]),
                    prediction_region=(0.2 + 0.1 * np.cos(t), 0.6 + 0.2 * np.sin(t)))
    (cohorts,) = _by_gid(fig, "cohorts")
    offsets = cohorts.get_offsets()
    assert offsets.shape == (4, 2)
    assert offsets[:, 0].tolist() == pytest.approx([11 / 40, 15 / 40, 3 / 43, 0.0])
    sizes = cohorts.get_sizes()
    n = np.array([81, 81, 47, 54])
    assert np.argmax(sizes) in (0, 1) and sizes[2] < sizes[3]
    assert sizes.max() == pytest.approx(20 + 380 * n.max() / n.max())
    (curve,) = _by_gid(fig, "sroc_curve")
    x = curve.get_xdata()
    assert x.min() >= 0.0 and x.max() <= 15 / 40 + 1e-12  # restricted to the observed FPR range
    assert len(_by_gid(fig, "confidence_region")) == 1 and len(_by_gid(fig, "prediction_region")) == 1
    assert len(_by_gid(fig, "summary")) == 1
    full = sroc_plot(studies, curve=(curve_x, curve_x**0.4), restrict_curve=False)
    assert _by_gid(full, "sroc_curve")[0].get_xdata().max() == 1.0
    with pytest.raises(ValueError, match="proportions in"):
        sroc_plot(studies, curve=(curve_x, curve_x + 2))


def test_deeks_funnel_plot_line_and_points(tmp_path):
    rng = np.random.default_rng(0)
    log_dor, inv = rng.normal(2, 0.5, 9), rng.uniform(0.05, 0.3, 9)
    fig = deeks_funnel_plot(log_dor, inv, intercept=2.0, slope=-1.5, p_value=0.034, labels=list("abcdefghi"))
    (pts,) = _by_gid(fig, "cohorts")
    assert np.allclose(pts.get_xdata(), np.exp(log_dor)) and np.allclose(pts.get_ydata(), inv)
    (line,) = _by_gid(fig, "deeks_line")
    yy = line.get_ydata()
    assert np.allclose(np.log(line.get_xdata()), 2.0 - 1.5 * yy)
    assert "p = 0.034" in line.get_label()
    paths = save_figure(fig, tmp_path, "deeks")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 0 for p in paths)
    with pytest.raises(ValueError, match="same length"):
        deeks_funnel_plot(log_dor, inv[:3], intercept=0, slope=0, p_value=1)
    with pytest.raises(ValueError, match="finite and > 0"):
        deeks_funnel_plot(np.array([1.0, math.inf]), np.array([0.1, 0.1]), intercept=0, slope=0, p_value=1)


def test_fagan_nomogram_geometry_gives_bayes_post_test():
    pre, lrp, lrn = 0.4, 3.6, 0.25
    fig = fagan_nomogram(pre, lrp, lrn)
    for gid, lr in (("lr_positive", lrp), ("lr_negative", lrn)):
        (line,) = _by_gid(fig, gid)
        (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
        assert (x0, x1) == (-1.0, 1.0)
        assert y0 == pytest.approx(-math.log(pre / (1 - pre)))
        # the line crosses the middle axis at ln(LR) / 2 ...
        assert (y0 + y1) / 2 == pytest.approx(math.log(lr) / 2)
        # ... and ends at logit(post) with post from Bayes' theorem in odds form
        odds = pre / (1 - pre) * lr
        assert y1 == pytest.approx(math.log(odds))
        assert f"{100 * odds / (1 + odds):.1f}%" in line.get_label()
    # 0.4 pre-test with LR+ 3.6: post-test odds 2/3 * 3.6 = 2.4, probability 2.4 / 3.4 = 70.6%
    assert "70.6%" in _by_gid(fig, "lr_positive")[0].get_label()
    for bad in ({"pretest": 1.0}, {"pretest": 0.0}, {"lr_positive": -1.0}, {"lr_negative": float("nan")}):
        kwargs = {"pretest": pre, "lr_positive": lrp, "lr_negative": lrn, **bad}
        with pytest.raises(ValueError):
            fagan_nomogram(**kwargs)


def test_quadas_plots():
    q = read_quadas(_paths()["quadas"])
    fig = quadas_traffic_light(q)
    circles = [a for a in fig.axes[0].patches if isinstance(a, Circle)]
    assert len(circles) == 7 * len(q)
    assert sum(c.get_gid() == "high" for c in circles) == int((q.frame.iloc[:, 1:8] == "high").to_numpy().sum())
    summary = quadas_summary_plot(q)
    assert len(summary.axes) == 2
    assert len(summary.axes[0].patches) == 3 * 4 and len(summary.axes[1].patches) == 3 * 3
    widths = np.array([p.get_width() for p in summary.axes[0].patches]).reshape(3, 4)
    assert widths.sum(axis=0) == pytest.approx([100.0] * 4)
    with pytest.raises(TypeError, match="QuadasTable"):
        quadas_traffic_light(q.frame)  # type: ignore[arg-type]


def test_plot_type_errors(studies):
    with pytest.raises(TypeError, match="Studies"):
        forest_plot(studies.frame)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Estimate"):
        forest_plot(studies, pooled_sensitivity=0.8)  # type: ignore[arg-type]
