"""Every binary metric by subgroup (site, split, fold, modality or any column), as one tidy table."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

import pandas as pd

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._bootstrap import SeedLike
from nodescope.evaluation._calibration import calibration_metrics
from nodescope.evaluation._roc import average_precision, roc_auc
from nodescope.evaluation._threshold import binary_metrics
from nodescope.evaluation._validation import check_alpha, check_n_boot

__all__ = ["SUBGROUP_COLUMNS", "subgroup_metrics"]

log = logging.getLogger(__name__)

SubgroupMetricSet = Literal["auc", "average_precision", "threshold", "calibration"]
_METRIC_SETS: tuple[str, ...] = ("auc", "average_precision", "threshold", "calibration")
SUBGROUP_COLUMNS: tuple[str, ...] = (
    "by", "level", "n", "n_patients", "n_positive", "prevalence", "metric", "estimate", "ci_low", "ci_high",
    "method", "alpha", "note",
)


def _rows(by: str, level: str, n: int, n_pat: int, n_pos: int, ests: list[Estimate]) -> list[dict]:
    return [{"by": by, "level": level, "n": n, "n_patients": n_pat, "n_positive": n_pos,
             "prevalence": n_pos / n if n else math.nan, "metric": e.name, "estimate": e.estimate,
             "ci_low": e.ci_low, "ci_high": e.ci_high, "method": e.method, "alpha": e.alpha, "note": e.note}
            for e in ests]


def _undefined(name: str, alpha: float, n: int, why: str) -> Estimate:
    return Estimate(name, math.nan, math.nan, math.nan, "", alpha, n, why)


def subgroup_metrics(
    frame: pd.DataFrame,
    by: str | Sequence[str],
    *,
    threshold: float | None = None,
    y_col: str = "y",
    score_col: str = "score",
    group_col: str | None = "patient_id",
    metrics: Sequence[SubgroupMetricSet] = _METRIC_SETS,  # type: ignore[assignment]
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: SeedLike = 0,
    min_size: int = 1,
) -> pd.DataFrame:
    """Discrimination, operating-point and calibration metrics with CIs within each level of each ``by`` column.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per prediction with a 0/1 outcome ``y_col``, a score ``score_col`` (probability of the positive
        class) and the ``by`` columns.
    by : str or sequence of str
        Column(s) to split by; each is analysed on its own (``["site", "split"]`` gives the site levels, then the
        split levels). Missing values form the level ``"(missing)"``.
    threshold : float, optional
        The operating threshold (chosen on validation rows, never per subgroup); required for ``"threshold"``.
    y_col, score_col : str
        Column names of the outcome and the score.
    group_col : str or None, default "patient_id"
        Patient column. When a subgroup has several rows for a patient, the AUC interval is a bootstrap over
        patients (DeLong assumes one row per patient) and the other bootstraps resample patients.
    metrics : sequence of {"auc", "average_precision", "threshold", "calibration"}
        Which families to compute (``"threshold"`` = the 2x2 metrics of :func:`binary_metrics`; ``"calibration"`` =
        calibration intercept, slope, Brier, scaled Brier and ECE of :func:`calibration_metrics`).
    alpha : float, default 0.05
    n_boot : int, default 2000
        Bootstrap replicates wherever a bootstrap is used.
    seed : int, Generator or None
    min_size : int, default 1
        Levels with fewer rows are reported with ``nan`` metrics and a note.

    Returns
    -------
    pandas.DataFrame
        Tidy: one row per ``(by, level, metric)`` with columns :data:`SUBGROUP_COLUMNS`. Levels are in sorted order.
        Undefined metrics (one class in a subgroup, no positive call) are ``nan`` with the reason in ``note``;
        they never raise.

    Raises
    ------
    ValueError
        A ``by`` column or a required column is missing, ``"threshold"`` requested without ``threshold``, or an
        unknown metric family.
    """
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot)
    by_cols = [by] if isinstance(by, str) else list(by)
    unknown = [m for m in metrics if m not in _METRIC_SETS]
    if unknown:
        raise StatisticsInputError(f"unknown metric families {unknown}; expected some of {_METRIC_SETS}")
    need = [y_col, score_col, *by_cols] + ([group_col] if group_col else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise StatisticsInputError(f"subgroup analysis: column(s) {missing} not found; "
                                   f"available: {list(frame.columns)}")
    if "threshold" in metrics and threshold is None:
        raise StatisticsInputError("subgroup metrics 'threshold' need the operating threshold "
                                   "(chosen on validation rows)")
    rows: list[dict] = []
    for col in by_cols:
        keys = frame[col].astype("string").fillna("(missing)")
        for level in sorted(keys.unique()):
            sub = frame[keys == level]
            y = sub[y_col].to_numpy(dtype=int)
            s = sub[score_col].to_numpy(dtype=float)
            groups = sub[group_col].astype(str).to_numpy() if group_col else None
            n, n_pos = len(sub), int(y.sum())
            n_pat = int(pd.unique(groups).size) if groups is not None else n
            clustered = groups is not None and n_pat < n
            ests: list[Estimate] = []
            if n < min_size:
                why = f"subgroup has {n} row(s) (< min_size={min_size})"
                ests = [_undefined(m, alpha, n, why) for m in metrics]
                rows += _rows(col, str(level), n, n_pat, n_pos, ests)
                continue
            if "auc" in metrics:
                if clustered:
                    ests.append(roc_auc(y, s, method="bootstrap", n_boot=n_boot, groups=groups, alpha=alpha,
                                        seed=seed))
                else:
                    ests.append(roc_auc(y, s, method="delong", alpha=alpha))
            if "average_precision" in metrics:
                ests.append(average_precision(y, s, alpha=alpha, n_boot=n_boot,
                                              groups=groups if clustered else None, seed=seed))
            if "threshold" in metrics:
                bm = binary_metrics(y, s, threshold=float(threshold),  # type: ignore[arg-type]
                                    alpha=alpha, n_boot=n_boot, groups=groups if clustered else None, seed=seed)
                ests.extend(bm.estimates())
            if "calibration" in metrics:
                names = ("calibration_in_the_large", "calibration_slope", "brier", "scaled_brier", "ece")
                try:
                    cal = calibration_metrics(y, s, alpha=alpha, n_boot=n_boot, seed=seed)
                    for name, e in zip(names, (cal.calibration_in_the_large, cal.calibration_slope, cal.brier, cal.scaled_brier, cal.ece),
                                       strict=True):
                        ests.append(Estimate(name, e.estimate, e.ci_low, e.ci_high, e.method, e.alpha, e.n, e.note,
                                             e.extra))
                except ValueError as exc:  # one class, or a logistic fit that cannot be made on this subgroup
                    log.info("calibration undefined in %s=%s: %s", col, level, exc)
                    ests.extend(_undefined(nm, alpha, n, f"undefined: {exc}") for nm in names)
            rows += _rows(col, str(level), n, n_pat, n_pos, ests)
    out = pd.DataFrame(rows, columns=list(SUBGROUP_COLUMNS))
    for c in ("estimate", "ci_low", "ci_high", "prevalence"):
        out[c] = out[c].astype(float)
    return out

