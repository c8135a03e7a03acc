"""Patient-level splits: determinism, stratification, zero leakage, each method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nodescope.data import LeakageError, check_leakage, make_splits, read_manifest, split_summary


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for p in range(120):
        label = ["benign", "lymphoma", "metastatic"][p % 3] if p % 10 else "metastatic"
        site = "A" if p < 80 else "B"
        date = f"2023-{1 + p % 12:02d}-{1 + p % 27:02d}" if p % 2 else f"2024-{1 + p % 12:02d}-15"
        for k in range(int(rng.integers(1, 4))):
            rows.append({"patient_id": f"P{p:03d}", "image": f"P{p:03d}_{k}.png", "label": label, "site": site,
                         "date": date})
    return pd.DataFrame(rows)


def _parts_per_group(s: pd.DataFrame) -> pd.Series:
    return s.groupby("group").apply(lambda g: len(set(zip(g["part"], g["fold"], strict=True))))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "kfold", "n_splits": 5},
        {"method": "kfold", "n_splits": 5, "test_size": 0.2},
        {"method": "holdout", "test_size": 0.2, "val_size": 0.1},
        {"method": "site", "external_sites": ["B"], "n_splits": 3},
        {"method": "site", "external_sites": ["B"], "n_splits": 1, "val_size": 0.2},
        {"method": "temporal", "cutoff": "2024-01-01", "n_splits": 4},
        {"method": "temporal", "test_size": 0.25, "n_splits": 1},
    ],
)
def test_every_method_keeps_groups_whole_and_is_deterministic(frame, kwargs):
    a = make_splits(frame, seed=3, **kwargs)
    b = make_splits(frame, seed=3, **kwargs)
    pd.testing.assert_frame_equal(a, b)
    check_leakage(a)
    assert (_parts_per_group(a) == 1).all()
    assert (a["part"] != "").all()
    assert a.index.equals(frame.index)


def test_different_seed_changes_assignment(frame):
    a = make_splits(frame, seed=1)
    b = make_splits(frame, seed=2)
    assert not a["fold"].equals(b["fold"])


def test_kfold_stratification_within_tolerance(frame):
    s = make_splits(frame, n_splits=5, seed=0)
    overall = s.drop_duplicates("group")["label"].value_counts(normalize=True)
    per_fold = s.drop_duplicates("group").groupby("fold")["label"].value_counts(normalize=True).unstack()
    assert sorted(s["fold"].unique()) == [0, 1, 2, 3, 4]
    assert (per_fold.sub(overall, axis=1).abs() <= 0.1).all().all()
    tab = split_summary(s)
    assert np.allclose(tab.groupby(["part", "fold"])["fraction"].sum(), 1.0)


def test_holdout_fractions(frame):
    s = make_splits(frame, method="holdout", test_size=0.25, val_size=0.15, seed=0)
    groups = s.drop_duplicates("group")["part"].value_counts(normalize=True)
    assert groups["test"] == pytest.approx(0.25, abs=0.02)
    assert groups["val"] == pytest.approx(0.15, abs=0.03)


def test_site_split_external_is_site_b(frame):
    s = make_splits(frame, method="site", external_sites=["B"], n_splits=3)
    assert set(s.loc[frame["site"] == "B", "part"]) == {"external"}
    assert set(s.loc[frame["site"] == "A", "part"]) == {"cv"}


def test_temporal_split_puts_later_groups_in_test(frame):
    s = make_splits(frame, method="temporal", cutoff="2024-01-01", n_splits=1)
    dates = pd.to_datetime(frame["date"])
    assert (dates[s["part"] == "test"] >= "2024-01-01").all()
    assert (dates[s["part"] == "train"] < "2024-01-01").all()


def test_leakage_check_fails_loudly():
    s = pd.DataFrame({"group": ["P1", "P1", "P2"], "part": ["train", "test", "test"], "fold": [-1, -1, -1]})
    with pytest.raises(LeakageError, match=r"1 group\(s\) appear in more than one part/fold: 'P1' in \['test', 'train'\]"):
        check_leakage(s)
    cv = pd.DataFrame({"group": ["P1", "P1"], "part": ["cv", "cv"], "fold": [0, 1]})
    with pytest.raises(LeakageError, match="cv:0"):
        check_leakage(cv)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "random"}, "unknown split method 'random'"),
        ({"group_col": "nope"}, "column 'nope' not found"),
        ({"method": "site"}, "needs external_sites"),
        ({"method": "site", "external_sites": ["Z"]}, r"external site\(s\) \['Z'\] not found"),
        ({"method": "holdout"}, "needs test_size > 0"),
        ({"method": "temporal", "n_splits": 1}, "needs a cutoff date or a test_size"),
        ({"n_splits": 1}, "n_splits must be >= 2"),
        ({"method": "holdout", "test_size": 1.5}, "test_size must be between 0 and 1"),
        ({"method": "site", "external_sites": ["B"], "test_size": 0.2}, "test_size is not used with method='site'"),
        ({"method": "site", "external_sites": ["B"], "val_size": 0.2}, "val_size is not used"),
    ],
)
def test_bad_arguments(frame, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_splits(frame, **kwargs)


def test_temporal_rejects_bad_dates(frame):
    frame.loc[3, "date"] = "soon"
    with pytest.raises(ValueError, match=r"non-ISO dates.*'soon'"):
        make_splits(frame, method="temporal", test_size=0.2)


@pytest.mark.shared_data
def test_busi_grouped_by_dup_group_has_no_leakage(shared_data):
    m = read_manifest(shared_data / "busi_256" / "labels.csv", group_col="dup_group", check_images=False)
    s = make_splits(m.frame, group_col="dup_group", n_splits=5, seed=0)
    check_leakage(s)
    # the pixel-identical pair benign_433 / malignant_145 shares a dup_group and so a fold
    f = m.frame.assign(fold=s["fold"]).set_index("image")["fold"]
    assert f["images/benign_433.png"] == f["images/malignant_145.png"]
