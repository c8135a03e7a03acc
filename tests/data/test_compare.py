"""`nodescope data compare`: shift diagnostics of two manifests (synthetic sets with known shifts, BUSI vs BrEaST)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from shift_images import draw_crosses, speckle, tint
from tiny_data import save_tiny_classifier
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.data._compare import compare_datasets, write_comparison
from nodescope.errors import ConfigError, DataError


def write_set(root: Path, n: int = 16, *, seed: int = 0, tinted: bool = False, marks: bool = False,
              size: tuple[int, int] = (96, 128), malignant_marks: bool = False) -> Path:
    """A manifest of ``n`` speckle images (half benign, half malignant) with lesion masks; options add a shift."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        label = "malignant" if i % 2 else "benign"
        img = speckle(size, seed=seed * 1000 + i)
        cy, cx = int(rng.integers(30, size[0] - 30)), int(rng.integers(30, size[1] - 30))
        yy, xx = np.ogrid[:size[0], :size[1]]
        lesion = (yy - cy) ** 2 + (xx - cx) ** 2 < int(rng.integers(36, 200))
        img[lesion] //= 4  # hypoechoic
        if marks or (malignant_marks and label == "malignant"):
            img = draw_crosses(img, [(cy - 12, cx), (cy + 12, cx)])
        pix = tint(img) if tinted else img
        Image.fromarray(pix).save(root / f"i{i}.png")
        Image.fromarray((lesion * 255).astype(np.uint8)).save(root / f"m{i}.png")
        rows.append({"patient_id": f"P{i // 2}", "image": f"i{i}.png", "label": label, "mask": f"m{i}.png"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


@pytest.fixture
def tiny_bundle(tmp_path):
    return save_tiny_classifier(tmp_path / "bundle")


def test_a_tinted_marked_larger_set_is_told_apart_and_flagged(tmp_path):
    a = write_set(tmp_path / "a", seed=0)
    b = write_set(tmp_path / "b", seed=1, tinted=True, marks=True, size=(120, 128))
    res = compare_datasets(a, b, n_permutations=50)
    t = res.tests.set_index("feature")
    assert t.loc["tinted", "statistic"] == 1.0 and t.loc["has_marks", "statistic"] == 1.0
    assert t.loc["height", "statistic"] == 1.0 and t.loc["height", "p_holm"] < 0.01
    assert t.loc["width", "statistic"] == 0.0 and t.loc["width", "p_value"] == 1.0  # same width: no difference
    assert res.images.loc[res.images["set"] == "B", "tint_hue"].between(214, 218).all()
    assert res.overall.estimate > 0.95
    site = res.shortcuts.iloc[0]
    assert site["target"] == "site: b vs a" and site["flagged"] and site["auc"] > 0.95
    assert res.prevalence["n_a"].tolist() == [8, 8] and res.prevalence_test["p_value"] == 1.0
    assert res.embedding is None and "p_domain" not in res.images


def test_identical_distributions_are_not_flagged_but_a_class_shortcut_is(tmp_path):
    a = write_set(tmp_path / "a", n=24, seed=0, malignant_marks=True)
    b = write_set(tmp_path / "b", n=24, seed=1, malignant_marks=True)
    res = compare_datasets(a, b, names=("site1", "site2"), n_permutations=50)
    assert res.overall.estimate < 0.75
    sc = res.shortcuts.set_index("target")
    assert not sc.loc["site: site2 vs site1", "flagged"]
    # calipers drawn on malignant images only: the classes are separable from the marks alone
    assert sc.loc["class within site1: malignant vs rest", "flagged"]
    assert sc.loc["class within site2: malignant vs rest", "auc"] > 0.9
    assert res.largest_differences(1)["p_holm"].iloc[0] > 0.05


def test_a_set_compared_with_itself_is_indistinguishable(tmp_path):
    # copies of one image share a cross-validation group: they were on opposite sides of folds, which gave AUC 0.06
    a = write_set(tmp_path / "a", n=12, seed=0, marks=True)
    res = compare_datasets(a, a, n_permutations=10)
    assert res.overall.estimate == 0.5 and not res.shortcuts["flagged"].any()
    assert res.shortcuts.iloc[0]["auc"] == 0.5 and (res.tests["statistic"].dropna().abs() == 0).all()


def test_feature_space_shift_with_a_bundle_and_the_written_report(tmp_path, tiny_bundle):
    a = write_set(tmp_path / "a", seed=0)
    b = write_set(tmp_path / "b", seed=1, tinted=True, marks=True)
    res = compare_datasets(a, b, bundle=tiny_bundle, max_images=12, n_permutations=50)
    assert res.embedding is not None and res.embedding.n_features == 512
    assert (res.images["set"] == "A").sum() == 12 and res.n_total == (16, 16)
    assert res.images["p_domain"].between(0, 1).all()
    assert 0 < res.embedding.mmd.p_value <= 1 and res.embedding.domain.n == 24
    paths = write_comparison(res, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["images.csv", "prevalence.csv", "report.html", "shortcuts.csv",
                                             "summary.json", "tests.csv"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_sampled"] == [12, 12] and summary["embedding"]["n_features"] == 512
    assert summary["shortcut_flags"] == ["site: b vs a"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.index('id="summary"') < html.index("Descriptor tests")  # the answer comes first
    for heading in ("Shortcut flags", "feature space", "Class prevalence", "SHORTCUT FLAGS"):
        assert heading in html
    assert html.count("data:image/png;base64") >= 8 and "http" not in html.replace("http-equiv", "")
    written = pd.read_csv(tmp_path / "out" / "images.csv")
    assert len(written) == 24 and "path" not in written.columns


def test_a_mask_cropping_bundle_needs_a_mask_for_every_image(tmp_path):
    bundle = save_tiny_classifier(tmp_path / "roi", "roi", roi="mask")
    a = write_set(tmp_path / "a", n=6, seed=0)
    b = write_set(tmp_path / "b", n=6, seed=1)
    pd.read_csv(b).drop(columns=["mask"]).to_csv(b, index=False)
    with pytest.raises(DataError, match=r"input.roi = 'mask'\), but image 'i0.png' \(row 2 of .*b/manifest.csv\) has "
                                        "no mask"):
        compare_datasets(a, b, bundle=bundle, n_permutations=10)


def test_bad_options_and_input_are_refused_naming_the_culprit(tmp_path):
    a = write_set(tmp_path / "a", n=4, seed=0)
    with pytest.raises(ConfigError, match="max_images"):
        compare_datasets(a, a, max_images=2)
    with pytest.raises(ConfigError, match="flag_auc"):
        compare_datasets(a, a, flag_auc=0.2)
    with pytest.raises(ConfigError, match="has a column 'spacing'"):
        compare_datasets(a, a, spacing_col="spacing")
    frame = pd.read_csv(a).assign(spacing=["0.1", "x", "0.1", "0.1"])
    frame.to_csv(a, index=False)
    with pytest.raises(DataError, match=r"row 3, column 'spacing' \(value 'x'\): expected a positive pixel spacing"):
        compare_datasets(a, a, spacing_col="spacing")


def test_cli_writes_the_folder_and_refuses_to_overwrite(tmp_path):
    a = write_set(tmp_path / "a", seed=0)
    b = write_set(tmp_path / "b", seed=1, tinted=True)
    out = tmp_path / "cmp"
    runner = CliRunner()
    res = runner.invoke(app, ["data", "compare", str(a), str(b), "-o", str(out), "--max-images", "8"])
    assert res.exit_code == 0, res.output
    assert "tinted 0% vs 100%" in res.output and (out / "report.html").is_file()
    again = runner.invoke(app, ["data", "compare", str(a), str(b), "-o", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output
    bad = runner.invoke(app, ["data", "compare", str(a), str(b), "-o", str(tmp_path / "x"), "--group-col-a", "site"])
    assert bad.exit_code == 2 and "site" in bad.output and not (tmp_path / "x").exists()
    inside = runner.invoke(app, ["data", "compare", str(a), str(b), "-o", str(tmp_path / "a"), "--overwrite"])
    assert inside.exit_code == 2  # the output folder holds an input


def test_busi_vs_breast(shared_data, tmp_path):
    busi = shared_data / "busi_256" / "labels.csv"
    breast = shared_data / "breast_lesions_usg" / "labels.csv"
    out = tmp_path / "cmp"
    res = CliRunner().invoke(app, ["--quiet", "data", "compare", str(busi), str(breast), "-o", str(out),
                                   "--max-images", "30", "--group-col-a", "dup_group", "--name-a", "BUSI",
                                   "--name-b", "BrEaST"])
    assert res.exit_code == 0, res.output
    assert res.output.split() == [str(out / "report.html"), str(out / "summary.json")]
    s = json.loads((out / "summary.json").read_text())
    assert s["n_total"] == [780, 256] and s["n_sampled"] == [30, 30]
    tests = pd.read_csv(out / "tests.csv").set_index("feature")
    # BUSI was downscaled to <= 256 px, BrEaST kept at full resolution; BrEaST has tinted B-mode, BUSI none
    assert tests.loc["width", "statistic"] > 0.9 and tests.loc["tinted", "statistic"] > 0.15
    assert "site: BrEaST vs BUSI" in s["shortcut_flags"]
    assert s["domain_auc_descriptors"]["estimate"] > 0.95
