"""The appearance options of `nodescope train` are recorded in the bundle and applied identically by predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tiny_data import write_tiny_dataset
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.data import read_image
from nodescope.models import load_bundle, predict_files, prepare_image
from nodescope.training import intensity_reference

# --recipe none: each step is asked for by name here
FAST = ["--recipe", "none", "--backbone", "resnet18", "--image-size", "32", "--epochs", "1", "--folds", "2",
        "--batch-size", "8", "--num-threads", "1",
        "--accelerator", "cpu", "--hidden", "8", "--augment", "none", "--val-fraction", "0"]


def as_screen_capture(manifest: Path, tint: tuple[float, float, float]) -> None:
    """Put every image of a tiny data set inside a tinted screen capture with a title bar and a side ruler."""
    for name in pd.read_csv(manifest)["image"]:
        p = manifest.parent / name
        scan = np.asarray(Image.open(p)).astype(np.float64) + 30  # no black pixel inside the scan
        h, w = scan.shape
        cap = np.zeros((h + 30, w + 40, 3), np.uint8)
        cap[20 : 20 + h, 20 : 20 + w] = np.clip(np.rint(scan[..., None] * np.array(tint)), 0, 255)
        cap[3:8, 5 : w + 35 : 3] = 255  # title text
        cap[22 : 18 + h : 6, 4:10] = 250  # ruler ticks, 10 px left of the scan
        Image.fromarray(cap).save(p)


def test_train_records_steps_and_predict_repeats_them(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=8, per_patient=1)
    as_screen_capture(m, (1.0, 1.0, 1.0))
    ext = write_tiny_dataset(tmp_path / "e", n_patients=4, per_patient=1, seed=5)
    as_screen_capture(ext, (0.85, 0.9, 1.0))  # the other centre's scanner tints its B-mode blue
    e = pd.read_csv(ext)
    e["patient_id"] = "X" + e["patient_id"]
    e.to_csv(ext, index=False)
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", str(m), "-o", str(run), "--external", str(ext), "--positive", "malignant",
                                 "--scan-crop", "--grey", "tint", "--intensity", "match", *FAST])
    assert r.exit_code == 0, r.output
    spec = json.loads((run / "final" / "bundle" / "model.json").read_text())["input"]
    assert spec["scan_crop"] is True and spec["grey"] == "tint" and spec["intensity"] == "match"
    # the matching reference: the mean quantile function of the development images after the same first steps
    dev = [m.parent / n for n in pd.read_csv(m)["image"]]
    np.testing.assert_allclose(spec["intensity_reference"], intensity_reference(dev, scan_crop=True, grey="tint"))
    bundle = load_bundle(run / "final" / "bundle")
    # the prepared tensor is that of the scan alone, tint removed and matched: 40 x 48 scan at (20, 20)
    img = read_image(ext.parent / e["image"][0])
    x, tr = bundle.spec.prepare(img)
    assert tr.crop == (20, 20, 60, 68)
    assert (x[0] == x[2]).all()
    raw, _ = prepare_image(img.pixels, size=32)
    assert not (raw[0] == raw[2]).all()  # without the steps the tint would reach the network
    # predict from files reproduces the run's external predictions exactly (same preprocessing at both ends)
    pred = pd.read_csv(run / "predictions.csv")
    again = predict_files(bundle, [ext], split="external").sort_values("image")
    np.testing.assert_allclose(again["p_malignant"].to_numpy(),
                               pred[pred["split"] == "external"].sort_values("image")["p_malignant"].to_numpy(),
                               atol=1e-6)
    # AdaBN at predict time: BatchNorm statistics from the external images, the bundle's files untouched
    weights = (run / "final" / "bundle" / "weights.safetensors").read_bytes()
    out = tmp_path / "adapted.csv"
    r = CliRunner().invoke(app, ["predict", str(run / "final" / "bundle"), str(ext), "-o", str(out), "--adapt-bn"])
    assert r.exit_code == 0, r.output
    adapted = pd.read_csv(out).sort_values("image")
    assert (adapted["bn_adapted"] == 4).all()
    assert not np.allclose(adapted["p_malignant"], again["p_malignant"], atol=1e-6)
    assert (run / "final" / "bundle" / "weights.safetensors").read_bytes() == weights
    r = CliRunner().invoke(app, ["predict", str(run / "final" / "bundle"), str(ext), "-o", str(tmp_path / "o.csv"),
                                 "--adapt-bn", "--engine", "onnx"])
    assert r.exit_code == 2 and "engine 'torch'" in r.output
    r = CliRunner().invoke(app, ["train", str(m), "-o", str(tmp_path / "bad"), "--intensity", "zscore"])
    assert r.exit_code == 2 and "--intensity" in r.output
