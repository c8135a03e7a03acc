"""Issue 15: the fitted model named everywhere, both zero-cell rules against metafor, separation never fails a run,
correction rules recorded, Moses-Littenberg and partial AUC, the SROC alternative and the published example.

Reference values: tests/meta/reference/meta_api15.R (output meta_api15.out; R 4.2.2, metafor 3.8.1; Moses-Littenberg,
areas and mada's AUC formula computed there in base R from their documented formulas, mada not being installed).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _dta_data import frame
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.meta import (
    MetaAnalysisWarning,
    bivariate_glmm,
    deeks_test,
    example_settings,
    meta_results,
    moses_littenberg,
    read_studies,
    reitsma,
    run_meta_analysis,
    sroc_summary,
    univariate_pool,
)
from nodescope.meta._sroc import line_auc

runner = CliRunner()
REF = Path(__file__).parent / "reference" / "meta_api15.out"


def _ref() -> dict[str, float]:
    """``meta_api15.out`` as ``{"<block> <data> ... <key>": value}``."""
    out = {}
    for line in REF.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        *key, value = line.split()
        out[" ".join(key)] = float(value)
    return out


R = _ref()
# zeros in ONE arm only (FP = 0 in cohorts 1 and 7, FN = 0 in cohort 3); the same table as in meta_api15.R
ONEARM = pd.DataFrame({"study": [f"c{i}" for i in range(1, 9)],
                       "TP": [24, 28, 34, 32, 23, 38, 19, 41], "FN": [3, 11, 0, 2, 9, 4, 2, 16],
                       "FP": [0, 3, 6, 9, 6, 5, 0, 12], "TN": [42, 55, 60, 46, 40, 51, 30, 70]})
# issue 15, error 4: FN = 0 in every study
FN0 = pd.DataFrame({"study": [f"S{i}" for i in range(1, 7)], "TP": [24, 28, 34, 32, 23, 38], "FN": [0] * 6,
                    "FP": [7, 3, 6, 9, 6, 5], "TN": [42, 55, 60, 46, 40, 51]})


# ---- error 2: both zero-cell rules against metafor ----------------------------------------------------------------

@pytest.mark.parametrize("method", ["DL", "REML"])
@pytest.mark.parametrize("measure", ["logit_sens", "logit_spec", "log_dor"])
@pytest.mark.parametrize("rule", ["measure-cells-with-zero", "studies-with-zero"])
def test_univariate_rules_match_metafor_with_one_arm_zeros(rule: str, measure: str, method: str) -> None:
    u = univariate_pool(ONEARM, measure, method=method, correction_rule=rule)  # type: ignore[arg-type]
    key = f"uni onearm {measure} {method} {rule}"
    assert u.mu == pytest.approx(R[f"{key} mu"], abs=1e-6)
    assert u.se == pytest.approx(R[f"{key} se"], abs=1e-6)
    assert u.tau2 == pytest.approx(R[f"{key} tau2"], abs=1e-6)
    assert u.q == pytest.approx(R[f"{key} Q"], abs=1e-6)
    assert u.i2 == pytest.approx(R[f"{key} I2"], abs=1e-4)
    assert u.correction_rule == rule


def test_the_two_rules_differ_only_for_the_logits() -> None:
    a = univariate_pool(ONEARM, "logit_spec", correction_rule="measure-cells-with-zero")
    b = univariate_pool(ONEARM, "logit_spec")
    assert b.correction_rule == "studies-with-zero"  # the default is unchanged
    assert a.corrected == ("c1", "c7") and b.corrected == ("c1", "c3", "c7")
    assert abs(a.tau2 - b.tau2) > 1e-3  # metafor's PLO convention gives another tau2 on these data
    dor = [univariate_pool(ONEARM, "log_dor", correction_rule=r).mu for r in ("measure-cells-with-zero",
                                                                              "studies-with-zero")]
    assert dor[0] == dor[1]


def test_reitsma_measure_cells_rule_matches_rma_mv() -> None:
    r = reitsma(ONEARM, correction_rule="measure-cells-with-zero", fallback="none")
    key = "reitsma onearm measure-cells-with-zero"
    assert r.mu == pytest.approx([R[f"{key} mu_sens"], R[f"{key} mu_spec"]], abs=1e-4)
    assert np.sqrt(np.diag(r.cov_mu)) == pytest.approx([R[f"{key} se_sens"], R[f"{key} se_spec"]], abs=1e-4)
    assert [r.tau2_sens, r.tau2_spec] == pytest.approx([R[f"{key} tau2_sens"], R[f"{key} tau2_spec"]], abs=1e-4)
    assert r.rho == pytest.approx(R[f"{key} rho"], abs=1e-3)
    assert r.correction_rule == "measure-cells-with-zero" and r.corrected == ("c1", "c3", "c7")


# ---- error 5: each result records its rule ----------------------------------------------------------------------

def test_deeks_records_its_correction_rule() -> None:
    d = deeks_test(ONEARM)
    assert d.correction_rule == "studies-with-zero" and d.corrected == ("c1", "c3", "c7")
    same = deeks_test(ONEARM, correction_rule="measure-cells-with-zero")
    assert same.correction_rule == "measure-cells-with-zero" and same.slope == d.slope


# ---- error 4: separation -> the documented fallback ---------------------------------------------------------------

def test_fn0_in_every_study_falls_back_instead_of_failing() -> None:
    with pytest.warns(MetaAnalysisWarning, match="FN = 0 in every cohort"):
        r = bivariate_glmm(FN0)
    assert r.model == "reitsma-reml" and r.fallback.startswith("Reitsma model with continuity correction 0.5")
    assert np.isfinite(r.mu).all() and r.correction_rule == "all-if-any-zero"
    same = reitsma(FN0)
    assert r.sensitivity.estimate == same.sensitivity.estimate  # exactly what --model reitsma fits
    studies = read_studies(FN0.assign(arm=["a", "a", "a", "b", "b", "b"]), covariates=["arm"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        run = run_meta_analysis(studies, subgroups=["arm"], leave_one_out_analysis=True)
    assert run.pooled.model == "reitsma-reml"
    assert set(run.leave_one_out["model"]) == {"reitsma-reml"}
    assert all(f.model == "reitsma-reml" for f in run.subgroups["arm"].fits.values())
    # the subgroup LRT: a GLMM meta-regression has no finite maximum here either -> Reitsma ML, said so
    reg = run.subgroups["arm"].regression
    assert reg.model == "reitsma-ml" and "meta-regression uses the Reitsma model" in reg.warnings[0]
    assert np.all(reg.coefficients["se"] < 10)


def test_fn0_cli_names_the_fitted_model_everywhere(tmp_path: Path) -> None:
    src = tmp_path / "fn0.csv"
    FN0.to_csv(src, index=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["meta", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["options"]["model"] == "glmm"  # what was asked for
    fitted = doc["model_fitted"]
    assert fitted["model"] == "reitsma-reml" and fitted["correction_rule"] == "all-if-any-zero"
    assert "requested: exact bivariate binomial GLMM" in fitted["description"]
    assert {r["model"] for r in doc["sensitivity_analyses"]["leave_one_out"]} == {"reitsma-reml"}
    assert doc["publication_bias"]["deeks"]["correction_rule"] == "studies-with-zero"
    pooled = pd.read_csv(out / "tables" / "pooled.csv")
    assert set(pooled["model"]) == {"reitsma-reml"}
    assert set(pd.read_csv(out / "tables" / "sensitivity_analyses.csv")["model"]) == {"reitsma-reml"}
    html = (out / "report.html").read_text()
    assert "Pooled estimates, Reitsma, rho = 0" in html
    assert "exact bivariate binomial GLMM (logit" not in html  # the GLMM is only named as the model requested
    assert "rule studies-with-zero" in html and "(studies-with-zero:" in html  # univariate and Deeks rules
    assert "SROC AUC n/a" in result.output and "Moses-Littenberg" in result.output


# ---- Moses-Littenberg, partial AUC, the SROC alternative ---------------------------------------------------------

@pytest.mark.parametrize("name", ["onearm", "auditc"])
def test_moses_littenberg_matches_r(name: str) -> None:
    data = ONEARM if name == "onearm" else frame("AuditC")
    m = moses_littenberg(data)
    key = f"moses {name}"
    got = {"A": m.intercept, "B": m.slope, "A_se": m.intercept_se, "B_se": m.slope_se, "a": m.a, "b": m.b,
           "auc": m.auc.estimate, "pauc": m.partial_auc.estimate,
           "fpr_low": m.partial_auc.extra["fpr_low"], "fpr_high": m.partial_auc.extra["fpr_high"],
           "pauc_normalised": m.partial_auc.extra["normalised"]}
    for k, v in got.items():
        assert v == pytest.approx(R[f"{key} {k}"], abs=1e-8), k
    assert m.correction_rule == "all-if-any-zero" and len(m.corrected) == len(data)


def test_partial_auc_of_the_reitsma_curve_and_mada_s_auc_formula() -> None:
    fit = reitsma(frame("AuditC"))
    s = sroc_summary(fit, frame("AuditC"))
    assert s.curve == "rutter-gatsonis" and s.auc is fit.auc and s.main_auc_reason == ""
    assert fit.auc.estimate == pytest.approx(R["rg auditc auc_exact"], abs=1e-4)
    assert s.partial_auc.estimate == pytest.approx(R["rg auditc pauc"], abs=1e-4)
    assert s.partial_auc.extra["normalised"] == pytest.approx(R["rg auditc pauc_normalised"], abs=1e-4)
    # docs/meta-models.md: mada's AUC() is a trapezoid sum on fpr = 0.01..0.99 divided by 99 -- not the exact area
    sens = s.sroc_curve(np.arange(1, 100) / 100)[1]
    mada = (sens[0] / 2 + sens[1:-1].sum() + sens[-1] / 2) / 99
    assert mada == pytest.approx(R["rg auditc auc_mada_formula"], abs=1e-4)
    assert abs(mada - fit.auc.estimate) > 1e-3


def test_line_auc_is_the_area() -> None:
    assert line_auc(0.0, 1.0) == pytest.approx(0.5, abs=1e-12)  # the chance diagonal
    grid = np.linspace(0.2, 0.6, 200001)
    sens = 1 / (1 + np.exp(-(1.3 + 0.7 * np.log(grid / (1 - grid)))))
    assert line_auc(1.3, 0.7, 0.2, 0.6) == pytest.approx(np.trapezoid(sens, grid), abs=1e-9)


def test_sroc_alternative_when_a_variance_is_zero() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        fit = bivariate_glmm(FN0)
    assert not fit.auc.defined
    s = sroc_summary(fit, FN0)
    assert "tau2 logit sens = 0" in s.main_auc_reason and s.curve == "moses-littenberg"
    assert s.auc.estimate == pytest.approx(moses_littenberg(FN0).auc.estimate, rel=1e-12)
    asked = sroc_summary(reitsma(frame("AuditC")), frame("AuditC"), curve="moses")
    assert asked.curve == "moses-littenberg" and asked.main_auc_reason == ""
    with pytest.raises(ValueError, match="sroc curve"):
        sroc_summary(fit, FN0, curve="bogus")  # type: ignore[arg-type]


def test_rho0_reitsma_curve_is_the_first_alternative() -> None:
    # a main fit whose SROC is undefined (a variance at 0) on data where the rho = 0 Reitsma fit has both
    # variances positive: that fit's Rutter-Gatsonis curve is reported, labelled (meta_api15.R block 6)
    data = frame("AuditC")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        full = bivariate_glmm(data)
    main = dataclasses.replace(full, hsroc=None, sigma=np.diag([0.0, full.tau2_spec]))
    s = sroc_summary(main, data)
    assert s.curve == "rutter-gatsonis-reitsma-rho0" and "tau2 logit sens = 0" in s.main_auc_reason
    assert [s.rho0_fit.tau2_sens, s.rho0_fit.tau2_spec] == pytest.approx(
        [R["rho0 auditc tau2_sens"], R["rho0 auditc tau2_spec"]], abs=1e-4)
    assert s.auc.estimate == pytest.approx(R["rho0 auditc auc"], abs=1e-4)
    assert s.auc.method == "sroc-rutter-gatsonis-reitsma-rho0" and np.isfinite(s.auc.ci_low)
    assert s.partial_auc.estimate == pytest.approx(R["rho0 auditc pauc"], abs=1e-4)


def test_sroc_moses_option_and_bad_cli_value(tmp_path: Path) -> None:
    studies = read_studies(frame("AuditC"))
    run = run_meta_analysis(studies, model="reitsma", sroc="moses", leave_one_out_analysis=False)
    doc = meta_results(run)
    assert doc["sroc"]["curve"] == "moses-littenberg" and doc["options"]["sroc"] == "moses"
    assert doc["sroc"]["auc"]["estimate"] == pytest.approx(R["moses auditc auc"], abs=1e-8)
    assert doc["sroc"]["curve_observed_fpr_range"]["sens"][0] == pytest.approx(
        float(run.sroc.sroc_curve(np.array([run.sroc.partial_auc.extra["fpr_low"]]))[1][0]), abs=1e-12)
    assert run.sroc.partial_auc.extra["fpr_low"] == pytest.approx(R["moses auditc fpr_low"], abs=1e-9)
    src = tmp_path / "auditc.csv"
    frame("AuditC").to_csv(src, index=False)
    bad = runner.invoke(app, ["meta", str(src), "-o", str(tmp_path / "p"), "--sroc", "mosses"])
    assert bad.exit_code == 2 and "--sroc 'mosses' is not valid" in bad.output


# ---- the published example ---------------------------------------------------------------------------------------

def test_example_falls_back_to_the_labelled_synthetic_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODESCOPE_SHARED_DATA", str(tmp_path))
    ex = example_settings("auto")
    assert ex.source == "synthetic" and "was not found" in ex.banner and "SYNTHETIC" in ex.banner
    with pytest.raises(FileNotFoundError, match="published example"):
        example_settings("published")


@pytest.mark.shared_data
def test_published_example_and_its_sroc_alternative(shared_data, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NODESCOPE_SHARED_DATA", str(shared_data))
    ex = example_settings("auto")
    assert ex.source == "published" and ex.studies == shared_data / "dta_examples" / "alnm_dl" / "cohorts.csv"
    studies = read_studies(ex.studies, covariates=["modality", *ex.subgroups])
    assert len(studies) == 12 and studies.frame["study"].nunique() == 9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        us = run_meta_analysis(studies, select={"modality": "US"}, leave_one_out_analysis=False,
                               one_per_study_by=None)
    assert not us.pooled.auc.defined and us.sroc is not None
    s = us.sroc
    assert s.curve == "moses-littenberg" and "variance at zero too" in s.main_auc_reason
    assert s.rho0_fit.tau2_spec == pytest.approx(R["rho0 alnm_us tau2_spec"], abs=1e-4)
    assert s.rho0_fit.tau2_sens < 1e-6
    assert s.auc.estimate == pytest.approx(R["moses alnm_us auc"], abs=1e-8)
    assert s.partial_auc.estimate == pytest.approx(R["moses alnm_us pauc"], abs=1e-8)
