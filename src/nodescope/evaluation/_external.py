"""External validation at new sites (TRIPOD+AI items 12 and 23): what is lost at each site, and how to get it back.

For each model of a binary task and each site of its ``external`` rows (the ``site`` column of the predictions;
all external rows form one site ``"external"`` when there is none), beside the model's internal reference (its
``test`` rows when it has any, else its ``cv``/``val`` rows, out-of-fold):

* discrimination: AUC with its DeLong interval (a patient bootstrap when a patient has several rows), and the
  difference external - internal with the unpaired DeLong interval of :func:`compare_auc_unpaired`;
* calibration at the site: calibration intercept (calibration-in-the-large), slope and Brier score
  (:func:`calibration_metrics`, Hosmer-Lemeshow on ``g`` df);
* the operating point at the **source threshold** (the one chosen on the model's cv/val rows, or given, applied
  unchanged) versus at a threshold **re-chosen at the site** by the same rule on the site's own rows. The
  re-chosen threshold is tuned and evaluated on the same rows, so its operating point is optimistic: it shows what
  re-tuning could reach, not what it will reach (a fixed-threshold rule has nothing to re-apply: Youden's J is
  used and noted);
* optionally the recalibration learning curve of :func:`recalibration_curve` per site.

Nothing here draws or writes; ``_external_report`` turns an :class:`ExternalValidation` into figures and HTML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._calibration import calibration_metrics
from nodescope.evaluation._compare import compare_auc_unpaired
from nodescope.evaluation._options import ThresholdRule, parse_threshold
from nodescope.evaluation._predictions import Predictions
from nodescope.evaluation._recalibration import RecalibrationCurve, check_curve_options, recalibration_curve
from nodescope.evaluation._roc import roc_auc
from nodescope.evaluation._run import TUNING_SPLITS, jsonable
from nodescope.evaluation._threshold import BinaryMetrics, binary_metrics, choose_threshold
from nodescope.evaluation._validation import check_alpha, check_n_boot

__all__ = ["EXTERNAL_METRICS", "ExternalValidation", "SiteResult", "external_validation"]

SITE_COLUMN = "site"
NO_SITE = "external"
#: Metrics of the tidy ``external`` table, in order.
EXTERNAL_METRICS: tuple[str, ...] = (
    "auc", "auc_difference", "calibration_in_the_large", "calibration_slope", "brier", "threshold_source",
    "sensitivity_source_threshold", "specificity_source_threshold", "threshold_site", "sensitivity_site_threshold",
    "specificity_site_threshold",
)


@dataclass(frozen=True, eq=False)
class SiteResult:
    """One model at one site (``role="external"``) or on its internal reference rows (``role="internal"``).

    Attributes
    ----------
    model, site : str
    role : {"internal", "external"}
    rows : str
        The splits the rows come from (``external``, ``test``, ``cv+val`` ...).
    n, n_patients, n_positive : int
    auc : Estimate
    auc_difference : Estimate or None
        External AUC - internal AUC (``None`` for the internal row).
    calibration_in_the_large, calibration_slope, brier : Estimate
    source : BinaryMetrics
        At the source threshold.
    site_threshold : float
        Re-chosen on these rows by the same rule (``nan`` when it cannot be: one class only).
    site_metrics : BinaryMetrics or None
        At ``site_threshold``; optimistic (tuned on the rows it is evaluated on).
    notes : tuple of str
    """

    model: str
    site: str
    role: str
    rows: str
    n: int
    n_patients: int
    n_positive: int
    auc: Estimate
    auc_difference: Estimate | None
    calibration_in_the_large: Estimate
    calibration_slope: Estimate
    brier: Estimate
    source: BinaryMetrics
    site_threshold: float
    site_metrics: BinaryMetrics | None
    notes: tuple[str, ...] = ()

    def estimates(self) -> list[Estimate]:
        """The rows of the tidy table, named as :data:`EXTERNAL_METRICS`."""
        def value(name: str, v: float, method: str, note: str = "") -> Estimate:
            return Estimate(name, v, math.nan, math.nan, method, self.auc.alpha, self.n, note)

        def renamed(e: Estimate | None, name: str, note: str = "") -> Estimate:
            if e is None:
                return value(name, math.nan, "", note)
            return Estimate(name, e.estimate, e.ci_low, e.ci_high, e.method, e.alpha, e.n,
                            "; ".join(x for x in (e.note, note) if x), e.extra)

        opt = "optimistic: threshold tuned on these rows"
        site = self.site_metrics
        return [
            self.auc,
            renamed(self.auc_difference, "auc_difference", "" if self.auc_difference else "reference"),
            renamed(self.calibration_in_the_large, "calibration_in_the_large"),
            renamed(self.calibration_slope, "calibration_slope"),
            renamed(self.brier, "brier"),
            value("threshold_source", self.source.threshold, "given"),
            renamed(self.source.sensitivity, "sensitivity_source_threshold"),
            renamed(self.source.specificity, "specificity_source_threshold"),
            value("threshold_site", self.site_threshold, "re-chosen here", opt),
            renamed(site.sensitivity if site else None, "sensitivity_site_threshold", opt),
            renamed(site.specificity if site else None, "specificity_site_threshold", opt),
        ]


@dataclass(frozen=True, eq=False)
class ExternalValidation:
    """Every model at every external site, beside its internal reference, and the recalibration curves.

    Attributes
    ----------
    rule : str
        The threshold rule (``youden``, ``sens:0.9``, ``spec:0.9`` or a probability).
    site_column : str or None
        ``"site"`` when the predictions have it, else ``None`` (all external rows form the site ``"external"``).
    results : tuple of SiteResult
        Per model: the internal row first, then its sites in sorted order.
    curves : dict
        ``(model, site) -> RecalibrationCurve`` when recalibration curves were asked for.
    notes : tuple of str
    alpha : float
    """

    rule: str
    site_column: str | None
    results: tuple[SiteResult, ...]
    curves: dict[tuple[str, str], RecalibrationCurve] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        """The tidy ``external`` table: one row per model, site and metric (:data:`EXTERNAL_METRICS`)."""
        rows = []
        for r in self.results:
            head = {"model": r.model, "site": r.site, "role": r.role, "rows": r.rows, "n": r.n,
                    "n_patients": r.n_patients, "n_positive": r.n_positive,
                    "prevalence": r.n_positive / r.n if r.n else math.nan}
            rows += [{**head, "metric": e.name, "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
                      "method": e.method, "alpha": e.alpha, "note": e.note} for e in r.estimates()]
        return pd.DataFrame(rows)

    def curve_frame(self) -> pd.DataFrame:
        """The ``recalibration_curve`` table: the curves' summaries with ``model`` and ``site`` first."""
        parts = [c.table.assign(model=m, site=s) for (m, s), c in self.curves.items()]
        if not parts:
            return pd.DataFrame()
        out = pd.concat(parts, ignore_index=True)
        return out[["model", "site", *[c for c in out.columns if c not in ("model", "site")]]]

    def to_dict(self) -> dict[str, Any]:
        """The ``external`` entry of ``metrics.json``."""
        models: dict[str, Any] = {}
        for r in self.results:
            doc = {"role": r.role, "rows": r.rows, "n": r.n, "n_patients": r.n_patients, "n_positive": r.n_positive,
                   "metrics": {e.name: e.to_dict() for e in r.estimates()}, "notes": list(r.notes)}
            entry = models.setdefault(r.model, {"internal": None, "sites": {}})
            if r.role == "internal":
                entry["internal"] = doc
            else:
                entry["sites"][r.site] = doc
        curves = {f"{m}|{s}": {"model": m, "site": s, "sizes": list(c.sizes), "skipped_sizes": list(c.skipped_sizes),
                               "repeats": int(c.repeats["repeat"].max()) + 1, "threshold": c.threshold,
                               "table": "recalibration_curve.csv"} for (m, s), c in self.curves.items()}
        return jsonable({"rule": self.rule, "site_column": self.site_column, "models": models,
                         "recalibration_curves": curves, "notes": list(self.notes)})


def _site_threshold(y: np.ndarray, s: np.ndarray, rule: ThresholdRule) -> tuple[float, str]:
    """The threshold the rule picks on these rows (Youden for a fixed rule), or nan with the reason."""
    method, target = (rule.method, rule.target) if rule.method != "fixed" else ("youden", None)
    note = "a fixed threshold has no rule to re-apply: re-chosen by Youden's J" if rule.method == "fixed" else ""
    try:
        return choose_threshold(y, s, method=method, target=target).threshold, note  # type: ignore[arg-type]
    except StatisticsInputError as exc:
        return math.nan, "; ".join(x for x in (note, f"no site threshold: {exc}") if x)


def _one(model: str, site: str, role: str, sub: Predictions, threshold: float, rule: ThresholdRule,
         alpha: float, n_boot: int, seed: int) -> SiteResult:
    """AUC, calibration and both operating points of one model on one set of rows."""
    y, s, g = sub.y_true(), sub.y_score(), sub.groups()
    clustered = len(set(g)) < len(g)
    groups = g if clustered else None
    auc = (roc_auc(y, s, method="bootstrap", n_boot=n_boot, groups=g, alpha=alpha, seed=seed) if clustered
           else roc_auc(y, s, method="delong", alpha=alpha))
    notes: list[str] = []
    try:
        cal = calibration_metrics(y, s, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed,
                                  hl_fitted_on_sample=role == "internal" and sub.values("split")[0] in TUNING_SPLITS)
        ci, cs, br = cal.calibration_in_the_large, cal.calibration_slope, cal.brier
    except ValueError as exc:
        notes.append(f"calibration undefined: {exc}")
        ci, cs, br = (Estimate(n, math.nan, math.nan, math.nan, "", alpha, len(y), str(exc))
                      for n in ("calibration_in_the_large", "calibration_slope", "brier"))
    source = binary_metrics(y, s, threshold=threshold, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed)
    thr, why = _site_threshold(y, s, rule)
    if why:
        notes.append(why)
    site_m = (binary_metrics(y, s, threshold=thr, alpha=alpha, n_boot=n_boot, groups=groups, seed=seed)
              if math.isfinite(thr) else None)
    return SiteResult(model=model, site=site, role=role, rows="+".join(sub.values("split")), n=len(y),
                      n_patients=len(set(g)), n_positive=int(y.sum()), auc=auc, auc_difference=None,
                      calibration_in_the_large=ci, calibration_slope=cs, brier=br, source=source, site_threshold=thr,
                      site_metrics=site_m, notes=tuple(notes))


def _difference(ext: Predictions, internal: Predictions, alpha: float) -> Estimate:
    """External - internal AUC: unpaired DeLong (one row per patient on both sides), else the bare difference."""
    if len(set(ext.groups())) < len(ext) or len(set(internal.groups())) < len(internal):
        a = roc_auc(ext.y_true(), ext.y_score(), method="delong", alpha=alpha).estimate
        b = roc_auc(internal.y_true(), internal.y_score(), method="delong", alpha=alpha).estimate
        return Estimate("auc_difference", a - b, math.nan, math.nan, "difference", alpha, len(ext) + len(internal),
                        "no interval: patients with several rows (the unpaired DeLong test needs one row each)")
    try:
        return compare_auc_unpaired(ext.y_true(), ext.y_score(), internal.y_true(), internal.y_score(),
                                    alpha=alpha).difference
    except StatisticsInputError as exc:
        return Estimate("auc_difference", math.nan, math.nan, math.nan, "delong-unpaired", alpha,
                        len(ext) + len(internal), f"undefined: {exc}")


def _site_levels(ext: Predictions) -> tuple[list[str], pd.Series]:
    """The sites of the external rows (sorted; missing -> ``(missing)``), or the one site ``external``."""
    if SITE_COLUMN not in ext.frame.columns:
        return [NO_SITE], pd.Series(NO_SITE, index=ext.frame.index)
    keys = ext.frame[SITE_COLUMN].astype(str).str.strip().replace("", "(missing)")
    return sorted(keys.unique()), keys


def external_validation(
    preds: Predictions,
    *,
    threshold: str = "youden",
    thresholds: Mapping[str, float] | None = None,
    models: Sequence[str] | None = None,
    recalibrate: bool = False,
    sizes: Sequence[int] | None = None,
    repeats: int = 200,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> ExternalValidation:
    """Per-site external validation of every model with ``external`` rows (see the module docstring).

    Parameters
    ----------
    preds : Predictions
        A binary task with ``external`` rows (and, per model, ``cv``/``val`` rows or ``thresholds``).
    threshold : str, default "youden"
        The rule: ``youden``, ``sens:0.9``, ``spec:0.9`` or a fixed probability. The source threshold is chosen by
        it on the model's cv/val rows (as :func:`evaluate_predictions` does) unless ``thresholds`` gives it; the
        site threshold is re-chosen by it on the site's rows.
    thresholds : mapping model -> float, optional
        The source thresholds (e.g. those :func:`evaluate_predictions` chose, or a bundle's).
    models : sequence of str, optional
        The models to analyse (default: every model with external rows).
    recalibrate : bool, default False
        Add the recalibration learning curve of each site (:func:`recalibration_curve`, ``sizes``, ``repeats``).
    sizes, repeats
        Passed to :func:`recalibration_curve`; a site too small for every size is noted and left without a curve.
    alpha, n_boot, seed
        Interval level, bootstrap replicates and seed.

    Returns
    -------
    ExternalValidation

    Raises
    ------
    StatisticsInputError
        A multi-class task, no external rows, an unknown model, or a model without cv/val rows and no threshold in
        ``thresholds`` under a rule that needs them.
    """
    if preds.task != "binary":
        raise StatisticsInputError(f"external validation needs a binary task; the predictions have classes "
                                   f"{list(preds.classes)}")
    rule = parse_threshold(threshold)
    alpha, n_boot = check_alpha(alpha), check_n_boot(n_boot)
    if recalibrate:  # bad sizes or repeats are refused before anything is computed
        check_curve_options(sizes, repeats)
    have = [m for m in preds.values("model") if len(preds.where(model=m, split="external"))]
    if not have:
        raise StatisticsInputError(f"{preds.source}: no row has split 'external'; external validation needs them")
    unknown = [m for m in (models or ()) if m not in preds.values("model")]
    if unknown:
        raise StatisticsInputError(f"models {unknown} are not in the predictions; models are {preds.values('model')}")
    notes: list[str] = []
    results: list[SiteResult] = []
    curves: dict[tuple[str, str], RecalibrationCurve] = {}
    for name in [m for m in (models or have) if m in have]:
        p = preds.where(model=name)
        thr = _source_threshold(name, p, rule, thresholds)
        internal = p.where(split="test") if len(p.where(split="test")) else p.where(split=list(TUNING_SPLITS))
        ref = None
        if len(internal):
            ref = _one(name, "internal", "internal", internal, thr, rule, alpha, n_boot, seed)
            results.append(ref)
        else:
            notes.append(f"model {name!r}: no test or cv/val rows, so no internal reference to compare with")
        ext = p.where(split="external")
        levels, keys = _site_levels(ext)
        for site in levels:
            sub = Predictions(ext.frame[keys == site], ext.classes, ext.positive, ext.task, ext.source)
            r = _one(name, site, "external", sub, thr, rule, alpha, n_boot, seed)
            if ref is not None:
                r = _with_difference(r, _difference(sub, internal, alpha))
            results.append(r)
            if recalibrate:
                curve = _curve(name, site, sub, thr, sizes, repeats, alpha, seed, notes)
                if curve is not None:
                    curves[(name, site)] = curve
    return ExternalValidation(rule=rule.spec, site_column=SITE_COLUMN if SITE_COLUMN in preds.frame.columns else None,
                              results=tuple(results), curves=curves, notes=tuple(notes), alpha=alpha)


def _source_threshold(name: str, p: Predictions, rule: ThresholdRule, given: Mapping[str, float] | None) -> float:
    if given is not None and name in given:
        return float(given[name])
    tune = p.where(split=list(TUNING_SPLITS))
    if rule.method == "fixed":
        return float(rule.target)  # type: ignore[arg-type]
    if len(tune) == 0:
        raise StatisticsInputError(f"model {name!r} has no cv/val rows to choose the source threshold on "
                                   f"({rule.spec!r}); give a fixed threshold, e.g. threshold='0.5'")
    return choose_threshold(tune.y_true(), tune.y_score(), method=rule.method,  # type: ignore[arg-type]
                            target=rule.target).threshold


def _with_difference(r: SiteResult, diff: Estimate) -> SiteResult:
    import dataclasses

    return dataclasses.replace(r, auc_difference=diff)


def _curve(model: str, site: str, sub: Predictions, thr: float, sizes: Sequence[int] | None, repeats: int,
           alpha: float, seed: int, notes: list[str]) -> RecalibrationCurve | None:
    g = sub.groups()
    try:
        return recalibration_curve(sub.y_true(), sub.y_score(), sizes=sizes, repeats=repeats, threshold=thr,
                                   groups=g if len(set(g)) < len(g) else None, alpha=alpha, seed=seed)
    except StatisticsInputError as exc:
        notes.append(f"model {model!r}, site {site!r}: no recalibration curve: {exc}")
        return None
