"""``nodescope evaluate``: statistics, tables, figures and an HTML report from a predictions file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nodescope.cli._common import console, fail, in_range, print_paths

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach the ``evaluate`` command to the main app."""

    @app.command()
    def evaluate(
        predictions: Path = typer.Argument(..., help="predictions.csv (patient_id, y_true, p_<class>, split, "
                                                     "fold, model, run_id)"),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; a non-empty one only with "
                                                          "--overwrite)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty output folder, replacing "
                                                                  "files of the same name"),
        positive: str | None = typer.Option(None, "--positive", help="Positive class of a binary task"),
        threshold: str = typer.Option("youden", "--threshold",
                                      help="youden | sens:0.9 | spec:0.9 | a probability such as 0.37; chosen on "
                                           "cv/val rows, applied unchanged to test/external"),
        by: list[str] = typer.Option([], "--by", help="Subgroup column (repeatable): split, fold, site, modality"),
        compare: tuple[str, str] | None = typer.Option(None, "--compare", help="Two model names to compare",
                                                       show_default=False),
        readers: Path | None = typer.Option(None, "--readers", help="Reads table (patient_id, reader, call and/or "
                                                                    "score, optional aided)"),
        model: str | None = typer.Option(None, "--model", help="Evaluate this model only"),
        alpha: float = typer.Option(0.05, "--alpha", callback=in_range(gt=0, lt=1), help="1 - confidence level"),
        n_boot: int = typer.Option(2000, "--n-boot", callback=in_range(ge=1), help="Bootstrap replicates"),
        seed: int = typer.Option(0, "--seed", help="Seed of every bootstrap"),
        recalibrate: bool = typer.Option(False, "--recalibrate", help="External rows: add each site's "
                                         "recalibration learning curve (local samples of n patients)"),
        recal_size: list[int] = typer.Option([], "--recal-size", help="Local sample size in patients "
                                             "(repeatable; default 10,20,30,50,75,100,150,200,300,500 up to half "
                                             "the site)"),
        recal_repeats: int = typer.Option(200, "--recal-repeats", callback=in_range(ge=1),
                                          help="Random local samples per size"),
    ) -> None:
        """Evaluate saved predictions: metrics.json, tidy CSV tables, PNG/SVG figures and report.html."""
        from nodescope._files import atomic_folder, check_outputs, rebase
        from nodescope.errors import NodescopeError
        from nodescope.evaluation import evaluate_predictions, read_predictions, read_reads, write_evaluation

        if not predictions.is_file():
            fail(f"predictions file not found: {predictions}")
        check_outputs([out], [predictions, readers], overwrite, kind="folder")
        try:
            preds = read_predictions(predictions, positive=positive)
            reads = read_reads(readers) if readers is not None else None
            run = evaluate_predictions(preds, threshold=threshold, by=list(by),
                                       compare=tuple(compare) if compare else None,  # type: ignore[arg-type]
                                       reads=reads, model=model, alpha=alpha, n_boot=n_boot, seed=seed,
                                       source=str(predictions), reads_source=str(readers),
                                       recalibrate=recalibrate, recalibration_sizes=list(recal_size) or None,
                                       recalibration_repeats=recal_repeats)
            with atomic_folder(out) as tmp:
                written = rebase(write_evaluation(run, tmp), tmp, out)
        except NodescopeError as exc:
            fail(str(exc))
        from nodescope.cli._summaries import evaluate_summary

        for item in evaluate_summary(json.loads(Path(written["metrics"]).read_text(encoding="utf-8")),
                                     written["report"]):
            console.print(item, highlight=False)
        console.print(f"  wrote {written['metrics']}, {len(written['tables'])} tables and {len(written['figures'])} "
                      "figure files", highlight=False)
        print_paths(written["report"], written["metrics"])
