"""The evaluation report in headless Chromium (1300 x 1000): the answer on the first screen, nothing fetched,
every folded section unfolded in print, and summary numbers identical to the detail sections' and metrics.json's.

Predictions are seeded synthetic scores of three models on cv, test and external rows, written here (flagged
synthetic, so the report carries its banner).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import chromium_page
from report_page import box_in_viewport, folded_sections, image_loaded, open_offline

from nodescope.evaluation import evaluate_predictions, read_predictions, write_evaluation

MODELS = {"cnn": 2.2, "radiomics": 0.9, "fusion": 2.6}  # model -> separation of the classes on the logit scale


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("evaluation-page")
    rng, truth = np.random.default_rng(7), np.random.default_rng(8)
    rows = []
    for split, n in (("cv", 90), ("test", 50), ("external", 40)):
        ys = truth.random(n) < 0.4
        for model, strength in MODELS.items():
            for i, y in enumerate(ys):
                p = 1 / (1 + np.exp(-(strength * y + rng.normal() - 0.8)))
                rows.append({"patient_id": f"{split}{i}", "y_true": "malignant" if y else "benign",
                             "p_benign": 1 - p, "p_malignant": p, "split": split,
                             "fold": i % 3 if split == "cv" else -1, "model": model, "run_id": "r1",
                             "synthetic": "yes"})  # the banner takes room on the first screen too
    pd.DataFrame(rows).to_csv(tmp / "predictions.csv", index=False)
    preds = read_predictions(tmp / "predictions.csv", positive="malignant")
    run = evaluate_predictions(preds, compare=("fusion", "cnn"), n_boot=30, source=str(tmp / "predictions.csv"))
    return write_evaluation(run, tmp / "out")["report"]


def _summary_rows(page) -> list[dict[str, str]]:
    return page.evaluate("""() => {
        const t = document.querySelector('section.summary table');
        const head = [...t.querySelectorAll('thead th')].map(th => th.textContent);
        return [...t.querySelectorAll('tbody tr')].map(tr =>
            Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [head[i], td.textContent])));
    }""")


def _text(est: dict) -> str:
    # the report's "estimate (low to high)" form, from metrics.json
    return f"{est['estimate']:.3f} ({est['ci_low']:.3f} to {est['ci_high']:.3f})"


def test_first_screen_shows_summary_table_and_roc_overlay(report: Path) -> None:
    with chromium_page(1300, 1000) as page:
        refused = open_offline(page, report)
        page.screenshot(path=str(report.parent / "first_screen.png"))
        table = page.locator("section.summary table").first
        roc = page.locator("section.summary figure img").first
        box_in_viewport(page, table)
        box = box_in_viewport(page, roc)
        assert image_loaded(roc) and box["height"] > 250  # a readable figure, not a thumbnail
        assert "ROC curves of every model per split" in page.locator("section.summary figcaption").first.inner_text()
        assert len(_summary_rows(page)) == 9  # 3 models x 3 splits
        assert page.locator(".banner").first.inner_text().startswith("These data are synthetic")
        assert refused == []


def test_no_request_leaves_the_file_and_the_check_can_fail(report: Path, tmp_path: Path) -> None:
    with chromium_page() as page:
        assert open_offline(page, report) == []
    # the same check on a copy that references a remote image must catch it
    leaky = tmp_path / "leaky.html"
    leaky.write_text(report.read_text().replace("</body>", '<img src="http://192.0.2.1/x.png"></body>'))
    with chromium_page() as page:
        assert open_offline(page, leaky) == ["http://192.0.2.1/x.png"]


def test_sections_are_folded_on_screen_and_unfolded_in_print(report: Path) -> None:
    with chromium_page() as page:
        open_offline(page, report)
        n, shown = folded_sections(page)
        titles = page.locator("details.section > summary").all_inner_texts()
        # flow, one per model, external validation by site (the predictions have external rows), comparison,
        # checklists
        assert n == len(MODELS) + 4 and "Model: cnn" in titles and "Model comparison" in titles
        assert "External validation by site" in titles
        assert not any(shown)  # folded: the details are out of the way
        assert page.locator("nav.toc a").count() == n
        page.emulate_media(media="print")
        n, shown = folded_sections(page)
        assert all(shown), shown
        assert page.locator("section.summary figure img").first.is_visible()
        # figures are never cut across pages, and fit the page
        styles = page.locator("figure").evaluate_all(
            "fs => fs.map(f => [getComputedStyle(f).breakInside, getComputedStyle(f.querySelector('img')).maxWidth])")
        assert styles and all(s == ["avoid", "100%"] for s in styles), styles
        page.pdf(path=str(report.parent / "report.pdf"), format="A4")
    assert (report.parent / "report.pdf").stat().st_size > 50_000


def test_contents_link_opens_its_section(report: Path) -> None:
    with chromium_page() as page:
        open_offline(page, report)
        page.locator("nav.toc a", has_text="Model: radiomics").click()
        opened = page.locator("details.section").evaluate_all("ds => ds.filter(d => d.open).map(d => "
                                                            "d.querySelector('summary').textContent)")
        assert opened == ["Model: radiomics"]


def test_summary_numbers_are_the_detail_numbers(report: Path) -> None:
    metrics = json.loads((report.parent / "metrics.json").read_text())
    with chromium_page() as page:
        open_offline(page, report)
        rows = {(r["split"], r["model"]): r for r in _summary_rows(page)}
        page.emulate_media(media="print")
        details = page.locator("details.section", has_text="Model: fusion").inner_text()
    cal = pd.read_csv(report.parent / "tables" / "calibration.csv")
    for (split, model), row in rows.items():
        doc = metrics["models"][model]["splits"][split]
        assert row["AUC (95% CI)"] == _text(doc["discrimination"]["auc"])
        assert row["sensitivity (95% CI)"] == _text(doc["operating_point"]["metrics"]["sensitivity"])
        assert row["specificity (95% CI)"] == _text(doc["operating_point"]["metrics"]["specificity"])
        slope = cal[(cal["model"] == model) & (cal["split"] == split) & (cal["name"] == "calibration_slope")].iloc[0]
        assert row["calibration slope (95% CI)"] == (f"{slope['estimate']:.3f} ({slope['ci_low']:.3f} to "
                                                     f"{slope['ci_high']:.3f})")
        assert math.isclose(float(row["threshold"]), metrics["models"][model]["threshold"]["value"], rel_tol=1e-2)
    # the same text stands in the folded section of the model
    for split in ("cv", "test", "external"):
        assert rows[(split, "fusion")]["AUC (95% CI)"] in details
    # the answer speaks of the first held-out split (test) and quotes its paired DeLong test
    comp = pd.read_csv(report.parent / "tables" / "comparisons.csv")
    answer = report.read_text().split('class="answer">')[1].split("</p>")[0]
    best = max(MODELS, key=lambda m: metrics["models"][m]["splits"]["test"]["discrimination"]["auc"]["estimate"])
    assert answer.startswith(f"On the test split, the highest AUC is {best}&#x27;s, {rows[('test', best)]['AUC (95% CI)']}")
    test_auc = comp[(comp["split"] == "test") & (comp["metric"] == "auc")].iloc[0]
    assert f"{test_auc['difference']:.3f} ({test_auc['ci_low']:.3f} to {test_auc['ci_high']:.3f})" in answer
