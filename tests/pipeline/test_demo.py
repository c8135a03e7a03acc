"""The demo runs end to end on tiny settings and every number in its report comes from its predictions.csv."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from nodescope.evaluation import read_predictions, roc_auc
from nodescope.pipeline import run_demo


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, monkeypatch):
    import webbrowser

    def no_browser(*args, **kwargs):
        raise AssertionError("the demo must not open anything by itself")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    torch.set_num_threads(1)
    lines: list[str] = []
    res = run_demo(tmp_path / "demo", n_patients=24, image_size=32, epochs=1, folds=2, batch_size=8, n_boot=50,
                   step=lines.append)
    # progress: every stage, then the model, fold and epoch of every fit, each with an estimate of the time left
    assert [ln[:3] for ln in lines if not ln.startswith(" ")] == ["1/4", "2/4", "2/4", "2/4", "3/4", "3/4", "4/4"]
    for model in ("bmode", "cdfi", "elastography", "fusion_intermediate"):
        for fold in (1, 2):
            assert any(ln.startswith(f"  {model}: fold {fold}/2, epoch 1/1 (ETA ") for ln in lines), (model, lines)
    assert all("ETA" in ln for ln in lines)
    assert res.cpu_seconds > 0
    # every patient of the development part has exactly one out-of-fold prediction per modality model
    pred = pd.read_csv(res.predictions, dtype={"patient_id": str})
    assert set(pred["model"]) == {"bmode", "cdfi", "elastography", "late_stacking", "fusion_intermediate"}
    assert (pred["synthetic"] == "yes").all()
    for model, d in pred[pred["split"] == "cv"].groupby("model"):
        assert d["patient_id"].is_unique, model
        assert set(d["patient_id"]) == set(pred.loc[(pred["model"] == "bmode") & (pred["split"] == "cv"),
                                                  "patient_id"]), model
    # patients never cross between the cv and test parts, and all modalities share one split
    parts = pred.groupby("patient_id")["split"].nunique()
    assert (parts == 1).all()
    # the metrics equal a recomputation from predictions.csv
    metrics = json.loads(res.metrics.read_text())
    assert metrics["synthetic"] is True
    preds = read_predictions(res.predictions, positive="metastatic")
    d = pred[(pred["model"] == "bmode") & (pred["split"] == "cv")]
    auc = roc_auc((d["y_true"] == "metastatic").to_numpy(int), d["p_metastatic"].to_numpy(float))
    row = res.auc[(res.auc["model"] == "bmode") & (res.auc["split"] == "cv") & (res.auc["metric"] == "auc")]
    assert np.isclose(row["estimate"].iloc[0], auc.estimate)
    assert preds.positive == "metastatic"
    html = res.report.read_text()
    assert "SYNTHETIC" in html.upper() and "http://" not in html and "https://" not in html
    assert (res.out_dir / "DEMO.txt").is_file()
    with pytest.raises(FileExistsError, match="not empty"):
        run_demo(tmp_path / "demo", n_patients=24)
    # the command's closing lines say where everything is
    from nodescope.cli.demo import where_to_look

    text = where_to_look(res)
    for path in (res.report, res.predictions, res.metrics, res.out_dir / "runs", res.out_dir / "data"):
        assert str(path) in text


def test_demo_refuses_to_delete_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="does not look like a nodescope demo"):
        run_demo(tmp_path, overwrite=True)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_demo_reads_predictions_verbatim(tmp_path):
    from nodescope.pipeline._demo import _load_predictions

    f = tmp_path / "p.csv"
    f.write_text("patient_id,lesion_id,group,y_true,p_metastatic,split,fold,model,run_id\n"
                 "NA,1,007,metastatic,0.9,cv,0,m,r\n007,2,008,not_metastatic,0.2,cv,1,m,r\n")
    d = _load_predictions(f)
    assert d["patient_id"].tolist() == ["NA", "007"] and d["lesion_id"].tolist() == ["1", "2"]
    assert d["group"].tolist() == ["007", "008"]
    assert d["p_metastatic"].dtype.kind == "f" and d["fold"].tolist() == [0, 1]
