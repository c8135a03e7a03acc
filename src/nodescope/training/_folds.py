"""Generic k-fold machinery: fold loop, resume, refit of a final model, DDP ranks, run directory, saved split.

What is trained, predicted, saved and summarised is a :class:`FoldTask`'s business (the classifier's is
:class:`nodescope.training._classify.ClassifyTask`); this module knows nothing of classes, probabilities or
thresholds. Run directory (``FoldPlan.out``)::

    config.yaml         the resolved configuration (``FoldPlan.config_yaml``)
    splits.csv          one row per sample: the columns of SPLIT_COLUMNS present in the frame
    folds/fold_<k>/     the fit's working folder (``checkpoints/`` removed once the fold is done unless
                        ``keep_checkpoints``), bundle/ (``FoldTask.save``), predictions.csv, DONE (the fit info)
    final/              the refit on all development data (``final_model="refit"``), bundle/
    predictions.csv     out-of-fold rows (split "cv") + test/external rows (fold -1) of the final model, or of the
                        fold models together (``FoldTask.predict_ensemble``) without a refit
    summary.json        ``FoldTask.summarise(...).to_dict()``

The frame (one row per sample) needs ``part`` (``cv``/``test``/``external``), ``fold`` (cv rows) and ``group`` (the
inner validation split keeps groups together; it is stratified by ``label``). Seeds: fold k is fitted with
``seed + k`` after an inner validation split drawn with ``seed + 1000 (k + 1)``; the refit with ``seed + 9999``
after one drawn with ``seed + 99999``.

Distributed data parallel: every rank runs every fit (each ``trainer.fit`` needs all ranks); only the rank with
``LOCAL_RANK`` = ``NODE_RANK`` = 0 predicts and writes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import pandas as pd

from nodescope.errors import ConfigError, DataError

__all__ = ["SPLIT_COLUMNS", "FoldPlan", "FoldRun", "FoldTask", "RunSummaryLike", "check_resume", "inner_validation",
           "is_rank_zero", "run_folds"]

log = logging.getLogger(__name__)

#: Columns of the frame written to ``splits.csv`` (those present, in this order).
SPLIT_COLUMNS = ("patient_id", "group", "image", "label", "part", "fold")
#: The parts scored by the final model (or the fold models) besides the out-of-fold ``cv`` rows, in output order.
HELD_OUT_PARTS = ("test", "external")

M = TypeVar("M")


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

    def finalise(self, oof: pd.DataFrame, run_dir: Path, folds: Sequence[int]) -> None:
        """Decisions made on the pooled out-of-fold rows (e.g. an operating threshold), stored in the fold models."""
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

    @classmethod
    def from_config(cls, cfg: Any, resume_keys: Sequence[str]) -> FoldPlan:
        """The plan of a pydantic configuration with fields ``out``, ``seed``, ``val_fraction``, ``final_model``,
        ``resume``, ``keep_checkpoints`` and a ``to_yaml()`` method (as :class:`~nodescope.training.TrainConfig`)."""
        return cls(Path(cfg.out), cfg.seed, cfg.val_fraction, cfg.final_model, cfg.resume, cfg.keep_checkpoints,
                   cfg.to_yaml(), cfg.model_dump(mode="json"), tuple(resume_keys))


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


def _run_fold(task: FoldTask[Any], frame: pd.DataFrame, plan: FoldPlan, cv_idx: np.ndarray, k: int,
              rank0: bool) -> tuple[pd.DataFrame | None, dict[str, Any] | None, Any]:
    """Fit (or reuse) fold ``k``; returns its predictions and fit info (None on other ranks) and its model."""
    fdir = plan.out / "folds" / f"fold_{k}"
    fdir.mkdir(parents=True, exist_ok=True)
    in_fold = frame["fold"].iloc[cv_idx].to_numpy() == k
    done = fdir / "DONE"
    if plan.resume and done.is_file() and (fdir / "predictions.csv").is_file():
        log.info("fold %d already complete: reusing its predictions", k)
        model = task.load(fdir / "bundle") if plan.final_model == "none" else None
        return task.read_predictions(fdir / "predictions.csv"), json.loads(done.read_text()), model
    tr, va = inner_validation(frame, cv_idx[~in_fold], plan.val_fraction, plan.seed + 1000 * (k + 1))
    model, info = task.fit(tr, va, fdir, plan.seed + k)
    if not rank0:
        return None, None, model
    pf = task.predict(model, cv_idx[in_fold], "cv", k)
    pf.to_csv(fdir / "predictions.csv", index=False)
    task.save(model, fdir / "bundle", train_idx=tr, fold=k, info={"fold": k, **info})
    done.write_text(json.dumps(info))
    _drop_checkpoints(plan, fdir)
    return pf, info, model


def run_folds(task: FoldTask[Any], frame: pd.DataFrame, plan: FoldPlan) -> FoldRun:
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

    Returns
    -------
    FoldRun
        On a non-zero DDP rank: empty predictions and no summary (nothing is written there).

    Raises
    ------
    ValueError
        Fewer than 2 folds, or a resume into a run with another configuration or split.
    """
    run_dir = plan.out
    run_dir.mkdir(parents=True, exist_ok=True)
    rank0 = is_rank_zero()
    splits = frame[[c for c in SPLIT_COLUMNS if c in frame.columns]]
    if plan.resume:
        check_resume(run_dir, plan.config, splits, plan.resume_keys)
    if rank0:
        (run_dir / "config.yaml").write_text(plan.config_yaml)
        splits.to_csv(run_dir / "splits.csv", index=False)
    cv_idx = np.flatnonzero(frame["part"].to_numpy() == "cv")
    folds = sorted(set(frame["fold"].iloc[cv_idx].astype(int)))
    if len(folds) < 2:
        raise DataError(f"need >= 2 cross-validation folds, found {folds}")
    fold_preds, fold_info, fold_models = [], {}, []
    for k in folds:
        pf, info, model = _run_fold(task, frame, plan, cv_idx, k, rank0)
        if model is not None:
            fold_models.append(model)
        if pf is not None and info is not None:
            fold_preds.append(pf)
            fold_info[k] = info
    if not rank0:
        if plan.final_model == "refit":  # DDP: every rank must enter the refit's trainer.fit, or rank 0 waits forever
            tr, va = inner_validation(frame, cv_idx, plan.val_fraction, plan.seed + 99_999)
            task.fit(tr, va, run_dir / "final", plan.seed + 9_999)
        return FoldRun(run_dir, pd.DataFrame(), None)
    oof = pd.concat(fold_preds, ignore_index=True)
    oof["fold"] = oof["fold"].astype(int)
    task.finalise(oof, run_dir, folds)
    held_out = np.flatnonzero(frame["part"].isin(list(HELD_OUT_PARTS)).to_numpy())
    parts = [(p, held_out[frame["part"].iloc[held_out].to_numpy() == p]) for p in HELD_OUT_PARTS]
    preds = [oof]
    final_info: dict[str, Any] = {}
    if plan.final_model == "refit":
        fdir = run_dir / "final"
        tr, va = inner_validation(frame, cv_idx, plan.val_fraction, plan.seed + 99_999)
        model, final_info = task.fit(tr, va, fdir, plan.seed + 9_999)
        preds += [task.predict(model, idx, part, -1) for part, idx in parts if len(idx)]
        task.save(model, fdir / "bundle", train_idx=cv_idx, fold=None,
                  info={"refit_on": "all development (cv) data", **final_info})
        _drop_checkpoints(plan, fdir)
    else:
        preds += [task.predict_ensemble(fold_models, idx, part, -1) for part, idx in parts if len(idx)]
    pred = pd.concat(preds, ignore_index=True)
    pred.to_csv(run_dir / "predictions.csv", index=False)
    summary = task.summarise(pred, fold_info, final_info)
    (run_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    return FoldRun(run_dir, pred, summary)
