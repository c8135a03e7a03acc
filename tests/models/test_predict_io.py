"""predict_files input handling: folders, manifests with other grouping/modalities, 16-bit pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from tiny_data import write_dicom_grey16
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.data import IMAGE_SUFFIXES
from nodescope.models import (
    UINT16_RULE,
    BundleMeta,
    ClassifierNet,
    InputSpec,
    Threshold,
    load_bundle,
    predict_files,
    predict_proba,
    save_bundle,
)
from nodescope.models._predict_io import _collect
from nodescope.training._data import preload_images


def test_folder_scan_uses_the_data_suffix_list(tmp_path: Path) -> None:
    # every suffix read_image decodes is found in a folder (".dicom"/".dic" were missing from predict's own list)
    for i, suf in enumerate(IMAGE_SUFFIXES):
        (tmp_path / f"x{i}{suf}").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    _, paths, _ = _collect([tmp_path])
    assert sorted(p.suffix for p in paths) == sorted(IMAGE_SUFFIXES)
    assert {".dcm", ".dicom", ".dic", ".png", ".tiff"} <= set(IMAGE_SUFFIXES)


def _tiny_bundle(path: Path, *, channels: int = 1, size: int = 32, **meta_extra) -> Path:
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 2, in_chans=channels, image_size=size, hidden=8, dropout=0.0)
    meta = BundleMeta(kind="classifier", name="t", run_id="r",
                      architecture={"backbone": "resnet18", "num_classes": 2, "in_chans": channels,
                                    "image_size": size, "head": "mlp", "hidden": 8, "dropout": 0.0},
                      classes=("benign", "malignant"), positive_class="malignant",
                      input=InputSpec(image_size=size, channels=channels, mean=(0.5,) * channels,
                                      std=(0.25,) * channels, uint16=UINT16_RULE,
                                      modalities=meta_extra.pop("modalities", None)),
                      threshold=Threshold(0.5, "youden", "cv", "p_malignant >= value"), **meta_extra)
    return save_bundle(path, net, meta)


def test_12_bit_dicom_uses_its_stored_range(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    ramp = np.tile(np.linspace(0, 4095, 32).round().astype(np.uint16), (32, 1))  # 12-bit data, 0..4095
    f = write_dicom_grey16(tmp_path / "x.dcm", ramp, bits_stored=12)
    pre = preload_images([f], size=32, channels=1)
    x = pre.images[0, 0].numpy()
    # 4095 is white: the image spans 0..255 (v / 257 made it 0..16, almost black)
    assert x.max() == 255 and x.min() == 0
    np.testing.assert_array_equal(x[0], np.round(ramp[0].astype(float) * 255 / 4095).astype(np.uint8))
    # a 16-bit PNG carries no BitsStored: the full 16-bit range is the documented rule
    Image.fromarray(ramp).save(tmp_path / "x.png")
    png = preload_images([tmp_path / "x.png"], size=32, channels=1).images[0, 0].numpy()
    np.testing.assert_array_equal(png[0], np.round(ramp[0].astype(float) * 255 / 65535).astype(np.uint8))
    # predict applies the rule the bundle records, giving what training saw
    b = load_bundle(_tiny_bundle(tmp_path / "b"))
    assert b.meta.input.uint16 == "bits_stored"
    out = predict_files(b, [f])
    expected = predict_proba(b, pre.images)
    np.testing.assert_allclose(out["p_malignant"].to_numpy(), expected[:, 1], atol=1e-6)


def _images(root: Path, names: list[str]) -> None:
    rng = np.random.default_rng(0)
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(root / n)


def test_manifest_grouped_by_another_column(tmp_path: Path) -> None:
    # BUSI-like: empty patient_id, the runs group by dup_group
    torch.set_num_threads(1)
    _images(tmp_path / "d", ["a.png", "b.png"])
    pd.DataFrame({"patient_id": ["", ""], "dup_group": ["g1", "g2"], "image": ["a.png", "b.png"],
                  "label": ["benign", "malignant"]}).to_csv(tmp_path / "d" / "labels.csv", index=False)
    b = load_bundle(_tiny_bundle(tmp_path / "b", group_col="dup_group"))
    out = predict_files(b, [tmp_path / "d" / "labels.csv"])
    assert out["patient_id"].tolist() == ["g1", "g2"]  # empty patient_id -> the group, as in training
    # a bundle without group_col (older) + the CLI option
    old = _tiny_bundle(tmp_path / "old")
    r = CliRunner().invoke(app, ["predict", str(old), str(tmp_path / "d" / "labels.csv"), "-o",
                                 str(tmp_path / "p.csv"), "--group-col", "dup_group"])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "p.csv", dtype=str)["patient_id"].tolist() == ["g1", "g2"]


def test_bundle_scores_only_its_modality(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    torch.set_num_threads(1)
    _images(tmp_path / "d", ["a_b.png", "a_c.png", "b_b.png", "b_c.png"])
    pd.DataFrame({"patient_id": ["A", "A", "B", "B"], "image": ["a_b.png", "a_c.png", "b_b.png", "b_c.png"],
                  "label": ["benign"] * 2 + ["malignant"] * 2, "modality": ["bmode", "cdfi"] * 2}).to_csv(
        tmp_path / "d" / "manifest.csv", index=False)
    b = load_bundle(_tiny_bundle(tmp_path / "b", modalities=["bmode"]))
    with caplog.at_level("WARNING"):
        out = predict_files(b, [tmp_path / "d" / "manifest.csv"])
    assert out["modality"].tolist() == ["bmode", "bmode"] and out["patient_id"].tolist() == ["A", "B"]
    assert "2 row(s) of other modalities (['cdfi']) left out" in caplog.text
    c = load_bundle(_tiny_bundle(tmp_path / "c", modalities=["elastography"]))
    with pytest.raises(ValueError, match=r"no rows of the bundle's modalities \['elastography'\]"):
        predict_files(c, [tmp_path / "d" / "manifest.csv"])


def test_folder_ids_are_relative_paths(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _images(tmp_path / "f", ["benign/1.png", "malignant/1.png"])
    out = predict_files(load_bundle(_tiny_bundle(tmp_path / "b")), [tmp_path / "f"])
    assert sorted(out["patient_id"]) == ["benign/1.png", "malignant/1.png"]
