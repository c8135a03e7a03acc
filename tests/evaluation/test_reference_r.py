"""Values checked against R (pROC 1.18.0, rms 6.5.0); the script and its printed output are in reference/.

Every number below is copied from reference/reference_output.txt, produced by `Rscript reference.R`.
"""

from __future__ import annotations

import numpy as np
import pytest

from nodescope.evaluation import (
    binary_metrics,
    calibration_metrics,
    choose_threshold,
    compare_auc,
    compare_auc_unpaired,
    delong_components,
    hosmer_lemeshow,
    mcnemar_test,
    proportion_ci,
    roc_auc,
)

TOL = 1e-10


@pytest.mark.parametrize(
    ("column", "auc", "var", "lo", "hi"),
    [
        # r1 <- roc(a$y, a$s1, levels = c(0, 1), direction = "<"); auc(r1); var(r1); ci.auc(r1, method = "delong")
        ("s1", 0.868861607142857, 0.00192325776111576, 0.782907459535504, 0.95481575475021),
        # same for s2
        ("s2", 0.791852678571429, 0.00327387098607644, 0.679707948078739, 0.903997409064118),
    ],
)
def test_auc_delong_ci_matches_proc(data_binary, column, auc, var, lo, hi):
    est = roc_auc(data_binary.y, data_binary[column], method="delong")
    assert est.estimate == pytest.approx(auc, abs=TOL)
    assert est.extra["se"] ** 2 == pytest.approx(var, abs=TOL)
    assert (est.ci_low, est.ci_high) == pytest.approx((lo, hi), abs=TOL)
    assert est.method == "delong"


def test_auc_delong_ci_90_matches_proc(data_binary):
    # ci.auc(r1, method = "delong", conf.level = 0.90)
    est = roc_auc(data_binary.y, data_binary.s1, alpha=0.10)
    assert (est.ci_low, est.ci_high) == pytest.approx((0.796726612541589, 0.940996601744125), abs=TOL)


def test_unpaired_sample_auc_matches_proc(data_unpaired):
    # rb <- roc(b$y, b$s, levels = c(0, 1), direction = "<"); ci.auc(rb, method = "delong")
    est = roc_auc(data_unpaired.y, data_unpaired.s)
    assert est.estimate == pytest.approx(0.51984126984127, abs=TOL)
    assert (est.ci_low, est.ci_high) == pytest.approx((0.347250201910534, 0.692432337772006), abs=TOL)


def test_delong_covariance_matches_proc(data_binary):
    # var(r1), var(r2), cov(r1, r2, method = "delong")
    comp = delong_components(data_binary.y, np.column_stack([data_binary.s1, data_binary.s2]))
    expected = [[0.00192325776111576, 0.00136151645252915], [0.00136151645252915, 0.00327387098607644]]
    np.testing.assert_allclose(comp.covariance, expected, atol=TOL)


def test_paired_delong_test_matches_proc(data_binary):
    # roc.test(r1, r2, method = "delong", paired = TRUE): Z, p.value, conf.int
    res = compare_auc(data_binary.y, data_binary.s1, data_binary.s2)
    assert res.statistic == pytest.approx(1.54822052747448, abs=1e-9)
    assert res.p_value == pytest.approx(0.121569210776624, abs=1e-9)
    assert (res.difference.ci_low, res.difference.ci_high) == pytest.approx(
        (-0.0204802364470899, 0.174498093589947), abs=1e-9
    )


def test_unpaired_delong_test_matches_proc(data_binary, data_unpaired):
    # roc.test(r1, rb, method = "delong", paired = FALSE): D, df, p.value
    res = compare_auc_unpaired(data_binary.y, data_binary.s1, data_unpaired.y, data_unpaired.s)
    assert res.statistic == pytest.approx(3.54787825648456, abs=1e-9)
    assert res.df == pytest.approx(65.5268476640454, abs=1e-7)
    assert res.p_value == pytest.approx(0.000723576549872431, abs=1e-10)


def test_all_tied_matches_proc(data_binary):
    # roc(a$y, rep(0.5, 60), ...): auc = 0.5, var = 0, ci.auc = 0.5 0.5
    est = roc_auc(data_binary.y, np.full(len(data_binary), 0.5))
    assert (est.estimate, est.ci_low, est.ci_high) == (0.5, 0.5, 0.5)
    assert est.extra["se"] == 0.0
    assert "degenerate" in est.note


def test_val_prob_matches_rms(data_binary):
    # v <- val.prob(a$p, a$y, pl = FALSE)
    cal = calibration_metrics(data_binary.y, data_binary.p, n_boot=10)
    assert cal.recalibration_intercept == pytest.approx(-0.8823957505849894, abs=1e-6)  # "Intercept"
    assert cal.calibration_slope.estimate == pytest.approx(1.4146796176087755, abs=1e-6)  # "Slope"
    assert cal.brier.estimate == pytest.approx(0.1620268666666667, abs=TOL)  # "Brier"
    assert cal.emax == pytest.approx(0.1865314186893209, abs=1e-9)  # "Emax"
    assert cal.e90 == pytest.approx(0.1605410527291598, abs=1e-9)  # "E90"
    assert cal.eavg == pytest.approx(0.1073762793035260, abs=1e-9)  # "Eavg"
    assert cal.spiegelhalter_z == pytest.approx(-0.3197173017819252, abs=1e-9)  # "S:z"
    assert cal.spiegelhalter_p == pytest.approx(0.7491826427527463, abs=1e-9)  # "S:p"


def test_calibration_intercept_and_slope_match_glm(data_binary):
    # glm(y ~ 1 + offset(qlogis(p)), binomial); glm(y ~ qlogis(p), binomial); confint.default (Wald)
    cal = calibration_metrics(data_binary.y, data_binary.p, n_boot=10)
    assert cal.calibration_in_the_large.estimate == pytest.approx(-0.636047619163914, abs=1e-6)
    assert (cal.calibration_in_the_large.ci_low, cal.calibration_in_the_large.ci_high) == pytest.approx(
        (-1.24184940082757, -0.0302458375002588), abs=1e-6
    )
    assert (cal.calibration_slope.ci_low, cal.calibration_slope.ci_high) == pytest.approx((0.714877776065027, 2.11448147768172), abs=1e-6)


def test_hosmer_lemeshow_matches_hoslem_test(data_binary):
    # ResourceSelection::hoslem.test(y, p, g = 10) code (reference.R section 7)
    hl = hosmer_lemeshow(data_binary.y, data_binary.p, n_groups=10)
    assert hl.statistic == pytest.approx(12.8303385097837, abs=1e-9)
    assert hl.df == 8
    assert hl.p_value == pytest.approx(0.11782198488793, abs=1e-9)
    # group sizes / events as printed by xtabs (y0 + y1, y1)
    assert hl.table["n"].tolist() == [6, 6, 9, 3, 7, 6, 6, 5, 6, 6]
    assert hl.table["observed"].tolist() == [0, 0, 2, 1, 3, 4, 4, 2, 6, 6]
    assert hl.df_rule == "g-2"


def test_hosmer_lemeshow_external_validation_uses_g_df(data_binary):
    # Predictions from a model not fitted on these data: C on g df (Hosmer, Lemeshow & Sturdivant, Applied
    # Logistic Regression 3rd ed., ch. 5, external validation). Same C as hoslem.test;
    # R: pchisq(12.8303385097837, df = 10, lower.tail = FALSE) = 0.233313113860017
    hl = hosmer_lemeshow(data_binary.y, data_binary.p, n_groups=10, fitted_on_sample=False)
    assert hl.statistic == pytest.approx(12.8303385097837, abs=1e-9)
    assert hl.df == 10
    assert hl.df_rule == "g"
    assert hl.p_value == pytest.approx(0.233313113860017, abs=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "wilson", "cp"),
    [
        # prop.test(k, n, correct = FALSE)$conf.int ; binom.test(k, n)$conf.int
        (17, 23, (0.535299951625746, 0.874513839550137), (0.515948029597562, 0.897713866084642)),
        (0, 12, (0.0, 0.242494006655241), (0.0, 0.264648469397051)),
        (12, 12, (0.757505993344759, 1.0), (0.735351530602949, 1.0)),
    ],
)
def test_proportion_intervals_match_r(k, n, wilson, cp):
    w = proportion_ci(k, n, method="wilson")
    c = proportion_ci(k, n, method="clopper-pearson")
    assert (w.ci_low, w.ci_high) == pytest.approx(wilson, abs=1e-9)
    assert (c.ci_low, c.ci_high) == pytest.approx(cp, abs=1e-9)


def _paired_calls(n11: int, n10: int, n01: int, n00: int):
    a = np.r_[np.ones(n11), np.ones(n10), np.zeros(n01), np.zeros(n00)]
    b = np.r_[np.ones(n11), np.zeros(n10), np.ones(n01), np.zeros(n00)]
    return np.ones(a.size, dtype=int), a.astype(int), b.astype(int)


@pytest.mark.parametrize(
    ("method", "stat", "p"),
    [
        # mcnemar.test(matrix(c(11, 2, 9, 6), 2), correct = TRUE / FALSE); binom.test(9, 11)
        ("corrected", 3.27272727272727, 0.0704404292720882),
        ("uncorrected", 4.45454545454545, 0.0348084788118671),
        ("exact", 2.0, 0.0654296875),
    ],
)
def test_mcnemar_matches_r(method, stat, p):
    y, a, b = _paired_calls(11, 9, 2, 6)
    res = mcnemar_test(y, a, b, on="sensitivity", method=method)
    assert res.table == (11, 9, 2, 6)
    assert res.statistic == pytest.approx(stat, abs=1e-9)
    assert res.p_value == pytest.approx(p, abs=1e-9)


def test_table_and_youden_match_proc(data_binary):
    # tp fp fn tn at s1 >= 0.35: 25 12 3 20; coords(r1, "best", best.method = "youden"): 0.75, 0.7857, 0.78125
    m = binary_metrics(data_binary.y, data_binary.s1, threshold=0.35, n_boot=10)
    assert (m.table.tp, m.table.fp, m.table.fn, m.table.tn) == (25, 12, 3, 20)
    choice = choose_threshold(data_binary.y, data_binary.s1, method="youden")
    assert choice.sensitivity == pytest.approx(0.785714285714286, abs=1e-12)
    assert choice.specificity == pytest.approx(0.78125, abs=1e-12)
    # pROC reports the midpoint 0.75 between the scores 0.7 and 0.8; nodescope reports the observed score 0.8,
    # which classifies the choosing data identically (score >= 0.8 <=> score > 0.75 on this grid).
    assert choice.threshold == pytest.approx(0.8)
