"""``nodescope segment``: train segmenters, predict masks for new images, evaluate masks (members and fusions)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from nodescope.cli._common import choice, console, fail, in_range, print_paths, progress

__all__ = ["register"]

segment_app = typer.Typer(help="Lesion segmentation: train (k-fold, bundles), predict (masks + manifest for the "
                               "automatic ROI crop), evaluate (Dice, HD95, detection, fusion side by side).",
                          no_args_is_help=True)

_FUSION_HELP = "mean | vote | staple"


@segment_app.command("train")
def train(
    manifest: Annotated[Path, typer.Argument(help="manifest.csv; rows with a 'mask' are used")],
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory")],
    architecture: Annotated[str, typer.Option(callback=choice(
        "unet", "unetplusplus", "deeplabv3", "deeplabv3plus", "monai_unet"))] = "unet",
    encoder: Annotated[str, typer.Option(help="registered backbone (smp architectures)")] = "tf_efficientnet_lite0",
    weights: Annotated[str, typer.Option(help="encoder start: none | imagenet | PATH")] = "none",
    name: Annotated[str, typer.Option(help="model name")] = "segmenter",
    external: Annotated[list[Path] | None, typer.Option(help="external manifest (repeatable)")] = None,
    group_col: Annotated[str, typer.Option(help="grouping column (patient_id; dup_group for BUSI)")] = "patient_id",
    folds: Annotated[int, typer.Option(callback=in_range(ge=2))] = 5,
    val_fraction: Annotated[float, typer.Option(callback=in_range(ge=0, lt=1),
                                                help="inner validation groups (0: fixed schedule)")] = 0.15,
    image_size: Annotated[int, typer.Option(callback=in_range(ge=16))] = 256,
    channels: Annotated[int, typer.Option(callback=choice(1, 3))] = 3,
    epochs: Annotated[int, typer.Option(callback=in_range(ge=1))] = 30,
    batch_size: Annotated[int, typer.Option(callback=in_range(ge=1))] = 8,
    lr: Annotated[float, typer.Option(callback=in_range(gt=0))] = 3e-4,
    loss: Annotated[str, typer.Option(callback=choice("dice_bce", "dice_focal"))] = "dice_bce",
    augment: Annotated[str, typer.Option(callback=choice("none", "light", "standard"))] = "standard",
    patience: Annotated[int, typer.Option(callback=in_range(ge=0),
                                          help="early stopping on validation Dice (0: off)")] = 5,
    final_model: Annotated[str, typer.Option(callback=choice("refit", "none"))] = "refit",
    seed: Annotated[int, typer.Option(callback=in_range(ge=0))] = 0,
    num_threads: Annotated[int | None, typer.Option(callback=in_range(ge=1))] = None,
    accelerator: Annotated[str, typer.Option(callback=choice("auto", "cpu", "gpu", "cuda", "mps"))] = "auto",
    tta: Annotated[bool, typer.Option(help="mirror test-time augmentation")] = False,
    channels_last: Annotated[bool, typer.Option(help="convolution weights in channels-last layout while training "
                                                     "(faster on CPUs; same results up to float rounding)")] = True,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace the run in the run directory")] = False,
) -> None:
    """Train a segmenter with patient-level k-fold CV; writes bundles, out-of-fold masks and their scores."""
    from nodescope.segment import SegmentConfig, run_segment_cv
    from nodescope.training._config import check_accelerator
    from nodescope.training._folds import TrainingTerminated

    check_accelerator(accelerator)
    cfg = SegmentConfig.build(manifest=manifest, out=out, architecture=architecture, encoder=encoder,
                              weights=weights, name=name, external=external or [], group_col=group_col,
                              folds=folds, val_fraction=val_fraction, image_size=image_size, channels=channels,
                              epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, augment=augment,
                              patience=patience, final_model=final_model, seed=seed, num_threads=num_threads,
                              accelerator=accelerator, tta=tta, channels_last=channels_last, resume=resume,
                              overwrite=overwrite)
    try:
        with progress() as shown:
            res = run_segment_cv(cfg, progress=shown)
    except TrainingTerminated as exc:
        fail(f"training was terminated ({signal.Signals(exc.signum).name}) during {exc.stage}; the finished folds "
             f"are kept in {exc.run_dir}: continue with --resume", code=128 + exc.signum)
    if res.run_summary is None:
        return
    console.print(f"[bold]run[/] {res.run_dir}")
    console.print(res.run_summary.render())
    console.print(f"  masks: {res.run_dir / 'predictions.csv'}; scores: {res.run_dir / 'scores.csv'}")
    print_paths(res.run_dir / "predictions.csv", res.run_dir / "scores.csv")


@segment_app.command("predict")
def predict(
    paths: Annotated[list[Path], typer.Argument(help="segmenter BUNDLE(s) then one INPUT (manifest, folder or "
                                                     "image)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder: masks/ + manifest.csv")],
    fusion: Annotated[str, typer.Option(callback=choice("mean", "vote", "staple"), help=_FUSION_HELP)] = "mean",
    largest_component: Annotated[bool, typer.Option(help="keep the largest connected component")] = False,
    fill_holes: Annotated[bool, typer.Option(help="fill holes of the mask")] = False,
    probability: Annotated[bool, typer.Option(help="also write probability maps (8-bit PNG)")] = False,
    group_col: Annotated[str, typer.Option(help="grouping column of an input manifest")] = "patient_id",
    threads: Annotated[int | None, typer.Option(callback=in_range(ge=1))] = None,
    engine: Annotated[str, typer.Option(help="torch | onnx", callback=choice("torch", "onnx"))] = "torch",
    onnx_cache: Annotated[Path | None, typer.Option(
        help="--engine onnx: folder of the ONNX exports (default: $NODESCOPE_CACHE_DIR/onnx or the user cache; "
             "bundles are never written)")] = None,
    overwrite: Annotated[bool, typer.Option(help="write into an existing, non-empty output folder")] = False,
) -> None:
    """Predict lesion masks at the original image size; the manifest's 'mask' column points at them."""
    from nodescope._files import check_outputs
    from nodescope.segment import Segmenter, segment_files

    if len(paths) < 2:
        fail("give at least one segmenter BUNDLE and one INPUT")
    bundles, inputs = paths[:-1], paths[-1:]
    check_outputs([out], [*bundles, *inputs], overwrite, kind="folder")
    seg = Segmenter(bundles, fusion=fusion, largest_component=largest_component,  # type: ignore[arg-type]
                    fill_holes=fill_holes, threads=threads, engine=engine, onnx_cache_dir=onnx_cache)
    frame = segment_files(seg, inputs, out, group_col=group_col, keep_probability=probability)
    console.print(f"{len(frame)} mask(s) ({int(frame['mask_empty'].sum())} empty) -> {out / 'masks'}; manifest "
                  f"{out / 'manifest.csv'}")
    print_paths(out / "manifest.csv")


@segment_app.command("evaluate")
def evaluate(
    paths: Annotated[list[Path], typer.Argument(help="a run's predictions.csv, or segmenter BUNDLE(s) then a "
                                                     "MANIFEST with reference masks")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder: scores, summary, report.html")],
    fusion: Annotated[list[str] | None, typer.Option(help=f"fusion rules to compare (repeatable; {_FUSION_HELP}; "
                                                          "default all)")] = None,
    largest_component: Annotated[bool, typer.Option(help="keep the largest connected component")] = False,
    fill_holes: Annotated[bool, typer.Option(help="fill holes of the masks")] = False,
    group_col: Annotated[str, typer.Option(help="grouping column (bootstrap by patient)")] = "patient_id",
    spacing_col: Annotated[str | None, typer.Option(help="column of the pixel size in mm (distances in mm)")] = None,
    n_boot: Annotated[int, typer.Option(callback=in_range(ge=0))] = 2000,
    cases: Annotated[int, typer.Option(callback=in_range(ge=0), help="worst/best overlays per model")] = 4,
    overwrite: Annotated[bool, typer.Option(help="write into an existing, non-empty output folder")] = False,
) -> None:
    """Score masks: Dice/IoU/HD95/ASSD, detection and false-positive rates with patient-bootstrap 95% CIs."""
    from nodescope._files import check_outputs
    from nodescope.segment import evaluate_segmenters, evaluate_table

    check_outputs([out], paths, overwrite, kind="folder")
    if len(paths) == 1:
        res = evaluate_table(paths[0], out, n_boot=n_boot, n_cases=cases, spacing_col=spacing_col)
    else:
        rules = fusion or ["mean", "vote", "staple"]
        bad = [r for r in rules if r not in ("mean", "vote", "staple")]
        if bad:
            fail(f"--fusion: must be one of mean, vote, staple, got {bad[0]!r}")
        res = evaluate_segmenters(paths[:-1], paths[-1], out, fusions=rules, group_col=group_col,
                                  largest_component=largest_component, fill_holes=fill_holes, n_boot=n_boot,
                                  n_cases=cases, spacing_col=spacing_col)
    console.print(res.dice_table().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    console.print(f"report: {out / 'report.html'}")
    print_paths(out / "report.html")


def register(app: typer.Typer) -> None:
    """Attach the ``segment`` sub-app to the main app."""
    app.add_typer(segment_app, name="segment")
