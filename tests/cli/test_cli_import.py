"""``nodescope data import``: the table layout, --column, --labels and --dup-groups through the command line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from nodescope.cli import app

runner = CliRunner()


def _table(root: Path) -> Path:
    (root / "imgs").mkdir(parents=True)
    rows = []
    for i, cls in enumerate(["Benign", "Malignant", "Normal", "Benign"]):
        arr = np.full((12, 16), 40 * i, np.uint8) if i < 3 else np.full((12, 16), 1, np.uint8)  # case4 ~ case1
        Image.fromarray(arr).save(root / "imgs" / f"c{i}.png")
        rows.append({"Case": f"c{i}", "File": f"imgs/c{i}.png", "Classification": cls})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def _error(args: list[str], expected: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert lines[0].startswith("error: ") and sum(x.startswith("error:") for x in lines) == 1, res.stderr
    assert expected in " ".join(res.stderr.split()), res.stderr


def test_table_import_with_column_map_labels_and_dup_groups(tmp_path):
    src = _table(tmp_path / "rel")
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "out"
    args = ["data", "import", "table", str(src), str(out), "--column", "patient_id=Case", "--column", "image=File",
            "--column", "label=Classification", "--labels", "Benign,Malignant", "--dup-groups"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "3 images, classes ['Benign', 'Malignant'], 1 left out (labels), 1 dup_group(s) of several images" in flat
    m = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert list(m["dup_group"]) == ["c0", "c1", "c0"]
    assert list(m["image"]) == ["../rel/imgs/c0.png", "../rel/imgs/c1.png", "../rel/imgs/c3.png"]
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    _error(args, "manifest.csv already exists")  # an earlier import is replaced only with --overwrite
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--column", "label"], "--column: expected MANIFEST_COLUMN=SOURCE_COLUMN (e.g. label=Classification), "
                            "got 'label'"),
    (["--column", "=Case"], "got '=Case'"),
    (["--column", "label=Klass"], "column 'Klass' (mapped to 'label') not found"),
    (["--patient-regex", "c(\\d)"], "--patient-regex applies to the 'folder' layout"),
    (["--labels", "Benign,Bening"], "label(s) ['Bening'] have no image"),
])
def test_table_import_refusals(tmp_path, extra, message):
    src = _table(tmp_path / "rel")
    base = ["data", "import", "table", str(src), str(tmp_path / "out"), "--column", "patient_id=Case",
            "--column", "image=File", "--column", "label=Classification"]
    _error([*base, *extra], message)
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_column_is_for_tables_only(tmp_path):
    _error(["data", "import", "busi", str(tmp_path), str(tmp_path / "o"), "--column", "label=x"],
           "--column applies to the 'table' layout, not 'busi'")
