"""External validation by site: every number equals the library functions on that site's rows; the report, the
tables, metrics.json and the command line carry it; bad input is refused.

The predictions are seeded synthetic scores written here: one model, out-of-fold cv rows and test rows from the
source hospital, and external rows from two sites, ``near`` (same score model) and ``far`` (the outcome follows
``logit P = -1 + 0.35 logit p``: miscalibrated, weaker ranking).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.errors import StatisticsInputError
from nodescope.evaluation import (
    calibration_metrics,
    choose_threshold,
    compare_auc_unpaired,
    evaluate_predictions,
    external_validation,
    read_predictions,
    roc_auc,
)
from nodescope.evaluation._threshold import binary_metrics

runner = CliRunner()


def _frame(seed: int = 0, *, site: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for split, where, n in (("cv", "home", 160), ("test", "home", 80), ("external", "near", 90),
                            ("external", "far", 300)):
        lp = rng.normal(-0.4, 1.8, n)
        truth = expit(-1.0 + 0.35 * lp) if where == "far" else expit(lp)
        y = rng.uniform(size=n) < truth
        for i in range(n):
            rows.append({"patient_id": f"{where}{split}{i}", "y_true": "malignant" if y[i] else "benign",
                         "p_malignant": float(expit(lp[i])), "split": split, "fold": i % 4 if split == "cv" else -1,
                         "model": "cnn", "run_id": "r1", **({"site": where} if site else {})})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def preds():
    return read_predictions(_frame(), positive="malignant")


def _rows(preds, **where):
    sub = preds.where(**where)
    return sub.y_true(), sub.y_score()


def test_each_site_equals_the_library_on_its_rows(preds):
    ev = external_validation(preds, n_boot=50)
    t = ev.to_frame().set_index(["site", "metric"])
    y_cv, s_cv = _rows(preds, split="cv")
    thr = choose_threshold(y_cv, s_cv).threshold  # the source threshold: chosen on cv rows only
    y_int, s_int = _rows(preds, split="test")  # the internal reference: the test rows
    assert list(dict.fromkeys(ev.to_frame()["site"])) == ["internal", "far", "near"]
    for site in ("far", "near"):
        y, s = _rows(preds, split="external", site=site)
        auc = roc_auc(y, s, method="delong")
        assert t.loc[(site, "auc"), "estimate"] == pytest.approx(auc.estimate)
        assert t.loc[(site, "auc"), "ci_low"] == pytest.approx(auc.ci_low)
        diff = compare_auc_unpaired(y, s, y_int, s_int).difference
        assert t.loc[(site, "auc_difference"), "estimate"] == pytest.approx(diff.estimate)
        assert t.loc[(site, "auc_difference"), "ci_high"] == pytest.approx(diff.ci_high)
        cal = calibration_metrics(y, s, n_boot=50)
        assert t.loc[(site, "calibration_in_the_large"), "estimate"] == pytest.approx(
            cal.calibration_in_the_large.estimate)
        assert t.loc[(site, "calibration_slope"), "estimate"] == pytest.approx(cal.calibration_slope.estimate)
        assert t.loc[(site, "calibration_slope"), "ci_low"] == pytest.approx(cal.calibration_slope.ci_low)
        assert t.loc[(site, "threshold_source"), "estimate"] == thr
        src = binary_metrics(y, s, threshold=thr, n_boot=50)
        assert t.loc[(site, "sensitivity_source_threshold"), "estimate"] == pytest.approx(src.sensitivity.estimate)
        assert t.loc[(site, "specificity_source_threshold"), "ci_low"] == pytest.approx(src.specificity.ci_low)
        local = choose_threshold(y, s).threshold  # re-chosen at the site by the same rule
        assert t.loc[(site, "threshold_site"), "estimate"] == local
        here = binary_metrics(y, s, threshold=local, n_boot=50)
        assert t.loc[(site, "sensitivity_site_threshold"), "estimate"] == pytest.approx(here.sensitivity.estimate)
        assert "optimistic" in t.loc[(site, "sensitivity_site_threshold"), "note"]
    # the known miscalibration of site "far" shows; site "near" is close to calibrated
    assert t.loc[("far", "calibration_slope"), "ci_high"] < 0.8
    assert t.loc[("far", "calibration_in_the_large"), "estimate"] < -0.5
    assert t.loc[("near", "calibration_slope"), "ci_low"] < 1 < t.loc[("near", "calibration_slope"), "ci_high"]


def test_without_a_site_column_all_external_rows_are_one_site():
    p = read_predictions(_frame(site=False), positive="malignant")
    ev = external_validation(p, n_boot=20)
    assert ev.site_column is None
    assert set(ev.to_frame()["site"]) == {"internal", "external"}
    y, s = _rows(p, split="external")
    t = ev.to_frame().set_index(["site", "metric"])
    assert t.loc[("external", "auc"), "estimate"] == pytest.approx(roc_auc(y, s).estimate)


def test_given_source_threshold_and_fixed_rule(preds):
    ev = external_validation(preds, thresholds={"cnn": 0.3}, threshold="0.3", n_boot=20)
    t = ev.to_frame().set_index(["site", "metric"])
    assert t.loc[("far", "threshold_source"), "estimate"] == 0.3
    y, s = _rows(preds, split="external", site="far")
    assert t.loc[("far", "threshold_site"), "estimate"] == choose_threshold(y, s).threshold  # Youden, noted
    assert any("Youden" in n for r in ev.results for n in r.notes)


def test_evaluate_adds_tables_json_and_figures(preds):
    run = evaluate_predictions(preds, n_boot=20, recalibrate=True, recalibration_sizes=[10, 30],
                               recalibration_repeats=3)
    ext = run.tables["external"]
    # evaluate's own numbers of the external split are still there; the source threshold is evaluate's threshold
    disc = run.tables["discrimination"]
    assert len(disc[(disc["split"] == "external") & (disc["metric"] == "auc")]) == 1
    thr = run.metrics["models"]["cnn"]["threshold"]["value"]
    assert (ext.loc[ext["metric"] == "threshold_source", "estimate"] == thr).all()
    curve = run.tables["recalibration_curve"]
    assert set(curve["site"]) == {"near", "far"} and set(curve["n_local"]) == {10, 30}
    doc = run.metrics["external"]
    assert set(doc["models"]["cnn"]["sites"]) == {"near", "far"}
    far = doc["models"]["cnn"]["sites"]["far"]["metrics"]["auc"]["estimate"]
    assert far == pytest.approx(ext[(ext["site"] == "far") & (ext["metric"] == "auc")]["estimate"].iloc[0])
    assert {"external_cnn", "recalibration_cnn_far", "recalibration_cnn_near"} <= set(run.figures)


def test_evaluate_without_external_rows_is_unchanged_and_refuses_recalibrate():
    p = read_predictions(_frame()[lambda f: f["split"] != "external"], positive="malignant")
    run = evaluate_predictions(p, n_boot=10)
    assert "external" not in run.tables and "external" not in run.metrics
    with pytest.raises(StatisticsInputError, match="external"):
        evaluate_predictions(p, n_boot=10, recalibrate=True)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"recalibrate": True, "sizes": [1]}, "int >= 2"),
    ({"recalibrate": True, "repeats": 0}, "repeats"),
    ({"models": ["nosuch"]}, "nosuch"),
    ({"threshold": "sens:2"}, r"\[0, 1\]"),
])
def test_bad_options_are_refused(preds, kwargs, match):
    with pytest.raises(StatisticsInputError, match=match):
        external_validation(preds, n_boot=10, **kwargs)


def test_multiclass_and_no_external_rows_are_refused():
    f = _frame()
    three = f.assign(p_benign=(1 - f["p_malignant"]) / 2, p_other=(1 - f["p_malignant"]) / 2)
    three.loc[::7, "y_true"] = "other"
    with pytest.raises(StatisticsInputError, match="binary"):
        external_validation(read_predictions(three), n_boot=10)
    with pytest.raises(StatisticsInputError, match="external"):
        external_validation(read_predictions(f[f["split"] != "external"], positive="malignant"), n_boot=10)


def test_a_site_too_small_for_a_curve_is_noted_not_fatal(preds):
    ev = external_validation(preds, recalibrate=True, sizes=[60], repeats=3, n_boot=10)
    assert ("cnn", "far") in ev.curves and ("cnn", "near") not in ev.curves  # 90 patients: 60 leaves < half
    assert any("near" in n and "no recalibration curve" in n for n in ev.notes)


def test_cli_writes_the_answer_first_and_refuses_bad_options(tmp_path):
    path = tmp_path / "predictions.csv"
    f = _frame()
    f[f["site"] != "near"].to_csv(path, index=False)  # one external site: fewer figures to draw
    res = runner.invoke(app, ["evaluate", str(path), "-o", str(tmp_path / "out"), "--n-boot", "10",
                              "--recalibrate", "--recal-size", "20", "--recal-repeats", "2"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    table = pd.read_csv(out / "tables" / "recalibration_curve.csv")
    assert set(table["n_local"]) == {20} and (table["n_repeats"] + table["n_failed"] <= 2).all()
    ext = pd.read_csv(out / "tables" / "external.csv")
    assert set(ext["site"]) == {"internal", "far"}
    html = (out / "report.html").read_text(encoding="utf-8")
    start = html.index('class="summary"')
    summary = html[start:html.index("</section>", start)]
    assert "External validation: cnn at far (300 patients" in summary  # the answer opens the report
    assert "External validation by site" in html and "Recalibration from a local sample" in html
    assert json.loads((out / "metrics.json").read_text())["external"]["rule"] == "youden"
    checklist = html[html.index(">TRIPOD+AI<"):]
    assert "External validation by site" in checklist  # checklist item 23b points to it
    res = runner.invoke(app, ["evaluate", str(path), "-o", str(tmp_path / "bad"), "--recalibrate",
                              "--recal-size", "1"])
    assert res.exit_code == 2 and "int >= 2" in res.output
    res = runner.invoke(app, ["evaluate", str(path), "-o", str(tmp_path / "bad2"), "--recal-repeats", "0"])
    assert res.exit_code == 2 and "--recal-repeats" in res.output
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()


def test_far_site_recalibration_curve_recovers_calibration(preds):
    ev = external_validation(preds, recalibrate=True, sizes=[100], repeats=20, n_boot=10)
    t = ev.curves[("cnn", "far")].table.set_index(["method", "metric"])
    none, lg = (t.loc[(m, "calibration_slope"), "median"] for m in ("none", "logistic"))
    assert none < 0.7 and abs(lg - 1) < abs(none - 1)
    assert t.loc[("logistic", "brier"), "median"] < t.loc[("none", "brier"), "median"]
    assert abs(t.loc[("intercept", "calibration_in_the_large"), "median"]) < abs(
        t.loc[("none", "calibration_in_the_large"), "median"])


def test_a_site_with_one_class_is_reported_undefined_not_fatal():
    f = _frame()
    f = pd.concat([f, f[f["site"] == "near"].head(6).assign(site="tiny", y_true="benign",
                                                           patient_id=lambda d: "t" + d["patient_id"])])
    ev = external_validation(read_predictions(f, positive="malignant"), recalibrate=True, sizes=[20], repeats=2,
                             n_boot=10)
    t = ev.to_frame().set_index(["site", "metric"])
    for metric in ("auc", "auc_difference", "calibration_slope", "threshold_site", "sensitivity_site_threshold"):
        assert np.isnan(t.loc[("tiny", metric), "estimate"]), metric
    assert t.loc[("tiny", "specificity_source_threshold"), "estimate"] >= 0  # defined: there are negatives
    assert any("no site threshold" in n for r in ev.results if r.site == "tiny" for n in r.notes)
    assert ("cnn", "tiny") not in ev.curves


def test_external_rows_only_with_a_fixed_bundle_threshold():
    """``predict --split external`` output: no internal rows; the bundle's threshold is given as a fixed one."""
    f = _frame()
    only = f[f["split"] == "external"].assign(threshold=0.42)
    run = evaluate_predictions(read_predictions(only, positive="malignant"), threshold="0.42", n_boot=10)
    ext = run.tables["external"]
    assert set(ext["role"]) == {"external"} and set(ext["site"]) == {"near", "far"}
    assert (ext.loc[ext["metric"] == "threshold_source", "estimate"] == 0.42).all()
    assert ext.loc[ext["metric"] == "auc_difference", "estimate"].isna().all()
    assert any("no internal reference" in n for n in run.metrics["external"]["notes"])
