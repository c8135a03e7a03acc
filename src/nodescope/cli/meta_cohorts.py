"""``nodescope meta-cohorts``: studies with several cohorts - one per study, cluster-robust, three-level, compared."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from nodescope.cli._common import console, fail, in_range, print_paths

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach the ``meta-cohorts`` command to the main app."""

    @app.command(name="meta-cohorts")
    def meta_cohorts(
        studies: Annotated[Path, typer.Argument(help="Studies CSV: study, cohort, TP, FP, FN, TN (several cohorts "
                                                     "per study).", show_default=False)],
        cohorts_per_study: Annotated[str, typer.Option(
            "--cohorts-per-study", help="all (compare every approach), independent, one (highest Youden index), "
                                        "robust (cluster-robust variance) or multilevel (three-level model).")]
        = "all",
        study_col: Annotated[str, typer.Option(help="Column naming the study.")] = "study",
        cohort_col: Annotated[str, typer.Option(help="Column naming the cohort within a study.")] = "cohort",
        out: Annotated[Path | None, typer.Option("-o", "--out", help="Write the comparison table to this CSV.")]
        = None,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
        alpha: Annotated[float, typer.Option(callback=in_range(gt=0, lt=1), help="1 - confidence level.")] = 0.05,
    ) -> None:
        """Pool studies that report several cohorts: one per study, cluster-robust or three-level (Reitsma REML)."""
        from rich import box
        from rich.table import Table

        from nodescope._files import atomic_write_csv, check_outputs
        from nodescope.meta import (
            COHORT_APPROACHES,
            MetaAnalysisWarning,
            compare_cohorts_per_study,
            read_studies,
        )

        allowed = ("all", *COHORT_APPROACHES)
        if cohorts_per_study not in allowed:
            fail(f"--cohorts-per-study {cohorts_per_study!r} is not valid; choose {', '.join(allowed)}")
        if not studies.is_file():
            fail(f"studies file not found: {studies}")
        check_outputs([out], [studies], overwrite)
        table = read_studies(studies, study_col=study_col, cohort_col=cohort_col)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetaAnalysisWarning)  # collected in the table's warnings column
            frame = compare_cohorts_per_study(
                table.frame, study_col="study", alpha=alpha,
                approaches=COHORT_APPROACHES if cohorts_per_study == "all" else (cohorts_per_study,))
        level = f"{100 * (1 - alpha):g}%"
        view = Table(box=box.SIMPLE, title=f"{studies.name}: {table.frame.shape[0]} cohorts in {table.frame['study'].nunique()} "
                           f"studies (Reitsma normal approximation; {level} CIs)")
        for col in ("approach", "k", "sensitivity (CI)", "specificity (CI)", "SE logits"):
            view.add_column(col, no_wrap=True)
        for r in frame.itertuples(index=False):
            view.add_row(r.approach, str(r.cohorts),
                         f"{r.sensitivity:.3f} ({r.sensitivity_ci_low:.3f}-{r.sensitivity_ci_high:.3f})",
                         f"{r.specificity:.3f} ({r.specificity_ci_low:.3f}-{r.specificity_ci_high:.3f})",
                         f"{r.se_logit_sens:.3f}/{r.se_logit_spec:.3f}")
        console.print(view)
        for r in frame.itertuples(index=False):
            console.print(f"{r.approach}: {r.description}", highlight=False)
        console.print("k: cohorts used; between-cohort variances and warnings: in the --out CSV", highlight=False)
        for r in frame.itertuples(index=False):
            if r.warnings:
                console.print(f"[yellow]warning ({r.approach}):[/] {r.warnings}", highlight=False)
        if out is not None:
            atomic_write_csv(frame, out, index=False)
            console.print(f"[green]wrote[/] {out}", highlight=False)
            print_paths(out)
