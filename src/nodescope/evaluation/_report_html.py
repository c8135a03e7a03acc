"""The self-contained ``report.html`` of ``nodescope evaluate``, with TRIPOD+AI and STARD 2015 items filled in.

The report opens with its answer: a summary of every model on every split (AUC, sensitivity and specificity at the
operating threshold, calibration slope, each with its CI), the ROC curves of all models overlaid per split and the
paired model comparisons; then a table of contents and the details, one folded section each. Only what the
predictions (and reads) can answer is filled in; every other checklist item is listed as "author-supplied". Every
number, in the summary and in the sections, is read from the :class:`~nodescope.evaluation.EvaluationRun` tables and
figures (computed once, from the input files only), and formatted by the same functions.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from nodescope.evaluation._external_report import external_section, external_summary
from nodescope.evaluation._readers import ReaderStudy
from nodescope.evaluation._run import EvaluationRun, primary_split, split_order
from nodescope.report import HtmlReport

__all__ = ["build_report", "summary_table"]

AUTHOR = "author-supplied"


def _fmt(est: float, lo: float, hi: float, digits: int = 3) -> str:
    if est is None or not math.isfinite(est):
        return "n/a"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{est:.{digits}f}"
    return f"{est:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def _pretty(frame: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    """``estimate``/``ci_low``/``ci_high`` collapsed into one "estimate (95% CI)" column."""
    out = frame[keep].copy()
    out["estimate (CI)"] = [_fmt(e, lo, hi) for e, lo, hi in zip(frame["estimate"], frame["ci_low"],
                                                                 frame["ci_high"], strict=True)]
    cols = [*keep, "estimate (CI)", *[c for c in ("method", "n", "note") if c in frame.columns]]
    for c in ("method", "n", "note"):
        if c in frame.columns:
            out[c] = frame[c]
    return out[cols]


def _checklists(run: EvaluationRun) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = run.metrics
    t = run.tables
    has_sub = "subgroups" in t
    binary = m["task"] == "binary"
    tripod = [
        ("12e", "Performance measures and plots used", "filled",
         "discrimination (AUC, DeLong or patient bootstrap), calibration (intercept, slope, Brier, ECE, "
         "Hosmer-Lemeshow, reliability diagram), decision curves" if binary else
         "one-vs-rest AUC, macro/micro AUC, confusion matrix, F1, MCC, kappa"),
        ("12a", "How the data were used (partitioning for development/tuning/evaluation)", "partly filled",
         "splits present per model in 'Flow of patients'; threshold tuned on cv/val rows only"),
        ("20a", "Flow of participants, number with and without the outcome", "filled", "Flow of patients per split"),
        ("21", "Number of participants and outcome events in each analysis", "filled",
         "Flow of patients per split; n per table row"),
        ("23a", "Performance estimates with confidence intervals, incl. key subgroups", "filled",
         "Discrimination / operating point / calibration" + (" / Subgroups" if has_sub else "")),
        ("23b", "Heterogeneity of performance across clusters (e.g. sites)",
         "filled" if has_sub or "external" in t else AUTHOR,
         "; ".join(x for x in ("Subgroups (--by)" if has_sub else "",
                               "External validation by site" if "external" in t else "") if x)
         or "run with --by site (or another cluster column)"),
    ]
    for item, topic in (("1-2", "Title and abstract"), ("3-4", "Background and objectives"),
                        ("5-6", "Data sources, dates, setting, eligibility"), ("7", "Data preparation"),
                        ("8", "Outcome definition and assessment (blinding)"), ("9", "Predictors"),
                        ("10", "Sample size"), ("11", "Missing data"), ("13", "Class imbalance"),
                        ("14", "Fairness"), ("15-16", "Model output; training vs evaluation differences"),
                        ("17-19", "Ethics, open science, patient and public involvement"),
                        ("20b-c", "Participant characteristics"), ("22", "Model specification"),
                        ("24-27", "Updating, interpretation, limitations, usability")):
        tripod.append((item, topic, AUTHOR, ""))
    stard = [
        ("12a", "Positivity cut-off of the index test (pre-specified or not)", "filled",
         f"rule '{m['settings']['threshold']}' applied to cv/val rows, then fixed" if binary else "argmax class"),
        ("14", "Methods for estimating diagnostic accuracy", "filled",
         "Wilson intervals for proportions, log method for ratios, DeLong / bootstrap for AUC"),
        ("17", "Analyses of variability (subgroups)", "filled" if has_sub else AUTHOR,
         "Subgroups" if has_sub else ""),
        ("19", "Flow of participants", "partly filled",
         "counts per split in 'Flow of patients'; the diagram and exclusions are author-supplied"),
        ("20", "Baseline characteristics", "partly filled", "prevalence per split; demographics author-supplied"),
        ("23", "Cross tabulation of index test by reference standard", "filled",
         "2x2 tables in 'Operating point'" if binary else "confusion matrices"),
        ("24", "Estimates of diagnostic accuracy and their precision (95% CI)", "filled", "Operating point"),
    ]
    for item, topic in (("1-4", "Title, abstract, introduction"), ("5-9", "Design, participants, recruitment"),
                        ("10-11", "Index test and reference standard, rationale"), ("12b", "Reference cut-offs"),
                        ("13", "Blinding"), ("15-16", "Indeterminate results, missing data"), ("18", "Sample size"),
                        ("21-22", "Severity, alternative diagnoses, time interval"), ("25", "Adverse events"),
                        ("26-30", "Discussion, registration, protocol, funding")):
        stard.append((item, topic, AUTHOR, ""))
    cols = ["item", "topic", "status", "where / how"]
    return pd.DataFrame(tripod, columns=cols), pd.DataFrame(stard, columns=cols)


def _ci_label(alpha: float) -> str:
    return f"{100 * (1 - alpha):g}% CI"


def _p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def _cell(frame: pd.DataFrame | None, key: str, name: str, **where: str) -> str:
    """The "estimate (CI)" text of the one row of ``frame`` with ``key == name`` and ``where``; "n/a" if none."""
    if frame is None:
        return "n/a"
    mask = frame[key] == name
    for col, value in where.items():
        mask &= frame[col] == value
    rows = frame[mask]
    if len(rows) == 0:
        return "n/a"
    r = rows.iloc[0]
    return _fmt(r["estimate"], r["ci_low"], r["ci_high"])


def summary_table(run: EvaluationRun) -> pd.DataFrame:
    """Every model on every split in one table, read from the run's tables (nothing is recomputed).

    Binary tasks: patients (positives), the operating threshold, AUC, sensitivity and specificity at the threshold
    and the calibration slope, each "estimate (CI)". Multi-class tasks: macro AUC, accuracy, macro F1 and kappa.

    Parameters
    ----------
    run : EvaluationRun

    Returns
    -------
    pandas.DataFrame
        One row per split (in split order) and model (in the order of ``metrics.json``).
    """
    m, t = run.metrics, run.tables
    ci = _ci_label(m["settings"]["alpha"])
    flow = t["flow"]
    rows = []
    for split in split_order(list(flow["split"])):
        for model in m["models"]:
            f = flow[(flow["model"] == model) & (flow["split"] == split)]
            if len(f) == 0:
                continue
            row: dict[str, Any] = {"split": split, "model": model}
            if m["task"] == "binary":
                row["patients (positive)"] = f"{f['n_patients'].iloc[0]} ({f['n_' + m['positive']].iloc[0]})"
                op = t["operating_point"]
                thr = op.loc[(op["model"] == model) & (op["split"] == split), "threshold"]
                row["threshold"] = f"{thr.iloc[0]:.3g}" if len(thr) else "n/a"
                cal = t.get("calibration")
                for label, frame, key, name in (
                        ("AUC", t["discrimination"], "metric", "auc"),
                        ("sensitivity", op, "metric", "sensitivity"),
                        ("specificity", op, "metric", "specificity"),
                        ("calibration slope", cal, "name", "calibration_slope")):
                    row[f"{label} ({ci})"] = _cell(frame, key, name, model=model, split=split)
            else:
                row["patients"] = int(f["n_patients"].iloc[0])
                for label, name in (("macro AUC", "macro_auc"), ("accuracy", "accuracy"), ("macro F1", "macro_f1"),
                                    ("kappa", "kappa")):
                    row[f"{label} ({ci})"] = _cell(t["multiclass"], "name", name, model=model, split=split)
            rows.append(row)
    return pd.DataFrame(rows)


def _comparison_table(run: EvaluationRun) -> pd.DataFrame:
    """The paired comparisons (``comparisons`` table) with the difference and its CI as one text column."""
    c = run.tables["comparisons"]
    ci = _ci_label(run.metrics["settings"]["alpha"])
    return pd.DataFrame({
        "split": c["split"], "metric": c["metric"],
        "models (a - b)": [f"{a} - {b}" for a, b in zip(c["model_a"], c["model_b"], strict=True)],
        "a": c["estimate_a"], "b": c["estimate_b"],
        f"difference ({ci})": [_fmt(e, lo, hi) for e, lo, hi in zip(c["difference"], c["ci_low"], c["ci_high"],
                                                                      strict=True)],
        "p-value": [_p(v) for v in c["p_value"]], "method": c["method"]})


def _answer(run: EvaluationRun, table: pd.DataFrame) -> str:
    """One sentence: the models ranked by AUC on the first held-out split, and their paired AUC test there."""
    m = run.metrics
    key = "macro AUC" if m["task"] != "binary" else "AUC"
    col = next(c for c in table.columns if c.startswith(f"{key} ("))
    split = primary_split(list(dict.fromkeys(table["split"])))
    part = table[table["split"] == split]
    disc = run.tables["discrimination" if m["task"] == "binary" else "multiclass"]
    disc = disc[(disc["split"] == split) & (disc["metric" if m["task"] == "binary" else "name"]
                                            == ("auc" if m["task"] == "binary" else "macro_auc"))]
    order = disc.sort_values("estimate", ascending=False, na_position="last")["model"].tolist()
    ranked = [r for name in order for _, r in part[part["model"] == name].iterrows()]  # best AUC first
    where = f"On the {split} split" + (" (threshold tuned on these rows; no held-out split)"
                                       if split not in ("test", "external") else "")
    if len(ranked) == 1:
        return f"{where}, {ranked[0]['model']}: {key} {ranked[0][col]}."
    best = ranked[0][col].split(" ")[0]  # the estimate as shown: models equal to the shown digits tie
    top = [r for r in ranked if r[col].split(" ")[0] == best]
    rest = ranked[len(top):]
    if best == "n/a":
        text = f"{where}, the {key} is undefined for every model."
    elif len(top) == 1:
        text = f"{where}, the highest {key} is {top[0]['model']}'s, {top[0][col]}"
    else:
        text = (f"{where}, the highest {key}, {best}, is shared by "
                + ", ".join(f"{r['model']} {r[col].partition(' ')[2]}" for r in top))
    if best != "n/a":
        text += ("; then " + "; ".join(f"{r['model']} {r[col]}" for r in rest) if rest else "") + "."
    comp = run.tables.get("comparisons")
    if comp is not None:
        hit = comp[(comp["split"] == split) & comp["metric"].astype(str).str.startswith("auc")]
        for _, r in hit.iterrows():
            text += (f" Paired {str(r['metric']).replace('auc', 'AUC')} difference {r['model_a']} - {r['model_b']}: "
                     f"{_fmt(r['difference'], r['ci_low'], r['ci_high'])}, p {_p(r['p_value'])} ({r['method']}).")
    elif len(ranked) > 1:
        text += " No paired test was requested (--compare A B)."
    return text


def _summary(rep: HtmlReport, run: EvaluationRun) -> None:
    """The report's answer: one table of every model per split, the ROC overlay and the paired comparisons."""
    table = summary_table(run)
    binary = run.metrics["task"] == "binary"
    with rep.summary():
        if len(table):
            rep.paragraph(_answer(run, table), css_class="answer")
        rep.table(table, caption="Every model on every split" + (
            ": sensitivity and specificity at the model's operating threshold (chosen on its cv/val rows; on those "
            "rows the estimates are optimistic)" if binary else ""))
        if "summary_roc" in run.figures:
            rep.figure(run.figures["summary_roc"], caption="ROC curves of every model per split; dots: operating "
                       "points at each model's threshold; AUC (CI) in the legends")
        external_summary(rep, run)  # how much is lost at each external site (after the first screen's figure)
        if "comparisons" in run.tables:
            rep.table(_comparison_table(run), caption="Paired model comparisons on the same cases", float_format="{:.3f}")


def _model_section(rep: HtmlReport, run: EvaluationRun, name: str, doc: dict[str, Any]) -> None:
    """Every table and figure of one model."""
    t = run.tables
    if run.metrics["task"] == "binary":
        th = doc["threshold"]
        rep.paragraph(f"Operating threshold {th['value']:.4g} ({th['rule']}, chosen on {th['chosen_on']} rows), "
                      "applied unchanged to every other split; score >= threshold is positive.")
        rep.heading("Discrimination", 3)
        d = t["discrimination"][t["discrimination"]["model"] == name]
        rep.table(_pretty(d, ["split", "metric"]))
        for stem, cap in ((f"roc_{name}", "ROC curves with pointwise bootstrap bands; markers: the operating "
                                          "point per split and reader operating points"),
                          (f"pr_{name}", "Precision-recall curves (dotted: prevalence)")):
            if stem in run.figures:
                rep.figure(run.figures[stem], caption=cap)
        rep.heading("Operating point", 3)
        op = t["operating_point"][t["operating_point"]["model"] == name]
        for split, part in op.groupby("split", sort=False):
            tuned = bool(part["threshold_tuned_here"].iloc[0])
            r0 = part.iloc[0]
            rep.paragraph(f"{split}: TP {r0['tp']}, FP {r0['fp']}, FN {r0['fn']}, TN {r0['tn']}"
                          + (" (threshold tuned on these rows: optimistic)" if tuned else ""))
            rep.table(_pretty(part, ["metric"]), caption=f"{name}, {split}")
            fig = run.figures.get(f"confusion_{name}_{split}")
            if fig is not None:
                rep.figure(fig, caption=f"2x2 table, {split}")
        if "calibration" in t:
            rep.heading("Calibration", 3)
            c = t["calibration"][t["calibration"]["model"] == name]
            rep.table(_pretty(c.rename(columns={"name": "metric"}), ["split", "metric"]))
            if f"calibration_{name}" in run.figures:
                rep.figure(run.figures[f"calibration_{name}"], caption="Reliability diagram (binned with Wilson "
                           "intervals; lowess with bootstrap band)")
        if f"dca_{name}" in run.figures:
            rep.heading("Decision curve analysis", 3)
            rep.figure(run.figures[f"dca_{name}"], caption="Net benefit with bootstrap bands; treat all / none")
    else:
        rep.heading("Multi-class discrimination and agreement", 3)
        mc = t["multiclass"][t["multiclass"]["model"] == name].rename(columns={"name": "metric"})
        rep.table(_pretty(mc, ["split", "metric"]))
        pc = t["per_class"][t["per_class"]["model"] == name]
        rep.table(pc, caption="Per-class precision, recall and F1")
        if f"roc_{name}" in run.figures:
            rep.figure(run.figures[f"roc_{name}"], caption="One-vs-rest ROC curves")
        for stem, fig in run.figures.items():
            if stem.startswith(f"confusion_{name}_"):
                rep.figure(fig, caption=f"Confusion matrix (row-normalised), {stem.rsplit('_', 1)[-1]}")


def _reader_section(rep: HtmlReport, run: EvaluationRun, st: ReaderStudy) -> None:
    """Reader operating points, reader-vs-model comparisons and MRMC."""
    t = run.tables
    rep.table(_pretty(t["readers"], ["reader", "condition", "metric"]),
              caption="Reader operating points (Wilson) and AUCs of ordinal scores (DeLong)")
    if "reader_comparisons" in t:
        rep.table(t["reader_comparisons"], caption="Readers vs the model at its threshold and aided vs unaided "
                  "(exact McNemar on the same patients; paired DeLong for AUC)")
    if st.mrmc is not None:
        mr = st.mrmc
        rep.heading("Multi-reader multi-case analysis", 3)
        rep.paragraph(f"Obuchowski-Rockette, {mr.cov_method} covariances, random readers and cases, Hillis (2007) "
                      f"df: {len(mr.readers)} readers x {len(mr.modalities)} conditions on {mr.n_cases} cases "
                      f"({mr.n_positive} positive). F = {mr.f_statistic:.3f}, df = ({mr.df1:.0f}, {mr.df2:.2f}), "
                      f"p = {mr.p_value:.4g}." if len(mr.modalities) > 1 else
                      f"Obuchowski-Rockette mean reader AUC over {len(mr.readers)} readers on {mr.n_cases} cases.")
        rep.table(t["mrmc"])
    for note in st.notes:
        rep.paragraph(note, css_class="note")


def build_report(run: EvaluationRun, *, title: str = "nodescope evaluation") -> HtmlReport:
    """Assemble the HTML report of an evaluation run (figures embedded; nothing fetched from the network).

    The summary comes first, then the input and settings, the table of contents and one folded section per part
    (flow of patients, each model, subgroups, comparison, reader study, checklists).
    """
    m: dict[str, Any] = run.metrics
    t = run.tables
    rep = HtmlReport(title, banner="These data are synthetic: the numbers below demonstrate the method and say "
                                   "nothing about clinical performance." if m["synthetic"] else None)
    _summary(rep, run)
    inp = m["input"]
    rep.paragraph(f"Predictions: {inp['predictions']} ({inp['n_rows']} rows; SHA-256 {inp['sha256'] or 'n/a'}). "
                  f"Task: {m['task']}; classes: {', '.join(m['classes'])}"
                  + (f"; positive class: {m['positive']}." if m["positive"] else "."), css_class="note")
    s = m["settings"]
    rep.paragraph(f"Settings: threshold rule '{s['threshold']}' chosen on cv/val rows of each model and applied "
                  f"unchanged to test/external rows; alpha = {s['alpha']}; bootstrap replicates = {s['n_boot']}; "
                  f"seed = {s['seed']}.", css_class="note")
    rep.contents("Details")
    with rep.section("Flow of patients per split"):
        rep.table(t["flow"], caption="Rows, patients and outcomes per model and split (TRIPOD+AI 20a/21, STARD 19)")
    for name, doc in m["models"].items():
        with rep.section(f"Model: {name}"):
            _model_section(rep, run, name, doc)
    external_section(rep, run)
    if "subgroups" in t:
        with rep.section("Subgroups"):
            sg = t["subgroups"]
            rep.table(_pretty(sg, ["model", "by", "level", "n", "n_positive", "metric"]).drop(columns=["n"],
                                                                                                 errors="ignore"),
                      caption="Every metric by subgroup; the threshold is the model's, never re-tuned per subgroup")
    if "comparisons" in t:
        with rep.section("Model comparison"):
            rep.table(t["comparisons"], caption="Paired on the same cases: DeLong (AUC), exact McNemar with Wald "
                      "interval (sensitivity, specificity); where patients have several rows, paired cluster "
                      "bootstrap over patients instead (method 'cluster-bootstrap')")
    if run.readers is not None:
        with rep.section("Reader study"):
            _reader_section(rep, run, run.readers)
    with rep.section("Reporting checklists"):
        tripod, stard = _checklists(run)
        rep.paragraph("Items the predictions can answer are filled in from the tables above; the rest must be "
                      "supplied by the authors. TRIPOD+AI: Collins et al., BMJ 2024;385:e078378. STARD 2015: "
                      "Bossuyt et al., BMJ 2015;351:h5527. Check item numbers against the official checklists.",
                      css_class="note")
        rep.table(tripod, caption="TRIPOD+AI")
        rep.table(stard, caption="STARD 2015")
    for note in run.notes:
        rep.paragraph(note, css_class="note")
    return rep
