"""Cross-validation runner: OOF coverage, no patient across folds, bundles, resume, test sets, CLI, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_data import write_tiny_dataset
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.models import load_bundle, predict_files
from nodescope.training import TrainConfig, oversample_indices, resolve_positive, run_cv

# recipe none: these tests are about the fold machinery on tiny random images; the resume test below runs the default
FAST = {"recipe": "none", "backbone": "resnet18", "image_size": 32, "epochs": 1, "folds": 3, "batch_size": 8,
        "num_threads": 1, "accelerator": "cpu", "hidden": 16, "augment": "light"}


def test_cv_outputs(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=12)
    ext = write_tiny_dataset(tmp_path / "e", n_patients=4, seed=3, patient_prefix="XP")  # other people
    # external patients must be other people: rename them
    res = run_cv(TrainConfig(manifest=m, out=tmp_path / "run", external=[ext], **FAST))
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"patient_id": str})
    cv = pred[pred["split"] == "cv"]
    man = pd.read_csv(m)
    # every image predicted exactly once out of fold, every patient in exactly one fold
    assert sorted(cv["image"]) == sorted(man["image"])
    assert (cv.groupby("patient_id")["fold"].nunique() == 1).all()
    assert set(cv["fold"]) == {0, 1, 2}
    assert np.allclose(cv[["p_benign", "p_malignant"]].sum(axis=1), 1, atol=1e-5)
    assert set(pred["split"]) == {"cv", "external"} and (pred["split"] == "external").sum() == 8
    assert set(pred.columns) >= {"patient_id", "y_true", "p_benign", "p_malignant", "split", "fold", "model", "run_id"}
    # folds never share patients with their training data: splits.csv agrees with predictions
    sp = pd.read_csv(tmp_path / "run" / "splits.csv", dtype=str)
    assert (sp.groupby("group")["fold"].nunique() == 1).all()
    # bundles and threshold
    final = load_bundle(tmp_path / "run" / "final" / "bundle")
    thr = res.summary["threshold"]["value"]
    assert final.threshold == pytest.approx(thr) and final.positive_class == "malignant"
    y = (cv["y_true"] == "malignant").to_numpy()
    p = cv["p_malignant"].to_numpy()
    j = [((p >= t) & y).sum() / y.sum() + ((p < t) & ~y).sum() / (~y).sum() - 1 for t in p]  # brute-force Youden
    # the threshold is a float32 score; the CSV holds its shortest decimal form, so match it within float32 precision
    t_csv = p[np.isclose(p, thr, rtol=0, atol=1e-6)]
    assert len(t_csv) and ((p >= t_csv[0]) & y).sum() / y.sum() + ((p < t_csv[0]) & ~y).sum() / (~y).sum() - 1 == max(j)
    for k in range(3):
        assert (tmp_path / "run" / "folds" / f"fold_{k}" / "bundle" / "weights.safetensors").is_file()
        # finished folds keep their bundle, not the ~3x larger Lightning checkpoints
        assert not (tmp_path / "run" / "folds" / f"fold_{k}" / "checkpoints").exists()
        # fold bundles carry the pooled out-of-fold threshold too (predict with them must not fall back to argmax)
        assert load_bundle(tmp_path / "run" / "folds" / f"fold_{k}" / "bundle").threshold == pytest.approx(thr)
        assert list((tmp_path / "run" / "folds" / f"fold_{k}" / "logs").rglob("metrics.csv"))
    # the final bundle reproduces the run's external predictions from files
    again = predict_files(final, [ext], split="external")
    ext_rows = pred[pred["split"] == "external"].sort_values("image")
    np.testing.assert_allclose(again.sort_values("image")["p_malignant"].to_numpy(),
                               ext_rows["p_malignant"].to_numpy(), atol=1e-6)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["splits"]["cv"]["n"] == 24
    assert summary["splits"]["cv"]["threshold_applied"].startswith("in-sample")
    assert summary["splits"]["external"]["threshold_applied"] == "chosen on cv rows, applied unchanged"
    assert (tmp_path / "run" / "config.yaml").read_text().count("backbone: resnet18") == 1


def test_resume_continues_from_checkpoint(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=9)
    # a crashed fold still has its checkpoints; finished ones drop them unless asked to keep them
    cfg = dict(FAST, manifest=m, out=tmp_path / "run", final_model="none", patience=0, keep_checkpoints=True)
    run_cv(TrainConfig(**cfg))
    fold1 = tmp_path / "run" / "folds" / "fold_1"
    before0 = pd.read_csv(tmp_path / "run" / "folds" / "fold_0" / "predictions.csv")
    (fold1 / "DONE").unlink()  # as if fold 1 had crashed after its last checkpoint
    res = run_cv(TrainConfig(**dict(cfg, epochs=2, resume=True)))
    assert res.summary["folds"]["1"]["resumed_from"] == "last.ckpt"
    assert res.summary["folds"]["1"]["epochs_run"] == 2
    assert res.summary["folds"]["0"]["epochs_run"] == 1  # complete fold reused, not retrained
    after0 = pd.read_csv(tmp_path / "run" / "folds" / "fold_0" / "predictions.csv")
    pd.testing.assert_frame_equal(before0, after0)
    ck = torch.load(fold1 / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ck["epoch"] == 2  # epochs completed: one before the interruption, one after


def test_fusion_and_class_weights(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=9, per_patient=1, modalities=("bmode", "cdfi"))
    man = pd.read_csv(m)
    man = man.drop(index=man.index[(man["patient_id"] == "P01") & (man["modality"] == "cdfi")])  # a missing one
    man.to_csv(m, index=False)
    res = run_cv(TrainConfig(**dict(FAST, manifest=m, out=tmp_path / "run", fusion="intermediate",
                                    modalities=["bmode", "cdfi"], imbalance="class_weights", final_model="none")))
    cv = res.predictions
    assert len(cv) == 9 and cv["patient_id"].is_unique
    assert cv.set_index("patient_id").loc["P01", "modality"] == "bmode"
    b = load_bundle(tmp_path / "run" / "folds" / "fold_0" / "bundle")
    assert b.meta.kind == "fusion" and b.meta.architecture["modalities"] == ["bmode", "cdfi"]


def test_helpers() -> None:
    assert resolve_positive(("benign", "malignant"), None) == "malignant"
    with pytest.raises(ValueError, match="cannot infer the positive class"):
        resolve_positive(("a", "b"), None)
    with pytest.raises(ValueError, match="not a class"):
        resolve_positive(("a", "b"), "c")
    idx = np.arange(10)
    lab = np.array([0] * 8 + [1] * 2)
    o = oversample_indices(idx, lab, 0)
    assert np.bincount(lab[o]).tolist() == [8, 8] and set(o[:10]) == set(idx)


def test_cli_train_predict_onnx(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=9)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("backbone: resnet18\nimage_size: 32\nepochs: 1\nfolds: 3\nbatch_size: 8\nnum_threads: 1\n"
                   "accelerator: cpu\nhidden: 16\n")
    r = CliRunner().invoke(app, ["train", str(m), "-o", str(tmp_path / "run"), "--config", str(cfg),
                                 "--final-model", "none", "--roi", "none", "--positive", "malignant",
                                 "--tensorboard", "--hidden", "8", "--dropout", "0.1"])
    assert r.exit_code == 0, r.output
    assert "AUC (95% CI)" in r.output and "per-fold AUC (cv)" in r.output  # the end-of-run summary
    resolved = (tmp_path / "run" / "config.yaml").read_text()
    assert "hidden: 8" in resolved and "dropout: 0.1" in resolved and "tensorboard: true" in resolved
    # TensorBoard event files beside the CSV logs of each fold
    assert list((tmp_path / "run" / "folds" / "fold_0" / "logs" / "tensorboard").rglob("events.out.tfevents.*"))
    bundle = tmp_path / "run" / "folds" / "fold_0" / "bundle"
    out_t, out_o = tmp_path / "pt.csv", tmp_path / "po.csv"
    r = CliRunner().invoke(app, ["predict", str(bundle), str(tmp_path / "d"), "-o", str(out_t), "--tta"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["predict", str(bundle), str(tmp_path / "d"), "-o", str(out_o), "--tta",
                                 "--engine", "onnx"])
    assert r.exit_code == 0, r.output
    a, b = pd.read_csv(out_t), pd.read_csv(out_o)
    assert len(a) == 18 and (a["image"] == b["image"]).all()
    np.testing.assert_allclose(a["p_malignant"], b["p_malignant"], atol=1e-4)
    r = CliRunner().invoke(app, ["train", str(m), "-o", str(tmp_path / "bad"), "--backbone", "resnet19"])
    assert r.exit_code == 2 and "resnet18" in r.output
    r = CliRunner().invoke(app, ["predict", str(tmp_path / "nope"), str(m)])
    assert r.exit_code == 2 and "not a directory" in r.output


@pytest.mark.slow
@pytest.mark.parametrize("final_model", ["none", "refit"])
def test_ddp_two_cpu_processes(tmp_path: Path, final_model: str) -> None:
    """``--devices 2 --strategy ddp`` on CPU (gloo): both ranks train (the refit too), rank 0 writes the outputs."""
    m = write_tiny_dataset(tmp_path / "d", n_patients=8)
    src = Path(__file__).resolve().parents[2] / "src"
    env = dict(os.environ, PYTHONPATH=str(src), PL_DISABLE_FORK="1")
    cmd = [sys.executable, "-m", "nodescope", "train", str(m), "-o", str(tmp_path / "run"), "--backbone", "resnet18",
           "--image-size", "32", "--epochs", "1", "--folds", "2", "--batch-size", "4", "--accelerator", "cpu",
           "--devices", "2", "--strategy", "ddp", "--final-model", final_model, "--num-threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert len(pred) == 16 and pred["image"].is_unique
    done = json.loads((tmp_path / "run" / "folds" / "fold_0" / "DONE").read_text())
    assert done["global_rank"] == 0
    # Lightning's DDP banner is kept off the console, in the run's log
    assert "distributed_backend=gloo" in (tmp_path / "run" / "train.log").read_text()
    assert "GPU available" not in r.stdout + r.stderr
    if final_model == "refit":
        assert load_bundle(tmp_path / "run" / "final" / "bundle").threshold is not None


def test_resume_reads_ids_verbatim(tmp_path: Path) -> None:
    """Reused folds keep ids that pandas would mangle: "NA" (missing), "007" (7), lesion "1" (1.0 beside a blank)."""
    torch.set_num_threads(1)
    m = write_tiny_dataset(tmp_path / "d", n_patients=6, per_patient=1)
    man = pd.read_csv(m, dtype=str)
    man["patient_id"] = ["NA", "007", "P2", "P3", "010", "P5"]
    man["lesion_id"] = ["1", "1", "1", "", "2", "1"]
    man.to_csv(m, index=False)
    # the default recipe: its temperature is refitted on resume from the folds' saved predictions, to the same value
    cfg = dict(FAST, manifest=m, out=tmp_path / "run", final_model="none", folds=2, val_fraction=0.0,
               recipe="transfer")
    first = pd.read_csv(run_cv(TrainConfig(**cfg)).run_dir / "predictions.csv", dtype=str, keep_default_na=False)
    res = run_cv(TrainConfig(**dict(cfg, resume=True)))  # every fold read back from its predictions.csv
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype=str, keep_default_na=False)
    assert sorted(pred["patient_id"]) == sorted(man["patient_id"])
    assert sorted(pred["group"]) == sorted(man["patient_id"])
    assert sorted(pred["lesion_id"]) == sorted(man["lesion_id"])
    pd.testing.assert_frame_equal(pred, first)
    assert sorted(res.predictions["patient_id"]) == sorted(man["patient_id"])


def test_resume_refuses_another_split_or_config(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    m = write_tiny_dataset(tmp_path / "d", n_patients=6, per_patient=1)
    cfg = dict(FAST, manifest=m, out=tmp_path / "run", final_model="none", folds=2, val_fraction=0.0)
    run_cv(TrainConfig(**cfg))
    saved = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(ValueError, match=r"resume: .*config\.yaml differs .* in seed: 0 -> 1"):
        run_cv(TrainConfig(**dict(cfg, seed=1, resume=True)))
    assert (tmp_path / "run" / "config.yaml").read_text() == saved  # not overwritten
    # input-spec steps decide the pixels the finished folds were trained on: a change is refused, not mixed in
    with pytest.raises(ValueError, match=r"differs .* in intensity: 'none' -> 'percentile'"):
        run_cv(TrainConfig(**dict(cfg, intensity="percentile", resume=True)))
    man = pd.read_csv(m, dtype=str)
    man.loc[0, "label"] = "malignant" if man.loc[0, "label"] == "benign" else "benign"  # the data changed
    man.to_csv(m, index=False)
    with pytest.raises(ValueError, match=r"split differs from .*splits\.csv.*column 'label'"):
        run_cv(TrainConfig(**dict(cfg, resume=True)))
