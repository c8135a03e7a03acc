"""Importers, exercised on the real BUSI and DDTI data rebuilt into their original/folder layouts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from busi_release import rebuild_busi_release
from PIL import Image

from nodescope.data import import_busi, import_image_folder, read_image, read_manifest


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


@pytest.mark.shared_data
def test_busi_release_layout(shared_data, tmp_path):
    base = shared_data / "busi_256"
    labels = pd.read_csv(base / "labels.csv", dtype=str, keep_default_na=False)
    multi = labels[labels["n_mask_files"].astype(int) > 1].head(4)
    single = labels[labels["n_mask_files"] == "1"].groupby("label").head(3)
    subset = pd.concat([multi, single])
    src = tmp_path / "Dataset_BUSI_with_GT"
    rebuild_busi_release(base, src, subset)
    out = tmp_path / "out"
    res = import_busi(src, out)
    assert res.n_images == len(subset)
    assert res.n_merged_masks == len(multi)
    m = read_manifest(res.manifest_path)  # validates every image and mask
    assert set(m.classes) <= {"benign", "malignant", "normal"}
    got = m.frame.set_index("orig_name")
    for row in subset.itertuples():
        rec = got.loc[row.orig_name]
        assert rec["label"] == row.label
        merged = read_image(out / rec["mask"]).pixels[..., 0] > 0
        expected = read_image(base / row.mask).pixels[..., 0] > 0
        np.testing.assert_array_equal(merged, expected)
    # sources untouched: nothing written inside the source tree
    assert not any(p.name.endswith("_mask.png") and "merged" in str(p) for p in src.rglob("*"))


@pytest.mark.shared_data
def test_ddti_class_folders_with_patient_regex(shared_data, tmp_path):
    base = shared_data / "ddti"
    labels = pd.read_csv(base / "labels.csv", dtype=str, keep_default_na=False)
    subset = labels[labels["label"] != "unknown"].groupby("label").head(6)
    src = tmp_path / "ddti_folders"
    for row in subset.itertuples():
        name = Path(row.image).name
        _link(base / row.image, src / row.label / name)
        _link(base / row.mask, src / row.label / name.replace(".png", "_mask.png"))
    res = import_image_folder(src, tmp_path / "out", patient_regex=r"^(case\d+)_")
    m = read_manifest(res.manifest_path)
    expected = dict(zip([Path(i).name for i in subset["image"]], subset["patient_id"], strict=True))
    for rec in m.frame.itertuples():
        assert rec.patient_id == expected[rec.orig_name]
    assert m.frame["mask"].str.len().gt(0).all()


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="source folder not found"):
        import_image_folder(tmp_path / "none", tmp_path / "out")
    (tmp_path / "src").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        import_image_folder(tmp_path / "src", tmp_path / "out")
    (tmp_path / "src" / "benign").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "src" / "benign" / "x.png")
    with pytest.raises(ValueError, match="does not match patient_regex"):
        import_image_folder(tmp_path / "src", tmp_path / "out", patient_regex=r"^case(\d+)")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "src" / "benign" / "y_mask.png")
    with pytest.raises(ValueError, match=r"mask file\(s\) without an image: \['y'\]"):
        import_image_folder(tmp_path / "src", tmp_path / "out")
    with pytest.raises(ValueError, match="must differ from the source"):
        import_image_folder(tmp_path / "src", tmp_path / "src")
