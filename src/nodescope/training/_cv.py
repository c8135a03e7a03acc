"""Patient-level cross-validation runner behind ``nodescope train``.

Run directory (``config.out``)::

    config.yaml         the resolved configuration
    splits.csv          one row per sample: group, label, part, fold (+ image)
    folds/fold_<k>/     logs/ (CSV; tensorboard/ with ``tensorboard``), checkpoints/ (last.ckpt, best; removed
                        once the fold is done unless ``keep_checkpoints``), bundle/, predictions.csv, DONE
    final/              the model refitted on all development data (bundle/ with the operating threshold)
    predictions.csv     out-of-fold rows (split "cv") + test/external rows scored by the final model
    summary.json        AUCs (pooled out-of-fold, per fold, test), threshold, counts, dropped rows
    train.log           Python logging and warnings of the run (nodescope's and Lightning's), when it runs inside
                        a :class:`nodescope._logs.LogCapture` (the command line); appended to on resume

Per fold k: the training groups are those of the other folds; ``val_fraction`` of them (stratified, by group) are
held out for early stopping and checkpoint choice; fold k is predicted by the best checkpoint only.
The operating threshold (binary tasks) maximises Youden's J = sensitivity + specificity - 1 on the pooled
out-of-fold predictions (Youden 1950, Cancer 3:32-35) and is stored, unchanged, for test/external data.

The machinery (folds, resume, refit, DDP ranks, this layout) is :func:`nodescope.training._folds.run_folds`; the
classifier it trains is :class:`nodescope.training._classify.ClassifyTask`; the summary is a
:class:`nodescope.training._summary.RunSummary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nodescope._progress import Progress
from nodescope.training._classify import ClassifyTask
from nodescope.training._config import TrainConfig, check_accelerator
from nodescope.training._folds import FoldPlan, FoldRun, check_run_dir, is_rank_zero, run_folds
from nodescope.training._summary import RunSummary, auc_summary

__all__ = ["RESUME_KEYS", "CVResult", "auc_summary", "run_cv"]


@dataclass(frozen=True)
class CVResult(FoldRun):
    """What a run produced (see :class:`~nodescope.training._folds.FoldRun`); ``run_summary`` is a
    :class:`~nodescope.training._summary.RunSummary` and ``summary`` the dict of ``summary.json``."""

    run_summary: RunSummary | None


#: Config fields a resumed run must share with the run it continues (data, split, network, and every step that
#: decides the pixels the network sees: the input spec); others (epochs, lr, patience, augmentation, ...) may change.
RESUME_KEYS = ("manifest", "external", "classes", "positive", "group_col", "modality", "modalities", "fusion",
               "unit_cols", "folds", "test_size", "splits_file", "val_fraction", "seed", "backbone", "weights", "head",
               "hidden", "channels", "image_size", "roi", "roi_margin", "context_scale", "scan_crop", "grey",
               "intensity", "marks")


def run_cv(cfg: TrainConfig, *, progress: Progress | None = None) -> CVResult:
    """Run the whole cross-validation experiment described by ``cfg`` (see the module docstring).

    Parameters
    ----------
    cfg : TrainConfig
    progress : Progress, optional
        Shows each fold's fit (epoch, losses, ETA; see :mod:`nodescope._progress`); None shows nothing.

    Returns
    -------
    CVResult

    Raises
    ------
    DataError, ConfigError
        Invalid data or split, fewer than 2 folds, pretraining overlap (unless allowed), an accelerator this
        machine does not have, or a resume into a run with other settings.
    OutputExistsError
        ``cfg.out`` is not empty and neither ``resume`` nor ``overwrite`` is set, or ``overwrite`` would delete what
        is not the run's (checked before the data are loaded).
    TrainingTerminated
        SIGTERM arrived during training; finished folds are kept for ``resume``.
    """
    plan = FoldPlan.from_config(cfg, RESUME_KEYS)
    if is_rank_zero():
        check_run_dir(plan)  # refuse early, before the images are loaded
    check_accelerator(cfg.accelerator)
    task = ClassifyTask.from_config(cfg, progress)  # reads and checks the data: a refusal leaves no run folder behind
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    run = run_folds(task, task.samples.frame, plan, progress=progress)
    summary = run.run_summary if isinstance(run.run_summary, RunSummary) else None
    return CVResult(run.run_dir, run.predictions, summary)
