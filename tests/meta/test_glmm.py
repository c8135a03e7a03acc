"""Bivariate binomial GLMM against lme4::glmer (Laplace) and, for AGHQ, against brute-force 2-D quadrature."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _dta_data import frame

from nodescope.meta import MetaAnalysisWarning, bivariate_glmm
from nodescope.meta._counts import as_counts
from nodescope.meta._glmm import GlmmProblem, brute_force_loglik

# R (tests/meta/reference/meta_reference.R, block 3), lme4 1.1.31:
#   glmer(cbind(events, n - events) ~ 0 + sens + spec + (0 + sens + spec | study), family = binomial,
#         control = glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10), tolPwrss = 1e-13))
#   values: fixef(f), sqrt(diag(vcov(f))), attr(VarCorr(f)$study, "stddev"/"correlation"), logLik(f)
# (with lme4's default tolPwrss = 1e-7 the estimates move by up to 1.5e-3: see the 'default' lines of the .out file)
R_GLMM = {
    'AuditC': {'mu_sens': 2.511160991, 'mu_spec': 1.276197585, 'se_sens': 0.4617791845, 'se_spec': 0.1688672211, 'sd_sens': 1.612807039, 'sd_spec': 0.6174085057, 'rho': -0.8178519286, 'loglik': -122.7919822},
    'Dementia': {'mu_sens': 1.427754393, 'mu_spec': 2.198665741, 'se_sens': 0.171197626, 'se_spec': 0.205341422, 'sd_sens': 0.9222250807, 'sd_spec': 1.134860853, 'rho': -0.5706272469, 'loglik': -287.9230632},
    'IAQ': {'mu_sens': 3.251321668, 'mu_spec': 2.671508073, 'se_sens': 0.2818809105, 'se_spec': 0.3486191291, 'sd_sens': 1.152642155, 'sd_spec': 1.485052707, 'rho': -0.6088200583, 'loglik': -150.5216923},
    'SAQ': {'mu_sens': 2.230604845, 'mu_spec': 2.425224335, 'se_sens': 0.3093786539, 'se_spec': 0.1470249677, 'sd_sens': 1.618111157, 'sd_spec': 0.761868711, 'rho': -0.5388222012, 'loglik': -236.4119854},
    'skin_tests': {'mu_sens': -1.112820648, 'mu_spec': 3.606195265, 'se_sens': 0.5031313939, 'se_spec': 0.4965259662, 'sd_sens': 1.393773188, 'sd_spec': 1.453376595, 'rho': -0.3710016841, 'loglik': -58.47660094},
    'smoking': {'mu_sens': 2.673783261, 'mu_spec': 2.523298882, 'se_sens': 0.2346898965, 'se_spec': 0.1587714344, 'sd_sens': 1.572869511, 'sd_spec': 1.073204338, 'rho': -0.4519934635, 'loglik': -397.7100207},
}


def _check(r, ref: dict) -> None:  # type: ignore[no-untyped-def]
    sd = np.sqrt(np.diag(r.sigma))
    got = {"mu_sens": r.mu[0], "mu_spec": r.mu[1], "se_sens": np.sqrt(r.cov_mu[0, 0]),
           "se_spec": np.sqrt(r.cov_mu[1, 1]), "sd_sens": sd[0], "sd_spec": sd[1], "rho": r.rho, "loglik": r.loglik}
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, abs=1e-3), k


@pytest.mark.parametrize("name", ["AuditC", "Dementia", "skin_tests"])
def test_laplace_matches_glmer(name: str) -> None:
    r = bivariate_glmm(frame(name))
    assert r.model == "glmm-laplace" and r.fallback == "" and r.correction == 0.0
    _check(r, R_GLMM[name])


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["IAQ", "SAQ", "smoking"])
def test_laplace_matches_glmer_shared(shared_data, name: str) -> None:  # type: ignore[no-untyped-def]
    _check(bivariate_glmm(pd.read_csv(shared_data / "dta_examples" / f"{name}.csv")), R_GLMM[name])


def test_loglik_at_r_estimates_equals_r_loglik() -> None:
    # the objective itself (not just its maximiser) equals glmer's Laplace log-likelihood
    ref = R_GLMM["AuditC"]
    c = as_counts(frame("AuditC"))
    s1, s2, rho = ref["sd_sens"], ref["sd_spec"], ref["rho"]
    sigma = np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]])
    ll = GlmmProblem(c, np.ones((c.k, 1))).loglik(np.array([ref["mu_sens"], ref["mu_spec"]]), sigma)
    assert ll == pytest.approx(ref["loglik"], abs=1e-6)


def _params(name: str) -> tuple:  # type: ignore[type-arg]
    ref = R_GLMM[name]
    s1, s2, rho = ref["sd_sens"], ref["sd_spec"], ref["rho"]
    return (np.array([ref["mu_sens"], ref["mu_spec"]]),
            np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]]))


def test_aghq_one_node_is_laplace_and_many_nodes_match_brute_force() -> None:
    c = as_counts(frame("skin_tests"))
    beta, sigma = _params("skin_tests")
    X = np.ones((c.k, 1))
    lap = GlmmProblem(c, X, 1).loglik(beta, sigma)
    assert GlmmProblem(c, X, 1).loglik(beta, sigma) == pytest.approx(lap, abs=1e-12)
    brute = brute_force_loglik(c, beta, sigma, n_grid=801, half_width=8.0)
    ag15 = GlmmProblem(c, X, 15).loglik(beta, sigma)
    ag25 = GlmmProblem(c, X, 25).loglik(beta, sigma)
    assert ag15 == pytest.approx(brute, abs=1e-6)
    assert ag25 == pytest.approx(brute, abs=1e-6)
    assert abs(lap - brute) > 1e-4  # Laplace is an approximation; AGHQ removes its error


def test_aghq_fit_converges_with_nodes() -> None:
    r9 = bivariate_glmm(frame("AuditC"), method="aghq", n_nodes=9)
    r15 = bivariate_glmm(frame("AuditC"), method="aghq", n_nodes=15)
    lap = bivariate_glmm(frame("AuditC"))
    np.testing.assert_allclose(r9.mu, r15.mu, atol=1e-4)
    np.testing.assert_allclose(r9.sigma, r15.sigma, atol=1e-3)
    assert np.max(np.abs(lap.mu - r15.mu)) < 0.05  # close to, but not equal to, the Laplace fit
    assert r9.model == "glmm-aghq9"


def test_zero_cells_need_no_correction() -> None:
    df = frame("AuditC")
    assert (df[["TP", "FN", "FP", "TN"]] == 0).any().any()
    r = bivariate_glmm(df)
    assert r.corrected == () and np.isfinite(r.mu).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="laplace"):
        bivariate_glmm(frame("AuditC"), method="agq")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_nodes"):
        bivariate_glmm(frame("AuditC"), method="aghq", n_nodes=0)


def test_separation_is_detected_and_falls_back_to_reitsma() -> None:
    # FN = 0 in every cohort: the binomial likelihood of logit sens has no finite maximum; without the check the
    # GLMM returned mu_sens ~ 25 with SE ~ 2e4, converged=True and LR- ~ 1e-11
    df = pd.DataFrame({"study": list("ABCDE"), "TP": [20, 35, 12, 40, 25], "FN": [0, 0, 0, 0, 0],
                       "FP": [10, 6, 20, 8, 12], "TN": [70, 74, 60, 72, 80]})
    with pytest.warns(MetaAnalysisWarning, match="GLMM diverged .*separation"):
        r = bivariate_glmm(df)
    assert r.model.startswith("reitsma") and r.fallback.startswith("Reitsma model with continuity correction 0.5")
    assert r.correction == 0.5 and r.correction_rule == "all-if-any-zero" and r.corrected == tuple("ABCDE")
    assert abs(r.mu[0]) < 10 and np.sqrt(r.cov_mu[0, 0]) < 100
    assert r.lr_negative.estimate > 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = bivariate_glmm(df, fallback="none")
    assert kept.model.startswith("glmm") and any("kept as requested" in w for w in kept.warnings)


def test_laplace_gradient_matches_central_differences() -> None:
    # the exact gradient (implicit differentiation through the conditional modes) against central differences of
    # the Laplace log-likelihood, with a covariate, away from the optimum
    from nodescope.meta._fit import num_grad, sigma_from_chol

    c = as_counts(frame("AuditC"))
    X = np.column_stack([np.ones(c.k), np.linspace(-1, 1, c.k)])
    prob = GlmmProblem(c, X)
    x = np.array([1.0, 0.3, 1.5, -0.2, 1.2, -0.6, 0.8])
    ll, g = prob.laplace_grad(x[:4], tuple(x[4:]))
    f = lambda z: prob.loglik(z[:4], sigma_from_chol(z[4:], False))  # noqa: E731
    assert ll == pytest.approx(f(x), abs=1e-9)
    np.testing.assert_allclose(g, num_grad(f, x, 1e-5), rtol=1e-6, atol=1e-5)


def test_estimates_do_not_depend_on_the_start() -> None:
    # L-BFGS-B from a cold start, from moment estimates, and chord steps from a warm start all end at the same
    # maximum (Newton-polished): the warm start of leave_one_out changes the time, not the numbers
    from nodescope.meta._bivariate import _warm_start
    from nodescope.meta._glmm import GlmmStart, fit_glmm

    df = frame("Dementia")
    full = bivariate_glmm(df)
    c = as_counts(df.drop(index=4))
    X = np.ones((c.k, 1))
    cold = fit_glmm(c, X, ("(Intercept)",))
    far = fit_glmm(c, X, ("(Intercept)",), start=GlmmStart(np.array([[3.0], [0.0]]), np.diag([0.2, 3.0])))
    warm = fit_glmm(c, X, ("(Intercept)",), start=_warm_start(full))
    assert warm.message.startswith("converged by chord steps")
    for other in (far, warm):
        np.testing.assert_allclose(other.coef, cold.coef, rtol=1e-8)
        np.testing.assert_allclose(other.sigma, cold.sigma, rtol=1e-7)
        np.testing.assert_allclose(other.cov_coef, cold.cov_coef, rtol=1e-6)
        assert other.loglik == pytest.approx(cold.loglik, abs=1e-9)
    r_cold, r_warm = bivariate_glmm(df.drop(index=4)), bivariate_glmm(df.drop(index=4), start=full)
    np.testing.assert_allclose(r_warm.mu, r_cold.mu, rtol=1e-8)
    assert r_warm.auc.estimate == pytest.approx(r_cold.auc.estimate, rel=1e-8)
    with pytest.raises(TypeError, match="start must be a BivariateResult"):
        bivariate_glmm(df, start=df)  # type: ignore[arg-type]


def test_fn_zero_in_every_cohort_falls_back_instead_of_failing() -> None:
    # issue 15, error 4: this valid set stopped `nodescope meta` with "Singular matrix"; it must reach the documented
    # separation fallback (the Reitsma model with continuity correction)
    df = pd.DataFrame({"TP": [24, 28, 34, 32, 23, 38], "FN": [0] * 6, "FP": [7, 3, 6, 9, 6, 5],
                       "TN": [42, 55, 60, 46, 40, 51]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        r = bivariate_glmm(df)
    assert r.model.startswith("reitsma") and "separation" in r.fallback
    assert np.isfinite(r.mu).all() and 0.9 < r.sensitivity.estimate < 1
