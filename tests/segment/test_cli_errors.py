"""segment commands: bad input is one `error:` line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from nodescope.cli import app


def _run(args: list[str]) -> tuple[int, str]:
    r = CliRunner().invoke(app, args)
    return r.exit_code, r.output


def test_train_missing_manifest_leaves_no_run_folder(tmp_path: Path) -> None:
    code, out = _run(["segment", "train", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "run")])
    assert code == 2 and out.startswith("error:") and "nope.csv" in out
    assert not (tmp_path / "run").exists()


def test_train_bad_option_named(tmp_path: Path) -> None:
    code, out = _run(["segment", "train", str(tmp_path / "m.csv"), "-o", str(tmp_path / "run"),
                      "--architecture", "vnet"])
    assert code == 2 and "--architecture" in out and "unet" in out


def test_train_manifest_without_masks_named(tmp_path: Path) -> None:
    from tiny_data import write_tiny_dataset

    man = write_tiny_dataset(tmp_path / "d", n_patients=4, per_patient=1, masks=False)
    code, out = _run(["segment", "train", str(man), "-o", str(tmp_path / "run"), "--architecture", "monai_unet"])
    assert code == 2 and "no row has a 'mask'" in out and str(man) in out
    assert not (tmp_path / "run").exists()


def test_predict_and_evaluate_refuse_missing_bundles(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("patient_id,image,label\n")
    code, out = _run(["segment", "predict", str(tmp_path / "b"), str(tmp_path / "m.csv"), "-o", str(tmp_path / "o")])
    assert code == 2 and "not a directory" in out and not (tmp_path / "o").exists()
    code, out = _run(["segment", "predict", str(tmp_path / "m.csv"), "-o", str(tmp_path / "o")])
    assert code == 2 and "BUNDLE" in out
    code, out = _run(["segment", "evaluate", str(tmp_path / "b"), str(tmp_path / "m.csv"), "-o", str(tmp_path / "e"),
                      "--fusion", "max"])
    assert code == 2 and "--fusion" in out and not (tmp_path / "e").exists()
