"""Statistics API 1.0 (issue 15), evaluation side: val.prob indices, Wilson CC, DeLong variance, tied optima,
McNemar on accuracy, HL non-events, DCA counts, n_boot=0 and the results-object habit.

Every reference number is copied from reference/evaluation_api15.out, produced by
``Rscript evaluation_api15.R`` (R 4.2.2, pROC 1.18.0, rms 6.5.0) on reference/data_binary.csv.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation import (
    AucEstimate,
    average_precision,
    binary_metrics,
    calibration_metrics,
    choose_threshold,
    decision_curve,
    hosmer_lemeshow,
    mcnemar_paired,
    mcnemar_test,
    mrmc_analysis,
    proportion_ci,
    proportion_cis,
    roc_auc,
    val_prob,
)

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(REF / "data_binary.csv")


# evaluation_api15.out section 1: print(val.prob(a$p, a$y, pl = FALSE))
VAL_PROB_R = {
    "Dxy": 0.7377232142857143, "C (ROC)": 0.8688616071428571, "R2": 0.4466366785291194,
    "D": 0.3905195791199285, "D:Chi-sq": 24.4311747471957119, "U": 0.0640772222737654,
    "U:Chi-sq": 5.8446333364259218, "U:p": 0.0538088854594255, "Q": 0.3264423568461632,
    "Brier": 0.1620268666666667, "Intercept": -0.8823957505849894, "Slope": 1.4146796176087755,
    "Emax": 0.1865314186893209, "E90": 0.1605410527291598, "Eavg": 0.1073762793035260,
    "S:z": -0.3197173017819252, "S:p": 0.7491826427527463,
}


def test_val_prob_matches_rms(data: pd.DataFrame) -> None:
    v = val_prob(data.y, data.p)
    got = v.as_r_vector()
    assert list(got) == ["Dxy", "C (ROC)", "R2", "D", "D:Chi-sq", "D:p", "U", "U:Chi-sq", "U:p", "Q", "Brier",
                         "Intercept", "Slope", "Emax", "E90", "Eavg", "S:z", "S:p"]
    for key, ref in VAL_PROB_R.items():
        # closed forms to 1e-10; the two fitted coefficients (IRLS in statsmodels vs lrm.fit) to 1e-6 as before
        tol = 1e-6 if key in ("Intercept", "Slope") else 1e-10
        assert got[key] == pytest.approx(ref, abs=tol), key
    # section 1b: D:p on 1 df (rms 6.5 prints NA), SEs of the recalibration fit, CITL, SE of C (pROC var)
    assert v.d_p == pytest.approx(7.70123549487245e-07, rel=1e-8)
    assert v.recalibration_intercept.extra["se"] == pytest.approx(0.406482466461748, abs=1e-5)
    assert v.calibration_slope.extra["se"] == pytest.approx(0.357049756015867, abs=1e-5)
    assert v.calibration_in_the_large.estimate == pytest.approx(-0.636047619163914, abs=1e-6)
    assert v.calibration_in_the_large.extra["se"] == pytest.approx(0.309088221233728, abs=1e-6)
    assert v.c_index.extra["se"] == pytest.approx(0.0438549627877594, abs=1e-12)
    assert v.dxy.extra["se"] == pytest.approx(0.0877099255755187, abs=1e-12)
    # the two intercepts are different things and differ here
    assert abs(v.recalibration_intercept.estimate - v.calibration_in_the_large.estimate) > 0.2


def test_val_prob_results_object(data: pd.DataFrame) -> None:
    v = val_prob(data.y, data.p)
    frame = v.to_frame()
    assert frame.index[0] == "Dxy" and frame.loc["Slope", "name"] == "calibration_slope"
    assert frame.loc["Slope", "ci_low"] < frame.loc["Slope", "estimate"] < frame.loc["Slope", "ci_high"]
    text = v.summary()
    assert "D:Chi-sq" in text and "CITL (slope 1)" in text
    doc = json.loads(json.dumps(v.to_dict()))
    assert doc["val_prob"]["Brier"] == pytest.approx(VAL_PROB_R["Brier"], abs=1e-12)


def test_val_prob_undefined_cases_are_nan_with_a_note() -> None:
    v = val_prob([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])  # logit(p) separates the outcomes: no recalibration slope
    assert math.isnan(v.calibration_slope.estimate) and math.isnan(v.u)
    assert "separates" in v.note
    assert v.c_index.estimate == 1.0
    w = val_prob([1, 1, 1], [0.2, 0.5, 0.7])  # one outcome class
    assert math.isnan(w.c_index.estimate) and math.isnan(w.r2)


# evaluation_api15.out section 2: prop.test(x, n)$conf.int, correct = TRUE and FALSE, conf.level 0.95 and 0.9
PROP_TEST_R = [
    (7, 20, (0.163086679716309, 0.590510433848573), (0.181191824101082, 0.567145723314764),
     (0.182833964949189, 0.557672770853769)),
    (0, 10, (0.0, 0.344537218306922), (0.0, 0.277532799862889), (0.0, 0.284737387717655)),
    (10, 10, (0.655462781693077, 1.0), (0.722467200137111, 1.0), (0.715262612282345, 1.0)),
    (27, 30, (0.723236815551296, 0.973811707723456), (0.743789174208159, 0.965400111252666),
     (0.753996603548075, 0.968842840298474)),
    (1, 3, (0.017652794278653, 0.874665528089737), (0.061491944720396, 0.792340399197952),
     (0.023326647184133, 0.844309299234537)),
    (5, 10, (0.236593090512564, 0.763406909487436), (0.236593090512564, 0.763406909487436),
     (0.269271821138267, 0.730728178861733)),
    (12, 25, (0.283356979717478, 0.682477567757689), (0.300312859541130, 0.665014830496432),
     (0.308110155620999, 0.656247804789420)),
]


@pytest.mark.parametrize(("x", "n", "cc", "plain", "cc90"), PROP_TEST_R)
def test_wilson_cc_matches_prop_test(x: int, n: int, cc: tuple, plain: tuple, cc90: tuple) -> None:
    e = proportion_ci(x, n, method="wilson-cc")
    assert (e.ci_low, e.ci_high) == pytest.approx(cc, abs=1e-12)
    p = proportion_ci(x, n, method="wilson")
    assert (p.ci_low, p.ci_high) == pytest.approx(plain, abs=1e-12)
    e90 = proportion_ci(x, n, method="wilson-cc", alpha=0.1)
    assert (e90.ci_low, e90.ci_high) == pytest.approx(cc90, abs=1e-12)
    assert e.ci_low <= e.estimate <= e.ci_high


def test_several_interval_methods_in_one_call() -> None:
    frame = proportion_cis(7, 20, methods=("wilson", "wilson-cc", "clopper-pearson", "jeffreys"))
    assert frame["method"].tolist() == ["wilson", "wilson-cc", "clopper-pearson", "jeffreys"]
    # binom.test(7, 20)$conf.int (evaluation_api15.out section 2)
    cp = frame.set_index("method").loc["clopper-pearson"]
    assert (cp.ci_low, cp.ci_high) == pytest.approx((0.153909204784541, 0.592188534532828), abs=1e-12)
    # the continuity-corrected interval contains the plain one
    w, wc = frame.iloc[0], frame.iloc[1]
    assert wc.ci_low <= w.ci_low and wc.ci_high >= w.ci_high
    with pytest.raises(StatisticsInputError, match=r"wilsn"):
        proportion_cis(7, 20, methods=("wilsn",))
    with pytest.raises(StatisticsInputError, match="repeated"):
        proportion_cis(7, 20, methods=("wilson", "wilson"))


def test_binary_metrics_accepts_wilson_cc(data: pd.DataFrame) -> None:
    m = binary_metrics(data.y, data.s1, threshold=0.0, proportion_method="wilson-cc", n_boot=0)
    ref = proportion_ci(m.table.tp, m.table.tp + m.table.fn, method="wilson-cc")
    assert (m.sensitivity.ci_low, m.sensitivity.ci_high) == (ref.ci_low, ref.ci_high)


def test_roc_auc_exposes_delong_variance(data: pd.DataFrame) -> None:
    # evaluation_api15.out section 3: var(roc(y, s1)) = 0.00192325776111576
    e = roc_auc(data.y, data.s1)
    assert isinstance(e, AucEstimate) and isinstance(e, Estimate)
    assert e.variance == pytest.approx(0.00192325776111576, abs=1e-14)
    assert e.se == pytest.approx(math.sqrt(0.00192325776111576), abs=1e-14)
    b = roc_auc(data.y, data.s1, method="bootstrap", n_boot=50)
    assert b.variance == e.variance  # the DeLong variance is there whatever the interval method
    assert (e.n_positive, e.n_negative) == (28, 32)
    assert json.loads(json.dumps(e.to_dict()))["variance"] == pytest.approx(e.variance)
    assert "AUC" in e.summary() and e.to_frame().loc[0, "variance_delong"] == e.variance
    one = roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    assert math.isnan(one.variance) and one.to_dict()["variance"] is None


def test_choose_threshold_lists_tied_optima() -> None:
    # evaluation_api15.out section 4: coords(roc, "best", best.method = "youden") gives two rows
    # (sens 1.0, spec 0.6, tp 5, fp 2, tn 3, fn 0) and (0.8, 0.8, 4, 1, 4, 1); pROC thresholds are midpoints
    # (3.5, 5.5), nodescope's are the lowest score called positive (4, 6)
    y = [0, 0, 0, 1, 0, 1, 1, 0, 1, 1]
    s = list(range(1, 11))
    c = choose_threshold(y, s)
    rows = c.to_frame()[["threshold", "sensitivity", "specificity", "tp", "fp", "tn", "fn"]].values.tolist()
    assert rows == [[6, 0.8, 0.8, 4, 1, 4, 1], [4, 1.0, 0.6, 5, 2, 3, 0]]
    assert c.threshold == 6 and c.table is not None and c.table.tp == 4
    assert "2 tied optima" in c.summary()
    f = choose_threshold(y, s, method="fixed", target=5.5)
    assert len(f.optima) == 1 and f.table is not None and f.table.tn == 4


def test_mcnemar_on_accuracy_matches_mcnemar_test(data: pd.DataFrame) -> None:
    # evaluation_api15.out section 5: table 37 6 / 5 12; corrected X2 = 0, p = 1; uncorrected X2 = 0.0909..,
    # p = 0.763024600552995; exact binom.test p = 1
    a, b = data.s1 >= 0, data.s2 >= 0
    r = mcnemar_test(data.y, a, b, on="accuracy", method="corrected", labels=("s1", "s2"))
    assert r.table == (37, 6, 5, 12)
    assert (r.statistic, r.p_value) == (0.0, 1.0)
    u = mcnemar_test(data.y, a, b, on="accuracy", method="uncorrected")
    assert u.statistic == pytest.approx(0.0909090909090909, abs=1e-14)
    assert u.p_value == pytest.approx(0.763024600552995, abs=1e-12)
    assert mcnemar_test(data.y, a, b, on="accuracy").p_value == pytest.approx(1.0)
    frame = r.to_frame()
    assert frame.loc["s1 correct", "s2 wrong"] == 6 and frame.loc["total", "total"] == 60
    assert "McNemar" in r.summary()
    # the general form gives the same numbers from the two outcome vectors
    g = mcnemar_paired(a == (data.y == 1), b == (data.y == 1), method="uncorrected")
    assert (g.table, g.statistic, g.on) == (u.table, u.statistic, "outcome")


def test_mcnemar_paired_rejects_bad_input() -> None:
    with pytest.raises(StatisticsInputError, match="same length"):
        mcnemar_paired([0, 1, 1], [0, 1])
    with pytest.raises(StatisticsInputError, match="labels"):
        mcnemar_paired([0, 1], [1, 1], labels=("only one",))  # type: ignore[arg-type]


def test_hosmer_lemeshow_table_has_events_and_nonevents(data: pd.DataFrame) -> None:
    # evaluation_api15.out section 6 (hoslem.test code): y0, y1, yhat0, yhat1 per group
    hl = hosmer_lemeshow(data.y, data.p)
    t = hl.to_frame()
    assert t["observed_nonevents"].tolist() == [6, 6, 7, 2, 4, 2, 2, 3, 0, 0]
    assert t["observed"].tolist() == [0, 0, 2, 1, 3, 4, 4, 2, 6, 6]
    assert t["expected_nonevents"].round(3).tolist() == [5.266, 4.659, 5.825, 1.474, 2.876, 1.925, 1.421, 0.821,
                                                        0.734, 0.385]
    assert t["expected"].round(3).tolist() == [0.734, 1.341, 3.175, 1.526, 4.124, 4.075, 4.579, 4.179, 5.266,
                                              5.615]
    assert hl.statistic == pytest.approx(12.8303385097837, abs=1e-10)
    assert "X-squared" in hl.summary()


def test_decision_curve_table_has_tp_fp(data: pd.DataFrame) -> None:
    # evaluation_api15.out section 7 (dcurves::dca formula in base R)
    ref = [(0.1, 28, 29, 0.412962962962963, 0.407407407407407), (0.2, 28, 26, 0.358333333333333, 0.333333333333333),
           (0.3, 28, 17, 0.345238095238095, 0.238095238095238), (0.4, 27, 16, 0.272222222222222, 0.111111111111111),
           (0.5, 25, 12, 0.216666666666667, -0.066666666666667)]
    d = decision_curve(data.y, data.p, thresholds=[r[0] for r in ref], n_boot=0)
    f = d.to_frame()
    assert f["tp"].tolist() == [r[1] for r in ref] and f["fp"].tolist() == [r[2] for r in ref]
    assert f["net_benefit"].tolist() == pytest.approx([r[3] for r in ref], abs=1e-14)
    assert f["treat_all"].tolist() == pytest.approx([r[4] for r in ref], abs=1e-14)
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["tp"] == [r[1] for r in ref] and doc["net_benefit_low"] == [None] * 5


def test_metric_functions_run_without_bootstrap(data: pd.DataFrame) -> None:
    m = binary_metrics(data.y, data.s1, threshold=0.0, n_boot=0)
    assert m.f1.defined and math.isnan(m.f1.ci_low) and "n_boot = 0" in m.f1.note
    assert m.sensitivity.ci_low < m.sensitivity.estimate  # Wilson needs no bootstrap
    ref = binary_metrics(data.y, data.s1, threshold=0.0, n_boot=20)
    assert m.f1.estimate == ref.f1.estimate  # the point estimate does not depend on n_boot
    c = calibration_metrics(data.y, data.p, n_boot=0)
    assert c.brier.estimate == pytest.approx(VAL_PROB_R["Brier"], abs=1e-12) and math.isnan(c.brier.ci_low)
    ap = average_precision(data.y, data.s1, n_boot=0)
    assert ap.defined and math.isnan(ap.ci_high)
    with pytest.raises(StatisticsInputError, match="n_boot must be >= 0"):
        binary_metrics(data.y, data.s1, threshold=0.0, n_boot=-1)


def test_results_objects_print_frame_and_serialise(data: pd.DataFrame) -> None:
    m = binary_metrics(data.y, data.s1, threshold=0.0, n_boot=0)
    assert m.to_frame().equals(m.summary_frame())
    assert "reference positive" in m.summary()
    c = calibration_metrics(data.y, data.p, n_boot=0)
    assert "calibration_slope" in c.summary()
    json.dumps(c.to_dict())
    rng = np.random.default_rng(3)
    truth = np.repeat([0, 1], 10)
    ratings = rng.normal(size=(2, 3, 20)) + truth
    r = mrmc_analysis(truth, ratings, modalities=("A", "B"))
    assert r.to_frame().equals(r.summary_frame())
    assert "global F" in r.summary()
    json.dumps(r.to_dict())


def test_val_prob_leaves_p_0_and_1_out_of_the_logistic_indices_only(data: pd.DataFrame) -> None:
    # evaluation_api15.out section 8: val.prob with p[1] = 0 and p[2] = 1
    ref = {"Dxy": 0.7202380952380952, "C (ROC)": 0.8601190476190477, "R2": 0.4279583274731703,
           "D": 0.3696592612140384, "D:Chi-sq": 22.4402371504142266, "U": 0.0583999925247848,
           "U:Chi-sq": 5.3871995664375163, "U:p": 0.0676370219935788, "Q": 0.3112592686892536,
           "Brier": 0.1780404000000000, "Intercept": -0.8633771209154448, "Slope": 1.3956832532349404,
           "Emax": 0.1604705313469273, "E90": 0.1481560119634372, "Eavg": 0.1212256957948828,
           "S:z": 0.4786686296453309, "S:p": 0.6321743862493296}
    p = data.p.to_numpy().copy()
    p[0], p[1] = 0.0, 1.0
    v = val_prob(data.y, p)
    got = v.as_r_vector()
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, abs=1e-6 if key in ("Intercept", "Slope") else 1e-10), key
    assert v.n == 58 and "2 row(s)" in v.note


def test_bootstrap_metric_and_multiclass_run_without_bootstrap() -> None:
    from nodescope.evaluation import bootstrap_metric, multiclass_metrics

    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    s = np.array([0.1, 0.8, 0.4, 0.35, 0.9, 0.2, 0.7, 0.6])
    e = bootstrap_metric(y, s, lambda t, u: float(np.mean((u >= 0.5) == t)), n_boot=0)
    assert e.estimate == 0.75 and math.isnan(e.ci_low) and "n_boot = 0" in e.note
    classes = np.array(["a", "b", "c"] * 4)
    prob = np.tile(np.eye(3), (4, 1)) * 0.7 + 0.1
    mm = multiclass_metrics(classes, prob, classes=["a", "b", "c"], n_boot=0)
    assert mm.accuracy.estimate == 1.0 and math.isnan(mm.macro_f1.ci_low)


def test_old_calibration_names_warn_and_give_the_same_value(data: pd.DataFrame) -> None:
    c = calibration_metrics(data.y, data.p, n_boot=0)
    with pytest.warns(DeprecationWarning, match="calibration_in_the_large"):
        assert c.intercept is c.calibration_in_the_large
    with pytest.warns(DeprecationWarning, match="calibration_slope"):
        assert c.slope is c.calibration_slope
    assert c.calibration_in_the_large.name == "calibration_in_the_large"
    # val_prob and calibration_metrics spell the same concepts the same way, with the same numbers
    v = val_prob(data.y, data.p)
    assert v.calibration_slope.estimate == c.calibration_slope.estimate
    assert v.calibration_in_the_large.estimate == c.calibration_in_the_large.estimate
    assert v.recalibration_intercept.estimate == c.recalibration_intercept
