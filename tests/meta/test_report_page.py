"""The meta-analysis report in headless Chromium (1300 x 1000): the summary (pooled estimates, SROC, heterogeneity,
Deeks' test, the model actually fitted) on the first screen, nothing fetched, folded sections unfolded in print.

Two runs: mada's AuditC counts (inline in _dta_data.py), where the exact GLMM fits, and a table with FN = 0 in every
cohort, where the GLMM diverges and the run falls back to Reitsma with rho fixed at 0 -- the summary must name the
model that was fitted, read from the result.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from _dta_data import frame
from browser import chromium_page
from report_page import box_in_viewport, folded_sections, image_loaded, open_offline

from nodescope.meta import MetaAnalysis, read_studies, run_meta_analysis, write_meta_report

SEPARATED = pd.DataFrame({"study": list("ABCDE"), "TP": [20, 35, 12, 40, 25], "FN": [0, 0, 0, 0, 0],
                          "FP": [10, 6, 20, 8, 12], "TN": [70, 74, 60, 72, 80]})


def _run(table: pd.DataFrame, folder: Path) -> tuple[MetaAnalysis, Path]:
    folder.mkdir()
    table.to_csv(folder / "studies.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallback warns; what it did is checked in the report
        analysis = run_meta_analysis(read_studies(folder / "studies.csv"), model="glmm", leave_one_out_analysis=False)
    return analysis, write_meta_report(analysis, folder / "out")["report"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[MetaAnalysis, Path]]:
    tmp = tmp_path_factory.mktemp("meta-page")
    return {"glmm": _run(frame("AuditC"), tmp / "auditc"), "fallback": _run(SEPARATED, tmp / "separated")}


def _facts(page) -> dict[str, str]:
    rows = page.locator("section.summary table.text tbody tr")
    return {rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i).locator("td").nth(1).inner_text()
            for i in range(rows.count())}


@pytest.mark.parametrize("which", ["glmm", "fallback"])
def test_first_screen_shows_the_summary_and_the_sroc(runs, which: str) -> None:
    analysis, report = runs[which]
    with chromium_page(1300, 1000) as page:
        refused = open_offline(page, report)
        page.screenshot(path=str(report.parent / "first_screen.png"))
        pooled = page.locator("section.summary table").first
        sroc = page.locator("section.summary figure img").first
        box_in_viewport(page, pooled)
        box_in_viewport(page, sroc)
        assert image_loaded(sroc)
        assert "SROC" in page.locator("section.summary figcaption").first.inner_text()
        facts = _facts(page)
        assert refused == []
    assert set(facts) >= {"model fitted", "heterogeneity", "publication bias"}
    d = analysis.deeks
    assert d is not None and f"p = {d.p_value:.3g}" in facts["publication bias"]
    assert f"= {analysis.pooled.heterogeneity.i2_bivariate_percent:.1f}%" in facts["heterogeneity"]


def test_the_model_is_named_from_the_result(runs) -> None:
    texts = {}
    for which, (_, report) in runs.items():
        with chromium_page() as page:
            open_offline(page, report)
            texts[which] = (_facts(page)["model fitted"], page.locator("section.summary .answer").inner_text())
    glmm, _ = runs["glmm"]
    assert glmm.pooled.model == "glmm-laplace" and not glmm.pooled.fallback
    assert texts["glmm"][0].startswith("exact bivariate binomial GLMM") and "Laplace" in texts["glmm"][0]
    assert "(pooled: GLMM)" in texts["glmm"][1]
    fb, _ = runs["fallback"]
    # the GLMM was asked for; the result says Reitsma (REML) with rho fixed at 0 was fitted
    assert fb.model == "glmm" and fb.pooled.model == "reitsma-reml" and fb.pooled.rho_fixed
    text = texts["fallback"][0]
    assert text.startswith("bivariate normal-approximation model of Reitsma et al. (2005) fitted by REML")
    assert "fixed at 0" in text and "requested: exact bivariate binomial GLMM" in text and "GLMM diverged" in text
    assert "(pooled: Reitsma, rho = 0)" in texts["fallback"][1]
    assert "exact bivariate binomial GLMM (" not in text


def test_sections_fold_on_screen_and_unfold_in_print(runs) -> None:
    _, report = runs["glmm"]
    with chromium_page() as page:
        open_offline(page, report)
        n, shown = folded_sections(page)
        assert n == 10 and not any(shown)
        page.emulate_media(media="print")
        n, shown = folded_sections(page)
        assert all(shown), shown
        # section 4 holds the same pooled table as the summary, with its methods
        summary = page.locator("section.summary table").first.locator("tbody tr").all_inner_texts()
        synthesis = page.locator("details.section", has_text="4. Synthesis of results").locator("table").first
        detail = synthesis.locator("tbody tr").all_inner_texts()
    assert len(summary) == 6 and [s.split("\t")[:2] for s in summary] == [d.split("\t")[:2] for d in detail]
