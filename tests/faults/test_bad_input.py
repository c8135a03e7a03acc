"""Bad input of every kind becomes one ``error:`` line and exit code 2, never a traceback or a silent wrong answer.

Issue #10 (reliability), the bad-input part. Every case of :data:`CASES` builds tiny files in a fresh folder, runs
the command line on them and checks the same contract:

- exit code 2 and exactly one line starting with ``error:``, no traceback;
- the message names the culprit (the file, the row, the column, the option typed, the value);
- no input file changed (SHA-256 of every file before and after) and no output file left behind.

The few behaviours that are not refusals (whitespace in ids, labels differing in case, progress of the
meta-analysis, warnings about absurd counts, the pixel-limit settings) have their own tests at the end.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from tiny_data import write_dicom_grey16, write_tiny_dataset
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.data import read_image, read_manifest
from nodescope.data._io import max_pixels_limit
from nodescope.data._io_base import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, max_pixels
from nodescope.errors import DataError
from nodescope.models import BundleMeta, InputSpec, Threshold, build_model, save_bundle

runner = CliRunner()

# ------------------------------------------------------------------------------------------------ helpers


def _digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (directories listed with an empty digest)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
    return out


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header announces ``width`` x ``height`` pixels (a decompression bomb; the data is tiny)."""
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)
    raw = bytearray(path.read_bytes())
    ihdr = bytes(raw[12:16]) + struct.pack(">II", width, height) + bytes(raw[24:29])
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    path.write_bytes(bytes(raw))
    return path


def _tiny_bundle(root: Path) -> Path:
    """A 2-class resnet18 classifier bundle on 32 px inputs (random weights)."""
    meta = BundleMeta(
        kind="classifier", name="t", run_id="run",
        architecture={"backbone": "resnet18", "num_classes": 2, "in_chans": 3, "image_size": 32,
                      "head": "mlp", "hidden": 16, "dropout": 0.1},
        classes=("benign", "malignant"), positive_class="malignant",
        input=InputSpec(image_size=32, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3),
        threshold=Threshold(0.5, "youden", "cv (pooled out-of-fold)", "p_malignant >= value"),
        group_col="patient_id", training={"n_samples": 3}, weights_init={"source": "none"},
    )
    torch.manual_seed(0)
    return save_bundle(root, build_model(meta), meta, metrics={"auc": 0.5})


@pytest.fixture(scope="module")
def bundle_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_bundle(tmp_path_factory.mktemp("bundle") / "b")


def _copy_bundle(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _data(d: Path) -> Path:
    """A tiny valid data set (6 patients, 40 px PNGs): returns its manifest."""
    return write_tiny_dataset(d / "data", n_patients=6, per_patient=1)


def _predictions(d: Path) -> Path:
    rows = [f"P{i},{'malignant' if i % 2 else 'benign'},{0.3 + 0.1 * (i % 4):.2f},test,-1,m,r" for i in range(8)]
    return _write(d / "preds.csv", "patient_id,y_true,p_malignant,split,fold,model,run_id\n" + "\n".join(rows) + "\n")


def _studies(d: Path) -> Path:
    return _write(d / "studies.csv", "study,TP,FP,FN,TN\nA,20,3,4,50\nB,30,4,5,40\nC,25,6,3,60\nD,40,2,8,55\n")


def _clinical_table(d: Path, text: str | None = None) -> Path:
    rows = [f"P{i},{30 + 3 * i},{'F' if i % 3 else 'M'}" for i in range(8)]
    return _write(d / "clinical.csv", "patient_id,age,sex\n" + "\n".join(rows) + "\n" if text is None else text)


def _clinical_case(kind: str) -> Case:
    """The clinical stage's commands (table1, nomogram, signature) given a table or option that cannot be used."""

    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        if kind == "table1-no-group":
            c = _clinical_table(d)
            return ["table1", str(c), "--group", "nope", "-o", str(d / "t1.csv")], [str(c), "no column 'nope'"], {}
        if kind == "table1-empty":
            c = _clinical_table(d, "")
            return ["table1", str(c), "--group", "sex"], [str(c), "cannot be read as CSV"], {}
        p, c = _predictions(d), _clinical_table(d)
        if kind == "nomogram-no-development":
            return (["nomogram", str(p), str(c), "--terms", "age", "-o", str(d / "nom")],
                    ["no development rows", "['test']"], {})
        if kind == "nomogram-bad-terms":
            return (["nomogram", str(p), str(c), "--terms", "age +", "--fit-split", "test", "-o", str(d / "nom")],
                    ["cannot read term ''"], {})
        return (["signature", str(p), "--folds", "1", "-o", str(d / "s.csv")], ["--folds", ">= 2"], {})

    return build


# ------------------------------------------------------------------------------------------------ the cases
# Each builder gets a fresh folder and the bundle and returns (CLI arguments, culprits the message must name,
# environment variables).

Case = Callable[[Path, Path], tuple[list[str], list[str], dict[str, str]]]


def _manifest_command(cmd: str, m: Path, d: Path, b: Path) -> list[str]:
    """The command line of ``cmd`` reading manifest ``m`` (outputs inside ``d``)."""
    if cmd == "check":
        return ["data", "check", str(m)]
    if cmd == "split":
        return ["data", "split", str(m), "-o", str(d / "s.csv")]
    if cmd == "predict":
        return ["predict", str(_copy_bundle(b, d / "b")), str(m), "-o", str(d / "p.csv")]
    return ["train", str(m), "-o", str(d / "run"), "--folds", "2", "--epochs", "1"]


def _manifest_dup_header(cmd: str) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        m = _data(d)
        text = m.read_text().splitlines()
        text[0] = text[0].replace("lesion_id", "label")  # patient_id,image,label,label,site
        _write(m, "\n".join(text) + "\n")
        return _manifest_command(cmd, m, d, b), [str(m), "['label']", "repeats column name"], {}

    return build


def _manifest_empty(cmd: str) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        m = _write(d / "manifest.csv", "")
        return _manifest_command(cmd, m, d, b), [str(m), "empty"], {}

    return build


def _clinical(text: str, culprit: str) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        m = _data(d)
        c = _write(d / "clinical.csv", text)
        return ["data", "check", str(m), "--no-images", "--clinical", str(c)], [str(c), culprit], {}

    return build


def _bomb_png(cmd: str) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        m = _data(d)
        img = _png_claiming(d / "data" / "p00_0.png", 40_000, 40_000)  # 1.6 gigapixels announced
        args = ["predict", str(_copy_bundle(b, d / "b")), str(img), "-o", str(d / "p.csv")] if cmd == "image" \
            else _manifest_command(cmd, m, d, b)
        return args, [str(img), "1,600,000,000 pixels", "100,000,000"], {}

    return build


def _big_tiff_env(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
    import tifffile

    img = d / "big.tif"
    tifffile.imwrite(img, np.zeros((3, 20, 30), dtype=np.uint8), photometric="minisblack")  # 3 pages, 30 x 20
    return (["predict", str(_copy_bundle(b, d / "b")), str(img), "-o", str(d / "p.csv")],
            [str(img), "30x20x3 frames", "1,800 pixels", "limit of 1,000", MAX_PIXELS_ENV], {MAX_PIXELS_ENV: "1000"})


def _big_dicom_option(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
    img = write_dicom_grey16(d / "big.dcm", np.zeros((20, 30), dtype=np.uint16), bits_stored=12)
    return (["predict", str(_copy_bundle(b, d / "b")), str(img), "-o", str(d / "p.csv"), "--max-pixels", "100"],
            [str(img), "30x20", "600 pixels", "limit of 100"], {})


def _bad_env_limit(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
    img = d / "a.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(img)
    return (["predict", str(_copy_bundle(b, d / "b")), str(img), "-o", str(d / "p.csv")],
            [MAX_PIXELS_ENV, "'lots'", ">= 1"], {MAX_PIXELS_ENV: "lots"})


def _bundle_json(name: str, text: str) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        bb = _copy_bundle(b, d / "b")
        _write(bb / name, text)
        img = d / "a.png"
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(img)
        return ["predict", str(bb), str(img), "-o", str(d / "p.csv")], [str(bb / name), "not valid JSON"], {}

    return build


class _Evil:
    """Stands for any pickled object (a checkpoint that would run code when unpickled)."""


def _pickled_weights(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
    m = _data(d)
    w = d / "weights.pt"
    torch.save({"model": _Evil()}, w)
    return (["train", str(m), "-o", str(d / "run"), "--weights", str(w), "--folds", "2", "--epochs", "1"],
            [str(w), "never unpickled", "safetensors"], {})


def _garbage_safetensors(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
    m = _data(d)
    w = _write(d / "weights.safetensors", "not a tensor file")
    return (["train", str(m), "-o", str(d / "run"), "--weights", str(w), "--folds", "2", "--epochs", "1"],
            [str(w), "not a readable safetensors file"], {})


def _config(text: str, culprits: list[str]) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        m = _data(d)
        c = _write(d / "config.yaml", text)
        return ["train", str(m), "-o", str(d / "run"), "--config", str(c)], [str(c), *culprits], {}

    return build


def _train_option(option: str, value: str, culprits: list[str]) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        m = _data(d)
        return ["train", str(m), "-o", str(d / "run"), option, value], culprits, {}

    return build


def _splits(edit: Callable[[str], str], culprits: list[str]) -> Case:
    """A run's splits file (written here as ``nodescope train`` writes it), then edited."""

    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        m = _data(d)
        lines = ["patient_id,group,label,part,fold"]
        lines += [f"P{i:02d},P{i:02d},{'malignant' if i % 2 else 'benign'},cv,{i // 2 % 2}" for i in range(6)]
        s = _write(d / "splits.csv", edit("\n".join(lines) + "\n"))
        return (["train", str(m), "-o", str(d / "run"), "--splits-file", str(s), "--folds", "2", "--epochs", "1"],
                [str(s), *culprits], {})

    return build


def _preds(edit: Callable[[str], str], culprits: list[str]) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        p = _predictions(d)
        _write(p, edit(p.read_text()))
        return ["evaluate", str(p), "-o", str(d / "ev"), "--n-boot", "10"], [str(p), *culprits], {}

    return build


def _reads_empty(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
    p = _predictions(d)
    r = _write(d / "reads.csv", "")
    return ["evaluate", str(p), "-o", str(d / "ev"), "--n-boot", "10", "--readers", str(r)], [str(r)], {}


def _meta_table(which: str, text: str, culprits: list[str], extra: tuple[str, ...] = ()) -> Case:
    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        s = _studies(d)
        args = ["meta", str(s), "-o", str(d / "mo"), "--no-leave-one-out", *extra]
        if which == "studies":
            _write(s, text)
            return args, [str(s), *culprits], {}
        q = _write(d / "quadas.csv", text)
        return [*args, "--quadas", str(q)], [str(q), *culprits], {}

    return build


def _option(args: list[str], culprits: list[str], needs: str = "") -> Case:
    """A command line with one option value that cannot be right; ``needs`` adds a valid input file first."""

    def build(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
        inputs = {"manifest": lambda: [str(_data(d))], "bundle": lambda: [str(_copy_bundle(b, d / "b")),
                                                                           str(_data(d))],
                  "preds": lambda: [str(_predictions(d))], "studies": lambda: [str(_studies(d))],
                  "": lambda: []}[needs]()
        head = args[:2] if args[0] == "data" else args[:1]
        return [*head, *inputs, *args[len(head):]], culprits, {}

    return build


def _bad_regex(d: Path, b: Path) -> tuple[list[str], list[str], dict[str, str]]:
    src = d / "src"
    for cls in ("benign", "malignant"):
        (src / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(src / cls / "P1_a.png")
    return (["data", "import", "folder", str(src), str(d / "out"), "--patient-regex", "(P\\d+"],
            ["'(P\\\\d+'", "not a valid regular expression"], {})


DUP = "header repeats column name"
CASES: dict[str, Case] = {
    # manifest (item 5, item 11: 0-byte CSVs)
    "manifest-dup-header-check": _manifest_dup_header("check"),
    "manifest-dup-header-split": _manifest_dup_header("split"),
    "manifest-dup-header-predict": _manifest_dup_header("predict"),
    "manifest-dup-header-train": _manifest_dup_header("train"),
    "manifest-empty-check": _manifest_empty("check"),
    "manifest-empty-split": _manifest_empty("split"),
    "manifest-empty-predict": _manifest_empty("predict"),
    "clinical-empty": _clinical("", "empty"),
    "clinical-dup-header": _clinical("patient_id,age,age\nP00,1,2\n", "['age']"),
    # image (item 11: decompression bombs and huge images)
    "image-png-bomb-predict": _bomb_png("image"),
    "image-png-bomb-predict-manifest": _bomb_png("predict"),
    "image-png-bomb-train": _bomb_png("train"),
    "image-tiff-over-env-limit": _big_tiff_env,
    "image-dicom-over-max-pixels": _big_dicom_option,
    "image-bad-env-limit": _bad_env_limit,
    # bundle (item 11: pickled weights, malformed JSON)
    "bundle-metrics-json": _bundle_json("metrics.json", "{not json"),
    "bundle-model-json": _bundle_json("model.json", "{\"kind\": "),
    "weights-pickle": _pickled_weights,
    "weights-garbage-safetensors": _garbage_safetensors,
    # config / YAML and train options (items 10, 11)
    "config-bad-yaml": _config("epochs: [1,\n", ["not valid YAML", "line"]),
    "config-unknown-key": _config("epoch: 3\n", ["epoch", "did you mean 'epochs'?"]),
    "config-bad-value": _config("lr: -1\n", ["lr: must be > 0", "-1"]),
    "train-accelerator-typo": _train_option("--accelerator", "gpux", ["--accelerator", "'gpux'", "'cpu'"]),
    "train-accelerator-absent": _train_option("--accelerator", "tpu", ["--accelerator", "'tpu'", "no TPU"]),
    "train-classes-unknown": _train_option("--classes", "benign,nosuch", ["classes", "['nosuch']", "its labels"]),
    "train-max-pixels-0": _train_option("--max-pixels", "0", ["--max-pixels", ">= 1", "got 0"]),
    # splits file (item 7)
    "splits-unknown-part": _splits(lambda t: t.replace("P03,malignant,cv", "P03,malignant,tset"),
                                   ["line 5", "column 'part'", "'tset'"]),
    "splits-fold-x": _splits(lambda t: t.replace("P02,benign,cv,1", "P02,benign,cv,x"),
                             ["line 4", "column 'fold'", "'x'"]),
    "splits-empty": _splits(lambda t: "", ["empty"]),
    "splits-dup-header": _splits(lambda t: t.replace("patient_id,group", "group,group"), [DUP, "['group']"]),
    # predictions (items 5, 11)
    "predictions-empty": _preds(lambda t: "", ["empty"]),
    "predictions-dup-header": _preds(lambda t: t.replace(",model,", ",split,"), [DUP, "['split']"]),
    "reads-empty": _reads_empty,
    # studies / QUADAS tables (items 5, 11)
    "studies-empty": _meta_table("studies", "", ["empty"]),
    "studies-dup-header": _meta_table("studies", "study,TP,TP,FN,TN\nA,1,2,3,4\n", [DUP, "['TP']"]),
    "studies-empty-reconstruct": _meta_table("studies", "", ["empty"], ("--reconstruct",)),
    "quadas-empty": _meta_table("quadas", "", ["empty"]),
    "quadas-dup-header": _meta_table("quadas", "study,study\nA,A\n", [DUP, "['study']"]),
    # CLI options (item 10)
    "predict-batch-size-0": _option(["predict", "-o", "p.csv", "--batch-size", "0"],
                                    ["--batch-size", ">= 1", "got 0"], "bundle"),
    "predict-max-pixels-0": _option(["predict", "-o", "p.csv", "--max-pixels", "0"], ["--max-pixels"], "bundle"),
    "predict-threads-0": _option(["predict", "-o", "p.csv", "--threads", "0"], ["--threads", ">= 1"], "bundle"),
    "predict-engine": _option(["predict", "-o", "p.csv", "--engine", "tensorrt"], ["--engine", "onnx"], "bundle"),
    "pretrain-val-fraction": _option(["pretrain", "-o", "pt", "--val-fraction", "1.5"],
                                     ["--val-fraction", "in (0, 1)", "1.5"], "manifest"),
    "pretrain-epochs": _option(["pretrain", "-o", "pt", "--epochs", "0"], ["--epochs", ">= 1"], "manifest"),
    "pretrain-patience": _option(["pretrain", "-o", "pt", "--patience", "0"], ["--patience", ">= 1"], "manifest"),
    "pretrain-batch-size": _option(["pretrain", "-o", "pt", "--batch-size", "1"], ["--batch-size", ">= 2"],
                                   "manifest"),
    "pretrain-lr-nan": _option(["pretrain", "-o", "pt", "--lr", "nan"], ["--lr", "finite number > 0"], "manifest"),
    "pretrain-lr-negative": _option(["pretrain", "-o", "pt", "--lr", "-0.1"], ["--lr", "> 0"], "manifest"),
    "pretrain-channels": _option(["pretrain", "-o", "pt", "--channels", "2"], ["--channels", "1, 3"], "manifest"),
    "pretrain-augment": _option(["pretrain", "-o", "pt", "--augment", "heavy"], ["--augment", "'heavy'"],
                                "manifest"),
    "pretrain-image-size": _option(["pretrain", "-o", "pt", "--image-size", "0"], ["--image-size"], "manifest"),
    "split-test-size": _option(["data", "split", "-o", "s.csv", "--test-size", "1.5"],
                               ["--test-size", "in [0, 1)", "1.5"], "manifest"),
    "split-val-size": _option(["data", "split", "-o", "s.csv", "--val-size", "-0.1"], ["--val-size"], "manifest"),
    "split-n-splits": _option(["data", "split", "-o", "s.csv", "--n-splits", "0"], ["--n-splits", ">= 1"],
                              "manifest"),
    "check-max-pixels": _option(["data", "check", "--max-pixels", "-3"], ["--max-pixels", "-3"], "manifest"),
    "evaluate-n-boot": _option(["evaluate", "-o", "ev", "--n-boot", "-5"], ["--n-boot", ">= 1", "-5"], "preds"),
    "evaluate-alpha": _option(["evaluate", "-o", "ev", "--alpha", "2"], ["--alpha", "in (0, 1)", "2.0"], "preds"),
    "meta-alpha": _option(["meta", "-o", "mo", "--alpha", "2"], ["--alpha", "in (0, 1)"], "studies"),
    "meta-pretest": _option(["meta", "-o", "mo", "--pretest", "0"], ["--pretest", "in (0, 1)"], "studies"),
    "synth-n-patients": _option(["data", "synth", "sy", "--n-patients", "0"], ["--n-patients", ">= 3"]),
    "synth-difficulty": _option(["data", "synth", "sy", "--difficulty", "2"], ["--difficulty", "in [0, 1]"]),
    "synth-image-size": _option(["data", "synth", "sy", "--image-size", "8"], ["--image-size", "in [32, 2048]"]),
    "synth-seed": _option(["data", "synth", "sy", "--seed", "-1"], ["--seed", ">= 0"]),
    "import-bad-regex": _bad_regex,
    # the clinical stage
    **{k: _clinical_case(k) for k in ("table1-no-group", "table1-empty", "nomogram-no-development",
                                      "nomogram-bad-terms", "signature-folds")},
    "nomogram-n-boot": _option(["nomogram", "-o", "nom", "--terms", "age", "--n-boot", "0"], ["--n-boot", ">= 1"],
                               "preds"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_error_line_exit_2_and_changes_nothing(
    case: str, tmp_path: Path, bundle_src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    args, culprits, env = CASES[case](case_dir, bundle_src)
    monkeypatch.chdir(case_dir)  # relative outputs (p.csv, sy, ...) would land here
    before = _digests(case_dir)
    result = runner.invoke(app, args, env={"COLUMNS": "400", **env})
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out and (result.exception is None or isinstance(result.exception, SystemExit)), out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    flat = " ".join(out.split())
    for culprit in culprits:
        assert " ".join(culprit.split()) in flat, (culprit, out)
    after = _digests(case_dir)
    changed = {k for k in before if before[k] != after.get(k)}
    assert not changed, f"inputs changed: {changed}"
    new_files = {k for k, v in after.items() if k not in before and v}
    assert not new_files, f"output left behind: {new_files}"


# ------------------------------------------------------------------------------------------------ not refusals


def test_ids_and_labels_with_stray_spaces_are_one_patient_and_one_class(tmp_path: Path) -> None:
    """Item 6: a trailing space made another patient (and split it across folds); ids and labels are stripped."""
    m = _data(tmp_path)
    df = pd.read_csv(m, dtype=str)
    extra = df.iloc[[0]].assign(image="p00_0.png", patient_id="P00 ", label=" benign", lesion_id=" L9 ")
    extra["image"] = "copy.png"
    (m.parent / "copy.png").write_bytes((m.parent / "p00_0.png").read_bytes())
    df = pd.concat([df, extra], ignore_index=True)
    df["site"] = df["site"] + "  "  # other columns stay verbatim
    df.to_csv(m, index=False)
    digest = hashlib.sha256(m.read_bytes()).hexdigest()
    man = read_manifest(m)
    assert man.frame["patient_id"].tolist().count("P00") == 2 and man.classes == ("benign", "malignant")
    assert man.frame["lesion_id"].iloc[-1] == "L9" and man.frame["site"].str.endswith("  ").all()
    out = tmp_path / "s.csv"
    res = runner.invoke(app, ["data", "split", str(m), "-o", str(out), "--n-splits", "2"])
    assert res.exit_code == 0, res.output
    sp = pd.read_csv(out, dtype=str)
    assert sp.groupby("group")["fold"].nunique().max() == 1 and "P00 " not in set(sp["group"])
    assert hashlib.sha256(m.read_bytes()).hexdigest() == digest


def test_labels_differing_only_in_case_are_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    m = _data(tmp_path)
    df = pd.read_csv(m, dtype=str)
    df.loc[0, "label"] = "Benign"
    df.to_csv(m, index=False)
    with caplog.at_level(logging.WARNING, logger="nodescope.data"):
        man = read_manifest(m)
    assert any("['Benign', 'benign']" in r.getMessage() and str(m) in r.getMessage() for r in caplog.records)
    assert man.classes == ("Benign", "benign", "malignant")  # warned, not changed
    res = runner.invoke(app, ["data", "check", str(m), "--no-images"], env={"COLUMNS": "400"})
    assert res.exit_code == 0 and "differ only in case" in res.output


def test_data_check_reports_a_bomb_on_its_row(tmp_path: Path) -> None:
    """``data check`` lists every problem with its row (exit 1, its report); a bomb is one of them, not a crash."""
    m = _data(tmp_path)
    _png_claiming(m.parent / "p01_0.png", 40_000, 40_000)
    res = runner.invoke(app, ["data", "check", str(m)], env={"COLUMNS": "400"})
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "row 3" in res.output and "exceeds the limit of 100,000,000 pixels" in res.output
    res = runner.invoke(app, ["data", "check", str(m), "--max-pixels", "2000000000"], env={"COLUMNS": "400"})
    assert "exceeds the limit" not in res.output  # raised: the (truncated) file is then refused as undecodable


def test_pixel_limit_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((10, 20), dtype=np.uint8)).save(img)
    assert max_pixels() == DEFAULT_MAX_PIXELS == 100_000_000
    assert read_image(img, max_pixels=200).width == 20
    with pytest.raises(DataError, match="200 pixels exceeds the limit of 199"):
        read_image(img, max_pixels=199)
    with max_pixels_limit(150), pytest.raises(DataError, match="limit of 150"):
        read_image(img)
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    with pytest.raises(DataError, match="limit of 100 "):
        read_image(img)
    with max_pixels_limit(1000):  # the explicit setting wins over the environment
        assert read_image(img).height == 10
    monkeypatch.delenv(MAX_PIXELS_ENV)
    from PIL import Image as PILImage

    assert PILImage.MAX_IMAGE_PIXELS is not None  # Pillow's own setting is restored after each read


def test_meta_shows_progress_and_warns_about_absurd_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Item 12: TP = 1e12 used to run minutes without a word: the counts are named up front, every refit logged."""
    from nodescope.meta import read_studies
    from nodescope.meta._analyses import leave_one_out
    from nodescope.meta._run import _model_frame

    absurd = _write(tmp_path / "absurd.csv",
                    "study,TP,FP,FN,TN\nA,1000000000000,3,4,50\nB,30,4,5,40\nC,25,6,3,60\nD,40,2,8,55\n")
    with caplog.at_level(logging.INFO, logger="nodescope.meta"):
        read_studies(absurd)
        leave_one_out(_model_frame(read_studies(_studies(tmp_path))), model="reitsma")
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "study 'A' (row 1) has TP=1,000,000,000,000, beyond any real study" in text
    assert "leave-one-out: refit 4 of 4, without D" in text
    res = runner.invoke(app, ["meta", str(_studies(tmp_path)), "-o", str(tmp_path / "mo"), "--model", "reitsma"],
                        env={"COLUMNS": "400"})  # the command line prints the progress lines
    assert res.exit_code == 0, res.output
    assert "meta-analysis: pooled" in res.output and "leave-one-out: refit 4 of 4" in res.output
