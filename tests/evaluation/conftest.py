"""Fixtures for the evaluation tests: the small fixed data sets whose R reference values are in reference/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REFERENCE = Path(__file__).parent / "reference"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def data_binary() -> pd.DataFrame:
    """60 cases: y (0/1), s1 and s2 (correlated scores with ties), p (miscalibrated probabilities)."""
    return pd.read_csv(REFERENCE / "data_binary.csv")


@pytest.fixture(scope="module")
def data_unpaired() -> pd.DataFrame:
    """45 other cases: y, s."""
    return pd.read_csv(REFERENCE / "data_unpaired.csv")


def read_lrc(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse the MRMC/LABMRMC ``.lrc`` text layout: per reader, normal cases then ``*``, abnormal cases then ``*``.

    Each data line is ``rating_modality0<TAB>rating_modality1<TAB>case``; ``#`` ends the file.
    """
    lines = path.read_text().splitlines()[1:]
    ratings: dict[tuple[int, int, int], float] = {}
    truth: dict[int, int] = {}
    i = 0
    while lines[i] != "#":
        reader = int(lines[i])
        i += 1
        if lines[i].startswith('"'):  # first reader block carries the modality names and the "L L" line
            i += 2
        for status in (0, 1):
            while lines[i] != "*":
                a, b, case = lines[i].split("\t")
                ratings[(0, reader, int(case))] = float(a)
                ratings[(1, reader, int(case))] = float(b)
                truth[int(case)] = status
                i += 1
            i += 1
    cases = sorted(truth)
    readers = sorted({k[1] for k in ratings})
    x = np.array([[[ratings[(m, r, c)] for c in cases] for r in readers] for m in (0, 1)])
    return np.array([truth[c] for c in cases]), x


@pytest.fixture(scope="session")
def vandyke() -> tuple[np.ndarray, np.ndarray]:
    # Van Dyke et al. (1993) CINE MRI (modality 0 = treatment 1) vs SE MRI, 5 readers, 69 normal + 45 abnormal
    # cases, 5-point ratings. File copied verbatim from RJafroc (dpc10ster/RJafroc, inst/extdata/datasets/VD.lrc);
    # the same data are MRMCaov's `VanDyke` data set (first rows checked by hand against its print-out).
    return read_lrc(DATA / "VanDyke.lrc")
