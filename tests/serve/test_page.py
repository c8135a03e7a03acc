"""The page end to end in real headless Chromium: three modalities uploaded, probabilities, heat maps and the
threshold marker drawn, keyboard-only use, no CSP violation, labelled controls, batch CSV download."""

from __future__ import annotations

import io
import zipfile

import pytest
from browser import chromium_page
from serve_helpers import png

from nodescope.serve import create_app, load_service, load_settings


@pytest.fixture
def page_server(bundles, live_server):
    s = load_settings(bundles=[bundles[m] for m in ("bmode", "cdfi", "elastography", "fusion")], threads=1)
    return live_server(create_app(s, load_service(s.bundles, threads=1)))


IMAGES = (("bmode", png((60, 80), 1)), ("cdfi", png((60, 80, 3), 2)), ("elastography", png((60, 80, 3), 3, "JPEG")))


def _tab_to(page, element_id: str, limit: int = 60) -> list[str]:
    """Press Tab until ``element_id`` has the focus; returns the ids passed (every one must be reachable)."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        active = page.evaluate("document.activeElement.id")
        seen.append(active)
        if active == element_id:
            return seen
    raise AssertionError(f"{element_id} not reachable with Tab; focus went through {seen}")


def test_predict_with_three_modalities_keyboard_only(page_server) -> None:
    with chromium_page() as page:
        from playwright.sync_api import expect  # after chromium_page checked that playwright is there

        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(page_server.url + "/")
        expect(page.locator("#status")).to_have_text("Ready.", timeout=20_000)  # (no eval: the CSP forbids it)
        assert page.eval_on_selector("#model", "e => e.value") == "tiny_fusion"
        card = page.inner_text("#card")
        assert "0.420" in card and "SYNTHETIC" in card and "splits.cv.auc_ci\t[0.400, 0.800]" in card, card
        assert "Research use only" in page.inner_text("#notice")
        # every control has a label
        unlabelled = page.evaluate("Array.from(document.querySelectorAll('input, select'))"
                                   ".filter(e => !e.labels || e.labels.length === 0).map(e => e.id)")
        assert unlabelled == []
        for field, img in IMAGES:
            page.set_input_files(f"#file-{field}", files=[{"name": f"{field}.png", "mimeType": "image/png",
                                                          "buffer": img}])
        # keyboard only from here: the page's top, Tab to the button, Enter
        page.evaluate("document.activeElement.blur()")
        passed = _tab_to(page, "predict-btn")
        assert {"model", "file-bmode", "file-cdfi", "file-elastography", "explain", "roi"} <= set(passed)
        page.keyboard.press("Enter")
        page.wait_for_selector("#result:not([hidden])", timeout=30_000)
        assert page.evaluate("document.activeElement.id") == "h-result"  # focus moves to the result
        assert page.locator(".bar-row").count() == 2
        marker = page.locator(".threshold-marker")
        assert marker.count() == 1 and marker.get_attribute("data-threshold") == "0.42"
        verdict = page.inner_text("#verdict")
        assert "Predicted:" in verdict and "threshold 0.4200" in verdict
        values = page.eval_on_selector_all(".bar", "bs => bs.map(b => Number(b.getAttribute('aria-valuenow')))")
        assert sum(values) == pytest.approx(1.0, abs=1e-3)
        fill = page.eval_on_selector(".bar .fill", "e => e.getBoundingClientRect().width / "
                                                   "e.parentElement.getBoundingClientRect().width")
        assert fill == pytest.approx(values[0], abs=0.01)
        heat = page.locator("img[alt^='Grad-CAM heat map']")
        assert heat.count() == 3
        assert all(heat.nth(i).evaluate("e => e.complete && e.naturalWidth === 80") for i in range(3))
        # late fusion of the three modality classifiers: a heat map per image, chosen from the keyboard
        page.focus("#model")
        page.keyboard.press("End")  # the last option: late_mean
        assert page.eval_on_selector("#model", "e => e.value") == "late_mean"
        for field, img in IMAGES:
            page.set_input_files(f"#file-{field}", files=[{"name": f"{field}.png", "mimeType": "image/png",
                                                          "buffer": img}])
        page.focus("#box")
        _tab_to(page, "predict-btn")
        page.keyboard.press("Enter")
        page.wait_for_selector("#result:not([hidden])", timeout=30_000)
        heat = page.locator("img[alt^='Grad-CAM heat map']")
        assert heat.count() == 3
        assert all(heat.nth(i).evaluate("e => e.complete && e.naturalWidth === 80") for i in range(3))
        assert page.locator(".bar-row").count() == 2
        marker = page.locator(".threshold-marker")  # late_mean's threshold: the mean of the members' 0.42
        assert marker.count() == 1 and marker.get_attribute("data-threshold") == "0.42"
        # the checkbox works from the keyboard too
        page.focus("#explain")
        page.keyboard.press("Space")
        assert page.eval_on_selector("#explain", "e => e.checked") is False
        assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_batch_zip_to_csv_download(page_server) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.png", png(seed=1))
        z.writestr("b.png", png(seed=2))
    with chromium_page() as page:
        from playwright.sync_api import expect  # after chromium_page checked that playwright is there

        page.goto(page_server.url + "/")
        expect(page.locator("#status")).to_have_text("Ready.", timeout=20_000)  # (no eval: the CSP forbids it)
        page.select_option("#model", "tiny_bmode")
        page.set_input_files("#batch-zip", files=[{"name": "cases.zip", "mimeType": "application/zip",
                                                  "buffer": buf.getvalue()}])
        page.focus("#batch-btn")
        page.keyboard.press("Enter")
        page.wait_for_selector("#batch-download:not([hidden])", timeout=30_000)
        assert "2 file(s) scored" in page.inner_text("#batch-status")
        assert page.evaluate("document.activeElement.id") == "batch-download"
        with page.expect_download() as download:
            page.keyboard.press("Enter")  # the link has the focus: Enter downloads
        assert download.value.suggested_filename == "predictions.csv"
        with open(download.value.path()) as fh:
            csv = fh.read()
        lines = csv.strip().splitlines()
        assert lines[0].startswith("patient_id,y_true,p_benign,p_malignant") and len(lines) == 3
        assert lines[1].startswith("a.png,")
