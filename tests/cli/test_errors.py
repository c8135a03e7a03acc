"""Every user error of the command line: exit code 2 and exactly one ``error:`` line, never a traceback; any other
exception is a bug and is not swallowed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import nodescope.data
from nodescope.cli import app
from nodescope.meta import example_paths, example_settings

runner = CliRunner()


def _user_error(args: list[str], *expected: str) -> str:
    """Run ``args``; assert exit 2, one ``error:`` line first on stderr, no traceback; return the flat stderr."""
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit), res.exception
    lines = res.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), res.stderr
    assert sum(line.startswith("error:") for line in lines) == 1, res.stderr
    assert "Traceback" not in res.output
    flat = " ".join(res.stderr.split())
    for text in expected:
        assert text in flat, flat
    return flat


def _manifest(tmp_path: Path, n: int = 8) -> Path:
    rows = []
    for i in range(n):
        img = tmp_path / "img" / f"{i}.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(img)
        rows.append({"patient_id": f"P{i // 2}", "image": f"img/{i}.png", "label": "ab"[i % 4 // 2]})
    path = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# ---- data -------------------------------------------------------------------------------------------------------

def test_data_missing_files(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.csv")
    _user_error(["data", "check", missing], "manifest not found")
    _user_error(["data", "split", missing], "manifest not found")
    _user_error(["data", "import", "folder", str(tmp_path / "nosrc"), str(tmp_path / "o")], "source folder not found")


def test_data_bad_manifest_is_one_summary_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("image,label\na.png,x\n")
    flat = _user_error(["data", "split", str(bad)], "missing required column(s)")
    assert flat.startswith(f"error: {bad}")


def test_data_split_bad_settings(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    _user_error(["data", "split", str(m), "--method", "random", "-o", str(tmp_path / "s.csv")],
                "unknown split method 'random'")
    _user_error(["data", "split", str(m), "--n-splits", "1", "-o", str(tmp_path / "s.csv")], "n_splits must be >= 2")
    _user_error(["data", "split", str(m), "--method", "holdout", "-o", str(tmp_path / "s.csv")],
                "needs test_size > 0")


def test_data_import_unknown_layout_and_synth_refusal(tmp_path: Path) -> None:
    _user_error(["data", "import", "zip", str(tmp_path), str(tmp_path / "o")], "unknown layout 'zip'")
    _user_error(["data", "synth", str(tmp_path / "synth"), "--n-patients", "2"], "--n-patients: must be >= 3, got 2")


# ---- train ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--lr", "inf", "--lr: must be a finite number > 0, got inf"),
        ("--lr", "0", "--lr: must be > 0, got 0.0"),
        ("--batch-size", "0", "--batch-size: must be >= 1, got 0"),
        ("--test-size", "-0.2", "--test-size: must be in [0, 1), got -0.2"),
        ("--val-fraction", "1", "--val-fraction: must be in [0, 1), got 1.0"),
        ("--image-size", "0", "--image-size: must be >= 1, got 0"),
        ("--seed", "-1", "--seed: must be >= 0, got -1"),
        ("--epochs", "0", "--epochs: must be >= 1, got 0"),
        ("--folds", "1", "--folds: must be >= 2, got 1"),
        ("--patience", "-1", "--patience: must be >= 0, got -1"),
        ("--num-threads", "0", "--num-threads: must be >= 1, got 0"),
        ("--step-size", "0", "--step-size: must be >= 1, got 0"),
        ("--channels", "2", "--channels: must be one of 1, 3, got 2"),
        ("--head", "deep", "--head: must be one of 'mlp', 'linear', got 'deep'"),
    ],
)
def test_train_bad_option_values(tmp_path: Path, option: str, value: str, message: str) -> None:
    _user_error(["train", str(tmp_path / "m.csv"), "-o", str(tmp_path / "run"), option, value], message)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_train_missing_inputs_and_bad_config(tmp_path: Path) -> None:
    _user_error(["train", str(tmp_path / "m.csv"), "-o", str(tmp_path / "run")], "manifest not found")
    _user_error(["train", "-o", str(tmp_path / "run")], "manifest: required, not given")
    _user_error(["train", "--config", str(tmp_path / "none.yaml")], "none.yaml not found")
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [1\n")
    _user_error(["train", "--config", str(broken)], "is not valid YAML (line 2")
    listed = tmp_path / "list.yaml"
    listed.write_text("- lr\n")
    _user_error(["train", "--config", str(listed)], "must hold a mapping, got list")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"manifest: {tmp_path / 'm.csv'}\nout: {tmp_path / 'run'}\nlr: -1\nepochz: 3\n")
    _user_error(["train", "--config", str(bad)], f"{bad}: lr: must be > 0, got -1",
                "epochz: not a training configuration key (did you mean 'epochs'?)")
    # a flag overrides the file: the file's bad lr is replaced, so only the unknown key remains
    flat = _user_error(["train", "--config", str(bad), "--lr", "0.1"], "epochz")
    assert "lr: must be" not in flat
    _user_error(["train", str(tmp_path / "m.csv"), "-o", str(tmp_path / "run"), "--fusion", "intermediate",
                 "--modalities", "bmode"], "needs modalities with at least 2 names")


def test_predict_missing_bundle(tmp_path: Path) -> None:
    _user_error(["predict", str(tmp_path / "nope"), str(tmp_path)], "not a directory")


# ---- meta -------------------------------------------------------------------------------------------------------

def test_meta_errors(tmp_path: Path) -> None:
    _user_error(["meta", str(tmp_path / "none.csv"), "-o", str(tmp_path / "o")], "studies file not found")
    bad = tmp_path / "bad.csv"
    bad.write_text("study,TP,FP,FN,TN\nA,5,1,x,9\nB,5,1,2,9\n")
    flat = _user_error(["meta", str(bad), "-o", str(tmp_path / "o")], "column 'FN'")
    assert flat.startswith(f"error: {bad}: 1 problem")
    _user_error(["meta", "--example", str(bad)], "either a studies CSV or --example")
    _user_error(["meta", str(example_paths()["studies"]), "-o", str(tmp_path / "o"), "--model", "bayes"],
                "--model 'bayes' is not valid")
    _user_error(["meta", str(example_paths()["studies"]), "-o", str(tmp_path / "o"), "--quadas",
                 str(tmp_path / "q.csv")], "QUADAS-2 file not found")
    rec = tmp_path / "rec.csv"
    rec.write_text("study,sensitivity,specificity,n_diseased,n_nondiseased\nA,1.5,0.8,10,10\n")
    _user_error(["meta", str(rec), "--reconstruct", "-o", str(tmp_path / "o")], "row 1, column 'sensitivity'")


def test_meta_example_settings_are_the_library_s() -> None:
    ex = example_settings()
    assert ex.studies == example_paths()["studies"] and ex.quadas == example_paths()["quadas"]
    assert ex.subgroups == ("modality", "validation") and ex.select == {"index_test": ["deep learning"]}
    assert ex.pretest == 0.4 and "SYNTHETIC" in ex.banner and "--" not in ex.banner


# ---- demo -------------------------------------------------------------------------------------------------------

def test_demo_refuses_an_occupied_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    _user_error(["demo", "-o", str(tmp_path)], "is not empty")
    assert (tmp_path / "keep.txt").read_text() == "mine"


# ---- bugs are not swallowed -------------------------------------------------------------------------------------

@pytest.mark.parametrize("exc", [RuntimeError("boom"), ValueError("a plain ValueError is a bug here")])
def test_other_exceptions_surface(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(nodescope.data, "make_splits", broken)
    res = runner.invoke(app, ["data", "split", str(_manifest(tmp_path)), "-o", str(tmp_path / "s.csv")])
    assert res.exit_code == 1  # a bug: exit 1 with one line naming the exception, not a user error's 2
    assert res.output.strip().splitlines() == [
        f"error: internal error ({type(exc).__name__}: {exc}); this is a bug in nodescope: rerun with --verbose for "
        "the traceback"]
