"""QUADAS-2 tables: reading, validation, summary counts and study matching."""

from __future__ import annotations

import pandas as pd
import pytest

from nodescope.meta import QUADAS_COLUMNS, QuadasError, QuadasTable, example_paths, read_quadas


def _frame(**over):
    base = {c: ["low", "high", "unclear"] for c in QUADAS_COLUMNS[1:]}
    base["study"] = ["A", "B", "C"]
    base.update(over)
    return pd.DataFrame(base)


def test_reads_example_and_summarises():
    q = read_quadas(example_paths()["quadas"])
    assert isinstance(q, QuadasTable) and len(q) == 9
    summary = q.summary()
    assert len(summary) == 7
    raw = pd.read_csv(example_paths()["quadas"])
    for _, row in summary.iterrows():
        counts = raw[row["column"]].value_counts()
        for level in ("low", "high", "unclear"):
            assert row[f"n_{level}"] == counts.get(level, 0)
        assert row[["pct_low", "pct_high", "pct_unclear"]].sum() == pytest.approx(100.0)
    assert "notes" in q.frame.columns  # extra columns kept


def test_case_insensitive_headers_and_levels(tmp_path):
    frame = _frame(rob_index_test=["Low", "HIGH", " unclear "])
    frame = frame.rename(columns={"study": "Study", "rob_flow_timing": "ROB_Flow_Timing"})
    path = tmp_path / "q.csv"
    frame.to_csv(path, index=False)
    q = read_quadas(path)
    assert q.frame["rob_index_test"].tolist() == ["low", "high", "unclear"]
    assert q.studies == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_frame(rob_index_test=["low", "hgih", "unclear"]),
         "row 2 (study 'B'), column 'rob_index_test': 'hgih' (did you mean 'high'?); expected one of ['low', 'high', 'unclear']"),
        (_frame(applicability_index_test=["low", "", "unclear"]),
         "row 2 (study 'B'), column 'applicability_index_test': empty"),
        (_frame(study=["A", "A", "C"]), "rows 1, 2: study 'A' appears more than once"),
        (_frame(study=["A", "", "C"]), "row 2, column 'study': empty study label"),
        (_frame().drop(columns="rob_flow_timing"), "column 'rob_flow_timing' is missing"),
        (_frame().rename(columns={"rob_flow_timing": "rob_flow_timeing"}),
         "column 'rob_flow_timing' is missing (did you mean 'rob_flow_timeing'?)"),
    ],
)
def test_validation_messages(frame, message):
    with pytest.raises(QuadasError) as info:
        read_quadas(frame)
    assert message in str(info.value)


def test_check_studies():
    q = read_quadas(_frame())
    assert q.check_studies(["A", "A", "B", "C", "D"]) == ["D"]
    with pytest.raises(QuadasError, match=r"study 'C' is not in the studies table"):
        q.check_studies(["A", "B"])
    with pytest.raises(QuadasError, match=r"study 'C' is not in the studies table \(did you mean 'C1'\?\)"):
        q.check_studies(["A", "B", "C1"])


def test_type_errors(tmp_path):
    with pytest.raises(TypeError, match="path or a pandas DataFrame"):
        read_quadas([1, 2])  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        read_quadas(tmp_path / "missing.csv")
