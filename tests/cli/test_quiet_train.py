"""``nodescope train`` output: no third-party banners unless --verbose, progress lines in a log, --quiet, summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_data import write_tiny_dataset
from typer.testing import CliRunner

from nodescope.cli import app

SRC = Path(__file__).resolve().parents[2] / "src"
#: What Lightning 2.x prints by itself on every Trainer: device banners, its cloud-logger advertisement, progress
#: bar metrics (v_num), fit-end notes; and the deprecation warning raised inside it (lightning/.../_pytree.py).
THIRD_PARTY = ("GPU available", "TPU available", "litlogger", "LitLogger", "v_num", "`Trainer.fit` stopped",
               "LeafSpec", "limit_val_batches", "site-packages")


def _args(m: Path, out: Path) -> list[str]:
    return ["train", str(m), "-o", str(out), "--backbone", "resnet18", "--image-size", "32", "--epochs", "1",
            "--folds", "2", "--batch-size", "4", "--accelerator", "cpu", "--num-threads", "1", "--weights", "none",
            "--final-model", "none", "--hidden", "8", "--positive", "malignant"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"), n_patients=6, per_patient=2)


def test_train_in_a_batch_job_shows_progress_and_no_third_party_lines(data: Path, tmp_path: Path) -> None:
    """A real process with stdout and stderr redirected to files, as under a batch scheduler."""
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", COLUMNS="200")
    r = subprocess.run([sys.executable, "-m", "nodescope", *_args(data, tmp_path / "run")], capture_output=True,
                       text=True, env=env, timeout=300, cwd=tmp_path)
    both = r.stdout + r.stderr
    assert r.returncode == 0, both[-3000:]
    for pattern in THIRD_PARTY:
        assert pattern not in both, pattern
    assert r.stderr == ""
    # one progress line per epoch and a closing line per fold, with the fold, epoch, losses and an ETA
    for k in (0, 1):
        assert f"fold {k} ({k + 1}/2) training  100%  epoch 1/1  train_loss " in r.stdout
        assert f"fold {k} ({k + 1}/2) training  done  epoch 1/1" in r.stdout
    assert "val_loss" in r.stdout and "ETA 0:00:00" in r.stdout
    # the summary: AUC with its CI from the saved predictions, the threshold, the files
    assert "AUC (95% CI)" in r.stdout and "bootstrap by patient" in r.stdout
    assert "threshold: p_malignant >= " in r.stdout
    run = tmp_path / "run"
    assert f"predictions: {run / 'predictions.csv'}" in r.stdout and f"log:         {run / 'train.log'}" in r.stdout
    # the printed AUC and CI are those of the saved predictions (patient-clustered bootstrap, 2000, seed 0)
    import pandas as pd

    from nodescope.evaluation import roc_auc

    pred = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    est = roc_auc((pred["y_true"] == "malignant").to_numpy(int), pred["p_malignant"].to_numpy(float),
                  method="bootstrap", groups=pred["patient_id"].to_numpy(), n_boot=2000, seed=0)
    assert f"{est.estimate:.3f} ({est.ci_low:.3f}-{est.ci_high:.3f})" in r.stdout
    log = (run / "train.log").read_text()
    for pattern in ("GPU available", "TPU available", "`Trainer.fit` stopped"):  # kept in the run's log
        assert pattern in log, pattern


def test_train_verbose_shows_the_third_party_lines(data: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["--verbose", *_args(data, tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "GPU available" in res.output and "TPU available" in res.output
    assert "GPU available" in (tmp_path / "run" / "train.log").read_text()


def test_train_quiet_prints_the_predictions_path_only_and_the_log_follows_the_run(data: Path, tmp_path: Path
                                                                                  ) -> None:
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["--quiet", *_args(data, run)])
    assert res.exit_code == 0, res.output
    assert res.output == f"{run / 'predictions.csv'}\n"
    first = (run / "train.log").read_text()
    assert "GPU available" in first
    again = CliRunner().invoke(app, ["--quiet", *_args(data, run)])  # a user error still shows
    assert again.exit_code == 2 and again.output.startswith("error: run directory") and "not empty" in again.output
    # --resume appends to the log; --overwrite replaces it (train.log is one of the run's own files)
    assert CliRunner().invoke(app, ["-q", *_args(data, run), "--resume"]).exit_code == 0
    resumed = (run / "train.log").read_text()
    assert resumed.startswith(first) and "fold 0 already complete" in resumed[len(first):]
    assert CliRunner().invoke(app, ["-q", *_args(data, run), "--overwrite"]).exit_code == 0
    replaced = (run / "train.log").read_text()
    assert "fold 0 already complete" not in replaced and "overwrite: removed the earlier run's" in replaced


def test_pretrain_progress_log_and_quiet(tmp_path: Path) -> None:
    a = write_tiny_dataset(tmp_path / "a", n_patients=8, per_patient=1, seed=1)
    args = ["pretrain", str(a), "--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--epochs", "2",
            "--batch-size", "4", "--patience", "2", "--augment", "none", "--num-threads", "1"]
    res = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "pre")])
    assert res.exit_code == 0, res.output
    assert "pretraining   50%  epoch 1/2  train_loss " in res.output and "mean val_loss" in res.output
    assert "pretraining  done  epoch 2/2" in res.output
    assert "pretrain epoch 1: mean val loss" in (tmp_path / "pre" / "pretrain.log").read_text()
    res = CliRunner().invoke(app, ["-q", *args, "-o", str(tmp_path / "pre2")])
    assert res.exit_code == 0 and res.output == f"{tmp_path / 'pre2'}\n"
