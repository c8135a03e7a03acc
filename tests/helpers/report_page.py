"""Checks shared by the report page tests: open a report offline, where an element lies, what print shows.

Used with :func:`browser.chromium_page` (headless Debian Chromium through Playwright).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LOCAL_SCHEMES = ("file:", "data:")


def open_offline(page: Any, path: Path) -> list[str]:
    """Open ``path`` with every request routed: file/data URLs go through, anything else is aborted and recorded.

    Returns the list the refused URLs are appended to (also those seen by the ``request`` event, which covers
    requests a route may not see); a self-contained report leaves it empty.
    """
    refused: list[str] = []

    def record(url: str) -> None:
        if not url.startswith(LOCAL_SCHEMES) and url not in refused:
            refused.append(url)

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            record(url)
            route.abort()

    page.route("**/*", handle)
    page.on("request", lambda req: record(req.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return refused


def box_in_viewport(page: Any, locator: Any) -> dict[str, float]:
    """The bounding box of ``locator``; asserts it is visible and lies wholly inside the first viewport."""
    assert locator.is_visible(), "element not visible"
    box = locator.bounding_box()
    view = page.viewport_size
    assert box is not None
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= view["width"] and box["y"] + box["height"] <= view["height"], (box, view)
    return box


def image_loaded(locator: Any) -> bool:
    """Whether an ``<img>`` decoded (an embedded PNG that failed would have natural width 0)."""
    return bool(locator.evaluate("img => img.complete && img.naturalWidth > 0"))


def folded_sections(page: Any) -> tuple[int, list[bool]]:
    """The number of ``details.section`` blocks and whether the first table/figure/paragraph of each is visible."""
    sections = page.locator("details.section")
    n = sections.count()
    return n, [sections.nth(i).locator("table, figure, p, ul").first.is_visible() for i in range(n)]
