"""Issue #10, data loss: no command writes over one of its inputs, or over an existing output unless told to.

Every case builds a folder, runs one command that must be refused and checks: exit code 2, one ``error:`` line that
names the culprit, and *nothing* in the folder changed (SHA-256 of every file before and after, no file added: no
partial or temporary output). A few positive controls check that ``--overwrite`` does what it says and no more.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_data import write_tiny_dataset
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.data import make_synthetic_dataset
from nodescope.models import BundleMeta, ClassifierNet, InputSpec, save_bundle
from nodescope.training import TrainConfig

runner = CliRunner()

Case = Callable[[Path], tuple[list[str], str]]


def _tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (links as their target text), keyed by relative path."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = "link:" + str(p.readlink())
        elif p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _leftovers(root: Path) -> list[Path]:
    """Temporary files or folders of an atomic write (``.<name>.<random>.tmp``)."""
    return [p for p in root.rglob(".*.tmp")]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 2, image_size=32, hidden=16, dropout=0.1)
    meta = BundleMeta(
        kind="classifier", name="t", run_id="run",
        architecture={"backbone": "resnet18", "num_classes": 2, "in_chans": 3, "image_size": 32, "head": "mlp",
                      "hidden": 16, "dropout": 0.1},
        classes=("benign", "malignant"), positive_class="malignant",
        input=InputSpec(image_size=32, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3),
        group_col="patient_id", training={"n_samples": 3}, weights_init={"source": "none"})
    return save_bundle(tmp_path_factory.mktemp("bundle") / "b", net, meta)


def _data(tmp: Path) -> Path:
    return write_tiny_dataset(tmp / "data", n_patients=6, per_patient=1)


def _run_dir(tmp: Path, manifest: Path, **extra: object) -> Path:
    """A folder that looks like a finished run (config.yaml with the run's settings, splits.csv, folds/)."""
    run = tmp / "run"
    (run / "folds" / "fold_0").mkdir(parents=True)
    cfg = TrainConfig(manifest=manifest, out=run, backbone="resnet18", **extra)  # type: ignore[arg-type]
    (run / "config.yaml").write_text(cfg.to_yaml())
    (run / "splits.csv").write_text("patient_id,group,image,label,part,fold\n")
    (run / "folds" / "fold_0" / "DONE").write_text("{}")
    return run


def _predictions(tmp: Path) -> Path:
    rows = [{"patient_id": f"P{i}", "y_true": "malignant" if i % 2 else "benign", "p_benign": 1 - i / 10,
             "p_malignant": i / 10, "split": "cv", "fold": i % 2, "model": "m", "run_id": "r"} for i in range(10)]
    path = tmp / "res" / "predictions.csv"
    path.parent.mkdir()
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _occupied(folder: Path, name: str, text: str) -> Path:
    """``folder`` (created) holding one file ``name``: an earlier output, or a file of the user's."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


# --- the cases: each returns the command line and a text the error line must contain (the culprit) ---------------

def train_into_non_empty_folder(tmp: Path) -> tuple[list[str], str]:
    out = _occupied(tmp / "out", "notes.txt", "mine")
    return ["train", str(_data(tmp)), "-o", str(out), "--backbone", "resnet18"], "out is not empty (notes.txt)"


def train_overwrite_of_a_folder_that_is_no_run(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return (["train", str(m), "-o", str(tmp / "data"), "--overwrite", "--backbone", "resnet18"],
            "holds no nodescope run")


def train_overwrite_would_delete_an_input(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    run = _run_dir(tmp, m)
    return (["train", str(m), "-o", str(run), "--overwrite", "--splits-file", str(run / "splits.csv")],
            "an input of this run")


def train_resume_and_overwrite(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    run = _run_dir(tmp, m)
    return ["train", str(m), "-o", str(run), "--overwrite", "--resume"], "resume and overwrite exclude each other"


def train_out_is_a_file(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return ["train", str(m), "-o", str(m)], "manifest.csv is a file"


def predict_onto_its_manifest(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return ["predict", str(tmp / "b"), str(m), "-o", str(m)], "is the input"


def predict_onto_its_manifest_with_overwrite(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return ["predict", str(tmp / "b"), str(m), "-o", str(m), "--overwrite"], "is the input"


def predict_onto_its_image(tmp: Path) -> tuple[list[str], str]:
    img = _data(tmp).parent / "p00_0.png"
    return ["predict", str(tmp / "b"), str(img), "-o", str(img), "--overwrite"], "p00_0.png is the input"


def predict_onto_a_link_to_its_manifest(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    (tmp / "link.csv").symlink_to(m)
    return ["predict", str(tmp / "b"), str(m), "-o", str(tmp / "link.csv"), "--overwrite"], "is the input"


def predict_default_output_exists(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    (tmp / "predictions.csv").write_text("an earlier result\n")
    return ["predict", str(tmp / "b"), str(m)], "predictions.csv already exists"


def predict_output_is_a_folder(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return ["predict", str(tmp / "b"), str(m), "-o", str(tmp / "data"), "--overwrite"], "data is a folder"


def split_onto_its_manifest(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return ["data", "split", str(m), "-o", str(m), "--n-splits", "2", "--overwrite"], "is the input"


def split_manifest_out_is_the_manifest(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return ["data", "split", str(m), "-o", str(tmp / "s.csv"), "--n-splits", "2", "--manifest-out", str(m)], \
        "is the input"


def split_two_outputs_one_file(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return ["data", "split", str(m), "-o", str(tmp / "s.csv"), "--n-splits", "2", "--manifest-out",
            str(tmp / "s.csv"), "--overwrite"], "given for two outputs"


def split_output_exists(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    (tmp / "s.csv").write_text("row,image\n")
    return ["data", "split", str(m), "-o", str(tmp / "s.csv"), "--n-splits", "2"], "s.csv already exists"


def synth_overwrite_of_real_data(tmp: Path) -> tuple[list[str], str]:
    d = tmp / "real"
    (d / "images").mkdir(parents=True)
    (d / "manifest.csv").write_text("patient_id,image,label\nP1,images/a.png,benign\n")
    (d / "clinical.csv").write_text("patient_id,age\nP1,50\n")
    (d / "images" / "SYN0001_bmode.png").write_bytes(b"not a synthetic image")
    return ["data", "synth", str(d), "--overwrite", "--n-patients", "3", "--image-size", "32"], \
        "not written by the generator"


def synth_without_overwrite(tmp: Path) -> tuple[list[str], str]:
    d = tmp / "ds"
    make_synthetic_dataset(d, n_patients=3, image_size=32, modalities=("bmode",))
    return ["data", "synth", str(d), "--n-patients", "3", "--image-size", "32"], "already holds a data set"


def import_over_an_earlier_manifest(tmp: Path) -> tuple[list[str], str]:
    src = tmp / "src"
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        shutil.copy(_data(tmp).parent / "p00_0.png", src / cls / "x.png")
    out = _occupied(tmp / "out", "manifest.csv", "patient_id,image,label\n")
    return ["data", "import", "folder", str(src), str(out)], "manifest.csv already exists"


def evaluate_into_non_empty_folder(tmp: Path) -> tuple[list[str], str]:
    out = _occupied(tmp / "ev", "metrics.json", "{}")
    return ["evaluate", str(_predictions(tmp)), "-o", str(out), "--n-boot", "10"], "ev is not empty"


def evaluate_into_the_folder_of_its_input(tmp: Path) -> tuple[list[str], str]:
    p = _predictions(tmp)
    return ["evaluate", str(p), "-o", str(p.parent), "--n-boot", "10", "--overwrite"], "holds the input"


def meta_into_non_empty_folder(tmp: Path) -> tuple[list[str], str]:
    out = _occupied(tmp / "mo", "report.html", "<html>earlier</html>")
    return ["meta", "--example", "-o", str(out), "--no-leave-one-out"], "mo is not empty"


def pretrain_into_non_empty_folder(tmp: Path) -> tuple[list[str], str]:
    m = _data(tmp)
    return ["pretrain", str(m), "-o", str(tmp / "b"), "--weights", "none", "--backbone", "resnet18"], \
        "b is not empty"


def demo_overwrite_of_a_folder_that_is_no_demo(tmp: Path) -> tuple[list[str], str]:
    _data(tmp)
    return ["demo", "-o", str(tmp / "data"), "--overwrite"], "does not look like a nodescope demo folder"


def table1_onto_its_clinical_table(tmp: Path) -> tuple[list[str], str]:
    c = tmp / "clinical.csv"
    c.write_text("patient_id,age,sex\nA,40,F\nB,50,M\nC,60,F\n")
    return ["table1", str(c), "--group", "sex", "-o", str(c), "--overwrite"], "is the input"


def nomogram_into_the_folder_of_its_input(tmp: Path) -> tuple[list[str], str]:
    p = _predictions(tmp)
    c = p.parent / "clinical.csv"
    c.write_text("patient_id,age\nP0,40\n")
    return ["nomogram", str(p), str(c), "--terms", "age", "-o", str(p.parent), "--overwrite"], "holds the input"


def signature_onto_its_features(tmp: Path) -> tuple[list[str], str]:
    f = tmp / "features.csv"
    f.write_text("patient_id,y_true,f_0\nA,x,0.1\nB,y,0.2\n")
    return ["signature", str(f), "-o", str(f), "--overwrite"], "is the input"


CASES: list[Case] = [
    train_into_non_empty_folder, train_overwrite_of_a_folder_that_is_no_run, train_overwrite_would_delete_an_input,
    train_resume_and_overwrite, train_out_is_a_file, predict_onto_its_manifest,
    predict_onto_its_manifest_with_overwrite, predict_onto_its_image, predict_onto_a_link_to_its_manifest,
    predict_default_output_exists, predict_output_is_a_folder, split_onto_its_manifest,
    split_manifest_out_is_the_manifest, split_two_outputs_one_file, split_output_exists, synth_overwrite_of_real_data,
    synth_without_overwrite, import_over_an_earlier_manifest, evaluate_into_non_empty_folder,
    evaluate_into_the_folder_of_its_input, meta_into_non_empty_folder, pretrain_into_non_empty_folder,
    demo_overwrite_of_a_folder_that_is_no_demo, table1_onto_its_clinical_table, nomogram_into_the_folder_of_its_input,
    signature_onto_its_features,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_refused_and_nothing_changed(case: Case, tmp_path: Path, bundle: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(bundle, tmp_path / "b")  # an input of predict, a non-empty output folder for pretrain
    monkeypatch.chdir(tmp_path)  # default outputs (./predictions.csv) land here
    args, culprit = case(tmp_path)
    before = _tree(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())
    assert flat.count("error: ") == 1 and culprit in flat.split("error: ")[1], flat  # one line naming the culprit
    assert _tree(tmp_path) == before  # no input changed, no output (partial or whole) written
    assert not _leftovers(tmp_path)


# --- positive controls: --overwrite replaces the command's own outputs and nothing else ---------------------------

def test_split_overwrite_replaces_only_its_output(tmp_path: Path) -> None:
    m = _data(tmp_path)
    (tmp_path / "s.csv").write_text("old\n")
    before = _tree(tmp_path / "data")
    res = runner.invoke(app, ["data", "split", str(m), "-o", str(tmp_path / "s.csv"), "--n-splits", "2",
                              "--overwrite"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s.csv").read_text().startswith("row,image")
    assert _tree(tmp_path / "data") == before and not _leftovers(tmp_path)


def test_synth_overwrite_removes_only_the_generators_files(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    make_synthetic_dataset(d, n_patients=6, image_size=32, modalities=("bmode",))
    listed = (d / "synth_files.txt").read_text().splitlines()
    assert "manifest.csv" in listed and "images/SYN0006_bmode.png" in listed and "masks/SYN0001_node.png" in listed
    (d / "notes.txt").write_text("mine")
    (d / "images" / "my_scan.png").write_bytes(b"real")
    res = runner.invoke(app, ["data", "synth", str(d), "--overwrite", "--n-patients", "3", "--image-size", "32"])
    assert res.exit_code == 0, res.output
    assert (d / "notes.txt").read_text() == "mine" and (d / "images" / "my_scan.png").read_bytes() == b"real"
    assert not (d / "images" / "SYN0006_bmode.png").exists()  # the earlier generation's files are gone
    assert (d / "images" / "SYN0003_elastography.png").is_file() and not _leftovers(d)


def test_train_overwrite_removes_only_the_runs_own_files(tmp_path: Path) -> None:
    """The refusal and the clean-up of --overwrite, without training: run_folds is stopped right after it."""
    from nodescope.training._cv import RESUME_KEYS
    from nodescope.training._folds import FoldPlan, prepare_run_dir

    m = _data(tmp_path)
    run = _run_dir(tmp_path, m)
    (run / "notes.txt").write_text("mine")
    cfg = TrainConfig(manifest=m, out=run, backbone="resnet18", overwrite=True)
    plan = FoldPlan.from_config(cfg, RESUME_KEYS)
    prepare_run_dir(plan)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    # the run's saved config.yaml records overwrite off: reusing it later never deletes a run by itself
    assert "overwrite: false" in plan.config_yaml and plan.overwrite
