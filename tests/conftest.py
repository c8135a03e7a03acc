"""Shared fixtures: paths to the public data beside the repository, seeded RNGs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# No test may ever download (weights, hub files): both switches nodescope.models honours, set for the whole session.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NODESCOPE_OFFLINE"] = "1"
os.environ["COLUMNS"] = "200"  # rich wraps CLI output at the terminal width; keep messages on one line in tests

REPO = Path(__file__).resolve().parents[1]
# Shared test helpers (tiny data builders) are plain modules in tests/helpers; pytest runs in importlib mode so that
# same-named test files in different stage folders coexist, which leaves this folder to be put on the path here.
sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))
SHARED_DATA = Path(os.environ.get("NODESCOPE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _nodescope_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nodescope's cache (the ONNX exports of ``--engine onnx``) in a temporary folder: tests never write ~/.cache."""
    path = tmp_path_factory.mktemp("nodescope-cache")
    os.environ["NODESCOPE_CACHE_DIR"] = str(path)
    os.environ.pop("NODESCOPE_ONNX_CACHE", None)  # the more specific variable would win over it
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(20261125)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder ``../shared/data``; tests using it are skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
