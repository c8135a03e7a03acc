"""``nodescope train``, ``nodescope predict`` and ``nodescope pretrain``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from nodescope.cli._common import console, fail

__all__ = ["register"]

log = logging.getLogger(__name__)


def _csv(v: str | None) -> list[str] | None:
    return None if v is None else [s.strip() for s in v.split(",") if s.strip()]


def register(app: typer.Typer) -> None:
    """Attach ``train``, ``predict`` and ``pretrain`` to the main app."""

    @app.command()
    def train(
        manifest: Annotated[Path | None, typer.Argument(help="manifest.csv (or give it in --config)")] = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="run directory")] = None,
        config: Annotated[Path | None, typer.Option(help="YAML config; flags override it")] = None,
        name: Annotated[str | None, typer.Option(help="model name (predictions' model column)")] = None,
        classes: Annotated[str | None, typer.Option(help="comma list: classes to use, in order")] = None,
        positive: Annotated[str | None, typer.Option(help="positive class of a binary task")] = None,
        group_col: Annotated[str | None, typer.Option(help="grouping column for splits (patient_id)")] = None,
        modality: Annotated[str | None, typer.Option(help="keep rows of this modality only")] = None,
        modalities: Annotated[str | None, typer.Option(help="comma list, for --fusion intermediate")] = None,
        fusion: Annotated[str | None, typer.Option(help="none | intermediate")] = None,
        external: Annotated[list[Path] | None, typer.Option(help="external test manifest (repeatable)")] = None,
        folds: Annotated[int | None, typer.Option(help="cross-validation folds")] = None,
        test_size: Annotated[float | None, typer.Option(help="hold-out test fraction of the groups")] = None,
        splits_file: Annotated[Path | None, typer.Option(help="reuse a run's splits.csv")] = None,
        val_fraction: Annotated[float | None, typer.Option(help="inner validation fraction (early stopping)")] = None,
        backbone: Annotated[str | None, typer.Option(help="registered backbone name")] = None,
        weights: Annotated[str | None, typer.Option(help="none | imagenet | PATH (file or bundle)")] = None,
        head: Annotated[str | None, typer.Option(help="mlp | linear")] = None,
        hidden: Annotated[int | None, typer.Option(help="MLP head hidden units")] = None,
        dropout: Annotated[float | None, typer.Option(help="head dropout")] = None,
        channels: Annotated[int | None, typer.Option(help="1 or 3 input channels")] = None,
        image_size: Annotated[int | None, typer.Option(help="input side in pixels")] = None,
        roi: Annotated[str | None, typer.Option(help="none | mask (crop to the mask box)")] = None,
        roi_margin: Annotated[float | None, typer.Option(help="margin around the mask box, x box side")] = None,
        epochs: Annotated[int | None, typer.Option()] = None,
        batch_size: Annotated[int | None, typer.Option()] = None,
        optimizer: Annotated[str | None, typer.Option(help="adamw | adam")] = None,
        lr: Annotated[float | None, typer.Option()] = None,
        weight_decay: Annotated[float | None, typer.Option()] = None,
        scheduler: Annotated[str | None, typer.Option(help="cosine | step | none")] = None,
        step_size: Annotated[int | None, typer.Option(help="step schedule: epochs per step")] = None,
        gamma: Annotated[float | None, typer.Option(help="step schedule: lr factor per step")] = None,
        patience: Annotated[int | None, typer.Option(help="early-stopping patience (0 = off)")] = None,
        imbalance: Annotated[str | None, typer.Option(help="none | oversample | class_weights")] = None,
        augment: Annotated[str | None, typer.Option(help="none | light | standard")] = None,
        modality_dropout: Annotated[float | None, typer.Option(help="fusion: chance to drop a modality")] = None,
        seed: Annotated[int | None, typer.Option()] = None,
        deterministic: Annotated[bool | None, typer.Option("--deterministic/--no-deterministic")] = None,
        devices: Annotated[int | None, typer.Option()] = None,
        accelerator: Annotated[str | None, typer.Option(help="auto | cpu | gpu")] = None,
        strategy: Annotated[str | None, typer.Option(help="auto | ddp | ...")] = None,
        precision: Annotated[str | None, typer.Option(help="auto | 32-true | 16-mixed | bf16-mixed")] = None,
        num_threads: Annotated[int | None, typer.Option(help="CPU threads (default: the cores available)")] = None,
        final_model: Annotated[str | None, typer.Option(help="refit | none")] = None,
        tta: Annotated[bool | None, typer.Option("--tta/--no-tta")] = None,
        resume: Annotated[bool, typer.Option(help="continue an interrupted run in --out")] = False,
        keep_checkpoints: Annotated[bool, typer.Option(help="keep Lightning checkpoints of finished folds")] = False,
        tensorboard: Annotated[bool, typer.Option(help="also write TensorBoard logs")] = False,
        allow_pretrain_overlap: Annotated[bool, typer.Option(help="warn instead of refusing")] = False,
    ) -> None:
        """Train a classifier with patient-level k-fold cross-validation; writes bundles and predictions.csv."""
        from pydantic import ValidationError

        from nodescope.data import ManifestError
        from nodescope.models import WeightsNotFoundError
        from nodescope.training import load_config, run_cv

        try:
            cfg = load_config(
                config, manifest=manifest, out=out, name=name, classes=_csv(classes), positive=positive,
                group_col=group_col, modality=modality, modalities=_csv(modalities), fusion=fusion,
                external=external or None, folds=folds, test_size=test_size, splits_file=splits_file,
                val_fraction=val_fraction, backbone=backbone, weights=weights, head=head, hidden=hidden,
                dropout=dropout, channels=channels, image_size=image_size, roi=roi, roi_margin=roi_margin,
                epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                scheduler=scheduler, step_size=step_size, gamma=gamma, patience=patience, imbalance=imbalance,
                augment=augment, modality_dropout=modality_dropout, seed=seed, deterministic=deterministic,
                devices=devices, accelerator=accelerator,
                strategy=strategy, precision=precision, num_threads=num_threads, final_model=final_model, tta=tta,
                resume=resume or None, keep_checkpoints=keep_checkpoints or None,
                tensorboard=tensorboard or None,
                allow_pretrain_overlap=allow_pretrain_overlap or None,
            )
        except ValidationError as exc:
            fail(f"invalid configuration: {exc}")
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        try:
            res = run_cv(cfg)
        except (ManifestError, WeightsNotFoundError, FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        if res.run_summary is None:
            return  # a non-zero DDP rank
        console.print(f"[bold]run[/] {res.run_dir}")
        console.print(res.run_summary.render())
        console.print(f"  predictions: {res.run_dir / 'predictions.csv'}")

    @app.command()
    def predict(
        bundle: Annotated[Path, typer.Argument(help="model bundle directory")],
        inputs: Annotated[list[Path], typer.Argument(help="manifest.csv, folder(s) or image file(s)")],
        output: Annotated[Path, typer.Option("--output", "-o", help="predictions CSV to write")] = Path(
            "predictions.csv"),
        tta: Annotated[bool, typer.Option(help="average with the mirrored image")] = False,
        engine: Annotated[str, typer.Option(help="torch | onnx")] = "torch",
        split: Annotated[str, typer.Option(help="split column value (test | external | ...)")] = "test",
        batch_size: Annotated[int, typer.Option()] = 32,
        group_col: Annotated[str | None, typer.Option(
            help="manifest grouping column (default: the bundle's training group_col, else patient_id)")] = None,
    ) -> None:
        """Predict images with a bundle; writes a predictions CSV (contract columns + y_pred at the bundle threshold)."""
        from nodescope.data import ImageReadError, ManifestError
        from nodescope.models import load_bundle, predict_files

        if engine not in ("torch", "onnx"):
            fail(f"--engine: expected 'torch' or 'onnx', got {engine!r}")
        try:
            b = load_bundle(bundle)
            df = predict_files(b, inputs, tta=tta, engine=engine, split=split,  # type: ignore[arg-type]
                               batch_size=batch_size, group_col=group_col)
        except (ManifestError, ImageReadError, FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        output.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(output, index=False)
        console.print(f"{len(df)} image(s) predicted with {b.name} ({engine}) -> {output}")

    @app.command()
    def pretrain(
        manifests: Annotated[list[Path], typer.Argument(help="one manifest per task (its own classes)")],
        out: Annotated[Path, typer.Option("--out", "-o", help="backbone bundle directory")],
        backbone: Annotated[str, typer.Option()] = "tf_efficientnet_lite0",
        weights: Annotated[str, typer.Option(help="starting weights: none | imagenet | PATH")] = "imagenet",
        group_col: Annotated[list[str] | None, typer.Option(help="grouping column per task (patient_id)")] = None,
        exclude: Annotated[list[Path] | None, typer.Option(
            help="manifest(s) of the experiment whose images must not be pretrained on")] = None,
        image_size: Annotated[int, typer.Option()] = 224,
        channels: Annotated[int, typer.Option()] = 3,
        epochs: Annotated[int, typer.Option()] = 50,
        batch_size: Annotated[int, typer.Option()] = 16,
        lr: Annotated[float, typer.Option()] = 5e-5,
        patience: Annotated[int, typer.Option()] = 5,
        val_fraction: Annotated[float, typer.Option(help="validation fraction (4:1 split = 0.2)")] = 0.2,
        seed: Annotated[int, typer.Option()] = 0,
        augment: Annotated[str, typer.Option()] = "standard",
        num_threads: Annotated[int | None, typer.Option()] = None,
    ) -> None:
        """Multitask pretraining on public ultrasound data sets: shared backbone, one head per task."""
        from nodescope.data import ManifestError
        from nodescope.models import WeightsNotFoundError
        from nodescope.training import PretrainTask, run_pretrain

        groups = list(group_col or [])
        if groups and len(groups) not in (1, len(manifests)):
            fail(f"--group-col: give one value or one per manifest ({len(manifests)}), got {len(groups)}")
        tasks = [PretrainTask(m, group_col=(groups[i] if len(groups) > 1 else groups[0]) if groups else "patient_id")
                 for i, m in enumerate(manifests)]
        try:
            res = run_pretrain(tasks, out, backbone=backbone, weights=weights, image_size=image_size,
                               channels=channels, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                               val_fraction=val_fraction, seed=seed, augment=augment,  # type: ignore[arg-type]
                               exclude=exclude or [], num_threads=num_threads)
        except (ManifestError, WeightsNotFoundError, FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        console.print(f"backbone bundle -> {res.bundle} (best mean val loss {res.best_val_loss:.4f} at epoch "
                      f"{res.best_epoch}); use it with: nodescope train ... --weights {res.bundle}")
