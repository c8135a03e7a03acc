"""Headless Chromium for page tests: Debian's ``chromium`` driven by Playwright (from PyPI, no browser download).

``.ci/run`` installs the ``chromium`` package when it is missing. Outside CI a machine without it skips the page
tests; under CI (``CI`` set) a missing browser fails them instead, so CI can never pass a page test that did not run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("NODESCOPE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking switches Chromium tries to reach its vendor's hosts, which this closed network
# refuses many times a second; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"page tests need headless Chromium under CI: {reason}")
    pytest.skip(reason)


@contextmanager
def chromium_page(width: int = 1300, height: int = 1000) -> Iterator[Any]:
    """Yield a Playwright ``Page`` in a fresh headless Chromium with an empty profile, closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (dev extra)")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _unavailable(f"no Chromium at {CHROMIUM}")
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    with tempfile.TemporaryDirectory(prefix="nodescope-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()
