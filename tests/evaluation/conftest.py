"""Fixtures for the evaluation tests: the small fixed data sets whose R reference values are in reference/."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def data_binary() -> pd.DataFrame:
    """60 cases: y (0/1), s1 and s2 (correlated scores with ties), p (miscalibrated probabilities)."""
    return pd.read_csv(REFERENCE / "data_binary.csv")


@pytest.fixture(scope="module")
def data_unpaired() -> pd.DataFrame:
    """45 other cases: y, s."""
    return pd.read_csv(REFERENCE / "data_unpaired.csv")
