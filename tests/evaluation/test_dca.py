"""Decision curve analysis against hand-computed net benefit (Vickers & Elkin 2006), thresholds equal to scores."""

from __future__ import annotations

import numpy as np
import pytest

from nodescope.evaluation import decision_curve, net_benefit_difference

Y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 0])
P = np.array([0.9, 0.2, 0.6, 0.3, 0.3, 0.1, 0.8, 0.5, 0.05, 0.3])


def test_net_benefit_hand_computed_threshold_equal_to_scores():
    # pt = 0.3 equals three scores: treat p >= 0.3 -> rows 0,2,3,4,6,7,9: TP = 4, FP = 3, N = 10
    # NB = 4/10 - 3/10 * 0.3/0.7 = 0.271428...
    # pt = 0.5: treat rows 0,2,6,7 -> TP = 3, FP = 1: NB = 0.3 - 0.1 * 1 = 0.2
    dc = decision_curve(Y, P, thresholds=[0.3, 0.5], n_boot=0)
    assert dc.net_benefit == pytest.approx([0.4 - 0.3 * 3 / 7, 0.2])
    # treat all: prevalence 0.4 -> 0.4 - 0.6 * odds
    assert dc.treat_all == pytest.approx([0.4 - 0.6 * 3 / 7, 0.4 - 0.6])
    assert dc.treat_none == pytest.approx([0, 0])
    # interventions avoided per 100 = (NB - NB_all) / odds * 100
    assert dc.interventions_avoided == pytest.approx([(0.3 * 3 / 7) / (3 / 7) * 100, 0.4 / 1 * 100])


def test_bands_contain_estimate_and_default_grid(rng):
    y = rng.integers(0, 2, 300)
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    dc = decision_curve(y, p, n_boot=200)
    assert dc.thresholds[0] == 0.01 and dc.thresholds[-1] == 0.99 and dc.thresholds.size == 99
    ok = (dc.net_benefit_low <= dc.net_benefit + 1e-12) & (dc.net_benefit <= dc.net_benefit_high + 1e-12)
    assert ok.mean() > 0.95
    assert len(dc.to_frame()) == 99


def test_perfect_model_net_benefit_is_prevalence():
    dc = decision_curve(Y, Y.astype(float), thresholds=[0.2, 0.7], n_boot=0)
    assert dc.net_benefit == pytest.approx([0.4, 0.4])


def test_net_benefit_difference_paired():
    other = np.full(10, 0.4)  # treats everyone below 0.4, no one above
    d = net_benefit_difference(Y, P, other, thresholds=[0.3, 0.5], n_boot=100)
    a = decision_curve(Y, P, thresholds=[0.3, 0.5], n_boot=0).net_benefit
    b = decision_curve(Y, other, thresholds=[0.3, 0.5], n_boot=0).net_benefit
    assert d.difference == pytest.approx(a - b)
    assert b[1] == 0.0


@pytest.mark.parametrize("bad", [[0.0, 0.5], [0.5, 1.0], [-0.1]])
def test_thresholds_must_be_inside_unit_interval(bad):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        decision_curve(Y, P, thresholds=bad)


def _everyone_treated(rng, n=400, prevalence=0.3):
    y = (rng.random(n) < prevalence).astype(int)
    p = rng.uniform(0.05, 0.95, n)  # every p >= 0.01: at pt = 0.01 the model treats everyone
    return y, p


def _binomial_band_width(y, pt, alpha=0.05):
    # NB(pt) when everyone is treated = prev - (1 - prev) * odds = prev * (1 + odds) - odds, so under plain
    # resampling of patients SE(NB) = (1 + odds) * sqrt(prev (1 - prev) / n) (binomial SE of the prevalence);
    # a percentile band is about 2 * z * SE wide.
    from scipy.stats import norm

    prev, odds = y.mean(), pt / (1 - pt)
    return 2 * norm.ppf(1 - alpha / 2) * (1 + odds) * np.sqrt(prev * (1 - prev) / y.size)


def test_band_at_low_threshold_reflects_prevalence_uncertainty(rng):
    # Vickers et al. BMC Med Inform Decis Mak 2008;8:53 (and R dcurves) resample patients plainly; an
    # outcome-stratified bootstrap fixes the prevalence and gives a zero-width band here.
    y, p = _everyone_treated(rng)
    dc = decision_curve(y, p, thresholds=[0.01], n_boot=2000, seed=1)
    width = dc.net_benefit_high[0] - dc.net_benefit_low[0]
    assert width == pytest.approx(_binomial_band_width(y, 0.01), rel=0.15)
    strat = decision_curve(y, p, thresholds=[0.01], n_boot=500, stratified=True, seed=1)
    assert strat.net_benefit_high[0] - strat.net_benefit_low[0] == pytest.approx(0.0, abs=1e-12)


def test_net_benefit_difference_band_at_low_threshold(rng):
    # model a treats everyone at pt = 0.01, model b treats no one: NB_a - NB_b = treat-all net benefit,
    # whose plain-bootstrap SE is the binomial SE of the prevalence times (1 + odds)
    y, pa = _everyone_treated(rng)
    pb = np.full(y.size, 0.005)
    nbd = net_benefit_difference(y, pa, pb, thresholds=[0.01], n_boot=2000, seed=1)
    width = nbd.difference_high[0] - nbd.difference_low[0]
    assert width == pytest.approx(_binomial_band_width(y, 0.01), rel=0.15)
