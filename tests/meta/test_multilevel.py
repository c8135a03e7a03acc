"""Several cohorts per study: cluster-robust (CR1) variance and the three-level bivariate model, against metafor.

Reference values: tests/meta/reference/meta_multilevel.R, output in meta_multilevel.out (R 4.2.2, metafor 3.8.1):
``robust(rma.mv(..., random = ~ outcome | cohort, struct = "UN"), cluster = study_id, adjust = TRUE)``, the same
sandwich by its formula in base R, and ``rma.mv(..., random = list(~ outcome | study, ~ outcome | cohort),
struct = c("UN", "UN"))`` by REML and ML.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.meta import (
    MetaAnalysisWarning,
    compare_cohorts_per_study,
    multilevel_reitsma,
    pool_cohorts_per_study,
    reitsma,
)
from nodescope.meta._counts import LOGITS, as_counts, measure_data
from nodescope.meta._fit import chol_from_sigma
from nodescope.meta._multilevel import _ThreeLevel

REF = Path(__file__).parent / "reference" / "meta_multilevel.out"


def _ref() -> dict[tuple[str, ...], np.ndarray]:
    """``(block, data set[, method], quantity) -> values`` from the committed R output."""
    out: dict[tuple[str, ...], np.ndarray] = {}
    for line in REF.read_text().splitlines():
        if line.startswith("#"):
            continue
        parts = line.split()
        head = parts[:4] if parts[0] == "threelevel" else parts[:3]
        rest = parts[len(head):]
        # a line may hold two quantities: "tau2_study v v rho_study v"
        key, vals = head, []
        for tok in rest:
            try:
                vals.append(float(tok))
            except ValueError:
                out[tuple(key)] = np.array(vals)
                key, vals = [*head[:-1], tok], []
        out[tuple(key)] = np.array(vals)
    return out


R = _ref()
SETS = ["IAQ", "SAQ", "smoking"]


def _read(shared_data, name: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return pd.read_csv(shared_data / "dta_examples" / f"{name}.csv")


@pytest.mark.shared_data
@pytest.mark.parametrize("name", SETS)
def test_cluster_robust_matches_metafor_robust(shared_data, name: str) -> None:  # type: ignore[no-untyped-def]
    df = _read(shared_data, name)
    plain, rob = reitsma(df), reitsma(df, cluster="study_id")
    np.testing.assert_allclose(rob.mu, R[("robust", name, "coef")], atol=1e-5)
    np.testing.assert_allclose(plain.cov_mu.ravel(), R[("robust", name, "model_vcov")], rtol=1e-4)
    np.testing.assert_allclose(rob.cov_mu.ravel(), R[("robust", name, "vcov")], rtol=1e-4)
    # metafor's robust() and the base-R sandwich agree with each other (independent computations of one formula)
    np.testing.assert_allclose(R[("sandwich", name, "vcov")], R[("robust", name, "vcov")], rtol=1e-8)
    assert np.array_equal(rob.mu, plain.mu) and np.array_equal(rob.sigma, plain.sigma)
    assert "cluster-robust" in rob.se_method and f"over {int(R[('robust', name, 'n_clusters')][0])} studies" in rob.se_method
    se = np.sqrt(rob.cov_mu[0, 0])
    assert rob.sensitivity.ci_low == pytest.approx(1 / (1 + np.exp(-(rob.mu[0] - stats.norm.ppf(0.975) * se))))


@pytest.mark.shared_data
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("name", SETS)
def test_three_level_matches_metafor_rma_mv(shared_data, name: str, method: str) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)  # IAQ by ML: the between-study rho reaches -1
        r = multilevel_reitsma(_read(shared_data, name), study_col="study_id", method=method)  # type: ignore[arg-type]
    key = ("threelevel", name, method)
    assert r.loglik == pytest.approx(R[(*key, "loglik")][0], abs=1e-5)
    np.testing.assert_allclose(r.pooled.mu, R[(*key, "coef")], atol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(r.pooled.cov_mu)), R[(*key, "se")], atol=1e-4)
    for lev, sg in (("study", r.sigma_study), ("cohort", r.sigma_cohort)):
        np.testing.assert_allclose(np.diag(sg), R[(*key, f"tau2_{lev}")], atol=1e-3)
        rho = sg[0, 1] / np.sqrt(sg[0, 0] * sg[1, 1])
        assert rho == pytest.approx(R[(*key, f"rho_{lev}")][0], abs=1e-3)
    np.testing.assert_allclose(r.pooled.sigma, r.sigma_study + r.sigma_cohort)
    assert r.n_studies == len(set(_read(shared_data, name)["study_id"])) and r.pooled.model == f"multilevel-{method.lower()}"


def _tiny() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    study = np.repeat([f"s{i}" for i in range(6)], [1, 2, 3, 1, 2, 2])
    n1, n0 = rng.integers(20, 60, study.size), rng.integers(40, 120, study.size)
    tp, tn = rng.binomial(n1, 0.8), rng.binomial(n0, 0.85)
    return pd.DataFrame({"study": study, "TP": tp, "FN": n1 - tp, "FP": n0 - tn, "TN": tn})


def test_three_level_loglik_equals_a_dense_multivariate_normal() -> None:
    # the batched-by-study-size likelihood against scipy's multivariate normal on the whole 2k-vector (ML), and the
    # REML one against ML + its closed-form correction
    df = _tiny()
    y, s, _ = measure_data(as_counts(df), LOGITS, 0.5, "all-if-any-zero")
    s_study = np.array([[0.3, -0.1], [-0.1, 0.2]])
    s_cohort = np.array([[0.2, 0.05], [0.05, 0.4]])
    theta = np.concatenate([chol_from_sigma(s_study, False), chol_from_sigma(s_cohort, False)])
    ml = _ThreeLevel(y, s, df["study"].to_numpy(), reml=False)
    mu, a, _, _ = ml.parts(s_study, s_cohort)
    st = df["study"].to_numpy()
    k = len(df)
    V = np.zeros((2 * k, 2 * k))
    for i in range(k):
        for j in range(k):
            blk = (s_study if st[i] == st[j] else 0) + (s_cohort if i == j else 0)
            V[2 * i:2 * i + 2, 2 * j:2 * j + 2] = blk
    V += np.diag(s.ravel())
    dense = stats.multivariate_normal(np.tile(mu, k), V).logpdf(y.ravel())
    assert ml.loglik(theta) == pytest.approx(dense, abs=1e-9)
    D = np.tile(np.eye(2), (k, 1))
    np.testing.assert_allclose(a, D.T @ np.linalg.solve(V, D), rtol=1e-10)
    reml = _ThreeLevel(y, s, st, reml=True).loglik(theta)
    assert reml == pytest.approx(dense + np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(a)[1] + np.log(k), abs=1e-9)


def test_bad_input_is_named() -> None:
    df = _tiny()
    with pytest.raises(ValueError, match="study column 'trial'"):
        reitsma(df, cluster="trial")
    with pytest.raises(ValueError, match="at least one study with several cohorts"):
        multilevel_reitsma(df.assign(study=[f"x{i}" for i in range(len(df))]))
    bad = df.assign(study=df["study"].astype(object))
    bad.loc[2, "study"] = None
    with pytest.raises(ValueError, match=r"empty in row\(s\) \[3\]"):
        multilevel_reitsma(bad)
    with pytest.raises(ValueError, match="approach='three'"):
        pool_cohorts_per_study(df, "three")  # type: ignore[arg-type]


def test_compare_and_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = _tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetaAnalysisWarning)
        table = compare_cohorts_per_study(df)
    assert table["approach"].tolist() == ["independent", "one", "robust", "multilevel"]
    assert table["cohorts"].tolist() == [11, 6, 11, 11] and set(table["studies"]) == {6}
    ind, rob = table.iloc[0], table.iloc[2]
    assert rob["sensitivity"] == ind["sensitivity"] and rob["se_logit_sens"] != ind["se_logit_sens"]
    csv = tmp_path / "studies.csv"
    df.rename(columns={"study": "trial"}).assign(cohort=range(len(df))).to_csv(csv, index=False)
    out = tmp_path / "cmp.csv"
    runner = CliRunner()
    res = runner.invoke(app, ["meta-cohorts", str(csv), "--study-col", "trial", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in " ".join(res.output.split())
    got = pd.read_csv(out)
    np.testing.assert_allclose(got["se_logit_spec"], table["se_logit_spec"], rtol=1e-9)
    res = runner.invoke(app, ["meta-cohorts", str(csv), "--study-col", "trial", "-o", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output
    res = runner.invoke(app, ["meta-cohorts", str(csv), "--study-col", "trial", "--cohorts-per-study", "three"])
    assert res.exit_code == 2 and "--cohorts-per-study 'three' is not valid" in res.output
    res = runner.invoke(app, ["meta-cohorts", str(csv), "--study-col", "trial", "--cohorts-per-study", "robust"])
    assert res.exit_code == 0 and "robust" in res.output and "multilevel" not in res.output
