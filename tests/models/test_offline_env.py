"""The test session runs offline: no test can download weights or hub files."""

from __future__ import annotations

import os

from nodescope.models._weights import _offline


def test_session_is_offline() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert os.environ.get("NODESCOPE_OFFLINE") == "1"
    assert _offline()  # the switch nodescope.models reads for downloads
