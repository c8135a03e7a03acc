"""Edge cases of the rms-style fit: separation without a crash, and bad formulas / outcomes named clearly."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from nodescope.clinical import SeparationWarning, fit_lrm, parse_formula, validate
from nodescope.errors import ConfigError, DataError, StatisticsInputError


@pytest.fixture
def frame(rng):
    n = 120
    g = rng.choice(["a", "b"], n)
    g[:5] = "c"  # a level with no events: quasi-complete separation
    y = rng.integers(0, 2, n)
    y[:5] = 0
    return pd.DataFrame({"y": y.astype(str), "g": g, "x": rng.normal(size=n).astype(str),
                         "three": rng.choice(["u", "v", "w"], n)})


def test_separated_fit_is_flagged_not_crashed(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow noise either
        with pytest.warns(SeparationWarning):
            fit = fit_lrm("y ~ x + g", frame)
        assert fit.separation and not fit.converged and "did not converge" in fit.warnings[-1]
        assert np.isinf(fit.coef_frame().loc["g=c", "OR upper"]) or fit.coef_frame().loc["g=c", "Coef"] < -10
        val = validate(fit, B=4, seed=0)  # every resample separates too: all left out, nothing raised
        assert val.failed == 4 and np.isnan(val.table.loc["Dxy", "index.corrected"])
    auto = fit_lrm("y ~ x + g", frame, firth=None)
    assert auto.converged and auto.coef["g=c"] > -10


@pytest.mark.parametrize(("formula", "match"), [
    ("y rcs(x, 3)", "expected 'outcome ~ term"),
    ("y ~ x + (g", "cannot read term"),
    ("y ~ x * g * three", "two-way"),
    ("y ~ x + x:g", "needs the main effect 'g'"),
])
def test_bad_formulas(formula, match):
    with pytest.raises(ConfigError, match=match):
        parse_formula(formula)


def test_bad_outcomes_and_columns(frame):
    with pytest.raises(StatisticsInputError, match="outcome 'three' must have two values"):
        fit_lrm("three ~ x", frame)
    with pytest.raises(DataError, match="no column 'age'"):
        fit_lrm("y ~ age", frame)
    with pytest.raises(DataError, match="column 'three' must be numeric"):
        fit_lrm("y ~ rcs(three, 3)", frame)


def test_singular_resample_is_skipped_not_raised(frame):
    from nodescope.clinical._lrm import fit_matrix

    fit = fit_lrm("y ~ x + g", frame, firth=True)
    rows = np.flatnonzero(frame.g.to_numpy() != "c")  # no patient of level c: its column is all zero
    beta, _, ok = fit_matrix(fit.x[rows], fit.y[rows], firth=True)
    assert not ok and np.isnan(beta).all()
    idx = np.vstack([rows[np.arange(len(frame)) % len(rows)], np.arange(len(frame))])
    val = validate(fit, indices=idx)
    assert val.failed == 1 and val.table.loc["Dxy", "n"] == 1
