"""The summary ROC overlay draws, per split, every model's curve, AUC and operating point from the run's results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nodescope.evaluation import evaluate_predictions, read_predictions
from nodescope.evaluation._roc import roc_curve


def test_overlay_panels_hold_each_models_curve_auc_and_operating_point() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for split, n in (("cv", 40), ("test", 30)):
        y = rng.random(n) < 0.5
        for model, strength in (("a", 2.0), ("b", 0.5)):
            p = 1 / (1 + np.exp(-(strength * y + rng.normal(size=n) - 0.5 * strength)))
            rows += [{"patient_id": f"{split}{i}", "y_true": "pos" if y[i] else "neg", "p_neg": 1 - p[i],
                      "p_pos": p[i], "split": split, "fold": 0 if split == "cv" else -1, "model": model,
                      "run_id": "r"} for i in range(n)]
    frame = pd.DataFrame(rows)
    run = evaluate_predictions(read_predictions(frame, positive="pos"), n_boot=10)
    fig = run.figures["summary_roc"]
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["ROC, cv (threshold tuned here)", "ROC, test"]
    for ax, split in zip(axes, ("cv", "test"), strict=True):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        for k, model in enumerate(("a", "b")):
            sub = frame[(frame["model"] == model) & (frame["split"] == split)]
            ref = roc_curve((sub["y_true"] == "pos").to_numpy(int), sub["p_pos"].to_numpy(float))
            line = ax.get_lines()[k]
            # the step line is the curve of this model on this split
            np.testing.assert_allclose(line.get_xdata(), ref.fpr)
            np.testing.assert_allclose(line.get_ydata(), ref.tpr)
            doc = run.metrics["models"][model]["splits"][split]
            auc = doc["discrimination"]["auc"]
            assert labels[k] == f"{model}  AUC {auc['estimate']:.3f} ({auc['ci_low']:.3f}-{auc['ci_high']:.3f})"
            # its operating point, in the same colour
            op = doc["operating_point"]["metrics"]
            marker = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and ln.get_color() == line.get_color()]
            assert len(marker) == 1
            assert marker[0].get_xdata()[0] == 1 - op["specificity"]["estimate"]
            assert marker[0].get_ydata()[0] == op["sensitivity"]["estimate"]
    # a model keeps its colour across panels
    assert axes[0].get_lines()[1].get_color() == axes[1].get_lines()[1].get_color()
