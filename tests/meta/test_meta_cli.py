"""``nodescope meta`` end to end: the built-in example and a public data set; files, values and self-containment."""

from __future__ import annotations

import json
import re
import warnings

import pandas as pd
import pytest
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.meta import (
    RESULTS_SCHEMA_VERSION,
    MetaAnalysisWarning,
    bivariate_glmm,
    deeks_test,
    example_paths,
    read_studies,
    reitsma,
    run_meta_analysis,
    subgroup_analysis,
)

runner = CliRunner()


def _no_external_resources(html: str) -> None:
    # every figure is embedded; nothing is fetched (no src/href to http(s), no @import/url() of remote files)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.I)
    assert not re.search(r"url\(\s*['\"]?https?://", html, flags=re.I)
    assert "<script" not in html.lower()


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    # the synthetic example (what an installed nodescope without ../shared runs): no shared data folder
    out = tmp_path_factory.mktemp("meta-example")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NODESCOPE_SHARED_DATA", str(tmp_path_factory.mktemp("no-shared-data")))
        result = runner.invoke(app, ["meta", "--example", "-o", str(out), "--no-leave-one-out"])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC cohorts" in result.output
    return out, result.output


@pytest.mark.slow
def test_example_writes_every_file(example_run):
    out, output = example_run
    assert "13 cohorts" in output and "report:" in output
    for name in ("results.json", "report.html"):
        assert (out / name).stat().st_size > 0
    for fig in ("forest", "sroc", "deeks", "fagan", "quadas_traffic_light", "quadas_summary"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0
        assert (out / "figures" / f"{fig}.svg").stat().st_size > 0
    for table in ("per_study", "pooled", "heterogeneity", "subgroups", "sensitivity_analyses", "publication_bias",
                  "clinical_utility", "quadas"):
        assert len(pd.read_csv(out / "tables" / f"{table}.csv")) > 0


@pytest.mark.slow
def test_example_results_equal_the_library_call(example_run):
    out, _ = example_run
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema"] == "nodescope.meta.results" and doc["schema_version"] == RESULTS_SCHEMA_VERSION
    assert doc["options"]["select"] == {"index_test": ["deep learning"]}
    assert doc["excluded_cohorts"] == ["Zhou 2020: independent test: radiologists"]
    assert len(doc["synthetic_cohorts"]) == 12 and doc["k_cohorts"] == 13
    studies = read_studies(example_paths()["studies"])
    frame = studies.to_frame()
    frame = frame[frame["index_test"] == "deep learning"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        direct = bivariate_glmm(frame)
        sub = subgroup_analysis(frame, "validation")
    for name in ("sensitivity", "specificity", "dor", "auc"):
        got = doc["pooled"]["estimates"][name]
        want = getattr(direct, name)
        assert got["estimate"] == pytest.approx(want.estimate, rel=1e-9)
        assert got["ci_low"] == pytest.approx(want.ci_low, rel=1e-9)
    assert doc["subgroups"]["validation"]["lrt"]["p_value"] == pytest.approx(sub.regression.lrt_p_value, rel=1e-9)
    deeks = deeks_test(frame)
    assert doc["publication_bias"]["deeks"]["p_value"] == pytest.approx(deeks.p_value, rel=1e-12)
    # Fagan at the pre-test probability of the seed review (0.4): post = odds * LR / (1 + odds * LR)
    odds = 0.4 / 0.6 * direct.lr_positive.estimate
    assert doc["clinical_utility"]["post_test_positive"]["estimate"] == pytest.approx(odds / (1 + odds))
    # one cohort per study: highest Youden per study
    kept = doc["sensitivity_analyses"]["one_per_study"]["cohorts"]
    assert len(kept) == frame["study"].nunique()
    assert {"study": "Synthetic-A 2021", "cohort": "internal test"}.items() <= kept[0].items()


@pytest.mark.slow
def test_example_report_is_self_contained_and_labels_synthetic_rows(example_run):
    out, _ = example_run
    html = (out / "report.html").read_text()
    _no_external_resources(html)
    assert html.count("data:image/png;base64,") == 6
    assert "SYNTHETIC" in html and "Synthetic-H 2024: external site 1" in html
    for section in ("Study selection", "QUADAS-2", "Results of individual studies", "Synthesis of results",
                    "Heterogeneity", "subgroups", "Sensitivity analyses", "Publication bias", "Clinical utility"):
        assert section in html


def test_audit_c_end_to_end_matches_library(shared_data, tmp_path):
    path = shared_data / "dta_examples" / "AuditC.csv"
    out = tmp_path / "auditc"
    result = runner.invoke(app, ["meta", str(path), "--model", "reitsma", "--pretest", "0.3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    direct = reitsma(pd.read_csv(path))
    for name in ("sensitivity", "specificity", "lr_positive", "lr_negative", "dor", "auc"):
        assert doc["pooled"]["estimates"][name]["estimate"] == pytest.approx(getattr(direct, name).estimate, rel=1e-9)
        assert doc["pooled"]["estimates"][name]["ci_high"] == pytest.approx(getattr(direct, name).ci_high, rel=1e-9)
    assert doc["pooled"]["tau2_sens"] == pytest.approx(direct.tau2_sens, rel=1e-9)
    assert doc["k_cohorts"] == 14 and doc["inputs"]["studies"]["path"] == str(path)
    assert doc["skipped"]["one per study"].startswith("every study contributes a single cohort")
    per = pd.read_csv(out / "tables" / "per_study.csv")
    raw = pd.read_csv(path)
    assert per["TP"].tolist() == raw["TP"].tolist()
    assert per["sensitivity"].tolist() == pytest.approx((raw["TP"] / (raw["TP"] + raw["FN"])).tolist())
    loo = doc["sensitivity_analyses"]["leave_one_out"]
    assert [r["omitted"] for r in loo] == raw["study"].tolist()
    _no_external_resources((out / "report.html").read_text())


def test_reconstruct_flag_rebuilds_tables(tmp_path):
    src = tmp_path / "reported.csv"
    src.write_text("study,sensitivity,specificity,n_diseased,n_nondiseased\n"
                   "A,85.4,72.5,41,40\nB,73.2,62.5,41,40\nC,80.0,90.0,50,60\nD,86.1,70.0,41,40\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["meta", str(src), "--reconstruct", "--percent", "--model", "reitsma",
                                 "--no-leave-one-out", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "row 4 (D)" in result.output  # 86.1% of 41 is no integer count: warned, kept, flagged
    rebuilt = pd.read_csv(out / "reconstructed_2x2.csv")
    assert rebuilt["TP"].tolist() == [35, 30, 40, 35] and rebuilt["consistent"].tolist() == [True, True, True, False]
    doc = json.loads((out / "results.json").read_text())
    assert [r["TP"] for r in doc["per_study"]] == [35, 30, 40, 35]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "bayes"], "--model 'bayes' is not valid"),
        (["--subgroup", "modalty"], "covariate column 'modalty' is missing (did you mean 'modality'?)"),
        (["--select", "index_test"], "expected COLUMN=VALUE"),
        (["--select", "index_test=DL"], "value(s) ['DL'] do not occur in column 'index_test'"),
        (["--pretest", "1.5"], "--pretest: must be in (0, 1), got 1.5"),
        (["--levels", "modality=US,MRI"], "row 7 (study 'Synthetic-E 2023'), column 'modality': unknown level 'CT'"),
        (["--levels", "modality"], "expected COLUMN=LEVEL1,LEVEL2"),
    ],
)
def test_cli_errors_are_clear(tmp_path, args, message):
    result = runner.invoke(app, ["meta", str(example_paths()["studies"]), "-o", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_cli_reports_bad_rows_and_missing_input(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("study,TP,FP,FN,TN\nA,5,1,-2,9\nB,5,1,2,9\n")
    result = runner.invoke(app, ["meta", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "row 1 (study 'A'), column 'FN': '-2' is negative" in " ".join(result.output.split())
    result = runner.invoke(app, ["meta", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "missing the studies CSV" in result.output


def test_run_meta_analysis_validates_arguments():
    studies = read_studies(example_paths()["studies"])
    with pytest.raises(TypeError, match="Studies"):
        run_meta_analysis(studies.frame)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model='bayes' is not valid"):
        run_meta_analysis(studies, model="bayes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="subgroup column 'site' is not a covariate"):
        run_meta_analysis(studies, subgroups=["site"])


def test_several_cohorts_per_study_warn_and_are_reported(tmp_path):
    # the example has 5 studies with 2 cohorts each (internal/external test sets, CNN/radiologists): the models treat
    # them as independent, which must be said (warning, results.json, report beside the pooled estimates)
    from nodescope.meta import write_meta_report

    studies = read_studies(example_paths()["studies"])
    with pytest.warns(MetaAnalysisWarning, match="5 of 9 studies contribute several cohorts"):
        analysis = run_meta_analysis(studies, model="reitsma", leave_one_out_analysis=False)
    msgs = [m for a, m in analysis.warnings if a == "cohorts per study"]
    assert len(msgs) == 1 and "Zhou 2020: 2" in msgs[0] and "independent" in msgs[0]
    assert analysis.one_per_study is not None and analysis.one_per_study.k == 9
    write_meta_report(analysis, tmp_path)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert any(w["analysis"] == "cohorts per study" for w in doc["warnings"])
    html = (tmp_path / "report.html").read_text()
    # the section headings (the table of contents names them too, as links)
    synthesis = html[html.index("<h2>4. Synthesis of results</h2>"):html.index("<h2>5. Heterogeneity</h2>")]
    assert "Independence assumption" in synthesis and "One cohort per study (highest Youden index, k = 9)" in synthesis
    single = studies.subset(~studies.frame["study"].duplicated().to_numpy())
    assert not [a for a, _ in run_meta_analysis(single, model="reitsma", leave_one_out_analysis=False).warnings
                if a == "cohorts per study"]
