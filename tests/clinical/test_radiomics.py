"""Deep-learning radiomics: features from a tiny bundle, the LASSO signature, and the signature feeding the nomogram."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_data import save_tiny_classifier, write_tiny_dataset
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.clinical._radiomics import dlr_signature, extract_features
from nodescope.errors import StatisticsInputError
from nodescope.evaluation import read_predictions
from nodescope.models import load_bundle


@pytest.fixture
def tiny_bundle(tmp_path):
    return save_tiny_classifier(tmp_path / "bundle")


def test_features_are_the_networks_and_pool_per_patient(tmp_path, tiny_bundle):
    manifest = write_tiny_dataset(tmp_path / "data", n_patients=4, per_patient=2)
    per_image = extract_features(tiny_bundle, [manifest])
    feats = [c for c in per_image.columns if c.startswith("f_")]
    assert len(per_image) == 8 and len(feats) == 512  # resnet18's pooled width
    # the same numbers as the network's own features for the first image
    b = load_bundle(tiny_bundle)
    from nodescope.data import read_image
    x, _ = b.spec.prepare(read_image(tmp_path / "data" / per_image.image[0].split("/")[-1]))
    with torch.no_grad():
        ref = b.model.eval().features((x[None].float() / 255 - torch.tensor(b.spec.mean)[:, None, None])
                                    / torch.tensor(b.spec.std)[:, None, None])
    np.testing.assert_allclose(per_image.loc[0, feats].to_numpy(float), ref.numpy()[0], rtol=1e-4, atol=1e-5)
    pooled = extract_features(tiny_bundle, [manifest], pool="mean")
    assert len(pooled) == 4 and pooled.n_images.tolist() == [2, 2, 2, 2]
    first = per_image[per_image.patient_id == pooled.patient_id[0]][feats].mean()
    np.testing.assert_allclose(pooled.loc[0, feats].to_numpy(float), first.to_numpy(), rtol=1e-6)
    # the command writes the same table
    out = tmp_path / "features.csv"
    res = CliRunner().invoke(app, ["features", str(tiny_bundle), str(manifest), "-o", str(out), "--pool", "mean"])
    assert res.exit_code == 0, res.output
    written = pd.read_csv(out)
    np.testing.assert_allclose(written[feats].to_numpy(), pooled[feats].to_numpy(float), rtol=1e-6)


def _features(n=90, f=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f))
    y = x[:, 0] + 0.8 * x[:, 3] + rng.normal(0, 0.8, n) > 0
    frame = pd.DataFrame(x, columns=[f"f_{j}" for j in range(f)])
    frame.insert(0, "y_true", np.where(y, "malignant", "benign"))
    frame.insert(0, "patient_id", [f"p{i:03d}" for i in range(n)])
    return frame


def test_lasso_selects_the_informative_features_out_of_fold():
    frame = _features()
    sig = dlr_signature(frame, folds=3, seed=1)
    assert {"f_0", "f_3"} <= set(sig.selected.feature)
    assert set(sig.selected.feature[:2]) == {"f_0", "f_3"}  # the largest coefficients
    preds = sig.predictions
    assert (preds.split == "cv").all() and set(preds.fold) == {0, 1, 2}
    assert sig.oof_auc > 0.8
    # a valid predictions table (the project's contract) whose probabilities are the signature's
    read = read_predictions(preds, positive="malignant")
    np.testing.assert_allclose(read.frame.p_malignant, 1 / (1 + np.exp(-preds.signature)))
    # seeded: same folds, same signature
    np.testing.assert_array_equal(dlr_signature(frame, folds=3, seed=1).predictions.signature, preds.signature)


def test_signature_holds_out_test_rows_and_refuses_too_few_events():
    frame = _features()
    frame["split"] = ["test" if i >= 75 else "" for i in range(len(frame))]
    sig = dlr_signature(frame, folds=3)
    assert (sig.predictions.split[75:] == "test").all() and (sig.predictions.fold[75:] == -1).all()
    few = _features(n=12)
    few["y_true"] = ["malignant"] * 2 + ["benign"] * 10
    with pytest.raises(StatisticsInputError, match="2 events"):
        dlr_signature(few, folds=3)


def test_cli_signature_feeds_the_nomogram(tmp_path):
    frame = _features(n=120, seed=4)
    feats = tmp_path / "features.csv"
    frame.to_csv(feats, index=False)
    rng = np.random.default_rng(2)
    clin = tmp_path / "clinical.csv"
    pd.DataFrame({"patient_id": frame.patient_id, "age": rng.normal(50, 10, len(frame)).round(1)}).to_csv(clin,
                                                                                                          index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["signature", str(feats), "-o", str(tmp_path / "dlr.csv"), "--folds", "3"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "dlr_selected.csv").is_file()
    res = runner.invoke(app, ["nomogram", str(tmp_path / "dlr.csv"), str(clin), "--terms", "age", "-o",
                              str(tmp_path / "nom"), "--n-boot", "5", "--positive", "malignant"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "nom" / "report.html").is_file()
    res = runner.invoke(app, ["features", str(tmp_path), str(feats), "-o", str(tmp_path / "x.txt")])
    assert res.exit_code == 2 and "unknown suffix" in res.output
