"""Issue #10, interrupted training: SIGTERM says so and exits non-zero; SIGKILL leaves only complete folds behind;
``--resume`` then finishes the run with the same predictions as an uninterrupted one, every patient predicted once.

One tiny run (synthetic data, resnet18, 32 px, 1 epoch, 3 folds, 1 thread) per subprocess: an uninterrupted reference,
then for each signal a run killed at a seeded random point after its first fold is marked done, and its resume.
Stale-marker and coverage checks of the resume run in-process on the fold runner with a fake task (no training).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nodescope.data import make_synthetic_dataset

SRC = Path(__file__).resolve().parents[2] / "src"
TINY = ["--backbone", "resnet18", "--image-size", "32", "--epochs", "1", "--folds", "3", "--batch-size", "8",
        "--num-threads", "1", "--accelerator", "cpu", "--hidden", "16", "--augment", "light", "--final-model", "none",
        "--val-fraction", "0", "--patience", "0", "--positive", "metastatic"]


def _cmd(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nodescope", "train", str(manifest), "-o", str(out), *TINY, *extra]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", NODESCOPE_OFFLINE="1",
                COLUMNS="300")


def _train(manifest: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(manifest, out, *extra), capture_output=True, text=True, env=_env(), timeout=240)


def _train_and_kill(manifest: Path, out: Path, sig: int, delay: float) -> tuple[int, str]:
    """Start a run, wait until fold 0 is marked done, wait ``delay`` seconds more and send ``sig``."""
    proc = subprocess.Popen(_cmd(manifest, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env())
    try:
        deadline = time.monotonic() + 180
        while not (out / "folds" / "fold_0" / "DONE").exists():
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "fold 0 never finished"
            time.sleep(0.02)
        time.sleep(delay)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
        return proc.returncode, output
    finally:  # never leave a training process behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = make_synthetic_dataset(tmp_path_factory.mktemp("kill") / "ds", n_patients=12, image_size=32,
                                modalities=("bmode",), seed=1)
    man = pd.read_csv(ds.manifest_path, dtype=str, keep_default_na=False)
    man["label"] = np.where(man["label"] == "metastatic", "metastatic", "other")  # binary: a threshold is chosen
    man.to_csv(ds.manifest_path, index=False)
    return ds.manifest_path


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """predictions.csv of an uninterrupted run (the run folder is named ``run`` everywhere: run_id matches)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    r = _train(data, out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return (out / "predictions.csv").read_bytes()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_kill_then_resume_gives_the_uninterrupted_predictions(sig: int, data: Path, reference: bytes,
                                                              tmp_path: Path) -> None:
    delay = float(np.random.default_rng(10 + sig).uniform(0.0, 0.3))  # seeded random point inside fold 1
    out = tmp_path / "run"
    code, output = _train_and_kill(data, out, sig, delay)
    flat = " ".join(output.split())
    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM, flat[-3000:]
        assert "error: training was terminated (SIGTERM) during fold" in flat and "--resume" in flat, flat[-3000:]
    else:
        assert code == -signal.SIGKILL
    assert not (out / "predictions.csv").exists() and not (out / "summary.json").exists()  # no half-finished result
    assert not list(out.rglob(".*.tmp"))
    done = sorted(p.parent.name for p in out.glob("folds/fold_*/DONE"))
    assert "fold_0" in done and "fold_2" not in done
    for name in done:  # every marker is bound to this run and written after its outputs
        assert len(json.loads((out / "folds" / name / "DONE").read_text())["run_key"]) == 64
        assert (out / "folds" / name / "predictions.csv").is_file()
        assert (out / "folds" / name / "bundle" / "weights.safetensors").is_file()

    if sig == signal.SIGTERM:  # without --resume the half-finished run is not silently written over
        again = _train(data, out)
        assert again.returncode == 2 and "is not empty" in again.stderr

    resumed = _train(data, out, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    pred = pd.read_csv(out / "predictions.csv", dtype=str, keep_default_na=False)
    man = pd.read_csv(data, dtype=str, keep_default_na=False)
    cv = pred[pred["split"] == "cv"]
    assert sorted(cv["patient_id"]) == sorted(man["patient_id"])  # every patient exactly once, out of fold
    ref = pd.read_csv(io.BytesIO(reference), dtype=str, keep_default_na=False)
    probs = [c for c in ref.columns if c.startswith("p_")]
    # ids, labels, folds, split, model and run columns identical; the folds finished before the kill byte-identical
    pd.testing.assert_frame_equal(pred.drop(columns=probs), ref.drop(columns=probs))
    reused = (ref["fold"] == "0").to_numpy()
    pd.testing.assert_frame_equal(pred[reused], ref[reused])
    # a fold retrained in a new process matches to float32 round-off only: CPU kernels sum in an order that depends
    # on the process's history (measured: 5e-9), not on the seeds, which are the same
    np.testing.assert_allclose(pred[probs].astype(float), ref[probs].astype(float), rtol=0, atol=1e-6)


# --- the resume checks on the generic runner (no training) ------------------------------------------------------

class _FoldNameTask:
    """'Predicts' the rows it is given with the name of the folder it was fitted in (enough for resume checks)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.fits: list[str] = []

    def fit(self, train_idx: np.ndarray, val_idx: np.ndarray, workdir: Path, seed: int) -> tuple[str, dict[str, Any]]:
        self.fits.append(workdir.name)
        return workdir.name, {"seed": seed}

    def predict(self, fitted: str, idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        f = self.frame.iloc[idx]
        return pd.DataFrame({"patient_id": f["patient_id"].to_numpy(), "group": f["group"].to_numpy(),
                             "split": split, "fold": fold, "pred": fitted})

    def predict_ensemble(self, models: Any, idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        return self.predict("+".join(models), idx, split, fold)

    def save(self, fitted: str, path: Path, **kw: Any) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def load(self, path: Path) -> str:
        return path.parent.name

    def read_predictions(self, path: Path) -> pd.DataFrame:
        return pd.read_csv(path, dtype=str, keep_default_na=False).astype({"fold": int})

    def finalise(self, oof: pd.DataFrame, run_dir: Path, folds: Any) -> None:
        pass

    def summarise(self, predictions: pd.DataFrame, folds: Any, final: Any) -> Any:
        class S:
            def to_dict(self) -> dict[str, Any]:
                return {}

            def render(self) -> str:
                return ""
        return S()


def _frame() -> pd.DataFrame:
    ids = [f"P{i}" for i in range(9)]
    return pd.DataFrame({"patient_id": ids, "group": ids, "label": ["a", "b", "a"] * 3, "part": "cv",
                         "fold": [0, 1, 2] * 3})


def _plan(out: Path, **kw: Any) -> Any:
    from nodescope.training._folds import FoldPlan

    return FoldPlan(out, final_model="none", config_yaml="seed: 0\n", config={"seed": 0}, resume_keys=("seed",),
                    **kw)


def test_resume_retrains_a_fold_whose_marker_belongs_to_another_run(tmp_path: Path) -> None:
    from nodescope.training._folds import run_folds

    run_folds(_FoldNameTask(_frame()), _frame(), _plan(tmp_path / "run"))
    done = tmp_path / "run" / "folds" / "fold_1" / "DONE"
    info = json.loads(done.read_text())
    done.write_text(json.dumps({**info, "run_key": "0" * 64}))  # e.g. left by a run on another split
    task = _FoldNameTask(_frame())
    run_folds(task, _frame(), _plan(tmp_path / "run", resume=True))
    assert task.fits == ["fold_1"]  # the stale marker is not trusted; the others are reused
    assert json.loads(done.read_text())["run_key"] != "0" * 64


def test_resume_refuses_folds_that_do_not_cover_every_row_once(tmp_path: Path) -> None:
    from nodescope.errors import DataError
    from nodescope.training._folds import run_folds

    run_folds(_FoldNameTask(_frame()), _frame(), _plan(tmp_path / "run"))
    fp = tmp_path / "run" / "folds" / "fold_2" / "predictions.csv"
    rows = pd.read_csv(fp, dtype=str)
    pd.concat([rows, rows.iloc[:1]]).to_csv(fp, index=False)  # a patient predicted twice
    before = (tmp_path / "run" / "predictions.csv").read_bytes()
    with pytest.raises(DataError, match=r"do not cover every development row exactly once .* 1 duplicated"):
        run_folds(_FoldNameTask(_frame()), _frame(), _plan(tmp_path / "run", resume=True))
    assert (tmp_path / "run" / "predictions.csv").read_bytes() == before  # nothing reported from bad folds
