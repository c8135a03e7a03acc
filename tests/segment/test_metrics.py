"""Segmentation metrics against hand-computed cases and a brute-force edge-distance reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from nodescope.errors import StatisticsInputError
from nodescope.segment import mask_scores, score_masks, summarise_scores


def _square(shape=(40, 40), top=10, left=10, side=10) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[top:top + side, left:left + side] = 1
    return m


def _brute(pred: np.ndarray, truth: np.ndarray, spacing=(1.0, 1.0)) -> tuple[float, float]:
    """HD95 (max of the directed 95th percentiles, linear interpolation) and ASSD from all edge-pixel pairs."""
    def edge(m):
        m = m.astype(bool)
        return np.argwhere(m & ~ndimage.binary_erosion(m)) * np.asarray(spacing)
    ep, et = edge(pred), edge(truth)
    d = np.sqrt(((ep[:, None, :] - et[None, :, :]) ** 2).sum(-1))
    d_pt, d_tp = d.min(1), d.min(0)
    hd95 = max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))
    return float(hd95), float(np.concatenate([d_pt, d_tp]).mean())


def test_identical_and_shifted_squares_by_hand() -> None:
    t = _square()
    s = mask_scores(t, t)
    assert (s.dice, s.iou, s.hd95, s.assd, s.detected) == (1.0, 1.0, 0.0, 0.0, True)
    # shifted by 2 columns: overlap 10 x 8 = 80 of 100 + 100 -> Dice 160/200, IoU 80/120
    p = _square(left=12)
    s = mask_scores(p, t)
    assert s.dice == pytest.approx(0.8) and s.iou == pytest.approx(80 / 120)
    # every edge pixel of one square is at most 2 px from the other's edge: HD95 <= 2
    assert 0 < s.hd95 <= 2.0 and s.unit == "px"
    hd, asd = _brute(p, t)
    assert s.hd95 == pytest.approx(hd) and s.assd == pytest.approx(asd)


def test_one_pixel_objects_and_spacing() -> None:
    p, t = np.zeros((20, 20)), np.zeros((20, 20))
    p[5, 5], t[5, 9] = 1, 1  # 4 columns apart
    s = mask_scores(p, t)
    assert (s.dice, s.iou, s.detected) == (0.0, 0.0, False)
    assert s.hd95 == pytest.approx(4.0) and s.assd == pytest.approx(4.0)
    mm = mask_scores(p, t, spacing=(0.5, 0.2))  # (row_mm, col_mm): 4 columns = 0.8 mm
    assert mm.hd95 == pytest.approx(0.8) and mm.assd == pytest.approx(0.8) and mm.unit == "mm"
    p2, t2 = np.zeros((20, 20)), np.zeros((20, 20))
    p2[2, 3], t2[8, 3] = 1, 1  # 6 rows apart
    assert mask_scores(p2, t2, spacing=(0.5, 0.2)).hd95 == pytest.approx(3.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_irregular_masks_match_the_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random((48, 48)), 4)
    t = field > np.quantile(field, 0.7)
    p = ndimage.binary_dilation(t, iterations=int(rng.integers(1, 4))) & (rng.random((48, 48)) > 0.05)
    assert t.any() and p.any()
    sp = (0.3, 0.45)
    s = mask_scores(p, t, spacing=sp)
    hd, asd = _brute(p, t, sp)
    assert s.hd95 == pytest.approx(hd, rel=1e-5) and s.assd == pytest.approx(asd, rel=1e-5)
    inter = (p & t).sum()
    assert s.dice == pytest.approx(2 * inter / (p.sum() + t.sum()))


def test_empty_policy() -> None:
    t, e = _square(), np.zeros((40, 40))
    missed = mask_scores(e, t)
    assert (missed.dice, missed.detected, missed.pred_empty) == (0.0, False, True) and math.isnan(missed.hd95)
    neg = mask_scores(e, e)
    assert (neg.dice, neg.iou, neg.hd95, neg.assd, neg.detected) == (1.0, 1.0, 0.0, 0.0, None)
    fp = mask_scores(t, e)
    assert (fp.dice, fp.detected, fp.truth_empty) == (0.0, None, True) and math.isnan(fp.assd)


def test_bad_input_named() -> None:
    with pytest.raises(StatisticsInputError, match="shape"):
        mask_scores(np.zeros((4, 4)), np.zeros((5, 4)))
    with pytest.raises(StatisticsInputError, match="spacing"):
        mask_scores(np.zeros((4, 4)), np.zeros((4, 4)), spacing=(0.0, 1.0))
    with pytest.raises(StatisticsInputError, match="2D mask"):
        mask_scores(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(StatisticsInputError, match="mix mm and pixels"):
        score_masks([_square()] * 2, [_square()] * 2, ids=["a", "b"], spacings=[(1.0, 1.0), None])


def test_summary_counts_rates_and_patient_bootstrap() -> None:
    t = _square()
    e = np.zeros((40, 40))
    preds = [t, _square(left=12), e, e, t]      # perfect, shifted, missed, true negative, false positive
    truths = [t, t, t, e, e]
    scores = score_masks(preds, truths, ids=list("abcde"), groups=["p1", "p1", "p2", "p3", "p4"])
    assert list(scores.columns[:2]) == ["id", "group"]
    s = summarise_scores(scores, n_boot=300, seed=1)
    assert s.n_images == 5 and s.n_lesion_images == 3 and s.n_missed == 1 and s.n_empty_truth == 2
    assert s.dice.estimate == pytest.approx((1 + 0.8 + 0) / 3)
    assert s.detection_rate.estimate == pytest.approx(2 / 3)
    assert s.false_positive_rate.estimate == pytest.approx(0.5)
    assert s.hd95.n == 2  # distances over detected lesions only
    assert s.dice.ci_low <= s.dice.estimate <= s.dice.ci_high
    assert "4 groups" not in s.dice.method and "groups resampled: 4" in s.dice.note
    frame = s.to_frame()
    assert list(frame["metric"]) == ["dice", "iou", "hd95", "assd", "detection_rate", "false_positive_rate"]
    # the same seed gives the same interval; no interval without replicates
    assert summarise_scores(scores, n_boot=300, seed=1).dice.ci_low == s.dice.ci_low
    assert math.isnan(summarise_scores(scores, n_boot=0).dice.ci_low)
    with pytest.raises(StatisticsInputError, match="missing column"):
        summarise_scores(pd.DataFrame({"group": ["a"]}))
