"""The generic fold runner with a fake task (no classifier, no torch): folds, refit, resume, DDP ranks; the
predictions-table builder."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nodescope.evaluation import make_predictions, read_predictions
from nodescope.training._folds import FoldPlan, FoldTask, run_folds


@dataclass(frozen=True)
class FakeSummary:
    n: int
    folds: tuple[int, ...]
    final: bool

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "folds": list(self.folds), "final": self.final}

    def render(self) -> str:
        return f"{self.n} rows"


class FoldNumberTask:
    """'Trains' by remembering its working folder and training rows; 'predicts' that folder's name (fold_<k>)."""

    def __init__(self) -> None:
        self.fits: list[tuple[str, int, list[int]]] = []
        self.finalised: tuple[int, list[int]] | None = None

    def fit(self, train_idx: np.ndarray, val_idx: np.ndarray, workdir: Path,
            seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        (workdir / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.fits.append((workdir.name, seed, sorted(train_idx.tolist())))
        return {"name": workdir.name}, {"n_train": len(train_idx), "n_val": len(val_idx), "seed": seed}

    def predict(self, fitted: dict[str, Any], idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        return pd.DataFrame({"row": idx, "split": split, "fold": fold, "pred": fitted["name"]})

    def predict_ensemble(self, models: Sequence[Any], idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        return pd.DataFrame({"row": idx, "split": split, "fold": fold, "pred": "+".join(m["name"] for m in models)})

    def save(self, fitted: dict[str, Any], path: Path, *, train_idx: np.ndarray, fold: int | None,
             info: dict[str, Any]) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "model.json").write_text(json.dumps({**fitted, "fold": fold, "info": info,
                                                     "finalised": self.finalised}))

    def load(self, path: Path) -> dict[str, Any]:
        return {"name": json.loads((path / "model.json").read_text())["name"]}

    def read_predictions(self, path: Path) -> pd.DataFrame:
        return pd.read_csv(path, dtype={"split": str, "pred": str})

    def finalise(self, oof: pd.DataFrame, run_dir: Path, folds: Sequence[int]) -> None:
        assert (oof["pred"] == "fold_" + oof["fold"].astype(str)).all()
        self.finalised = (len(oof), list(folds))

    def summarise(self, predictions: pd.DataFrame, folds: Mapping[int, dict[str, Any]],
                  final: dict[str, Any]) -> FakeSummary:
        return FakeSummary(len(predictions), tuple(folds), bool(final))


def _frame() -> pd.DataFrame:
    """12 one-row groups: 9 in cross-validation folds 0-2, 3 in the test part."""
    return pd.DataFrame({"patient_id": [f"P{i}" for i in range(12)], "group": [f"P{i}" for i in range(12)],
                         "label": ["a", "b"] * 6, "part": ["cv"] * 9 + ["test"] * 3,
                         "fold": [0, 1, 2] * 3 + [-1] * 3})


def _plan(out: Path, **kw: Any) -> FoldPlan:
    base: dict[str, Any] = {"seed": 7, "config_yaml": "seed: 7\n", "config": {"seed": 7}, "resume_keys": ("seed",)}
    return FoldPlan(out, **{**base, **kw})


def test_runner_needs_no_classifier_and_refits(tmp_path: Path) -> None:
    task: FoldTask[Any] = FoldNumberTask()
    run = run_folds(task, _frame(), _plan(tmp_path / "run"))
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv")
    cv = pred[pred["split"] == "cv"]
    assert sorted(cv["row"]) == list(range(9))
    assert (cv["pred"] == "fold_" + cv["fold"].astype(str)).all()  # each row predicted by its own fold's model
    test = pred[pred["split"] == "test"]
    assert sorted(test["row"]) == [9, 10, 11] and (test["pred"] == "final").all() and (test["fold"] == -1).all()
    fits = task.fits  # type: ignore[attr-defined]
    assert [(n, s) for n, s, _ in fits] == [("fold_0", 7), ("fold_1", 8), ("fold_2", 9), ("final", 7 + 9_999)]
    assert fits[1][2] == [0, 2, 3, 5, 6, 8]  # fold 1 trains on the other folds only
    assert fits[3][2] == list(range(9))  # the refit on all development rows, never the test rows
    final = json.loads((tmp_path / "run" / "final" / "bundle" / "model.json").read_text())
    assert final["fold"] is None and final["finalised"] == [9, [0, 1, 2]]  # saved after finalise
    assert final["info"]["refit_on"] == "all development (cv) data"
    assert json.loads((tmp_path / "run" / "folds" / "fold_2" / "DONE").read_text())["seed"] == 9
    assert not list((tmp_path / "run").rglob("checkpoints"))
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == {"n": 12, "folds": [0, 1, 2], "final": True}
    assert run.run_summary == FakeSummary(12, (0, 1, 2), True) and run.summary == {"n": 12, "folds": [0, 1, 2],
                                                                                  "final": True}
    assert list(pd.read_csv(tmp_path / "run" / "splits.csv").columns) == ["patient_id", "group", "label", "part",
                                                                         "fold"]
    assert (tmp_path / "run" / "config.yaml").read_text() == "seed: 7\n"


def test_runner_resumes_a_finished_fold(tmp_path: Path) -> None:
    run_folds(FoldNumberTask(), _frame(), _plan(tmp_path / "run", final_model="none", keep_checkpoints=True))
    first = (tmp_path / "run" / "predictions.csv").read_bytes()
    assert (tmp_path / "run" / "folds" / "fold_0" / "checkpoints").is_dir()
    (tmp_path / "run" / "folds" / "fold_1" / "DONE").unlink()  # fold 1 interrupted
    task = FoldNumberTask()
    run = run_folds(task, _frame(), _plan(tmp_path / "run", final_model="none", resume=True))
    assert [n for n, _, _ in task.fits] == ["fold_1"]  # finished folds reused, no refit
    assert (tmp_path / "run" / "predictions.csv").read_bytes() == first
    # the fold models together score the test rows: reused ones read back with load
    assert set(run.predictions.loc[run.predictions["split"] == "test", "pred"]) == {"fold_0+fold_1+fold_2"}
    with pytest.raises(ValueError, match=r"resume: .*config\.yaml differs .* in seed: 7 -> 8"):
        run_folds(FoldNumberTask(), _frame(), _plan(tmp_path / "run", resume=True, config={"seed": 8}))


def test_other_ddp_ranks_fit_everything_and_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    task = FoldNumberTask()
    run = run_folds(task, _frame(), _plan(tmp_path / "run"))
    assert [n for n, _, _ in task.fits] == ["fold_0", "fold_1", "fold_2", "final"]
    assert run.run_summary is None and run.summary == {} and run.predictions.empty
    assert not list((tmp_path / "run").rglob("*.csv")) and not (tmp_path / "run" / "config.yaml").exists()


def test_runner_needs_two_folds(tmp_path: Path) -> None:
    fr = _frame().assign(fold=0)
    with pytest.raises(ValueError, match="need >= 2 cross-validation folds"):
        run_folds(FoldNumberTask(), fr, _plan(tmp_path / "run"))


def test_make_predictions_contract_order() -> None:
    probs = np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float32)
    out = make_predictions(np.array(["007", "NA"], dtype=object), np.array(["malignant", "benign"], dtype=object),
                           probs, ("benign", "malignant"), split="cv", fold=2, model="m", run_id="r",
                           extra={"image": ["a.png", "b.png"], "fold": [9, 9], "site": pd.Series(["x", "y"],
                                                                                              index=[5, 6])})
    assert list(out.columns) == ["patient_id", "y_true", "p_benign", "p_malignant", "split", "fold", "model",
                                 "run_id", "image", "site"]
    assert out["fold"].tolist() == [2, 2] and out["site"].tolist() == ["x", "y"]  # contract value kept, no alignment
    assert out["p_malignant"].dtype == np.float32
    p = read_predictions(out)
    assert p.positive == "malignant" and p.frame["patient_id"].tolist() == ["007", "NA"]
    with pytest.raises(ValueError, match=r"probs: expected shape \(2, 3\)"):
        make_predictions(["a", "b"], ["x", "y"], probs, ("x", "y", "z"), split="cv", fold=0, model="m", run_id="r")
    with pytest.raises(ValueError, match="extra column 'image'"):
        make_predictions(["a", "b"], ["benign", "malignant"], probs, ("benign", "malignant"), split="test", fold=-1,
                         model="m", run_id="r", extra={"image": ["a.png"]})
