"""nodescope: lymph-node metastasis prediction from ultrasound, end to end.

The package is organised by pipeline stage (see ``docs/`` and DESIGN.md):

- :mod:`nodescope.data` -- manifest, image I/O, preprocessing, patient-level splits, importers, synthetic demo data;
- :mod:`nodescope.evaluation` -- statistics over saved predictions;
- :mod:`nodescope.meta` -- diagnostic-test-accuracy meta-analysis;
- :mod:`nodescope.report` -- self-contained HTML reports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nodescope")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["__version__"]
