"""Univariate random-effects pooling against metafor::rma (tests/meta/reference/meta_reference.R, block 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _dta_data import frame

from nodescope.meta import UNIVARIATE_MEASURES, univariate_pool

# R: c <- counts with 0.5 added to all cells of cohorts having a zero cell (escalc add = 1/2, to = "only0");
#    f <- rma(yi, vi, method = "DL"/"REML", control = list(threshold = 1e-12)); p <- predict(f)
#    values: coef(f), f$se, f$tau2, f$QE, f$I2, p$pi.lb, p$pi.ub (metafor 3.8.1)
R_UNI = {
    ('AuditC', 'log_dor', 'DL'): {'mu': 3.330185283, 'se': 0.2038928859, 'tau2': 0.3385771162, 'Q': 54.58322467, 'I2': 76.18315869, 'pi_lb': 2.121744816, 'pi_ub': 4.53862575},
    ('AuditC', 'log_dor', 'REML'): {'mu': 3.383327601, 'se': 0.2273536853, 'tau2': 0.457270538, 'Q': 54.58322467, 'I2': 81.20324246, 'pi_lb': 1.985060892, 'pi_ub': 4.781594309},
    ('AuditC', 'logit_sens', 'DL'): {'mu': 1.955509205, 'se': 0.2257372172, 'tau2': 0.4656415682, 'Q': 82.17492938, 'I2': 84.18008984, 'pi_lb': 0.546788777, 'pi_ub': 3.364229634},
    ('AuditC', 'logit_sens', 'REML'): {'mu': 2.205336989, 'se': 0.3523942766, 'tau2': 1.40004459, 'Q': 82.17492938, 'I2': 94.11733491, 'pi_lb': -0.214425939, 'pi_ub': 4.625099917},
    ('AuditC', 'logit_spec', 'DL'): {'mu': 1.280871411, 'se': 0.2645940231, 'tau2': 0.9595313026, 'Q': 2014.511804, 'I2': 99.35468236, 'pi_lb': -0.7078318119, 'pi_ub': 3.269574633},
    ('AuditC', 'logit_spec', 'REML'): {'mu': 1.275096973, 'se': 0.179744366, 'tau2': 0.432316706, 'Q': 2014.511804, 'I2': 98.57889467, 'pi_lb': -0.06088087768, 'pi_ub': 2.611074824},
    ('AuditC', 'log_lr_pos', 'DL'): {'mu': 1.402333988, 'se': 0.1531387461, 'tau2': 0.3135097405, 'Q': 887.6211031, 'I2': 98.53541112, 'pi_lb': 0.2646070282, 'pi_ub': 2.540060948},
    ('AuditC', 'log_lr_pos', 'REML'): {'mu': 1.390777835, 'se': 0.1070808, 'tau2': 0.1467737974, 'Q': 887.6211031, 'I2': 96.92282653, 'pi_lb': 0.6111158511, 'pi_ub': 2.170439819},
    ('AuditC', 'log_lr_neg', 'DL'): {'mu': -1.748982083, 'se': 0.1654536601, 'tau2': 0.2196133664, 'Q': 66.00352927, 'I2': 80.30408352, 'pi_lb': -2.723043327, 'pi_ub': -0.7749208388},
    ('AuditC', 'log_lr_neg', 'REML'): {'mu': -1.94472962, 'se': 0.2435571214, 'tau2': 0.5942575296, 'Q': 66.00352927, 'I2': 91.68923523, 'pi_lb': -3.529245773, 'pi_ub': -0.3602134667},
    ('Dementia', 'log_dor', 'DL'): {'mu': 3.517414817, 'se': 0.1656182258, 'tau2': 0.663601675, 'Q': 244.4026089, 'I2': 86.90685008, 'pi_lb': 1.888130493, 'pi_ub': 5.14669914},
    ('Dementia', 'log_dor', 'REML'): {'mu': 3.538193641, 'se': 0.1786990157, 'tau2': 0.8009591491, 'Q': 244.4026089, 'I2': 88.90304387, 'pi_lb': 1.749472816, 'pi_ub': 5.326914467},
    ('Dementia', 'logit_sens', 'DL'): {'mu': 1.314523327, 'se': 0.13563656, 'tau2': 0.4929179914, 'Q': 384.1907477, 'I2': 91.6708041, 'pi_lb': -0.08697463822, 'pi_ub': 2.716021292},
    ('Dementia', 'logit_sens', 'REML'): {'mu': 1.328123067, 'se': 0.1498924462, 'tau2': 0.6204174989, 'Q': 384.1907477, 'I2': 93.26725939, 'pi_lb': -0.2433785052, 'pi_ub': 2.89962464},
    ('Dementia', 'logit_spec', 'DL'): {'mu': 1.966423639, 'se': 0.1155745961, 'tau2': 0.359330741, 'Q': 825.4211501, 'I2': 96.12319117, 'pi_lb': 0.769900977, 'pi_ub': 3.162946302},
    ('Dementia', 'logit_spec', 'REML'): {'mu': 2.061573552, 'se': 0.1742267252, 'tau2': 0.892243113, 'Q': 825.4211501, 'I2': 98.40169393, 'pi_lb': 0.1789895638, 'pi_ub': 3.944157541},
    ('Dementia', 'log_lr_pos', 'DL'): {'mu': 1.848091812, 'se': 0.09529963943, 'tau2': 0.2345393507, 'Q': 714.0017797, 'I2': 95.51821845, 'pi_lb': 0.8806924798, 'pi_ub': 2.815491144},
    ('Dementia', 'log_lr_pos', 'REML'): {'mu': 1.906373835, 'se': 0.1260025349, 'tau2': 0.4422023274, 'Q': 714.0017797, 'I2': 97.57180531, 'pi_lb': 0.5798401995, 'pi_ub': 3.23290747},
    ('Dementia', 'log_lr_neg', 'DL'): {'mu': -1.422443659, 'se': 0.09908986283, 'tau2': 0.2541229858, 'Q': 371.7481038, 'I2': 91.39202065, 'pi_lb': -2.429380352, 'pi_ub': -0.4155069655},
    ('Dementia', 'log_lr_neg', 'REML'): {'mu': -1.430430486, 'se': 0.1050104621, 'tau2': 0.2910815004, 'Q': 371.7481038, 'I2': 92.40192946, 'pi_lb': -2.507713235, 'pi_ub': -0.3531477371},
    ('skin_tests', 'log_dor', 'DL'): {'mu': 2.463032281, 'se': 0.5784098517, 'tau2': 2.391639744, 'Q': 36.96925853, 'I2': 75.65544899, 'pi_lb': -0.7731037178, 'pi_ub': 5.69916828},
    ('skin_tests', 'log_dor', 'REML'): {'mu': 2.467714199, 'se': 0.5911523465, 'tau2': 2.53685101, 'Q': 36.96925853, 'I2': 76.72460675, 'pi_lb': -0.862097973, 'pi_ub': 5.797526372},
    ('skin_tests', 'logit_sens', 'DL'): {'mu': -1.030217853, 'se': 0.4839180279, 'tau2': 1.711165121, 'Q': 37.42414347, 'I2': 75.95135342, 'pi_lb': -3.763887609, 'pi_ub': 1.703451903},
    ('skin_tests', 'logit_sens', 'REML'): {'mu': -1.029893271, 'se': 0.4947831345, 'tau2': 1.815731239, 'Q': 37.42414347, 'I2': 77.01800435, 'pi_lb': -3.843340562, 'pi_ub': 1.783554021},
    ('skin_tests', 'logit_spec', 'DL'): {'mu': 3.507150222, 'se': 0.5914582808, 'tau2': 3.151968275, 'Q': 231.6152984, 'I2': 96.11424631, 'pi_lb': -0.1605447751, 'pi_ub': 7.174845219},
    ('skin_tests', 'logit_spec', 'REML'): {'mu': 3.477682089, 'se': 0.4994871893, 'tau2': 2.159895649, 'Q': 231.6152984, 'I2': 94.42889336, 'pi_lb': 0.4353892092, 'pi_ub': 6.519974968},
    ('skin_tests', 'log_lr_pos', 'DL'): {'mu': 2.074587545, 'se': 0.5236984118, 'tau2': 2.124238033, 'Q': 63.15922215, 'I2': 85.75029949, 'pi_lb': -0.9608253643, 'pi_ub': 5.110000453},
    ('skin_tests', 'log_lr_pos', 'REML'): {'mu': 2.069162242, 'se': 0.492798648, 'tau2': 1.821005686, 'Q': 63.15922215, 'I2': 83.76273687, 'pi_lb': -0.7465470072, 'pi_ub': 4.884871492},
    ('skin_tests', 'log_lr_neg', 'DL'): {'mu': -0.1113608136, 'se': 0.05278809449, 'tau2': 0.01020855656, 'Q': 20.17432356, 'I2': 55.38883883, 'pi_lb': -0.3347893104, 'pi_ub': 0.1120676831},
    ('skin_tests', 'log_lr_neg', 'REML'): {'mu': -0.08824888517, 'se': 0.04235720789, 'tau2': 0.00496905981, 'Q': 20.17432356, 'I2': 37.6694661, 'pi_lb': -0.2494336453, 'pi_ub': 0.07293587498},
}


@pytest.mark.parametrize("key", sorted(R_UNI))
def test_matches_metafor_rma(key: tuple[str, str, str]) -> None:
    name, measure, method = key
    ref = R_UNI[key]
    r = univariate_pool(frame(name), measure, method=method)  # type: ignore[arg-type]
    got = {"mu": r.mu, "se": r.se, "tau2": r.tau2, "Q": r.q, "I2": r.i2_percent,
           "pi_lb": np.log(r.prediction.ci_low) if measure.startswith("log_") else np.log(r.prediction.ci_low / (1 - r.prediction.ci_low)),
           "pi_ub": np.log(r.prediction.ci_high) if measure.startswith("log_") else np.log(r.prediction.ci_high / (1 - r.prediction.ci_high))}
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, abs=1e-4, rel=1e-5), k


def test_correction_recorded_and_default_rule_matches_escalc() -> None:
    # R: es <- escalc("OR", ai = TP, bi = FN, ci = FP, di = TN, data = AuditC); sum(es$yi); sum(es$vi)
    r = univariate_pool(frame("AuditC"), "log_dor", method="DL")
    assert r.corrected == ("AuditC_07", "AuditC_08")
    assert r.correction == 0.5 and r.correction_rule == "studies-with-zero"
    assert r.yi.sum() == pytest.approx(54.41071508, abs=1e-7)
    assert r.vi.sum() == pytest.approx(7.257858354, abs=1e-8)


def test_back_transformation_and_interval_order() -> None:
    r = univariate_pool(frame("Dementia"), "logit_sens", method="REML")
    assert r.pooled.ci_low < r.pooled.estimate < r.pooled.ci_high
    assert r.prediction.ci_low <= r.pooled.ci_low and r.prediction.ci_high >= r.pooled.ci_high
    assert r.pooled.estimate == pytest.approx(1 / (1 + np.exp(-r.mu)))
    assert set(r.summary_frame().columns) >= {"estimate", "ci_low", "pi_low", "tau2", "I2_percent"}


def test_homogeneous_data_give_zero_tau2() -> None:
    df = pd.DataFrame({"TP": [50, 50, 50], "FN": [10, 10, 10], "FP": [5, 5, 5], "TN": [95, 95, 95]})
    for method in ("DL", "REML"):
        r = univariate_pool(df, "logit_sens", method=method)  # type: ignore[arg-type]
        assert r.tau2 == 0.0 and r.i2_percent == 0.0
        assert r.mu == pytest.approx(np.log(5))


@pytest.mark.parametrize(
    ("kwargs", "frame_", "exc", "match"),
    [
        ({"measure": "dor"}, None, ValueError, "log_dor"),
        ({"method": "PM"}, None, ValueError, "DL"),
        ({}, pd.DataFrame({"TP": [1], "FN": [1], "FP": [1]}), ValueError, "TN"),
        ({}, pd.DataFrame({"TP": [1, -2], "FN": [1, 1], "FP": [1, 1], "TN": [1, 1]}), ValueError, "'TP', row 1"),
        ({}, pd.DataFrame({"TP": [1, 2.5], "FN": [1, 1], "FP": [1, 1], "TN": [1, 1]}), ValueError, "integer"),
        ({}, pd.DataFrame({"TP": [0, 2], "FN": [0, 1], "FP": [1, 1], "TN": [1, 1]}), ValueError, "no diseased"),
        ({"correction": 0.0}, pd.DataFrame({"TP": [0, 2], "FN": [3, 1], "FP": [1, 1], "TN": [1, 1]}), ValueError, "infinite"),
        ({"correction_rule": "single"}, None, ValueError, "studies-with-zero"),
    ],
)
def test_bad_input(kwargs: dict, frame_: pd.DataFrame | None, exc: type, match: str) -> None:
    data = frame("AuditC") if frame_ is None else frame_
    with pytest.raises(exc, match=match):
        univariate_pool(data, **kwargs)


def test_type_error_for_non_frame() -> None:
    with pytest.raises(TypeError, match="DataFrame"):
        univariate_pool([[1, 2, 3, 4]])  # type: ignore[arg-type]


def test_all_measures_listed() -> None:
    assert set(UNIVARIATE_MEASURES) == {k[1] for k in R_UNI}


# R (tests/meta/reference/meta_review_fixes.R, block 1; metafor 3.8.1):
#   predict(rma(yi, vi, method = "REML"), pi.type = "riley") = mu +- qt(0.975, k - 2) sqrt(tau2 + se^2)
R_PI_T = {
    ("AuditC", "logit_sens"): (-0.4846157621, 4.89528974),
    ("AuditC", "log_dor"): (1.828930954, 4.937724247),
    ("skin_tests", "logit_sens"): (-4.340066896, 2.280280355),
    ("skin_tests", "log_dor"): (-1.449990768, 6.385419167),
}


@pytest.mark.parametrize("key", list(R_PI_T))
def test_t_prediction_interval_k_minus_2_matches_metafor_riley(key: tuple[str, str]) -> None:
    name, measure = key
    r = univariate_pool(frame(name), measure, method="REML", prediction="t")  # type: ignore[arg-type]
    scale = np.log if measure == "log_dor" else (lambda p: np.log(p / (1 - p)))
    assert scale(r.prediction.ci_low) == pytest.approx(R_PI_T[key][0], abs=1e-4)
    assert scale(r.prediction.ci_high) == pytest.approx(R_PI_T[key][1], abs=1e-4)
    assert r.prediction.method == "prediction-interval-t" and r.prediction.extra["df"] == r.k - 2
    default = univariate_pool(frame(name), measure, method="REML")
    assert default.prediction.method == "prediction-interval-z"
    assert r.prediction.ci_low < default.prediction.ci_low and r.prediction.ci_high > default.prediction.ci_high


def test_t_prediction_interval_undefined_for_two_cohorts() -> None:
    r = univariate_pool(frame("AuditC").iloc[:2], "log_dor", prediction="t")
    assert np.isnan(r.prediction.ci_low) and "k >= 3" in r.prediction.note
    with pytest.raises(ValueError, match="prediction='normal' is not valid"):
        univariate_pool(frame("AuditC"), "log_dor", prediction="normal")  # type: ignore[arg-type]


def test_one_helper_makes_corrected_measures_for_every_model() -> None:
    # measure_data is the single place for "continuity-correct, then per-cohort estimate and variance": univariate
    # pooling, Deeks' test and the Reitsma model all read it (hand formulas: logit sens = log(TP/FN),
    # v = 1/TP + 1/FN, on counts + 0.5 for cohorts with a zero cell)
    from nodescope.meta import deeks_test
    from nodescope.meta._counts import LOGITS, as_counts, measure_data

    df = frame("AuditC")
    y, v, mask = measure_data(as_counts(df), (*LOGITS, "log_dor"), 0.5, "studies-with-zero")
    add = np.where((df[["TP", "FN", "FP", "TN"]] == 0).any(axis=1), 0.5, 0.0)
    tp, fn, fp, tn = (df[c].to_numpy() + add for c in ("TP", "FN", "FP", "TN"))
    np.testing.assert_allclose(y[:, 0], np.log(tp / fn))
    np.testing.assert_allclose(v[:, 1], 1 / tn + 1 / fp)
    np.testing.assert_array_equal(mask, add > 0)
    np.testing.assert_allclose(deeks_test(df).y, y[:, 2])
    np.testing.assert_allclose(univariate_pool(df, "logit_sens").vi, v[:, 0])
    with pytest.raises(ValueError, match=r"infinite for cohort\(s\) \['AuditC_07'"):
        measure_data(as_counts(df), LOGITS, 0.0, "none")
