"""Temperature scaling: the fit recovers a known temperature, the head applies it everywhere, runs stay consistent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy.special import softmax
from tiny_data import write_tiny_dataset

from nodescope.errors import ConfigError
from nodescope.models import ClassifierNet, Temperature, load_bundle, predict_files
from nodescope.training import TrainConfig, fit_temperature, run_cv, set_temperature

FAST = {"recipe": "none", "backbone": "resnet18", "image_size": 32, "epochs": 1, "folds": 3, "batch_size": 8,
        "num_threads": 1, "accelerator": "cpu", "hidden": 16, "augment": "light"}


def _sample(t_true: float, k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits z, labels drawn from softmax(z / t_true): the network's softmax(z) is mis-calibrated by t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, size=(n, k))
    p_true = softmax(z / t_true, axis=1)
    y = np.array([rng.choice(k, p=row) for row in p_true])
    return softmax(z, axis=1), y


@pytest.mark.parametrize(("t_true", "k"), [(2.0, 2), (0.5, 2), (1.5, 3)])
def test_fit_recovers_known_temperature(t_true: float, k: int) -> None:
    p, y = _sample(t_true, k, 6000, seed=int(t_true * 10) + k)
    fit = fit_temperature(p, y)
    assert fit.temperature == pytest.approx(t_true, rel=0.08)
    assert fit.log_loss_after < fit.log_loss_before and fit.n == 6000 and not fit.at_bound


def test_fit_is_the_likelihood_maximum() -> None:
    # independent check: a brute-force grid of the mean negative log-likelihood, written out directly
    p, y = _sample(1.7, 2, 800, seed=5)
    grid = np.exp(np.linspace(np.log(0.2), np.log(8), 4001))
    logp = np.log(p)
    nll = [-np.mean(np.log(softmax(logp / t, axis=1)[np.arange(len(y)), y])) for t in grid]
    assert fit_temperature(p, y).temperature == pytest.approx(grid[int(np.argmin(nll))], rel=2e-3)


def test_fit_refuses_bad_input() -> None:
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    with pytest.raises(ConfigError, match="all of one class"):
        fit_temperature(p, np.array([1, 1]))
    with pytest.raises(ConfigError, match="finite"):
        fit_temperature(np.array([[np.nan, 1.0], [0.5, 0.5]]), np.array([0, 1]))
    with pytest.raises(ConfigError, match="expected probabilities"):
        fit_temperature(p, np.array([0, 1, 1]))


def test_perfectly_separated_rows_hit_the_bound() -> None:
    p = np.array([[0.9, 0.1], [0.2, 0.8]] * 20)
    fit = fit_temperature(p, np.array([0, 1] * 20))
    assert fit.at_bound and fit.temperature == pytest.approx(0.05, rel=1e-2)


def test_head_divides_logits_and_ranking_is_kept() -> None:
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 3, image_size=32, hidden=8).eval()
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        z = net(x)
        set_temperature(net, 2.5)
        set_temperature(net, 2.5)  # absolute, not cumulative
        z2 = net(x)
        # every path that calls the head (prediction, ONNX export, Grad-CAM wrappers) sees the division
        z3 = net.head(net.features(x))
    torch.testing.assert_close(z2, z / 2.5)
    torch.testing.assert_close(z3, z2)
    assert torch.equal(z.argmax(1), z2.argmax(1))
    assert isinstance(net.head[-1], Temperature) and float(net.head[-1].temperature) == 2.5
    with pytest.raises(ConfigError, match="positive finite"):
        set_temperature(net, 0.0)
    with pytest.raises(ConfigError, match="no temperature"):
        set_temperature(torch.nn.Linear(2, 2), 2.0)


def test_bundle_without_temperature_loads_with_one(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=9)
    run_cv(TrainConfig(manifest=m, out=tmp_path / "run", final_model="none", **FAST))
    b = tmp_path / "run" / "folds" / "fold_0" / "bundle"
    before = predict_files(load_bundle(b), [m])
    wf = b / "weights.safetensors"
    state = load_file(str(wf))
    keys = [k for k in state if k.endswith("temperature")]
    assert keys == ["head.4.temperature"]
    save_file({k: v for k, v in state.items() if k not in keys}, str(wf))  # as written before the key existed
    old = load_bundle(b)
    assert float(old.model.head[-1].temperature) == 1.0
    pd.testing.assert_frame_equal(predict_files(old, [m]), before)


def test_run_with_temperature_is_consistent(tmp_path: Path) -> None:
    m = write_tiny_dataset(tmp_path / "d", n_patients=12)
    ext = write_tiny_dataset(tmp_path / "e", n_patients=4, seed=3, patient_prefix="XP")  # other people
    cfg = dict(FAST, manifest=m, out=tmp_path / "run", external=[ext], calibrate="temperature", tta=True)
    res = run_cv(TrainConfig(**cfg))
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    cal = summary["calibration"]
    t = cal["temperature"]
    assert cal["method"] == "temperature" and cal["n"] == 24 and cal["log_loss_after"] <= cal["log_loss_before"]
    assert "temperature scaling (out-of-fold): T =" in res.run_summary.render()
    pred = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    cv = pred[pred["split"] == "cv"]
    raw = pd.concat([pd.read_csv(run / "folds" / f"fold_{k}" / "predictions.csv", dtype={"patient_id": str})
                     for k in range(3)])
    # the fit's input: the per-fold files keep the uncalibrated output; the run reports the calibrated fold bundles
    assert fit_temperature(raw[["p_benign", "p_malignant"]].to_numpy(),
                           (raw["y_true"] == "malignant").to_numpy(int)).temperature == pytest.approx(t)
    for k in range(3):
        b = load_bundle(run / "folds" / f"fold_{k}" / "bundle")
        assert float(b.model.head[-1].temperature) == pytest.approx(t)
        assert b.meta.training["calibration"]["temperature"] == pytest.approx(t)
        rows = cv[cv["fold"] == k].sort_values("image")
        again = predict_files(b, [m]).set_index("image").loc[rows["image"]]
        np.testing.assert_allclose(again["p_malignant"].to_numpy(), rows["p_malignant"].to_numpy(), atol=1e-6)
        # the threshold is chosen on the calibrated rows and stored in the fold bundles
        assert b.threshold == pytest.approx(summary["threshold"]["value"])
    final = load_bundle(run / "final" / "bundle")
    assert float(final.model.head[-1].temperature) == pytest.approx(t)
    assert final.meta.training["calibration"]["temperature"] == pytest.approx(t)
    again = predict_files(final, [ext], split="external").sort_values("image")
    np.testing.assert_allclose(again["p_malignant"].to_numpy(),
                               pred[pred["split"] == "external"].sort_values("image")["p_malignant"].to_numpy(),
                               atol=1e-6)
    assert "calibration" in (run / "final" / "bundle" / "MODEL_CARD.md").read_text()
    # a resume without calibration puts the fold bundles back to T = 1 and reports their raw output, also where the
    # fold models (loaded before the reset) score the external rows
    res2 = run_cv(TrainConfig(**dict(cfg, calibrate="none", final_model="none", resume=True)))
    assert "calibration" not in res2.summary
    for k in range(3):
        b = load_bundle(run / "folds" / f"fold_{k}" / "bundle")
        assert float(b.model.head[-1].temperature) == 1.0 and "calibration" not in b.meta.training
    cv2 = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str}).query("split == 'cv'")
    np.testing.assert_allclose(cv2.sort_values("image")["p_malignant"].to_numpy(),
                               raw.sort_values("image")["p_malignant"].to_numpy(), atol=1e-6)
    ext2 = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str}).query("split == 'external'")
    mean = np.mean([predict_files(load_bundle(run / "folds" / f"fold_{k}" / "bundle"), [ext], split="external")
                    .sort_values("image")["p_malignant"].to_numpy() for k in range(3)], axis=0)
    np.testing.assert_allclose(ext2.sort_values("image")["p_malignant"].to_numpy(), mean, atol=1e-6)


def test_fusion_refuses_calibration(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="single-input"):
        TrainConfig(manifest=tmp_path / "m.csv", out=tmp_path / "o", fusion="intermediate", modalities=["a", "b"],
                    calibrate="temperature")
