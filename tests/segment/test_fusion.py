"""Fusion rules on constructed probability maps (mean, vote, STAPLE) and the mask clean-up."""

from __future__ import annotations

import numpy as np
import pytest

from nodescope.errors import ConfigError
from nodescope.segment import fuse_masks, postprocess_mask, staple


def _maps() -> np.ndarray:
    """Three members on a 1 x 4 strip: pixel by pixel (0.9, 0.8, 0.2), (0.6, 0.4, 0.4), (0.1, 0.9, 0.9), (0, 0, 0)."""
    return np.array([[[0.9, 0.6, 0.1, 0.0]], [[0.8, 0.4, 0.9, 0.0]], [[0.2, 0.4, 0.9, 0.0]]], np.float32)


def test_mean_rule_by_hand() -> None:
    mask, prob = fuse_masks(_maps(), "mean")
    np.testing.assert_allclose(prob[0], [1.9 / 3, 1.4 / 3, 1.9 / 3, 0.0], rtol=1e-6)
    assert mask[0].tolist() == [True, False, True, False]


def test_vote_rule_by_hand_and_even_tie_is_background() -> None:
    mask, frac = fuse_masks(_maps(), "vote")
    # votes (>= 0.5): (1,1,0) (1,0,0) (0,1,1) (0,0,0)
    np.testing.assert_allclose(frac[0], [2 / 3, 1 / 3, 2 / 3, 0.0], rtol=1e-6)
    assert mask[0].tolist() == [True, False, True, False]
    two = np.array([[[0.9, 0.9]], [[0.9, 0.1]]], np.float32)
    m2, _ = fuse_masks(two, "vote")
    assert m2[0].tolist() == [True, False]  # 1 of 2 is not a majority


def test_mean_and_vote_differ_where_a_confident_minority_wins_the_mean() -> None:
    maps = np.array([[[0.99]], [[0.45]], [[0.45]]], np.float32)  # mean 0.63 >= 0.5, votes 1 of 3
    assert fuse_masks(maps, "mean")[0][0, 0] and not fuse_masks(maps, "vote")[0][0, 0]


def test_staple_identical_raters_reproduce_the_mask() -> None:
    rng = np.random.default_rng(0)
    m = rng.random((20, 20)) < 0.3
    res = staple(np.stack([m, m, m]))
    assert res.converged
    np.testing.assert_array_equal(res.probability >= 0.5, m)
    np.testing.assert_allclose(res.sensitivity, 1.0, atol=1e-5)
    np.testing.assert_allclose(res.specificity, 1.0, atol=1e-5)


def test_staple_first_e_step_closed_form() -> None:
    # one iteration from p = q = 0.9, prior 0.5: a pixel marked by 2 of 3 raters has
    # W = 0.9^2 0.1 / (0.9^2 0.1 + 0.1^2 0.9) = 0.9 (hand-computed from Warfield 2004 eq. 14)
    d = np.array([[1, 1, 0, 0]], bool), np.array([[1, 0, 1, 0]], bool), np.array([[0, 1, 1, 0]], bool)
    res = staple(np.stack(d), prior=0.5, max_iter=1, init_sensitivity=0.9, init_specificity=0.9)
    np.testing.assert_allclose(res.probability[0, :3], 0.9, rtol=1e-6)
    np.testing.assert_allclose(res.probability[0, 3], 0.1 ** 3 / (0.1 ** 3 + 0.9 ** 3), rtol=1e-6)
    # M-step by hand: p_1 = (0.9 + 0.9) / (0.9 * 3 + W_3), q_1 = (1 - W_2 ... )
    w = res.probability[0].astype(float)
    p1 = (w[0] + w[1]) / w.sum()
    q1 = ((1 - w[2]) + (1 - w[3])) / (1 - w).sum()
    assert res.sensitivity[0] == pytest.approx(p1, rel=1e-6)
    assert res.specificity[0] == pytest.approx(q1, rel=1e-6)


def test_staple_trusts_the_consistent_rater_over_noisy_ones() -> None:
    """Truth: a square. Rater 0 is exact; raters 1-4 each flip 20% of pixels at random. Majority vote of five keeps
    44 errors; STAPLE ranks rater 0 first (specificity ~1, the best sensitivity) and keeps far fewer."""
    rng = np.random.default_rng(1)
    truth = np.zeros((40, 40), bool)
    truth[10:30, 12:28] = True
    raters = [truth] + [truth ^ (rng.random(truth.shape) < 0.2) for _ in range(4)]
    res = staple(np.stack(raters))
    assert res.converged
    assert res.specificity[0] > 0.999 and res.sensitivity[0] > res.sensitivity[1:].max() + 0.1
    np.testing.assert_allclose(res.sensitivity[1:], 0.8, atol=0.03)  # the noise level, recovered
    fused = res.probability >= 0.5
    vote = fuse_masks(np.stack(raters).astype(np.float32), "vote")[0]
    assert (vote != truth).sum() >= 5 * max(1, (fused != truth).sum())
    mask, prob = fuse_masks(np.stack(raters).astype(np.float32), "staple")
    np.testing.assert_array_equal(mask, fused)
    np.testing.assert_allclose(prob, res.probability)


def test_staple_all_empty_is_empty() -> None:
    res = staple(np.zeros((3, 5, 5), bool))
    assert not (res.probability >= 0.5).any()


def test_bad_rule_and_threshold_named() -> None:
    with pytest.raises(ConfigError, match="unknown rule 'median'"):
        fuse_masks(_maps(), "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        fuse_masks(_maps(), "mean", threshold=1.0)


def test_postprocess_largest_component_and_holes() -> None:
    m = np.zeros((12, 12), bool)
    m[1:8, 1:8] = True
    m[3:5, 3:5] = False  # a hole
    m[10:12, 10:12] = True  # a speck
    only = postprocess_mask(m, largest_component=True)
    assert not only[10:12, 10:12].any() and only[1, 1] and not only[3, 3]
    filled = postprocess_mask(m, largest_component=True, fill_holes=True)
    assert filled[3:5, 3:5].all() and filled.sum() == 49
    assert not postprocess_mask(np.zeros((4, 4)), largest_component=True).any()
