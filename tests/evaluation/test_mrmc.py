"""Obuchowski-Rockette MRMC analysis: reference values from R's MRMCaov, brute-force formulas, OR-DBM equivalence."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nodescope.evaluation._mrmc import mrmc_analysis

DATA = Path(__file__).parent / "data"


def read_lrc(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse the MRMC/LABMRMC ``.lrc`` text layout: per reader, normal cases then ``*``, abnormal cases then ``*``.

    Each data line is ``rating_modality0<TAB>rating_modality1<TAB>case``; ``#`` ends the file.
    """
    lines = path.read_text().splitlines()[1:]
    ratings: dict[tuple[int, int, int], float] = {}
    truth: dict[int, int] = {}
    i = 0
    while lines[i] != "#":
        reader = int(lines[i])
        i += 1
        if lines[i].startswith('"'):  # first reader block carries the modality names and the "L L" line
            i += 2
        for status in (0, 1):
            while lines[i] != "*":
                a, b, case = lines[i].split("\t")
                ratings[(0, reader, int(case))] = float(a)
                ratings[(1, reader, int(case))] = float(b)
                truth[int(case)] = status
                i += 1
            i += 1
    cases = sorted(truth)
    readers = sorted({k[1] for k in ratings})
    x = np.array([[[ratings[(m, r, c)] for c in cases] for r in readers] for m in (0, 1)])
    return np.array([truth[c] for c in cases]), x


@pytest.fixture(scope="module")
def vandyke() -> tuple[np.ndarray, np.ndarray]:
    # Van Dyke et al. (1993) CINE MRI (modality 0 = treatment 1) vs SE MRI, 5 readers, 69 normal + 45 abnormal
    # cases, 5-point ratings. File copied verbatim from RJafroc (dpc10ster/RJafroc, inst/extdata/datasets/VD.lrc);
    # the same data are MRMCaov's `VanDyke` data set (first rows checked by hand against its print-out).
    return read_lrc(DATA / "VanDyke.lrc")


def test_vandyke_layout(vandyke):
    y, x = vandyke
    assert x.shape == (2, 5, 114)
    assert y.sum() == 45 and (1 - y).sum() == 69


def test_vandyke_delong_matches_mrmcaov(vandyke):
    # Reference: MRMCaov JSS manuscript (brian-j-smith/MRMCaov, docs/jss/MRMCaov.tex), output of
    #   est <- mrmc(empirical_auc(truth, rating), treatment, reader, case, data = VanDyke, cov = DeLong)
    #   summary(est)
    y, x = vandyke
    res = mrmc_analysis(y, x, cov="delong", modalities=["1", "2"], readers=["1", "2", "3", "4", "5"])
    assert res.var_error == pytest.approx(0.0007921325, abs=5e-11)
    assert res.cov1 == pytest.approx(0.0003420090, abs=5e-11)
    assert res.cov2 == pytest.approx(0.0003395265, abs=5e-11)
    assert res.cov3 == pytest.approx(0.0002358497, abs=5e-11)
    assert res.var_reader == pytest.approx(0.0015364254, abs=5e-11)
    assert res.var_modality_reader == pytest.approx(0.0002045840, abs=5e-11)
    assert res.ms_t == pytest.approx(0.004796171, abs=5e-10)
    assert res.ms_tr == pytest.approx(0.0005510306, abs=5e-11)
    assert res.f_statistic == pytest.approx(4.484854, abs=5e-7)
    assert res.df1 == 1
    assert res.df2 == pytest.approx(15.06611, abs=5e-6)
    assert res.p_value == pytest.approx(0.05123303, abs=5e-9)
    diff = res.differences[0]
    assert diff.estimate == pytest.approx(-0.04380032, abs=5e-9)
    assert diff.extra["se"] == pytest.approx(0.0206825, abs=5e-8)
    assert diff.ci_low == pytest.approx(-0.0878671960, abs=5e-10)
    assert diff.ci_high == pytest.approx(0.0002665519, abs=5e-10)
    assert diff.extra["t"] == pytest.approx(-2.117747, abs=5e-7)
    m1, m2 = res.modality_auc
    assert m1.estimate == pytest.approx(0.8970370, abs=5e-8)
    assert m1.extra["se"] == pytest.approx(0.03307642, abs=5e-9)
    assert m1.extra["df"] == pytest.approx(12.59597, abs=5e-6)
    assert (m1.ci_low, m1.ci_high) == pytest.approx((0.8253461, 0.9687280), abs=5e-8)
    assert m2.estimate == pytest.approx(0.9408374, abs=5e-8)
    assert m2.extra["cov2"] == pytest.approx(0.0002015292, abs=5e-11)
    assert (m2.ci_low, m2.ci_high) == pytest.approx((0.8942155, 0.9874592), abs=5e-8)


def test_vandyke_jackknife_matches_mrmcaov(vandyke):
    # Reference: same MRMCaov manuscript, default (jackknife) covariances with fixed readers:
    #   est <- mrmc(empirical_auc(truth, rating), treatment, fixed(reader), case, data = VanDyke); summary(est)
    # Reader AUCs from its "Single reader 95% CIs" table.
    y, x = vandyke
    res = mrmc_analysis(y, x, cov="jackknife")
    assert res.var_error == pytest.approx(0.0008022883, abs=5e-11)
    assert res.cov1 == pytest.approx(0.0003466137, abs=5e-11)
    assert res.cov2 == pytest.approx(0.0003440748, abs=5e-11)
    assert res.cov3 == pytest.approx(0.0002390284, abs=5e-11)
    assert res.var_reader == pytest.approx(0.0015349993, abs=5e-11)
    assert res.var_modality_reader == pytest.approx(0.0002004025, abs=5e-11)
    assert res.fixed_readers["chi2"] == pytest.approx(5.475953, abs=5e-7)
    assert res.fixed_readers["p_value"] == pytest.approx(0.01927984, abs=5e-9)
    fdiff = res.fixed_readers["differences"][0]
    assert fdiff.extra["se"] == pytest.approx(0.01871748, abs=5e-9)
    assert (fdiff.ci_low, fdiff.ci_high) == pytest.approx((-0.08048591, -0.00711473), abs=5e-9)
    expected_auc = [[0.9196457, 0.8587762, 0.9038647, 0.9731079, 0.8297907],
                    [0.9478261, 0.9053140, 0.9217391, 0.9993559, 0.9299517]]
    np.testing.assert_allclose(res.auc.to_numpy().T, expected_auc, atol=5e-8)
    # RRRC with jackknife covariances = DBM (RJafroc's dataset02 DBM analysis reports F 4.46, ddf 15.3,
    # p 0.0517); here the F, df and p come out of the OR formulas applied to the MRMCaov covariances above:
    # (0.004796171 / (0.0005510306 + 5 * (0.0003440748 - 0.0002390284))).
    assert res.f_statistic == pytest.approx(0.004796171 / (0.0005510306 + 5 * (0.0003440748 - 0.0002390284)),
                                            rel=1e-6)
    assert res.p_value == pytest.approx(0.0517, abs=5e-5)


def _brute_force_or(y: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """Obuchowski-Rockette RRRC with DeLong covariances written out from the formulas, loop by loop."""
    t, r, _ = x.shape
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    m, n = len(pos), len(neg)

    def psi(a: float, b: float) -> float:
        return 1.0 if a > b else (0.5 if a == b else 0.0)

    v10 = {}
    v01 = {}
    theta = np.zeros((t, r))
    for i in range(t):
        for j in range(r):
            mat = np.array([[psi(x[i, j, p], x[i, j, q]) for q in neg] for p in pos])
            theta[i, j] = mat.mean()
            v10[i, j] = mat.mean(axis=1)
            v01[i, j] = mat.mean(axis=0)
    keys = list(itertools.product(range(t), range(r)))
    cov = {}
    for a in keys:
        for b in keys:
            s10 = sum((v10[a][k] - theta[a]) * (v10[b][k] - theta[b]) for k in range(m)) / (m - 1)
            s01 = sum((v01[a][k] - theta[a]) * (v01[b][k] - theta[b]) for k in range(n)) / (n - 1)
            cov[a, b] = s10 / m + s01 / n
    var = np.mean([cov[a, a] for a in keys])
    cov2 = np.mean([cov[a, b] for a in keys for b in keys if a[0] == b[0] and a[1] != b[1]])
    cov3 = np.mean([cov[a, b] for a in keys for b in keys if a[0] != b[0] and a[1] != b[1]])
    grand = theta.mean()
    ms_t = r * sum((theta[i].mean() - grand) ** 2 for i in range(t)) / (t - 1)
    ms_tr = sum((theta[i, j] - theta[i].mean() - theta[:, j].mean() + grand) ** 2
                for i in range(t) for j in range(r)) / ((t - 1) * (r - 1))
    denom = ms_tr + r * max(cov2 - cov3, 0)
    f = ms_t / denom
    ddf = denom**2 / (ms_tr**2 / ((t - 1) * (r - 1)))
    return {"var": var, "cov2": cov2, "cov3": cov3, "f": f, "ddf": ddf, "p": stats.f.sf(f, t - 1, ddf)}


def test_or_against_brute_force_formulas():
    rng = np.random.default_rng(7)
    t, r, n_cases = 3, 4, 40
    y = (rng.random(n_cases) < 0.4).astype(int)
    signal = y * 1.0
    x = np.stack([
        np.stack([np.round(signal * (0.8 + 0.3 * i) + rng.normal(size=n_cases) + 0.2 * j, 1) for j in range(r)])
        for i in range(t)
    ])  # rounding creates ties within and across classes
    ref = _brute_force_or(y, x)
    res = mrmc_analysis(y, x, cov="delong")
    assert res.var_error == pytest.approx(ref["var"], rel=1e-12)
    assert res.cov2 == pytest.approx(ref["cov2"], rel=1e-12)
    assert res.cov3 == pytest.approx(ref["cov3"], rel=1e-12)
    assert res.f_statistic == pytest.approx(ref["f"], rel=1e-10)
    assert res.df2 == pytest.approx(ref["ddf"], rel=1e-10)
    assert res.p_value == pytest.approx(ref["p"], rel=1e-9)
    assert len(res.differences) == 3  # all pairs of 3 modalities


def test_jackknife_equals_dbm_pseudovalue_anova(vandyke):
    # OR-DBM equivalence (Hillis et al. 2005): DBM's F from an ANOVA of jackknife pseudovalues equals OR's F with
    # jackknife covariances. The pseudovalues are computed here by literally dropping each case.
    y, x = vandyke
    t, r, n_cases = x.shape

    def auc(truth: np.ndarray, score: np.ndarray) -> float:
        p, q = score[truth == 1], score[truth == 0]
        return float(((p[:, None] > q[None, :]) + 0.5 * (p[:, None] == q[None, :])).mean())

    theta = np.array([[auc(y, x[i, j]) for j in range(r)] for i in range(t)])
    keep = ~np.eye(n_cases, dtype=bool)
    loo = np.array([[[auc(y[keep[k]], x[i, j, keep[k]]) for k in range(n_cases)] for j in range(r)]
                    for i in range(t)])
    pv = n_cases * theta[:, :, None] - (n_cases - 1) * loo  # (t, r, c)
    g = pv.mean()
    mt, mr, mc = pv.mean(axis=(1, 2)), pv.mean(axis=(0, 2)), pv.mean(axis=(0, 1))
    mtr, mtc = pv.mean(axis=2), pv.mean(axis=1)
    mrc = pv.mean(axis=0)
    ms_t = r * n_cases * ((mt - g) ** 2).sum() / (t - 1)
    ms_tr = n_cases * ((mtr - mt[:, None] - mr[None, :] + g) ** 2).sum() / ((t - 1) * (r - 1))
    ms_tc = r * ((mtc - mt[:, None] - mc[None, :] + g) ** 2).sum() / ((t - 1) * (n_cases - 1))
    resid = pv - mtr[:, :, None] - mtc[:, None, :] - mrc[None, :, :] + mt[:, None, None] + mr[None, :, None] \
        + mc[None, None, :] - g
    ms_trc = (resid**2).sum() / ((t - 1) * (r - 1) * (n_cases - 1))
    denom = ms_tr + max(ms_tc - ms_trc, 0)
    f_dbm = ms_t / denom
    ddf_dbm = denom**2 / (ms_tr**2 / ((t - 1) * (r - 1)))
    res = mrmc_analysis(y, x, cov="jackknife")
    assert res.f_statistic == pytest.approx(f_dbm, rel=1e-9)
    assert res.df2 == pytest.approx(ddf_dbm, rel=1e-9)


def test_invariant_to_monotone_transform_per_reader(vandyke):
    y, x = vandyke
    res = mrmc_analysis(y, x)
    x2 = x.copy()
    x2[:, 2] = np.exp(x2[:, 2])  # one reader uses another (monotone) scale
    res2 = mrmc_analysis(y, x2)
    assert res2.f_statistic == pytest.approx(res.f_statistic, rel=1e-12)
    assert res2.differences[0].ci_low == pytest.approx(res.differences[0].ci_low, rel=1e-12)


def test_single_modality_gives_mean_auc_only(vandyke):
    y, x = vandyke
    res = mrmc_analysis(y, x[:1], cov="delong")
    full = mrmc_analysis(y, x, cov="delong")
    assert res.differences == ()
    assert np.isnan(res.f_statistic)
    # each-modality interval uses only that modality's data, so it equals the two-modality run's
    assert res.modality_auc[0].ci_low == pytest.approx(full.modality_auc[0].ci_low, rel=1e-12)
    assert res.to_dict()["f_test"]["f"] is None


@pytest.mark.parametrize(
    ("y", "x", "kwargs", "message"),
    [
        (np.array([0, 1, 0, 1]), np.zeros((2, 1, 4)), {}, "at least two readers"),
        (np.array([0, 1, 0, 1]), np.zeros((2, 2, 5)), {}, "shape"),
        (np.array([0, 1, 0, 1]), np.full((2, 2, 4), np.nan), {}, "fully crossed"),
        (np.array([0, 0, 0, 1]), np.zeros((2, 2, 4)), {}, "two positive and two negative"),
        (np.array([0, 2, 0, 1]), np.zeros((2, 2, 4)), {}, "0/1"),
        (np.array([0, 1, 0, 1]), np.zeros((2, 2, 4)), {"cov": "bootstrap"}, "delong"),
        (np.array([0, 1, 0, 1]), np.zeros((2, 2, 4)), {"readers": ["a"]}, "labels"),
    ],
)
def test_bad_input(y, x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mrmc_analysis(y, x, **kwargs)
