"""The public boundary of ``evaluate_predictions``: options validated up front, errors of the NodescopeError family
that name the argument (never a command-line flag), and the one-way import structure of the evaluate modules."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import nodescope.evaluation as ev
from nodescope.cli import app
from nodescope.errors import MissingFileError, NodescopeError, StatisticsInputError
from nodescope.evaluation import EvaluationRun, evaluate_predictions, read_predictions, read_reads
from nodescope.evaluation._options import evaluation_options

runner = CliRunner()


def _predictions(models: tuple[str, ...] = ("cnn", "radiomics"), splits: tuple[str, ...] = ("cv", "test"),
                 classes: tuple[str, ...] = ("benign", "malignant")) -> ev.Predictions:
    rng = np.random.default_rng(0)
    rows = []
    for split in splits:
        for i in range(24):
            k = i % len(classes)
            for model in models:
                p = rng.dirichlet(np.ones(len(classes)))
                rows.append({"patient_id": f"{split}{i}", "y_true": classes[k],
                             **{f"p_{c}": p[j] for j, c in enumerate(classes)}, "split": split,
                             "fold": str(i % 3) if split == "cv" else "", "model": model, "run_id": "r"})
    return read_predictions(pd.DataFrame(rows), positive=classes[-1] if len(classes) == 2 else None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": "best"}, "threshold 'best' not understood"),
        ({"model": "gpt"}, "model 'gpt' is not in the predictions"),
        ({"by": ["hospital"]}, "by: column(s) ['hospital']"),
        ({"compare": ("cnn", "svm")}, "compare: model(s) ['svm']"),
        ({"compare": ("cnn", "cnn")}, "compare needs two different models"),
        ({"readers": True}, "name it with model="),
        ({"alpha": 1.5}, "alpha must be in (0, 1)"),
        ({"n_boot": 0}, "n_boot must be >= 1"),
    ],
)
def test_bad_options_raise_statistics_input_error(kwargs, message):
    with pytest.raises(StatisticsInputError) as info:
        evaluation_options(_predictions(), **kwargs)
    assert message in str(info.value)
    assert "--" not in str(info.value)  # the library does not know how it was called


def test_reads_need_a_binary_task():
    preds = _predictions(models=("net",), classes=("a", "b", "c"))
    with pytest.raises(StatisticsInputError, match="binary task"):
        evaluation_options(preds, readers=True)
    assert evaluation_options(_predictions(models=("cnn",)), readers=True).reader_model == "cnn"


def test_no_tuning_rows_is_a_family_error_without_flag_names():
    preds = _predictions(splits=("test",))
    with pytest.raises(StatisticsInputError, match="no cv/val rows") as info:
        evaluate_predictions(preds, n_boot=5)
    assert "--" not in str(info.value)
    run = evaluate_predictions(preds, threshold="0.5", n_boot=5)
    assert run.metrics["models"]["cnn"]["threshold"]["chosen_on"] == "given"


def test_evaluation_run_is_frozen():
    run = evaluate_predictions(_predictions(models=("cnn",)), n_boot=5)
    assert isinstance(run, EvaluationRun)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.metrics = {}  # type: ignore[misc]


def test_read_reads(tmp_path):
    with pytest.raises(MissingFileError, match=r"reads table not found: .*nope\.csv"):
        read_reads(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(StatisticsInputError, match=r"empty\.csv: the reads table file is empty"):
        read_reads(tmp_path / "empty.csv")
    (tmp_path / "dup.csv").write_text("patient_id,reader,call,call\nP1,R1,1,0\n")
    with pytest.raises(StatisticsInputError, match=r"dup.csv: the reads table header repeats column name\(s\) \['call'\]"):
        read_reads(tmp_path / "dup.csv")
    (tmp_path / "r.csv").write_text("patient_id,reader,call\nP1,R1,1\n")
    assert read_reads(tmp_path / "r.csv").to_dict(orient="records") == [
        {"patient_id": "P1", "reader": "R1", "call": "1"}]


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "p.csv"
    _predictions().frame.to_csv(path, index=False)
    return path


def test_cli_maps_the_family_to_exit_2(tmp_path):
    res = runner.invoke(app, ["evaluate", str(_write(tmp_path)), "-o", str(tmp_path / "o"), "--alpha", "2"])
    assert res.exit_code == 2
    assert res.output.startswith("error: --alpha: must be in (0, 1), got 2.0")


def test_cli_does_not_hide_errors_outside_the_family(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(ev, "evaluate_predictions", broken)
    res = runner.invoke(app, ["evaluate", str(_write(tmp_path)), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "internal error (ValueError: a bug, not a user error)" in res.output
    assert not issubclass(ValueError, NodescopeError)


def _imports(path: Path) -> set[str]:
    """Every module a file imports (also under TYPE_CHECKING or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_no_import_cycle_among_evaluation_modules():
    folder = Path(ev.__file__).parent
    mods = {f"nodescope.evaluation.{f.stem}": f for f in folder.glob("_*.py")}
    graph = {m: {t for t in _imports(f) if t in mods and t != m} for m, f in mods.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen)) for n in graph[start])

    cycles = sorted(m for m in mods if reaches(m, m, set()))
    assert cycles == []
    assert "nodescope.evaluation._report" not in graph["nodescope.evaluation._report_html"]
