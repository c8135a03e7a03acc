"""Energy in mask and the pointing game against hand-computed cases; the patient-bootstrap summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nodescope.errors import StatisticsInputError
from nodescope.explain import energy_in_mask, pointing_hit, summarise_localisation


def test_energy_in_mask_by_hand() -> None:
    heat = np.array([[1.0, 0.0, 2.0],
                     [0.0, 3.0, 0.0],
                     [0.0, 0.0, 4.0]])
    mask = np.array([[1, 0, 0],
                     [0, 1, 0],
                     [0, 0, 0]])
    assert energy_in_mask(heat, mask) == pytest.approx((1 + 3) / 10)  # total energy 1 + 2 + 3 + 4 = 10
    assert energy_in_mask(heat, np.ones((3, 3))) == 1.0
    # a uniform map scores the mask's area fraction (chance)
    assert energy_in_mask(np.ones((3, 3)), mask) == pytest.approx(2 / 9)
    # masks given as (H, W, 1) or 0/255 are the same mask
    assert energy_in_mask(heat, (mask * 255)[..., None]) == pytest.approx(0.4)
    assert np.isnan(energy_in_mask(heat, np.zeros((3, 3))))  # no lesion
    assert np.isnan(energy_in_mask(np.zeros((3, 3)), mask))  # no map


def test_pointing_game_by_hand() -> None:
    heat = np.array([[1.0, 0.0, 2.0],
                     [0.0, 3.0, 0.0],
                     [0.0, 0.0, 4.0]])
    mask = np.array([[1, 0, 0],
                     [0, 1, 0],
                     [0, 0, 0]], bool)
    assert pointing_hit(heat, mask) == 0.0  # peak at (2, 2), outside
    # (2, 2) is sqrt(2) = 1.414 px from (1, 1): a hit from tolerance 1.5 on, not at 1.4
    assert pointing_hit(heat, mask, tolerance=1.4) == 0.0
    assert pointing_hit(heat, mask, tolerance=1.5) == 1.0
    heat[1, 1] = 4.0  # a tie for the maximum, one of them inside: a hit
    assert pointing_hit(heat, mask) == 1.0
    assert np.isnan(pointing_hit(heat, np.zeros((3, 3))))
    assert np.isnan(pointing_hit(np.zeros((3, 3)), mask))


@pytest.mark.parametrize(("heat", "mask", "message"), [
    (np.ones((3, 3)), np.ones((3, 4)), "one size"),
    (np.ones(3), np.ones(3), "one size"),
    (-np.ones((3, 3)), np.ones((3, 3)), ">= 0"),
    (np.full((3, 3), np.nan), np.ones((3, 3)), "finite"),
])
def test_bad_inputs(heat, mask, message) -> None:
    with pytest.raises(StatisticsInputError, match=message):
        energy_in_mask(heat, mask)
    with pytest.raises(StatisticsInputError, match=message):
        pointing_hit(heat, mask)


def _scores() -> pd.DataFrame:
    # patient A: one image scoring 0; patient B: three images scoring 1 -> image mean 0.75
    return pd.DataFrame({"method": "gradcam", "label": ["benign", "malignant", "malignant", "malignant"],
                         "group": ["A", "B", "B", "B"], "energy_in_mask": [0.0, 1.0, 1.0, 1.0],
                         "pointing_hit": [0.0, 1.0, np.nan, 1.0], "mask_fraction": 0.2})


def test_summary_resamples_patients() -> None:
    s = summarise_localisation(_scores(), n_boot=400, seed=3)
    f = s.to_frame().set_index(["class", "metric"])
    e = f.loc[("all", "energy_in_mask")]
    assert e["estimate"] == pytest.approx(0.75) and e["n"] == 4 and e["n_groups"] == 2
    # whole patients are drawn: a replicate is A+A (0), A+B (0.75) or B+B (1); an image-level bootstrap would give
    # values such as 0.5 and an upper bound below 1 far more rarely than 1/4 of the time
    assert e["ci_low"] == 0.0 and e["ci_high"] == 1.0
    hit = f.loc[("all", "pointing_hit")]
    assert hit["estimate"] == pytest.approx(2 / 3) and hit["n"] == 3 and hit["n_undefined"] == 1
    assert f.loc[("malignant", "energy_in_mask"), "ci_low"] == 1.0  # one patient: no spread
    assert f.loc[("benign", "energy_in_mask"), "n_groups"] == 1
    assert f.loc[("all", "mask_fraction"), "estimate"] == pytest.approx(0.2)
    assert set(f["ci_method"]) == {"bootstrap-percentile-clustered"}
    # seeded: the same intervals again
    pd.testing.assert_frame_equal(s.to_frame(), summarise_localisation(_scores(), n_boot=400, seed=3).to_frame())


def test_summary_with_nothing_defined_and_bad_input() -> None:
    sc = _scores().assign(pointing_hit=np.nan)
    f = summarise_localisation(sc, n_boot=50).to_frame().set_index(["class", "metric"])
    assert np.isnan(f.loc[("all", "pointing_hit"), "estimate"]) and f.loc[("all", "pointing_hit"), "n"] == 0
    with pytest.raises(StatisticsInputError, match="missing column"):
        summarise_localisation(sc.drop(columns="group"))
    with pytest.raises(StatisticsInputError, match="no images"):
        summarise_localisation(sc.iloc[:0])
    with pytest.raises(StatisticsInputError, match="alpha"):
        summarise_localisation(sc, alpha=1.5)
