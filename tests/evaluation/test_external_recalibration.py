"""Logistic recalibration at a new site: known miscalibration recovered, the learning curve, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from nodescope.errors import StatisticsInputError
from nodescope.evaluation import calibration_metrics, recalibrate, recalibration_curve


def _site(n: int, a: float, b: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn from the true model ``logit P(y=1) = a + b * logit(p)``: the model's ``p`` is miscalibrated
    with known intercept ``a`` and slope ``b`` (slope < 1: too extreme)."""
    rng = np.random.default_rng(seed)
    lp = rng.normal(-0.5, 2.0, n)
    y = (rng.uniform(size=n) < expit(a + b * lp)).astype(int)
    return y, expit(lp)


def test_logistic_recalibration_recovers_known_intercept_and_slope():
    y, p = _site(20000, a=-0.7, b=0.4, seed=1)
    fit = recalibrate(y, p, method="logistic")
    # the maximum-likelihood fit of the data-generating model: within ~3 standard errors of the truth
    assert fit.intercept.estimate == pytest.approx(-0.7, abs=0.06)
    assert fit.slope.estimate == pytest.approx(0.4, abs=0.03)
    assert fit.slope.ci_low < 0.4 < fit.slope.ci_high
    # the recalibrated probabilities are calibrated on fresh data from the same site
    y2, p2 = _site(20000, a=-0.7, b=0.4, seed=2)
    cal = calibration_metrics(y2, fit.apply(p2), n_boot=1)
    assert cal.intercept.ci_low < 0 < cal.intercept.ci_high
    assert cal.slope.ci_low < 1 < cal.slope.ci_high


def test_intercept_recalibration_recovers_a_pure_shift_and_equals_the_calibration_intercept():
    y, p = _site(20000, a=1.2, b=1.0, seed=3)
    fit = recalibrate(y, p, method="intercept")
    assert fit.intercept.estimate == pytest.approx(1.2, abs=0.06)
    assert fit.intercept.ci_low < 1.2 < fit.intercept.ci_high
    assert fit.slope.estimate == 1.0 and fit.slope.method == "fixed"
    # the same fit as the package's calibration intercept (and the logistic one as its recalibration intercept/slope)
    cal = calibration_metrics(y, p, n_boot=1)
    assert fit.intercept.estimate == cal.intercept.estimate
    lg = recalibrate(y, p)
    assert lg.intercept.estimate == cal.recalibration_intercept
    assert lg.slope.estimate == cal.slope.estimate
    # by hand: expit(a + logit p)
    assert fit.apply([0.2])[0] == pytest.approx(expit(fit.intercept.estimate + logit(0.2)))


def test_apply_keeps_ranking_and_extremes():
    y, p = _site(500, a=0.3, b=0.5, seed=4)
    fit = recalibrate(y, p)
    q = fit.apply(np.r_[p, 0.0, 1.0])
    assert np.array_equal(np.argsort(q[:-2], kind="mergesort"), np.argsort(p, kind="mergesort"))
    assert q[-2] == 0.0 and q[-1] == 1.0


@pytest.mark.parametrize(("y", "p", "method", "match"), [
    ([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], "logistic", "both outcomes"),
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], "logistic", "separates"),
    ([0, 1, 0, 1], [0.1, 0.2, 0.8, 0.9], "sigmoid", "did you mean|expected one of"),
    ([0, 1, 2, 1], [0.1, 0.2, 0.8, 0.9], "logistic", "only 0 and 1"),
    ([0, 1, 0, 1], [0.1, 0.2, 1.8, 0.9], "logistic", r"\[0, 1\]|probabilit"),
])
def test_recalibrate_refuses_bad_or_unfittable_samples(y, p, method, match):
    with pytest.raises(StatisticsInputError, match=match):
        recalibrate(y, p, method=method)


def test_curve_converges_to_the_truth_and_beats_no_recalibration():
    y, p = _site(1200, a=-0.8, b=0.45, seed=5)
    curve = recalibration_curve(y, p, sizes=[20, 100, 400], repeats=30, threshold=0.5, seed=0)
    t = curve.table.set_index(["n_local", "method", "metric"])
    assert curve.sizes == (20, 100, 400) and curve.skipped_sizes == ()
    # no recalibration: the rest of the site shows the known miscalibration (slope ~0.45, intercept < 0)
    assert t.loc[(400, "none", "calibration_slope"), "median"] == pytest.approx(0.45, abs=0.08)
    # logistic recalibration: slope near 1 on the rest, the band narrowing as the local sample grows
    slope = t.xs(("logistic", "calibration_slope"), level=("method", "metric"))
    assert slope.loc[400, "median"] == pytest.approx(1.0, abs=0.1)
    width = slope["q_high"] - slope["q_low"]
    assert width.loc[400] < width.loc[100] < width.loc[20]
    # intercept-only recalibration fixes calibration-in-the-large, not the slope
    assert abs(t.loc[(400, "intercept", "calibration_in_the_large"), "median"]) < 0.1
    assert t.loc[(400, "intercept", "calibration_slope"), "median"] < 0.6
    # Brier: recalibrated < original
    assert t.loc[(400, "logistic", "brier"), "median"] < t.loc[(400, "none", "brier"), "median"]
    assert set(curve.repeats["method"]) == {"none", "intercept", "logistic"}
    assert (t["n_repeats"] + t["n_failed"] <= 30).all()


def test_curve_rows_are_recomputable_from_a_repeat():
    """One repeat redone by hand: the same draw, the same fit, the same numbers on the rest."""
    y, p = _site(200, a=0.5, b=0.6, seed=6)
    curve = recalibration_curve(y, p, sizes=[40], repeats=1, threshold=0.4, seed=np.random.default_rng(11))
    rng = np.random.default_rng(11)
    local = np.isin(np.arange(200), rng.choice(200, size=40, replace=False))
    fit = recalibrate(y[local], p[local])
    q = fit.apply(p[~local])
    row = curve.repeats[curve.repeats["method"] == "logistic"].iloc[0]
    assert row["brier"] == pytest.approx(np.mean((q - y[~local]) ** 2))
    assert row["sensitivity"] == pytest.approx(np.mean(q[y[~local] == 1] >= 0.4))
    cal = calibration_metrics(y[~local], q, n_boot=1)
    assert row["calibration_slope"] == pytest.approx(cal.slope.estimate)


def test_curve_samples_whole_patients_and_counts_failed_fits():
    y, p = _site(120, a=0.0, b=1.0, seed=7)
    groups = np.repeat(np.arange(60), 2)
    y = np.repeat(y[:60], 2)
    curve = recalibration_curve(y, p, sizes=[2, 30, 55], repeats=20, groups=groups, seed=0)
    assert curve.n_patients == 60 and curve.sizes == (2, 30) and curve.skipped_sizes == (55,)
    tiny = curve.table[(curve.table["n_local"] == 2) & (curve.table["method"] == "logistic")]
    assert (tiny["n_failed"] > 0).all()  # two patients: often one class only, or separated
    row = tiny.set_index("metric").loc["calibration_slope"]
    assert row["n_repeats"] + row["n_failed"] <= 20


def test_curve_refuses_a_site_too_small():
    y, p = _site(15, a=0.0, b=1.0, seed=8)
    with pytest.raises(StatisticsInputError, match="15 patient"):
        recalibration_curve(y, p, sizes=[10], repeats=2)
    with pytest.raises(StatisticsInputError, match="repeats"):
        recalibration_curve(y, p, sizes=[2], repeats=0)


def test_recalibration_equals_r_glm(data_binary):
    """Values from tests/evaluation/r/recalibration_reference.R (base R glm; output in recalibration_reference.out)."""
    y, p = data_binary["y"].to_numpy(), data_binary["p"].to_numpy()
    one = recalibrate(y, p, method="intercept")
    assert one.intercept.estimate == pytest.approx(-0.636047619163914, abs=1e-7)
    assert (one.intercept.ci_low, one.intercept.ci_high) == pytest.approx((-1.24184940082757, -0.0302458375002588),
                                                                          abs=1e-6)
    two = recalibrate(y, p, method="logistic")
    assert two.intercept.estimate == pytest.approx(-0.882395757926808, abs=1e-7)
    assert two.slope.estimate == pytest.approx(1.41467962687338, abs=1e-7)
    assert (two.slope.ci_low, two.slope.ci_high) == pytest.approx((0.714877776065027, 2.11448147768172), abs=1e-6)
    grid = [0.05, 0.3, 0.5, 0.9]
    assert one.apply(grid) == pytest.approx([0.02710688162929, 0.184922636076372, 0.346140526120726,
                                             0.826522173951205], abs=1e-7)
    assert two.apply(grid) == pytest.approx([0.00638223910061586, 0.110952273537857, 0.292681565112232,
                                             0.902557776827842], abs=1e-7)
