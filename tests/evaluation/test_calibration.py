"""Calibration: definitions on hand-made data, ECE, Hosmer-Lemeshow grouping, reliability curve, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nodescope.evaluation import calibration_metrics, hosmer_lemeshow, reliability_curve


@pytest.fixture
def calibrated(rng):
    p = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    return y, p


def test_well_calibrated_model(calibrated):
    y, p = calibrated
    c = calibration_metrics(y, p, n_boot=100)
    assert c.calibration_in_the_large.ci_low < 0 < c.calibration_in_the_large.ci_high
    assert c.calibration_slope.ci_low < 1 < c.calibration_slope.ci_high
    assert c.eavg < 0.03
    assert c.hosmer_lemeshow.p_value > 0.001


def test_overconfident_model_has_slope_below_one(calibrated, rng):
    y, p = calibrated
    logit = np.log(p / (1 - p))
    p_extreme = 1 / (1 + np.exp(-2 * logit))
    c = calibration_metrics(y, p_extreme, n_boot=50)
    assert c.calibration_slope.estimate == pytest.approx(0.5, abs=0.08)


def test_brier_and_scaled_brier_formulas():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.2, 0.7, 0.9, 0.6, 0.5])  # not separable: the logistic fits converge
    c = calibration_metrics(y, p, n_boot=50)
    brier = np.mean((p - y) ** 2)
    assert c.brier.estimate == pytest.approx(brier)
    assert c.scaled_brier.estimate == pytest.approx(1 - brier / (0.6 * 0.4))


def test_ece_hand_computed():
    # bins of width 0.1: [0.1, 0.2): p = .15, .15 (y 0, 1); [0.8, 0.9): p = .85, .85, .85 (y 1, 1, 0)
    y = np.array([0, 1, 1, 1, 0])
    p = np.array([0.15, 0.15, 0.85, 0.85, 0.85])
    c = calibration_metrics(y, p, n_boot=20)
    expected = 2 / 5 * abs(0.5 - 0.15) + 3 / 5 * abs(2 / 3 - 0.85)
    assert c.ece.estimate == pytest.approx(expected)


def test_ece_last_bin_includes_one():
    c = calibration_metrics(np.array([1, 0]), np.array([1.0, 0.0]), n_boot=10)
    assert c.ece.estimate == 0.0
    assert "left out of the logistic recalibration" in c.note


def test_hosmer_lemeshow_merges_tied_quantiles(rng):
    p = np.repeat([0.1, 0.3, 0.6, 0.8], 25)
    y = (rng.uniform(size=p.size) < p).astype(int)
    hl = hosmer_lemeshow(y, p)
    assert hl.n_groups == 3  # breaks unique to 0.1, 0.3, 0.6, 0.8: (.1-.3] incl lowest, (.3-.6], (.6-.8]
    assert hl.df == 1
    assert "tied quantiles" in hl.note
    assert hl.table["n"].tolist() == [50, 25, 25]


def test_hosmer_lemeshow_groups_are_right_closed():
    p = np.arange(1, 21) / 21
    y = np.tile([0, 1], 10)
    hl = hosmer_lemeshow(y, p, n_groups=4)
    assert hl.table["n"].tolist() == [5, 5, 5, 5]


def test_one_outcome_class_policy():
    c = calibration_metrics(np.zeros(20, dtype=int), np.linspace(0.05, 0.5, 20), n_boot=20)
    assert math.isnan(c.calibration_slope.estimate) and "both outcomes" in c.calibration_slope.note
    assert math.isnan(c.scaled_brier.estimate)
    assert c.brier.estimate == pytest.approx(np.mean(np.linspace(0.05, 0.5, 20) ** 2))


def test_probabilities_out_of_range_rejected():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        calibration_metrics([0, 1], [0.2, 1.2])


def test_reliability_curve(calibrated):
    y, p = calibrated
    r = reliability_curve(y[:800], p[:800], n_boot=50)
    assert r.bins["n"].sum() == 800
    assert np.all(r.bins["ci_low"] <= r.bins["observed"])
    assert np.nanmax(np.abs(r.smooth - r.grid)) < 0.1
    assert np.all(r.smooth_low[5:-5] <= r.smooth_high[5:-5])
    q = reliability_curve(y[:800], p[:800], strategy="quantile", n_boot=0)
    assert q.bins["n"].max() - q.bins["n"].min() <= 1
    assert np.isnan(q.smooth_low).all()


def _prevalence_driven(rng, n=400):
    # p independent of y, taking two values: (p - y)^2 differs far more between outcome classes than within
    y = (rng.random(n) < 0.3).astype(int)
    p = rng.choice([0.1, 0.2], n)
    return y, p


def test_brier_interval_is_plain_bootstrap_by_default(rng):
    # Plain (non-stratified) resampling of patients: SE(Brier) = sd((p - y)^2) / sqrt(N) (mean of iid terms), so
    # the percentile interval is about 2 z SE wide. Resampling within outcome classes would fix the prevalence and
    # remove most of that variance (here to about a quarter of the width).
    y, p = _prevalence_driven(rng)
    cal = calibration_metrics(y, p, n_boot=2000, seed=3)
    se = np.std((p - y) ** 2) / np.sqrt(y.size)
    width = cal.brier.ci_high - cal.brier.ci_low
    assert width == pytest.approx(2 * stats.norm.ppf(0.975) * se, rel=0.15)
    assert cal.brier.extra["stratified"] is False
    strat = calibration_metrics(y, p, n_boot=2000, seed=3, stratified=True)
    assert strat.brier.ci_high - strat.brier.ci_low < 0.5 * width


def test_calibration_cluster_bootstrap_with_duplicated_rows(rng):
    # every patient twice: resampling patients (groups=) gives the same Brier/ECE intervals as the single rows
    # (same draws: patient codes follow the row order); treating the rows as independent narrows them (~1/sqrt 2)
    y, p = _prevalence_driven(rng, n=200)
    ids = np.array([f"p{i:03d}" for i in range(y.size)])
    single = calibration_metrics(y, p, n_boot=1000, seed=5)
    yy, pp, gg = np.repeat(y, 2), np.repeat(p, 2), np.repeat(ids, 2)
    clustered = calibration_metrics(yy, pp, n_boot=1000, groups=gg, seed=5)
    for name in ("brier", "ece", "scaled_brier"):
        a, b = getattr(single, name), getattr(clustered, name)
        assert (b.ci_low, b.ci_high) == pytest.approx((a.ci_low, a.ci_high), abs=1e-12)
    naive = calibration_metrics(yy, pp, n_boot=1000, seed=5)
    assert naive.brier.ci_high - naive.brier.ci_low < 0.85 * (single.brier.ci_high - single.brier.ci_low)


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_hosmer_lemeshow_zero_expected_is_undefined_with_note(rng, edge):
    # 20 predictions exactly 0 (or 1) fill the lowest (highest) groups: E1 = 0 (E0 = 0) there, so (O - E)^2 / E
    # is 0/0 or x/0; the test is undefined (nan + note), never a silent nan/inf statistic
    p = np.r_[np.full(20, edge), rng.uniform(0.2, 0.8, 80)]
    y = (rng.uniform(size=p.size) < p).astype(int)
    y[:20] = 1 - int(edge)  # an event where the model said impossible
    with np.errstate(all="raise"):
        hl = hosmer_lemeshow(y, p)
    assert math.isnan(hl.statistic) and math.isnan(hl.p_value)
    assert "zero expected" in hl.note
    assert hl.table["n"].sum() == 100


@pytest.mark.parametrize("quasi", [False, True])
def test_perfect_separation_slope_is_undefined_with_note(quasi):
    # logit(p) separates the outcomes: the ML slope does not exist (Albert & Anderson, Biometrika 1984) and a GLM
    # fit drifts to a huge slope with a huger SE; reported as nan + note. quasi: one tie at the boundary.
    p = np.linspace(0.05, 0.95, 40)
    y = (p > 0.5).astype(int)
    if quasi:
        p[19] = p[20]  # a negative and a positive share the boundary prediction
    c = calibration_metrics(y, p, n_boot=20)
    assert math.isnan(c.calibration_slope.estimate) and math.isnan(c.calibration_slope.ci_low) and math.isnan(c.calibration_slope.ci_high)
    assert math.isnan(c.recalibration_intercept)
    assert "separates" in c.calibration_slope.note and "separates" in c.note
    assert math.isfinite(c.calibration_in_the_large.estimate)  # calibration-in-the-large still exists


def test_constant_predictions_slope_undefined():
    c = calibration_metrics(np.tile([0, 1, 1, 0], 10), np.full(40, 0.3), n_boot=20)
    assert math.isnan(c.calibration_slope.estimate) and "all predictions are equal" in c.calibration_slope.note
    assert c.calibration_in_the_large.estimate == pytest.approx(math.log(0.5 / 0.5) - math.log(0.3 / 0.7))
