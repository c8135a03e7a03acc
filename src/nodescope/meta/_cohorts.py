"""Compare the ways of pooling studies that contribute several cohorts (docs/meta-models.md, last section)."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from nodescope.errors import ConfigError
from nodescope.meta._analyses import one_per_study
from nodescope.meta._bivariate import reitsma
from nodescope.meta._multilevel import multilevel_reitsma, study_labels
from nodescope.meta._summary import BivariateResult, MetaAnalysisWarning

__all__ = ["COHORT_APPROACHES", "CohortApproach", "compare_cohorts_per_study", "pool_cohorts_per_study"]

CohortApproach = Literal["independent", "one", "robust", "multilevel"]
COHORT_APPROACHES: tuple[str, ...] = ("independent", "one", "robust", "multilevel")
_LABELS = {
    "independent": "every cohort, as independent (Reitsma REML)",
    "one": "one cohort per study (highest Youden index), Reitsma REML",
    "robust": "every cohort, cluster-robust CR1 variance over studies",
    "multilevel": "three-level model (cohorts within studies), REML",
}


def pool_cohorts_per_study(data: pd.DataFrame, approach: CohortApproach, *, study_col: str = "study",
                           alpha: float = 0.05) -> BivariateResult:
    """Pool with one of the approaches to several cohorts per study (all on the Reitsma normal approximation).

    ``"independent"``: :func:`reitsma` on every row; ``"one"``: :func:`one_per_study` then :func:`reitsma`;
    ``"robust"``: ``reitsma(..., cluster=study_col)``; ``"multilevel"``: :func:`multilevel_reitsma` (its
    ``pooled`` result, whose ``sigma`` is the total between-cohort covariance).
    """
    if approach not in COHORT_APPROACHES:
        raise ConfigError(f"approach={approach!r} is not valid; choose one of {', '.join(COHORT_APPROACHES)}")
    study_labels(data, study_col)  # a clear error for a missing or empty study column, whatever the approach
    if approach == "independent":
        return reitsma(data, alpha=alpha)
    if approach == "one":
        return reitsma(one_per_study(data, study_col=study_col), alpha=alpha)
    if approach == "robust":
        return reitsma(data, alpha=alpha, cluster=study_col)
    return multilevel_reitsma(data, study_col=study_col, alpha=alpha).pooled


def compare_cohorts_per_study(data: pd.DataFrame, *, study_col: str = "study", alpha: float = 0.05,
                              approaches: tuple[str, ...] = COHORT_APPROACHES) -> pd.DataFrame:
    """One row per approach (``approaches``, default all four): cohorts and studies used, pooled sensitivity and specificity with CIs, the SEs of
    the logits, the between-cohort (co)variance (total, for the three-level model), and the warnings raised.

    Every approach uses the Reitsma normal approximation with the same continuity correction, so the rows differ
    only in how the cohorts of one study are handled.
    """
    studies = study_labels(data, study_col)
    rows = []
    for approach in approaches:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MetaAnalysisWarning)
            r = pool_cohorts_per_study(data, approach, study_col=study_col, alpha=alpha)  # type: ignore[arg-type]
        se = np.sqrt(np.diag(r.cov_mu))
        rows.append({
            "approach": approach, "description": _LABELS[approach], "cohorts": r.k,
            "studies": int(np.unique(studies).size),
            "sensitivity": r.sensitivity.estimate, "sensitivity_ci_low": r.sensitivity.ci_low,
            "sensitivity_ci_high": r.sensitivity.ci_high, "specificity": r.specificity.estimate,
            "specificity_ci_low": r.specificity.ci_low, "specificity_ci_high": r.specificity.ci_high,
            "se_logit_sens": float(se[0]), "se_logit_spec": float(se[1]), "tau2_sens": r.tau2_sens,
            "tau2_spec": r.tau2_spec, "rho": r.rho,
            "warnings": "; ".join(dict.fromkeys(str(w.message) for w in caught)),
        })
    return pd.DataFrame(rows)
