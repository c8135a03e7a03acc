"""Segmenter training as a :class:`~nodescope.training._folds.FoldTask`: ``nodescope segment train``.

Data: the manifest rows with a ``mask`` (an empty mask file is a lesion-free image, e.g. BUSI ``normal``; they
teach the network to predict nothing and give the false-positive rate). Split: the manifest's ``split`` column
(``test``/``external`` rows are held out) and stratified group k-fold by ``group_col`` on the rest, as
``nodescope train`` does; inner validation groups for early stopping. Images and masks go through the same
preprocessing (:meth:`~nodescope.models.InputSpec.prepare`, :func:`~nodescope.models.prepare_mask`) and the same
augmentation draws (:class:`~nodescope.training.UltrasoundAugment` ``(x, mask)``).

Fit: Lightning, Dice + BCE (or focal) loss; with validation groups the checkpoint of the best validation Dice is
kept and, when ``patience > 0``, training stops early on it; otherwise the fixed schedule's last epoch. Predict: the
probability map on the model grid is drawn back onto the original pixels (bilinear through the inverse transform),
thresholded at 0.5 and saved as a PNG (``folds/fold_<k>/masks/`` out of fold, ``final/masks/`` for held-out rows);
the predictions table lists them and every score is computed from the saved files. Save: a ``segmenter`` bundle per
fold and the refit (or, ``final_model="none"``, the fold models' mean probability for held-out rows).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import pandas as pd
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nodescope._progress import Progress
from nodescope.data import ImageTransform
from nodescope.errors import ConfigError, DataError
from nodescope.segment._masks_io import score_table, write_mask_png
from nodescope.segment._nets import segmentation_loss
from nodescope.training._augment import UltrasoundAugment

__all__ = ["SegmentConfig", "SegmentRunSummary", "SegmentTask", "SegmenterModule", "run_segment_cv"]

log = logging.getLogger(__name__)


class SegmentConfig(BaseModel):
    """Everything ``nodescope segment train`` needs (saved as the run's ``config.yaml``).

    Data: ``manifest`` (rows with a ``mask``), ``external`` manifests, ``group_col``. Split: ``folds``,
    ``val_fraction`` (inner validation groups: checkpoint and early stopping on validation Dice). Model:
    ``architecture`` (unet | unetplusplus | deeplabv3 | deeplabv3plus | monai_unet), ``encoder`` (a registered
    backbone), ``weights`` (none | imagenet | PATH), ``image_size``, ``channels``. Optimisation: ``epochs``,
    ``batch_size``, ``lr``, ``weight_decay``, ``loss`` (dice_bce | dice_focal), ``augment``, ``patience`` (0: the fixed
    schedule). Runtime: ``seed``, ``num_threads``, ``accelerator``, ``devices``, ``precision``, ``channels_last``
    (convolution weights in channels-last layout while training: faster on CPUs), ``final_model``, ``tta``,
    ``resume``, ``overwrite``, ``keep_checkpoints``, ``max_pixels``.
    """

    model_config = ConfigDict(extra="forbid")
    manifest: Path
    out: Path
    name: str = "segmenter"
    external: list[Path] = Field(default_factory=list)
    group_col: str = "patient_id"
    folds: int = Field(5, ge=2)
    val_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    architecture: Literal["unet", "unetplusplus", "deeplabv3", "deeplabv3plus", "monai_unet"] = "unet"
    encoder: str = "tf_efficientnet_lite0"
    features: list[int] | None = Field(None, description="monai_unet channel widths (six values)")
    weights: str = "none"
    image_size: int = Field(256, ge=16)
    channels: Literal[1, 3] = 3
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(3e-4, gt=0.0, allow_inf_nan=False)
    weight_decay: float = Field(1e-4, ge=0.0, allow_inf_nan=False)
    loss: Literal["dice_bce", "dice_focal"] = "dice_bce"
    augment: Literal["none", "light", "standard"] = "standard"
    patience: int = Field(5, ge=0)
    seed: int = Field(0, ge=0)
    deterministic: bool = False
    num_threads: int | None = Field(None, ge=1)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int = Field(1, ge=1)
    precision: str = "auto"
    channels_last: bool = True
    final_model: Literal["refit", "none"] = "refit"
    tta: bool = False
    resume: bool = False
    overwrite: bool = False
    keep_checkpoints: bool = False
    max_pixels: int | None = Field(None, ge=1)

    def to_yaml(self) -> str:
        """The configuration as YAML (``config.yaml`` of the run)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def build(cls, **values: Any) -> SegmentConfig:
        """Validate ``values`` (``None`` = default); problems become one :class:`ConfigError` naming each key."""
        try:
            return cls(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}, got {e.get('input')!r}" for e in exc.errors()]
            raise ConfigError("; ".join(parts)) from None

    @property
    def arch(self) -> dict[str, Any]:
        """The bundle's ``architecture`` arguments."""
        if self.architecture == "monai_unet":
            a: dict[str, Any] = {"name": "monai_unet", "in_chans": self.channels}
            if self.features:
                a["features"] = list(self.features)
            return a
        return {"name": self.architecture, "in_chans": self.channels, "encoder": self.encoder}


#: Resolved-configuration keys a resumed run must share with the run it continues.
RESUME_KEYS = ("manifest", "external", "group_col", "folds", "val_fraction", "architecture", "encoder", "features",
               "weights", "image_size", "channels", "epochs", "batch_size", "lr", "weight_decay", "loss", "augment",
               "patience", "seed", "final_model", "tta")


@dataclass
class SegSamples:
    """Preloaded images ``(N, C, S, S)`` and masks ``(N, 1, S, S)`` uint8, their frame and transforms."""

    frame: pd.DataFrame
    images: torch.Tensor
    masks: torch.Tensor
    transforms: list[ImageTransform]


def _read_rows(path: Path, group_col: str, tag: str) -> pd.DataFrame:
    from nodescope.data import read_manifest

    m = read_manifest(path, group_col=group_col)
    df = m.frame.copy()
    df["_path"] = [str(p) for p in m.image_paths()]
    df["_mask"] = [str(p) if p is not None else "" for p in m.mask_paths()]
    keep = df["_mask"] != ""
    if not keep.any():
        raise DataError(f"{path}: no row has a 'mask'; segmentation training needs reference masks")
    if (~keep).any():
        log.info("%s (%s): %d row(s) without a mask left out", path, tag, int((~keep).sum()))
    df = df[keep].copy()
    df["group"] = df[group_col].astype(str)
    if "patient_id" not in df.columns:
        df["patient_id"] = df["group"]
    df["patient_id"] = df["patient_id"].where(df["patient_id"].astype(str) != "", df["group"])
    return df


def build_seg_samples(cfg: SegmentConfig) -> SegSamples:
    """Read, split and preload the rows with masks (see the module docstring)."""
    from nodescope.data import check_leakage, make_splits, read_image
    from nodescope.data._io_base import max_pixels_limit
    from nodescope.models import prepare_image, prepare_mask, stored_bits

    dev = _read_rows(cfg.manifest, cfg.group_col, "manifest")
    fixed = dev["split"].isin(["test", "external"]) if "split" in dev.columns else pd.Series(False, index=dev.index)
    dev["part"], dev["fold"] = "", -1
    dev.loc[fixed, "part"] = dev.loc[fixed, "split"] if fixed.any() else ""
    pool = dev[~fixed]
    sp = make_splits(pool, method="kfold", group_col=cfg.group_col, n_splits=cfg.folds, seed=cfg.seed)
    dev.loc[pool.index, "part"] = sp["part"]
    dev.loc[pool.index, "fold"] = sp["fold"]
    frames = [dev]
    for i, ext in enumerate(cfg.external):
        e = _read_rows(ext, cfg.group_col, f"external[{i}]")
        e["part"], e["fold"] = "external", -1
        frames.append(e)
    df = pd.concat(frames, ignore_index=True)
    check_leakage(df[["group", "part", "fold"]].assign(label=df["label"]))
    n, s = len(df), cfg.image_size
    images = torch.empty((n, cfg.channels, s, s), dtype=torch.uint8)
    masks = torch.empty((n, 1, s, s), dtype=torch.uint8)
    transforms = []
    with max_pixels_limit(cfg.max_pixels):
        for i, (ip, mp) in enumerate(zip(df["_path"], df["_mask"], strict=True)):
            img = read_image(ip)
            images[i], tr = prepare_image(img.pixels, size=s, channels=cfg.channels, bits_stored=stored_bits(img.meta))
            m = read_image(mp).pixels
            if m.shape[:2] != img.pixels.shape[:2]:
                raise DataError(f"{mp}: mask size {m.shape[1]}x{m.shape[0]} differs from its image {ip} "
                                f"({img.pixels.shape[1]}x{img.pixels.shape[0]})")
            masks[i] = prepare_mask(m, tr)
            transforms.append(tr)
    keep = ["patient_id", "group", "label", "part", "fold", "image", "_path", "_mask"]
    return SegSamples(df[[c for c in keep if c in df.columns]].reset_index(drop=True), images, masks, transforms)


def _hard_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image Dice of ``logits >= 0`` against ``target``; 1 when both are empty (the policy of mask_scores)."""
    p = (logits >= 0).float()
    t = target.float()
    dims = tuple(range(1, p.ndim))
    inter, tot = (p * t).sum(dims), p.sum(dims) + t.sum(dims)
    return torch.where(tot > 0, 2 * inter / tot.clamp_min(1e-9), torch.ones_like(tot))


class SegmenterModule(L.LightningModule):
    """Dice + BCE (or focal) training of a segmentation network on uint8 image and mask batches.

    Parameters
    ----------
    net : torch.nn.Module
        ``(N, C, S, S) -> (N, 1, S, S)`` logits.
    mean, std : sequence of float
        Normalisation on the 0..1 scale.
    augment : UltrasoundAugment or None
        Applied to image and mask with the same geometric draws.
    loss : {"dice_bce", "dice_focal"}
    lr, weight_decay : float
    max_epochs : int
        Cosine schedule length.
    """

    def __init__(self, net: torch.nn.Module, mean: Sequence[float], std: Sequence[float], *,
                 augment: UltrasoundAugment | None = None, loss: str = "dice_bce", lr: float = 3e-4,
                 weight_decay: float = 1e-4, max_epochs: int = 30) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        self.augment = augment
        self.loss_kind: Literal["dice_bce", "dice_focal"] = "dice_focal" if loss == "dice_focal" else "dice_bce"
        if loss not in ("dice_bce", "dice_focal"):
            raise ConfigError(f"loss: expected 'dice_bce' or 'dice_focal', got {loss!r}")
        self.lr, self.weight_decay, self.max_epochs = float(lr), float(weight_decay), int(max_epochs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of uint8 (or 0..255 float) images."""
        return self.net((x.float() / 255.0 - self.mean) / self.std)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, m = batch
        x, m = x.float() / 255.0, m.float()
        if self.augment is not None:
            x, m = self.augment(x, m)
        logits = self.net((x - self.mean) / self.std)
        loss = segmentation_loss(logits, m, kind=self.loss_kind)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, m = batch
        logits = self(x)
        loss = segmentation_loss(logits, m.float(), kind=self.loss_kind)
        self.log("val_loss", loss, on_epoch=True, batch_size=len(x), sync_dist=True)
        self.log("val_dice", _hard_dice(logits, m).mean(), on_epoch=True, prog_bar=True, batch_size=len(x),
                 sync_dist=True)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.max_epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sch, "interval": "epoch"}}


def _normalisation(cfg: SegmentConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from nodescope.models import default_normalisation

    if cfg.architecture == "monai_unet":
        return (0.5,) * cfg.channels, (0.25,) * cfg.channels
    return default_normalisation(cfg.encoder, cfg.channels)


def _precision(cfg: SegmentConfig) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    return "16-mixed" if torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda") else "32-true"


def _fit(cfg: SegmentConfig, s: SegSamples, train_idx: np.ndarray, val_idx: np.ndarray, workdir: Path,
         seed: int, progress: Progress | None = None) -> tuple[SegmenterModule, dict[str, Any], dict[str, Any]]:
    """Train one segmenter; returns (module with the chosen weights on the CPU, weights_init, fit info).

    Lightning's own progress bar and model summary are off; ``progress`` (if given) shows the fit instead.
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from nodescope.segment._nets import build_segmenter, load_encoder_weights
    from nodescope.training._data import ImageDataModule
    from nodescope.training._module import channels_last

    L.seed_everything(seed, workers=True, verbose=False)
    net = build_segmenter(cfg.arch)
    winfo = load_encoder_weights(net, cfg.arch, cfg.weights, image_size=cfg.image_size)
    mean, std = _normalisation(cfg)
    module = SegmenterModule(net, mean, std, augment=UltrasoundAugment.from_level(cfg.augment), loss=cfg.loss,
                             lr=cfg.lr, weight_decay=cfg.weight_decay, max_epochs=cfg.epochs)
    dm = ImageDataModule(s.images, s.masks, train_idx, val_idx, batch_size=cfg.batch_size, seed=seed)
    has_val = len(val_idx) > 0
    ckpt = ModelCheckpoint(dirpath=workdir / "checkpoints", filename="best-{epoch}",
                           monitor="val_dice" if has_val else None, mode="max", save_last=True, save_top_k=1)
    callbacks: list[Any] = [ckpt]
    if has_val and cfg.patience > 0:
        callbacks.append(EarlyStopping(monitor="val_dice", patience=cfg.patience, mode="max"))
    if progress is not None:
        from nodescope.training._progress_callback import ProgressCallback

        callbacks.append(ProgressCallback(progress))
    trainer = L.Trainer(max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=cfg.devices,
                        precision=_precision(cfg), deterministic=cfg.deterministic,  # type: ignore[arg-type]
                        logger=[CSVLogger(workdir, name="logs")], callbacks=callbacks, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=1.0 if has_val else 0, log_every_n_steps=1,
                        default_root_dir=workdir, enable_progress_bar=False)
    last = workdir / "checkpoints" / "last.ckpt"
    resume = str(last) if cfg.resume and last.is_file() else None
    with channels_last(module, cfg.channels_last):
        trainer.fit(module, datamodule=dm, ckpt_path=resume)
    best = ckpt.best_model_path if has_val and ckpt.best_model_path else ""
    if best:
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    module = module.cpu()
    score = ckpt.best_model_score
    info = {"epochs_run": int(trainer.current_epoch), "best_checkpoint": Path(best).name if best else "last",
            "best_val_dice": float(score) if has_val and score is not None else None,
            "resumed_from": Path(resume).name if resume else None, "n_train": len(train_idx), "n_val": len(val_idx)}
    return module, winfo.to_dict(), info


@dataclass(frozen=True)
class SegmentRunSummary:
    """Summaries of a segmentation run per split (``cv`` out of fold, ``test``, ``external``)."""

    splits: dict[str, Any]
    folds: dict[int, dict[str, Any]]
    final: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``summary.json``: per split the metric table (estimate, 95% CI, n) and the counts."""
        out: dict[str, Any] = {"splits": {}, "folds": {str(k): v for k, v in self.folds.items()},
                               "final": self.final}
        for name, summ in self.splits.items():
            out["splits"][name] = {
                "metrics": summ.to_frame().to_dict(orient="records"), "n_images": summ.n_images,
                "n_lesion_images": summ.n_lesion_images, "n_missed": summ.n_missed,
                "n_empty_truth": summ.n_empty_truth, "n_groups": summ.n_groups, "policy": summ.policy}
        return out

    def render(self) -> str:
        """A few lines per split for the terminal."""
        lines = []
        for name, summ in self.splits.items():
            d, det = summ.dice, summ.detection_rate
            lines.append(f"  {name}: Dice {d.estimate:.3f} ({d.ci_low:.3f}-{d.ci_high:.3f}), detection "
                         f"{det.estimate:.3f}, HD95 {summ.hd95.estimate:.1f} {summ.unit}; {summ.n_images} images, "
                         f"{summ.n_groups} groups")
            if summ.n_empty_truth:
                fp = summ.false_positive_rate
                lines.append(f"    false positives on {summ.n_empty_truth} lesion-free images: {fp.estimate:.3f}")
        return "\n".join(lines)


class SegmentTask:
    """Segmenter training for :func:`~nodescope.training._folds.run_folds` (see the module docstring).

    Parameters
    ----------
    cfg : SegmentConfig
    samples : SegSamples
    progress : Progress, optional
        Shows each fit (epoch, losses, validation Dice, ETA).
    """

    def __init__(self, cfg: SegmentConfig, samples: SegSamples, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.samples = samples
        self.progress = progress
        self.run_dir = Path(cfg.out)
        self.run_id = self.run_dir.resolve().name
        self.scores: pd.DataFrame | None = None

    def fit(self, train_idx: np.ndarray, val_idx: np.ndarray, workdir: Path,
            seed: int) -> tuple[tuple[SegmenterModule, dict[str, Any]], dict[str, Any]]:
        """Train one segmenter (see :class:`~nodescope.training._folds.FoldTask`)."""
        module, winfo, info = _fit(self.cfg, self.samples, train_idx, val_idx, workdir, seed, self.progress)
        return (module, winfo), info

    def _grid(self, model: Any, idx: np.ndarray) -> np.ndarray:
        from nodescope.segment._predict import probability_grid

        net, spec = (model[0].net, self._spec()) if isinstance(model, tuple) else (model.model, model.spec)
        return probability_grid(net, spec, self.samples.images[torch.as_tensor(idx)], tta=self.cfg.tta)

    def _table(self, idx: np.ndarray, grids: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        sub = f"folds/fold_{fold}/masks" if fold >= 0 else "final/masks"
        f = self.samples.frame.iloc[idx]
        names = []
        for j, (row, grid) in enumerate(zip(idx, grids, strict=True)):
            mask = self.samples.transforms[int(row)].inverse(grid, resample="bilinear") >= 0.5
            rel = f"{sub}/{int(row):05d}_{Path(str(f['_path'].iloc[j])).stem}.png"
            write_mask_png(mask, self.run_dir / rel)
            names.append(rel)
        return pd.DataFrame({"patient_id": f["patient_id"].to_numpy(), "group": f["group"].to_numpy(),
                             "image": f["image"].to_numpy(), "label": f["label"].to_numpy(),
                             "image_path": f["_path"].to_numpy(), "mask": f["_mask"].to_numpy(), "pred_mask": names,
                             "split": split, "fold": fold, "model": self.cfg.name, "run_id": self.run_id})

    def predict(self, fitted: Any, idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        """Save the masks of rows ``idx`` at the original size; the table lists them."""
        return self._table(idx, self._grid(fitted, idx), split, fold)

    def predict_ensemble(self, models: Sequence[Any], idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        """The fold models' mean probability, thresholded at 0.5."""
        grids = np.mean([self._grid(m, idx) for m in models], axis=0)
        return self._table(idx, grids, split, fold)

    def _spec(self) -> Any:
        from nodescope.models import InputSpec

        mean, std = _normalisation(self.cfg)
        return InputSpec(image_size=self.cfg.image_size, channels=self.cfg.channels, mean=mean, std=std,
                         tta=self.cfg.tta)

    def save(self, fitted: Any, path: Path, *, train_idx: np.ndarray, fold: int | None,
             info: dict[str, Any]) -> None:
        """A ``segmenter`` bundle (fold or final)."""
        from nodescope.models import BundleMeta, save_bundle

        module, winfo = fitted
        fr = self.samples.frame.iloc[train_idx]
        meta = BundleMeta(kind="segmenter", name=self.cfg.name if fold is None else f"{self.cfg.name}_fold{fold}",
                          run_id=self.run_id, architecture=self.cfg.arch, input=self._spec(),
                          group_col=self.cfg.group_col, weights_init=winfo,
                          training={"manifest": str(self.cfg.manifest), "n_samples": len(train_idx),
                                    "n_groups": int(fr["group"].nunique()), "loss": self.cfg.loss, **info})
        save_bundle(path, module.net, meta)

    def load(self, path: Path) -> Any:
        """A fold's bundle (reused on resume)."""
        from nodescope.models import load_bundle

        return load_bundle(path)

    def read_predictions(self, path: Path) -> pd.DataFrame:
        """A finished fold's table, ids verbatim."""
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df["fold"] = df["fold"].astype(int)
        return df

    def finalise(self, oof: pd.DataFrame, run_dir: Path, folds: Sequence[int]) -> None:
        """Nothing is chosen on the out-of-fold rows (the threshold stays 0.5)."""

    def summarise(self, predictions: pd.DataFrame, folds: Mapping[int, dict[str, Any]],
                  final: dict[str, Any]) -> SegmentRunSummary:
        """Score the saved masks and summarise per split (patient bootstrap)."""
        from nodescope.segment._metrics import summarise_scores

        scored = score_table(predictions, self.run_dir)
        self.scores = scored
        out = {}
        for split, g in scored.groupby("split", sort=False):
            out[str(split)] = summarise_scores(g, seed=self.cfg.seed)
        return SegmentRunSummary(out, dict(folds), dict(final))


def run_segment_cv(cfg: SegmentConfig, *, progress: Progress | None = None) -> Any:
    """Train and cross-validate a segmenter (``nodescope segment train``); returns the :class:`FoldRun`.

    ``progress`` (see :mod:`nodescope._progress`) shows each fold's fit; None shows nothing.

    Writes the run folder of :func:`~nodescope.training._folds.run_folds` plus the saved masks; ``predictions.csv``
    lists them, and ``scores.csv`` holds the per-image metrics computed from them.
    """
    from nodescope._files import atomic_write_csv
    from nodescope.models import owned_cores
    from nodescope.training._folds import FoldPlan, check_run_dir, run_folds

    plan = FoldPlan(Path(cfg.out), cfg.seed, cfg.val_fraction, cfg.final_model, cfg.resume, cfg.keep_checkpoints,
                    cfg.model_copy(update={"overwrite": False}).to_yaml(), cfg.model_dump(mode="json"),
                    RESUME_KEYS, cfg.overwrite, tuple(Path(p) for p in [cfg.manifest, *cfg.external]))
    if check_run_dir(plan):  # refused before the (slow) loading; with overwrite, the earlier run's scores go too
        (plan.out / "scores.csv").unlink(missing_ok=True)
    torch.set_num_threads(cfg.num_threads or owned_cores())
    samples = build_seg_samples(cfg)
    task = SegmentTask(cfg, samples, progress)
    res = run_folds(task, samples.frame, plan, progress=progress)
    if task.scores is not None:
        atomic_write_csv(task.scores, plan.out / "scores.csv", index=False)
    return res
