"""build_samples checks: one positive-class rule, splits files, classes present in every fold."""

from __future__ import annotations

import nodescope.evaluation as ev
import nodescope.training as tr
from nodescope.training import _samples


def test_one_positive_names_constant() -> None:
    # the training stage infers the positive class with the evaluation stage's list, not a copy of it
    assert not hasattr(tr, "POSITIVE_NAMES")
    assert _samples.POSITIVE_NAMES is ev.POSITIVE_NAMES
    assert tr.resolve_positive(("benign", "Metastatic"), None) == "Metastatic"
