"""ROC/AUC/PR: brute-force references, properties, bootstrap behaviour and the undefined-case policy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from nodescope.evaluation import (
    average_precision,
    delong_components,
    pr_curve,
    roc_auc,
    roc_band,
    roc_curve,
)


def pairwise_auc(y, s):
    """Obviously-correct O(m n) Mann-Whitney AUC, ties 1/2."""
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def pairwise_delong_var(y, s):
    """DeLong variance from explicit placement values (O(m n))."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size


@pytest.fixture
def tied_data(rng):
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(y * 0.9, 1.0), 1)
    return y, s


def test_auc_equals_pairwise_and_sklearn(tied_data):
    y, s = tied_data
    est = roc_auc(y, s)
    assert est.estimate == pytest.approx(pairwise_auc(y, s), abs=1e-12)
    assert est.estimate == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_delong_variance_equals_explicit_placements(tied_data):
    y, s = tied_data
    comp = delong_components(y, s)
    assert comp.covariance[0, 0] == pytest.approx(pairwise_delong_var(y, s), rel=1e-12)


def test_delong_variance_close_to_resampling_variance(rng):
    # Sampling variance of the AUC over fresh samples from a known model vs the mean DeLong variance.
    aucs, dvars = [], []
    for _ in range(400):
        y = np.r_[np.ones(40), np.zeros(60)].astype(int)
        s = rng.normal(y * 1.0, 1.0)
        comp = delong_components(y, s)
        aucs.append(comp.auc[0])
        dvars.append(comp.covariance[0, 0])
    ratio = np.var(aucs, ddof=1) / np.mean(dvars)
    assert 0.8 < ratio < 1.25  # 400 replicates: sd of a variance ratio ~ 0.07


def test_auc_invariant_to_monotone_transforms(tied_data):
    y, s = tied_data
    base = roc_auc(y, s)
    for t in (np.exp(s), 3 * s + 7, np.arctan(s), s**3):
        other = roc_auc(y, t)
        assert other.estimate == pytest.approx(base.estimate, abs=1e-12)
        assert other.ci_low == pytest.approx(base.ci_low, abs=1e-12)


def test_reversed_scores_give_one_minus_auc(tied_data):
    y, s = tied_data
    assert roc_auc(y, -s).estimate == pytest.approx(1 - roc_auc(y, s).estimate, abs=1e-12)


@pytest.mark.parametrize("method", ["delong", "bootstrap"])
def test_ci_contains_estimate_and_is_in_unit_interval(tied_data, method):
    y, s = tied_data
    est = roc_auc(y, s, method=method, n_boot=300)
    assert 0 <= est.ci_low <= est.estimate <= est.ci_high <= 1


def test_delong_ci_clipped_at_one():
    y = np.r_[np.ones(5), np.zeros(5)].astype(int)
    s = np.r_[np.arange(5) + 3.5, np.arange(5)].astype(float)  # one discordant pair: AUC 24/25
    est = roc_auc(y, s)
    assert est.ci_high == 1.0
    assert est.estimate < 1.0


def test_bootstrap_close_to_delong(rng):
    y = rng.integers(0, 2, 400)
    s = rng.normal(y * 1.0, 1.0)
    d = roc_auc(y, s)
    b = roc_auc(y, s, method="bootstrap", n_boot=2000, seed=1)
    assert b.extra["se"] == pytest.approx(d.extra["se"], rel=0.12)
    assert b.ci_low == pytest.approx(d.ci_low, abs=0.015)
    assert b.ci_high == pytest.approx(d.ci_high, abs=0.015)


def test_bootstrap_is_reproducible_and_seed_dependent(tied_data):
    y, s = tied_data
    a = roc_auc(y, s, method="bootstrap", n_boot=200, seed=3)
    b = roc_auc(y, s, method="bootstrap", n_boot=200, seed=3)
    c = roc_auc(y, s, method="bootstrap", n_boot=200, seed=4)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_cluster_bootstrap_wider_with_duplicated_rows(rng):
    # 100 patients each with 4 identical rows: the row bootstrap pretends n = 400, the cluster one knows n = 100.
    y1 = rng.integers(0, 2, 100)
    s1 = rng.normal(y1 * 1.0, 1.0)
    y, s, g = np.repeat(y1, 4), np.repeat(s1, 4), np.repeat(np.arange(100), 4)
    rows = roc_auc(y, s, method="bootstrap", n_boot=1000)
    clus = roc_auc(y, s, method="bootstrap", n_boot=1000, groups=g)
    single = roc_auc(y1, s1)  # DeLong on one row per patient
    assert clus.extra["clustered"] and not rows.extra["clustered"]
    assert clus.extra["se"] > 1.6 * rows.extra["se"]
    assert clus.extra["se"] == pytest.approx(single.extra["se"], rel=0.15)


def test_delong_refuses_groups(tied_data):
    y, s = tied_data
    with pytest.raises(ValueError, match="method='bootstrap'"):
        roc_auc(y, s, groups=np.arange(y.size))


def test_roc_curve_rule_score_at_threshold_is_positive():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.4, 0.8])
    c = roc_curve(y, s)
    i = int(np.flatnonzero(c.thresholds == 0.4)[0])
    assert c.tpr[i] == 1.0  # both positives have score >= 0.4
    assert c.fpr[i] == 0.5  # the negative with 0.4 is called positive too
    assert c.fpr[0] == 0 and c.tpr[0] == 0 and c.fpr[-1] == 1 and c.tpr[-1] == 1


def test_roc_band_covers_observed_curve(tied_data):
    y, s = tied_data
    band = roc_band(y, s, n_boot=300)
    assert band.fpr.shape == band.tpr_low.shape == (101,)
    assert np.all(band.tpr_low <= band.tpr_high)
    inside = (band.tpr_low - 1e-12 <= band.tpr) & (band.tpr <= band.tpr_high + 1e-12)
    assert inside.mean() > 0.95


def test_average_precision_and_pr_curve_match_sklearn(tied_data):
    y, s = tied_data
    ap = average_precision(y, s, n_boot=200)
    assert ap.estimate == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert ap.ci_low <= ap.estimate <= ap.ci_high
    pr = pr_curve(y, s)
    p_sk, r_sk, _ = skm.precision_recall_curve(y, s)
    np.testing.assert_allclose(pr.precision, p_sk)
    np.testing.assert_allclose(pr.recall, r_sk)
    assert pr.prevalence == pytest.approx(y.mean())


def test_weighted_ap_matches_sklearn_sample_weight(tied_data, rng):
    from nodescope.evaluation._bootstrap import bootstrap_weights
    from nodescope.evaluation._roc import _weighted_ap

    y, s = tied_data
    w = bootstrap_weights(y.astype(bool), n_boot=3, rng=rng)
    ours = _weighted_ap(y.astype(bool), s, w)
    ref = [skm.average_precision_score(y, s, sample_weight=wi) for wi in w]
    np.testing.assert_allclose(ours, ref, atol=1e-12)


# ---- undefined cases (docs/evaluation.md, "Undefined cases") ----

def test_one_class_auc_is_nan_with_note():
    est = roc_auc(np.ones(10, dtype=int), np.linspace(0, 1, 10))
    assert math.isnan(est.estimate) and math.isnan(est.ci_low)
    assert "both classes" in est.note
    assert not est.defined


def test_one_class_curve_raises():
    with pytest.raises(ValueError, match="0 negative"):
        roc_curve(np.ones(4, dtype=int), np.arange(4.0))
    with pytest.raises(ValueError, match="no positive"):
        pr_curve(np.zeros(4, dtype=int), np.arange(4.0))


def test_single_positive_gives_undefined_delong_variance():
    est = roc_auc(np.array([1, 0, 0, 0]), np.array([0.9, 0.1, 0.2, 0.95]))
    assert est.estimate == pytest.approx(2 / 3)
    assert math.isnan(est.ci_low)
    assert "fewer than 2" in est.note


@pytest.mark.parametrize(
    ("y", "s", "exc", "msg"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], ValueError, "only 0 and 1"),
        (["a", "b"], [0.1, 0.2], TypeError, "0/1"),
        ([0, 1], [0.1], ValueError, "has 1 values but y_true has 2"),
        ([0, 1], [0.1, np.nan], ValueError, "finite"),
        ([[0, 1]], [[0.1, 0.2]], ValueError, "1-D"),
    ],
)
def test_bad_inputs(y, s, exc, msg):
    with pytest.raises(exc, match=msg):
        roc_auc(y, s)


def test_bad_method_suggests_valid():
    with pytest.raises(ValueError, match="Did you mean 'delong'"):
        roc_auc([0, 1], [0.1, 0.2], method="delongg")  # type: ignore[arg-type]
