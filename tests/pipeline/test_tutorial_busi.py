"""docs/tutorial-busi.md, executed: every command of its ``bash`` blocks, in order, on the shared data.

The commands are parsed out of the markdown (so the tutorial and this test cannot drift), run as ``python -m
nodescope ...`` subprocesses in a temporary folder holding the BUSI release layout (rebuilt from
``../shared/data/busi_256``), with the tutorial's ``../shared/data`` replaced by the shared data found here. Then the
outputs are checked, the figures are recomputed from the saved predictions, and the figures the tutorial states
(its table between the ``tutorial-figures`` markers) are compared with this run's.

Set ``NODESCOPE_TUTORIAL_TIMES=FILE`` to write each step's wall and CPU time (user + system of the child process)
as JSON: the source of the tutorial's timing column.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from busi_release import rebuild_busi_release

from nodescope.evaluation import roc_auc

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "tutorial-busi.md"
SHARED_IN_DOC = "../shared/data"


def tutorial_commands(text: str) -> list[str]:
    """The commands of the ``bash`` fenced blocks, in order: continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
    return commands


def stated_figures(text: str) -> dict[str, float]:
    """``{key: first number}`` of the rows ``| `key` | ... | value ... |`` between the tutorial-figures markers."""
    table = text.split("<!-- tutorial-figures -->")[1].split("<!-- /tutorial-figures -->")[0]
    out = {}
    for key, value in re.findall(r"^\|\s*`(\w+)`\s*\|[^|]*\|\s*([-0-9.]+)", table, flags=re.M):
        out[key] = float(value)
    return out


def test_tutorial_parser_reads_blocks_and_figures():
    text = ("intro\n```bash\n# a comment\nnodescope data check m.csv \\\n    --group-col dup_group\n```\n"
            "```text\nnot run\n```\n```bash\nnodescope evaluate p.csv -o ev\n```\n"
            "<!-- tutorial-figures -->\n| key | what | value |\n| --- | --- | --- |\n"
            "| `cv_auc` | AUC | 0.912 (0.89-0.93) |\n<!-- /tutorial-figures -->\n")
    assert tutorial_commands(text) == ["nodescope data check m.csv --group-col dup_group",
                                       "nodescope evaluate p.csv -o ev"]
    assert stated_figures(text) == {"cv_auc": 0.912}


def _run(command: str, cwd: Path, shared: Path, env: dict[str, str]) -> dict[str, float]:
    args = shlex.split(command)
    assert args[0] == "nodescope", f"the tutorial runs only nodescope commands: {command}"
    args = [a.replace(SHARED_IN_DOC, str(shared)) for a in args[1:]]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "nodescope", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=3600)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - t0
    assert res.returncode == 0, f"{command}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def _auc(frame: pd.DataFrame) -> float:
    return roc_auc((frame["y_true"] == "malignant").to_numpy(int), frame["p_malignant"].to_numpy(float)).estimate


@pytest.mark.slow
@pytest.mark.shared_data
def test_tutorial_busi_runs_as_written(shared_data, tmp_path):
    text = DOC.read_text()
    commands = tutorial_commands(text)
    assert [c.split()[1] for c in commands] == ["data", "data", "data", "data", "data", "train", "evaluate",
                                                "predict"], commands
    rebuild_busi_release(shared_data / "busi_256", tmp_path / "Dataset_BUSI_with_GT")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "200"}
    times = {c: _run(c, tmp_path, shared_data, env) for c in commands}
    if os.environ.get("NODESCOPE_TUTORIAL_TIMES"):
        Path(os.environ["NODESCOPE_TUTORIAL_TIMES"]).write_text(json.dumps(times, indent=2))
    check_tutorial_outputs(tmp_path, text)


def check_tutorial_outputs(work: Path, text: str) -> None:
    """Check the outputs of the tutorial's commands in ``work`` and compare the figures ``text`` states."""
    tmp_path = work
    # the data: normal images left out, near duplicates grouped, BrEaST's 4 normal cases left out
    busi = pd.read_csv(tmp_path / "busi" / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(busi) == 647 and set(busi["label"]) == {"benign", "malignant"}
    assert busi["dup_group"].nunique() < len(busi)
    breast = pd.read_csv(tmp_path / "breast" / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(breast) == 252 and set(breast["label"]) == {"benign", "malignant"}

    # training: every BUSI image predicted once out of fold, every BrEaST image once by the final model
    run = tmp_path / "runs" / "busi"
    for f in ("config.yaml", "splits.csv", "predictions.csv", "summary.json", "final/bundle/model.json",
              "final/bundle/weights.safetensors", "final/bundle/MODEL_CARD.md"):
        assert (run / f).is_file(), f
    pred = pd.read_csv(run / "predictions.csv", dtype=str, keep_default_na=False)
    cv, ext = pred[pred["split"] == "cv"], pred[pred["split"] == "external"]
    assert len(cv) == 647 and cv["image"].is_unique and len(ext) == 252 and ext["patient_id"].is_unique
    splits = pd.read_csv(run / "splits.csv", dtype=str, keep_default_na=False)
    assert splits.groupby("group")["fold"].nunique().max() == 1  # no duplicate group in two folds

    # evaluation: metrics.json agrees with a recomputation from predictions.csv
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    doc = metrics["models"]["busi_lite0"]
    got = {"cv_auc": doc["splits"]["cv"]["discrimination"]["auc"]["estimate"],
           "external_auc": doc["splits"]["external"]["discrimination"]["auc"]["estimate"],
           "threshold": doc["threshold"]["value"]}
    assert got["cv_auc"] == pytest.approx(_auc(cv.astype({"p_malignant": float})), abs=1e-9)
    assert got["external_auc"] == pytest.approx(_auc(ext.astype({"p_malignant": float})), abs=1e-9)
    op = doc["splits"]["external"]["operating_point"]
    got["external_sensitivity"] = op["metrics"]["sensitivity"]["estimate"]
    got["external_specificity"] = op["metrics"]["specificity"]["estimate"]
    assert (run / "evaluation" / "report.html").is_file()
    assert "external" in (run / "evaluation" / "report.html").read_text()
    # sane: the recipe learns; the external set is harder (0.653, 95% CI 0.584-0.723 in the run the doc quotes)
    assert got["cv_auc"] > 0.75 and got["external_auc"] > 0.6, got

    # predict: the final bundle scores BrEaST exactly as training's external rows did (same bundle, same TTA)
    new = pd.read_csv(tmp_path / "breast_predictions.csv", dtype=str, keep_default_na=False)
    both = new.merge(ext, on="patient_id", suffixes=("", "_train"))
    assert len(both) == 252
    np.testing.assert_allclose(both["p_malignant"].astype(float), both["p_malignant_train"].astype(float),
                               atol=1e-5)
    assert np.isclose(float(new["threshold"].iloc[0]), got["threshold"], atol=1e-9)

    # the figures the tutorial states are this run's (seeded; CPU float round-off allowed)
    stated = stated_figures(text)
    assert set(stated) == set(got), (stated, got)
    for key, value in got.items():
        assert value == pytest.approx(stated[key], abs=0.02), (key, value, stated[key])
