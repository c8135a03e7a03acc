"""The ``report.html`` of a meta-analysis run: a summary first, then the PRISMA-DTA results section, folded.

The summary block gives the answer -- the pooled estimates, the SROC plot, heterogeneity, Deeks' test and the model
actually fitted (named from the result: an exact GLMM may have fallen back to the Reitsma model, or have its
correlation fixed at 0) -- then a table of contents and one folded section per PRISMA-DTA item (McInnes et al., JAMA
2018;319:388-396): study selection and characteristics, risk of bias and applicability (QUADAS-2), results of
individual studies, synthesis, heterogeneity, additional analyses, sensitivity analyses, publication bias and clinical
utility. The summary and the sections read the same result objects, tables and figures, and format them with the
same functions, so no number is computed or typed twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nodescope._estimate import Estimate
from nodescope.meta._run import MetaAnalysis
from nodescope.meta._summary import BivariateResult
from nodescope.report import HtmlReport

__all__ = ["build_meta_html", "fitted_model_text", "model_label", "sroc_text", "sroc_title"]

# the continuity-correction rules in words (nodescope.meta._counts.corrected)
_RULES = {
    "studies-with-zero": "0.5 added to all four cells of each cohort with a zero cell",
    "measure-cells-with-zero": "0.5 added to the measure's own cells in cohorts where one of them is zero (metafor's "
                               "escalc to='only0')",
    "all-if-any-zero": "0.5 added to every cell of every cohort when any cell is zero (mada)",
    "all": "added to every cell of every cohort",
    "none": "no correction",
}


def fitted_model_text(result: BivariateResult, requested: str | None = None) -> str:
    """Describe the model that was actually fitted, read from the result (never from the option asked for).

    Parameters
    ----------
    result : BivariateResult
        A pooled fit; its ``model`` (``glmm-laplace``, ``glmm-aghq<n>``, ``reitsma-reml``, ``reitsma-ml``),
        ``rho_fixed`` and ``fallback`` say what was fitted.
    requested : {"glmm", "reitsma"}, optional
        The model asked for; named when the fitted one differs (a fallback).

    Returns
    -------
    str
        For example "bivariate normal-approximation model of Reitsma et al. (2005), REML, with the correlation
        fixed at 0 (fallback: ...; requested: exact bivariate binomial GLMM)".
    """
    family, _, how = result.model.partition("-")
    if family == "glmm":
        n = how.removeprefix("aghq")
        fit = ("Laplace approximation" if how == "laplace" else
               f"adaptive Gauss-Hermite quadrature, {n} nodes" if how.startswith("aghq") else how)
        text = (f"exact bivariate binomial GLMM (logit sensitivity and specificity with correlated random effects; "
                f"{fit}), the model of Stata metandi/midas and lme4::glmer")
    elif family == "reitsma":
        text = (f"bivariate normal-approximation model of Reitsma et al. (2005) fitted by {how.upper()} (estimates "
                "validated against metafor::rma.mv)")
    else:
        text = result.model
    if result.rho_fixed:
        text += ", with the correlation of logit sensitivity and logit specificity fixed at 0"
    if result.fallback:
        text += f" (fallback: {result.fallback}"
        if requested is not None and requested != family:
            text += f"; requested: {'exact bivariate binomial GLMM' if requested == 'glmm' else requested}"
        text += ")"
    return text


def model_label(result: BivariateResult) -> str:
    """A short name of the fitted model for figure titles: ``GLMM``, ``Reitsma`` (``, rho = 0`` when fixed)."""
    family = result.model.partition("-")[0]
    name = {"glmm": "GLMM", "reitsma": "Reitsma"}.get(family, result.model)
    return name + (", rho = 0" if result.rho_fixed else "")


def _fmt(e: Estimate, digits: int = 3) -> str:
    return e.format(digits)


def _level_auc(fit: BivariateResult, sroc: Any) -> str:
    """A subgroup level's SROC AUC: the fit's, or ``n/a`` with the labelled alternative."""
    if fit.auc.defined or sroc is None or sroc.curve in ("rutter-gatsonis", "none"):
        return _fmt(fit.auc)
    return f"n/a; {sroc.curve}: {_fmt(sroc.auc)}"


def sroc_title(analysis: MetaAnalysis) -> str:
    """Title of the SROC figure: the curve drawn (the main fit's, or the labelled alternative) and its AUC."""
    p = analysis.pooled
    sroc = analysis.sroc
    if sroc is None or sroc.curve == "rutter-gatsonis":
        return f"SROC ({model_label(p)}; AUC {p.auc.format(2)})"
    short = {"rutter-gatsonis-reitsma-rho0": "Reitsma rho = 0 curve", "moses-littenberg": "Moses-Littenberg curve",
             "none": "no curve"}[sroc.curve]
    return f"SROC (summary: {model_label(p)}; {short}, AUC {sroc.auc.format(2)})"


def sroc_text(analysis: MetaAnalysis) -> str:
    """The SROC AUC in words: the main fit's, or why it is undefined and the labelled alternative used instead."""
    p = analysis.pooled
    sroc = analysis.sroc
    if sroc is None:
        return f"SROC AUC {_fmt(p.auc)}."
    pa = sroc.partial_auc
    part = (f"partial AUC over the observed FPR range [{pa.extra['fpr_low']:.3f}, {pa.extra['fpr_high']:.3f}] "
            f"{pa.estimate:.3f} (normalised by the range's width: {pa.extra['normalised']:.3f})"
            if pa.defined else f"partial AUC n/a ({pa.note})")
    if sroc.curve == "rutter-gatsonis":
        return f"SROC AUC {_fmt(p.auc)} ({sroc.label}); {part}."
    head = (f"SROC AUC of the main fit ({model_label(p)}) n/a: {sroc.main_auc_reason}. " if sroc.main_auc_reason
            else f"Main fit's SROC AUC {_fmt(p.auc)}; ")
    return head + f"Shown instead: {sroc.label}: AUC {_fmt(sroc.auc)} ({sroc.auc.note}); {part}."


def _pooled_table(result: BivariateResult) -> pd.DataFrame:
    return pd.DataFrame([{"measure": e.name, "estimate (95% CI)" if result.alpha == 0.05 else "estimate (CI)":
                          _fmt(e, 3 if e.name in ("sensitivity", "specificity", "auc") else 2), "method": e.method}
                         for e in (result.sensitivity, result.specificity, result.lr_positive, result.lr_negative,
                                   result.dor, result.auc)])



def _heterogeneity_text(p: BivariateResult) -> str:
    h = p.heterogeneity
    return (f"Bivariate I2 (generalised variance, Zhou & Dendukuri 2014) = {h.i2_bivariate_percent:.1f}%; I2 logit sens = "
            f"{h.i2_sens_percent:.1f}%, logit spec = {h.i2_spec_percent:.1f}%; tau2 logit sens = {p.tau2_sens:.3f}, tau2 logit "
            f"spec = {p.tau2_spec:.3f}.")


def _deeks_text(analysis: MetaAnalysis) -> str:
    d = analysis.deeks
    if d is None:
        return f"Deeks' test not done ({analysis.skipped.get('deeks', 'not requested')})."
    corr = (f"continuity correction {d.correction:g} ({d.correction_rule}: {_RULES.get(d.correction_rule, '')}; "
            f"{len(d.corrected)} cohort(s) corrected)" if d.correction else "no continuity correction")
    return (f"Deeks' test: slope {d.slope:.2f} (SE {d.slope_se:.2f}), t = {d.t:.2f} on {d.df} df, "
            f"p = {d.p_value:.3g} (p < 0.10 suggests asymmetry); {corr}.")


@dataclass(frozen=True)
class _ReportParts:
    """What the report sections draw on: the analysis and the tables, figures and results made from it."""

    analysis: MetaAnalysis
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    doc: dict[str, Any]

    @property
    def pct(self) -> str:
        """The confidence level as text, e.g. ``95%``."""
        return f"{100 * (1 - self.analysis.alpha):g}%"


def build_meta_html(analysis: MetaAnalysis, tables: dict[str, pd.DataFrame], figures: dict[str, Figure],
                    doc: dict[str, Any], *, title: str, banner: str | None) -> HtmlReport:
    """Lay the results out: the summary, a table of contents, then the PRISMA-DTA results section, folded.

    Parameters
    ----------
    analysis : MetaAnalysis
        The run.
    tables, figures, doc
        Its tables (:func:`~nodescope.meta.meta_tables`), figures (:func:`~nodescope.meta.meta_figures`) and
        ``results.json`` document (:func:`~nodescope.meta.meta_results`); each figure is embedded once.
    title : str
        Report title.
    banner : str, optional
        A notice shown under the title.

    Returns
    -------
    HtmlReport
    """
    parts = _ReportParts(analysis, tables, figures, doc)
    rep = HtmlReport(title, banner=banner)
    _intro(rep, parts)
    _summary(rep, parts)
    rep.contents("Details (PRISMA-DTA results)")
    for heading, write in _SECTIONS:
        with rep.section(heading):
            write(rep, parts)
    return rep


def _intro(rep: HtmlReport, parts: _ReportParts) -> None:
    """Banner for synthetic cohorts."""
    s = parts.analysis.studies
    synthetic = parts.doc["synthetic_cohorts"]
    if synthetic:
        rep.banner(f"{len(synthetic)} of {len(s)} analysed cohorts are SYNTHETIC (column data_source; named in "
                   "section 1). Numbers built on them illustrate the software, not medicine.")


def _summary(rep: HtmlReport, parts: _ReportParts) -> None:
    """The answer: pooled estimates, the SROC plot, heterogeneity, Deeks' test and the model actually fitted."""
    analysis = parts.analysis
    p = analysis.pooled
    pooled = _pooled_table(p)
    with rep.summary():
        sroc = analysis.sroc
        auc_text = (f"SROC AUC {_fmt(p.auc)}" if sroc is None or sroc.curve == "rutter-gatsonis" or p.auc.defined
                    else f"SROC AUC n/a (see 'SROC' below; {sroc.curve} curve: {_fmt(sroc.auc)})")
        rep.paragraph(f"{len(analysis.studies)} validation cohorts from {parts.doc['k_studies']} studies "
                      f"(pooled: {model_label(p)}): sensitivity {_fmt(p.sensitivity)}, specificity "
                      f"{_fmt(p.specificity)}, {auc_text} ({parts.pct} CIs).", css_class="answer")
        with rep.block("cols"):
            with rep.block("col"):
                rep.table(pooled.drop(columns=["method"]), caption=f"Pooled estimates, {model_label(p)} "
                                                                   f"(k = {p.k}; methods in section 4)")
                facts = [("model fitted", fitted_model_text(p, analysis.model)),
                         ("SROC", sroc_text(analysis)),
                         ("heterogeneity", _heterogeneity_text(p)),
                         ("publication bias", _deeks_text(analysis))]
                facts += [("independence", f"{m} (section 4)") for a, m in analysis.warnings
                          if a == "cohorts per study"]
                rep.table(pd.DataFrame(facts, columns=["", "result"]), text=True)
            with rep.block("col"):
                rep.figure(parts.figures["sroc"], caption=f"SROC: cohorts (circle area proportional to n), SROC "
                           f"curve over the observed FPR range, summary point, {parts.pct} confidence and "
                           "prediction regions")


def _selection_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """1. Study selection and characteristics."""
    synthetic = parts.doc["synthetic_cohorts"]
    if synthetic:
        rep.banner("SYNTHETIC cohorts (column data_source): " + "; ".join(synthetic) + ".")
    analysis = parts.analysis
    tables = parts.tables
    s = parts.analysis.studies
    chars = tables["per_study"][["study", "cohort", "n", "prevalence", *s.covariates]].copy()
    rep.table(chars.drop(columns=[c for c in ("notes",) if c in chars.columns]), caption="Included cohorts",
              float_format="{:.2f}")
    if analysis.excluded is not None:
        rep.paragraph(f"Excluded by the selection {analysis.options['select']}: " + "; ".join(analysis.excluded.labels())
                      + ".")
    if "notes" in s.frame.columns:
        notes = s.frame[["study", "cohort", "notes"]]
        rep.table(notes, caption="Source of each cohort (notes column of the input)")


def _quadas_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """2. Risk of bias and applicability (QUADAS-2)."""
    analysis = parts.analysis
    tables = parts.tables
    figures = parts.figures
    if analysis.quadas is None:
        rep.paragraph("No QUADAS-2 table was given (use --quadas rob.csv).", css_class="note")
    else:
        rep.figure(figures["quadas_traffic_light"], caption="QUADAS-2 judgements per study")
        rep.figure(figures["quadas_summary"], caption="QUADAS-2 summary across studies")
        rep.table(tables["quadas"].drop(columns=["column"]), float_format="{:.1f}",
                  caption="Number and percentage of studies per judgement")
        if analysis.quadas_missing:
            rep.paragraph("Studies without a QUADAS-2 row: " + "; ".join(analysis.quadas_missing) + ".",
                          css_class="note")


def _studies_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """3. Results of individual studies."""
    tables = parts.tables
    figures = parts.figures
    pct = parts.pct
    rep.figure(figures["forest"], caption=f"Sensitivity and specificity per cohort with exact (Clopper-Pearson) {pct} "
                                          "CIs; diamonds: pooled estimates of the main model")
    per = tables["per_study"][["study", "cohort", "TP", "FP", "FN", "TN", "sensitivity", "sens_ci_low",
                               "sens_ci_high", "specificity", "spec_ci_low", "spec_ci_high"]]
    rep.table(per, caption="2x2 tables and per-cohort accuracy")


def _synthesis_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """4. Synthesis of results: pooled estimates, model facts, SROC."""
    analysis = parts.analysis
    p = parts.analysis.pooled
    skipped = parts.analysis.skipped
    rep.table(_pooled_table(p), caption=f"Pooled estimates, {model_label(p)} ({p.model}, k = {p.k})")
    multi = [m for a, m in analysis.warnings if a == "cohorts per study"]
    if multi:
        ops = analysis.one_per_study
        check = (f" One cohort per study (highest Youden index, k = {ops.k}): sensitivity {_fmt(ops.sensitivity)}, "
                 f"specificity {_fmt(ops.specificity)} (section 7)." if ops is not None else
                 " The one-cohort-per-study sensitivity analysis was not done"
                 f" ({skipped.get('one per study', 'switched off')}).")
        rep.banner("Independence assumption: " + multi[0] + "." + check)
    corr = ("correlation fixed at 0 (see fallback)" if p.rho_fixed else
            f"correlation of logit sens and logit spec rho = {p.rho:.3f} (the (sens, FPR) correlation reported by "
            f"mada/midas is {p.rho_sens_fpr:.3f})")
    facts = [f"Between-cohort variances: tau2 logit sens = {p.tau2_sens:.3f}, tau2 logit spec = {p.tau2_spec:.3f}; "
             f"{corr}."]
    if p.hsroc is not None:
        h = p.hsroc
        facts.append(f"HSROC parameters (Harbord 2007): Lambda = {h.lambda_:.3f}, Theta = {h.theta:.3f}, "
                     f"beta = {h.beta:.3f}, sigma2_alpha = {h.sigma2_alpha:.3f}, sigma2_theta = {h.sigma2_theta:.3f}.")
    if p.correction:
        facts.append(f"Continuity correction {p.correction} ({p.correction_rule}); corrected cohorts: "
                     + ("; ".join(p.corrected) or "none") + ".")
    else:
        facts.append("No continuity correction (exact binomial likelihood).")
    facts.append(sroc_text(analysis))
    if p.fallback:
        facts.append(f"Fallback: {p.fallback}.")
    facts.append(f"Model fitted: {fitted_model_text(p, analysis.model)}.")
    rep.bullets(facts)
    rep.paragraph("The SROC plot is in the summary at the top of the report.", css_class="note")


def _heterogeneity_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """5. Heterogeneity."""
    analysis = parts.analysis
    tables = parts.tables
    p = parts.analysis.pooled
    pct = parts.pct
    rep.paragraph(_heterogeneity_text(p) + " The prediction region of the SROC plot (summary) shows where the true "
                  "accuracy of a new cohort is expected.")
    if analysis.univariate:
        uni = tables["heterogeneity"]
        uni = uni[uni["source"] == "univariate"][["measure", "estimate", "ci_low", "ci_high", "pi_low", "pi_high",
                                                   "tau2", "Q", "Q_df", "Q_p", "I2_percent", "k"]].copy()
        uni[["Q_df", "k"]] = uni[["Q_df", "k"]].astype("Int64")
        uni["Q_p"] = [f"{v:.3g}" for v in uni["Q_p"]]
        first = next(iter(analysis.univariate.values()))
        rep.table(uni, caption=f"Univariate random-effects pooling ({first.method}) with {pct} prediction intervals, "
                               f"Cochran's Q and I2 (continuity correction {first.correction:g}, rule "
                               f"{first.correction_rule}: {_RULES.get(first.correction_rule, first.correction_rule)})")


def _additional_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """6. Additional analyses: subgroups and meta-regression."""
    analysis = parts.analysis
    tables = parts.tables
    skipped = parts.analysis.skipped
    if not analysis.subgroups and analysis.regression is None:
        rep.paragraph("None requested (--subgroup COL, --covariate COL).", css_class="note")
    for col, sg in analysis.subgroups.items():
        sub = tables["subgroups"]
        sub = sub[(sub["column"] == col) & sub["name"].isin(["sensitivity", "specificity", "dor"])]
        wide = sub.pivot_table(index=["level", "k"], columns="name", values="estimate", aggfunc="first")
        lo = sub.pivot_table(index=["level", "k"], columns="name", values="ci_low", aggfunc="first")
        hi = sub.pivot_table(index=["level", "k"], columns="name", values="ci_high", aggfunc="first")
        shown = pd.DataFrame(index=wide.index)
        shown["model fitted"] = [model_label(sg.fits[lev]) for lev, _ in wide.index]
        for name in ("sensitivity", "specificity", "dor"):
            nd = 3 if name != "dor" else 1
            shown[name] = [f"{e:.{nd}f} ({a:.{nd}f}-{b:.{nd}f})" for e, a, b in zip(wide[name], lo[name], hi[name],
                                                                              strict=True)]
        shown["SROC AUC"] = [_level_auc(sg.fits[lev], analysis.subgroup_sroc.get(col, {}).get(lev))
                             for lev, _ in wide.index]
        r = sg.regression
        reasons = [f"{col} = {lev}: {x.main_auc_reason}" for lev, x in analysis.subgroup_sroc.get(col, {}).items()
                   if x.main_auc_reason]
        if reasons:
            rep.paragraph("SROC AUC n/a where " + "; ".join(reasons) + ". The labelled alternative curve's AUC is "
                          "shown instead (see the SROC notes of section 4).", css_class="note")
        rep.table(shown.reset_index(), caption=f"Subgroups by {col}: likelihood-ratio test of a difference in "
                                               f"(logit sens, logit spec), chi2 = {r.lrt_statistic:.2f}, "
                                               f"df = {r.lrt_df}, p = {r.lrt_p_value:.3g}")
    for name, why in skipped.items():
        if name.startswith("subgroup") or name == "meta-regression":
            rep.paragraph(f"{name}: not done ({why}).", css_class="note")
    if analysis.regression is not None:
        r = analysis.regression
        rep.table(r.coefficients, caption=f"Meta-regression on {', '.join(analysis.options['covariates'])} "
                                          f"({r.model}; logit scale): LRT chi2 = {r.lrt_statistic:.2f}, df = {r.lrt_df}, "
                                          f"p = {r.lrt_p_value:.3g}")


def _sensitivity_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """7. Sensitivity analyses."""
    analysis = parts.analysis
    skipped = parts.analysis.skipped
    if analysis.one_per_study is not None and analysis.one_per_study_rows is not None:
        kept = analysis.one_per_study_rows
        rep.table(_pooled_table(analysis.one_per_study),
                  caption=f"One cohort per study (highest Youden index; k = {analysis.one_per_study.k}), "
                          f"{model_label(analysis.one_per_study)}")
        rep.paragraph("Cohorts kept: " + "; ".join(f"{a}: {b}" if b else str(a)
                                                   for a, b in zip(kept["study"], kept["cohort"], strict=True)) + ".")
    if analysis.leave_one_out is not None:
        loo = analysis.leave_one_out[["omitted", "k", "model", "rho_fixed", "sensitivity", "sensitivity_ci_low",
                                      "sensitivity_ci_high", "specificity", "specificity_ci_low",
                                      "specificity_ci_high", "fallback"]]
        rep.table(loo, caption="Leave-one-out: pooled estimates without each cohort (model column: the model "
                               "actually fitted to each refit)")
    for name in ("one per study", "leave-one-out"):
        if name in skipped:
            rep.paragraph(f"{name}: not done ({skipped[name]}).", css_class="note")


def _bias_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """8. Publication bias and small-study effects."""
    analysis = parts.analysis
    figures = parts.figures
    if analysis.deeks is not None:
        rep.figure(figures["deeks"], caption="Deeks' funnel plot: ln DOR against 1/sqrt(ESS), weighted by ESS")
        rep.paragraph(_deeks_text(analysis))
    else:
        rep.paragraph(_deeks_text(analysis), css_class="note")


def _utility_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """9. Clinical utility."""
    analysis = parts.analysis
    figures = parts.figures
    pt = analysis.post_test
    rep.figure(figures["fagan"], caption=f"Fagan nomogram at a pre-test probability of {100 * pt.pretest:.3g}% "
                                         f"({analysis.pretest_source})")
    rep.paragraph(f"Post-test probability after a positive result {_fmt(pt.positive)}, after a negative result "
                  f"{_fmt(pt.negative)} (CIs from the CIs of the pooled likelihood ratios, pre-test probability fixed).")


def _notes_section(rep: HtmlReport, parts: _ReportParts) -> None:
    """Notes, warnings and inputs."""
    analysis = parts.analysis
    doc = parts.doc
    notes = [f"{a}: {m}" for a, m in analysis.warnings] or ["No warnings."]
    rep.bullets(notes)
    files = [f"{k}: {v['path']} (sha256 {v['sha256']})" for k, v in doc["inputs"].items() if v]
    if files:
        rep.bullets(files)
    rep.paragraph("Machine-readable results: results.json (schema nodescope.meta.results "
                  f"{parts.doc['schema_version']}); tables in tables/*.csv; figures in figures/ (PNG and SVG).",
                  css_class="note")


# the PRISMA-DTA results items, in order: (heading, section writer)
_SECTIONS = (
    ("1. Study selection and characteristics", _selection_section),
    ("2. Risk of bias and applicability (QUADAS-2)", _quadas_section),
    ("3. Results of individual studies", _studies_section),
    ("4. Synthesis of results", _synthesis_section),
    ("5. Heterogeneity", _heterogeneity_section),
    ("6. Additional analyses: subgroups and meta-regression", _additional_section),
    ("7. Sensitivity analyses", _sensitivity_section),
    ("8. Publication bias and small-study effects", _bias_section),
    ("9. Clinical utility", _utility_section),
    ("Notes, warnings and inputs", _notes_section),
)
