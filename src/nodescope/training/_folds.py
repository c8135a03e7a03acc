"""Generic k-fold machinery: fold loop, resume, refit of a final model, DDP ranks, run directory, saved split.

What is trained, predicted, saved and summarised is a :class:`FoldTask`'s business (the classifier's is
:class:`nodescope.training._classify.ClassifyTask`); this module knows nothing of classes, probabilities or
thresholds. Run directory (``FoldPlan.out``)::

    config.yaml         the resolved configuration (``FoldPlan.config_yaml``)
    splits.csv          one row per sample: the columns of SPLIT_COLUMNS present in the frame
    folds/fold_<k>/     the fit's working folder (``checkpoints/`` removed once the fold is done unless
                        ``keep_checkpoints``), bundle/ (``FoldTask.save``), predictions.csv, DONE (the fit info and
                        the run key, written last)
    final/              the refit on all development data (``final_model="refit"``), bundle/
    predictions.csv     out-of-fold rows (split "cv") + test/external rows (fold -1) of the final model, or of the
                        fold models together (``FoldTask.predict_ensemble``) without a refit
    summary.json        ``FoldTask.summarise(...).to_dict()``
    train.log           logging and warnings of the run (:func:`nodescope._logs.attach_log_file`; appended to)

Reliability: a folder that is not empty is refused unless the run is resumed or replaced (``overwrite``: only the
entries above are removed, and only from a folder whose ``config.yaml`` is a run's). Every file is written to a
temporary name and renamed. A fold's ``DONE`` marker is written after its predictions and bundle and carries the *run
key* (SHA-256 of ``splits.csv`` and of the ``resume_keys`` of the configuration); a resumed run reuses a fold only
when its key matches, and checks that every development row is predicted exactly once, by its own fold, before it
writes anything. SIGTERM (and a Lightning ``SIGTERMException``) becomes :class:`TrainingTerminated`, naming the fold.

The frame (one row per sample) needs ``part`` (``cv``/``test``/``external``), ``fold`` (cv rows) and ``group`` (the
inner validation split keeps groups together; it is stratified by ``label``). Seeds: fold k is fitted with
``seed + k`` after an inner validation split drawn with ``seed + 1000 (k + 1)``; the refit with ``seed + 9999``
after one drawn with ``seed + 99999``.

Distributed data parallel: every rank runs every fit (each ``trainer.fit`` needs all ranks); only the rank with
``LOCAL_RANK`` = ``NODE_RANK`` = 0 predicts and writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import pandas as pd

from nodescope._files import atomic_write_csv, atomic_write_text, same_path
from nodescope._logs import attach_log_file
from nodescope._progress import Progress
from nodescope.errors import ConfigError, DataError, NodescopeError, OutputExistsError

__all__ = ["RUN_ENTRIES", "SPLIT_COLUMNS", "FoldPlan", "FoldRun", "FoldTask", "RunSummaryLike", "TrainingTerminated",
           "check_resume", "check_run_dir", "inner_validation", "is_rank_zero", "prepare_run_dir", "run_folds",
           "run_key"]

log = logging.getLogger(__name__)

#: Columns of the frame written to ``splits.csv`` (those present, in this order).
SPLIT_COLUMNS = ("patient_id", "group", "image", "label", "part", "fold")
#: What a run writes into its folder: all that ``overwrite`` removes (anything else there is left alone).
RUN_ENTRIES = ("config.yaml", "splits.csv", "folds", "final", "predictions.csv", "summary.json", "train.log")
#: The parts scored by the final model (or the fold models) besides the out-of-fold ``cv`` rows, in output order.
HELD_OUT_PARTS = ("test", "external")

M = TypeVar("M")


class TrainingTerminated(NodescopeError):
    """The run was stopped by a signal (SIGTERM); finished folds are kept and a resumed run continues it.

    Attributes
    ----------
    signum : int
        The signal (15 for SIGTERM).
    stage : str
        What was running, e.g. ``"fold 1"``, ``"the refit of the final model"``.
    run_dir : Path
        The run folder.
    """

    def __init__(self, signum: int, stage: str, run_dir: Path) -> None:
        self.signum, self.stage, self.run_dir = signum, stage, run_dir
        name = signal.Signals(signum).name if signum in signal.Signals.__members__.values() else str(signum)
        super().__init__(f"training in {run_dir} was terminated ({name}) during {stage}; finished folds are kept, "
                         "resume the run to continue it")


class RunSummaryLike(Protocol):
    """What :meth:`FoldTask.summarise` returns: written as ``summary.json``, printed by the command line."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of ``summary.json``."""
        ...

    def render(self) -> str:
        """Lines for the terminal."""
        ...


class FoldTask(Protocol[M]):
    """A task the fold runner trains, predicts, saves and summarises; ``M`` is its fitted model.

    The runner calls, per fold: ``fit`` then (rank 0) ``predict`` of the fold's rows and ``save``; a fold finished
    by an earlier run is read back with ``read_predictions`` (and ``load``, when fold models score the test rows).
    Then ``finalise`` with the pooled out-of-fold rows (before the refit: it may set what the final model is saved
    with), the refit's ``fit``/``predict``/``save`` or ``predict_ensemble``, and ``summarise``.
    """

    def fit(self, train_idx: np.ndarray, val_idx: np.ndarray, workdir: Path, seed: int) -> tuple[M, dict[str, Any]]:
        """Train one model on rows ``train_idx`` (``val_idx``: early stopping, may be empty) in ``workdir``.

        Returns the model and its fit information (JSON-serialisable; stored in ``DONE`` and the summary).
        """
        ...

    def predict(self, fitted: M, idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        """Predictions of rows ``idx`` with ``split`` and ``fold`` (-1 outside cross-validation) columns."""
        ...

    def predict_ensemble(self, models: Sequence[Any], idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        """Predictions of rows ``idx`` by the fold models together (fitted ones, or ``load``-ed for reused folds)."""
        ...

    def save(self, fitted: M, path: Path, *, train_idx: np.ndarray, fold: int | None, info: dict[str, Any]) -> None:
        """Write the model to ``path`` (``fold`` None: the final model, after ``finalise``)."""
        ...

    def load(self, path: Path) -> Any:
        """Read back a model written by ``save`` (a fold reused on resume, for ``predict_ensemble``)."""
        ...

    def read_predictions(self, path: Path) -> pd.DataFrame:
        """Read back a fold's ``predictions.csv`` exactly as ``predict`` made it."""
        ...

    def finalise(self, oof: pd.DataFrame, run_dir: Path, folds: Sequence[int]) -> pd.DataFrame | None:
        """Decisions made on the pooled out-of-fold rows (e.g. an operating threshold, a calibration), stored in the
        fold models; returns the out-of-fold rows to report when it changed them (else None)."""
        ...

    def summarise(self, predictions: pd.DataFrame, folds: Mapping[int, dict[str, Any]],
                  final: dict[str, Any]) -> RunSummaryLike:
        """The run's summary from all predictions and the fit information of the folds and the final model."""
        ...


@dataclass(frozen=True)
class FoldPlan:
    """The generic settings of a k-fold run (see the module docstring).

    Attributes
    ----------
    out : Path
        Run directory.
    seed : int
        Base seed of the fits and inner validation splits.
    val_fraction : float
        Fraction of the training groups held out for early stopping (0: none).
    final_model : {"refit", "none"}
        Refit on all development data, or score test rows with the fold models together.
    resume : bool
        Reuse finished folds (``DONE`` + ``predictions.csv``); refused when ``resume_keys`` or the split changed.
    keep_checkpoints : bool
        Keep ``checkpoints/`` of finished fits.
    config_yaml : str
        Written as ``config.yaml``.
    config : mapping
        The configuration as JSON values; ``resume_keys`` of it are compared with the saved ``config.yaml``.
    resume_keys : tuple of str
        Configuration keys a resumed run must share with the run it continues.
    overwrite : bool
        Replace an earlier run in ``out`` (only :data:`RUN_ENTRIES` are removed); excludes ``resume``.
    inputs : tuple of Path
        Files and folders the run reads (manifests, a splits file, weights): ``overwrite`` never removes them.
    """

    out: Path
    seed: int = 0
    val_fraction: float = 0.0
    final_model: Literal["refit", "none"] = "refit"
    resume: bool = False
    keep_checkpoints: bool = False
    config_yaml: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    resume_keys: tuple[str, ...] = ()
    overwrite: bool = False
    inputs: tuple[Path, ...] = ()

    @classmethod
    def from_config(cls, cfg: Any, resume_keys: Sequence[str]) -> FoldPlan:
        """The plan of a pydantic configuration with fields ``out``, ``seed``, ``val_fraction``, ``final_model``,
        ``resume``, ``keep_checkpoints`` and a ``to_yaml()`` method (as :class:`~nodescope.training.TrainConfig`);
        ``overwrite`` and the input paths (``manifest``, ``external``, ``splits_file``, ``weights``) when present."""
        names = [getattr(cfg, "manifest", None), *(getattr(cfg, "external", None) or []),
                 getattr(cfg, "splits_file", None), getattr(cfg, "weights", None)]
        inputs = tuple(Path(p) for p in names if p is not None and Path(p).exists())
        overwrite = bool(getattr(cfg, "overwrite", False))
        # saved with overwrite off: a config.yaml reused later never deletes a run by itself
        saved = cfg.model_copy(update={"overwrite": False}) if overwrite else cfg
        return cls(Path(cfg.out), cfg.seed, cfg.val_fraction, cfg.final_model, cfg.resume, cfg.keep_checkpoints,
                   saved.to_yaml(), cfg.model_dump(mode="json"), tuple(resume_keys), overwrite, inputs)


@dataclass(frozen=True)
class FoldRun:
    """What :func:`run_folds` produced: its folder, the predictions table and the summary (also written to disk).

    Attributes
    ----------
    run_dir : Path
    predictions : DataFrame
        Empty on a non-zero DDP rank.
    run_summary : RunSummaryLike or None
        The task's typed summary; None on a non-zero DDP rank.
    """

    run_dir: Path
    predictions: pd.DataFrame
    run_summary: RunSummaryLike | None

    @property
    def summary(self) -> dict[str, Any]:
        """The content of ``summary.json`` as a dict (``{}`` on a non-zero DDP rank)."""
        return self.run_summary.to_dict() if self.run_summary is not None else {}


def is_rank_zero() -> bool:
    """True outside distributed training and on its first process (``LOCAL_RANK`` = ``NODE_RANK`` = 0)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def inner_validation(frame: pd.DataFrame, train_idx: np.ndarray, val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``train_idx`` into (train, validation) rows by ``group``, stratified by ``label``; none when 0."""
    from nodescope.data import make_splits

    if val_fraction <= 0:
        return train_idx, np.zeros(0, np.int64)
    fr = frame.iloc[train_idx]
    sp = make_splits(fr, method="holdout", group_col="group", test_size=val_fraction, seed=seed)
    is_val = (sp["part"] == "test").to_numpy()
    return train_idx[~is_val], train_idx[is_val]


def _drop_checkpoints(plan: FoldPlan, workdir: Path) -> None:
    """Remove a finished model's Lightning checkpoints (weights + optimiser state, ~3x the bundle) unless kept.

    A finished fold is resumed from its predictions and bundle, never from its checkpoints; an interrupted fold keeps
    ``last.ckpt`` because it never reaches this point.
    """
    if not plan.keep_checkpoints:
        shutil.rmtree(workdir / "checkpoints", ignore_errors=True)


def check_resume(run_dir: Path, config: Mapping[str, Any], splits: pd.DataFrame, keys: Sequence[str]) -> None:
    """Refuse to resume into a run whose saved config (``keys``) or splits.csv differ from this one's.

    Raises
    ------
    ValueError
        Naming the differing keys, or the first differing row and column of the split.
    """
    import yaml

    saved_cfg = run_dir / "config.yaml"
    if saved_cfg.is_file():
        old = yaml.safe_load(saved_cfg.read_text()) or {}
        diff = [f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in keys if old.get(k) != config.get(k)]
        if diff:
            raise ConfigError(f"resume: {saved_cfg} differs from this configuration in {'; '.join(diff)}; the finished "
                             "folds would not belong to this run. Use a new output folder or the saved settings")
    saved = run_dir / "splits.csv"
    if not saved.is_file():
        return
    old_sp = pd.read_csv(saved, dtype=str, keep_default_na=False)
    new_sp = splits.astype(str).reset_index(drop=True)
    if list(old_sp.columns) != list(new_sp.columns) or len(old_sp) != len(new_sp):
        raise DataError(f"resume: {saved} has {len(old_sp)} rows with columns {list(old_sp.columns)}, this run "
                         f"{len(new_sp)} rows with {list(new_sp.columns)}; the data or the split changed")
    neq = old_sp.to_numpy() != new_sp.to_numpy()
    if neq.any():
        r, c = map(int, np.argwhere(neq)[0])
        raise DataError(f"resume: the split differs from {saved} on {int(neq.any(axis=1).sum())} row(s), e.g. row "
                         f"{r + 2} column {old_sp.columns[c]!r}: saved {old_sp.iat[r, c]!r}, now {new_sp.iat[r, c]!r}; "
                         "use a new output folder")


def run_key(splits_csv: str, config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The key binding a fold's ``DONE`` marker to its run: SHA-256 of ``splits.csv`` and of the ``keys`` of ``config``.

    Parameters
    ----------
    splits_csv : str
        The text of the run's ``splits.csv``.
    config : mapping
        The configuration as JSON values.
    keys : sequence of str
        The configuration keys a resumed run must share with the run it continues.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    h = hashlib.sha256(splits_csv.encode("utf-8"))
    h.update(json.dumps({k: config.get(k) for k in keys}, sort_keys=True, default=str).encode("utf-8"))
    return h.hexdigest()


def _read_done(done: Path, key: str) -> dict[str, Any] | None:
    """The fit info of a fold's ``DONE`` marker when it belongs to this run (its ``run_key`` is ``key``), else None."""
    try:
        info = json.loads(done.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.pop("run_key", None) != key:
        return None
    return info


def _run_fold(task: FoldTask[Any], frame: pd.DataFrame, plan: FoldPlan, cv_idx: np.ndarray, k: int,
              rank0: bool, key: str) -> tuple[pd.DataFrame | None, dict[str, Any] | None, Any]:
    """Fit (or reuse) fold ``k``; returns its predictions and fit info (None on other ranks) and its model."""
    fdir = plan.out / "folds" / f"fold_{k}"
    fdir.mkdir(parents=True, exist_ok=True)
    in_fold = frame["fold"].iloc[cv_idx].to_numpy() == k
    done = fdir / "DONE"
    if plan.resume and done.is_file():
        info = _read_done(done, key) if (fdir / "predictions.csv").is_file() else None
        if info is not None:
            log.info("fold %d already complete: reusing its predictions", k)
            model = task.load(fdir / "bundle") if plan.final_model == "none" else None
            return task.read_predictions(fdir / "predictions.csv"), info, model
        log.warning("%s belongs to another split or configuration (its run key differs): fold %d is trained again",
                    done, k)
        if rank0:
            done.unlink(missing_ok=True)
            shutil.rmtree(fdir / "checkpoints", ignore_errors=True)  # the interrupted fit of that other run
    tr, va = inner_validation(frame, cv_idx[~in_fold], plan.val_fraction, plan.seed + 1000 * (k + 1))
    model, info = task.fit(tr, va, fdir, plan.seed + k)
    if not rank0:
        return None, None, model
    pf = task.predict(model, cv_idx[in_fold], "cv", k)
    atomic_write_csv(pf, fdir / "predictions.csv")
    task.save(model, fdir / "bundle", train_idx=tr, fold=k, info={"fold": k, **info})
    atomic_write_text(done, json.dumps({**info, "run_key": key}))  # last: the fold is complete only now
    _drop_checkpoints(plan, fdir)
    return pf, info, model


#: Columns that identify a development row in both the frame and a predictions table (those present in both).
_ROW_KEYS = ("patient_id", "group", "image")


def _check_out_of_fold(frame: pd.DataFrame, cv_idx: np.ndarray, oof: pd.DataFrame, run_dir: Path) -> None:
    """Every development row predicted exactly once, by the model of its own fold; else a DataError naming examples."""
    from collections import Counter

    keys = [c for c in _ROW_KEYS if c in frame.columns and c in oof.columns]
    want = frame.iloc[cv_idx]

    def rows(fr: pd.DataFrame) -> Counter[tuple[str, ...]]:
        cols = [fr[c].astype(str).to_numpy() for c in keys] + [fr["fold"].astype(int).astype(str).to_numpy()]
        return Counter(zip(*cols, strict=True))

    expected, got = rows(want), rows(oof)
    if expected == got:
        return
    missing, extra = expected - got, got - expected
    what = ", ".join([*keys, "fold"])
    raise DataError(f"{run_dir}: the out-of-fold predictions do not cover every development row exactly once "
                    f"({what}): {sum(missing.values())} missing, e.g. {next(iter(missing), None)}; "
                    f"{sum(extra.values())} duplicated or from another fold, e.g. {next(iter(extra), None)}. The fold "
                    "predictions under folds/ do not belong to this run's split; start a new run")


def _looks_like_run(run_dir: Path, keys: Sequence[str]) -> bool:
    """True when ``run_dir/config.yaml`` is a YAML mapping holding every key of ``keys`` (a run's saved settings)."""
    import yaml

    cfg = run_dir / "config.yaml"
    if not cfg.is_file():
        return False
    try:
        data = yaml.safe_load(cfg.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and all(k in data for k in keys)


def check_run_dir(plan: FoldPlan) -> list[Path]:
    """Check that ``plan.out`` may be written: empty or missing, a run to resume, or a run to replace.

    Parameters
    ----------
    plan : FoldPlan

    Returns
    -------
    list of Path
        What :func:`prepare_run_dir` removes: the :data:`RUN_ENTRIES` present, when ``plan.overwrite`` (else empty).

    Raises
    ------
    ConfigError
        Both ``resume`` and ``overwrite``.
    OutputExistsError
        ``out`` is a file; or it is not empty and neither ``resume`` nor ``overwrite`` is set; or it is not empty and
        not a run (no ``config.yaml`` holding the run's settings) while ``resume`` or ``overwrite`` is set; or
        ``overwrite`` would remove one of ``plan.inputs``.
    """
    out = plan.out
    if plan.resume and plan.overwrite:
        raise ConfigError(f"{out}: resume and overwrite exclude each other (continue the run, or replace it)")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"run directory {out} is a file; expected a folder")
    present = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not present:
        return []
    listing = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
    if not (plan.resume or plan.overwrite):
        raise OutputExistsError(f"run directory {out} is not empty ({listing}); choose a new folder, resume the run "
                                "(resume) or replace it (overwrite)")
    if not _looks_like_run(out, plan.resume_keys):
        raise OutputExistsError(f"{out} is not empty ({listing}) and holds no nodescope run (no config.yaml with the "
                                "run's settings); refusing to resume into it or delete anything in it")
    if plan.resume:
        return []
    doomed = [out / e for e in RUN_ENTRIES if (out / e).exists()]
    for path in doomed:
        for src in plan.inputs:
            if same_path(src, path) or path.resolve() in src.resolve().parents:
                raise OutputExistsError(f"replacing the run in {out} would remove {path}, an input of this run "
                                        f"({src}); copy it elsewhere or choose a new folder")
    return doomed


def prepare_run_dir(plan: FoldPlan) -> None:
    """Create ``plan.out`` after :func:`check_run_dir`; with ``overwrite``, remove the earlier run's own entries.

    Only :data:`RUN_ENTRIES` (and temporary files of an interrupted write of them) are removed; anything else in the
    folder stays, and both lists are logged.

    Raises
    ------
    ConfigError, OutputExistsError
        As :func:`check_run_dir`.
    """
    doomed = check_run_dir(plan)
    out = plan.out
    if doomed:
        doomed += [p for e in RUN_ENTRIES for p in out.glob(f".{e}.*.tmp")]
        for path in doomed:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        kept = sorted(p.name for p in out.iterdir())
        log.warning("overwrite: removed the earlier run's %s from %s%s", ", ".join(p.name for p in doomed), out,
                    f" (left alone: {', '.join(kept)})" if kept else "")
    out.mkdir(parents=True, exist_ok=True)


@contextmanager
def _terminate_on_sigterm(run_dir: Path, stage: list[str]) -> Iterator[None]:
    """Turn SIGTERM (and Lightning's ``SIGTERMException``, a ``SystemExit``) into :class:`TrainingTerminated`.

    ``stage[0]`` names what is running when the signal arrives. Outside the main thread no handler can be set; a
    Lightning ``SIGTERMException`` is still converted.
    """
    def handler(signum: int, frame: Any) -> None:
        raise TrainingTerminated(signum, stage[0], run_dir)

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, handler) if main else None
    try:
        yield
    except SystemExit as exc:
        if type(exc).__name__ != "SIGTERMException":
            raise
        raise TrainingTerminated(signal.SIGTERM, stage[0], run_dir) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def run_folds(task: FoldTask[Any], frame: pd.DataFrame, plan: FoldPlan, *, progress: Progress | None = None
              ) -> FoldRun:
    """Run a k-fold experiment: every fold, the out-of-fold decisions, the final model, the summary.

    Parameters
    ----------
    task : FoldTask
        What is fitted, predicted, saved and summarised.
    frame : DataFrame
        One row per sample with ``part``, ``fold`` and ``group`` (see the module docstring); row positions are the
        indices handed to the task.
    plan : FoldPlan
        Run directory, seeds, resume and final-model settings.
    progress : Progress, optional
        Each fit runs in its stage (``fold 0 (1/5)``, ``final model``); the task's own display uses it.

    Returns
    -------
    FoldRun
        On a non-zero DDP rank: empty predictions and no summary (nothing is written there).

    Raises
    ------
    ValueError
        Fewer than 2 folds, a resume into a run with another configuration or split, or finished folds that do not
        predict every development row exactly once.
    OutputExistsError
        The run directory is not empty and the plan neither resumes nor replaces the run (see :func:`check_run_dir`).
    TrainingTerminated
        SIGTERM arrived; the folds finished so far are kept.
    """
    run_dir = plan.out
    rank0 = is_rank_zero()
    if rank0:  # other DDP ranks start while rank 0 is running: the folder is rank 0's to check and clear
        prepare_run_dir(plan)
        attach_log_file(run_dir / "train.log")  # the command line's log capture, if any, now has its file
    run_dir.mkdir(parents=True, exist_ok=True)
    splits = frame[[c for c in SPLIT_COLUMNS if c in frame.columns]]
    if plan.resume:
        check_resume(run_dir, plan.config, splits, plan.resume_keys)
    splits_csv = splits.to_csv(index=False)
    key = run_key(splits_csv, plan.config, plan.resume_keys)
    stage = ["the start of the run"]
    with _terminate_on_sigterm(run_dir, stage):
        if rank0:
            atomic_write_text(run_dir / "config.yaml", plan.config_yaml)
            atomic_write_text(run_dir / "splits.csv", splits_csv)
        return _run_all(task, frame, plan, key, stage, progress)


def _run_all(task: FoldTask[Any], frame: pd.DataFrame, plan: FoldPlan, key: str, stage: list[str],
             progress: Progress | None) -> FoldRun:
    """The body of :func:`run_folds` once the run directory is ready; ``stage[0]`` tracks what is running."""
    run_dir = plan.out
    rank0 = is_rank_zero()
    cv_idx = np.flatnonzero(frame["part"].to_numpy() == "cv")
    folds = sorted(set(frame["fold"].iloc[cv_idx].astype(int)))
    if len(folds) < 2:
        raise DataError(f"need >= 2 cross-validation folds, found {folds}")
    fold_preds, fold_info, fold_models = [], {}, []
    shown = progress.stage if progress is not None else (lambda label: nullcontext())
    for i, k in enumerate(folds):
        stage[0] = f"fold {k}"
        with shown(f"fold {k} ({i + 1}/{len(folds)})"):
            pf, info, model = _run_fold(task, frame, plan, cv_idx, k, rank0, key)
        if model is not None:
            fold_models.append(model)
        if pf is not None and info is not None:
            fold_preds.append(pf)
            fold_info[k] = info
    stage[0] = "the final model"
    if not rank0:
        if plan.final_model == "refit":  # DDP: every rank must enter the refit's trainer.fit, or rank 0 waits forever
            tr, va = inner_validation(frame, cv_idx, plan.val_fraction, plan.seed + 99_999)
            task.fit(tr, va, run_dir / "final", plan.seed + 9_999)
        return FoldRun(run_dir, pd.DataFrame(), None)
    oof = pd.concat(fold_preds, ignore_index=True)
    oof["fold"] = oof["fold"].astype(int)
    _check_out_of_fold(frame, cv_idx, oof, run_dir)
    calibrated = task.finalise(oof, run_dir, folds)
    if calibrated is not None:  # e.g. re-scored by temperature-scaled fold models
        oof = calibrated
    held_out = np.flatnonzero(frame["part"].isin(list(HELD_OUT_PARTS)).to_numpy())
    parts = [(p, held_out[frame["part"].iloc[held_out].to_numpy() == p]) for p in HELD_OUT_PARTS]
    preds = [oof]
    final_info: dict[str, Any] = {}
    if plan.final_model == "refit":
        stage[0] = "the refit of the final model"
        fdir = run_dir / "final"
        tr, va = inner_validation(frame, cv_idx, plan.val_fraction, plan.seed + 99_999)
        with shown("final model (refit)"):
            model, final_info = task.fit(tr, va, fdir, plan.seed + 9_999)
        preds += [task.predict(model, idx, part, -1) for part, idx in parts if len(idx)]
        task.save(model, fdir / "bundle", train_idx=cv_idx, fold=None,
                  info={"refit_on": "all development (cv) data", **final_info})
        _drop_checkpoints(plan, fdir)
    else:
        preds += [task.predict_ensemble(fold_models, idx, part, -1) for part, idx in parts if len(idx)]
    stage[0] = "the writing of predictions.csv and summary.json"
    pred = pd.concat(preds, ignore_index=True)
    atomic_write_csv(pred, run_dir / "predictions.csv")
    summary = task.summarise(pred, fold_info, final_info)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary.to_dict(), indent=2))
    return FoldRun(run_dir, pred, summary)
