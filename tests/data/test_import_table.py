"""import_table (a labels table with a column map), the label filter and dup_group on the importers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from busi_release import rebuild_busi_release
from PIL import Image

from nodescope.data import import_busi, import_image_folder, import_table, read_manifest
from nodescope.errors import ConfigError, DataError, MissingFileError


def _table(root: Path) -> Path:
    """A release-style table: other column names, paths relative to the table, a 'normal' row, two copies of a scan."""
    (root / "imgs").mkdir(parents=True)
    rng = np.random.default_rng(3)
    scans = [np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).resize((40, 32)))
             for _ in range(4)]
    scans.append(scans[0].copy())  # case5 repeats case1's scan
    rows = []
    for i, (arr, cls) in enumerate(zip(scans, ["Benign", "Malignant", "Normal", "Benign", "Malignant"],
                                       strict=True)):
        Image.fromarray(arr).save(root / "imgs" / f"case{i + 1}.png")
        rows.append({"Case": f"case{i + 1}", "Image_filename": f"imgs/case{i + 1}.png", "Classification": cls,
                     "BIRADS": str(i + 2)})
    pd.DataFrame(rows).to_csv(root / "table.csv", index=False)
    return root / "table.csv"


COLUMNS = {"patient_id": "Case", "image": "Image_filename", "label": "Classification"}


def test_import_table_maps_columns_reanchors_paths_and_keeps_the_rest(tmp_path):
    src = _table(tmp_path / "release")
    res = import_table(src, tmp_path / "out", columns=COLUMNS)
    assert (res.n_images, res.classes, res.n_dropped, res.n_dup_groups) == (5, ("Benign", "Malignant", "Normal"),
                                                                            0, None)
    m = read_manifest(res.manifest_path)  # validates: every image found from the new folder
    assert list(m.frame.columns[:3]) == ["patient_id", "image", "label"]
    assert m.frame["image"].iloc[0] == "../release/imgs/case1.png"
    assert list(m.frame["BIRADS"]) == ["2", "3", "4", "5", "6"]  # unmapped columns verbatim
    assert src.read_text().startswith("Case,Image_filename")  # the source is untouched


def test_import_table_labels_and_dup_groups(tmp_path):
    src = _table(tmp_path / "release")
    res = import_table(src, tmp_path / "out", columns=COLUMNS, labels=["Benign", "Malignant"], dup_groups=True)
    assert (res.n_images, res.classes, res.n_dropped, res.n_dup_groups) == (4, ("Benign", "Malignant"), 1, 1)
    frame = read_manifest(res.manifest_path, group_col="dup_group").frame
    assert list(frame["patient_id"]) == ["case1", "case2", "case4", "case5"]
    assert list(frame["dup_group"]) == ["case1", "case2", "case4", "case1"]  # case5 is a copy of case1's scan


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"columns": {"label": "Klass"}}, r"column 'Klass' \(mapped to 'label'\) not found; its columns are \['Case'"),
    ({"columns": {"image": "Image_filename", "label": "Classification"}},
     r"no column\(s\) \['patient_id'\] for the manifest; its columns are"),
    ({"columns": {**COLUMNS, "BIRADS": "Classification"}},
     r"mapping 'Classification' to 'BIRADS' would replace its own column 'BIRADS'"),
    ({"columns": COLUMNS, "labels": ["Benign", "benign"]}, r"label\(s\) \['benign'\] have no image; its labels are"),
])
def test_import_table_errors_name_the_column_or_label(tmp_path, kwargs, message):
    src = _table(tmp_path / "release")
    with pytest.raises(DataError, match=message):
        import_table(src, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_import_table_missing_file_and_a_column_mapped_twice(tmp_path):
    with pytest.raises(MissingFileError, match="labels table not found"):
        import_table(tmp_path / "none.csv", tmp_path / "out")
    src = _table(tmp_path / "release")
    with pytest.raises(ConfigError, match="source column 'Case' is mapped twice"):
        import_table(src, tmp_path / "out", columns={**COLUMNS, "lesion_id": "Case"})


def test_import_table_keeps_an_existing_dup_group_column(tmp_path):
    src = _table(tmp_path / "release")
    pd.read_csv(src).assign(dup_group="g").to_csv(src, index=False)
    with pytest.raises(DataError, match=r"table.csv: the table already has a 'dup_group' column; refusing to replace"):
        import_table(src, tmp_path / "out", columns=COLUMNS, dup_groups=True)
    res = import_table(src, tmp_path / "out", columns={**COLUMNS, "orig_dup_group": "dup_group"}, dup_groups=True)
    frame = pd.read_csv(res.manifest_path, dtype=str)
    assert list(frame["orig_dup_group"]) == ["g"] * 5 and frame["dup_group"].iloc[4] == "case1"


def test_folder_labels_read_only_those_classes(tmp_path):
    for cls in ("a", "b", "c"):
        (tmp_path / "src" / cls).mkdir(parents=True)
        Image.fromarray(np.full((4, 4), ord(cls), np.uint8)).save(tmp_path / "src" / cls / "x.png")
    res = import_image_folder(tmp_path / "src", tmp_path / "out", labels=["c", "a"])
    assert res.classes == ("a", "c") and res.n_images == 2
    with pytest.raises(DataError, match=r"no class folder\(s\) \['d'\]; its class folders are \['a', 'b', 'c'\]"):
        import_image_folder(tmp_path / "src", tmp_path / "out2", labels=["a", "d"])


@pytest.mark.shared_data
def test_busi_release_dup_groups(shared_data, tmp_path):
    # ../shared/data/busi_256/SOURCE.txt: benign_433 and malignant_145 are pixel-identical, benign_399 and
    # malignant_093 near duplicates; benign_001 and malignant_001 belong to no group.
    base = shared_data / "busi_256"
    labels = pd.read_csv(base / "labels.csv", dtype=str, keep_default_na=False)
    names = ["benign_433", "malignant_145", "benign_399", "malignant_093", "benign_001", "malignant_001",
             "normal_001"]
    rows = labels[labels["image"].isin([f"images/{n}.png" for n in names])]
    rebuild_busi_release(base, tmp_path / "Dataset_BUSI_with_GT", rows)
    res = import_busi(tmp_path / "Dataset_BUSI_with_GT", tmp_path / "out", dup_groups=True,
                      labels=["benign", "malignant"])
    assert (res.n_images, res.classes, res.n_dup_groups) == (6, ("benign", "malignant"), 2)
    frame = read_manifest(res.manifest_path, group_col="dup_group").frame
    group = dict(zip(frame["orig_name"], frame["dup_group"], strict=True))
    orig = dict(zip(labels["image"], labels["orig_name"], strict=True))
    g = {n: group[orig[f"images/{n}.png"]] for n in names if not n.startswith("normal")}
    assert g["benign_433"] == g["malignant_145"] and g["benign_399"] == g["malignant_093"]
    assert len({g["benign_433"], g["benign_399"], g["benign_001"], g["malignant_001"]}) == 4
