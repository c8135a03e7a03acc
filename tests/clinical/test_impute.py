"""Multiple imputation for the logistic model: Rubin's rules by hand, agreement with complete cases, seeding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nodescope.clinical import fit_lrm, fit_lrm_imputed, pool_rubin, read_clinical_table
from nodescope.errors import StatisticsInputError

DATA = Path(__file__).with_name("reference") / "lrm_data.csv"
F = "y ~ age + sex + stage + marker"


def test_rubin_rules_by_hand():
    # m = 3 imputations of a 2-coefficient model
    coefs = np.array([[1.0, 2.0], [1.2, 2.4], [0.8, 2.2]])
    covs = np.array([np.diag([0.04, 0.09]), np.diag([0.05, 0.10]), np.diag([0.06, 0.11])])
    mean, total = pool_rubin(coefs, covs)
    np.testing.assert_allclose(mean, [1.0, 2.2])
    # W = diag(0.05, 0.10); B = sample covariance of the coefficients; T = W + (1 + 1/3) B
    b = np.array([[0.04, 0.02], [0.02, 0.04]])
    np.testing.assert_allclose(total, np.diag([0.05, 0.10]) + 4 / 3 * b)
    with pytest.raises(StatisticsInputError, match="at least 2"):
        pool_rubin(coefs[:1], covs[:1])


def test_no_missing_predictors_gives_the_complete_case_fit():
    d = read_clinical_table(DATA).dropna().reset_index(drop=True)
    mi = fit_lrm_imputed(F, d, m=3)
    cc = fit_lrm(F, d)
    np.testing.assert_allclose(mi.coef, cc.coef)


def test_imputed_fit_states_itself_and_is_seeded():
    d = read_clinical_table(DATA)
    d.loc[[3, 10, 50, 77], "stage"] = None
    a = fit_lrm_imputed(F, d, m=3, n_burn=2, seed=5)
    assert a.n == 200  # every patient kept
    incomplete = int(d[["stage", "marker"]].isna().any(axis=1).sum())  # 11: one patient lacks both
    assert a.missing.startswith(f"multiple imputation: {incomplete} of 200 patients")
    assert "stage: 4, marker: 8" in a.missing
    assert "Rubin" in a.missing
    b = fit_lrm_imputed(F, d, m=3, n_burn=2, seed=5)
    np.testing.assert_array_equal(a.coef, b.coef)
    cc = fit_lrm(F, d)
    # with 6% of rows incomplete, pooled estimates stay near the complete-case ones (within a standard error)
    se = np.sqrt(np.diag(cc.cov))
    assert np.all(np.abs(a.coef.to_numpy() - cc.coef.to_numpy()) < se)
