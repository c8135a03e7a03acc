"""``nodescope explain`` on tiny bundles: outputs, scores recomputable from the saved heat maps, the gallery in a
browser, fusion bundles, and the usual refusals (one error line, exit 2, nothing written)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.explain import energy_in_mask, pointing_hit
from nodescope.models import (
    BundleMeta,
    ClassifierNet,
    InputSpec,
    IntermediateFusionNet,
    Threshold,
    save_bundle,
)

pytest.importorskip("pytorch_grad_cam")
runner = CliRunner()


def _save(path: Path, net: torch.nn.Module, arch: dict, *, kind: str = "classifier",
          modalities: tuple[str, ...] | None = None) -> Path:
    meta = BundleMeta(kind=kind, name="tiny", architecture=arch, classes=("benign", "malignant"),
                      positive_class="malignant",
                      input=InputSpec(image_size=64, channels=1, mean=(0.5,), std=(0.25,), modalities=modalities),
                      threshold=Threshold(0.5, "youden", "cv", "p_malignant >= value"))
    return save_bundle(path, net.eval(), meta)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    from tiny_data import write_tiny_dataset

    root = tmp_path_factory.mktemp("explain")
    manifest = write_tiny_dataset(root / "data", n_patients=4, per_patient=2, masks=True)
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 2, in_chans=1, image_size=64, hidden=8)
    arch = {"backbone": "resnet18", "num_classes": 2, "in_chans": 1, "image_size": 64, "hidden": 8}
    return _save(root / "bundle", net, arch), manifest


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_explain_manifest_with_masks(tiny, tmp_path) -> None:
    bundle, manifest = tiny
    before = _digest(manifest.parent)
    out = tmp_path / "out"
    res = runner.invoke(app, ["explain", str(bundle), str(manifest), "-o", str(out), "--method", "gradcam,eigencam",
                              "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    assert "8 image(s) explained" in res.stdout and "gradcam: energy_in_mask" in res.stdout
    assert _digest(manifest.parent) == before  # inputs untouched
    scores = pd.read_csv(out / "explanations.csv", keep_default_na=False)
    assert len(scores) == 16 and set(scores["method"]) == {"gradcam", "eigencam"}
    assert set(scores["layer"]) == {"layer4"}
    # every score is recomputed from the saved 16-bit heat map and the mask
    for row in scores.itertuples(index=False):
        heat = np.asarray(Image.open(out / row.heatmap), dtype=np.float64) / 65535.0
        mask = np.asarray(Image.open(row.mask)) > 0
        image = np.asarray(Image.open(row.image))
        assert heat.shape == image.shape[:2]
        assert float(row.energy_in_mask) == pytest.approx(energy_in_mask(heat, mask), abs=1e-12)
        assert float(row.pointing_hit) == pointing_hit(heat, mask)
        assert float(row.mask_fraction) == pytest.approx(mask.mean())
        overlay = np.asarray(Image.open(out / row.overlay))
        assert overlay.shape == (*image.shape[:2], 3)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["class"]) == {"benign", "malignant", "all"}
    assert len(summary) == 2 * 3 * 3  # methods x classes x metrics
    row = summary[(summary["method"] == "gradcam") & (summary["class"] == "all")
                  & (summary["metric"] == "energy_in_mask")].iloc[0]
    g = scores[scores["method"] == "gradcam"]
    assert row["estimate"] == pytest.approx(g["energy_in_mask"].astype(float).mean())
    assert row["n_groups"] == 4 and row["ci_low"] <= row["estimate"] <= row["ci_high"]
    page = (out / "gallery.html").read_text()
    assert page.count("data:image/png;base64,") == 8 * 3  # original + two overlays per image
    assert "Does the heat map look at the lesion?" in page


def test_gallery_opens_in_a_browser(tiny, tmp_path) -> None:
    from browser import chromium_page

    bundle, manifest = tiny
    out = tmp_path / "g"
    assert runner.invoke(app, ["explain", str(bundle), str(manifest), "-o", str(out), "--n-boot", "20"]).exit_code == 0
    with chromium_page() as page:
        page.goto((out / "gallery.html").as_uri())
        sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        assert len(sizes) == 16 and all(done and width > 0 for done, width in sizes)
        assert page.locator("table").count() == 1


def test_folder_without_masks_and_refusals(tiny, tmp_path) -> None:
    bundle, manifest = tiny
    out = tmp_path / "f"
    res = runner.invoke(app, ["explain", str(bundle), str(manifest.parent), "-o", str(out), "--method", "layercam",
                              "--target", "benign", "--gallery-max", "3"])
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(out / "explanations.csv")
    assert len(scores) == 16  # the folder holds the images and their masks: all are explained as images
    assert set(scores["target_class"]) == {"benign"}
    assert scores["energy_in_mask"].isna().all() and not (out / "summary.csv").exists()
    page = (out / "gallery.html").read_text()
    assert page.count("data:image/png;base64,") == 3 * 2 and "The first 3 of 16 images are shown" in page
    before = _digest(out)
    for args, text in (
        (["-o", str(out)], "not empty"),  # an existing output without --overwrite
        (["-o", str(tmp_path / "x"), "--method", "gradcam,nope"], "--method: unknown CAM method(s) ['nope']"),
        (["-o", str(tmp_path / "x"), "--target", "lymphoma"], "--target: 'lymphoma' is not a class"),
        (["-o", str(tmp_path / "x"), "--alpha", "1.5"], "--alpha: must be in [0, 1]"),
    ):
        res = runner.invoke(app, ["explain", str(bundle), str(manifest), *args])
        assert res.exit_code == 2, res.output
        lines = res.stderr.splitlines()
        assert lines[0].startswith("error: ") and text in " ".join(res.stderr.split()), res.stderr
    assert _digest(out) == before and not (tmp_path / "x").exists()
    # a mask of another size than its image: the manifest reader names the row and column, nothing is written
    m = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "small_mask.png")
    m.loc[3, "mask"] = str(tmp_path / "small_mask.png")
    m["image"] = [str(manifest.parent / v) for v in m["image"]]
    m["mask"] = [v if Path(v).is_absolute() else str(manifest.parent / v) for v in m["mask"]]
    m.to_csv(tmp_path / "bad.csv", index=False)
    res = runner.invoke(app, ["explain", str(bundle), str(tmp_path / "bad.csv"), "-o", str(tmp_path / "y")])
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    flat = " ".join(res.stderr.split())
    assert "row 5, column 'mask'" in flat and "mask size 5x5 differs from image size 48x40" in flat, flat
    assert not (tmp_path / "y").exists()


def test_fusion_bundle_explained_per_modality(tmp_path) -> None:
    from tiny_data import write_tiny_dataset

    mods = ("bmode", "cdfi")
    manifest = write_tiny_dataset(tmp_path / "data", n_patients=2, per_patient=1, masks=True, modalities=mods)
    torch.manual_seed(0)
    net = IntermediateFusionNet("resnet18", list(mods), 2, in_chans=1, image_size=64, hidden=8)
    bundle = _save(tmp_path / "fb", net, dict(net.config), kind="fusion", modalities=mods)
    res = runner.invoke(app, ["explain", str(bundle), str(manifest), "-o", str(tmp_path / "o"), "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(tmp_path / "o" / "explanations.csv")
    assert len(scores) == 4 and sorted(scores["modality"]) == ["bmode", "bmode", "cdfi", "cdfi"]
    # one unit, one prediction: both modalities of a patient explain the same class with the same probabilities
    for _pid, g in scores.groupby("patient_id"):
        assert g["target_class"].nunique() == 1 and g["p_malignant"].nunique() == 1
    # two images of one modality in a unit: each gets its own map (with the first image of the other modality as
    # context, the image training used), not one map written twice
    m = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    m = pd.concat([m, m.assign(image=m["image"].str.replace(".png", "_b.png"))], ignore_index=True)
    for name in m["image"][len(m) // 2:]:
        src = np.asarray(Image.open(tmp_path / "data" / name.replace("_b.png", ".png")))
        Image.fromarray(np.ascontiguousarray(src[:, ::-1])).save(tmp_path / "data" / name)  # mirrored copy
    m.to_csv(tmp_path / "data" / "dup.csv", index=False)
    res = runner.invoke(app, ["explain", str(bundle), str(tmp_path / "data" / "dup.csv"), "-o", str(tmp_path / "d"),
                              "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    dup = pd.read_csv(tmp_path / "d" / "explanations.csv")
    assert len(dup) == 8
    by_image = dup.set_index(dup["image"].map(lambda v: Path(v).name))["heatmap"]
    first, second = (np.asarray(Image.open(tmp_path / "d" / by_image[n])) for n in ("p00_0_bmode.png",
                                                                                  "p00_0_bmode_b.png"))
    assert first.shape == second.shape and not np.array_equal(first, second)
