"""Diagnostic-test-accuracy meta-analysis: bivariate GLMM and Reitsma models, univariate pooling, summaries, analyses.

Conventions: the bivariate models work on (logit sensitivity, logit specificity); ``rho`` is their between-cohort
correlation (mada and midas report the (sens, FPR) correlation, ``-rho``). See docs/meta-models.md.
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
    "MIN_COHORTS_BIVARIATE",
    "UNIVARIATE_MEASURES",
    "BivariateResult",
    "DeeksResult",
    "Heterogeneity",
    "HsrocParameters",
    "MetaAnalysisWarning",
    "MetaRegressionResult",
    "PostTestResult",
    "SubgroupResult",
    "UnivariateResult",
    "bivariate_glmm",
    "deeks_test",
    "hsroc_parameters",
    "leave_one_out",
    "meta_regression",
    "one_per_study",
    "post_test_probability",
    "reitsma",
    "sroc_auc",
    "study_measures",
    "subgroup_analysis",
    "univariate_pool",
]
