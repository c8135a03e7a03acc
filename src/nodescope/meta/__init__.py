"""Diagnostic-test-accuracy meta-analysis: input, models, summaries, plots, QUADAS-2 and reports."""

from nodescope.meta._example import example_paths, generate_synthetic_cohorts
from nodescope.meta._plots import (
    deeks_funnel_plot,
    exact_ci,
    fagan_nomogram,
    forest_plot,
    quadas_summary_plot,
    quadas_traffic_light,
    sroc_plot,
)
from nodescope.meta._quadas import QUADAS_COLUMNS, QUADAS_LEVELS, QuadasError, QuadasTable, read_quadas
from nodescope.meta._studies import (
    ReconstructionWarning,
    Studies,
    StudiesError,
    read_studies,
    reconstruct_2x2,
)

__all__ = [
    "QUADAS_COLUMNS",
    "QUADAS_LEVELS",
    "QuadasError",
    "QuadasTable",
    "ReconstructionWarning",
    "Studies",
    "StudiesError",
    "deeks_funnel_plot",
    "exact_ci",
    "example_paths",
    "fagan_nomogram",
    "forest_plot",
    "generate_synthetic_cohorts",
    "quadas_summary_plot",
    "quadas_traffic_light",
    "read_quadas",
    "read_studies",
    "reconstruct_2x2",
    "sroc_plot",
]
