"""Near-duplicate grouping: tiny synthetic images for the rule, the shared BUSI copy for the reference partition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nodescope.data import duplicate_groups, thumbnail
from nodescope.errors import ConfigError, DataError


def _save(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def images(tmp_path, rng):
    """a: smooth random scan; b: a + noise of mean |d| ~ 1.5; c: unrelated; d: a at another size; e: a as RGB."""
    base = np.asarray(Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).resize((128, 96)))
    noisy = np.clip(base.astype(int) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
    other = np.asarray(Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).resize((128, 96)))
    bigger = np.asarray(Image.fromarray(base).resize((256, 192), Image.Resampling.BILINEAR))
    return {
        "a": _save(tmp_path / "a.png", base),
        "b": _save(tmp_path / "b.png", noisy),
        "c": _save(tmp_path / "c.png", other),
        "d": _save(tmp_path / "d.png", bigger),
        "e": _save(tmp_path / "e.png", np.repeat(base[..., None], 3, axis=2)),
    }


def test_near_duplicates_share_a_group_named_after_the_first(images):
    paths = [images[k] for k in "abcde"]
    groups = duplicate_groups(paths, patients=["A", "B", "C", "D", "E"])
    assert groups == ["A", "A", "C", "A", "A"]


def test_thumbnail_is_pillows_luma_then_bilinear(rng):
    rgb = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L").resize((64, 64), Image.Resampling.BILINEAR), np.float32)
    np.testing.assert_array_equal(thumbnail(rgb), expected.ravel())
    grey16 = (rgb[..., :1].astype(np.uint16) * 257)  # v * 257 maps back to v exactly on the 8-bit scale
    np.testing.assert_array_equal(thumbnail(grey16, 16), thumbnail(rgb[..., 0], 16))
    with pytest.raises(DataError, match="uint8 or uint16"):
        thumbnail(rgb.astype(np.float32))
    with pytest.raises(DataError, match=r"got shape \(50, 70, 2\)"):
        thumbnail(rgb[..., :2])


def test_the_threshold_is_exclusive_and_links_are_transitive(tmp_path):
    # flat images: the mean absolute difference is exactly the grey-level gap
    p = [_save(tmp_path / f"{v}.png", np.full((16, 16), v, np.uint8)) for v in (100, 103, 106, 110)]
    assert duplicate_groups(p) == [str(p[0])] * 3 + [str(p[3])]  # 100~103~106 chain; 106 vs 110 differ by 4
    assert duplicate_groups(p, max_diff=3.0) == [str(q) for q in p]  # a gap of 3 is not below 3
    assert duplicate_groups(p, max_diff=4.5) == [str(p[0])] * 4


def test_one_patients_images_are_one_group_even_when_different(images):
    groups = duplicate_groups([images["a"], images["c"], images["b"]], patients=["P1", "P2", "P2"])
    assert groups == ["P1", "P1", "P1"]  # c joins P2 (same patient), b joins a (near duplicate) -> one component
    groups = duplicate_groups([images["c"], images["a"]], patients=["", ""], names=["x", "y"])
    assert groups == ["x", "y"]  # empty patient ids link nothing


def test_errors_name_the_argument(images, tmp_path):
    paths = [images["a"], images["b"]]
    with pytest.raises(ConfigError, match="size: must be >= 1, got 0"):
        duplicate_groups(paths, size=0)
    for bad in (0.0, float("nan"), -1.0):
        with pytest.raises(ConfigError, match="max_diff: must be a finite number > 0"):
            duplicate_groups(paths, max_diff=bad)
    with pytest.raises(ConfigError, match=r"patients: expected 2 value\(s\), one per image; got 1"):
        duplicate_groups(paths, patients=["P1"])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png"):
        duplicate_groups([images["a"], tmp_path / "broken.png"])
    assert duplicate_groups([]) == []


@pytest.mark.shared_data
def test_reproduces_the_shared_busi_dup_groups(shared_data):
    # Reference: ../shared/data/busi/labels.csv, column dup_group, computed when the data were staged with the rule
    # its SOURCE.txt states (64x64 thumbnails, mean absolute difference < 4 grey levels): 108 images in 49 groups.
    # Every image of a multi-image group plus 60 others (all 780 full-resolution images take a minute to decode):
    # the groups found must be exactly the reference groups, the others singletons.
    base = shared_data / "busi"
    labels = pd.read_csv(base / "labels.csv", dtype=str, keep_default_na=False)
    size = labels.groupby("dup_group")["image"].transform("size")
    labels = pd.concat([labels[size > 1], labels[size == 1].sample(60, random_state=0)]).reset_index(drop=True)
    got = duplicate_groups([base / p for p in labels["image"]], names=list(labels["image"]))

    def partition(keys: list[str]) -> set[frozenset[int]]:
        return {frozenset(idx) for idx in pd.Series(range(len(keys))).groupby(keys).groups.values()}

    ref = partition(list(labels["dup_group"]))
    assert partition(got) == ref
    multi = [g for g in ref if len(g) > 1]
    assert (len(multi), sum(len(g) for g in multi)) == (49, 108)
    # the pixel-identical pair across classes (SOURCE.txt) is one group
    name = dict(zip(labels["image"], got, strict=True))
    assert name["images/benign_433.png"] == name["images/malignant_145.png"]
