"""Input of the meta-analysis: studies tables, 2x2 reconstruction and the packaged example."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from nodescope.meta import (
    ReconstructionWarning,
    Studies,
    StudiesError,
    example_paths,
    generate_synthetic_cohorts,
    read_studies,
    reconstruct_2x2,
)


def _frame(**over):
    base = {"study": ["A", "B", "C"], "TP": [9, 5, 7], "FP": [1, 2, 3], "FN": [1, 5, 2], "TN": [9, 8, 20]}
    base.update(over)
    return pd.DataFrame(base)


def test_reads_csv_keeps_covariates_and_counts(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("study,cohort,tp,FP,FN,TN,modality,year\nA,int,9,1,1,9,US,2020\nA,ext,5,2,5,8,US,2021\n"
                    "B,,7,3,2,20,MRI,2022\n")
    s = read_studies(path, covariates=["modality"])
    assert isinstance(s, Studies) and len(s) == 3
    assert s.tp.tolist() == [9, 5, 7] and s.tn.tolist() == [9, 8, 20]
    assert s.renamed == {"tp": "TP"}
    assert s.covariates == ("modality", "year")
    assert s.frame["year"].tolist() == [2020, 2021, 2022]
    assert s.frame["modality"].tolist() == ["US", "US", "MRI"]
    assert s.labels() == ["A: int", "A: ext", "B"]
    assert s.source == str(path)


def test_no_cohort_column_gives_empty_cohorts():
    s = read_studies(_frame())
    assert not s.has_cohorts
    assert s.frame["cohort"].tolist() == ["", "", ""]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TP": [9, -1, 7]}, "row 2 (study 'B'), column 'TP': '-1' is negative"),
        ({"FN": [1, 2.5, 2]}, "row 2 (study 'B'), column 'FN': '2.5' is not an integer"),
        ({"TN": [9, None, 20]}, "row 2 (study 'B'), column 'TN': empty"),
        ({"FP": [1, "x", 3]}, "row 2 (study 'B'), column 'FP': 'x' is not a number"),
        ({"TP": [0, 5, 7], "FN": [0, 5, 2]}, "row 1 (study 'A'): empty diseased arm (TP + FN == 0)"),
        ({"FP": [1, 0, 3], "TN": [9, 0, 20]}, "row 2 (study 'B'): empty non-diseased arm (FP + TN == 0)"),
        ({"study": ["A", "A", "C"]}, "rows 1, 2: duplicate study 'A'"),
        ({"study": ["A", "", "C"]}, "row 2, column 'study': empty study label"),
    ],
)
def test_bad_values_are_named(change, message):
    with pytest.raises(StudiesError) as info:
        read_studies(_frame(**{k: v for k, v in change.items()}))
    assert message in str(info.value)


def test_all_problems_reported_at_once():
    frame = _frame(TP=[-1, 5, 7], TN=[9, 8, 1.5])
    with pytest.raises(StudiesError) as info:
        read_studies(frame)
    assert len(info.value.problems) == 2


def test_missing_and_ambiguous_columns():
    with pytest.raises(StudiesError, match=r"column 'TN' is missing \(did you mean 'TNN'\?\)"):
        read_studies(_frame().rename(columns={"TN": "TNN"}))
    frame = _frame()
    frame["tp"] = frame["TP"]
    with pytest.raises(StudiesError, match="several headers match it case-insensitively"):
        read_studies(frame)
    with pytest.raises(StudiesError, match="covariate column 'modality' is missing"):
        read_studies(_frame(), covariates=["modality"])


def test_duplicate_cohorts_within_study():
    frame = _frame(study=["A", "A", "A"])
    frame["cohort"] = ["int", "ext", "int"]
    with pytest.raises(StudiesError, match="rows 1, 3: duplicate study 'A', cohort 'int'"):
        read_studies(frame)
    frame["cohort"] = ["int", "ext", "ext2"]
    assert len(read_studies(frame)) == 3


def test_unknown_covariate_levels():
    frame = _frame(modality=["US", "us", "PET"])
    with pytest.raises(StudiesError) as info:
        read_studies(frame, levels={"modality": ["US", "MRI", "CT"]})
    text = str(info.value)
    assert "row 2 (study 'B'), column 'modality': unknown level 'us' (did you mean 'US'?)" in text
    assert "row 3 (study 'C'), column 'modality': unknown level 'PET'" in text
    with pytest.raises(StudiesError, match="levels given for 'site'"):
        read_studies(frame, levels={"site": ["a"]})


def test_study_col_and_clashing_header_are_recorded(shared_data):
    s = read_studies(shared_data / "dta_examples" / "IAQ.csv", study_col="study_id", cohort_col="result_id")
    assert s.renamed == {"study_id": "study", "result_id": "cohort", "study": "original_study"}
    raw = pd.read_csv(shared_data / "dta_examples" / "IAQ.csv")
    assert s.frame["original_study"].tolist() == raw["study"].tolist()
    assert s.tp.tolist() == raw["TP"].tolist()
    assert s.frame["study"].tolist() == [str(v) for v in raw["study_id"]]


def test_type_and_file_errors(tmp_path):
    with pytest.raises(TypeError, match="path or a pandas DataFrame"):
        read_studies(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        read_studies(tmp_path / "nope.csv")


def test_subset_keeps_metadata():
    s = read_studies(_frame(modality=["US", "CT", "US"]))
    sub = s.subset(s.frame["modality"] == "US")
    assert sub.frame["study"].tolist() == ["A", "C"] and sub.covariates == s.covariates
    with pytest.raises(ValueError, match="one value per cohort"):
        s.subset([True])


# ---------------------------------------------------------------------------------------------------------------
# reconstruct_2x2


def test_reconstruct_zhou_2020_from_the_abstract():
    # Zhou et al., Radiology 2020;294:19-28, abstract, independent test set: the CNN "85% sensitivity (35 of 41
    # images) and 73% specificity (29 of 40 images)", the radiologists "73% sensitivity (30 of 41 images)" and 63%
    # specificity (25 of 40). From the rounded percentages and the arm sizes alone the tables come back exactly.
    table = pd.DataFrame({"study": ["CNN", "radiologists"], "sensitivity": ["85", "73"], "specificity": ["73", "63"],
                          "n_diseased": ["41", "41"], "n_nondiseased": ["40", "40"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = reconstruct_2x2(table, scale="percent")
    assert out[["TP", "FP", "FN", "TN"]].to_numpy().tolist() == [[35, 11, 6, 29], [30, 15, 11, 25]]
    assert out["consistent"].tolist() == [True, True]
    assert out["reconstruction_note"].tolist() == ["", ""]  # a single integer fits each figure


def test_reconstruct_keeps_reported_values_beside_the_table():
    # The same tables written with one decimal: 35/41 = 85.4%, 29/40 = 72.5%, 30/41 = 73.2%, 25/40 = 62.5%.
    table = pd.DataFrame({"study": ["CNN", "radiologists"], "sensitivity": ["85.4", "73.2"],
                          "specificity": ["72.5", "62.5"], "n_diseased": ["41", "41"], "n_nondiseased": ["40", "40"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = reconstruct_2x2(table, scale="percent")
    assert out[["TP", "FP", "FN", "TN"]].to_numpy().tolist() == [[35, 11, 6, 29], [30, 15, 11, 25]]
    assert out["consistent"].tolist() == [True, True]
    # reported and reconstructed side by side, input untouched
    assert out["sensitivity"].tolist() == ["85.4", "73.2"]
    assert out["sens_2x2"].tolist() == pytest.approx([35 / 41, 30 / 41])
    assert out["sens_decimals"].tolist() == [1, 1]
    s = read_studies(out)
    assert s.tp.tolist() == [35, 30]


def test_reconstruct_from_n_and_prevalence_and_notes_ambiguity():
    # n = 200, prevalence 0.3 -> 60 diseased, 140 non-diseased; sens 0.9 -> TP 54; spec 0.85 -> TN 119.
    table = pd.DataFrame({"sensitivity": [0.9], "specificity": [0.85], "n": [200], "prevalence": [0.3]})
    out = reconstruct_2x2(table)
    assert out[["TP", "FP", "FN", "TN"]].iloc[0].tolist() == [54, 21, 6, 119]
    assert out["consistent"].iloc[0]
    # 1 decimal: 0.9 +/- 0.05 of 60 diseased admits TP 51..57
    assert "TP could be 51-57; used 54" in out["reconstruction_note"].iloc[0]


def test_reconstruct_warns_when_no_integer_table_fits():
    # 0.854 with 3 decimals: 35/41 = 0.85366 rounds to 0.854 (consistent); 0.861 with 41 diseased: 35/41 = 0.8537 and
    # 36/41 = 0.8780 both round elsewhere, so no integer TP reproduces it.
    table = pd.DataFrame({"study": ["ok", "bad"], "sensitivity": ["0.854", "0.861"], "specificity": ["0.725", "0.725"],
                          "n_diseased": ["41", "41"], "n_nondiseased": ["40", "40"]})
    with pytest.warns(ReconstructionWarning, match=r"row 2 \(bad\): sensitivity 0.861 \(3 decimals\) with 41 diseased"):
        out = reconstruct_2x2(table)
    assert out["consistent"].tolist() == [True, False]
    assert out["TP"].tolist() == [35, 35]  # nearest integer kept, flagged, never silently "fixed"
    assert "no integer count reproduces it" in out["reconstruction_note"].iloc[1]


def test_reconstruct_decimals_override_and_percent_guard():
    table = pd.DataFrame({"sensitivity": [0.86], "specificity": [0.7], "n_diseased": [41], "n_nondiseased": [40]})
    # 0.86 read as 2 decimals is consistent with 35/41 = 0.8537? no: |0.8537 - 0.86| > 0.005 -> inconsistent
    with pytest.warns(ReconstructionWarning):
        reconstruct_2x2(table)
    # with decimals=1 the interval is 0.86 +/- 0.05: consistent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reconstruct_2x2(table, decimals=1)["consistent"].iloc[0]
    with pytest.raises(ValueError, match=r"row 1, column 'sensitivity': 85.4 is outside \[0, 1\] \(percentages\? pass "
                                         r"scale='percent'\)"):
        reconstruct_2x2(table.assign(sensitivity=[85.4]))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame({"sensitivity": [0.8], "specificity": [0.7]}), "missing column"),
        (pd.DataFrame({"sensitivity": [0.8], "specificity": [0.7], "n_diseased": [4.5], "n_nondiseased": [3]}),
         "row 1, column 'n_diseased': '4.5' is not an integer"),
        (pd.DataFrame({"sensitivity": ["abc"], "specificity": [0.7], "n_diseased": [4], "n_nondiseased": [3]}),
         "row 1, column 'sensitivity': 'abc' is not a number"),
        (pd.DataFrame({"sensitivity": [0.8], "specificity": [0.7], "n_diseased": [0], "n_nondiseased": [3]}),
         "diseased arm is empty"),
    ],
)
def test_reconstruct_errors(table, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        reconstruct_2x2(table)


# ---------------------------------------------------------------------------------------------------------------
# packaged example


def test_example_files_are_valid_and_labelled():
    paths = example_paths()
    s = read_studies(paths["studies"], levels={"modality": ["US", "MRI", "CT"],
                                               "validation": ["internal", "external"],
                                               "data_source": ["synthetic", "published"]})
    assert len(s) == 14
    synthetic = s.frame["data_source"] == "synthetic"
    assert synthetic.sum() == 12
    assert s.frame.loc[synthetic, "notes"].str.startswith("SYNTHETIC").all()
    assert s.frame.loc[synthetic, "study"].str.startswith("Synthetic-").all()
    zhou = s.frame[s.frame["study"] == "Zhou 2020"]
    # Zhou et al., Radiology 2020, independent test set (as published)
    assert zhou[["TP", "FN", "TN", "FP"]].to_numpy().tolist() == [[35, 6, 29, 11], [30, 11, 25, 15]]
    assert zhou["notes"].str.contains("PUBLISHED").all()


def test_example_synthetic_rows_are_reproducible_from_the_generator():
    s = read_studies(example_paths()["studies"])
    synthetic = s.frame[s.frame["data_source"] == "synthetic"].reset_index(drop=True)
    regenerated = generate_synthetic_cohorts()
    for col in ("study", "cohort", "TP", "FP", "FN", "TN", "modality", "validation"):
        assert synthetic[col].tolist() == regenerated[col].tolist(), col
    assert np.all(regenerated[["TP", "FP", "FN", "TN"]].to_numpy() >= 0)
