"""`nodescope train --roi two-view`: a one-epoch run whose bundle reproduces the run's predictions through predict, and
the refusals (a row without a mask, an empty mask, impossible option combinations), on tiny synthetic images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tiny_data import write_tiny_dataset
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.data import read_image
from nodescope.models import load_bundle, predict_files, prepare_image

# --recipe none: each step is asked for by name here
FAST = ["--recipe", "none", "--backbone", "resnet18", "--image-size", "32", "--epochs", "1", "--folds", "2",
        "--batch-size", "8", "--num-threads", "1",
        "--accelerator", "cpu", "--hidden", "8", "--val-fraction", "0", "--positive",
        "malignant"]


def test_two_view_run_round_trips_through_its_bundle(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=8, per_patient=1, masks=True)
    ext = write_tiny_dataset(tmp_path / "e", n_patients=4, per_patient=1, masks=True, seed=5)
    e = pd.read_csv(ext)
    e["patient_id"] = "X" + e["patient_id"]
    e.to_csv(ext, index=False)
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", str(m), "-o", str(run), "--external", str(ext), "--roi", "two-view",
                                 "--context-scale", "2", "--tta", *FAST])
    assert r.exit_code == 0, r.output
    meta = json.loads((run / "final" / "bundle" / "model.json").read_text())
    assert meta["input"]["roi"] == "two-view" and meta["input"]["context_scale"] == 2.0
    assert meta["architecture"]["views"] == 2 and meta["input"]["tta"] is True
    bundle = load_bundle(run / "final" / "bundle")
    # the ROI view is the --roi mask input of the same image and mask
    img, mask = read_image(ext.parent / e["image"][0]), read_image(ext.parent / e["mask"][0]).pixels
    x, _ = bundle.spec.prepare(img, mask=mask)
    assert x.shape == (6, 32, 32) and (x[:3] == prepare_image(img.pixels, size=32, mask=mask)[0]).all()
    # predict from the bundle alone reproduces the run's external predictions (same two views, same TTA)
    pred = pd.read_csv(run / "predictions.csv")
    want = pred[pred["split"] == "external"].sort_values("image")["p_malignant"].to_numpy()
    again = predict_files(bundle, [ext], split="external", threads=1).sort_values("image")
    np.testing.assert_allclose(again["p_malignant"].to_numpy(), want, atol=1e-6)
    out = tmp_path / "p.csv"
    r = CliRunner().invoke(app, ["predict", str(run / "final" / "bundle"), str(ext), "-o", str(out), "--engine",
                                 "onnx", "--threads", "1"])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(pd.read_csv(out).sort_values("image")["p_malignant"].to_numpy(), want, atol=1e-4)
    # a bundle that sees the whole image refuses an automatic mask it would not use (unchanged for roi none)
    r = CliRunner().invoke(app, ["predict", str(run / "final" / "bundle"), str(tmp_path / "d" / "p00_0.png"),
                                 "-o", str(tmp_path / "q.csv")])
    assert r.exit_code == 2 and "two-view" in r.output and "no mask" in r.output


def test_a_row_without_a_mask_or_with_an_empty_one_is_refused_by_name(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=6, per_patient=1, masks=True)
    df = pd.read_csv(m)
    df.loc[2, "mask"] = ""
    df.to_csv(m, index=False)
    args = ["train", str(m), "-o", str(tmp_path / "run"), "--roi", "two-view", *FAST]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert "p02_0.png" in r.output and "roi 'two-view'" in r.output and "has no mask" in r.output
    df.loc[2, "mask"] = "m_p02_0.png"
    df.to_csv(m, index=False)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(tmp_path / "d" / "m_p03_0.png")
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "p03_0.png: its mask" in r.output and "m_p03_0.png is empty" in r.output
    assert not (tmp_path / "run" / "folds").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--context-scale", "0.5"], "context_scale"),
    (["--context-scale", "101"], "--context-scale"),
    (["--intensity", "match"], "intensity 'match'"),
])
def test_impossible_two_view_options_are_refused(tmp_path: Path, extra: list[str], message: str) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=4, per_patient=1, masks=True)
    r = CliRunner().invoke(app, ["train", str(m), "-o", str(tmp_path / "run"), "--roi", "two-view", *extra, *FAST])
    assert r.exit_code == 2 and message in r.output, r.output
