"""The ``recipe`` preset: fills what the configuration leaves unset, explicit values win, recorded resolved."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nodescope.training import TrainConfig, load_config
from nodescope.training._config import RECIPES


def test_transfer_fills_unset_fields(tmp_path: Path) -> None:
    c = TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "o", recipe="transfer")
    for k, v in RECIPES["transfer"].items():
        assert getattr(c, k) == v, k
    plain = TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "o", recipe="none")
    assert not plain.scan_crop and plain.calibrate == "none" and plain.aug_tgc == 0


def test_explicit_values_win_and_no_augmentation_adds_none(tmp_path: Path) -> None:
    c = TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "o", recipe="transfer", intensity="clahe",
                    scan_crop=False, calibrate="none")
    assert (c.intensity, c.scan_crop, c.calibrate, c.marks) == ("clahe", False, "none", "inpaint")
    c = TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "o", recipe="transfer", augment="none")
    assert c.augment == "none" and c.aug_depth == c.aug_tgc == c.aug_blur == c.aug_calipers == 0
    assert c.scan_crop and c.grey == "tint"  # the appearance steps still apply


def test_yaml_and_flags_resolve_alike(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(f"manifest: {tmp_path / 'm.csv'}\nout: {tmp_path / 'o'}\nrecipe: transfer\nmarks: keep\n")
    c = load_config(f, aug_blur=0.5)
    assert c.marks == "keep" and c.aug_blur == 0.5 and c.aug_tgc == 0.3
    saved = yaml.safe_load(c.to_yaml())  # config.yaml records the resolved values: a reload is the same run
    assert saved["recipe"] == "transfer" and saved["scan_crop"] is True
    assert TrainConfig(**saved) == c
    with pytest.raises(ValueError, match="recipe"):
        TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "o", recipe="other")


def test_transfer_is_the_default_and_spares_fusion(tmp_path: Path) -> None:
    c = TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "o")
    assert c.recipe == "transfer" and c.scan_crop and c.calibrate == "temperature" and c.tta
    f = TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "o", fusion="intermediate", modalities=["a", "b"])
    assert f.calibrate == "none" and f.scan_crop  # temperature scaling is for single-input classifiers
