"""Manifest validation: every problem is reported together, each naming row, column and value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nodescope.data import ManifestError, join_clinical, read_clinical, read_manifest


def _png(path: Path, size=(20, 16), value=128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0]), value, dtype=np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a1", "a2", "b1", "c1"):
        _png(tmp_path / "img" / f"{name}.png")
    _png(tmp_path / "mask" / "a1.png", value=255)
    _png(tmp_path / "mask" / "b1_small.png", size=(10, 8), value=255)
    (tmp_path / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    return tmp_path


def _write(folder: Path, rows: list[dict], name="manifest.csv") -> Path:
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _row(pid="P1", image="img/a1.png", label="benign", **kw) -> dict:
    base = {"patient_id": pid, "image": image, "label": label, "mask": "", "split": "", "date": "2024-01-02"}
    base.update(kw)
    return base


def test_valid_manifest_roundtrip_keeps_extra_columns_verbatim(folder):
    path = _write(folder, [
        _row(mask="mask/a1.png", note="007", size_mm="12.50"),
        _row("P2", "img/a2.png", "metastatic", note="", size_mm="8"),
    ])
    m = read_manifest(path)
    assert len(m) == 2
    assert m.classes == ("benign", "metastatic")
    # extra columns kept verbatim: leading zeros and trailing zeros untouched, empty stays empty
    assert list(m.frame["note"]) == ["007", ""]
    assert list(m.frame["size_mm"]) == ["12.50", "8"]
    assert m.image_paths()[0] == folder / "img" / "a1.png"
    assert m.mask_paths() == [folder / "mask" / "a1.png", None]
    assert m.label_indices() == [0, 1]
    summary = m.summary()
    assert int(summary["overall"]["patients"].iloc[0]) == 2


# (rows, expected fragments of the one message about row 2) - each error named with row, column and value
BAD_CASES = [
    ([_row(image="img/missing.png")], ["row 2", "column 'image'", "missing.png", "file not found"]),
    ([_row(image="img/broken.png")], ["row 2", "column 'image'", "broken.png", "cannot decode"]),
    ([_row(label="benin")], ["row 2", "column 'label'", "'benin'", "unknown label", "benign"]),
    ([_row(pid="")], ["row 2", "column 'patient_id'", "empty patient_id"]),
    ([_row(mask="mask/b1_small.png")], ["row 2", "column 'mask'", "mask size 10x8 differs from image size 20x16"]),
    ([_row(date="2024-13-45")], ["row 2", "column 'date'", "'2024-13-45'", "not a date", "YYYY-MM-DD"]),
    ([_row(date="02/01/2024")], ["row 2", "column 'date'", "not a date"]),
    ([_row(mask="mask/none.png")], ["row 2", "column 'mask'", "file not found"]),
]


@pytest.mark.parametrize(("rows", "fragments"), BAD_CASES)
def test_each_error_names_row_column_value(folder, rows, fragments):
    path = _write(folder, rows)
    with pytest.raises(ManifestError) as info:
        read_manifest(path, classes=["benign", "metastatic"])
    assert len(info.value.problems) == 1
    message = str(info.value)
    for frag in fragments:
        assert frag in message, (frag, message)
    assert str(path) in message


def test_duplicate_image_names_both_rows(folder):
    path = _write(folder, [_row(), _row("P2"), _row("P3", "img/b1.png")])
    with pytest.raises(ManifestError, match=r"row 3, column 'image' \(value 'img/a1.png'\): the same image is "
                                            r"already listed on row 2"):
        read_manifest(path)


def test_patient_in_two_splits(folder):
    path = _write(folder, [_row(split="train"), _row(image="img/a2.png", split="test"), _row("P2", "img/b1.png",
                                                                                           split="test")])
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    msg = str(info.value)
    assert "patient_id 'P1' appears in several splits ['test', 'train'] (rows [2, 3])" in msg
    assert "P2" not in msg


def test_all_problems_reported_together(folder):
    rows = [
        _row(image="img/missing.png"),
        _row(pid="", image="img/a2.png"),
        _row("P3", "img/b1.png", label="oops"),
        _row("P4", "img/c1.png", date="yesterday"),
    ]
    path = _write(folder, rows)
    with pytest.raises(ManifestError) as info:
        read_manifest(path, classes=["benign"])
    rows_named = [p.row for p in info.value.problems]
    assert rows_named == [2, 3, 4, 5]
    assert "4 problems found" in str(info.value)


def test_missing_required_columns(folder):
    path = folder / "m.csv"
    pd.DataFrame({"image": ["img/a1.png"], "diagnosis": ["benign"]}).to_csv(path, index=False)
    with pytest.raises(ManifestError, match=r"missing required column\(s\) \['patient_id', 'label'\]"):
        read_manifest(path)


def test_missing_manifest_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ManifestError, match="empty"):
        read_manifest(path)


def test_group_col_alternative(folder):
    path = _write(folder, [{"patient_id": "", "dup_group": "7", "image": "img/a1.png", "label": "benign"}])
    m = read_manifest(path, group_col="dup_group")
    assert m.group_col == "dup_group"
    with pytest.raises(ManifestError, match="empty patient_id"):
        read_manifest(path)


def test_clinical_join(folder):
    path = _write(folder, [_row(), _row("P2", "img/a2.png")])
    clin = folder / "clinical.csv"
    pd.DataFrame({"patient_id": ["P2", "P1"], "age": ["61", "047"]}).to_csv(clin, index=False)
    joined = join_clinical(read_manifest(path), read_clinical(clin))
    assert list(joined["age"]) == ["047", "61"]  # manifest order, verbatim values
    pd.DataFrame({"patient_id": ["P1", "P1"], "age": ["1", "2"]}).to_csv(clin, index=False)
    with pytest.raises(ValueError, match=r"must be unique.*'P1': \[2, 3\]"):
        read_clinical(clin)
    pd.DataFrame({"patient_id": ["P1"], "age": ["1"]}).to_csv(clin, index=False)
    with pytest.raises(ValueError, match=r"1 patient\(s\) of the manifest have no clinical row.*P2"):
        join_clinical(read_manifest(path), read_clinical(clin))


@pytest.mark.shared_data
def test_shared_manifests_load(shared_data):
    busi = read_manifest(shared_data / "busi_256" / "labels.csv", group_col="dup_group")
    assert len(busi) == 780 and busi.classes == ("benign", "malignant", "normal")
    ddti = read_manifest(shared_data / "ddti" / "labels.csv", check_images=False)
    assert ddti.frame["patient_id"].nunique() == 380
