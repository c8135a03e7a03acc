"""The classifier run's summary (``summary.json``) as typed, frozen objects, and the quick AUC table behind it.

:class:`RunSummary` is what ``nodescope train`` prints (:meth:`RunSummary.render`) and what ``summary.json`` holds
(:meth:`RunSummary.to_dict`, the keys and values the run wrote before the summary was typed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd

__all__ = ["OperatingThreshold", "RunSummary", "SplitSummary", "ThresholdResult", "auc_summary", "split_summaries"]


@dataclass(frozen=True)
class OperatingThreshold:
    """The operating threshold of a binary task: ``p_<positive> >= value`` is positive.

    Attributes
    ----------
    value : float
        The threshold.
    method : str
        How it was chosen (``"youden"``).
    chosen_on : str
        On which rows (``"cv (pooled out-of-fold)"``).
    rule : str
        The decision rule in words (``"p_malignant >= value"``).
    """

    value: float
    method: str
    chosen_on: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """The dict stored in ``summary.json`` and in the bundles' ``model.json``."""
        return {"value": self.value, "method": self.method, "chosen_on": self.chosen_on, "rule": self.rule}


@dataclass(frozen=True)
class ThresholdResult:
    """Sensitivity and specificity of one split at the operating threshold.

    Attributes
    ----------
    applied : str
        ``"in-sample: ..."`` on the cv rows the threshold was tuned on (optimistic), else ``"chosen on cv rows, ..."``.
    sensitivity, specificity : float or None
        None when the split has no positive (negative) row.
    """

    applied: str
    sensitivity: float | None
    specificity: float | None


@dataclass(frozen=True)
class SplitSummary:
    """The quick discrimination summary of one split (``cv``, ``test``, ``external``).

    Attributes
    ----------
    n : int
        Rows.
    patients : int
        Distinct ``patient_id``.
    auc : float or None
        None when a class is missing.
    auc_per_fold : mapping of int to float or None, or None
        ``cv`` only: the AUC of each fold.
    at_threshold : ThresholdResult or None
        Binary tasks with a threshold only.
    """

    n: int
    patients: int
    auc: float | None
    auc_per_fold: Mapping[int, float | None] | None = None
    at_threshold: ThresholdResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """The split's record in ``summary.json`` (per-fold keys as int; JSON turns them into text)."""
        out: dict[str, Any] = {"n": self.n, "patients": self.patients, "auc": self.auc}
        if self.auc_per_fold is not None:
            out["auc_per_fold"] = dict(self.auc_per_fold)
        if self.at_threshold is not None:
            out["threshold_applied"] = self.at_threshold.applied
            out["sensitivity"] = self.at_threshold.sensitivity
            out["specificity"] = self.at_threshold.specificity
        return out


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


@dataclass(frozen=True)
class RunSummary:
    """What a classifier cross-validation run found, as written to ``summary.json``.

    Attributes
    ----------
    metric : str
        ``"AUC"`` (binary) or ``"macro one-vs-rest AUC"``.
    splits : mapping of str to SplitSummary
        In the order of the predictions table.
    classes : tuple of str
    positive : str or None
    threshold : OperatingThreshold or None
        Binary tasks: chosen on the pooled out-of-fold rows.
    folds : mapping of int to mapping
        Each fold's fit information (epochs run, checkpoint used, sizes, ...).
    final : mapping
        The refitted model's fit information; empty without a refit.
    dropped_rows : mapping of str to int
        Rows left out while reading the data, by reason.
    pretrain_overlap : str or None
        The warning given when pretraining images overlap this experiment's.
    synthetic_data : bool
    calibration : mapping or None
        ``calibrate="temperature"``: the fitted temperature and the out-of-fold log loss before and after
        (:meth:`nodescope.training.TemperatureFit.to_dict`).
    """

    metric: str
    splits: Mapping[str, SplitSummary]
    classes: tuple[str, ...]
    positive: str | None
    threshold: OperatingThreshold | None
    folds: Mapping[int, Mapping[str, Any]]
    final: Mapping[str, Any]
    dropped_rows: Mapping[str, int]
    pretrain_overlap: str | None
    synthetic_data: bool
    calibration: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("splits", "folds", "final", "dropped_rows"):  # read-only views: the summary is frozen
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def to_dict(self) -> dict[str, Any]:
        """The content of ``summary.json`` (keys in the file's order; fold keys as text)."""
        return {"metric": self.metric, "splits": {k: s.to_dict() for k, s in self.splits.items()},
                "classes": list(self.classes), "positive": self.positive,
                "threshold": self.threshold.to_dict() if self.threshold else None,
                "folds": {str(k): dict(v) for k, v in self.folds.items()}, "final": dict(self.final),
                "dropped_rows": dict(self.dropped_rows), "pretrain_overlap": self.pretrain_overlap,
                "synthetic_data": self.synthetic_data,
                **({"calibration": dict(self.calibration)} if self.calibration else {})}

    def render(self) -> str:
        """The lines ``nodescope train`` prints: one per split, then the operating threshold (binary tasks)."""
        lines = []
        for split, rec in self.splits.items():
            extra = ""
            if rec.auc_per_fold is not None:
                extra = "  per fold: " + ", ".join(_fmt(v) for v in rec.auc_per_fold.values())
            lines.append(f"  {split}: {self.metric} {_fmt(rec.auc)} (n={rec.n}, patients={rec.patients}){extra}")
        if self.threshold:
            lines.append(f"  operating threshold (Youden, out-of-fold): {self.threshold.value:.4f}")
        if self.calibration:
            c = self.calibration
            lines.append(f"  temperature scaling (out-of-fold): T = {c['temperature']:.3f}, log loss "
                         f"{c['log_loss_before']:.4f} -> {c['log_loss_after']:.4f}")
        return "\n".join(lines)


def split_summaries(pred: pd.DataFrame, classes: tuple[str, ...], positive: str | None,
                    threshold: float | None = None) -> tuple[str, dict[str, SplitSummary]]:
    """The metric's name and the :class:`SplitSummary` of each split of a predictions table (see :func:`auc_summary`).

    Parameters
    ----------
    pred : DataFrame
        A predictions table (``patient_id``, ``y_true``, ``p_<class>``, ``split``, ``fold``).
    classes : tuple of str
    positive : str or None
        Binary tasks: the AUC of ``p_<positive>``; otherwise the macro one-vs-rest AUC.
    threshold : float, optional
        Binary tasks: add sensitivity and specificity at ``p_<positive> >= threshold``.

    Returns
    -------
    tuple of (str, dict of str to SplitSummary)
    """
    from sklearn.metrics import roc_auc_score

    from nodescope.evaluation import roc_auc

    def auc(d: pd.DataFrame) -> float | None:
        y = d["y_true"].astype(str).to_numpy()
        if len(set(y)) < 2:
            return None
        if positive is not None:
            return roc_auc((y == positive).astype(int), d[f"p_{positive}"].to_numpy(float)).estimate
        present = [c for c in classes if c in set(y)]
        if len(present) < len(classes):
            return None
        return float(roc_auc_score(y, d[[f"p_{c}" for c in classes]].to_numpy(float), multi_class="ovr",
                                   average="macro", labels=list(classes)))

    splits: dict[str, SplitSummary] = {}
    for split, d in pred.groupby("split", sort=False):
        per_fold = {int(k): auc(g) for k, g in d.groupby("fold")} if split == "cv" else None
        at = None
        if positive is not None and threshold is not None:
            # the threshold was tuned on the pooled cv rows: their sensitivity/specificity are in-sample (optimistic)
            y = d["y_true"].astype(str).to_numpy() == positive
            yhat = d[f"p_{positive}"].to_numpy(float) >= threshold
            at = ThresholdResult(
                "in-sample: tuned on these same rows" if split == "cv" else "chosen on cv rows, applied unchanged",
                float((yhat & y).sum() / y.sum()) if y.sum() else None,
                float((~yhat & ~y).sum() / (~y).sum()) if (~y).sum() else None)
        splits[str(split)] = SplitSummary(len(d), int(d["patient_id"].nunique()), auc(d), per_fold, at)
    return ("AUC" if positive else "macro one-vs-rest AUC"), splits


def auc_summary(pred: pd.DataFrame, classes: tuple[str, ...], positive: str | None,
                threshold: float | None = None) -> dict[str, Any]:
    """AUC of each split (binary: ``p_<positive>``; multi-class: macro one-vs-rest) and, for ``cv``, each fold.

    A quick summary for the run log; ``nodescope evaluate`` computes the full statistics with CIs.

    Parameters
    ----------
    pred : DataFrame
        A predictions table.
    classes : tuple of str
    positive : str or None
    threshold : float, optional
        Binary tasks: add ``threshold_applied``, ``sensitivity`` and ``specificity`` per split.

    Returns
    -------
    dict
        ``{"metric": ..., "splits": {split: {"n", "patients", "auc", ...}}}``.
    """
    metric, splits = split_summaries(pred, classes, positive, threshold)
    return {"metric": metric, "splits": {k: s.to_dict() for k, s in splits.items()}}
