"""``nodescope evaluate`` end to end on small seeded synthetic predictions written here.

Every number checked in metrics.json is recomputed from the CSV with the library functions on the same rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.evaluation._multiclass import multiclass_metrics
from nodescope.evaluation._report import parse_threshold
from nodescope.evaluation._roc import roc_auc
from nodescope.evaluation._threshold import binary_metrics, choose_threshold

runner = CliRunner()
N_BOOT = "40"


def _binary_predictions(path: Path, *, synthetic: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    truth = np.random.default_rng(3)
    rows = []
    for split, n in (("cv", 80), ("test", 50)):
        ys = truth.random(n) < 0.4
        for model, strength in (("cnn", 2.0), ("radiomics", 0.8)):
            for i, y in enumerate(ys):
                p = 1 / (1 + np.exp(-(strength * y + rng.normal() - 0.7)))
                rows.append({"patient_id": f"{split}{i}", "y_true": "malignant" if y else "benign",
                             "p_benign": 1 - p, "p_malignant": p, "split": split,
                             "fold": i % 4 if split == "cv" else "", "model": model, "run_id": "run1",
                             "site": "AB"[i % 2]})
    frame = pd.DataFrame(rows)
    if synthetic:
        frame["synthetic"] = "yes"
    frame.to_csv(path, index=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _multiclass_predictions(path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    classes = ["benign", "lymphoma", "metastatic"]
    rows = []
    for split, n in (("cv", 60), ("test", 45)):
        for i in range(n):
            k = int(rng.integers(3))
            logits = rng.normal(size=3)
            logits[k] += 1.5
            p = np.exp(logits) / np.exp(logits).sum()
            rows.append({"patient_id": f"{split}{i}", "y_true": classes[k],
                         **{f"p_{c}": p[j] for j, c in enumerate(classes)}, "split": split,
                         "fold": i % 3 if split == "cv" else "", "model": "net", "run_id": "r"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("binary")
    frame = _binary_predictions(tmp / "predictions.csv")
    test = frame[(frame["model"] == "cnn") & (frame["split"] == "test")]
    rng = np.random.default_rng(2)
    reads = []
    for reader in ("R1", "R2"):
        for aided in ("no", "yes"):
            for _, row in test.iterrows():
                y = row["y_true"] == "malignant"
                score = int(np.clip(np.round(3 + (2 * y - 1) + rng.normal()), 1, 5))
                reads.append({"patient_id": row["patient_id"], "reader": reader, "aided": aided, "score": score,
                              "call": int(score >= 3)})
    pd.DataFrame(reads).to_csv(tmp / "reads.csv", index=False)
    out = tmp / "out"
    result = runner.invoke(app, ["evaluate", str(tmp / "predictions.csv"), "-o", str(out), "--positive", "malignant",
                                 "--by", "site", "--by", "split", "--compare", "cnn", "radiomics",
                                 "--readers", str(tmp / "reads.csv"), "--model", "cnn", "--n-boot", N_BOOT])
    assert result.exit_code == 0, result.output
    return frame, out, json.loads((out / "metrics.json").read_text())


def test_files_exist(binary_run):
    _, out, _ = binary_run
    for name in ("metrics.json", "report.html"):
        assert (out / name).is_file()
    for table in ("flow", "discrimination", "operating_point", "calibration", "dca", "subgroups", "comparisons",
                  "readers", "reader_comparisons", "mrmc"):
        assert (out / "tables" / f"{table}.csv").is_file(), table
    for stem in ("roc_cnn", "pr_cnn", "calibration_cnn", "dca_cnn", "confusion_cnn_test"):
        for ext in ("png", "svg"):
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 0


def test_threshold_from_cv_rows_only_and_values_equal_library(binary_run):
    frame, _, metrics = binary_run
    assert metrics["schema_version"] == "2.0" and metrics["task"] == "binary"
    assert metrics["positive"] == "malignant"
    cnn = frame[frame["model"] == "cnn"]
    cv, test = cnn[cnn["split"] == "cv"], cnn[cnn["split"] == "test"]
    y_cv, s_cv = (cv["y_true"] == "malignant").astype(int), cv["p_malignant"].astype(float)
    choice = choose_threshold(y_cv, s_cv, method="youden")
    doc = metrics["models"]["cnn"]
    assert doc["threshold"]["value"] == pytest.approx(choice.threshold, abs=0)
    assert doc["threshold"]["chosen_on"] == "cv"
    # the test rows never move the threshold: choosing on test rows gives a different value here
    y_t, s_t = (test["y_true"] == "malignant").astype(int), test["p_malignant"].astype(float)
    assert choose_threshold(y_t, s_t).threshold != pytest.approx(choice.threshold)
    split = doc["splits"]["test"]
    auc = roc_auc(y_t, s_t, method="delong")
    assert split["discrimination"]["auc"]["estimate"] == pytest.approx(auc.estimate)
    assert split["discrimination"]["auc"]["ci_low"] == pytest.approx(auc.ci_low)
    bm = binary_metrics(y_t, s_t, threshold=choice.threshold, n_boot=int(N_BOOT))
    op = split["operating_point"]
    assert op["table"] == {"tp": bm.table.tp, "fp": bm.table.fp, "fn": bm.table.fn, "tn": bm.table.tn}
    assert op["metrics"]["sensitivity"]["estimate"] == pytest.approx(bm.sensitivity.estimate)
    assert op["metrics"]["specificity"]["ci_high"] == pytest.approx(bm.specificity.ci_high)
    assert op["threshold_tuned_on_this_split"] is False
    assert doc["splits"]["cv"]["operating_point"]["threshold_tuned_on_this_split"] is True
    flow = {(r["model"], r["split"]): r for r in metrics["flow"]}
    assert flow[("cnn", "test")]["n_malignant"] == int(y_t.sum())


def test_tables_match_json(binary_run):
    _, out, metrics = binary_run
    disc = pd.read_csv(out / "tables" / "discrimination.csv")
    row = disc[(disc["split"] == "test") & (disc["metric"] == "auc")].iloc[0]
    assert row["estimate"] == pytest.approx(metrics["models"]["cnn"]["splits"]["test"]["discrimination"]["auc"]
                                            ["estimate"])
    sub = pd.read_csv(out / "tables" / "subgroups.csv")
    assert {"site", "split"} == set(sub["by"]) and {"A", "B", "cv", "test"} == set(sub["level"])
    comp = pd.read_csv(out / "tables" / "comparisons.csv")
    assert {"auc", "sensitivity", "specificity"} <= set(comp["metric"])
    assert metrics["readers"]["mrmc"]["modalities"] == ["aided", "unaided"]


def test_report_is_self_contained(binary_run):
    _, out, _ = binary_run
    html = (out / "report.html").read_text()
    assert not re.search(r"(src|href)\s*=\s*[\"']?https?://", html)
    assert not re.search(r"https?://", html)
    assert "TRIPOD+AI" in html and "STARD 2015" in html and "author-supplied" in html
    assert "Multi-reader multi-case" in html
    assert "synthetic" not in html.lower().split("</h1>")[1][:300]  # no banner for data not flagged synthetic


def test_synthetic_banner_and_multiclass(tmp_path):
    _binary_predictions(tmp_path / "syn.csv", synthetic=True)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "syn.csv"), "-o", str(tmp_path / "s"), "--n-boot", "20",
                              "--threshold", "0.5"])
    assert res.exit_code == 0, res.output
    assert 'class="banner">These data are synthetic' in (tmp_path / "s" / "report.html").read_text()
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["synthetic"] is True

    frame = _multiclass_predictions(tmp_path / "mc.csv")
    res = runner.invoke(app, ["evaluate", str(tmp_path / "mc.csv"), "-o", str(tmp_path / "m"), "--n-boot", "20",
                              "--by", "split"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert m["task"] == "multiclass"
    test = frame[frame["split"] == "test"]
    classes = ["benign", "lymphoma", "metastatic"]
    ref = multiclass_metrics(test["y_true"].to_numpy(), test[[f"p_{c}" for c in classes]].astype(float).to_numpy(),
                             classes=classes, n_boot=20)
    got = m["models"]["net"]["splits"]["test"]["estimates"]
    assert got["macro_auc"]["estimate"] == pytest.approx(ref.macro_auc.estimate)
    assert got["auc_lymphoma"]["ci_low"] == pytest.approx(ref.auc_per_class[1].ci_low)
    assert (tmp_path / "m" / "figures" / "confusion_net_test.png").is_file()
    assert "Multi-class" in (tmp_path / "m" / "report.html").read_text()


@pytest.mark.parametrize(
    ("mutate", "args", "message"),
    [
        (None, ["--threshold", "best"], "not understood"),
        (None, ["--model", "gpt"], "not in the predictions"),
        (None, ["--by", "hospital"], "hospital"),
        (None, ["--compare", "cnn", "svm"], "svm"),
        (lambda f: f.drop(columns=["y_true"]), [], "y_true"),
        (lambda f: f[f["split"] == "test"], [], "no cv/val rows"),
    ],
)
def test_bad_input_exits_2(tmp_path, mutate, args, message):
    frame = _binary_predictions(tmp_path / "p.csv")
    if mutate is not None:
        mutate(frame).to_csv(tmp_path / "p.csv", index=False)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "p.csv"), "-o", str(tmp_path / "o"), "--n-boot", "10",
                              *args])
    assert res.exit_code == 2
    assert message in res.output


def test_missing_files_exit_2(tmp_path):
    res = runner.invoke(app, ["evaluate", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not found" in res.output
    _binary_predictions(tmp_path / "p.csv")
    res = runner.invoke(app, ["evaluate", str(tmp_path / "p.csv"), "-o", str(tmp_path / "o"),
                              "--readers", str(tmp_path / "reads.csv")])
    assert res.exit_code == 2 and "reads table not found" in res.output


def test_parse_threshold():
    assert parse_threshold("sens:0.9").method == "sensitivity"
    assert parse_threshold("Spec:0.85").target == 0.85
    assert parse_threshold("0.37").method == "fixed"
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        parse_threshold("1.5")


def test_hosmer_lemeshow_df_by_split(binary_run):
    # cv rows: g - 2 df (as hoslem.test); test rows come from a model fitted elsewhere: g df (Hosmer, Lemeshow &
    # Sturdivant, Applied Logistic Regression 3rd ed., ch. 5, external validation)
    _, _, metrics = binary_run
    splits = metrics["models"]["cnn"]["splits"]
    cv, test = splits["cv"]["calibration"]["hosmer_lemeshow"], splits["test"]["calibration"]["hosmer_lemeshow"]
    assert cv["df_rule"] == "g-2" and cv["df"] == cv["n_groups"] - 2
    assert test["df_rule"] == "g" and test["df"] == test["n_groups"]


def test_multiclass_compare_refuses_duplicate_keys(tmp_path):
    # two rows of one patient (no image/lesion_id to tell them apart) per model: a many-to-many merge would pair
    # 2 x 2 = 4 rows and inflate the DeLong test; the merge must be one-to-one and the error must name the keys
    frame = _multiclass_predictions(tmp_path / "mc.csv")
    other = frame.assign(model="net2")
    both = pd.concat([frame, other], ignore_index=True)
    dup = both[both["patient_id"] == "test0"]
    pd.concat([both, dup], ignore_index=True).to_csv(tmp_path / "mc.csv", index=False)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "mc.csv"), "-o", str(tmp_path / "m"), "--n-boot", "10",
                              "--compare", "net", "net2"])
    assert res.exit_code == 2, res.output
    assert "several rows for the same ['patient_id']" in res.output and "'test'" in res.output


def test_compare_with_several_rows_per_patient_uses_cluster_bootstrap(tmp_path):
    # each patient has two images: DeLong/McNemar/Wilson would count 2N independent cases. The comparison must be
    # the paired cluster bootstrap over patients, equal to bootstrap_difference(groups=patient_id) on those rows.
    from nodescope.evaluation._compare import bootstrap_difference

    frame = _binary_predictions(tmp_path / "p.csv")
    two = pd.concat([frame.assign(image="a.png"), frame.assign(image="b.png")], ignore_index=True)
    two.to_csv(tmp_path / "p.csv", index=False)
    out = tmp_path / "o"
    res = runner.invoke(app, ["evaluate", str(tmp_path / "p.csv"), "-o", str(out), "--positive", "malignant",
                              "--compare", "cnn", "radiomics", "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    comp = next(c for c in metrics["comparisons"] if c["split"] == "test")
    assert comp["clustered_by_patient"] is True and "cluster bootstrap" in comp["note"]
    assert comp["auc"]["method"] == comp["sensitivity"]["method"] == "cluster-bootstrap"
    test = two[two["split"] == "test"]
    ya = (test[test["model"] == "cnn"]["y_true"] == "malignant").astype(int).to_numpy()
    sa = test[test["model"] == "cnn"]["p_malignant"].astype(float).to_numpy()
    sb = test[test["model"] == "radiomics"]["p_malignant"].astype(float).to_numpy()
    pid = test[test["model"] == "cnn"]["patient_id"].to_numpy()
    ref = bootstrap_difference(ya, sa, sb, metric="auc", n_boot=200, groups=pid, seed=0)
    assert comp["auc"]["difference"]["ci_low"] == pytest.approx(ref.ci_low, abs=1e-12)
    assert comp["auc"]["difference"]["ci_high"] == pytest.approx(ref.ci_high, abs=1e-12)
    thr = metrics["models"]["cnn"]["splits"]["test"]["operating_point"]["metrics"]["sensitivity"]
    assert "cluster bootstrap" in thr["note"]
