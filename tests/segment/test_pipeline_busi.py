"""The automatic pipeline end to end on a few BUSI images (shared data; tiny sizes, 1 epoch):
segment train -> segment predict (masks + manifest) -> train --roi mask on automatic masks ->
predict --segmenter (image -> mask -> crop -> class) -> segment evaluate (members + fusions, report)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.data import read_image
from nodescope.segment._masks_io import read_mask


def _busi_subset(shared: Path, tmp: Path) -> Path:
    lab = pd.read_csv(shared / "busi_256" / "labels.csv", dtype=str, keep_default_na=False)
    picks = pd.concat([lab[lab["label"] == c].head(n) for c, n in (("benign", 6), ("malignant", 6), ("normal", 2))])
    root = shared / "busi_256"
    picks = picks.assign(image=[str(root / v) for v in picks["image"]], mask=[str(root / v) for v in picks["mask"]])
    tmp.mkdir(parents=True, exist_ok=True)
    picks.to_csv(tmp / "manifest.csv", index=False)
    return tmp / "manifest.csv"


def _ok(args: list[str]) -> str:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return r.output


SEG = ["--architecture", "monai_unet", "--image-size", "32", "--epochs", "1", "--folds", "2", "--batch-size", "4",
       "--val-fraction", "0", "--num-threads", "1", "--accelerator", "cpu", "--group-col", "dup_group"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.slow
def test_automatic_pipeline_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    man = _busi_subset(shared_data, tmp_path / "data")
    out = _ok(["segment", "train", str(man), "-o", str(tmp_path / "seg"), *SEG])
    assert "cv: Dice" in out and "false positives on 2 lesion-free images" in out
    seg = tmp_path / "seg" / "final" / "bundle"
    scores = pd.read_csv(tmp_path / "seg" / "scores.csv")
    assert len(scores) == 14 and scores["truth_empty"].sum() == 2

    # masks for images that never had one: a manifest without its mask column
    bare = pd.read_csv(man, dtype=str, keep_default_na=False).drop(columns=["mask"])
    bare.to_csv(tmp_path / "bare.csv", index=False)
    _ok(["segment", "predict", str(seg), str(tmp_path / "bare.csv"), "-o", str(tmp_path / "auto"),
         "--group-col", "dup_group"])
    auto = pd.read_csv(tmp_path / "auto" / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(auto) == 14 and "mask_manual" not in auto.columns
    for img, m in zip(auto["image"], auto["mask"], strict=True):
        assert read_mask(tmp_path / "auto" / m).shape == read_image(img).pixels.shape[:2]  # original size

    # a classifier trained on the automatic crops, then image -> mask -> crop -> class in one command
    cls_cfg = tmp_path / "c.yaml"
    cls_cfg.write_text("backbone: resnet18\nimage_size: 32\nepochs: 1\nfolds: 2\nbatch_size: 8\nnum_threads: 1\n"
                       "accelerator: cpu\nhidden: 8\nclasses: [benign, malignant]\ngroup_col: dup_group\n")
    _ok(["train", str(tmp_path / "auto" / "manifest.csv"), "-o", str(tmp_path / "cls"), "--config", str(cls_cfg),
         "--roi", "mask"])
    cls = tmp_path / "cls" / "final" / "bundle"
    _ok(["predict", str(cls), str(tmp_path / "bare.csv"), "-o", str(tmp_path / "p.csv"), "--segmenter", str(seg)])
    p = pd.read_csv(tmp_path / "p.csv")
    assert len(p) == 14 and (p["roi_source"] == "automatic").all()
    assert np.allclose(p["p_benign"] + p["p_malignant"], 1, atol=1e-5)
    # the same crops through the written manifest give the same probabilities (same segmenter, no clean-up)
    _ok(["predict", str(cls), str(tmp_path / "auto" / "manifest.csv"), "-o", str(tmp_path / "q.csv")])
    q = pd.read_csv(tmp_path / "q.csv")
    np.testing.assert_allclose(p["p_malignant"], q["p_malignant"], atol=1e-5)
    # with the clean-up: predict --segmenter applies the same clean-up as segment predict does
    clean = ["--largest-component", "--fill-holes"]
    _ok(["segment", "predict", str(seg), str(tmp_path / "bare.csv"), "-o", str(tmp_path / "auto_lc"),
         "--group-col", "dup_group", *clean])
    _ok(["predict", str(cls), str(tmp_path / "bare.csv"), "-o", str(tmp_path / "p_lc.csv"), "--segmenter", str(seg),
         *clean])
    _ok(["predict", str(cls), str(tmp_path / "auto_lc" / "manifest.csv"), "-o", str(tmp_path / "q_lc.csv")])
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p_lc.csv")["p_malignant"],
                               pd.read_csv(tmp_path / "q_lc.csv")["p_malignant"], atol=1e-5)
    r = CliRunner().invoke(app, ["predict", str(cls), str(tmp_path / "bare.csv"), "-o", str(tmp_path / "x.csv"),
                                 "--largest-component"])
    assert r.exit_code == 2 and "--segmenter" in r.output

    # two members and every fusion, side by side on the same images, with a report
    seg2 = tmp_path / "seg" / "folds" / "fold_0" / "bundle"
    out = _ok(["segment", "evaluate", str(seg), str(seg2), str(man), "-o", str(tmp_path / "ev"), "--n-boot", "50",
               "--group-col", "dup_group"])
    summ = pd.read_csv(tmp_path / "ev" / "summary.csv")
    assert set(summ["model"]) == {"segmenter", "segmenter_fold0", "fusion_mean", "fusion_vote", "fusion_staple"}
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "Worst and best cases" in html and html.count("data:image/png;base64") >= 5
    # and a run's own out-of-fold table
    _ok(["segment", "evaluate", str(tmp_path / "seg" / "predictions.csv"), "-o", str(tmp_path / "ev2"),
         "--n-boot", "50"])
    oof = pd.read_csv(tmp_path / "ev2" / "scores.csv")
    np.testing.assert_allclose(np.sort(oof["dice"]), np.sort(scores["dice"]))
