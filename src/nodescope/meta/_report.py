"""Files of a meta-analysis run: ``results.json``, tidy CSV tables, figures (PNG + SVG) and ``report.html``.

The report follows the results section of PRISMA-DTA (McInnes et al., JAMA 2018;319:388-396): study selection and
characteristics, risk of bias and applicability (QUADAS-2), results of individual studies (forest plot), synthesis
(pooled estimates with confidence and prediction regions), heterogeneity, additional analyses (subgroups,
meta-regression), sensitivity analyses (one cohort per study, leave-one-out), publication bias (Deeks) and clinical
utility (Fagan). ``results.json`` follows the schema ``nodescope.meta.results`` version
:data:`RESULTS_SCHEMA_VERSION`, documented in ``docs/meta.md``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodescope import __version__
from nodescope.meta._plots import (
    clopper_pearson_bounds,
    deeks_funnel_plot,
    fagan_nomogram,
    forest_plot,
    quadas_summary_plot,
    quadas_traffic_light,
    sroc_plot,
)
from nodescope.meta._report_html import build_meta_html, fitted_model_text, model_label, sroc_title
from nodescope.meta._run import MetaAnalysis, finite_or_none
from nodescope.meta._summary import BivariateResult
from nodescope.report import save_figure

__all__ = ["RESULTS_SCHEMA_VERSION", "meta_figures", "meta_results", "meta_tables", "write_meta_report"]

# 2.0: pooled.heterogeneity I2 in percent (was a fraction); 2.1: model_fitted, sroc.curve/auc/partial_auc/moses,
# publication_bias.deeks.correction_rule, model/rho_fixed of leave-one-out records; 3.0: API 1.0 names
# (heterogeneity i2_*_percent, q_p_value, extra se/mu/scale)
RESULTS_SCHEMA_VERSION = "3.0"

def _per_study(analysis: MetaAnalysis) -> pd.DataFrame:
    s = analysis.studies
    tp, fp, fn, tn = s.tp, s.fp, s.fn, s.tn
    alpha = analysis.alpha
    sl, sh = clopper_pearson_bounds(tp, tp + fn, alpha)
    cl, ch = clopper_pearson_bounds(tn, tn + fp, alpha)
    out = s.frame[["study", "cohort", "TP", "FP", "FN", "TN"]].copy()
    out["n"] = tp + fp + fn + tn
    out["prevalence"] = (tp + fn) / out["n"]
    out["sensitivity"] = tp / (tp + fn)
    out["sens_ci_low"], out["sens_ci_high"] = sl, sh
    out["specificity"] = tn / (tn + fp)
    out["spec_ci_low"], out["spec_ci_high"] = cl, ch
    out["youden"] = out["sensitivity"] + out["specificity"] - 1
    out["ci_method"] = "clopper-pearson"
    for c in s.covariates:
        out[c] = s.frame[c]
    return out


def _estimates_frame(result: BivariateResult, **labels: Any) -> pd.DataFrame:
    rows = []
    for e in (result.sensitivity, result.specificity, result.lr_positive, result.lr_negative, result.dor, result.auc):
        rows.append({**labels, "name": e.name, "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
                     "method": e.method, "k": result.k, "model": result.model, "rho_fixed": result.rho_fixed,
                     "fallback": result.fallback})
    return pd.DataFrame(rows)


def meta_tables(analysis: MetaAnalysis) -> dict[str, pd.DataFrame]:
    """Tidy tables of a run (one CSV each).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``per_study`` (counts, exact CIs, covariates), ``pooled`` (the main model's summaries, variance components,
        HSROC parameters, I2), ``heterogeneity`` (bivariate and univariate: tau2, Q, I2, prediction intervals),
        ``subgroups``, ``meta_regression``, ``sensitivity_analyses`` (one per study, leave-one-out),
        ``publication_bias`` (Deeks), ``clinical_utility`` (post-test probabilities) and ``quadas`` (summary), each
        present only when the analysis ran.
    """
    p = analysis.pooled
    tables: dict[str, pd.DataFrame] = {"per_study": _per_study(analysis)}
    pooled = p.summary_frame()
    pooled.insert(0, "model", p.model)
    tables["pooled"] = pooled
    het = [{"source": "bivariate", "measure": "logit sensitivity", "tau2": p.tau2_sens,
            "I2_percent": p.heterogeneity.i2_sens_percent, "rho_sens_spec": p.rho, "k": p.k, "method": p.model},
           {"source": "bivariate", "measure": "logit specificity", "tau2": p.tau2_spec,
            "I2_percent": p.heterogeneity.i2_spec_percent, "rho_sens_spec": p.rho, "k": p.k, "method": p.model},
           {"source": "bivariate", "measure": "bivariate (generalised variance)", "tau2": np.nan,
            "I2_percent": p.heterogeneity.i2_bivariate_percent, "rho_sens_spec": p.rho, "k": p.k, "method": p.model}]
    frame = pd.DataFrame(het)
    if analysis.univariate:
        uni = pd.concat([u.summary_frame() for u in analysis.univariate.values()], ignore_index=True)
        uni.insert(0, "source", "univariate")
        frame = pd.concat([frame, uni], ignore_index=True)
    tables["heterogeneity"] = frame
    if analysis.subgroups:
        parts = []
        for col, sg in analysis.subgroups.items():
            for level, fit in sg.fits.items():
                parts.append(_estimates_frame(fit, column=col, level=level))
        sub = pd.concat(parts, ignore_index=True)
        sub["lrt_p_value"] = sub["column"].map({c: sg.regression.lrt_p_value for c, sg in analysis.subgroups.items()})
        sub["lrt_df"] = sub["column"].map({c: sg.regression.lrt_df for c, sg in analysis.subgroups.items()})
        tables["subgroups"] = sub
    if analysis.regression is not None:
        reg = analysis.regression.coefficients.copy()
        reg["lrt_statistic"] = analysis.regression.lrt_statistic
        reg["lrt_df"] = analysis.regression.lrt_df
        reg["lrt_p_value"] = analysis.regression.lrt_p_value
        tables["meta_regression"] = reg
    sens_parts = [_estimates_frame(p, analysis="all cohorts", omitted="")]
    if analysis.one_per_study is not None:
        sens_parts.append(_estimates_frame(analysis.one_per_study, analysis="one cohort per study (Youden)",
                                           omitted=""))
    if analysis.leave_one_out is not None:
        for _, row in analysis.leave_one_out.iterrows():
            rows = [{"analysis": "leave-one-out", "omitted": row["omitted"], "name": name, "estimate": row[name],
                     "ci_low": row[f"{name}_ci_low"], "ci_high": row[f"{name}_ci_high"], "k": row["k"],
                     "model": row["model"], "rho_fixed": row["rho_fixed"], "fallback": row["fallback"]}
                    for name in ("sensitivity", "specificity", "dor", "auc")]
            sens_parts.append(pd.DataFrame(rows))
    if len(sens_parts) > 1:
        tables["sensitivity_analyses"] = pd.concat(sens_parts, ignore_index=True)
    if analysis.deeks is not None:
        d = analysis.deeks
        tables["publication_bias"] = pd.DataFrame([{
            "test": "Deeks funnel-plot asymmetry", "slope": d.slope, "slope_se": d.slope_se, "intercept": d.intercept,
            "intercept_se": d.intercept_se, "t": d.t, "df": d.df, "p_value": d.p_value, "correction": d.correction,
            "correction_rule": d.correction_rule, "corrected": "; ".join(d.corrected)}])
    pt = analysis.post_test
    tables["clinical_utility"] = pd.DataFrame([
        {"pretest": pt.pretest, "pretest_source": analysis.pretest_source, "test_result": which, "lr": lr.estimate,
         "lr_ci_low": lr.ci_low, "lr_ci_high": lr.ci_high, "post_test": e.estimate, "post_test_ci_low": e.ci_low,
         "post_test_ci_high": e.ci_high}
        for which, lr, e in (("positive", p.lr_positive, pt.positive), ("negative", p.lr_negative, pt.negative))])
    if analysis.quadas is not None:
        tables["quadas"] = analysis.quadas.summary()
    return tables


def _curve(fpr: np.ndarray, sens: np.ndarray) -> dict[str, list[float | None]]:
    return {"fpr": finite_or_none(np.asarray(fpr)), "sens": finite_or_none(np.asarray(sens))}


def _sroc_parts(analysis: MetaAnalysis, studies_fpr: np.ndarray) -> dict[str, Any]:
    result = analysis.pooled
    fpr = np.linspace(max(float(studies_fpr.min()), 1e-4), min(float(studies_fpr.max()), 1 - 1e-4), 101)
    curve = analysis.sroc.sroc_curve(fpr) if analysis.sroc is not None else result.sroc_curve(fpr)
    return {
        **(analysis.sroc.to_dict() if analysis.sroc is not None else {}),
        "summary_point": {"fpr": 1 - result.specificity.estimate, "sens": result.sensitivity.estimate},
        "curve_observed_fpr_range": _curve(*curve),
        "confidence_region": _curve(*result.confidence_region(n_points=100)),
        "prediction_region": _curve(*result.prediction_region(n_points=100)),
    }


def _file_info(path: str | Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    p = Path(path)
    return {"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}


def _synthetic_rows(analysis: MetaAnalysis) -> list[str]:
    frame = analysis.studies.frame
    if "data_source" not in frame.columns:
        return []
    mask = frame["data_source"].astype(str).str.lower() == "synthetic"
    return [lab for lab, m in zip(analysis.studies.labels(), mask, strict=True) if m]


def meta_results(analysis: MetaAnalysis, *, inputs: dict[str, str | Path | None] | None = None) -> dict[str, Any]:
    """The JSON document of a run (schema ``nodescope.meta.results`` :data:`RESULTS_SCHEMA_VERSION`).

    Parameters
    ----------
    analysis : MetaAnalysis
    inputs : dict, optional
        ``{"studies": path, "quadas": path}``; each file is recorded with its SHA-256.

    Returns
    -------
    dict
        JSON-ready (``nan`` -> ``null``); keys documented in ``docs/meta.md``.
    """
    p = analysis.pooled
    s = analysis.studies
    fpr = s.fp / (s.fp + s.tn)
    per = _per_study(analysis)
    doc: dict[str, Any] = {
        "schema": "nodescope.meta.results",
        "schema_version": RESULTS_SCHEMA_VERSION,
        "nodescope_version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": {k: _file_info(v) for k, v in (inputs or {}).items()},
        "options": analysis.options,
        "k_cohorts": len(s),
        "k_studies": int(s.frame["study"].nunique()),
        "excluded_cohorts": [] if analysis.excluded is None else analysis.excluded.labels(),
        "synthetic_cohorts": _synthetic_rows(analysis),
        "renamed_columns": s.renamed,
        "per_study": per.to_dict(orient="records"),
        "model_fitted": {"model": p.model, "rho_fixed": p.rho_fixed, "fallback": p.fallback,
                         "correction": p.correction, "correction_rule": p.correction_rule,
                         "description": fitted_model_text(p, analysis.model)},
        "pooled": p.to_dict(),
        "sroc": _sroc_parts(analysis, fpr),
        "univariate": {m: {"pooled": u.pooled.to_dict(), "prediction": u.prediction.to_dict(), "tau2": u.tau2,
                           "q": u.q, "q_df": u.q_df, "q_p_value": u.q_p_value, "i2_percent": u.i2_percent, "method": u.method,
                           "correction": u.correction, "correction_rule": u.correction_rule,
                           "corrected": list(u.corrected)}
                       for m, u in analysis.univariate.items()},
        "subgroups": {col: {"levels": {lev: fit.to_dict() for lev, fit in sg.fits.items()},
                            "sroc": {lev: x.to_dict() for lev, x in analysis.subgroup_sroc.get(col, {}).items()},
                            "lrt": {"statistic": sg.regression.lrt_statistic, "df": sg.regression.lrt_df,
                                    "p_value": sg.regression.lrt_p_value, "model": sg.regression.model}}
                      for col, sg in analysis.subgroups.items()},
        "meta_regression": None if analysis.regression is None else {
            "model": analysis.regression.model, "terms": list(analysis.regression.terms),
            "coefficients": analysis.regression.coefficients.to_dict(orient="records"),
            "lrt": {"statistic": analysis.regression.lrt_statistic, "df": analysis.regression.lrt_df,
                    "p_value": analysis.regression.lrt_p_value},
            "warnings": list(analysis.regression.warnings)},
        "sensitivity_analyses": {
            "one_per_study": None if analysis.one_per_study is None else {
                "selection": "highest Youden index per study",
                "cohorts": analysis.one_per_study_rows.to_dict(orient="records")
                if analysis.one_per_study_rows is not None else [],
                "pooled": analysis.one_per_study.to_dict()},
            "leave_one_out": None if analysis.leave_one_out is None
            else analysis.leave_one_out.to_dict(orient="records"),
        },
        "publication_bias": {"deeks": None if analysis.deeks is None else {
            k: v for k, v in asdict(analysis.deeks).items() if k not in ("x", "y", "weights", "labels")}},
        "clinical_utility": {"pretest": analysis.post_test.pretest, "pretest_source": analysis.pretest_source,
                             "post_test_positive": analysis.post_test.positive.to_dict(),
                             "post_test_negative": analysis.post_test.negative.to_dict()},
        "quadas": None if analysis.quadas is None else {
            "studies": len(analysis.quadas), "missing_studies": analysis.quadas_missing,
            "summary": analysis.quadas.summary().to_dict(orient="records"),
            "judgements": analysis.quadas.frame.to_dict(orient="records")},
        "warnings": [{"analysis": a, "message": m} for a, m in analysis.warnings],
        "skipped": analysis.skipped,
    }
    return finite_or_none(doc)


def meta_figures(analysis: MetaAnalysis) -> dict[str, Figure]:
    """The figures of a run: ``forest``, ``sroc``, ``fagan`` and, when available, ``deeks``,
    ``quadas_traffic_light``, ``quadas_summary``."""
    p = analysis.pooled
    s = analysis.studies
    model = model_label(p)  # the model actually fitted (a GLMM may have fallen back to Reitsma)
    figs = {
        "forest": forest_plot(s, pooled_sensitivity=p.sensitivity, pooled_specificity=p.specificity,
                              alpha=analysis.alpha, title=f"Paired forest plot ({len(s)} cohorts; pooled: {model})"),
    }
    sroc = analysis.sroc
    if sroc is not None:
        curve = sroc.sroc_curve() if sroc.curve != "none" else None
    else:
        curve = p.sroc_curve() if p.hsroc is not None else None
    figs["sroc"] = sroc_plot(s, summary=(1 - p.specificity.estimate, p.sensitivity.estimate), curve=curve,
                             confidence_region=p.confidence_region(), prediction_region=p.prediction_region(),
                             coverage=1 - analysis.alpha, title=sroc_title(analysis))
    if analysis.deeks is not None:
        d = analysis.deeks
        figs["deeks"] = deeks_funnel_plot(d.y, d.x, intercept=d.intercept, slope=d.slope, p_value=d.p_value)
    figs["fagan"] = fagan_nomogram(analysis.post_test.pretest, p.lr_positive.estimate, p.lr_negative.estimate,
                                   title=f"Fagan nomogram (pooled likelihood ratios; {model})")
    if analysis.quadas is not None:
        figs["quadas_traffic_light"] = quadas_traffic_light(analysis.quadas)
        figs["quadas_summary"] = quadas_summary_plot(analysis.quadas)
    return figs



def write_meta_report(
    analysis: MetaAnalysis,
    out_dir: str | Path,
    *,
    inputs: dict[str, str | Path | None] | None = None,
    title: str = "Diagnostic test accuracy meta-analysis",
    banner: str | None = None,
) -> dict[str, Path]:
    """Write ``results.json``, the CSV tables, figures (PNG + SVG) and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    analysis : MetaAnalysis
        From :func:`~nodescope.meta.run_meta_analysis`.
    out_dir : str or Path
        Output folder (created). Figures go to ``out_dir/figures``, tables to ``out_dir/tables``.
    inputs : dict, optional
        Input files to record with their SHA-256 (``{"studies": ..., "quadas": ...}``).
    title : str
        Report title.
    banner : str, optional
        A notice shown at the top of the report (the synthetic rows are always named there when a ``data_source``
        column marks them).

    Returns
    -------
    dict of str to Path
        ``results``, ``report``, ``table:<name>`` and ``figure:<name>`` (PNG) paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    doc = meta_results(analysis, inputs=inputs)
    results_path = out / "results.json"
    results_path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written["results"] = results_path
    tables = meta_tables(analysis)
    for name, frame in tables.items():
        path = out / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        written[f"table:{name}"] = path
    figures = meta_figures(analysis)
    for name, fig in figures.items():
        written[f"figure:{name}"] = save_figure(fig, out / "figures", name)[0]
    report = build_meta_html(analysis, tables, figures, doc, title=title, banner=banner)
    written["report"] = report.write(out / "report.html")
    return written


