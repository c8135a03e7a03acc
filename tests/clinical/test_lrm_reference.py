"""rms-style logistic models checked against R (rms 6.5.0, Hmisc 4.8.0, brglm2 0.9, R 4.2).

Every reference value is read from the CSV files that reference/reference_rms.R wrote (its printed output is
reference/reference_rms.out); the data set is reference/lrm_data.csv (synthetic, from reference/make_data.py). CI does
not run R. The bootstrap (validate, calibrate) replays R's own resamples (rms_boot_indices.csv, exported by replaying
the seed of predab.resample), so the bootstrap results are compared exactly, not in distribution.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nodescope.clinical import (
    SeparationWarning,
    calibrate,
    effects,
    fit_lrm,
    lr_tests,
    nomogram,
    rcs_basis,
    rcs_knots,
    read_clinical_table,
    validate,
    wald_anova,
)

REF = Path(__file__).with_name("reference")
F1 = "y ~ rcs(age, 4) + sex + stage + marker"
F2 = "y ~ rcs(age, 4) + sex * marker + stage"
# R's lrm.fit stops at tol 1e-7 (1e-13 in the bootstrap refits of validate/calibrate); our Newton goes to 1e-12.
TOL_FIT = 1e-8
TOL_BOOT = 1e-6


def _ref(name: str) -> pd.DataFrame:
    # formatC pads numbers with spaces (and writes NA padded too): strip, then read numbers as numbers
    frame = pd.read_csv(REF / f"rms_{name}.csv", dtype=str, keep_default_na=False)
    frame = frame.apply(lambda s: s.str.strip())
    for col in frame.columns:
        num = pd.to_numeric(frame[col].replace("NA", None), errors="coerce")
        if num.notna().sum() == (frame[col] != "NA").sum():
            frame[col] = num
    return frame


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return read_clinical_table(REF / "lrm_data.csv")


@pytest.fixture(scope="module")
def fit1(data):
    return fit_lrm(F1, data)


@pytest.fixture(scope="module")
def boot_indices() -> np.ndarray:
    # set.seed(101); sapply(1:40, function(i) sample(192, replace = TRUE)) -- 1-based, one column per resample
    return _ref("boot_indices").to_numpy().T - 1


@pytest.mark.parametrize(("name", "rows", "nk"), [("age4", None, 4), ("age3", None, 3), ("age5", None, 5),
                                                  ("age4_first80", 80, 4), ("marker5", None, 5)])
def test_knots_match_hmisc(data, name, rows, nk):
    # rcspline.eval(x, nk = nk, knots.only = TRUE); age4_first80 exercises the n < 100 rule
    x = pd.to_numeric(data.age if name.startswith("age") else data.marker)
    x = x[:rows] if rows else x
    ref = _ref("knots")
    np.testing.assert_allclose(rcs_knots(x.to_numpy(float), nk), ref[ref.name == name].knot, rtol=0, atol=1e-12)


def test_basis_matches_hmisc(data):
    # rcspline.eval(d$age, nk = 5, inclx = TRUE)
    ref = _ref("basis_age5")
    knots = _ref("knots").query("name == 'age5'").knot
    np.testing.assert_allclose(rcs_basis(ref.age, knots), ref.iloc[:, 1:], rtol=0, atol=1e-11)


@pytest.mark.parametrize(("formula", "tag"), [(F1, "fit1"), (F2, "fit2")])
def test_coefficients_and_stats_match_lrm(data, formula, tag):
    # lrm(formula, data = d): coef(f), sqrt(diag(vcov(f))), f$stats
    fit = fit_lrm(formula, data)
    ref = _ref(f"{tag}_coef")
    assert list(fit.coef.index) == list(ref.term)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=TOL_FIT, atol=TOL_FIT)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), ref.se, rtol=TOL_FIT, atol=TOL_FIT)
    st = _ref(f"{tag}_stats").set_index("stat").value.astype(float)
    for key in ("Obs", "Model L.R.", "d.f.", "P", "R2", "Brier", "g", "gr", "gp"):
        assert fit.stats[key] == pytest.approx(st[key], rel=1e-8, abs=1e-10), key
    # lrm's printed C bins the predicted probabilities; ours is the exact pairwise C (somers2), which validate's
    # index.orig Dxy reports -- checked there. Here: within one discordant pair of 8687.
    assert abs(fit.stats["C"] - st["C"]) <= 1 / (73 * 119) + 1e-12
    assert fit.n == 192 and "8 of 200 rows dropped (marker: 8)" in fit.missing


def test_exact_c_matches_brute_force(fit1):
    lp, y = fit1.linear_predictor, fit1.y
    pos, neg = lp[y == 1], lp[y == 0]
    diff = pos[:, None] - neg[None, :]
    assert fit1.stats["C"] == pytest.approx(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size, abs=1e-14)


@pytest.mark.parametrize(("formula", "tag"), [(F1, "fit1"), (F2, "fit2")])
def test_wald_anova_matches_rms(data, formula, tag):
    # anova(f): rows, Chi-Square, d.f., P
    got = wald_anova(fit_lrm(formula, data))
    ref = _ref(f"{tag}_anova")
    assert [r.strip() for r in got.index] == [r.strip() for r in ref.row]
    np.testing.assert_allclose(got["Chi-Square"], ref.chisq, rtol=1e-7)
    np.testing.assert_array_equal(got["d.f."], ref.df)
    np.testing.assert_allclose(got["P"], ref.p, rtol=1e-6)


def test_lr_tests_match_lrtest(fit1):
    # lrtest(full, reduced) for each factor, knots fixed at the full-data places
    got = lr_tests(fit1)
    ref = _ref("fit1_lrtest").set_index("factor")
    np.testing.assert_allclose(got["L.R. Chisq"], ref.loc[got.index, "chisq"], rtol=1e-7)
    np.testing.assert_array_equal(got["d.f."], ref.loc[got.index, "df"])


def test_effects_match_summary(fit1):
    # summary(f): inter-quartile effects (datadist on all 200 rows) and level-vs-reference effects
    got = effects(fit1).set_index("factor")
    ref = _ref("fit1_summary")
    ref = ref[ref.Type == 1].set_index("row")
    names = {"age": "age", "marker": "marker", "sex...M.F": "sex - M:F", "stage...II.I": "stage - II:I",
             "stage...III.I": "stage - III:I"}
    for rname, ours in names.items():
        row = ref.loc[rname]
        assert got.loc[ours, "effect"] == pytest.approx(row.Effect, rel=1e-7), ours
        assert got.loc[ours, "se"] == pytest.approx(row["S.E."], rel=1e-7), ours
        assert got.loc[ours, "lower"] == pytest.approx(row["Lower.0.95"], rel=1e-6, abs=1e-8), ours
    assert got.loc["age", "low"] == 42.5 and got.loc["age", "high"] == pytest.approx(64.575)


def test_validate_matches_rms_with_r_resamples(fit1, boot_indices):
    # set.seed(101); validate(f1, B = 40)
    got = validate(fit1, indices=boot_indices).table
    ref = _ref("fit1_validate").set_index("index")
    assert list(got.index) == list(ref.index)
    for col in ("index.orig", "training", "test", "optimism", "index.corrected", "n"):
        np.testing.assert_allclose(got[col], ref[col], rtol=0, atol=TOL_BOOT, err_msg=col)


def test_calibrate_matches_rms_with_r_resamples(fit1, boot_indices):
    # set.seed(101); calibrate(f1, B = 40): predy, calibrated.orig, calibrated.corrected, optimism
    got = calibrate(fit1, indices=boot_indices).table
    ref = _ref("fit1_calibrate")
    for col in ref.columns:
        np.testing.assert_allclose(got[col], ref[col], rtol=0, atol=TOL_BOOT, err_msg=col)
    # R's n column (printed in reference_rms.out): 38 39 39 40 ... 39 x5, 38 37 37 37 at the ends
    assert got.n.iloc[:4].tolist() == [38, 39, 39, 40] and got.n.iloc[-4:].tolist() == [38, 37, 37, 37]


def test_seeded_bootstrap_agrees_with_r_in_distribution(fit1):
    # our own resamples: same seed, same answer; and within Monte Carlo error of R's B = 40 optimism
    a = validate(fit1, B=40, seed=7).table
    assert a.equals(validate(fit1, B=40, seed=7).table)
    ref = _ref("fit1_validate").set_index("index")
    assert abs(a.loc["Dxy", "optimism"] - ref.loc["Dxy", "optimism"]) < 0.06
    assert abs(a.loc["Slope", "index.corrected"] - ref.loc["Slope", "index.corrected"]) < 0.12


def test_nomogram_points_match_rms(fit1):
    # nomogram(f1, fun = plogis): points at R's axis values, sc and the total-points intercept
    ref = _ref("nomogram_points")
    axes = {v: [x if v in ("sex", "stage") else float(x) for x in g.value] for v, g in ref.groupby("variable")}
    nom = nomogram(fit1, axes=axes)
    got = nom.to_frame()
    np.testing.assert_allclose(got.points, ref.set_index(["variable", "value"]).loc[
        list(zip(got.variable, [str(v) if isinstance(v, str) else f"{v:g}" for v in got.value], strict=True)),
        "points"], rtol=0, atol=1e-6)
    scale = _ref("nomogram_scale").set_index("key").value
    assert nom.scale == pytest.approx(scale["sc"], rel=1e-8)
    assert nom.intercept == pytest.approx(scale["Intercept"], rel=1e-8)
    # and the default axes are R's: pretty(range, 10)
    default = nomogram(fit1)
    assert next(a.values for a in default.axes if a.variable == "age") == tuple(float(v) for v in range(20, 121, 10))


def test_firth_matches_brglm2_and_separation_is_flagged(data):
    # glm(y ~ age + flag + marker, method = "brglmFit", type = "AS_mean") on the complete cases
    d = data.dropna().reset_index(drop=True)
    d["flag"] = ((d.y == "1") & (d.marker.astype(float) > 1)).astype(int).astype(str)
    with pytest.warns(SeparationWarning, match="separated"):
        ml = fit_lrm("y ~ age + flag + marker", d)
    assert ml.separation
    fit = fit_lrm("y ~ age + flag + marker", d, firth=True)
    ref = _ref("firth_coef")
    np.testing.assert_allclose(fit.coef, ref.coef, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), ref.se, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = fit_lrm("y ~ age + flag + marker", d, firth=None)  # switches to Firth, no warning
    assert auto.firth and "Firth" in auto.warnings[0]
    assert not fit_lrm("y ~ age + marker", d).separation
