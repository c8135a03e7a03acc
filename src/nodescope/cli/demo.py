"""``nodescope demo``: the main job on built-in synthetic data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from nodescope.cli._common import console, in_range, print_paths, progress

if TYPE_CHECKING:
    from nodescope.pipeline import DemoResult

__all__ = ["register", "where_to_look"]


def where_to_look(res: DemoResult) -> str:
    """The closing lines of ``nodescope demo``: what it wrote and where to look first (nothing is opened)."""
    out = res.out_dir
    return "\n".join([
        "Where to look:",
        f"  report       {res.report}   (open it in a browser: AUCs with CIs, ROC, calibration, decision curves)",
        f"  predictions  {res.predictions}   (every number in the report is computed from this file)",
        f"  metrics      {res.metrics}",
        f"  models       {out / 'runs'}/<model>/folds/fold_<k>/bundle   (use with `nodescope predict`)",
        f"  data         {out / 'data'}   (synthetic images, masks, manifest.csv, clinical.csv)",
    ])


def register(app: typer.Typer) -> None:
    """Attach the ``demo`` command to the main app."""

    @app.command()
    def demo(
        out: Annotated[Path, typer.Option("-o", "--out", help="Folder for everything the demo writes.")] = Path(
            "nodescope_demo"),
        n_patients: Annotated[int, typer.Option(callback=in_range(ge=12),
                                                help="Synthetic patients (one node, three images each).")] = 150,
        image_size: Annotated[int, typer.Option(callback=in_range(ge=16),
                                                help="Image and network input size (px).")] = 64,
        epochs: Annotated[int, typer.Option(callback=in_range(ge=1),
                                            help="Epochs per fold (fixed cosine schedule).")] = 12,
        folds: Annotated[int, typer.Option(callback=in_range(ge=2), help="Cross-validation folds.")] = 3,
        batch_size: Annotated[int, typer.Option(callback=in_range(ge=2), help="Images per training batch.")] = 8,
        backbone: Annotated[str, typer.Option(help="Registered backbone name.")] = "tf_efficientnet_lite0",
        weights: Annotated[str, typer.Option(
            help="imagenet (EfficientNet-Lite0 weights installed with nodescope; no network) | none | PATH")] = "imagenet",
        difficulty: Annotated[float, typer.Option(
            callback=in_range(ge=0, le=1),
            help="Class overlap of the synthetic data, 0 (textbook signs) to 1 (classes identical).")] = 0.1,
        intermediate_fusion: Annotated[bool, typer.Option(
            help="Also train the intermediate-fusion model (one encoder per modality, one head): about 1.5 min "
                 "more on 2 cores.")] = False,
        seed: Annotated[int, typer.Option(help="Seed for data, split and training.")] = 0,
        overwrite: Annotated[bool, typer.Option(help="Replace an earlier demo in OUT.")] = False,
    ) -> None:
        """Run the main job end to end on SYNTHETIC data: data -> patient-level k-fold CV training of one CNN per
        modality (+ an untouched hold-out test part) -> late and intermediate fusion -> evaluation with CIs -> HTML
        report. Prints where to look at the end; opens nothing."""
        from nodescope.pipeline import run_demo

        # Lightning's banners and warnings are kept off the console by the root command's log capture (--verbose
        # shows them); each training run's train.log records them
        console.print("[bold yellow]nodescope demo: these data are SYNTHETIC; they exercise the software, not "
                      "medicine.[/]", soft_wrap=True)
        t0 = time.perf_counter()
        with progress() as shown:
            res = run_demo(out, n_patients=n_patients, image_size=image_size, epochs=epochs, folds=folds,
                           batch_size=batch_size, backbone=backbone, weights=weights, difficulty=difficulty,
                           intermediate_fusion=intermediate_fusion, seed=seed, overwrite=overwrite,
                           progress=shown)
        table = Table(title="AUC (95% CI, DeLong) from predictions.csv", title_justify="left")
        for col in ("model", "split", "AUC", "n"):
            table.add_column(col)
        auc = res.auc[res.auc["metric"] == "auc"]
        for row in auc.itertuples(index=False):
            r = row._asdict()
            table.add_row(str(r.get("model", "")), str(r.get("split", "")),
                          f"{r['estimate']:.3f} ({r['ci_low']:.3f}-{r['ci_high']:.3f})", str(r.get("n", "")))
        console.print(table)
        console.print(f"done in {time.perf_counter() - t0:.0f} s (CPU {res.cpu_seconds:.0f} s). [yellow]Synthetic "
                      "data: the numbers above demonstrate the pipeline, not clinical performance.[/]", soft_wrap=True)
        console.print(where_to_look(res), markup=False, highlight=False, soft_wrap=True)
        print_paths(res.predictions, res.metrics, res.report)
