"""Statistics API 1.0 of the meta-analysis results (issue 15) against R.

Reference values: tests/meta/reference/meta_results15.R, its output meta_results15.out (R 4.2.2, metafor 3.8.1,
lme4 1.1.31) read below line by line. Blocks: ``qprofile`` (metafor ``confint(rma)`` Q-profile CIs and ``fitstats``),
``reitsma`` / ``reitsma_fpr`` (``rma.mv(struct = "UN")`` on (logit sens, logit spec) and on mada's (logit sens,
logit FPR); ``confint(rma.mv)`` profile CIs; ``fitstats``), ``glmm`` (``lme4::glmer`` logLik/AIC/BIC and
``confint(profile(.))`` of the SDs), ``madad`` (mada's madad formulas in base R).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _dta_data import frame

from nodescope import Estimate
from nodescope.errors import ConfigError
from nodescope.meta import (
    bivariate_glmm,
    deeks_test,
    meta_regression,
    reitsma,
    study_table,
    subgroup_analysis,
    univariate_pool,
)

OUT = Path(__file__).parent / "reference" / "meta_results15.out"


def _ref() -> dict[tuple[str, ...], np.ndarray]:
    """``{(block, data, ..., quantity): values}`` from the R output (numbers at the end of each line)."""
    ref = {}
    for line in OUT.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        if parts[0] == "madad":  # madad <data> <row> <18 values>: the row number is part of the key
            ref[tuple(parts[:3])] = np.array([float(v) for v in parts[3:]])
            continue
        nums: list[float] = []
        while parts:
            try:
                nums.insert(0, float(parts[-1]))
            except ValueError:
                break
            parts.pop()
        ref[tuple(parts)] = np.array(nums)
    return ref


REF = _ref()
DATA = ("AuditC", "Dementia", "skin_tests")


@pytest.mark.parametrize("name", DATA)
@pytest.mark.parametrize("measure", ["logit_sens", "logit_spec", "log_dor"])
@pytest.mark.parametrize("method", ["REML", "DL"])
def test_q_profile_and_fit_statistics_match_metafor(name: str, measure: str, method: str) -> None:
    r = univariate_pool(frame(name), measure, method=method)  # type: ignore[arg-type]
    ci = r.heterogeneity_ci()
    key = ("qprofile", name, measure, method)
    for row, q in (("tau2", "tau2"), ("i2_percent", "I2"), ("h2", "H2")):
        est, lo, hi = REF[(*key, q)]
        assert ci.loc[row, "estimate"] == pytest.approx(est, rel=1e-5, abs=1e-6), row  # REML tau2: iterative
        # Q-profile bounds do not depend on the tau2 estimator: closed-form equation, solved to 1e-12
        assert ci.loc[row, "ci_low"] == pytest.approx(lo, rel=1e-8, abs=1e-10), row
        assert ci.loc[row, "ci_high"] == pytest.approx(hi, rel=1e-8, abs=1e-10), row
    fs = r.fit_statistics()
    for q in ("loglik", "aic", "bic"):
        assert fs[q] == pytest.approx(REF[(*key, q)][0], rel=1e-7), q
    t = r.tau2_ci()
    assert isinstance(t, Estimate) and t.ci_low == ci.loc["tau2", "ci_low"] and t.method == "q-profile"


def test_q_profile_bounds_are_zero_for_homogeneous_data() -> None:
    # Q(0) = 0 lies below both chi2 quantiles: both bounds truncated at 0 (metafor gives 0 and 0 too)
    d = pd.DataFrame({"TP": [40] * 4, "FN": [10] * 4, "FP": [5] * 4, "TN": [45] * 4})
    ci = univariate_pool(d, "logit_sens").heterogeneity_ci()
    assert ci.loc["tau2", "ci_low"] == 0.0 and ci.loc["tau2", "ci_high"] == 0.0
    # a little spread: Q(0) between the quantiles, lower bound 0, upper bound positive
    d = pd.DataFrame({"TP": [40, 41, 39, 40], "FN": [10, 9, 11, 10], "FP": [5, 5, 6, 5], "TN": [45, 45, 44, 45]})
    ci = univariate_pool(d, "logit_sens").heterogeneity_ci()
    assert ci.loc["tau2", "ci_low"] == 0.0 < ci.loc["tau2", "ci_high"]


@pytest.mark.parametrize("name", DATA)
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_reitsma_profile_ci_fit_statistics_and_fpr_parametrisation(name: str, method: str) -> None:
    r = reitsma(frame(name), method=method)  # type: ignore[arg-type]
    key = ("reitsma", name, method)
    fs = r.fit_statistics()
    for q in ("loglik", "aic", "bic"):
        assert fs[q] == pytest.approx(REF[(*key, q)][0], rel=1e-6), q
    assert r.aic == fs["aic"] and r.bic == fs["bic"]
    prof = r.profile_ci()
    for j in ("sens", "spec"):
        est, lo, hi = REF[(*key, f"tau2_{j}")]
        got = prof.loc[f"tau2_{j}"]
        assert [got.estimate, got.ci_low, got.ci_high] == pytest.approx([est, lo, hi], rel=1e-4, abs=1e-5), j
        s2 = r.heterogeneity.typical_within_var[0 if j == "sens" else 1]
        assert prof.loc[f"i2_{j}_percent", "ci_high"] == pytest.approx(100 * hi / (hi + s2), rel=1e-4)
    fk = ("reitsma_fpr", name, method)
    tab = r.coef_table("sens_fpr")
    assert list(tab.index) == ["logit_sens", "logit_fpr"]
    assert r.mu_fpr == pytest.approx(REF[(*fk, "mu")], rel=1e-4, abs=1e-5)
    assert tab["estimate"].to_numpy() == pytest.approx(REF[(*fk, "mu")], rel=1e-4, abs=1e-5)
    assert tab["se"].to_numpy() == pytest.approx(REF[(*fk, "se")], rel=1e-4)
    assert tab["z"].to_numpy() == pytest.approx(REF[(*fk, "z")], rel=1e-4)
    assert tab["p_value"].to_numpy() == pytest.approx(REF[(*fk, "p")], rel=2e-3)  # p far in the tail: z to 1e-4
    assert r.cov_mu_fpr.ravel() == pytest.approx(REF[(*fk, "vcov")], rel=1e-4, abs=1e-6)
    assert [r.tau2_sens, r.tau2_fpr] == pytest.approx(REF[(*fk, "tau2")], rel=1e-4)
    assert r.rho_sens_fpr == pytest.approx(REF[(*fk, "rho")][0], abs=1e-4)
    assert r.sigma_fpr[0, 1] == pytest.approx(-r.sigma[0, 1])


@pytest.mark.parametrize("name", ["skin_tests", "AuditC"])
def test_glmm_loglik_aic_bic_match_lme4(name: str) -> None:
    fs = bivariate_glmm(frame(name)).fit_statistics()
    for q in ("loglik", "aic", "bic"):
        assert fs[q] == pytest.approx(REF[("glmm", name, q)][0], rel=1e-6), q


# The GLMM's profile-likelihood intervals against lme4's confint(profile(g)) (skin_tests; ~1e-3, lme4 interpolates
# its profile by splines) are checked once, by the last block of docs/r-equivalents.md (tests/test_docs_r_equivalents.py).


@pytest.mark.parametrize("name", DATA)
def test_study_table_matches_madad_formulas(name: str) -> None:
    t = study_table(frame(name))
    cols = [f"{m}{s}" for m in ("sens", "spec", "fpr", "lr_pos", "lr_neg", "dor") for s in ("", "_ci_low", "_ci_high")]
    for i in range(len(t)):
        assert t.loc[i, cols].to_numpy(float) == pytest.approx(REF[("madad", name, str(i + 1))], rel=1e-9)
    assert t["TP"].tolist() == frame(name)["TP"].tolist()  # the counts as given, not corrected
    assert t["corrected"].all() == (frame(name)[["TP", "FP", "FN", "TN"]] == 0).any().any()


def test_study_table_options_and_errors() -> None:
    d = pd.DataFrame({"TP": [45, 30], "FN": [5, 0], "FP": [10, 4], "TN": [90, 50]})
    only = study_table(d, correction_rule="studies-with-zero")
    assert only["corrected"].tolist() == [False, True] and only.loc[0, "sens"] == 0.9
    cp = study_table(d, ci_method="clopper-pearson")
    assert cp.loc[0, "sens_ci_low"] < cp.loc[0, "sens"] < cp.loc[0, "sens_ci_high"]
    with pytest.raises(ConfigError, match="ci_method"):
        study_table(d, ci_method="wald")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="infinite for cohort"):
        study_table(d, correction_rule="none")


def test_old_names_warn_and_give_the_same_values() -> None:
    u = univariate_pool(frame("AuditC"), "logit_sens")
    r = reitsma(frame("AuditC"))
    with pytest.warns(DeprecationWarning, match="q_p_value"):
        assert u.q_pvalue == u.q_p_value
    with pytest.warns(DeprecationWarning, match="i2_percent"):
        assert u.i2 == u.i2_percent
    with pytest.warns(DeprecationWarning, match="i2_sens_percent"):
        assert r.heterogeneity.i2_sens == r.heterogeneity.i2_sens_percent
    with pytest.warns(DeprecationWarning, match="extra\\['se'\\]"):
        assert r.sensitivity.extra["se_logit"] == r.sensitivity.extra["se"]
    with pytest.warns(DeprecationWarning):
        assert r.dor.extra.get("se_log") == r.dor.extra["se"]
    with pytest.warns(DeprecationWarning):
        assert r.dor.extra["log"] == pytest.approx(np.log(r.dor.estimate))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert r.sensitivity.extra["scale"] == "logit_sens" and r.auc.extra["scale"] == "logit_auc"
        assert "se" in r.lr_positive.extra and r.lr_positive.extra["scale"] == "log_lr_pos"
        assert Estimate("x", 1.0, 0.0, 2.0, "m", extra={"se_log": 3.0}).extra["se_log"] == 3.0  # stored: as is


def _subgroup_data() -> pd.DataFrame:
    d = frame("Dementia")
    d["grp"] = ["a", "b"] * 16 + ["a"]
    return d


def test_every_result_has_summary_frame_and_json_safe_dict() -> None:
    d = _subgroup_data()
    results = [reitsma(d), univariate_pool(d, "log_dor"), deeks_test(d),
               subgroup_analysis(d, "grp", model="reitsma"), meta_regression(d, ["grp"], model="reitsma")]
    for res in results:
        text = res.summary()
        assert isinstance(text, str) and "\n" in text, type(res).__name__
        assert isinstance(res.to_frame(), pd.DataFrame) and len(res.to_frame()) > 0
        json.dumps(res.to_dict(), allow_nan=False)
    biv, uni, deeks, sub, reg = results
    assert "logit_fpr" in biv.summary() and "AIC" in biv.summary() and "Variance components" in biv.summary()
    assert "Q-profile" in uni.summary() and uni.to_dict()["tau2_ci"][0] == uni.heterogeneity_ci().loc["tau2", "ci_low"]
    assert deeks.to_frame().loc["slope", "p_value"] == pytest.approx(deeks.p_value, rel=1e-12)
    assert set(sub.to_dict()["levels"]) == {"a", "b"} and "likelihood-ratio" in sub.summary()
    assert reg.to_dict()["lrt"]["df"] == 2


def test_fallback_result_summaries_and_profile_at_zero_variance() -> None:
    # issue 15, error 4: FN = 0 in every cohort; the Reitsma fit reaches tau2 = 0 and falls back to rho = 0
    d = pd.DataFrame([(24, 0, 7, 42), (28, 0, 3, 55), (34, 0, 6, 60), (32, 0, 9, 46), (23, 0, 6, 40), (38, 0, 5, 51)],
                     columns=["TP", "FN", "FP", "TN"])
    with pytest.warns(UserWarning):
        r = reitsma(d)
    assert r.rho_fixed and "rho fixed at 0" in r.summary()
    prof = r.profile_ci()
    assert prof.loc["tau2_sens", "ci_low"] == 0.0 and prof.loc["tau2_sens", "ci_high"] > 0
    json.dumps(r.to_dict(), allow_nan=False)


def test_bad_arguments() -> None:
    r = reitsma(frame("skin_tests"))
    with pytest.raises(ConfigError, match="parametrisation"):
        r.coef_table("fpr")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="alpha"):
        r.profile_ci(alpha=1.5)
    with pytest.raises(ConfigError, match="alpha"):
        univariate_pool(frame("skin_tests"), "log_dor").heterogeneity_ci(alpha=0)


def test_estimate_is_public() -> None:
    import nodescope

    assert "Estimate" in nodescope.__all__ and nodescope.Estimate is Estimate
