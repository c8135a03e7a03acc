"""``nodescope demo``: the main job on built-in synthetic data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nodescope.cli._common import console, print_paths, progress

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach the ``demo`` command to the main app."""

    @app.command()
    def demo(
        out: Annotated[Path, typer.Option("-o", "--out", help="Folder for everything the demo writes.")] = Path(
            "nodescope_demo"),
        n_patients: Annotated[int, typer.Option(help="Synthetic patients (one node, three images each).")] = 150,
        image_size: Annotated[int, typer.Option(help="Image and network input size (px).")] = 64,
        epochs: Annotated[int, typer.Option(help="Epochs per fold (fixed cosine schedule).")] = 10,
        folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
        backbone: Annotated[str, typer.Option(help="Registered backbone name.")] = "tf_efficientnet_lite0",
        weights: Annotated[str, typer.Option(
            help="imagenet (EfficientNet-Lite0 weights installed with nodescope; no network) | none | PATH")] = "imagenet",
        seed: Annotated[int, typer.Option(help="Seed for data, split and training.")] = 0,
        overwrite: Annotated[bool, typer.Option(help="Replace an earlier demo in OUT.")] = False,
    ) -> None:
        """Run the main job end to end on SYNTHETIC data: data -> patient-level 5-fold CV training of one CNN per
        modality -> late fusion -> evaluation with CIs -> HTML report."""
        from nodescope.pipeline import run_demo

        # Lightning's banners and warnings are kept off the console by the root command's log capture (--verbose
        # shows them); each training run's train.log records them
        console.print("[bold yellow]nodescope demo: these data are SYNTHETIC; they exercise the software, not "
                      "medicine.[/]")
        t0 = time.perf_counter()
        with progress() as shown:
            res = run_demo(out, n_patients=n_patients, image_size=image_size, epochs=epochs, folds=folds,
                           backbone=backbone, weights=weights, seed=seed, overwrite=overwrite,
                           step=lambda msg: shown.message(f"> {msg}"))
        table = Table(title="AUC (95% CI, DeLong) from predictions.csv", title_justify="left")
        for col in ("model", "split", "AUC", "n"):
            table.add_column(col)
        auc = res.auc[res.auc["metric"] == "auc"]
        for row in auc.itertuples(index=False):
            r = row._asdict()
            table.add_row(str(r.get("model", "")), str(r.get("split", "")),
                          f"{r['estimate']:.3f} ({r['ci_low']:.3f}-{r['ci_high']:.3f})", str(r.get("n", "")))
        console.print(table)
        console.print(f"predictions: {res.predictions}\nmetrics:     {res.metrics}\nreport:      {res.report}")
        console.print(f"done in {time.perf_counter() - t0:.0f} s. [yellow]Synthetic data: the numbers above "
                      "demonstrate the pipeline, not clinical performance.[/]")
        print_paths(res.predictions, res.metrics, res.report)
