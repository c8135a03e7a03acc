"""segment evaluate on a table of saved masks: values by hand, lesion-free images, report overlays, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nodescope.errors import DataError, MissingFileError
from nodescope.segment import evaluate_table


def _png(path: Path, arr: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)
    return str(path)


def _case(tmp: Path) -> Path:
    """Three images: a 10x10 lesion predicted as the same square shifted 5 columns (Dice 0.5, IoU 1/3); a perfect
    one (Dice 1); a lesion-free image given a false-positive blob."""
    rows = []
    img = np.full((30, 40), 50, np.uint8)
    truth = np.zeros((30, 40), np.uint8)
    truth[5:15, 5:15] = 255
    shifted = np.zeros_like(truth)
    shifted[5:15, 10:20] = 255
    empty = np.zeros_like(truth)
    blob = np.zeros_like(truth)
    blob[20:25, 30:35] = 255
    for i, (t, p, pid) in enumerate([(truth, shifted, "A"), (truth, truth, "B"), (empty, blob, "C")]):
        rows.append({"patient_id": pid, "group": pid, "image_path": _png(tmp / f"img{i}.png", img),
                     "mask": _png(tmp / f"ref{i}.png", t), "pred_mask": f"pred/{i}.png", "model": "m",
                     "split": "cv", "image": f"img{i}.png"})
        _png(tmp / "pred" / f"{i}.png", p)
    pd.DataFrame(rows).to_csv(tmp / "predictions.csv", index=False)
    return tmp / "predictions.csv"


def test_values_by_hand_and_report(tmp_path: Path) -> None:
    ev = evaluate_table(_case(tmp_path / "run"), tmp_path / "ev", n_boot=200)
    s = ev.scores.set_index("patient_id")
    assert s.loc["A", "dice"] == pytest.approx(0.5) and s.loc["A", "iou"] == pytest.approx(1 / 3)
    assert s.loc["A", "hd95"] == pytest.approx(5.0, abs=0.6)  # the edges moved 5 px
    assert s.loc["B", "dice"] == 1.0 and s.loc["C", "dice"] == 0.0 and bool(s.loc["C", "truth_empty"])
    summ = ev.summary.set_index("metric")
    assert summ.loc["dice", "estimate"] == pytest.approx(0.75)  # mean over the 2 lesion images
    assert summ.loc["detection_rate", "estimate"] == 1.0
    assert summ.loc["false_positive_rate", "estimate"] == 1.0 and summ.loc["false_positive_rate", "n"] == 1
    assert summ.loc["dice", "ci_low"] <= 0.75 <= summ.loc["dice", "ci_high"]
    html = (tmp_path / "ev" / "report.html").read_text()
    assert html.count("data:image/png;base64") == 4  # worst 2 + best 2 lesion images
    saved = pd.read_csv(tmp_path / "ev" / "scores.csv")
    assert saved["dice"].tolist() == ev.scores["dice"].tolist()


def test_refusals_name_the_file(tmp_path: Path) -> None:
    pred = _case(tmp_path / "run")
    (tmp_path / "run" / "pred" / "1.png").unlink()
    with pytest.raises(MissingFileError, match=r"pred/1\.png"):
        evaluate_table(pred, tmp_path / "ev")
    _png(tmp_path / "run" / "pred" / "1.png", np.zeros((10, 10)))
    with pytest.raises(DataError, match="expected the image's size 40x30"):
        evaluate_table(pred, tmp_path / "ev")
    pd.read_csv(pred).drop(columns=["pred_mask"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="'pred_mask' missing"):
        evaluate_table(tmp_path / "bad.csv", tmp_path / "ev2")
    assert not (tmp_path / "ev").exists() and not (tmp_path / "ev2").exists()
