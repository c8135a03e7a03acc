"""The demo runs end to end on tiny settings and every number in its report comes from its predictions.csv."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

from nodescope._progress import Progress
from nodescope.evaluation import read_predictions, roc_auc
from nodescope.pipeline import run_demo


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, monkeypatch):
    import webbrowser

    def no_browser(*args, **kwargs):
        raise AssertionError("the demo must not open anything by itself")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    torch.set_num_threads(1)
    buf = io.StringIO()
    with Progress(Console(file=buf, width=200), mode="lines") as shown:
        res = run_demo(tmp_path / "demo", n_patients=24, image_size=32, epochs=1, folds=2, batch_size=8, n_boot=50,
                       intermediate_fusion=True, progress=shown)
    lines = buf.getvalue().splitlines()
    # progress: every stage with the training time left (unknown until a fit has finished) ...
    stages = [ln for ln in lines if ln[:3] in ("1/4", "2/4", "3/4", "4/4")]
    assert [ln[:3] for ln in stages] == ["1/4", "2/4", "2/4", "2/4", "3/4", "3/4", "4/4"]
    assert "training left: about ?" in stages[0] and "training left: about 0:" in stages[2]
    # ... and every fit's fold and epoch with an ETA (the training progress display)
    for model, stage in zip(("bmode", "cdfi", "elastography"), stages[1:4], strict=True):
        assert f"the {model} model" in stage, stages
    assert "intermediate fusion" in stages[5], stages
    assert sum("epoch 1/1" in ln and "ETA" in ln for ln in lines) >= 4 * 2, lines
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
