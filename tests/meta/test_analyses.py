"""Deeks' test, meta-regression, subgroups, leave-one-out, one-per-study and Fagan post-test probabilities."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _dta_data import frame

from nodescope.meta import (
    MetaAnalysisWarning,
    deeks_test,
    leave_one_out,
    meta_regression,
    one_per_study,
    post_test_probability,
    reitsma,
    subgroup_analysis,
)

# R (meta_reference.R, block 4): c <- counts + 0.5 in all cells of cohorts with a zero cell;
#   summary(lm(log(TP*TN/(FP*FN)) ~ I(1/sqrt(ESS)), weights = ESS)), ESS = 4 n1 n0 / (n1 + n0)
R_DEEKS = {
    "AuditC": {"intercept": 7.04990224, "slope": -57.32070287, "slope_se": 23.54166206, "p": 0.03145182859},
    "Dementia": {"intercept": 3.783823119, "slope": -0.2762982762, "slope_se": 8.903865065, "p": 0.9754435289},
    "smoking": {"intercept": 6.588006891, "slope": -22.90858918, "slope_se": 7.109927653, "p": 0.002264147647},
}


def _check_deeks(r, ref: dict) -> None:  # type: ignore[no-untyped-def]
    assert r.intercept == pytest.approx(ref["intercept"], abs=1e-6)
    assert r.slope == pytest.approx(ref["slope"], abs=1e-6)
    assert r.slope_se == pytest.approx(ref["slope_se"], abs=1e-6)
    assert r.p_value == pytest.approx(ref["p"], abs=1e-8)


@pytest.mark.parametrize("name", ["AuditC", "Dementia"])
def test_deeks_matches_r_lm(name: str) -> None:
    r = deeks_test(frame(name))
    _check_deeks(r, R_DEEKS[name])
    _x, y = r.line()
    assert y[0] == pytest.approx(r.intercept) and r.x.shape == r.y.shape == r.weights.shape


@pytest.mark.shared_data
def test_deeks_matches_r_lm_smoking(shared_data) -> None:  # type: ignore[no-untyped-def]
    _check_deeks(deeks_test(pd.read_csv(shared_data / "dta_examples" / "smoking.csv")), R_DEEKS["smoking"])


@pytest.mark.shared_data
def test_reitsma_meta_regression_matches_rma_mv(shared_data) -> None:  # type: ignore[no-untyped-def]
    # R: rma.mv(yi, vi, mods = ~ 0 + outcome + outcome:type, random = ~ outcome | study, struct = "UN",
    #           method = "ML") on smoking[result_id == 1] (mada's vignette subset), LRT against ~ 0 + outcome.
    sm = pd.read_csv(shared_data / "dta_examples" / "smoking.csv")
    sm1 = sm[sm["result_id"] == 1]
    r = meta_regression(sm1, ["type"], model="reitsma")
    tab = r.coefficients.set_index(["outcome", "term"])
    ref = {("logit_sens", "(Intercept)"): (2.812060749, 0.4687721236),
           ("logit_spec", "(Intercept)"): (3.329657228, 0.2978612374),
           ("logit_sens", "type[T.SAQ]"): (-1.173397504, 0.6065202902),
           ("logit_spec", "type[T.SAQ]"): (-0.8829982341, 0.3723955606)}
    for key, (est, se) in ref.items():
        assert tab.loc[key, "estimate"] == pytest.approx(est, abs=1e-4)
        assert tab.loc[key, "se"] == pytest.approx(se, abs=1e-4)
    assert r.sigma[0, 0] == pytest.approx(2.06721851, abs=1e-4)
    assert r.sigma[1, 1] == pytest.approx(0.6938569563, abs=1e-4)
    assert r.loglik == pytest.approx(-80.61870773, abs=1e-4)
    assert r.loglik_null == pytest.approx(-87.24418935, abs=1e-4)
    assert r.lrt_statistic == pytest.approx(13.25096324, abs=1e-4) and r.lrt_df == 2


@pytest.mark.shared_data
def test_glmm_subgroup_lrt_matches_glmer(shared_data) -> None:  # type: ignore[no-untyped-def]
    # R: glmer(cbind(events, n - events) ~ 0 + sens + spec + sens:saq + spec:saq + (0 + sens + spec | study),
    #          family = binomial, control = glmerControl(tolPwrss = 1e-13, ...)) on all smoking rows; LRT vs no saq
    sm = pd.read_csv(shared_data / "dta_examples" / "smoking.csv")
    res = subgroup_analysis(sm, "type")
    tab = res.regression.coefficients.set_index(["outcome", "term"])
    ref = {("logit_sens", "(Intercept)"): (3.333314788, 0.3467723128),
           ("logit_spec", "(Intercept)"): (2.620545673, 0.2571997175),
           ("logit_sens", "type[T.SAQ]"): (-1.133325966, 0.4439912395),
           ("logit_spec", "type[T.SAQ]"): (-0.1510913958, 0.3253353665)}
    for key, (est, se) in ref.items():
        assert tab.loc[key, "estimate"] == pytest.approx(est, abs=1e-3)
        assert tab.loc[key, "se"] == pytest.approx(se, abs=1e-3)
    assert res.regression.loglik == pytest.approx(-393.2382705, abs=1e-3)
    assert res.regression.lrt_statistic == pytest.approx(8.943500411, abs=1e-3)
    assert set(res.fits) == {"IAQ", "SAQ"} and res.fits["SAQ"].k == 31
    assert len(res.summary_frame()) == 10


def test_meta_regression_numeric_covariate_and_prediction() -> None:
    df = frame("Dementia")
    df["size"] = np.log(df[["TP", "FN", "FP", "TN"]].sum(axis=1))
    r = meta_regression(df, ["size"], model="reitsma")
    assert r.terms == ("(Intercept)", "size") and r.lrt_df == 2 and 0 <= r.lrt_p_value <= 1
    pred = r.predict_logits(np.array([[1.0, df["size"].mean()]]))
    assert pred.shape == (1, 2)


def test_meta_regression_errors() -> None:
    df = frame("AuditC")
    with pytest.raises(ValueError, match="not a column"):
        meta_regression(df, ["modality"])
    df["one"] = "US"
    with pytest.raises(ValueError, match="single level"):
        meta_regression(df, ["one"])
    with pytest.raises(ValueError, match="at least one"):
        meta_regression(df, [])


def test_one_per_study_keeps_highest_youden_first_on_ties() -> None:
    df = pd.DataFrame({"study": ["A", "A", "B", "B", "C"], "cohort": ["a1", "a2", "b1", "b2", "c1"],
                       "TP": [8, 9, 5, 5, 3], "FN": [2, 1, 5, 5, 1], "FP": [1, 1, 2, 2, 1], "TN": [9, 9, 8, 8, 4]})
    before = df.copy()
    out = one_per_study(df)
    assert list(out["cohort"]) == ["a2", "b1", "c1"]
    assert out["youden"].iloc[0] == pytest.approx(0.9 + 0.9 - 1)
    pd.testing.assert_frame_equal(df, before)  # input untouched


def test_leave_one_out_rows_equal_subset_fits() -> None:
    df = frame("skin_tests")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        loo = leave_one_out(df, model="reitsma")
        direct = reitsma(df.iloc[1:])
    assert len(loo) == len(df) and loo.loc[0, "omitted"] == "skin_tests_01"
    assert loo.loc[0, "sensitivity"] == pytest.approx(direct.sensitivity.estimate)


def test_post_test_probability_fagan() -> None:
    r = post_test_probability(0.4, 4.0, 0.1)
    odds = 0.4 / 0.6
    assert r.positive.estimate == pytest.approx(odds * 4 / (1 + odds * 4))
    assert r.negative.estimate == pytest.approx(odds * 0.1 / (1 + odds * 0.1))
    fit = reitsma(frame("AuditC"))
    r2 = post_test_probability(0.4, fit.lr_positive, fit.lr_negative)
    assert r2.positive.ci_low < r2.positive.estimate < r2.positive.ci_high
    with pytest.raises(ValueError, match="pretest"):
        post_test_probability(1.2, 4.0, 0.1)


def test_deeks_equal_sized_cohorts_clear_error() -> None:
    # every cohort has n1 = 20, n0 = 80: ESS and so 1/sqrt(ESS) are constant and the slope is not identified
    df = pd.DataFrame({"TP": [15, 18, 12, 16], "FN": [5, 2, 8, 4], "FP": [10, 6, 20, 8], "TN": [70, 74, 60, 72]})
    with pytest.raises(ValueError, match=r"1/sqrt\(ESS\) does not vary"):
        deeks_test(df)


def test_subgroup_numeric_codes_are_categorical() -> None:
    # a subgroup coded 1/2/3 must give the same LRT as the same grouping coded "a"/"b"/"c": df = 2 (3 - 1) = 4,
    # not the df = 2 of a linear trend in the code
    df = frame("Dementia")
    codes = np.arange(len(df)) % 3 + 1
    num = df.assign(g=codes)
    txt = df.assign(g=np.array(["a", "b", "c"])[codes - 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        r_num = subgroup_analysis(num, "g", model="reitsma")
        r_txt = subgroup_analysis(txt, "g", model="reitsma")
    assert r_num.regression.lrt_df == r_txt.regression.lrt_df == 4
    assert r_num.regression.lrt_statistic == pytest.approx(r_txt.regression.lrt_statistic, rel=1e-8)
    assert list(r_num.fits) == ["1", "2", "3"]
    assert num["g"].dtype.kind == "i"  # caller's frame unchanged
