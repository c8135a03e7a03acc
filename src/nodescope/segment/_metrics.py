"""Segmentation metrics per image, and their summaries with patient-level bootstrap intervals.

Per image (:func:`mask_scores`): Dice ``2|P∩T| / (|P| + |T|)``, IoU ``|P∩T| / |P∪T|``, the 95th-percentile
Hausdorff distance and the average symmetric surface distance between the masks' edges (MONAI's
``compute_hausdorff_distance(percentile=95)`` -- the larger of the two directed 95th percentiles -- and
``compute_average_surface_distance(symmetric=True)``; in millimetres when the pixel spacing is known, else pixels),
and whether the lesion was detected (any overlap).

Empty masks follow one explicit policy (:data:`EMPTY_POLICY`):

==================  ============  ==========  ==============  ==========================================
truth / prediction  Dice, IoU     HD95, ASSD  detected        counted as
==================  ============  ==========  ==============  ==========================================
lesion / mask       as defined    as defined  overlap > 0     a lesion image
lesion / empty      0             nan         False           a missed lesion (distances undefined)
empty / empty       1             0           None            a correct negative (no lesion, none found)
empty / mask        0             nan         None            a false positive
==================  ============  ==========  ==============  ==========================================

Summaries (:func:`summarise_scores`) average over lesion images for Dice/IoU (misses count as 0), over detected
lesions for the distances (the number of misses is reported beside them), and give the detection rate on lesion
images and the false-positive rate on lesion-free images (BUSI's ``normal`` class). Intervals are percentile
bootstraps that resample patients (or another grouping), as images of one patient are not independent.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError

__all__ = ["EMPTY_POLICY", "MaskScores", "SegmentationSummary", "mask_scores", "score_masks", "summarise_scores"]

EMPTY_POLICY = ("lesion/empty: Dice 0, distances nan (missed); empty/empty: Dice 1, distances 0; "
                "empty/mask: Dice 0, distances nan (false positive)")


@dataclass(frozen=True)
class MaskScores:
    """The metrics of one predicted mask against its reference (see the module docstring for empty masks).

    Attributes
    ----------
    dice, iou : float
    hd95, assd : float
        Edge distances, in :attr:`unit`; nan when one mask is empty and the other is not.
    detected : bool or None
        Any overlap with the lesion; None when the reference has no lesion.
    truth_empty, pred_empty : bool
    unit : {"mm", "px"}
    """

    dice: float
    iou: float
    hd95: float
    assd: float
    detected: bool | None
    truth_empty: bool
    pred_empty: bool
    unit: str


def _binary(mask: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise StatisticsInputError(f"{name}: expected a 2D mask (H, W), got shape {m.shape}")
    return m > 0


def mask_scores(pred: np.ndarray, truth: np.ndarray, *, spacing: tuple[float, float] | None = None) -> MaskScores:
    """Metrics of a predicted mask against the reference mask of the same image.

    Parameters
    ----------
    pred, truth : numpy.ndarray
        ``(H, W)`` (or ``(H, W, 1)``) masks of the same shape; nonzero is foreground.
    spacing : (float, float), optional
        Pixel size ``(row_mm, col_mm)``; distances are then in millimetres.
    """
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    p, t = _binary(pred, "pred"), _binary(truth, "truth")
    if p.shape != t.shape:
        raise StatisticsInputError(f"pred: shape {p.shape} differs from the reference mask's {t.shape}")
    if spacing is not None and (len(spacing) != 2 or not all(float(s) > 0 for s in spacing)):
        raise StatisticsInputError(f"spacing: expected two positive pixel sizes (row_mm, col_mm), got {spacing!r}")
    unit = "mm" if spacing is not None else "px"
    ps, ts = int(p.sum()), int(t.sum())
    if ts == 0 and ps == 0:
        return MaskScores(1.0, 1.0, 0.0, 0.0, None, True, True, unit)
    if ts == 0 or ps == 0:
        return MaskScores(0.0, 0.0, float("nan"), float("nan"), False if ts else None, ts == 0, ps == 0, unit)
    inter = int(np.logical_and(p, t).sum())
    union = ps + ts - inter
    yp = torch.from_numpy(p[None, None].astype(np.float32))
    yt = torch.from_numpy(t[None, None].astype(np.float32))
    sp = [float(s) for s in spacing] if spacing is not None else None
    with warnings.catch_warnings():  # MONAI 1.5+ warns about its own internal use of a deprecated argument
        warnings.simplefilter("ignore", FutureWarning)
        hd = float(compute_hausdorff_distance(yp, yt, include_background=True, percentile=95, spacing=sp)[0, 0])
        asd = float(compute_average_surface_distance(yp, yt, include_background=True, symmetric=True,
                                                     spacing=sp)[0, 0])
    return MaskScores(2 * inter / (ps + ts), inter / union, hd, asd, inter > 0, False, False, unit)


def score_masks(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray], *, ids: Sequence[str],
                groups: Sequence[str] | None = None,
                spacings: Sequence[tuple[float, float] | None] | None = None) -> pd.DataFrame:
    """One row of :class:`MaskScores` per image: ``id``, ``group`` (default: the id) and the metrics."""
    n = len(preds)
    if len(truths) != n or len(ids) != n:
        raise StatisticsInputError(f"preds, truths and ids: expected equal lengths, got {n}, {len(truths)}, {len(ids)}")
    groups = list(groups) if groups is not None else list(ids)
    spacings = list(spacings) if spacings is not None else [None] * n
    if len(groups) != n or len(spacings) != n:
        raise StatisticsInputError(f"groups and spacings: expected {n} values each, got {len(groups)}, {len(spacings)}")
    units = {s is not None for s in spacings}
    if len(units) > 1:
        raise StatisticsInputError("spacings: known for some images and not others; distances would mix mm and "
                                   "pixels (give all or none)")
    rows = [{"id": str(i), "group": str(g), **asdict(mask_scores(p, t, spacing=s))}
            for i, g, p, t, s in zip(ids, groups, preds, truths, spacings, strict=True)]
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SegmentationSummary:
    """Summary of per-image scores (see :func:`summarise_scores`).

    Attributes
    ----------
    dice, iou : Estimate
        Mean over lesion images (misses count 0), with a patient-bootstrap interval.
    hd95, assd : Estimate
        Mean over detected lesions.
    detection_rate : Estimate
        Share of lesion images with any overlap.
    false_positive_rate : Estimate
        Share of lesion-free images given a non-empty mask (nan estimate when there are none).
    n_images, n_lesion_images, n_missed, n_empty_truth, n_groups : int
    unit : str
    policy : str
        :data:`EMPTY_POLICY`.
    """

    dice: Estimate
    iou: Estimate
    hd95: Estimate
    assd: Estimate
    detection_rate: Estimate
    false_positive_rate: Estimate
    n_images: int
    n_lesion_images: int
    n_missed: int
    n_empty_truth: int
    n_groups: int
    unit: str
    policy: str = EMPTY_POLICY

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: estimate, interval, n."""
        rows = []
        for name in ("dice", "iou", "hd95", "assd", "detection_rate", "false_positive_rate"):
            e: Estimate = getattr(self, name)
            rows.append({"metric": name, "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
                         "n": e.n, "unit": self.unit if name in ("hd95", "assd") else ""})
        return pd.DataFrame(rows)


def _stats(frame: pd.DataFrame) -> np.ndarray:
    lesion = ~frame["truth_empty"].to_numpy(bool)
    det = lesion & ~frame["pred_empty"].to_numpy(bool)
    empty = ~lesion

    def mean(values: np.ndarray, where: np.ndarray) -> float:
        return float(values[where].mean()) if where.any() else float("nan")

    fp = frame["pred_empty"].to_numpy(bool)
    return np.array([mean(frame["dice"].to_numpy(float), lesion), mean(frame["iou"].to_numpy(float), lesion),
                     mean(frame["hd95"].to_numpy(float), det), mean(frame["assd"].to_numpy(float), det),
                     mean(frame["detected"].fillna(False).to_numpy(bool).astype(float), lesion),
                     mean((~fp).astype(float), empty)])


def summarise_scores(scores: pd.DataFrame, *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
                     ) -> SegmentationSummary:
    """Means with percentile bootstrap intervals that resample whole groups (patients) with replacement.

    Parameters
    ----------
    scores : DataFrame
        From :func:`score_masks`.
    n_boot : int, default 2000
        Replicates; 0 gives the estimates without intervals (nan bounds).
    alpha : float, default 0.05
    seed : int, default 0
    """
    need = {"group", "dice", "iou", "hd95", "assd", "detected", "truth_empty", "pred_empty", "unit"}
    missing = sorted(need - set(scores.columns))
    if missing:
        raise StatisticsInputError(f"scores: missing column(s) {missing} (use score_masks)")
    if scores.empty:
        raise StatisticsInputError("scores: no images to summarise")
    if not 0 < alpha < 1:
        raise StatisticsInputError(f"alpha: expected a value in (0, 1), got {alpha!r}")
    if n_boot < 0:
        raise StatisticsInputError(f"n_boot: expected >= 0, got {n_boot!r}")
    est = _stats(scores)
    groups = scores["group"].astype(str).to_numpy()
    uniq = np.unique(groups)
    rows_of = {g: np.flatnonzero(groups == g) for g in uniq}
    boot = np.full((n_boot, len(est)), np.nan)
    rng = np.random.default_rng(seed)
    for b in range(n_boot):
        pick = rng.choice(uniq, size=len(uniq), replace=True)
        boot[b] = _stats(scores.iloc[np.concatenate([rows_of[g] for g in pick])])
    with warnings.catch_warnings():  # a metric undefined in every replicate (no lesion-free image): nan bounds
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanpercentile(boot, 100 * alpha / 2, axis=0) if n_boot else np.full(len(est), np.nan)
        hi = np.nanpercentile(boot, 100 * (1 - alpha / 2), axis=0) if n_boot else np.full(len(est), np.nan)
    lesion = ~scores["truth_empty"].to_numpy(bool)
    detected = lesion & ~scores["pred_empty"].to_numpy(bool)
    ns = [int(lesion.sum())] * 2 + [int(detected.sum())] * 2 + [int(lesion.sum()), int((~lesion).sum())]
    method = "bootstrap-percentile-clustered" if n_boot else "none"
    note = f"groups resampled: {len(uniq)}, replicates: {n_boot}"
    names = ("dice", "iou", "hd95", "assd", "detection_rate", "false_positive_rate")
    e = [Estimate(names[i], float(est[i]), float(lo[i]), float(hi[i]), method, alpha, ns[i], note=note)
         for i in range(len(est))]
    units = sorted(set(scores["unit"].astype(str)))
    return SegmentationSummary(*e, n_images=len(scores), n_lesion_images=int(lesion.sum()),
                               n_missed=int((lesion & ~detected).sum()), n_empty_truth=int((~lesion).sum()),
                               n_groups=len(uniq), unit=units[0] if len(units) == 1 else "/".join(units))
