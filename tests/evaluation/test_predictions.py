"""read_predictions: the predictions contract, positive-class policy and error messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nodescope.evaluation import PredictionsError, read_predictions


def binary_frame(**overrides) -> pd.DataFrame:
    base = {
        "patient_id": ["p1", "p2", "p3", "p4"],
        "y_true": ["benign", "malignant", "benign", "malignant"],
        "p_malignant": [0.1, 0.8, 0.3, 0.6],
        "split": ["val", "val", "test", "test"],
        "fold": ["", "", "", "-1"],
        "model": ["m"] * 4,
        "run_id": ["r1"] * 4,
        "site": ["A", "B", "A", "B"],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_binary_single_column_infers_positive(tmp_path):
    path = tmp_path / "predictions.csv"
    binary_frame().to_csv(path, index=False)
    p = read_predictions(path)
    assert p.task == "binary" and p.positive == "malignant" and p.classes == ("benign", "malignant")
    np.testing.assert_array_equal(p.y_true(), [0, 1, 0, 1])
    np.testing.assert_allclose(p.y_score(), [0.1, 0.8, 0.3, 0.6])
    assert p.frame["site"].tolist() == ["A", "B", "A", "B"]  # extra columns kept verbatim
    assert len(p.where(split="test")) == 2
    assert len(p.where(split=["val", "test"], site="A")) == 2


def test_binary_two_columns_and_explicit_positive():
    df = binary_frame(y_true=["n0", "n1", "n0", "n1"])
    df = df.drop(columns="p_malignant").assign(p_n1=[0.1, 0.8, 0.3, 0.6], p_n0=[0.9, 0.2, 0.7, 0.4])
    with pytest.raises(PredictionsError, match="cannot infer the positive class"):
        read_predictions(df)
    p = read_predictions(df, positive="n1")
    assert p.classes == ("n0", "n1")
    np.testing.assert_allclose(p.y_score(), [0.1, 0.8, 0.3, 0.6])


def test_multiclass_detected():
    df = binary_frame(y_true=["benign", "lymphoma", "metastatic", "benign"]).drop(columns="p_malignant")
    df = df.assign(p_benign=[0.7, 0.1, 0.2, 0.5], p_lymphoma=[0.2, 0.8, 0.1, 0.3], p_metastatic=[0.1, 0.1, 0.7, 0.2])
    p = read_predictions(df)
    assert p.task == "multiclass" and p.classes == ("benign", "lymphoma", "metastatic") and p.positive is None
    assert p.y_score().shape == (4, 3)
    np.testing.assert_array_equal(p.y_true(), [0, 1, 2, 0])
    assert read_predictions(df, positive="metastatic").positive == "metastatic"


@pytest.mark.parametrize(
    ("overrides", "msg"),
    [
        ({"p_malignant": [0.1, 1.2, 0.3, 0.6]}, r"'p_malignant' must be a probability in \[0, 1\]; got \[1.2\] at index 1"),
        ({"p_malignant": [0.1, "high", 0.3, 0.6]}, r"'p_malignant' must hold numbers; got \['high'\]"),
        ({"split": ["val", "train", "test", "test"]}, r"'split' must be one of .* got \['train'\]"),
        ({"split": ["cv", "val", "test", "test"]}, "split 'cv' need a fold >= 0"),
        ({"fold": ["x", "", "", ""]}, r"'fold' must be an integer or empty; got \['x'\]"),
        ({"patient_id": ["p1", "", "p3", "p4"]}, "'patient_id' is empty at index 1"),
        ({"y_true": ["a", "b", "c", "a"]}, "single column is allowed only for a binary task"),
    ],
)
def test_bad_values_named(overrides, msg):
    with pytest.raises(PredictionsError, match=msg):
        read_predictions(binary_frame(**overrides))


def test_unknown_class_and_row_sums(tmp_path):
    df = binary_frame(y_true=["benign", "lymphoma", "benign", "benign"]).drop(columns="p_malignant")
    df = df.assign(p_benign=[0.9, 0.2, 0.7, 0.4], p_malignant=[0.1, 0.8, 0.3, 0.7])
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(PredictionsError) as info:
        read_predictions(path)
    assert "class(es) ['lymphoma'] with no probability column" in str(info.value)
    assert "line 3" in str(info.value)  # file rows are reported as CSV line numbers
    df2 = df.assign(y_true=["benign", "malignant", "benign", "benign"])
    with pytest.raises(PredictionsError, match=r"must sum to 1 .* got sums \[1.1\] at index 3"):
        read_predictions(df2, positive="malignant")


def test_every_problem_reported_at_once():
    df = binary_frame(p_malignant=[2.0, 0.5, 0.5, 0.5], split=["val", "oops", "test", "test"])
    with pytest.raises(PredictionsError) as info:
        read_predictions(df)
    assert len(info.value.problems) == 2


def test_missing_columns_and_types(tmp_path):
    with pytest.raises(PredictionsError, match=r"missing required column\(s\) \['model'\]"):
        read_predictions(binary_frame().drop(columns="model"))
    with pytest.raises(PredictionsError, match="no probability column"):
        read_predictions(binary_frame().drop(columns="p_malignant"))
    with pytest.raises(FileNotFoundError):
        read_predictions(tmp_path / "absent.csv")
    with pytest.raises(TypeError):
        read_predictions(42)  # type: ignore[arg-type]


def test_positive_not_a_class():
    with pytest.raises(PredictionsError, match="positive='cancer' but the only probability column"):
        read_predictions(binary_frame(), positive="cancer")


def test_input_frame_not_modified():
    df = binary_frame()
    before = df.copy()
    read_predictions(df)
    pd.testing.assert_frame_equal(df, before)
