"""Multitask pretraining -> backbone bundle -> train --weights, with the overlap guard; late fusion on OOF rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from tiny_data import write_tiny_dataset

from nodescope.evaluation import read_predictions
from nodescope.models import build_backbone, late_fusion, load_weights
from nodescope.training import PretrainTask, TrainConfig, run_cv, run_pretrain


def test_pretrain_bundle_and_overlap_guard(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    a = write_tiny_dataset(tmp_path / "a", n_patients=10, per_patient=1, seed=1)
    b = write_tiny_dataset(tmp_path / "b", n_patients=10, per_patient=1, seed=2)
    exp = write_tiny_dataset(tmp_path / "exp", n_patients=6, per_patient=1, seed=9)
    part_of_b = tmp_path / "b" / "some.csv"
    pd.read_csv(b).iloc[:4].to_csv(part_of_b, index=False)
    res = run_pretrain([PretrainTask(a), PretrainTask(b)], tmp_path / "pre", backbone="resnet18", weights="none",
                       image_size=32, epochs=2, batch_size=4, patience=1, augment="none", exclude=[part_of_b])
    assert res.excluded_images == 4  # the excluded experiment's images are left out of pretraining
    assert len(res.history) >= 1 and np.isfinite(res.best_val_loss)
    assert (tmp_path / "pre" / "pretrain_images.json").is_file()
    bb = build_backbone("resnet18", image_size=32)
    load_weights(bb, "resnet18", tmp_path / "pre")
    saved = load_file(str(tmp_path / "pre" / "weights.safetensors"))
    loaded = bb.state_dict()
    assert {f"backbone.{k}" for k in loaded} == set(saved)  # every tensor of the pretrained backbone arrives ...
    for k, v in loaded.items():
        torch.testing.assert_close(v, saved[f"backbone.{k}"], rtol=0, atol=0)  # ... unchanged
    fresh = build_backbone("resnet18", image_size=32).state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in loaded.items() if v.is_floating_point())
    common = {"backbone": "resnet18", "image_size": 32, "epochs": 1, "folds": 2, "batch_size": 4, "num_threads": 1,
              "accelerator": "cpu", "final_model": "none"}
    # experiment data disjoint from pretraining data: accepted
    run_cv(TrainConfig(manifest=exp, out=tmp_path / "ok", weights=str(tmp_path / "pre"), **common))
    # experiment = pretraining task a: refused, then allowed with a warning
    with pytest.raises(ValueError, match="used for pretraining"):
        run_cv(TrainConfig(manifest=a, out=tmp_path / "bad", weights=str(tmp_path / "pre"), **common))
    r = run_cv(TrainConfig(manifest=a, out=tmp_path / "warn", weights=str(tmp_path / "pre"),
                           allow_pretrain_overlap=True, **common))
    assert "10 image(s)" in r.summary["pretrain_overlap"]


def _pred(mod_noise: float, rng: np.random.Generator, n: int = 40) -> pd.DataFrame:
    y = np.array(["malignant" if i % 2 else "benign" for i in range(n)])
    s = (y == "malignant") * 1.0 + rng.normal(0, mod_noise, n)
    p = 1 / (1 + np.exp(-3 * (s - 0.5)))
    return pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "lesion_id": "L0", "y_true": y,
                         "p_malignant": p, "p_benign": 1 - p, "split": ["cv"] * 30 + ["test"] * (n - 30),
                         "fold": [i % 3 for i in range(30)] + [-1] * (n - 30)})


@pytest.mark.parametrize("method", ["mean", "weighted", "stacking"])
def test_late_fusion(method: str, rng: np.random.Generator) -> None:
    good, bad = _pred(0.2, rng), _pred(2.0, rng)
    bad = bad.drop(index=[0, 35])  # a unit lacking the second modality in cv and in test
    out = late_fusion({"bmode": good, "cdfi": bad}, positive="malignant", method=method)
    assert len(out) == 40 and set(out["split"]) == {"cv", "test"}
    assert np.allclose(out["p_malignant"] + out["p_benign"], 1)
    # the fused table honours the predictions contract, alone and stacked under its inputs
    read_predictions(out.assign(model=f"late_{method}"), positive="malignant")
    read_predictions(pd.concat([good.assign(model="bmode"), out], ignore_index=True), positive="malignant")
    if method == "mean":
        row = out[out["patient_id"] == "P1"].iloc[0]
        assert row["p_malignant"] == pytest.approx((row["bmode:p_malignant"] + row["cdfi:p_malignant"]) / 2)
        row0 = out[out["patient_id"] == "P0"].iloc[0]
        assert row0["p_malignant"] == pytest.approx(row0["bmode:p_malignant"])
    if method == "weighted":
        w = dict(kv.split("=") for kv in out["fusion_weights"].iloc[0].split(";"))
        assert float(w["bmode"]) > float(w["cdfi"])  # the informative modality gets the weight
    if method == "stacking":
        assert out.loc[out["patient_id"].isin(["P0", "P35"]), "fusion_fallback"].all()
        assert not out.loc[~out["patient_id"].isin(["P0", "P35"]), "fusion_fallback"].any()
    with pytest.raises(ValueError, match="method"):
        late_fusion({"a": good, "b": bad}, positive="malignant", method="max")  # type: ignore[arg-type]


def test_late_fusion_input_edge_cases(rng: np.random.Generator) -> None:
    a, b = _pred(0.2, rng), _pred(1.0, rng)
    # no fold column at all (e.g. a validation-only export): accepted, fold -1
    out = late_fusion({"bmode": a[a["split"] == "test"].drop(columns="fold"),
                       "cdfi": b[b["split"] == "test"].drop(columns="fold")}, positive="malignant", method="mean")
    assert out["fold"].tolist() == [-1] * 10
    # a unit missing in the first modality keeps an integer fold
    out = late_fusion({"bmode": a.drop(index=[1]), "cdfi": b}, positive="malignant", method="mean")
    assert out["fold"].dtype.kind == "i" and out.set_index("patient_id").loc["P1", "fold"] == 1
    # the modalities disagree on a unit's truth: refused, naming the unit
    b2 = b.copy()
    b2.loc[b2["patient_id"] == "P3", "y_true"] = "benign"
    with pytest.raises(ValueError, match=r"'patient_id': 'P3'.*'malignant'.*'benign' in 'cdfi'"):
        late_fusion({"bmode": a, "cdfi": b2}, positive="malignant", method="mean")


def test_cross_fitted_fusion_leaves_the_fold_out(rng: np.random.Generator) -> None:
    """The stacker/weights applied to fold-k rows are fitted on the other folds' cv rows only."""
    from sklearn.linear_model import LogisticRegression

    from nodescope.models._fusion import _apply_weights, _fit_weights, _logit

    a, b = _pred(0.5, rng), _pred(1.0, rng)
    cols = ["bmode:p_malignant", "cdfi:p_malignant"]
    for method in ("stacking", "weighted"):
        out = late_fusion({"bmode": a, "cdfi": b}, positive="malignant", method=method)
        cv = out[out["split"] == "cv"]
        train, held = cv[cv["fold"] != 1], cv[cv["fold"] == 1]
        P, y = train[cols].to_numpy(float), (train["y_true"] == "malignant").to_numpy(float)
        if method == "stacking":
            ref = LogisticRegression(C=1.0).fit(_logit(P), y).predict_proba(_logit(held[cols].to_numpy(float)))[:, 1]
            leaky = LogisticRegression(C=1.0).fit(_logit(cv[cols].to_numpy(float)),
                                                  (cv["y_true"] == "malignant").to_numpy(float))
            assert not np.allclose(leaky.predict_proba(_logit(held[cols].to_numpy(float)))[:, 1], ref)
        else:
            ref = _apply_weights(held[cols].to_numpy(float), _fit_weights(P, y))
        np.testing.assert_allclose(held["p_malignant"].to_numpy(), ref, rtol=1e-6, atol=1e-8)
