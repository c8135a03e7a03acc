"""The computations of ``nodescope evaluate``: every statistic of every model and split, as frozen results.

Nothing here draws, formats or writes: :func:`compute_evaluation` turns validated predictions and
:class:`~nodescope.evaluation._options.EvaluationOptions` into an :class:`EvaluationResults`, from which
``_tables``, ``_figures`` and ``_metrics_json`` build the tables, figures and ``metrics.json``. For each model the
operating threshold is chosen on its ``cv``/``val`` rows only and applied unchanged to every split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._calibration import (
    CalibrationMetrics,
    ReliabilityCurve,
    calibration_metrics,
    reliability_curve,
)
from nodescope.evaluation._comparisons import ComparisonResult, compare_models
from nodescope.evaluation._dca import DecisionCurve, decision_curve
from nodescope.evaluation._multiclass import MulticlassMetrics, multiclass_metrics
from nodescope.evaluation._options import EvaluationOptions, ThresholdRule
from nodescope.evaluation._predictions import Predictions
from nodescope.evaluation._readers import ReaderStudy, reader_study, validate_reads
from nodescope.evaluation._roc import (
    PrCurve,
    RocBand,
    RocCurve,
    average_precision,
    pr_curve,
    roc_auc,
    roc_band,
    roc_curve,
)
from nodescope.evaluation._run import HELD_OUT_SPLITS, TUNING_SPLITS, primary_split, split_order
from nodescope.evaluation._subgroups import subgroup_metrics
from nodescope.evaluation._threshold import BinaryMetrics, ThresholdChoice, binary_metrics, choose_threshold

__all__ = ["BinarySplitResult", "EvaluationResults", "ModelResult", "MulticlassSplitResult", "ReaderResult",
           "compute_evaluation"]


@dataclass(frozen=True, eq=False)
class BinarySplitResult:
    """One model on one split of a binary task, at the model's operating threshold.

    ``calibration`` is ``None`` when it could not be computed; ``calibration_note`` then (or when only the reliability
    curve failed) says why. The curves are ``None`` unless the split has both classes.
    """

    split: str
    threshold: float
    tuned_here: bool
    n: int
    n_patients: int
    n_positive: int
    prevalence: float
    clustered: bool
    auc: Estimate
    ap: Estimate
    metrics: BinaryMetrics
    calibration: CalibrationMetrics | None
    calibration_note: str | None
    reliability: ReliabilityCurve | None
    roc: RocCurve | None = None
    band: RocBand | None = None
    pr: PrCurve | None = None
    dca: DecisionCurve | None = None


@dataclass(frozen=True, eq=False)
class MulticlassSplitResult:
    """One model on one split of a multi-class task."""

    split: str
    n: int
    n_patients: int
    clustered: bool
    metrics: MulticlassMetrics


@dataclass(frozen=True, eq=False)
class ModelResult:
    """Every split of one model; binary tasks add the threshold, multi-class tasks one-vs-rest ROC curves."""

    name: str
    splits: tuple[BinarySplitResult, ...] | tuple[MulticlassSplitResult, ...]
    threshold: float | None = None
    choice: ThresholdChoice | None = None
    chosen_on: str | None = None
    subgroups: tuple[pd.DataFrame, ...] = ()
    ovr_split: str | None = None
    ovr_roc: dict[str, RocCurve] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ReaderResult:
    """The reader study and the model it was compared with."""

    study: ReaderStudy
    model: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class EvaluationResults:
    """All results of one evaluation, before they become tables, figures and ``metrics.json``."""

    preds: Predictions
    options: EvaluationOptions
    source: str | None
    sha256: str | None
    models: tuple[ModelResult, ...]
    thresholds: dict[str, float]
    comparison: ComparisonResult | None
    readers: ReaderResult | None
    notes: tuple[str, ...]


def _choose(model: str, tune: Predictions, rule: ThresholdRule) -> tuple[ThresholdChoice | None, float, str]:
    """Threshold for ``model`` from its cv/val rows; returns (choice, threshold, where)."""
    if len(tune) == 0:
        if rule.method == "fixed":
            return None, float(rule.target), "given"  # type: ignore[arg-type]
        raise StatisticsInputError(f"model {model!r} has no cv/val rows to choose a threshold on ({rule.spec!r}); "
                                   "the test set is never used for that. Give a fixed threshold, e.g. threshold='0.5'")
    choice = choose_threshold(tune.y_true(), tune.y_score(), method=rule.method,  # type: ignore[arg-type]
                              target=rule.target)
    return choice, choice.threshold, "+".join(tune.values("split"))


def _binary_split(split: str, sub: Predictions, threshold: float, opts: EvaluationOptions) -> BinarySplitResult:
    alpha, n_boot, seed = opts.alpha, opts.n_boot, opts.seed
    y, s, g = sub.y_true(), sub.y_score(), sub.groups()
    clustered = len(set(g)) < len(g)
    groups = g if clustered else None
    auc = (roc_auc(y, s, method="bootstrap", n_boot=n_boot, groups=g, alpha=alpha, seed=seed) if clustered
           else roc_auc(y, s, method="delong", alpha=alpha))
    ap = average_precision(y, s, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed)
    bm = binary_metrics(y, s, threshold=threshold, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed)
    both = 0 < y.sum() < len(y)
    roc = band = pr = dca = None
    if both:
        roc, pr = roc_curve(y, s), pr_curve(y, s)
        band = roc_band(y, s, n_boot=n_boot, groups=groups, alpha=alpha, seed=seed)
    cal = rel = note = None
    try:
        # held-out predictions come from a model fitted elsewhere: Hosmer-Lemeshow on g df, not g - 2
        cal = calibration_metrics(y, s, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed,
                                  hl_fitted_on_sample=split not in HELD_OUT_SPLITS)
        rel = reliability_curve(y, s, n_boot=min(n_boot, 200), alpha=alpha, seed=seed)
    except ValueError as exc:
        note = f"undefined: {exc}"
    if both:
        dca = decision_curve(y, s, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed)
    return BinarySplitResult(split=split, threshold=threshold, tuned_here=split in TUNING_SPLITS, n=len(y),
                             n_patients=len(set(g)), n_positive=int(y.sum()), prevalence=float(y.mean()),
                             clustered=clustered, auc=auc, ap=ap, metrics=bm, calibration=cal, calibration_note=note,
                             reliability=rel, roc=roc, band=band, pr=pr, dca=dca)


def _binary_model(name: str, p: Predictions, choice: ThresholdChoice | None, thr: float, where: str,
                  opts: EvaluationOptions) -> ModelResult:
    splits = tuple(_binary_split(split, p.where(split=split), thr, opts) for split in split_order(p.values("split")))
    subgroups: tuple[pd.DataFrame, ...] = ()
    if opts.by:
        frame = p.frame.assign(y=p.y_true(), score=p.y_score())
        sg = subgroup_metrics(frame, list(opts.by), threshold=thr, alpha=opts.alpha, n_boot=opts.n_boot,
                              seed=opts.seed)
        sg.insert(0, "model", name)
        subgroups = (sg,)
    return ModelResult(name=name, splits=splits, threshold=thr, choice=choice, chosen_on=where, subgroups=subgroups)


def _multiclass_model(name: str, p: Predictions, opts: EvaluationOptions) -> ModelResult:
    classes = p.classes
    splits = []
    for split in split_order(p.values("split")):
        sub = p.where(split=split)
        g = sub.groups()
        clustered = len(set(g)) < len(g)
        mm = multiclass_metrics(sub.y_true(), sub.y_score(), classes=classes, alpha=opts.alpha, n_boot=opts.n_boot,
                                groups=g if clustered else None, seed=opts.seed)
        splits.append(MulticlassSplitResult(split=split, n=len(sub), n_patients=len(set(g)), clustered=clustered,
                                            metrics=mm))
    prim = primary_split([s.split for s in splits])
    sub = p.where(split=prim)
    yk, prob = sub.y_true(), sub.y_score()
    ovr = {c: roc_curve((yk == k).astype(int), prob[:, k]) for k, c in enumerate(classes)
           if 0 < (yk == k).sum() < len(yk)}
    subgroups = []
    for k, c in enumerate(classes if opts.by else ()):
        frame = p.frame.assign(y=(p.y_true() == k).astype(int), score=p.y_score()[:, k])
        sg = subgroup_metrics(frame, list(opts.by), metrics=["auc"], alpha=opts.alpha, n_boot=opts.n_boot,
                              seed=opts.seed)
        sg["metric"] = f"auc_{c}"
        sg.insert(0, "model", name)
        subgroups.append(sg)
    return ModelResult(name=name, splits=tuple(splits), subgroups=tuple(subgroups), ovr_split=prim, ovr_roc=ovr)


def _readers(preds: Predictions, reads: pd.DataFrame, reader_model: str, threshold: float, alpha: float,
             reads_source: str) -> ReaderResult:
    """Reader study on the held-out patients of ``reader_model`` (all its patients when it has none)."""
    notes = []
    rd = validate_reads(reads, positive=preds.positive, classes=preds.classes, source=reads_source)
    p = preds.where(model=reader_model)
    held = p.where(split=list(HELD_OUT_SPLITS))
    if len(held) == 0:
        notes.append("readers: the model has no test/external rows; compared on all its rows")
        held = p
    pf = held.frame.assign(_y=held.y_true(), _s=held.y_score())
    per_patient = pf.groupby("patient_id").agg(_y_min=("_y", "min"), _y_max=("_y", "max"), _s=("_s", "mean"),
                                               _n=("_s", "size"))
    bad = per_patient.index[per_patient["_y_min"] != per_patient["_y_max"]].tolist()
    if bad:
        raise StatisticsInputError(f"model {reader_model!r}: patients {bad[:5]} have rows with different y_true; "
                                   "reader studies are per patient")
    if (per_patient["_n"] > 1).any():
        notes.append("readers: patients with several prediction rows are scored by the mean probability")
    study = reader_study(rd, per_patient["_y_min"], model_score=per_patient["_s"], threshold=threshold,
                         model_name=reader_model, alpha=alpha)
    return ReaderResult(study=study, model=reader_model, notes=tuple(notes))


def compute_evaluation(preds: Predictions, opts: EvaluationOptions, *, reads: pd.DataFrame | None = None,
                       reads_source: str = "reads table", source: str | None = None,
                       sha256: str | None = None) -> EvaluationResults:
    """Compute every statistic of ``preds`` under ``opts`` (validated by :func:`evaluation_options`).

    Parameters
    ----------
    preds : Predictions
        The validated predictions.
    opts : EvaluationOptions
        From :func:`~nodescope.evaluation._options.evaluation_options` (with ``readers=reads is not None``).
    reads : DataFrame, optional
        A reader-study reads table (binary tasks).
    reads_source : str
        How the reads table is named in error messages.
    source, sha256 : str, optional
        The predictions file and its SHA-256, recorded with the results.

    Returns
    -------
    EvaluationResults
    """
    models: list[ModelResult] = []
    thresholds: dict[str, float] = {}
    # with a comparison every model's threshold is needed, so every model is tuned (and must be tunable)
    for name in preds.values("model") if opts.compare else opts.models:
        p = preds.where(model=name)
        if preds.task == "binary":
            choice, thr, where = _choose(name, p.where(split=list(TUNING_SPLITS)), opts.rule)
            thresholds[name] = thr
            if name in opts.models:
                models.append(_binary_model(name, p, choice, thr, where, opts))
        elif name in opts.models:
            models.append(_multiclass_model(name, p, opts))
    comparison = compare_models(preds, opts.compare, thresholds, alpha=opts.alpha, n_boot=opts.n_boot,
                                seed=opts.seed) if opts.compare else None
    readers = None
    if reads is not None and opts.reader_model is not None:
        readers = _readers(preds, reads, opts.reader_model, thresholds[opts.reader_model], opts.alpha, reads_source)
    notes = (*(comparison.notes if comparison else ()), *(readers.notes if readers else ()))
    return EvaluationResults(preds=preds, options=opts, source=source, sha256=sha256, models=tuple(models),
                             thresholds=thresholds, comparison=comparison, readers=readers, notes=notes)
