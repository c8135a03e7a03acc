"""Bivariate normal (Reitsma) model against metafor::rma.mv and the published HSROC/SROC identities."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _dta_data import frame
from scipy import stats
from scipy.special import expit, logit

from nodescope.meta import MetaAnalysisWarning, reitsma

# R (tests/meta/reference/meta_reference.R, block 2): with 0.5 added to all cells of all cohorts when any cell is 0
# (mada::reitsma's correction.control = "all"):
#   rma.mv(yi, vi, mods = ~ 0 + outcome, random = ~ outcome | study, struct = "UN", method = "REML"/"ML",
#          control = list(rel.tol = 1e-10)) on yi = (logit sens, logit spec), vi = (1/TP + 1/FN, 1/TN + 1/FP)
#   values: coef(f), f$se, f$tau2, f$rho, logLik(f) (metafor 3.8.1)
R_REITSMA = {
    ('AuditC', 'REML'): {'mu_sens': 2.099742492, 'mu_spec': 1.263690923, 'se_sens': 0.3378511983, 'se_spec': 0.1743313828, 'tau2_sens': 1.379584681, 'tau2_spec': 0.4072080416, 'rho': -0.8542746945, 'loglik': -31.2705398},
    ('AuditC', 'ML'): {'mu_sens': 2.076258996, 'mu_spec': 1.262447081, 'se_sens': 0.3198654369, 'se_spec': 0.1675446539, 'tau2_sens': 1.223843357, 'tau2_spec': 0.3748829371, 'rho': -0.8610573525, 'loglik': -32.40031929},
    ('Dementia', 'REML'): {'mu_sens': 1.317331274, 'mu_spec': 2.052318091, 'se_sens': 0.150398764, 'se_spec': 0.1714430153, 'tau2_sens': 0.6399380206, 'tau2_spec': 0.8772431908, 'rho': -0.5779154615, 'loglik': -87.60014428},
    ('Dementia', 'ML'): {'mu_sens': 1.315280408, 'mu_spec': 2.048709671, 'se_sens': 0.1477975204, 'se_spec': 0.1679354196, 'tau2_sens': 0.6154115706, 'tau2_spec': 0.8392712915, 'rho': -0.5795260387, 'loglik': -89.11038448},
    ('skin_tests', 'REML'): {'mu_sens': -1.052227743, 'mu_spec': 3.480652647, 'se_sens': 0.4850763829, 'se_spec': 0.5013948296, 'tau2_sens': 1.726566197, 'tau2_spec': 2.182775449, 'rho': -0.3983080516, 'loglik': -33.18768394},
    ('skin_tests', 'ML'): {'mu_sens': -1.055734069, 'mu_spec': 3.469941208, 'se_sens': 0.4569527084, 'se_spec': 0.4772117635, 'tau2_sens': 1.467231945, 'tau2_spec': 1.950364367, 'rho': -0.4137845873, 'loglik': -35.80367185},
    ('SAQ', 'REML'): {'mu_sens': 2.031740218, 'mu_spec': 2.347889078, 'se_sens': 0.2789155685, 'se_spec': 0.1387288445, 'tau2_sens': 2.14006442, 'tau2_spec': 0.515746675, 'rho': -0.5534414017, 'loglik': -87.84888609},
    ('SAQ', 'ML'): {'mu_sens': 2.029653596, 'mu_spec': 2.345494637, 'se_sens': 0.2740995421, 'se_spec': 0.1362457127, 'tau2_sens': 2.059657516, 'tau2_spec': 0.4952139568, 'rho': -0.5557810625, 'loglik': -89.71533088},
}


def _check(r, ref: dict) -> None:  # type: ignore[no-untyped-def]
    got = {"mu_sens": r.mu[0], "mu_spec": r.mu[1], "se_sens": np.sqrt(r.cov_mu[0, 0]),
           "se_spec": np.sqrt(r.cov_mu[1, 1]), "tau2_sens": r.tau2_sens, "tau2_spec": r.tau2_spec, "rho": r.rho,
           "loglik": r.loglik}
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, abs=1e-4), k


@pytest.mark.parametrize("key", [k for k in sorted(R_REITSMA) if k[0] != "SAQ"])
def test_matches_metafor_rma_mv(key: tuple[str, str]) -> None:
    name, method = key
    r = reitsma(frame(name), method=method)  # type: ignore[arg-type]
    assert r.fallback == "" and r.converged
    _check(r, R_REITSMA[key])


@pytest.mark.shared_data
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_matches_metafor_rma_mv_saq(shared_data, method: str) -> None:  # type: ignore[no-untyped-def]
    df = pd.read_csv(shared_data / "dta_examples" / "SAQ.csv")
    _check(reitsma(df, method=method), R_REITSMA[("SAQ", method)])  # type: ignore[arg-type]


def test_correction_convention_recorded() -> None:
    r = reitsma(frame("AuditC"))
    assert r.correction_rule == "all-if-any-zero" and r.correction == 0.5
    assert len(r.corrected) == 14  # two cohorts have a zero cell, so every cohort is corrected (mada's "all")
    r2 = reitsma(frame("skin_tests"))  # no zero cells: nothing added
    assert r2.corrected == ()
    r3 = reitsma(frame("AuditC"), correction_rule="studies-with-zero")
    assert r3.corrected == ("AuditC_07", "AuditC_08")


def test_sign_of_rho_between_parametrisations() -> None:
    r = reitsma(frame("AuditC"))
    assert r.rho < 0 and r.rho_sens_fpr == pytest.approx(-r.rho)
    assert r.to_dict()["rho_sens_spec"] == pytest.approx(r.rho)


def test_hsroc_conversion_inverts_to_bivariate() -> None:
    # Harbord et al. 2007: logit sens = (Theta + Lambda/2) exp(-beta/2), logit FPR = (Theta - Lambda/2) exp(beta/2),
    # var(logit sens) = (s2_theta + s2_alpha/4) exp(-beta), var(logit FPR) = (s2_theta + s2_alpha/4) exp(beta),
    # cov(logit sens, logit FPR) = s2_theta - s2_alpha/4.
    r = reitsma(frame("Dementia"))
    h = r.hsroc
    assert (h.theta + h.lambda_ / 2) * np.exp(-h.beta / 2) == pytest.approx(r.mu[0])
    assert (h.theta - h.lambda_ / 2) * np.exp(h.beta / 2) == pytest.approx(-r.mu[1])
    assert (h.sigma2_theta + h.sigma2_alpha / 4) * np.exp(-h.beta) == pytest.approx(r.tau2_sens)
    assert (h.sigma2_theta + h.sigma2_alpha / 4) * np.exp(h.beta) == pytest.approx(r.tau2_spec)
    assert h.sigma2_theta - h.sigma2_alpha / 4 == pytest.approx(-r.sigma[0, 1])


def test_sroc_passes_through_summary_point_and_auc_by_brute_force() -> None:
    r = reitsma(frame("AuditC"))
    _f, s = r.sroc_curve(np.array([1 - r.specificity.estimate]))
    assert s[0] == pytest.approx(r.sensitivity.estimate, abs=1e-12)
    grid = np.linspace(1e-7, 1 - 1e-7, 2_000_001)
    _, sens = r.sroc_curve(grid)
    assert r.auc.estimate == pytest.approx(np.trapezoid(sens, grid), abs=1e-6)
    assert r.auc.ci_low < r.auc.estimate < r.auc.ci_high


def test_regions_are_ellipses_of_the_right_size() -> None:
    r = reitsma(frame("Dementia"))
    c2 = stats.chi2.ppf(0.95, 2)
    for (fpr, sens), cov in ((r.confidence_region(), r.cov_mu), (r.prediction_region(), r.sigma + r.cov_mu)):
        pts = np.vstack([logit(sens), -logit(fpr)]) - r.mu[:, None]
        d2 = np.einsum("in,ij,jn->n", pts, np.linalg.inv(cov), pts)
        np.testing.assert_allclose(d2, c2, rtol=1e-8)


def test_ratios_delta_method_and_simulation_agree() -> None:
    r = reitsma(frame("Dementia"))
    sens, spec = r.sensitivity.estimate, r.specificity.estimate
    assert r.lr_positive.estimate == pytest.approx(sens / (1 - spec))
    assert r.lr_negative.estimate == pytest.approx((1 - sens) / spec)
    assert r.dor.estimate == pytest.approx(np.exp(r.mu.sum()))
    rs = reitsma(frame("Dementia"), ci_method="simulation", n_sim=20000, seed=1)
    for a, b in ((r.lr_positive, rs.lr_positive), (r.dor, rs.dor), (r.lr_negative, rs.lr_negative)):
        assert b.ci_low == pytest.approx(a.ci_low, rel=0.03) and b.ci_high == pytest.approx(a.ci_high, rel=0.03)


def test_sensitivity_ci_is_logit_wald() -> None:
    r = reitsma(frame("skin_tests"))
    se = np.sqrt(r.cov_mu[0, 0])
    assert r.sensitivity.ci_low == pytest.approx(expit(r.mu[0] - 1.959963985 * se))


def test_few_cohorts_fall_back_to_rho_zero_with_warning() -> None:
    with pytest.warns(MetaAnalysisWarning, match="fewer than 4|only 3"):
        r = reitsma(frame("AuditC").iloc[:3])
    assert r.rho_fixed and r.sigma[0, 1] == 0 and "fewer than 4" in r.fallback and r.warnings


def test_degenerate_fit_warns_and_falls_back() -> None:
    df = pd.DataFrame({"TP": [40, 41, 39, 40, 40], "FN": [10, 9, 11, 10, 10], "FP": [10, 30, 5, 20, 15],
                       "TN": [90, 70, 95, 80, 85]})
    with pytest.warns(MetaAnalysisWarning, match="degenerate"):
        r = reitsma(df)
    assert r.rho_fixed and "rho fixed at 0" in r.fallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        r2 = reitsma(df, fallback="none")
    assert not r2.rho_fixed and r2.fallback == ""


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="REML"):
        reitsma(frame("AuditC"), method="reml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2"):
        reitsma(frame("AuditC").iloc[:1])
    with pytest.raises(ValueError, match="infinite"):
        reitsma(frame("AuditC"), correction_rule="none")
    with pytest.raises(ValueError, match="fallback"):
        reitsma(frame("AuditC"), fallback="univariate")  # type: ignore[arg-type]


def test_summary_frame_and_dict() -> None:
    r = reitsma(frame("AuditC"))
    sf = r.summary_frame()
    assert {"sensitivity", "specificity", "lr_positive", "lr_negative", "dor", "auc", "hsroc_beta", "i2_bivariate_percent"} <= set(sf["name"])
    d = r.to_dict()
    assert d["estimates"]["sensitivity"]["estimate"] == pytest.approx(r.sensitivity.estimate)
    assert 0 <= r.heterogeneity.i2_bivariate_percent <= 100


def test_docs_claim_only_the_validation_that_was_done() -> None:
    # mada is not installed; only metafor::rma.mv agreement is shown, so no docstring may say "as mada::reitsma"
    import nodescope.meta._reitsma as mod
    from nodescope.meta import reitsma as fn

    for doc in (mod.__doc__, fn.__doc__):
        assert "as R ``mada::reitsma``" not in doc and "as mada" not in doc
        assert "metafor::rma.mv" in doc


def test_bivariate_i2_uses_the_models_correction_and_percent() -> None:
    # AuditC has zero cells; Reitsma's default rule adds 0.5 to every cell of every cohort, so I2 must use those
    # within-cohort variances (not 0.5 added only to the zero-cell cohorts), and report percent like metafor:
    # I2 = 100 tau2 / (tau2 + s2), s2 = (k - 1) sum w / ((sum w)^2 - sum w^2), w = 1 / (1/TP + 1/FN) (Higgins &
    # Thompson 2002)
    df = frame("AuditC")
    r = reitsma(df)
    tp, fn, fp, tn = (df[c].to_numpy() + 0.5 for c in ("TP", "FN", "FP", "TN"))
    k = len(df)
    expected = []
    for j, v in enumerate((1 / tp + 1 / fn, 1 / tn + 1 / fp)):
        w = 1 / v
        s2 = (k - 1) * w.sum() / (w.sum() ** 2 - np.sum(w**2))
        expected.append(100 * r.sigma[j, j] / (r.sigma[j, j] + s2))
    assert r.heterogeneity.i2_sens_percent == pytest.approx(expected[0], rel=1e-10)
    assert r.heterogeneity.i2_spec_percent == pytest.approx(expected[1], rel=1e-10)
    assert 1 < r.heterogeneity.i2_sens_percent <= 100  # percent, not a fraction


def test_auc_ci_with_rho_fixed_includes_tau_uncertainty() -> None:
    # k = 3 -> rho fixed at 0; the AUC CI must still carry the uncertainty of (log tau_sens, log tau_spec)
    # (delta method on logit AUC over (mu_A, mu_B, log tau_A, log tau_B)) and say precisely what it ignores
    from nodescope.meta._summary import sroc_auc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        r = reitsma(frame("Dementia").iloc[:3])
    assert r.rho_fixed and r.cov_eta is not None
    assert np.all(np.diag(r.cov_eta)[:2] > 0) and np.all(r.cov_eta[2] == 0)
    assert "boundary" not in r.auc.note and "rho fixed at 0 and treated as known" in r.auc.note
    x0 = np.concatenate([r.mu, 0.5 * np.log(np.diag(r.sigma))])
    g = np.empty(4)
    for i in range(4):
        e = np.zeros(4)
        e[i] = 1e-5
        f = [logit(sroc_auc(x[:2], np.exp(x[2:]))) for x in (x0 + e, x0 - e)]
        g[i] = (f[0] - f[1]) / 2e-5
    se_mu_only = np.sqrt(g[:2] @ r.cov_mu @ g[:2])
    cov4 = np.zeros((4, 4))
    cov4[:2, :2], cov4[2:, 2:] = r.cov_mu, r.cov_eta[:2, :2]
    assert r.auc.extra["se"] == pytest.approx(np.sqrt(g @ cov4 @ g), rel=1e-4)
    assert r.auc.extra["se"] > se_mu_only
