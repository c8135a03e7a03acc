"""Leave-one-site-out cross-validation: every fold is one whole site, in the split and in a tiny training run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tiny_data import write_tiny_dataset

from nodescope.data import check_leakage, make_splits
from nodescope.errors import ConfigError, DataError


@pytest.fixture
def frame() -> pd.DataFrame:
    rows = []
    for p in range(30):
        site = ["north", "east", "west"][p % 3]
        for k in range(1 + p % 2):
            rows.append({"patient_id": f"P{p:02d}", "image": f"P{p:02d}_{k}.png",
                         "label": "malignant" if p % 5 in (0, 2) else "benign", "site": site})
    return pd.DataFrame(rows)


def test_each_fold_is_one_whole_site(frame):
    sp = make_splits(frame, method="leave-one-site-out")
    check_leakage(sp)
    assert (sp["part"] == "cv").all()
    # sites in sorted order: fold 0 = east, 1 = north, 2 = west
    for k, site in enumerate(["east", "north", "west"]):
        assert set(frame.loc[sp["fold"] == k, "site"]) == {site}
        assert set(sp.index[sp["fold"] == k]) == set(frame.index[frame["site"] == site])
    assert (sp["site"] == frame["site"]).all()
    assert sp.equals(make_splits(frame, method="leave-one-site-out", seed=5))  # no randomness in the folds


def test_test_part_first_then_one_fold_per_site(frame):
    sp = make_splits(frame, method="leave-one-site-out", test_size=0.2, seed=1)
    check_leakage(sp)
    test = sp["part"] == "test"
    assert 0 < sp.loc[test, "group"].nunique() < 10 and (sp.loc[test, "fold"] == -1).all()
    cv = sp[~test]
    assert (cv.groupby("fold")["site"].nunique() == 1).all() and cv["fold"].nunique() == 3


def test_other_site_column(frame):
    sp = make_splits(frame.rename(columns={"site": "hospital"}), method="leave-one-site-out", site_col="hospital")
    assert sp["fold"].nunique() == 3


@pytest.mark.parametrize(("change", "kwargs", "error", "match"), [
    (lambda f: f.drop(columns="site"), {}, DataError, "needs column 'site'"),
    (lambda f: f.assign(site="north"), {}, DataError, r"at least 2 sites.*\['north'\]"),
    (lambda f: f.assign(site=f["site"].where(f.index != 4, " ")), {}, DataError, r"empty on 1 row.*\[4\]"),
    (lambda f: f.assign(site=[f"s{i % 2}" for i in range(len(f))]), {}, DataError, "several sites"),
    (lambda f: f, {"val_size": 0.2}, ConfigError, "val_size"),
])
def test_refused(frame, change, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_splits(change(frame), method="leave-one-site-out", **kwargs)


def test_training_folds_are_the_sites(tmp_path: Path) -> None:
    """``nodescope train --cv leave-one-site-out``: the fold runner gets one fold per site (the folds it trains)."""
    from nodescope.training import TrainConfig
    from nodescope.training._samples import build_samples

    m = write_tiny_dataset(tmp_path / "d", n_patients=12, per_patient=2)
    man = pd.read_csv(m)
    man["site"] = [["alpha", "beta", "gamma"][int(p[1:]) % 3] for p in man["patient_id"]]  # both labels per site
    man.to_csv(m, index=False)
    cfg = TrainConfig(manifest=m, out=tmp_path / "run", cv="leave-one-site-out", image_size=32)
    frame = build_samples(cfg).frame
    assert (frame["part"] == "cv").all()
    assert frame.groupby("fold")["site"].agg(lambda s: tuple(sorted(set(s)))).to_dict() == {
        0: ("alpha",), 1: ("beta",), 2: ("gamma",)}
    assert (frame.groupby("patient_id")["fold"].nunique() == 1).all()
    kfold = build_samples(cfg.model_copy(update={"cv": "kfold", "folds": 3})).frame
    assert kfold.groupby("fold")["site"].nunique().max() > 1  # ordinary k-fold mixes the sites
    with pytest.raises(DataError, match="needs column 'hospital'"):
        build_samples(cfg.model_copy(update={"site_col": "hospital"}))
