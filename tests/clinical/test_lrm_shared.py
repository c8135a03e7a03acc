"""rms-style models on the shared thyroid table: text factors with spaces, separation on real data, Firth."""

from __future__ import annotations

import numpy as np
import pytest

from nodescope.clinical import SeparationWarning, fit_lrm, read_clinical_table, validate


@pytest.fixture(scope="module")
def thyroid(shared_data):
    return read_clinical_table(shared_data / "clinical" / "thyroid_dtc_recurrence" / "clinical.csv")


def test_model_with_backticked_name_and_bootstrap_failures_reported(thyroid):
    fit = fit_lrm("lnm ~ rcs(Age, 4) + Gender + Focality + `Hx Radiothreapy`", thyroid)
    assert "Hx Radiothreapy=Yes" in fit.coef.index and fit.n == 383
    val = validate(fit, B=30, seed=1)
    # 7 patients had radiotherapy: resamples where they are all non-events separate and are left out, as in rms
    assert val.failed == 30 - int(val.table.loc["Dxy", "n"]) and val.failed >= 1
    assert val.table.loc["Dxy", "index.corrected"] < val.table.loc["Dxy", "index.orig"]


def test_micropapillary_separates_nodal_status(thyroid):
    # SOURCE data: no micropapillary carcinoma has nodal metastasis (48 N0, 0 N1): quasi-complete separation
    with pytest.warns(SeparationWarning):
        ml = fit_lrm("lnm ~ Age + Pathology", thyroid)
    assert ml.separation
    firth = fit_lrm("lnm ~ Age + Pathology", thyroid, firth=True)
    assert firth.converged and np.all(np.isfinite(firth.coef))
    assert abs(firth.coef["Pathology=Micropapillary"]) < 5  # finite, shrunk estimate
