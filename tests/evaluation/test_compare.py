"""Comparisons: DeLong paired test properties, McNemar edge cases, paired bootstrap differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from nodescope.evaluation import bootstrap_difference, compare_auc, mcnemar_test, roc_auc


@pytest.fixture
def two_scores(rng):
    y = rng.integers(0, 2, 300)
    s1 = rng.normal(y * 1.0, 1.0)
    s2 = s1 + rng.normal(0, 1.0, 300)
    return y, s1, s2


def test_identical_scores_give_z_zero_p_one(two_scores):
    y, s1, _ = two_scores
    res = compare_auc(y, s1, s1.copy())
    assert res.statistic == 0.0 and res.p_value == 1.0
    assert res.difference.estimate == 0.0


def test_difference_variance_from_covariance(two_scores):
    y, s1, s2 = two_scores
    res = compare_auc(y, s1, s2)
    v1, v2 = roc_auc(y, s1).extra["se"] ** 2, roc_auc(y, s2).extra["se"] ** 2
    cov = res.difference.extra["covariance"]
    assert cov[0][0] == pytest.approx(v1) and cov[1][1] == pytest.approx(v2)
    assert res.difference.extra["se"] ** 2 == pytest.approx(v1 + v2 - 2 * cov[0][1])
    assert 0 < res.correlation < 1


def test_bootstrap_difference_agrees_with_delong(two_scores):
    y, s1, s2 = two_scores
    d = compare_auc(y, s1, s2)
    b = bootstrap_difference(y, s1, s2, metric="auc", n_boot=2000, seed=2)
    assert b.estimate == pytest.approx(d.difference.estimate, abs=1e-12)
    assert b.extra["sd"] == pytest.approx(d.difference.extra["se"], rel=0.15)
    assert b.ci_low < b.estimate < b.ci_high


def test_bootstrap_difference_callable_matches_vectorised(two_scores):
    y, s1, s2 = two_scores
    fast = bootstrap_difference(y, s1, s2, metric="auc", n_boot=100, seed=5)
    slow = bootstrap_difference(y, s1, s2, metric=roc_auc_score, n_boot=100, seed=5)
    assert fast.estimate == pytest.approx(slow.estimate)
    assert (fast.ci_low, fast.ci_high) == pytest.approx((slow.ci_low, slow.ci_high))


def test_bootstrap_difference_threshold_metric(two_scores):
    y, s1, s2 = two_scores
    b = bootstrap_difference(y, s1, s2, metric="sensitivity", threshold_a=0.5, threshold_b=0.5, n_boot=200)
    expected = np.mean(s1[y == 1] >= 0.5) - np.mean(s2[y == 1] >= 0.5)
    assert b.estimate == pytest.approx(expected)
    with pytest.raises(ValueError, match="threshold_a"):
        bootstrap_difference(y, s1, s2, metric="f1")


def test_cluster_bootstrap_difference_runs(two_scores):
    y, s1, s2 = two_scores
    g = np.arange(y.size) // 3
    b = bootstrap_difference(y, s1, s2, groups=g, n_boot=200)
    assert b.extra["clustered"]


def test_mcnemar_no_discordant_pairs():
    y = np.ones(6, dtype=int)
    a = np.array([1, 1, 0, 0, 1, 0])
    res = mcnemar_test(y, a, a, method="exact")
    assert res.p_value == 1.0 and "no discordant" in res.difference.note
    res_c = mcnemar_test(y, a, a, method="corrected")
    assert math.isnan(res_c.p_value)


def test_mcnemar_on_specificity_uses_negatives():
    y = np.array([0, 0, 0, 0, 1])
    a = np.array([0, 0, 1, 1, 1])  # specificity 2/4
    b = np.array([0, 0, 0, 1, 0])  # specificity 3/4
    res = mcnemar_test(y, a, b, on="specificity")
    assert res.proportion_a == 0.5 and res.proportion_b == 0.75
    assert res.table == (2, 0, 1, 1)
    assert res.difference.estimate == pytest.approx(-0.25)


def test_mcnemar_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        mcnemar_test([1, 0], [1, 0], [1])


def test_bootstrap_metric_callable_drops_undefined_replicates():
    from sklearn.metrics import recall_score

    from nodescope.evaluation import bootstrap_metric

    y = np.array([1, 0, 0, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])

    def auc(yy, ss):
        if np.unique(yy).size < 2:
            raise ValueError("one class")  # what many metric functions do on a one-class replicate
        return roc_auc_score(yy, ss)

    est = bootstrap_metric(y, s, auc, name="auc", n_boot=200, stratified=False, seed=0)
    assert est.estimate == pytest.approx(roc_auc_score(y, s))
    assert 0 < est.extra["n_boot_used"] < 200
    assert "dropped" in est.note
    strat = bootstrap_metric(y, s, lambda a, b: recall_score(a, b >= 0.5), n_boot=50)
    assert strat.extra["n_boot_used"] == 50


def test_patient_level_fusion_pairs_with_per_image_model(tmp_path):
    """A late-fusion model scores the patient (no image of its own): it pairs with a per-image model on patient_id
    (and lesion_id), instead of finding no common case because one side's image column is empty."""
    import pandas as pd

    from nodescope.evaluation import evaluate_predictions, read_predictions

    rng = np.random.default_rng(3)
    n = 40
    y = np.array(["pos", "neg"] * (n // 2))
    rows = []
    for i in range(n):
        s_img = rng.uniform(0.6, 1) if y[i] == "pos" else rng.uniform(0, 0.7)
        s_fus = rng.uniform(0.5, 1) if y[i] == "pos" else rng.uniform(0, 0.6)
        rows.append(dict(patient_id=f"P{i:02d}", y_true=y[i], p_pos=s_img, p_neg=1 - s_img, split="cv", fold=i % 2,
                         model="cnn", run_id="r", image=f"img/P{i:02d}.png", lesion_id=f"P{i:02d}_L1"))
        rows.append(dict(patient_id=f"P{i:02d}", y_true=y[i], p_pos=s_fus, p_neg=1 - s_fus, split="cv", fold=i % 2,
                         model="fusion", run_id="r", image="", lesion_id=f"P{i:02d}_L1"))
    path = tmp_path / "predictions.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    run = evaluate_predictions(read_predictions(path, positive="pos"), compare=("fusion", "cnn"), n_boot=20)
    doc = next(d for d in run.metrics["comparisons"] if d["split"] == "cv")
    assert doc["n_paired"] == n and doc["n_only_a"] == 0 and doc["n_only_b"] == 0
    # the DeLong AUCs of the pair are the two models' own AUCs on all the cases
    from nodescope.evaluation import roc_auc

    yy = (y == "pos").astype(int)
    assert np.isclose(doc["auc"]["auc_a"], roc_auc(yy, np.array([r["p_pos"] for r in rows[1::2]])).estimate)
