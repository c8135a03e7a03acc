"""NRI and IDI against Hmisc's improveProb (reference/reference_rms.R) and a hand-worked example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nodescope.clinical._reclass import reclassification
from nodescope.errors import StatisticsInputError

REF = Path(__file__).with_name("reference")


@pytest.fixture(scope="module")
def probs() -> pd.DataFrame:
    # p_old / p_new: lrm(y ~ rcs(age, k4) + sex + stage [+ marker], data = cc), exported by reference_rms.R
    return pd.read_csv(REF / "rms_reclass_probs.csv")


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return pd.read_csv(REF / "rms_reclass.csv").set_index("key")


def test_category_free_nri_and_idi_match_improveprob(probs, ref):
    # improveProb(p_old, p_new, cc$y)
    res = reclassification(probs.y, probs.p_old, probs.p_new)
    col = ref.continuous
    assert res.nri.estimate == pytest.approx(col["nri"], abs=1e-12)
    assert res.nri.extra["se"] == pytest.approx(col["se.nri"], abs=1e-12)
    assert res.nri_events.estimate == pytest.approx(col["nri.ev"], abs=1e-12)
    assert res.nri_events.extra["se"] == pytest.approx(col["se.nri.ev"], abs=1e-12)
    assert res.nri_nonevents.estimate == pytest.approx(col["nri.ne"], abs=1e-12)
    assert res.nri_nonevents.extra["se"] == pytest.approx(col["se.nri.ne"], abs=1e-12)
    assert res.idi.estimate == pytest.approx(col["idi"], abs=1e-12)
    assert res.idi.extra["se"] == pytest.approx(col["se.idi"], abs=1e-12)
    assert res.nri.ci_low < res.nri.estimate < res.nri.ci_high


def test_categorical_nri_matches_improveprob_on_categories(probs, ref):
    # improveProb((cat_old - 1) / 2, (cat_new - 1) / 2, cc$y) with categories [0, .2), [.2, .4), [.4, 1]
    res = reclassification(probs.y, probs.p_old, probs.p_new, cutoffs=[0.2, 0.4])
    col = ref.categorical
    for key, est in (("nri", res.nri), ("nri.ev", res.nri_events), ("nri.ne", res.nri_nonevents)):
        assert est.estimate == pytest.approx(col[key], abs=1e-12), key
        assert est.extra["se"] == pytest.approx(col["se." + key], abs=1e-12), key


def test_hand_worked():
    # events: 0.2->0.4 (up), 0.5->0.3 (down), 0.6->0.9 (up); non-events: 0.3->0.1 (down), 0.4->0.4 (same)
    y = [1, 1, 1, 0, 0]
    old = [0.2, 0.5, 0.6, 0.3, 0.4]
    new = [0.4, 0.3, 0.9, 0.1, 0.4]
    res = reclassification(y, old, new)
    assert res.nri_events.estimate == pytest.approx((2 - 1) / 3)
    assert res.nri_nonevents.estimate == pytest.approx((1 - 0) / 2)
    assert res.nri.estimate == pytest.approx(1 / 3 + 1 / 2)
    # IDI: mean change in events (0.2 - 0.2 + 0.3) / 3 = 0.1, in non-events (-0.2 + 0) / 2 = -0.1
    assert res.idi.estimate == pytest.approx(0.2)
    # events' variance: (2 + 1) / 9 - 1 / 27
    assert res.nri_events.extra["se"] == pytest.approx(np.sqrt(3 / 9 - 1 / 27))
    # identical models: no reclassification, zero IDI
    same = reclassification(y, old, old)
    assert same.nri.estimate == 0 and same.idi.estimate == 0


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (([0, 1], [0.1, 0.2], [0.1]), {}, "same length"),
    (([0, 0], [0.1, 0.2], [0.1, 0.3]), {}, "both present"),
    (([0, 1], [0.1, 1.2], [0.1, 0.3]), {}, r"in \[0, 1\]"),
    (([0, 1], [0.1, 0.2], [0.1, 0.3]), {"cutoffs": [0.5, 0.2]}, "increasing"),
])
def test_bad_input(args, kwargs, match):
    with pytest.raises(StatisticsInputError, match=match):
        reclassification(*args, **kwargs)
