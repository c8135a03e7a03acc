"""Threshold choice and the binary metrics at a threshold: formulas, intervals, undefined cases, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint

from nodescope.evaluation import ConfusionTable, binary_metrics, choose_threshold, proportion_ci


@pytest.fixture
def scores(rng):
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y * 1.2, 1.0), 2)
    return y, s


def test_youden_maximises_j_by_brute_force(scores):
    y, s = scores
    best = max(
        (np.mean(s[y == 1] >= t) + np.mean(s[y == 0] < t) - 1, t) for t in np.unique(s)
    )
    c = choose_threshold(y, s, method="youden")
    assert c.youden == pytest.approx(best[0], abs=1e-12)
    assert c.sensitivity == pytest.approx(np.mean(s[y == 1] >= c.threshold))


def test_sensitivity_target_gives_best_specificity(scores):
    y, s = scores
    c = choose_threshold(y, s, method="sensitivity", target=0.9)
    assert c.sensitivity >= 0.9
    cands = [t for t in np.unique(s) if np.mean(s[y == 1] >= t) >= 0.9]
    assert c.threshold == max(cands)


def test_specificity_target_gives_best_sensitivity(scores):
    y, s = scores
    c = choose_threshold(y, s, method="specificity", target=0.85)
    assert c.specificity >= 0.85
    cands = [t for t in np.unique(s) if np.mean(s[y == 0] < t) >= 0.85]
    assert c.threshold == min(cands)


def test_fixed_threshold_is_used_as_given(scores):
    y, s = scores
    c = choose_threshold(y, s, method="fixed", target=0.5)
    assert c.threshold == 0.5
    assert c.specificity == pytest.approx(np.mean(s[y == 0] < 0.5))


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"method": "sensitivity"}, "needs a numeric target"),
        ({"method": "sensitivity", "target": 1.5}, r"in \[0, 1\]"),
        ({"method": "youden", "target": 0.5}, "not used"),
        ({"method": "youdn"}, "Did you mean 'youden'"),
    ],
)
def test_choose_threshold_errors(scores, kwargs, msg):
    y, s = scores
    with pytest.raises(ValueError, match=msg):
        choose_threshold(y, s, **kwargs)


def test_choose_threshold_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold([1, 1, 1], [0.1, 0.2, 0.3])


def test_binary_metrics_formulas(scores):
    y, s = scores
    t = 0.6
    m = binary_metrics(y, s, threshold=t, n_boot=200)
    pred = s >= t
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert m.table == ConfusionTable(tp, fp, fn, tn)
    assert m.sensitivity.estimate == pytest.approx(tp / (tp + fn))
    assert m.specificity.estimate == pytest.approx(tn / (tn + fp))
    assert m.ppv.estimate == pytest.approx(skm.precision_score(y, pred))
    assert m.npv.estimate == pytest.approx(tn / (tn + fn))
    assert m.accuracy.estimate == pytest.approx(skm.accuracy_score(y, pred))
    assert m.balanced_accuracy.estimate == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m.f1.estimate == pytest.approx(skm.f1_score(y, pred))
    assert m.mcc.estimate == pytest.approx(skm.matthews_corrcoef(y, pred))
    sens, spec = tp / (tp + fn), tn / (tn + fp)
    assert m.lr_positive.estimate == pytest.approx(sens / (1 - spec))
    assert m.lr_negative.estimate == pytest.approx((1 - sens) / spec)
    assert m.dor.estimate == pytest.approx(tp * tn / (fp * fn))
    for e in m.estimates():
        assert e.ci_low <= e.estimate <= e.ci_high, e.name


def test_wilson_matches_statsmodels_and_is_uncorrected(scores):
    y, s = scores
    m = binary_metrics(y, s, threshold=0.6, n_boot=10)
    k, n = m.table.tp, m.table.tp + m.table.fn
    lo, hi = proportion_confint(k, n, method="wilson")
    assert (m.sensitivity.ci_low, m.sensitivity.ci_high) == pytest.approx((lo, hi))
    assert m.sensitivity.method == "wilson"
    # Wilson score formula without continuity correction, written out
    z = norm.ppf(0.975)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert (m.sensitivity.ci_low, m.sensitivity.ci_high) == pytest.approx((centre - half, centre + half))


def test_clopper_pearson_option(scores):
    y, s = scores
    m = binary_metrics(y, s, threshold=0.6, proportion_method="clopper-pearson", n_boot=10)
    assert m.specificity.method == "clopper-pearson"
    k, n = m.table.tn, m.table.tn + m.table.fp
    assert (m.specificity.ci_low, m.specificity.ci_high) == pytest.approx(proportion_confint(k, n, method="beta"))


def test_likelihood_ratio_log_method_simel():
    # Simel, Samsa & Matchar 1991: SE(log LR+) = sqrt(1/a - 1/(a+c) + 1/b - 1/(b+d)); a=TP, b=FP, c=FN, d=TN
    tp, fp, fn, tn = 40, 10, 10, 90
    y = np.r_[np.ones(tp + fn), np.zeros(fp + tn)].astype(int)
    s = np.r_[np.ones(tp), np.zeros(fn), np.ones(fp), np.zeros(tn)]
    m = binary_metrics(y, s, threshold=1, n_boot=10)
    lr = (40 / 50) / (10 / 100)
    se = math.sqrt(1 / 40 - 1 / 50 + 1 / 10 - 1 / 100)
    z = norm.ppf(0.975)
    assert m.lr_positive.estimate == pytest.approx(8.0)
    assert (m.lr_positive.ci_low, m.lr_positive.ci_high) == pytest.approx((lr * math.exp(-z * se), lr * math.exp(z * se)))
    se_dor = math.sqrt(1 / 40 + 1 / 10 + 1 / 10 + 1 / 90)
    assert m.dor.estimate == pytest.approx(36.0)
    assert m.dor.ci_low == pytest.approx(36 * math.exp(-z * se_dor))
    assert m.dor.method == "log"


def test_zero_cell_ratio_undefined_unless_corrected():
    y = np.array([1, 1, 1, 0, 0, 0])
    s = np.array([1, 1, 0, 0, 0, 0])  # FP = 0
    m = binary_metrics(y, s, threshold=1, n_boot=10)
    assert m.lr_positive.estimate == math.inf
    assert math.isnan(m.lr_positive.ci_low)
    assert "zero cell" in m.lr_positive.note
    c = binary_metrics(y, s, threshold=1, n_boot=10, ratio_correction=0.5)
    assert math.isfinite(c.lr_positive.ci_high)
    assert "Haldane" in c.lr_positive.note


def test_no_positive_call_ppv_is_nan_with_note(scores):
    y, s = scores
    m = binary_metrics(y, s, threshold=s.max() + 1, n_boot=50)
    assert m.table.tp == m.table.fp == 0
    assert math.isnan(m.ppv.estimate) and "no positive call" in m.ppv.note
    assert math.isnan(m.mcc.estimate) and "empty" in m.mcc.note
    assert m.sensitivity.estimate == 0.0
    assert m.f1.estimate == 0.0  # 2TP/(2TP+FP+FN) = 0/FN: defined


def test_no_reference_positive():
    m = binary_metrics(np.zeros(5, dtype=int), np.linspace(0, 1, 5), threshold=0.5, n_boot=20)
    assert math.isnan(m.sensitivity.estimate) and "no reference positive" in m.sensitivity.note
    assert m.specificity.estimate == pytest.approx(0.4)


def test_summary_and_dict(scores):
    y, s = scores
    m = binary_metrics(y, s, threshold=0.6, n_boot=20)
    frame = m.summary_frame()
    assert list(frame["name"]) == [
        "sensitivity", "specificity", "ppv", "npv", "accuracy", "balanced_accuracy", "f1", "mcc",
        "lr_positive", "lr_negative", "dor",
    ]
    d = m.to_dict()
    assert d["rule"] == "score >= threshold is positive"
    assert d["table"]["tp"] == m.table.tp


def test_threshold_type_error(scores):
    y, s = scores
    with pytest.raises(TypeError, match="threshold"):
        binary_metrics(y, s, threshold="0.5")  # type: ignore[arg-type]


def test_proportion_ci_errors_and_empty():
    assert math.isnan(proportion_ci(0, 0).estimate)
    with pytest.raises(ValueError, match="successes <= n"):
        proportion_ci(5, 3)
    with pytest.raises(ValueError, match="Did you mean 'wilson'"):
        proportion_ci(1, 3, method="wilsn")  # type: ignore[arg-type]


def test_likelihood_ratios_degenerate_when_all_calls_equal(scores):
    # Nothing called positive: sens = 0, spec = 1, LR- = (1 - 0)/1 = 1 and its Simel log-method SE is exactly 0
    # (1/FN - 1/(TP+FN) + 1/TN - 1/(FP+TN) = 0): no information, so no interval (nan) and a note; LR+ is 0/0.
    y, s = scores
    none = binary_metrics(y, s, threshold=s.max() + 1, n_boot=20)
    assert none.lr_negative.estimate == 1.0
    assert math.isnan(none.lr_negative.ci_low) and math.isnan(none.lr_negative.ci_high)
    assert "degenerate" in none.lr_negative.note
    assert math.isnan(none.lr_positive.estimate)
    # Everything called positive: the mirror case for LR+
    every = binary_metrics(y, s, threshold=s.min(), n_boot=20)
    assert every.table.fn == every.table.tn == 0
    assert every.lr_positive.estimate == 1.0
    assert math.isnan(every.lr_positive.ci_low) and math.isnan(every.lr_positive.ci_high)
    assert "degenerate" in every.lr_positive.note
    # a corrected table is no longer degenerate (0.5 in every cell)
    corrected = binary_metrics(y, s, threshold=s.max() + 1, n_boot=20, ratio_correction=0.5)
    assert math.isfinite(corrected.lr_negative.ci_low) and "Haldane" in corrected.lr_negative.note


def test_clustered_rows_get_cluster_bootstrap_proportion_intervals(rng):
    # Every patient twice (identical rows): Wilson on the 2N rows is ~1/sqrt(2) too narrow. With groups= the
    # sens/spec intervals come from the cluster bootstrap over patients and match the Wilson width of the
    # N single rows (binomial SE of N patients); with one row per patient groups= keeps Wilson.
    n = 300
    y = (rng.random(n) < 0.5).astype(int)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    ids = np.array([f"p{i}" for i in range(n)])
    single = binary_metrics(y, s, threshold=0.5, n_boot=20)
    dup = binary_metrics(np.repeat(y, 2), np.repeat(s, 2), threshold=0.5, n_boot=2000, groups=np.repeat(ids, 2),
                         seed=4)
    for name in ("sensitivity", "specificity", "accuracy"):
        a, b = getattr(single, name), getattr(dup, name)
        assert b.estimate == pytest.approx(a.estimate)
        assert b.ci_high - b.ci_low == pytest.approx(a.ci_high - a.ci_low, rel=0.2)
        assert "cluster bootstrap" in b.note and b.extra["clustered"] is True
    assert "independent" in dup.lr_positive.note
    one_row = binary_metrics(y, s, threshold=0.5, n_boot=20, groups=ids)
    assert one_row.sensitivity.method == "wilson"
    assert one_row.sensitivity.ci_low == single.sensitivity.ci_low
