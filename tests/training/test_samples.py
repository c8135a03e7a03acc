"""build_samples checks: one positive-class rule, splits files, classes present in every fold."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_data import write_tiny_dataset

import nodescope.evaluation as ev
import nodescope.training as tr
from nodescope.data import LeakageError
from nodescope.training import TrainConfig, _samples, build_samples


def test_one_positive_names_constant() -> None:
    # the training stage infers the positive class with the evaluation stage's list, not a copy of it
    assert not hasattr(tr, "POSITIVE_NAMES")
    assert _samples.POSITIVE_NAMES is ev.POSITIVE_NAMES
    assert tr.resolve_positive(("benign", "Metastatic"), None) == "Metastatic"


def _cfg(tmp_path: Path, manifest: Path, **kw) -> TrainConfig:
    return TrainConfig(manifest=manifest, out=tmp_path / "run", backbone="resnet18", image_size=16, folds=3,
                       num_threads=1, **kw)


def test_splits_file_with_a_group_in_two_folds_is_refused(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    m = write_tiny_dataset(tmp_path / "d", n_patients=9, per_patient=2)
    man = pd.read_csv(m, dtype=str)
    sp = pd.DataFrame({"group": man["patient_id"], "part": "cv", "fold": [str(i % 3) for i in range(len(man))]})
    sp.to_csv(tmp_path / "splits.csv", index=False)  # the two images of each patient land in different folds
    with pytest.raises(LeakageError, match=r"splits\.csv.*more than one part/fold"):
        build_samples(_cfg(tmp_path, m, splits_file=tmp_path / "splits.csv"))


def test_splits_file_contradicting_the_manifest_split_column(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    m = write_tiny_dataset(tmp_path / "d", n_patients=9, per_patient=1)
    man = pd.read_csv(m, dtype=str)
    man["split"] = ["test" if p == "P00" else "" for p in man["patient_id"]]
    man.to_csv(m, index=False)
    sp = pd.DataFrame({"group": man["patient_id"], "part": "cv", "fold": [str(i % 3) for i in range(len(man))]})
    sp.to_csv(tmp_path / "splits.csv", index=False)
    with pytest.raises(ValueError, match="group 'P00' is 'test' in the manifest but 'cv'"):
        build_samples(_cfg(tmp_path, m, splits_file=tmp_path / "splits.csv"))


def test_test_size_with_splits_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"test_size=0\.2 would be ignored"):
        TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "r", splits_file=tmp_path / "s.csv", test_size=0.2)


def test_class_absent_from_development_data_fails_up_front(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    m = write_tiny_dataset(tmp_path / "d", n_patients=9, per_patient=1)
    with pytest.raises(ValueError, match=r"\['other'\] have no rows in the development \(cv\) part"):
        build_samples(_cfg(tmp_path, m, classes=["benign", "malignant", "other"]))


def test_class_only_in_one_fold_fails_up_front(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    m = write_tiny_dataset(tmp_path / "d", n_patients=9, per_patient=1)
    man = pd.read_csv(m, dtype=str)
    man.loc[man["patient_id"] == "P00", "label"] = "rare"  # one patient: its fold's training data lack the class
    man.to_csv(m, index=False)
    with pytest.raises(ValueError, match=r"training folds have no rows of class\(es\) \['rare'\]"):
        build_samples(_cfg(tmp_path, m))
