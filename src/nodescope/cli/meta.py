"""``nodescope meta``: diagnostic-test-accuracy meta-analysis of a studies CSV (or the built-in example)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Annotated

import typer

from nodescope.cli._common import console, fail, in_range, log_capture, print_paths

__all__ = ["register"]


def _parse_select(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        col, sep, value = item.partition("=")
        if not sep or not col.strip():
            fail(f"--select {item!r}: expected COLUMN=VALUE (for example --select 'index_test=deep learning')")
        out.setdefault(col.strip(), []).append(value.strip())
    return out


def _sroc_lines(results: Path) -> list[str]:
    """Console lines on the SROC curve reported: why the main fit's AUC is n/a and the labelled alternative."""
    import json

    from rich.markup import escape

    sroc = json.loads(results.read_text(encoding="utf-8")).get("sroc", {})
    if "curve" not in sroc:
        return []
    lines = []
    if sroc.get("main_auc_undefined_reason"):
        lines.append(f"  [yellow]SROC AUC n/a:[/] {escape(sroc['main_auc_undefined_reason'])}")
    auc, part = sroc["auc"], sroc["partial_auc"]
    if sroc["curve"] != "rutter-gatsonis":
        value = "n/a" if auc["estimate"] is None else f"{auc['estimate']:.3f}"
        lines.append(f"  sroc curve   {escape(sroc['label'])}: AUC {value} ({escape(auc['note'])})")
    if part["estimate"] is not None:
        ex = part["extra"]
        lines.append(f"  partial AUC  {part['estimate']:.3f} over the observed FPR range [{ex['fpr_low']:.3f}, "
                     f"{ex['fpr_high']:.3f}] (normalised {ex['normalised']:.3f}; {sroc['curve']} curve)")
    return lines


def _progress() -> contextlib.AbstractContextManager[object]:
    """Show the meta-analysis' INFO progress lines (``leave-one-out: refit 3 of 12 ...``) on stderr (not with
    ``--quiet``)."""
    return log_capture(levels={"nodescope.meta": logging.INFO})


def register(app: typer.Typer) -> None:
    """Attach the ``meta`` command to the main app."""

    @app.command(name="meta")
    def meta(
        studies: Annotated[Path | None, typer.Argument(help="Studies CSV: study, [cohort], TP, FP, FN, TN, covariates.",
                                                       show_default=False)] = None,
        out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (a non-empty one only with "
                                                              "--overwrite).")] = Path("meta-out"),
        overwrite: Annotated[bool, typer.Option(help="Write into a non-empty output folder, replacing files of the "
                                                     "same name.")] = False,
        model: Annotated[str, typer.Option(help="Main model: glmm (exact binomial) or reitsma (REML).")] = "glmm",
        subgroup: Annotated[list[str] | None, typer.Option(help="Subgroup column (repeatable).")] = None,
        covariate: Annotated[list[str] | None, typer.Option(help="Meta-regression covariate (repeatable).")] = None,
        quadas: Annotated[Path | None, typer.Option(help="QUADAS-2 CSV (one row per study).")] = None,
        one_per_study: Annotated[str, typer.Option(help="One-cohort-per-study sensitivity analysis: youden or none.")]
        = "youden",
        pretest: Annotated[float | None, typer.Option(callback=in_range(gt=0, lt=1),
                                                      help="Pre-test probability for the Fagan nomogram "
                                                           "(default: median cohort prevalence).")] = None,
        select: Annotated[list[str] | None, typer.Option(help="Keep cohorts with COLUMN=VALUE (repeatable).")] = None,
        levels: Annotated[list[str] | None, typer.Option(help="Allowed levels COLUMN=A,B,C; other values are errors "
                                                              "(repeatable).")] = None,
        study_col: Annotated[str, typer.Option(help="Column naming the study.")] = "study",
        cohort_col: Annotated[str, typer.Option(help="Column naming the cohort within a study.")] = "cohort",
        reconstruct: Annotated[bool, typer.Option(help="Rebuild 2x2 tables from sensitivity, specificity, "
                                                       "n_diseased, n_nondiseased (or n, prevalence) columns.")] = False,
        percent: Annotated[bool, typer.Option(help="With --reconstruct: figures are percentages.")] = False,
        no_leave_one_out: Annotated[bool, typer.Option(help="Skip the leave-one-out analysis.")] = False,
        alpha: Annotated[float, typer.Option(callback=in_range(gt=0, lt=1), help="1 - confidence level.")] = 0.05,
        example: Annotated[bool, typer.Option(help="Run on the built-in example: the published ALNM cohorts of "
                                                   "../shared/data when present, else the labelled synthetic "
                                                   "one.")] = False,
        sroc: Annotated[str, typer.Option(help="SROC curve: rutter-gatsonis (the main fit's; a labelled "
                                               "alternative when its AUC is undefined) or moses "
                                               "(Moses-Littenberg).")] = "rutter-gatsonis",
    ) -> None:
        """Meta-analyse diagnostic accuracy: pooled sens/spec, SROC, forest, Deeks, Fagan, QUADAS-2 -> report.html."""
        import pandas as pd

        from nodescope._files import atomic_folder, atomic_write_csv, check_outputs, rebase
        from nodescope.meta import (
            MetaAnalysisWarning,
            ReconstructionWarning,
            example_settings,
            read_quadas,
            read_studies,
            reconstruct_2x2,
            run_meta_analysis,
            write_meta_report,
        )

        if model not in ("glmm", "reitsma"):
            fail(f"--model {model!r} is not valid; choose glmm or reitsma")
        if sroc not in ("rutter-gatsonis", "moses"):
            fail(f"--sroc {sroc!r} is not valid; choose rutter-gatsonis or moses")
        if one_per_study not in ("youden", "none"):
            fail(f"--one-per-study {one_per_study!r} is not valid; choose youden or none")
        subgroups = list(subgroup or [])
        covariates = list(covariate or [])
        selection = _parse_select(list(select or []))
        allowed: dict[str, list[str]] = {}
        for item in levels or []:
            col, sep, values = item.partition("=")
            if not sep or not col.strip() or not values.strip():
                fail(f"--levels {item!r}: expected COLUMN=LEVEL1,LEVEL2 (for example --levels modality=US,MRI,CT)")
            allowed[col.strip()] = [v.strip() for v in values.split(",")]
        banner = None
        if example:
            if studies is not None:
                fail("give either a studies CSV or --example, not both")
            ex = example_settings("auto")  # published cohorts when ../shared is present; explicit options win
            console.print(f"example: {'published ALNM cohorts' if ex.source == 'published' else 'SYNTHETIC cohorts'}"
                          f" ({ex.studies})", highlight=False)
            studies = ex.studies
            quadas = quadas or ex.quadas
            subgroups = subgroups or list(ex.subgroups)
            selection = selection or {col: list(values) for col, values in ex.select.items()}
            pretest = ex.pretest if pretest is None else pretest
            banner = ex.banner
        if studies is None:
            fail("missing the studies CSV (or use --example)")
        if not studies.is_file():
            fail(f"studies file not found: {studies}")
        check_outputs([out], [studies, quadas], overwrite, kind="folder")
        source: Path | pd.DataFrame = studies
        if reconstruct:
            from nodescope.data._io_base import read_csv_text
            from nodescope.errors import StatisticsInputError

            raw = read_csv_text(studies, "studies table", StatisticsInputError)
            with warnings.catch_warnings(record=True) as got:
                warnings.simplefilter("always", ReconstructionWarning)
                source = reconstruct_2x2(raw, scale="percent" if percent else "proportion")
            for w in got:
                console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
        with _progress():
            table = read_studies(source, study_col=study_col, cohort_col=cohort_col,
                                 covariates=[*subgroups, *covariates, *selection], levels=allowed)
        rob = read_quadas(quadas) if quadas is not None else None
        with warnings.catch_warnings(), _progress():
            warnings.simplefilter("ignore", MetaAnalysisWarning)  # recorded in the analysis and the report
            analysis = run_meta_analysis(
                table, model=model, subgroups=subgroups, covariates=covariates, quadas=rob,  # type: ignore[arg-type]
                one_per_study_by=None if one_per_study == "none" else "youden", pretest=pretest,
                select=selection, leave_one_out_analysis=not no_leave_one_out, alpha=alpha,
                sroc=sroc)  # type: ignore[arg-type]
        with atomic_folder(out) as tmp:  # all files appear together, or none
            if reconstruct:
                atomic_write_csv(source, tmp / "reconstructed_2x2.csv", index=False)
            written = rebase(write_meta_report(analysis, tmp, inputs={"studies": studies, "quadas": quadas},
                                               banner=banner), tmp, out)
        from nodescope.cli._summaries import meta_summary

        lines = meta_summary(Path(written["results"]), Path(written["report"]))
        at = next((i for i, line in enumerate(lines) if line.lstrip().startswith("report:")), len(lines))
        lines[at:at] = _sroc_lines(Path(written["results"]))
        for line in lines:
            console.print(line, highlight=False)
        print_paths(written["report"], written["results"])
