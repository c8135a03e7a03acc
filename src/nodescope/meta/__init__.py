"""Diagnostic-test-accuracy meta-analysis: input, bivariate GLMM and Reitsma models, univariate pooling, summaries,
analyses, plots, QUADAS-2 and reports.

Conventions: the bivariate models work on (logit sensitivity, logit specificity); ``rho`` is their between-cohort
correlation (mada and midas report the (sens, FPR) correlation, ``-rho``). See docs/meta-models.md and docs/meta.md.
"""

from nodescope.meta._analyses import (
    DeeksResult,
    MetaRegressionResult,
    PostTestResult,
    SubgroupResult,
    deeks_test,
    leave_one_out,
    meta_regression,
    one_per_study,
    post_test_probability,
    subgroup_analysis,
)
from nodescope.meta._bivariate import MIN_COHORTS_BIVARIATE, bivariate_glmm, reitsma
from nodescope.meta._cohorts import COHORT_APPROACHES, compare_cohorts_per_study, pool_cohorts_per_study
from nodescope.meta._example import (
    ALNM_BANNER,
    EXAMPLE_BANNER,
    ExampleSettings,
    alnm_example_path,
    example_paths,
    example_settings,
    generate_synthetic_cohorts,
)
from nodescope.meta._madad import study_table
from nodescope.meta._multilevel import MultilevelResult, multilevel_reitsma
from nodescope.meta._plots import (
    deeks_funnel_plot,
    fagan_nomogram,
    forest_plot,
    quadas_summary_plot,
    quadas_traffic_light,
    sroc_plot,
)
from nodescope.meta._quadas import QUADAS_COLUMNS, QUADAS_LEVELS, QuadasError, QuadasTable, read_quadas
from nodescope.meta._reconstruct import reconstruct_2x2
from nodescope.meta._report import (
    RESULTS_SCHEMA_VERSION,
    meta_figures,
    meta_results,
    meta_tables,
    write_meta_report,
)
from nodescope.meta._run import MetaAnalysis, run_meta_analysis
from nodescope.meta._sroc import MosesLittenbergResult, SrocSummary, moses_littenberg, sroc_summary
from nodescope.meta._studies import (
    ReconstructionWarning,
    Studies,
    StudiesError,
    read_studies,
)
from nodescope.meta._summary import (
    BivariateResult,
    Heterogeneity,
    HsrocParameters,
    MetaAnalysisWarning,
    hsroc_parameters,
    sroc_auc,
)
from nodescope.meta._univariate import UNIVARIATE_MEASURES, UnivariateResult, study_measures, univariate_pool

__all__ = [
    "ALNM_BANNER",
    "COHORT_APPROACHES",
    "EXAMPLE_BANNER",
    "MIN_COHORTS_BIVARIATE",
    "QUADAS_COLUMNS",
    "QUADAS_LEVELS",
    "RESULTS_SCHEMA_VERSION",
    "UNIVARIATE_MEASURES",
    "BivariateResult",
    "DeeksResult",
    "ExampleSettings",
    "Heterogeneity",
    "HsrocParameters",
    "MetaAnalysis",
    "MetaAnalysisWarning",
    "MetaRegressionResult",
    "MosesLittenbergResult",
    "MultilevelResult",
    "PostTestResult",
    "QuadasError",
    "QuadasTable",
    "ReconstructionWarning",
    "SrocSummary",
    "Studies",
    "StudiesError",
    "SubgroupResult",
    "UnivariateResult",
    "alnm_example_path",
    "bivariate_glmm",
    "compare_cohorts_per_study",
    "deeks_funnel_plot",
    "deeks_test",
    "example_paths",
    "example_settings",
    "fagan_nomogram",
    "forest_plot",
    "generate_synthetic_cohorts",
    "hsroc_parameters",
    "leave_one_out",
    "meta_figures",
    "meta_regression",
    "meta_results",
    "meta_tables",
    "moses_littenberg",
    "multilevel_reitsma",
    "one_per_study",
    "pool_cohorts_per_study",
    "post_test_probability",
    "quadas_summary_plot",
    "quadas_traffic_light",
    "read_quadas",
    "read_studies",
    "reconstruct_2x2",
    "reitsma",
    "run_meta_analysis",
    "sroc_auc",
    "sroc_plot",
    "sroc_summary",
    "study_measures",
    "study_table",
    "subgroup_analysis",
    "univariate_pool",
    "write_meta_report",
]
