"""HtmlReport: summary, contents and folded sections, embedded figures, and what a browser makes of them."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from browser import chromium_page
from matplotlib.figure import Figure
from report_page import folded_sections, image_loaded, open_offline

from nodescope.report import HtmlReport


def _report() -> HtmlReport:
    rep = HtmlReport("T <1>", banner="synthetic")
    with rep.summary():
        rep.paragraph("the answer")
        rep.table(pd.DataFrame({"model": ["a"], "auc": [0.9]}))
    rep.contents()
    for title in ("Model: a", "Model: a", "Notes & <inputs>"):
        with rep.section(title):
            rep.heading("Detail", 3)
            rep.paragraph(f"text of {title}")
    return rep


def test_sections_are_listed_in_the_contents_with_unique_anchors() -> None:
    html = _report().render()
    anchors = re.findall(r'<div class="anchor" id="([^"]+)">', html)
    assert anchors == ["model-a", "model-a-2", "notes-inputs"]
    links = re.findall(r'<li><a href="#([^"]+)">([^<]*)</a></li>', html)
    assert links == [("model-a", "Model: a"), ("model-a-2", "Model: a"), ("notes-inputs", "Notes &amp; &lt;inputs&gt;")]
    # order: banner, summary, contents, the folded sections
    order = [html.index(s) for s in ('class="banner"', '<section class="summary"', '<nav class="toc"',
                                     '<details class="section">')]
    assert order == sorted(order)
    assert html.count('<details class="section">') == 3 and "<script" not in html


def test_misuse_is_refused() -> None:
    rep = HtmlReport("x")
    with pytest.raises(RuntimeError, match="inside a section"), rep.section("a"), rep.section("b"):
        pass
    rep = HtmlReport("x")
    with rep.section("a"):
        with pytest.raises(RuntimeError, match="still open"):
            rep.render()


def test_figures_are_sharper_than_shown() -> None:
    fig = Figure(figsize=(4, 3))
    fig.subplots().plot([0, 1], [0, 1])
    rep = HtmlReport("x")
    rep.figure(fig, caption="line")
    html = rep.render()
    shown = int(re.search(r"--w:(\d+)px", html).group(1))
    # embedded at 150 dpi, shown at 110 dpi: bbox_inches="tight" trims a little, so the width is near 4 in x 110
    assert 380 < shown < 440


def test_in_a_browser_links_unfold_and_print_unfolds_everything(tmp_path: Path) -> None:
    rep = _report()
    fig = Figure(figsize=(4, 3))
    fig.subplots().plot([0, 1], [1, 0])
    with rep.section("Figure"):
        rep.figure(fig, caption="a figure")
    path = tmp_path / "r.html"
    rep.write(path)
    with chromium_page() as page:
        assert open_offline(page, path) == []
        n, shown = folded_sections(page)
        assert n == 4 and not any(shown)
        page.locator("nav.toc a").nth(1).click()
        assert page.locator("details.section").evaluate_all("ds => ds.map(d => d.open)") == [False, True, False,
                                                                                            False]
        assert page.locator(".screen-only").is_visible()  # "click a section to unfold it"
        page.emulate_media(media="print")
        n, shown = folded_sections(page)
        assert all(shown) and not page.locator(".screen-only").is_visible()
        img = page.locator("figure img")
        assert image_loaded(img) and img.is_visible()
        # printed at 3/4 of the on-screen width
        width = img.evaluate("i => i.getBoundingClientRect().width")
        shown_px = int(re.search(r"--w:(\d+)px", path.read_text()).group(1))
        assert width == pytest.approx(0.75 * shown_px, abs=1)
