"""Plot functions return Figures drawn from results (content checked, not pixels)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from nodescope.evaluation import (
    decision_curve,
    multiclass_metrics,
    plot_calibration,
    plot_confusion_matrix,
    plot_decision_curve,
    plot_pr,
    plot_roc,
    pr_curve,
    reliability_curve,
    roc_auc,
    roc_band,
    roc_curve,
)


def test_all_plots(rng, tmp_path):
    y = rng.integers(0, 2, 120)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    fig = plot_roc({"cnn": roc_curve(y, p)}, bands={"cnn": roc_band(y, p, n_boot=50)},
                   aucs={"cnn": roc_auc(y, p)}, points=[("reader 1", 0.2, 0.7)])
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("cnn  AUC 0.") and "reader 1" in labels
    assert len(fig.axes[0].collections) >= 1  # the band
    figs = [
        plot_pr(pr_curve(y, p)),
        plot_calibration(reliability_curve(y, p, n_boot=20)),
        plot_decision_curve(decision_curve(y, p, n_boot=20)),
        plot_confusion_matrix(multiclass_metrics(rng.integers(0, 3, 60), rng.dirichlet([1, 1, 1], 60), n_boot=20)),
    ]
    for i, f in enumerate([fig, *figs]):
        assert isinstance(f, Figure)
        f.savefig(tmp_path / f"{i}.png")
    assert len(list(tmp_path.glob("*.png"))) == 5


def test_calibration_plot_with_pure_bins():
    """Bins with no events (or only events) have Wilson bounds a rounding error past the estimate; still plots."""
    # 7 of 0 and 12 of 12: statsmodels' Wilson bounds are 2.8e-17 and 0.9999999999999999 there
    p = np.r_[np.full(7, 0.02), np.full(40, 0.5), np.full(12, 0.97)]
    y = np.r_[np.zeros(7, int), np.tile([0, 1], 20), np.ones(12, int)]
    curve = reliability_curve(y, p, n_bins=3, n_boot=0)
    fig = plot_calibration(curve)
    assert fig.axes


def test_wilson_bounds_exact_at_zero_and_n():
    from nodescope.evaluation import proportion_ci

    assert proportion_ci(0, 7).ci_low == 0.0
    assert proportion_ci(12, 12).ci_high == 1.0
