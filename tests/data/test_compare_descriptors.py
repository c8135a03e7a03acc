"""Shift descriptors and two-sample statistics on synthetic data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage, stats
from shift_images import RAYLEIGH_SNR, draw_crosses, speckle, tint

from nodescope.data._shift_features import HIST_BINS, image_descriptors
from nodescope.data._shift_stats import domain_auc, feature_tests, mmd_test, prevalence_test, smd
from nodescope.errors import DataError, StatisticsInputError


def test_speckle_of_a_rayleigh_envelope_has_its_known_shape():
    d, hist = image_descriptors(speckle())
    assert d["speckle_snr"] == pytest.approx(RAYLEIGH_SNR, abs=0.08)
    assert d["nakagami_m"] == pytest.approx(1.0, abs=0.12)  # Rayleigh = Nakagami m 1
    assert hist.shape == (HIST_BINS,) and hist.sum() == pytest.approx(1.0)
    smooth = np.clip(ndimage.gaussian_filter(speckle().astype(float), 1.5), 0, 255).astype(np.uint8)
    ds, _ = image_descriptors(smooth)  # smoothing makes speckle look post-Rayleigh
    assert ds["speckle_snr"] > 3 * d["speckle_snr"] and ds["nakagami_m"] > 5


def test_tinted_image_is_found_with_its_hue_and_a_grey_one_is_not():
    grey, _ = image_descriptors(speckle())
    assert (grey["not_grey"], grey["tinted"], grey["colour_fraction"]) == (0.0, 0.0, 0.0)
    assert math.isnan(grey["tint_hue"])
    rgb_grey, _ = image_descriptors(np.repeat(speckle()[..., None], 3, -1))  # R == G == B stored as RGB
    assert rgb_grey["not_grey"] == 0.0
    tinted, _ = image_descriptors(tint(speckle()))
    assert tinted["tinted"] == 1.0 and tinted["colour_fraction"] > 0.7
    assert tinted["tint_hue"] == pytest.approx(216.0, abs=2.0)
    assert tinted["saturated_fraction"] == 0.0  # a cast, not overlays


def test_caliper_crosses_are_found_and_plain_speckle_has_none():
    img = speckle()
    clean, _ = image_descriptors(img)
    assert clean["has_marks"] == 0.0 and clean["marks_in_scan"] == 0.0
    marked, _ = image_descriptors(draw_crosses(img, [(50, 60), (120, 170), (90, 100)]))
    assert marked["has_marks"] == 1.0
    assert marked["marks_in_scan"] == pytest.approx(1000 * 3 * 25 / (192 * 256))  # 3 crosses of 25 pixels
    # a yellow (saturated colour) cross counts too
    rgb = np.repeat(img[..., None], 3, -1)
    rgb[40:53, 80] = rgb[46, 74:87] = (255, 255, 0)
    yellow, _ = image_descriptors(rgb)
    assert yellow["marks_in_scan"] > 0 and yellow["saturated_fraction"] == pytest.approx(25 / (192 * 256))


def test_geometry_side_panel_text_and_lesion_size():
    img = np.zeros((200, 300), np.uint8)
    img[:, :200] = speckle((200, 200))
    img[20:30, 240:280] = 255  # "text" in a side panel
    mask = np.zeros((200, 300), np.uint8)
    mask[50:70, 40:80] = 255
    d, _ = image_descriptors(img, mask=mask, spacing_mm=0.1)
    assert (d["height"], d["width"], d["aspect"], d["spacing_mm"]) == (200, 300, 1.5, 0.1)
    assert d["scan_fraction"] == pytest.approx(2 / 3, abs=0.02)
    assert d["text_outside"] == pytest.approx(400 / (200 * 100), rel=0.1)
    assert d["lesion_fraction"] == pytest.approx(800 / 60000)
    assert d["lesion_aspect"] == 2.0
    assert d["lesion_scan_fraction"] == pytest.approx(800 / 40000, rel=0.03)
    empty, _ = image_descriptors(img, mask=np.zeros_like(mask))
    assert math.isnan(empty["lesion_fraction"])
    with pytest.raises(DataError, match=r"scan.png: the mask is 10x10 pixels but the image is 300x200"):
        image_descriptors(img, mask=np.zeros((10, 10), np.uint8), name="scan.png")
    with pytest.raises(DataError, match="uint8 or uint16"):
        image_descriptors(img.astype(np.float32))


def test_smd_and_feature_tests_match_scipy():
    a = {"x": [1.0, 2.0, 3.0, 4.0], "flag": [0, 0, 1, 0]}
    b = {"x": [3.0, 4.0, 5.0, 6.0, np.nan], "flag": [1, 1, 1, 0, 1]}
    import pandas as pd

    fa, fb = pd.DataFrame(a), pd.DataFrame(b)
    assert smd(a["x"], b["x"][:4]) == pytest.approx(2 / math.sqrt(5 / 3))
    assert smd([1, 1], [1, 1]) == 0 and smd([1, 1], [2, 2]) == math.inf and math.isnan(smd([1], [1, 2]))
    t = feature_tests(fa, fb, ["x", "flag"], binary=["flag"]).set_index("feature")
    ks = stats.ks_2samp(a["x"], b["x"][:4])
    assert t.loc["x", "statistic"] == pytest.approx(ks.statistic) and t.loc["x", "p_value"] == pytest.approx(ks.pvalue)
    assert t.loc["x", "n_b"] == 4  # NaN is not a value
    assert t.loc["flag", "statistic"] == pytest.approx(4 / 5 - 1 / 4)
    assert t.loc["flag", "p_value"] == pytest.approx(stats.fisher_exact([[1, 3], [4, 1]]).pvalue)
    assert t["p_holm"].min() >= t["p_value"].min()
    with pytest.raises(StatisticsInputError, match="'x': expected 0/1"):
        feature_tests(fa, fb, ["x"], binary=["x"])


def test_prevalence_test_is_the_chi_square_of_the_counts():
    table, test = prevalence_test(["b"] * 30 + ["m"] * 10, ["b"] * 10 + ["m"] * 10 + ["n"] * 5)
    assert table["n_a"].tolist() == [30, 10, 0] and table["n_b"].tolist() == [10, 10, 5]
    counts = np.array([[30, 10, 0], [10, 10, 5]])
    expected = counts.sum(1, keepdims=True) * counts.sum(0) / counts.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert test["chi2"] == pytest.approx(chi2) and test["dof"] == 2
    assert test["cramers_v"] == pytest.approx(math.sqrt(chi2 / 65))


def test_domain_auc_is_near_half_for_one_distribution_and_near_one_for_a_shift():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(100), np.ones(100)]
    same = rng.normal(size=(200, 5))
    est, oof = domain_auc(same, y, seed=0)
    # under no shift cross-validated AUCs scatter around, and on average a little below, 0.5 (see domain_auc)
    assert 0.3 < est.estimate < 0.6 and est.ci_high < 0.75 and oof.shape == (200,)
    shifted = same + 2.0 * y[:, None]
    est, _ = domain_auc(shifted, y, seed=0)
    assert est.estimate > 0.97 and est.ci_low > 0.9
    # groups stay whole: with one group per class the classifier cannot be cross-validated
    with pytest.raises(StatisticsInputError, match="at least 2"):
        domain_auc(same, y, groups=y.astype(int).astype(str))


def test_mmd_matches_the_brute_force_estimator_and_its_permutation_test_works():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(25, 3))
    res = mmd_test(a, b, n_permutations=200)
    z = np.vstack([a, b])
    z = (z - z.mean(0)) / z.std(0)
    s = res.bandwidth
    k = lambda u, v: math.exp(-np.sum((u - v) ** 2) / (2 * s * s))  # noqa: E731
    za, zb = z[:30], z[30:]
    xx = sum(k(za[i], za[j]) for i in range(30) for j in range(30) if i != j) / (30 * 29)
    yy = sum(k(zb[i], zb[j]) for i in range(25) for j in range(25) if i != j) / (25 * 24)
    xy = sum(k(u, v) for u in za for v in zb) / (30 * 25)
    assert res.mmd2 == pytest.approx(xx + yy - 2 * xy, abs=1e-12)
    assert res.p_value > 0.05
    shifted = mmd_test(a, b + 1.5, n_permutations=200)
    assert shifted.p_value == pytest.approx(1 / 201) and shifted.mmd2 > 0.1
    with pytest.raises(StatisticsInputError, match="NaN"):
        mmd_test(np.full((3, 2), np.nan), b[:, :2])
