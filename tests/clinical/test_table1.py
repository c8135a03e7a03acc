"""Table 1: summaries, tests and SMDs against scipy and hand-worked values; the CLI on the shared clinical tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.clinical import format_p, read_clinical_table, smd_categorical, smd_continuous, table1
from nodescope.errors import ConfigError, DataError


def _frame(**cols: list) -> pd.DataFrame:
    return pd.DataFrame({k: [None if v is None else str(v) for v in vals] for k, vals in cols.items()})


@pytest.mark.parametrize(("p", "text"), [(0.0004, "<0.001"), (0.001, "0.001"), (0.0042, "0.004"),
                                         (0.0494, "0.049"), (0.0496, "0.050"), (0.051, "0.051"), (0.054, "0.054"), (0.056, "0.06"),
                                         (0.23, "0.23"), (0.996, ">0.99"), (float("nan"), "")])
def test_format_p(p, text):
    assert format_p(p) == text


def test_smd_hand_worked():
    # means 3 and 6, variances 2.5 and 10: (3 - 6) / sqrt((2.5 + 10) / 2) = -3 / 2.5
    assert smd_continuous(np.arange(1, 6), np.arange(2, 11, 2)) == pytest.approx(-1.2)
    # two levels, p = 0.5 vs 0.2: 0.3 / sqrt((0.25 + 0.16) / 2)
    assert smd_categorical(np.array([0.5, 0.5]), np.array([0.8, 0.2])) == pytest.approx(0.3 / math.sqrt(0.205))
    # identical distributions: 0
    assert smd_categorical(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == pytest.approx(0.0)


def test_continuous_normal_uses_mean_and_welch(rng):
    a, b = rng.normal(10, 2, 40), rng.normal(12, 3, 35)
    frame = _frame(g=["a"] * 40 + ["b"] * 35, x=[f"{v:.6f}" for v in np.r_[a, b]])
    row = table1(frame, "g").rows[0]
    a6, b6 = np.round(a, 6), np.round(b, 6)
    ref = stats.ttest_ind(a6, b6, equal_var=False)
    assert row.summary == "mean" and row.test == "Welch t"
    assert row.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert row.cells[""]["a"] == f"{a6.mean():.1f} ± {a6.std(ddof=1):.1f}"
    assert row.smd == pytest.approx(abs(smd_continuous(a6, b6)))


def test_skewed_uses_median_and_mann_whitney(rng):
    a, b = rng.lognormal(0, 1, 60), rng.lognormal(0.5, 1, 50)
    frame = _frame(g=["a"] * 60 + ["b"] * 50, x=list(np.round(np.r_[a, b], 6)))
    row = table1(frame, "g").rows[0]
    ref = stats.mannwhitneyu(np.round(a, 6), np.round(b, 6), alternative="two-sided", method="asymptotic")
    assert row.summary == "median" and row.test == "Mann-Whitney U"
    assert row.p == pytest.approx(ref.pvalue, rel=1e-12)
    q1, med, q3 = np.percentile(np.round(a, 6), [25, 50, 75])
    assert row.cells[""]["a"] == f"{med:.1f} [{q1:.1f}, {q3:.1f}]"
    # the override wins over the normality check
    forced = table1(frame, "g", summary={"x": "mean"}).rows[0]
    assert forced.summary == "mean" and forced.test == "Welch t"


def test_three_groups_anova_and_kruskal(rng):
    vals = [rng.normal(m, 1, 30) for m in (0, 0.5, 1)]
    frame = _frame(g=["a"] * 30 + ["b"] * 30 + ["c"] * 30, x=list(np.round(np.concatenate(vals), 6)))
    r = [np.round(v, 6) for v in vals]
    assert table1(frame, "g", summary={"x": "mean"}).rows[0].p == pytest.approx(stats.f_oneway(*r).pvalue)
    kw = table1(frame, "g", summary={"x": "median"}).rows[0]
    assert kw.test == "Kruskal-Wallis" and kw.p == pytest.approx(stats.kruskal(*r).pvalue)


def test_categorical_chi_square_counts_and_missing():
    # 2 x 2 table [[30, 20], [15, 35]] with large expected counts; one missing value in group b
    g = ["a"] * 50 + ["b"] * 51
    x = ["yes"] * 30 + ["no"] * 20 + ["yes"] * 15 + ["no"] * 35 + [None]
    res = table1(_frame(g=g, x=x), "g")
    row = res.rows[0]
    ref = stats.chi2_contingency(np.array([[20, 35], [30, 15]]), correction=False)
    assert row.test == "Chi-square" and row.p == pytest.approx(ref.pvalue) and row.statistic == pytest.approx(
        ref.statistic)
    assert row.cells["yes"] == {"a": "30 (60.0)", "b": "15 (30.0)"}
    assert row.missing == {"a": 0, "b": 1}
    assert res.n == {"a": 50, "b": 51}
    frame = res.to_frame()
    assert list(frame.Variable) == ["x, n (%)", "    no", "    yes", "    missing"]


def test_small_counts_switch_to_fisher():
    g = ["a"] * 12 + ["b"] * 12
    x = ["y"] * 1 + ["n"] * 11 + ["y"] * 6 + ["n"] * 6
    row = table1(_frame(g=g, x=x), "g").rows[0]
    assert row.test == "Fisher exact"
    assert row.p == pytest.approx(stats.fisher_exact([[11, 6], [1, 6]]).pvalue)
    # r x c: seeded Monte Carlo, same p for the same seed
    x3 = ["p"] * 2 + ["q"] * 3 + ["r"] * 7 + ["p"] * 6 + ["q"] * 4 + ["r"] * 2
    r1 = table1(_frame(g=g, x=x3), "g", seed=3).rows[0]
    assert r1.test.startswith("Fisher-Freeman-Halton") and r1.p == table1(_frame(g=g, x=x3), "g", seed=3).rows[0].p
    assert 0 < r1.p < 1


@pytest.mark.parametrize(("kwargs", "err", "match"), [
    ({"group": "nope"}, DataError, "no column 'nope'"),
    ({"group": "one"}, DataError, "has 1 level"),
    ({"group": "g", "summary": {"x": "mode"}}, ConfigError, "'mean' or 'median'"),
    ({"group": "g", "summary": {"c": "mean"}}, ConfigError, "not a continuous"),
    ({"group": "g", "continuous": ["c"]}, DataError, "column 'c' was declared continuous but line 2"),
])
def test_bad_input(kwargs, err, match):
    frame = _frame(g=["a", "b"] * 5, one=["z"] * 10, x=list(range(10)), c=list("uvuvuvuvuv"))
    with pytest.raises(err, match=match):
        table1(frame, **kwargs)


def test_cli_formats_and_refusal(tmp_path):
    csv = tmp_path / "clin.csv"
    csv.write_text("patient_id,grp,age,sex\n" + "".join(
        f"p{i},{'N1' if i % 3 == 0 else 'N0'},{30 + i % 17},{'F' if i % 2 else 'M'}\n" for i in range(60)))
    runner = CliRunner()
    for suffix, marker in ((".csv", "Variable,"), (".html", "<table>"), (".tex", r"\begin{tabular}"),
                           (".md", "| Variable |")):
        out = tmp_path / f"t1{suffix}"
        res = runner.invoke(app, ["table1", str(csv), "--group", "grp", "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert marker in out.read_text()
    assert f"Source: {csv}" in (tmp_path / "t1.html").read_text()
    res = runner.invoke(app, ["table1", str(csv), "--group", "grp", "-o", str(tmp_path / "t1.csv")])
    assert res.exit_code == 2 and "already exists" in res.output
    res = runner.invoke(app, ["table1", str(csv), "--group", "grp", "-o", str(tmp_path / "t1.docx")])
    assert res.exit_code == 2 and "unknown suffix" in res.output
    res = runner.invoke(app, ["table1", str(csv), "--group", "grp", "--summary", "age=avg"])
    assert res.exit_code == 2 and "COLUMN=mean" in res.output


def test_thyroid_nodal_status(shared_data):
    frame = read_clinical_table(shared_data / "clinical" / "thyroid_dtc_recurrence" / "clinical.csv")
    res = table1(frame, "lnm", variables=["Age", "Gender", "Smoking", "Hx Radiothreapy", "Focality", "T"])
    assert res.n == {"0": 268, "1": 115}  # SOURCE.txt: N0 268, N1a 22 + N1b 93
    by = {r.variable: r for r in res.rows}
    assert by["Age"].kind == "continuous" and by["Gender"].test == "Chi-square"
    assert by["Hx Radiothreapy"].test == "Fisher exact"  # 3 and 4 patients with radiotherapy
    assert by["Gender"].cells["M"] == {"0": "35 (13.1)", "1": "36 (31.3)"}


def test_breast_benign_vs_malignant(shared_data):
    frame = read_clinical_table(shared_data / "breast_lesions_usg" / "labels.csv")
    frame = frame[frame.label != "normal"]
    res = table1(frame, "label", variables=["age", "tissue_composition", "shape", "birads"])
    assert res.n == {"benign": 154, "malignant": 98}  # SOURCE.txt
    by = {r.variable: r for r in res.rows}
    assert by["age"].missing == {"benign": 29, "malignant": 12}  # "not available" read as missing
    assert by["birads"].cells["5"] == {"benign": "6 (3.9)", "malignant": "40 (40.8)"}  # SOURCE.txt BI-RADS counts
