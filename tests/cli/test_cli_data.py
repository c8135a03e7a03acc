from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from typer.testing import CliRunner

from nodescope.cli import app

runner = CliRunner()


def _dataset(tmp_path: Path, n: int = 12) -> Path:
    rows = []
    for i in range(n):
        img = tmp_path / "img" / f"{i}.png"
        img.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(img)
        rows.append({"patient_id": f"P{i // 2}", "image": f"img/{i}.png", "label": "ab"[i % 4 // 2],
                     "site": "S1" if i < 8 else "S2"})
    path = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_check_ok_and_summary(tmp_path):
    path = _dataset(tmp_path)
    res = runner.invoke(app, ["data", "check", str(path)])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output and "12 images" in res.output


def test_check_reports_errors_and_exits_nonzero(tmp_path):
    path = _dataset(tmp_path)
    df = pd.read_csv(path, dtype=str)
    df.loc[3, "image"] = "img/gone.png"
    df.loc[5, "patient_id"] = ""
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["data", "check", str(path)])
    assert res.exit_code == 1
    assert "2 problem(s)" in res.output
    assert "row 5, column 'image'" in res.output
    assert "row 7, column 'patient_id'" in res.output


def test_split_writes_csv_and_manifest_copy(tmp_path):
    path = _dataset(tmp_path)
    out = tmp_path / "splits.csv"
    res = runner.invoke(app, ["data", "split", str(path), "-o", str(out), "--n-splits", "3",
                              "--manifest-out", str(tmp_path / "elsewhere" / "m2.csv")])
    assert res.exit_code == 0, res.output
    s = pd.read_csv(out)
    assert set(s["fold"]) == {0, 1, 2}
    assert s.groupby("group")["fold"].nunique().max() == 1
    m2 = pd.read_csv(tmp_path / "elsewhere" / "m2.csv")
    assert list(m2["split"].unique()) == ["cv"]
    assert m2["image"].iloc[0] == "../img/0.png"  # re-anchored to the copy's folder
    res = runner.invoke(app, ["data", "check", str(tmp_path / "elsewhere" / "m2.csv")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["data", "split", str(path), "--method", "site", "--external-site", "S9",
                              "-o", str(out)])
    assert res.exit_code == 2
    assert "not found in column 'site'" in res.output


def test_synth_writes_checkable_dataset(tmp_path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["data", "synth", str(out), "--n-patients", "6", "--image-size", "48"])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output
    res = runner.invoke(app, ["data", "check", str(out / "manifest.csv"), "--clinical", str(out / "clinical.csv")])
    assert res.exit_code == 0, res.output
    assert "18 images" in res.output and "SYNTHETIC" in res.output
    res = runner.invoke(app, ["data", "synth", str(out), "--n-patients", "6"])
    assert res.exit_code == 2  # refuses to overwrite without --overwrite
