"""Per-study accuracy table in the manner of R ``mada::madad``: sensitivity, specificity and FPR with Wilson
intervals, LR+, LR- and DOR with log-method intervals, one row per cohort, at a stated continuity correction.

Formulas (counts after the continuity correction; ``z = z_(1 - alpha/2)``):

- ``sens = TP / (TP + FN)``, ``spec = TN / (TN + FP)``, ``FPR = FP / (FP + TN) = 1 - spec``; Wilson score interval
  ``(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` (statsmodels ``proportion_confint``,
  ``method="wilson"``; R ``prop.test(correct = FALSE)``), or Clopper-Pearson;
- ``LR+ = sens / FPR``, ``LR- = (1 - sens) / spec``, ``DOR = TP TN / (FP FN)``, intervals
  ``exp(log(x) +- z SE)`` with the delta-method SEs of :func:`~nodescope.meta.study_measures`
  (``SE(log DOR)^2 = 1/TP + 1/FN + 1/FP + 1/TN``, ...).

mada was not run (not installed); these are mada's documented formulas, recomputed in base R in
``tests/meta/reference/meta_results15.R``. mada's ``madad`` corrects by ``correction.control = "all"`` (0.5
added to every cell of every study when any cell is zero), the default here (``"all-if-any-zero"``);
``"studies-with-zero"`` is mada's ``"single"`` and metafor's ``to = "only0"``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from nodescope.errors import ConfigError
from nodescope.meta._counts import Correction, Counts, as_counts, corrected, measure_data

__all__ = ["study_table"]

StudyCi = Literal["wilson", "clopper-pearson"]
_SM_METHOD = {"wilson": "wilson", "clopper-pearson": "beta"}


def study_table(
    data: pd.DataFrame | Counts,
    *,
    correction: float = 0.5,
    correction_rule: Correction = "all-if-any-zero",
    alpha: float = 0.05,
    ci_method: StudyCi = "wilson",
) -> pd.DataFrame:
    """Per-cohort sensitivity, specificity, FPR, LR+, LR- and DOR with ``1 - alpha`` intervals (like ``mada::madad``).

    Parameters
    ----------
    data : DataFrame
        Columns ``TP, FP, FN, TN`` (non-negative integers), optionally ``study``; one row per cohort.
    correction : float, default 0.5
        Added to all four cells of the cohorts chosen by ``correction_rule`` before anything is computed.
    correction_rule : {"all-if-any-zero", "studies-with-zero", "all", "none"}, default "all-if-any-zero"
        mada's ``madad`` default (every cohort when any cohort has a zero cell). With ``"none"`` a zero cell
        makes the log-scale measures infinite, which is an error naming the cohorts.
    alpha : float, default 0.05
    ci_method : {"wilson", "clopper-pearson"}, default "wilson"
        Interval of the three proportions (computed on the corrected counts, as mada does).

    Returns
    -------
    DataFrame
        One row per cohort: ``study, TP, FN, FP, TN`` (as given), ``corrected`` (bool), then for each of
        ``sens, spec, fpr, lr_pos, lr_neg, dor`` the columns ``<name>, <name>_ci_low, <name>_ci_high``, and
        ``log_dor_se``.

    Examples
    --------
    >>> import pandas as pd
    >>> from nodescope.meta import study_table
    >>> t = study_table(pd.DataFrame({"TP": [45], "FN": [5], "FP": [10], "TN": [90]}))
    >>> round(float(t.loc[0, "sens"]), 3), round(float(t.loc[0, "dor"]), 1)
    (0.9, 81.0)
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha!r}")
    if ci_method not in _SM_METHOD:
        raise ConfigError(f"ci_method={ci_method!r} is not valid; choose one of {tuple(_SM_METHOD)}")
    counts = as_counts(data)
    cc, mask = corrected(counts, correction, correction_rule)
    y, v, _ = measure_data(counts, ("log_lr_pos", "log_lr_neg", "log_dor"), correction, correction_rule)
    out = pd.DataFrame({"study": list(counts.labels), "TP": counts.tp.astype(int), "FN": counts.fn.astype(int),
                        "FP": counts.fp.astype(int), "TN": counts.tn.astype(int), "corrected": mask})
    for name, x, n in (("sens", cc.tp, cc.tp + cc.fn), ("spec", cc.tn, cc.tn + cc.fp), ("fpr", cc.fp, cc.tn + cc.fp)):
        lo, hi = proportion_confint(x, n, alpha=alpha, method=_SM_METHOD[ci_method])
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = x / n, np.asarray(lo), np.asarray(hi)
    z = stats.norm.ppf(1 - alpha / 2)
    se = np.sqrt(v)
    for j, name in enumerate(("lr_pos", "lr_neg", "dor")):
        out[name] = np.exp(y[:, j])
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = np.exp(y[:, j] - z * se[:, j]), np.exp(y[:, j] + z * se[:, j])
    out["log_dor_se"] = se[:, 2]
    return out
