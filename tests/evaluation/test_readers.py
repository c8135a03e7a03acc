"""Reader studies: reads validation, operating points, paired tests, aided vs unaided, MRMC through the reads table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from nodescope.evaluation._mrmc import mrmc_analysis
from nodescope.evaluation._readers import reader_study, validate_reads

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def vandyke_reads(vandyke):
    """Van Dyke reads as a reads table: SE MRI (modality 1) plays "aided", CINE MRI "unaided"; call = rating >= 3."""
    y, x = vandyke
    rows = [{"patient_id": f"c{c}", "reader": f"R{r + 1}", "aided": ["no", "yes"][m], "score": x[m, r, c],
             "call": int(x[m, r, c] >= 3)}
            for m in range(2) for r in range(5) for c in range(114)]
    truth = pd.Series(y, index=[f"c{c}" for c in range(114)])
    return validate_reads(pd.DataFrame(rows)), truth, y, x


def test_operating_points_match_mrmcaov_binary_sens(vandyke_reads):
    # Reference: MRMCaov JSS manuscript (brian-j-smith/MRMCaov docs/jss/MRMCaov.tex):
    #   VanDyke$binary_rating <- VanDyke$rating >= 3
    #   mrmc(binary_sens(truth, binary_rating), treatment, reader, case, data = VanDyke)  -> per-reader sensitivity
    reads, truth, _, _ = vandyke_reads
    st = reader_study(reads, truth)
    sens = {(p.reader, p.condition): p.sensitivity.estimate for p in st.points}
    expected_unaided = [0.889, 0.778, 0.822, 0.933, 0.689]
    expected_aided = [0.978, 0.822, 0.911, 1.0, 0.889]
    for j in range(5):
        assert sens[(f"R{j + 1}", "unaided")] == pytest.approx(expected_unaided[j], abs=5e-4)
        assert sens[(f"R{j + 1}", "aided")] == pytest.approx(expected_aided[j], abs=5e-4)


def test_wilson_interval_matches_statsmodels(vandyke_reads):
    reads, truth, y, x = vandyke_reads
    st = reader_study(reads, truth)
    p = next(p for p in st.points if p.reader == "R2" and p.condition == "unaided")
    tn = int(((x[0, 1] < 3) & (y == 0)).sum())
    lo, hi = proportion_confint(tn, 69, alpha=0.05, method="wilson")
    assert p.specificity.estimate == pytest.approx(tn / 69)
    assert (p.specificity.ci_low, p.specificity.ci_high) == pytest.approx((lo, hi), rel=1e-12)
    assert p.specificity.method == "wilson"
    assert p.fpr == pytest.approx(1 - tn / 69)


def test_aided_vs_unaided_matches_proc(vandyke_reads):
    # Reference: tests/evaluation/r/readers_reference.R (pROC roc.test(aided, unaided, method = "delong",
    # paired = TRUE); ci.auc(method = "delong"); binom.test for the exact McNemar), output in readers_reference.out.
    reads, truth, _, _ = vandyke_reads
    st = reader_study(reads, truth)
    by_reader = {c.reader: c for c in st.aided_vs_unaided}
    ref = {  # reader: (p, ci_low, ci_high)
        "R1": (0.2665333472, -0.0215302100, 0.0778909185),
        "R2": (0.0750613901, -0.0047025692, 0.0977782535),
        "R5": (0.0221540704, 0.0143496711, 0.1859723901),
    }
    for reader, (p, lo, hi) in ref.items():
        d = by_reader[reader].auc_difference
        assert d is not None
        assert d.extra["p_value"] == pytest.approx(p, abs=1e-9)
        assert (d.ci_low, d.ci_high) == pytest.approx((lo, hi), abs=1e-9)
    r5 = by_reader["R5"]
    assert r5.sensitivity_test is not None
    assert r5.sensitivity_test.table[1:3] == (10, 1)  # only aided correct, only unaided correct
    assert r5.sensitivity_test.p_value == pytest.approx(0.0117187500, abs=1e-10)
    point = next(p for p in st.points if p.reader == "R1" and p.condition == "unaided")
    assert point.auc is not None
    assert (point.auc.ci_low, point.auc.ci_high) == pytest.approx((0.8609736602, 0.9783178052), abs=1e-9)


def test_mrmc_through_reads_equals_direct_analysis(vandyke_reads):
    reads, truth, y, x = vandyke_reads
    st = reader_study(reads, truth)
    assert st.rating == "score"
    direct = mrmc_analysis(y, x[::-1], modalities=["aided", "unaided"], readers=[f"R{j}" for j in range(1, 6)])
    assert st.mrmc is not None
    assert st.mrmc.modalities == ("aided", "unaided")
    assert st.mrmc.f_statistic == pytest.approx(direct.f_statistic, rel=1e-12)
    # the MRMCaov DeLong reference (see test_mrmc.py), sign flipped because aided (SE MRI) comes first here
    assert st.mrmc.differences[0].estimate == pytest.approx(0.04380032, abs=5e-9)
    assert st.mrmc.p_value == pytest.approx(0.05123303, abs=5e-9)


def test_mrmc_drops_incomplete_cases_with_note(vandyke_reads):
    reads, truth, _, _ = vandyke_reads
    partial = reads[~((reads["reader"] == "R3") & (reads["patient_id"].isin(["c0", "c100"])))]
    st = reader_study(partial, truth)
    assert st.mrmc is not None and st.mrmc.n_cases == 112
    assert any("2 of 114 patients" in n for n in st.notes)


def test_reader_versus_model_counts_by_hand():
    truth = pd.Series([1, 1, 1, 1, 0, 0, 0, 0], index=[f"p{i}" for i in range(8)])
    model = pd.Series([0.9, 0.8, 0.2, 0.7, 0.1, 0.6, 0.3, 0.2], index=truth.index)
    calls = [1, 0, 0, 1, 0, 1, 1, 0]
    reads = validate_reads(pd.DataFrame({"patient_id": truth.index, "reader": "A", "call": calls}))
    st = reader_study(reads, truth, model_score=model, threshold=0.5, model_name="net")
    (c,) = st.versus_model
    # model calls: 1 1 0 1 | 0 1 0 0. Positives: reader 1 0 0 1, model 1 1 0 1 -> reader-only 0, model-only 1.
    assert c.sensitivity_test is not None and c.specificity_test is not None
    assert c.sensitivity_test.table == (2, 0, 1, 1)
    # Negatives (correct = call 0): reader 1 0 0 1 -> correct 1,0,0,1... reader calls 0 1 1 0, model 0 1 0 0
    # reader correct: T F F T; model correct: T F T T -> reader-only 0, model-only 1
    assert c.specificity_test.table == (2, 0, 1, 1)
    table = np.array([[2, 0], [1, 1]])  # positives: rows reader correct yes/no, columns model correct yes/no
    assert c.sensitivity_test.p_value == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert c.sensitivity_a.estimate == 0.5 and c.sensitivity_b.estimate == 0.75
    assert c.auc_difference is None  # no reader scores
    assert st.mrmc is None and any("two readers" in n for n in st.notes)
    d = st.to_dict()
    assert d["versus_model"][0]["sensitivity"]["difference"]["estimate"] == pytest.approx(-0.25)
    frame = st.comparisons_frame()
    assert set(frame["metric"]) == {"sensitivity", "specificity"}


def test_calls_as_class_names_and_scores_only():
    reads = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "reader": "X",
                          "call": ["malignant", "benign", "malignant", "benign"]})
    out = validate_reads(reads, positive="malignant", classes=("benign", "malignant"))
    assert out["call"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert (out["condition"] == "all").all()
    truth = pd.Series([1, 0, 0, 1], index=["a", "b", "c", "d"])
    only_scores = validate_reads(pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "reader": "X",
                                               "score": [5, 1, 2, 4]}))
    st = reader_study(only_scores, truth)
    assert np.isnan(st.points[0].sensitivity.estimate)
    st2 = reader_study(only_scores, truth, reader_threshold=3)
    assert st2.points[0].sensitivity.estimate == 1.0 and st2.points[0].specificity.estimate == 1.0
    assert any("score >= 3" in n for n in st2.notes)


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"patient_id": ["a"], "call": [1]}), {}, r"missing column\(s\) \['reader'\]"),
        (pd.DataFrame({"patient_id": ["a"], "reader": ["r"]}), {}, "'call' column"),
        (pd.DataFrame({"patient_id": ["a", "b"], "reader": ["r", "r"], "call": [1, "maybe"]}), {},
         r"'call' has values \['maybe'\] \(lines \[3\]\)"),
        (pd.DataFrame({"patient_id": ["a", ""], "reader": ["r", "r"], "call": [1, 0]}), {}, "'patient_id' is empty"),
        (pd.DataFrame({"patient_id": ["a", "a"], "reader": ["r", "r"], "call": [1, 0]}), {}, "more than once"),
        (pd.DataFrame({"patient_id": ["a"], "reader": ["r"], "score": ["high"]}), {}, "'score' must be numeric"),
        (pd.DataFrame({"patient_id": ["a"], "reader": ["r"], "call": [1], "aided": ["sometimes"]}), {},
         "'aided' has values"),
    ],
)
def test_bad_reads(frame, kwargs, message):
    with pytest.raises(ValueError, match=message):
        validate_reads(frame, source="reads.csv", **kwargs)


def test_unknown_patient_and_half_model_arguments():
    reads = validate_reads(pd.DataFrame({"patient_id": ["a", "zz"], "reader": "r", "call": [1, 0]}))
    truth = pd.Series([1, 0], index=["a", "b"])
    with pytest.raises(ValueError, match=r"not in the predictions, e.g. \['zz'\]"):
        reader_study(reads, truth)
    ok = validate_reads(pd.DataFrame({"patient_id": ["a", "b"], "reader": "r", "call": [1, 0]}))
    with pytest.raises(ValueError, match="give both"):
        reader_study(ok, truth, threshold=0.5)


def test_reader_missing_a_condition_is_left_out_of_mrmc_only(vandyke_reads):
    # R5 read unaided only: the fully crossed MRMC cannot include it (it used to raise KeyError ('aided', 'R5'));
    # the MRMC over R1-R4 equals the direct analysis of those four readers, and R5 keeps its per-reader results
    reads, truth, y, x = vandyke_reads
    partial = reads[~((reads["reader"] == "R5") & (reads["condition"] == "aided"))]
    st = reader_study(partial, truth)
    assert st.mrmc is not None and st.mrmc.readers == ("R1", "R2", "R3", "R4")
    direct = mrmc_analysis(y, x[:, :4, :][::-1], modalities=["aided", "unaided"], readers=["R1", "R2", "R3", "R4"])
    assert st.mrmc.f_statistic == pytest.approx(direct.f_statistic, rel=1e-12)
    assert st.mrmc.p_value == pytest.approx(direct.p_value, rel=1e-12)
    assert any("['R5'] left out" in n for n in st.notes)
    assert [p.condition for p in st.points if p.reader == "R5"] == ["unaided"]


def test_reader_without_scores_decided_per_reader(vandyke_reads):
    # R5 gives calls only (empty score cells): no AUC and no score-based comparison for R5 (NaN never reaches
    # DeLong), R5 left out of the score-based MRMC, the other readers unaffected
    reads, truth, _, x = vandyke_reads
    raw = reads.assign(aided=reads["condition"].map({"aided": "yes", "unaided": "no"})).drop(columns="condition")
    raw["call"] = raw["call"].astype(int)
    raw["score"] = raw["score"].astype(object)
    raw.loc[raw["reader"] == "R5", "score"] = ""
    st = reader_study(validate_reads(raw), truth, model_score=pd.Series(x[0, 0], index=truth.index), threshold=3,
                      model_name="m")
    r5 = [p for p in st.points if p.reader == "R5"]
    assert r5 and all(p.auc is None and p.sensitivity.defined for p in r5)
    r1 = [p for p in st.points if p.reader == "R1"]
    assert all(p.auc is not None and np.isfinite(p.auc.estimate) for p in r1)
    assert all(c.auc_difference is None for c in st.aided_vs_unaided if c.reader == "R5")
    assert all(c.auc_difference is None for c in st.versus_model if c.reader.startswith("R5"))
    assert st.mrmc is not None and st.mrmc.readers == ("R1", "R2", "R3", "R4")
    assert any("R5" in n and "no score" in n for n in st.notes)
