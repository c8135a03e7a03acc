"""Multi-class evaluation (e.g. benign / lymphoma / metastatic): one-vs-rest ROC, confusion matrix, F1, MCC, kappa.

The predicted class is the arg-max of the probabilities (ties go to the first class in ``classes`` order).
Per-class AUCs are one-vs-rest (class ``k`` positive, all others negative) with DeLong intervals. The macro AUC is
the unweighted mean of the one-vs-rest AUCs (sklearn ``roc_auc_score(multi_class="ovr", average="macro")``); the
micro AUC pools all ``N x K`` (one-hot label, probability) pairs into one binary ROC (sklearn ``average="micro"``).
Multi-class MCC is Gorodkin's ``R_K`` (sklearn ``matthews_corrcoef``); Cohen's kappa is unweighted
(sklearn ``cohen_kappa_score``). Macro F1 leaves out classes whose F1 is 0/0 (no true and no predicted case).
Intervals for macro/micro AUC, macro F1, MCC and kappa are percentile bootstrap intervals (stratified by class,
or clustered by ``groups``); for per-class recall and precision, Wilson intervals.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn import metrics as skm

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._bootstrap import (
    SeedLike,
    bootstrap_note,
    make_rng,
    multiclass_weights,
    percentile_interval,
    weighted_auc,
)
from nodescope.evaluation._proportions import proportion_ci
from nodescope.evaluation._roc import roc_auc
from nodescope.evaluation._validation import as_groups, check_alpha, check_n_boot

__all__ = ["MulticlassMetrics", "multiclass_metrics"]


@dataclass(frozen=True)
class MulticlassMetrics:
    """Multi-class results.

    Attributes
    ----------
    classes : tuple of str
        Column order of the probabilities.
    auc_per_class : tuple of Estimate
        One-vs-rest AUCs with DeLong intervals (``name = "auc_<class>"``).
    macro_auc, micro_auc : Estimate
    confusion : DataFrame
        Counts; rows = true class, columns = predicted class.
    confusion_normalized : DataFrame
        Row-normalised (each row sums to 1; a row with no case is ``nan``).
    per_class : DataFrame
        ``class``, ``support``, ``precision`` (+ Wilson ``precision_low``/``high``), ``recall`` (+ bounds), ``f1``.
    accuracy : Estimate
        Wilson interval.
    macro_f1, mcc, kappa : Estimate
        Bootstrap intervals.
    """

    classes: tuple[str, ...]
    auc_per_class: tuple[Estimate, ...]
    macro_auc: Estimate
    micro_auc: Estimate
    confusion: pd.DataFrame
    confusion_normalized: pd.DataFrame
    per_class: pd.DataFrame
    accuracy: Estimate
    macro_f1: Estimate
    mcc: Estimate
    kappa: Estimate

    def summary_frame(self) -> pd.DataFrame:
        """One row per scalar estimate."""
        ests = [*self.auc_per_class, self.macro_auc, self.micro_auc, self.accuracy, self.macro_f1, self.mcc, self.kappa]
        return pd.concat([e.summary_frame() for e in ests], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "classes": list(self.classes),
            "estimates": {e.name: e.to_dict() for e in (*self.auc_per_class, self.macro_auc, self.micro_auc,
                                                         self.accuracy, self.macro_f1, self.mcc, self.kappa)},
            "confusion": self.confusion.to_numpy().tolist(),
            "per_class": self.per_class.to_dict(orient="records"),
        }


def _cm_metrics(cm: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """Macro F1, MCC (Gorodkin) and kappa from confusion matrices of shape (B, K, K)."""
    t = cm.sum(axis=2)  # true totals
    p = cm.sum(axis=1)  # predicted totals
    diag = np.diagonal(cm, axis1=1, axis2=2)
    s = t.sum(axis=1)
    c = diag.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(t + p > 0, 2 * diag / np.where(t + p > 0, t + p, 1), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-nan rows: "Mean of empty slice" -> nan
            macro_f1 = np.nanmean(f1, axis=1)
        tp_ = np.sum(t * p, axis=1)
        den = np.sqrt((s**2 - np.sum(p * p, axis=1)) * (s**2 - np.sum(t * t, axis=1)))
        mcc = np.where(den > 0, (c * s - tp_) / np.where(den > 0, den, 1), np.nan)
        pe = tp_ / s**2
        kappa = np.where(pe < 1, (c / s - pe) / np.where(pe < 1, 1 - pe, 1), np.nan)
    return {"macro_f1": macro_f1, "mcc": mcc, "kappa": kappa}


def multiclass_metrics(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    classes: Sequence[str] | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    groups: ArrayLike | None = None,
    seed: SeedLike = 0,
) -> MulticlassMetrics:
    """Multi-class discrimination and agreement with confidence intervals.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Class names (members of ``classes``) or integer indices ``0..K-1`` into the probability columns.
    y_prob : array-like, shape (N, K)
        Class probabilities (columns in ``classes`` order).
    classes : sequence of str, optional
        Names of the ``K`` columns; default ``"0", ..., "K-1"``.
    alpha : float, default 0.05
    n_boot : int, default 2000
    groups : array-like, optional
        Patient ids (cluster bootstrap; otherwise stratified by class).
    seed : int, Generator or None, default 0

    Raises
    ------
    ValueError
        Shapes disagree, a label is not a known class, fewer than 2 classes.
    """
    prob = np.asarray(y_prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[1] < 2:
        raise StatisticsInputError(f"y_prob must have shape (N, K) with K >= 2; got {prob.shape}")
    n, k = prob.shape
    if not np.isfinite(prob).all():
        raise StatisticsInputError("y_prob must be finite")
    names = tuple(str(c) for c in classes) if classes is not None else tuple(str(i) for i in range(k))
    if len(names) != k:
        raise StatisticsInputError(f"classes has {len(names)} names but y_prob has {k} columns")
    yt = np.asarray(y_true)
    if yt.shape != (n,):
        raise StatisticsInputError(f"y_true must have shape ({n},); got {yt.shape}")
    if yt.dtype.kind in "iu":
        bad = (yt < 0) | (yt >= k)
        if bad.any():
            raise StatisticsInputError(f"y_true indices must be in 0..{k - 1}; got {np.unique(yt[bad])[:5].tolist()}")
        codes = yt.astype(np.intp)
    else:
        lookup = {c: i for i, c in enumerate(names)}
        unknown = sorted({str(v) for v in yt} - set(lookup))
        if unknown:
            raise StatisticsInputError(f"y_true has values that are not in classes {names}: {unknown[:5]}")
        codes = np.array([lookup[str(v)] for v in yt], dtype=np.intp)
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot, allow_zero=True)
    pred = np.argmax(prob, axis=1)
    onehot = np.eye(k, dtype=bool)[codes]

    aucs = []
    for j, c in enumerate(names):
        e = roc_auc(onehot[:, j], prob[:, j], method="delong", alpha=alpha)
        aucs.append(Estimate(f"auc_{c}", e.estimate, e.ci_low, e.ci_high, e.method, alpha, e.n, e.note, e.extra))

    g = as_groups(groups, n)
    w = multiclass_weights(codes, n_boot=n_boot, rng=make_rng(seed), groups=g, stratified=True)
    all_w = np.vstack([np.ones((1, n), dtype=np.int32), w])
    per_k = np.column_stack([weighted_auc(onehot[:, j], prob[:, j], all_w) for j in range(k)])
    macro = per_k.mean(axis=1)  # nan when a class is absent in a replicate
    micro = weighted_auc(onehot.ravel(), prob.ravel(), np.repeat(all_w, k, axis=1))

    pair = np.zeros((n, k * k))
    pair[np.arange(n), codes * k + pred] = 1.0
    cms = (all_w.astype(np.float64) @ pair).reshape(-1, k, k)
    cm_stats = _cm_metrics(cms)

    def boot_est(name: str, vals: NDArray[np.float64], undefined: str) -> Estimate:
        point = float(vals[0])
        lo, hi, used = percentile_interval(vals[1:], alpha)
        if not math.isfinite(point):
            return Estimate(name, math.nan, math.nan, math.nan, "bootstrap-percentile", alpha, n, undefined, {})
        return Estimate(name, point, lo, hi, "bootstrap-percentile", alpha, n, bootstrap_note(used, n_boot),
                        {"n_boot": n_boot, "n_boot_used": used, "clustered": g is not None})

    absent = [names[j] for j in range(k) if not onehot[:, j].any() or onehot[:, j].all()]
    auc_note = f"undefined: class(es) {absent} absent or alone" if absent else ""
    cm = skm.confusion_matrix(codes, pred, labels=list(range(k)))
    with np.errstate(invalid="ignore", divide="ignore"):
        cm_norm = cm / cm.sum(axis=1, keepdims=True)
    rows = []
    for j, c in enumerate(names):
        rec = proportion_ci(int(cm[j, j]), int(cm[j].sum()), alpha=alpha)
        prec = proportion_ci(int(cm[j, j]), int(cm[:, j].sum()), alpha=alpha)
        den = cm[j].sum() + cm[:, j].sum()
        rows.append({"class": c, "support": int(cm[j].sum()), "precision": prec.estimate,
                     "precision_low": prec.ci_low, "precision_high": prec.ci_high, "recall": rec.estimate,
                     "recall_low": rec.ci_low, "recall_high": rec.ci_high,
                     "f1": 2 * cm[j, j] / den if den else math.nan})
    acc = proportion_ci(int(np.trace(cm)), n, alpha=alpha, name="accuracy")
    return MulticlassMetrics(
        classes=names,
        auc_per_class=tuple(aucs),
        macro_auc=boot_est("macro_auc", macro, auc_note),
        micro_auc=boot_est("micro_auc", micro, "undefined: needs at least one positive and one negative pair"),
        confusion=pd.DataFrame(cm, index=list(names), columns=list(names)),
        confusion_normalized=pd.DataFrame(cm_norm, index=list(names), columns=list(names)),
        per_class=pd.DataFrame(rows),
        accuracy=acc,
        macro_f1=boot_est("macro_f1", cm_stats["macro_f1"], "undefined: no class has a true or predicted case"),
        mcc=boot_est("mcc", cm_stats["mcc"], "undefined: all cases in one true or one predicted class (0/0)"),
        kappa=boot_est("kappa", cm_stats["kappa"], "undefined: chance agreement is 1"),
    )
