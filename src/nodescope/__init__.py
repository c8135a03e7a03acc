"""nodescope: lymph-node metastasis prediction from ultrasound, end to end.

The package is organised by pipeline stage (see ``docs/`` and DESIGN.md):

- :mod:`nodescope.data` -- manifest, image I/O, preprocessing, patient-level splits, importers, synthetic demo data;
- :mod:`nodescope.evaluation` -- statistics over saved predictions;
- :mod:`nodescope.meta` -- diagnostic-test-accuracy meta-analysis;
- :mod:`nodescope.report` -- self-contained HTML reports.

:class:`Estimate` is the one result type for a statistic with a confidence interval, used by every module.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nodescope._estimate import Estimate

try:
    __version__ = version("nodescope")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["Estimate", "__version__"]


def __getattr__(name: str) -> Any:
    # imported on first use, so ``import nodescope`` (the CLI's start) does not pull in pandas
    if name == "Estimate":
        from nodescope._estimate import Estimate

        return Estimate
    raise AttributeError(f"module 'nodescope' has no attribute {name!r}")
