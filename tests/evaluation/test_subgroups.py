"""Subgroup metrics: each level's numbers equal the library functions on that level's rows; undefined policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nodescope.evaluation._roc import roc_auc
from nodescope.evaluation._subgroups import SUBGROUP_COLUMNS, subgroup_metrics
from nodescope.evaluation._threshold import binary_metrics


@pytest.fixture
def frame(rng: np.random.Generator) -> pd.DataFrame:
    n = 160
    y = (rng.random(n) < 0.4).astype(int)
    score = 1 / (1 + np.exp(-(1.5 * y + rng.normal(size=n) - 0.7)))
    site = rng.choice(["B", "A"], n)
    split = np.where(rng.random(n) < 0.5, "cv", "test")
    return pd.DataFrame({"y": y, "score": score, "site": site, "split": split,
                         "patient_id": [f"p{i}" for i in range(n)]})


def test_levels_equal_library_on_subset(frame):
    out = subgroup_metrics(frame, ["site", "split"], threshold=0.4, n_boot=50)
    assert list(out.columns) == list(SUBGROUP_COLUMNS)
    assert list(out.drop_duplicates(["by", "level"])[["by", "level"]].itertuples(index=False, name=None)) == [
        ("site", "A"), ("site", "B"), ("split", "cv"), ("split", "test")]
    sub = frame[frame["site"] == "B"]
    auc = roc_auc(sub["y"], sub["score"], method="delong")
    row = out[(out["level"] == "B") & (out["metric"] == "auc")].iloc[0]
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == pytest.approx((auc.estimate, auc.ci_low, auc.ci_high))
    assert row["method"] == "delong" and row["n"] == len(sub) and row["n_positive"] == sub["y"].sum()
    bm = binary_metrics(sub["y"], sub["score"], threshold=0.4, n_boot=50)
    for name in ("sensitivity", "specificity", "ppv", "npv", "dor"):
        r = out[(out["level"] == "B") & (out["metric"] == name)].iloc[0]
        e = getattr(bm, name)
        assert (r["estimate"], r["ci_low"], r["ci_high"]) == pytest.approx((e.estimate, e.ci_low, e.ci_high))
    assert {"brier", "calibration_slope", "average_precision", "mcc"} <= set(out["metric"])


def test_repeated_patients_use_patient_bootstrap(frame):
    two_rows = frame.assign(patient_id=[f"p{i // 2}" for i in range(len(frame))])
    out = subgroup_metrics(two_rows, "site", metrics=["auc"], n_boot=50)
    assert (out["method"] == "bootstrap-percentile").all()
    assert (out["n_patients"] < out["n"]).all()


def test_one_class_level_and_missing_values(frame):
    f = frame.copy()
    f.loc[f["site"] == "A", "y"] = 0
    f.loc[f.index[:5], "site"] = None
    out = subgroup_metrics(f, "site", threshold=0.5, n_boot=20)
    a = out[out["level"] == "A"].set_index("metric")
    assert np.isnan(a.loc["auc", "estimate"]) and "class" in a.loc["auc", "note"]
    assert np.isnan(a.loc["sensitivity", "estimate"]) and a.loc["specificity", "estimate"] > 0
    assert np.isnan(a.loc["calibration_slope", "estimate"]) and a.loc["calibration_slope", "note"]
    assert "(missing)" in set(out["level"])


def test_min_size(frame):
    out = subgroup_metrics(frame, "site", metrics=["auc"], min_size=10_000)
    assert out["estimate"].isna().all() and out["note"].str.contains("min_size").all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "hospital"}, r"column\(s\) \['hospital'\] not found"),
        ({"by": "site"}, "need the operating threshold"),
        ({"by": "site", "threshold": 0.5, "metrics": ["kappa"]}, "unknown metric families"),
    ],
)
def test_bad_arguments(frame, kwargs, message):
    with pytest.raises(ValueError, match=message):
        subgroup_metrics(frame, **kwargs)
