"""The image classifier as a :class:`~nodescope.training._folds.FoldTask`: fit, predict, save, summarise.

Fit: a Lightning :class:`~nodescope.training.ClassifierModule` (timm backbone + head, or intermediate fusion), the
best checkpoint on the inner validation loss (else the last epoch). Predict: one ``p_<class>`` column per class
(:func:`nodescope.evaluation.make_predictions`). Save: a ``classifier`` (or ``fusion``) bundle. Finalise: the
operating threshold of a binary task maximises Youden's J = sensitivity + specificity - 1 on the pooled out-of-fold
predictions (Youden 1950, Cancer 3:32-35); it is stored in every fold bundle and, unchanged, in the final one.
With ``calibrate="temperature"`` a temperature is first fitted on the pooled out-of-fold rows
(:mod:`nodescope.training._calibrate`), set in every fold bundle and in the final model, and the out-of-fold rows are
re-scored by the calibrated fold bundles, so ``predictions.csv``, the threshold and the bundles agree (the per-fold
``folds/fold_<k>/predictions.csv`` keep the fold model's output as trained: the fit's input).
Summarise: :class:`~nodescope.training._summary.RunSummary`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from nodescope._progress import Progress
from nodescope.errors import BundleError, ConfigError, DataError
from nodescope.evaluation import choose_threshold, make_predictions, read_predictions
from nodescope.training._calibrate import TemperatureFit, fit_temperature, set_temperature
from nodescope.training._config import TrainConfig
from nodescope.training._samples import Samples
from nodescope.training._summary import OperatingThreshold, RunSummary, auc_summary, split_summaries

__all__ = ["ClassifyTask", "FittedClassifier"]

log = logging.getLogger(__name__)


class FittedClassifier(NamedTuple):
    """A trained classifier: the Lightning module (best weights, on the CPU) and its bundle meta parts."""

    module: Any
    parts: dict[str, Any]


def _precision(cfg: TrainConfig) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    return "16-mixed" if gpu else "32-true"


def _threads(cfg: TrainConfig) -> None:
    from nodescope.models import owned_cores

    n = cfg.num_threads
    if n is None:
        n = owned_cores()
        n = max(1, n // max(1, cfg.devices)) if cfg.accelerator in ("cpu", "auto") and cfg.devices > 1 else n
    torch.set_num_threads(n)


def _build_net(cfg: TrainConfig, n_classes: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    from nodescope.models import ClassifierNet, IntermediateFusionNet, load_weights

    common = {"in_chans": cfg.channels, "image_size": cfg.image_size, "head": cfg.head, "hidden": cfg.hidden,
              "dropout": cfg.dropout}
    if cfg.fusion == "intermediate":
        net = IntermediateFusionNet(cfg.backbone, list(cfg.modalities or []), n_classes, **common)
        info = load_weights(net.encoders[0], cfg.backbone, cfg.weights, in_chans=cfg.channels,
                            image_size=cfg.image_size)
        for enc in list(net.encoders)[1:]:
            enc.load_state_dict(net.encoders[0].state_dict())
        arch = {"kind": "fusion", **net.config}
    else:
        views = {"views": 2} if cfg.roi == "two-view" else {}  # recorded only when not 1: older bundles unchanged
        net = ClassifierNet(cfg.backbone, n_classes, **common, **views)
        info = load_weights(net.backbone, cfg.backbone, cfg.weights, in_chans=cfg.channels,
                            image_size=cfg.image_size)
        arch = {"backbone": cfg.backbone, "num_classes": n_classes, **common, **views}
    return net, {"architecture": arch, "weights_init": info.to_dict()}


def _normalisation(cfg: TrainConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from nodescope.models import default_normalisation

    return default_normalisation(cfg.backbone, cfg.channels)


def _check_pretrain_overlap(cfg: TrainConfig, samples: Samples) -> str | None:
    p = Path(cfg.weights)
    f = p / "pretrain_images.json"
    if not (p.is_dir() and f.is_file()):
        return None
    from nodescope.models._bundle import read_bundle_json

    hashes = read_bundle_json(f)
    if not isinstance(hashes, list):
        raise BundleError(f"{f}: expected a JSON list of image hashes, got {type(hashes).__name__}")
    pre = set(map(str, hashes))
    hit = [i for i, h in enumerate(samples.hashes) if h in pre]
    if not hit:
        return None
    msg = (f"weights {p}: {len(hit)} image(s) of this experiment were used for pretraining (identical pixels); "
           f"they fall in test folds or test sets, which makes the evaluation optimistic. Pretrain without them, "
           f"or set allow_pretrain_overlap to proceed anyway.")
    if not cfg.allow_pretrain_overlap:
        raise ConfigError(msg)
    log.warning(msg)
    return msg


def _fit(cfg: TrainConfig, samples: Samples, train_idx: np.ndarray, val_idx: np.ndarray, workdir: Path,
         seed: int, progress: Progress | None = None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Train one model; returns (module with best weights, bundle meta parts, fit info).

    Lightning's own progress bar and model summary are off; ``progress`` (if given) shows the fit instead.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from nodescope.training._augment import augmentation
    from nodescope.training._averaging import weight_averaging_callback
    from nodescope.training._data import ImageDataModule
    from nodescope.training._module import ClassifierModule, channels_last

    L.seed_everything(seed, workers=True, verbose=False)
    k = len(samples.classes)
    net, parts = _build_net(cfg, k)
    mean, std = _normalisation(cfg)
    y = samples.y
    cw = None
    if cfg.imbalance == "class_weights":
        counts = np.bincount(y[train_idx], minlength=k).astype(float)
        cw = (counts.sum() / (k * np.maximum(counts, 1))).tolist()
    views = 2 if cfg.roi == "two-view" else 1  # stacked views on the channel axis, each normalised alike
    module = ClassifierModule(net, mean * views, std * views, augment=augmentation(cfg), class_weights=cw,
                              optimizer=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                              scheduler=cfg.scheduler, step_size=cfg.step_size, gamma=cfg.gamma,
                              max_epochs=cfg.epochs, modality_dropout=cfg.modality_dropout,
                              fusion=cfg.fusion == "intermediate", mixup=cfg.mixup)
    dm = ImageDataModule(samples.images, torch.tensor(y), train_idx, val_idx, batch_size=cfg.batch_size,
                         oversample=cfg.imbalance == "oversample", seed=seed, present=samples.present,
                         balance_by=site_cells(samples.frame, train_idx) if cfg.site_balance else None)
    has_val = len(val_idx) > 0
    ckpt = ModelCheckpoint(dirpath=workdir / "checkpoints", filename="best-{epoch}",
                           monitor="val_loss" if has_val else None, mode="min", save_last=True, save_top_k=1)
    callbacks: list[Any] = [ckpt]
    if has_val and cfg.patience > 0:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=cfg.patience, mode="min"))
    averaging = weight_averaging_callback(cfg.weight_averaging, epochs=cfg.epochs, ema_decay=cfg.ema_decay)
    if averaging is not None:
        callbacks.append(averaging)
    loggers: list[Any] = [CSVLogger(workdir, name="logs")]
    if progress is not None:
        from nodescope.training._progress_callback import ProgressCallback

        callbacks.append(ProgressCallback(progress))
    if cfg.tensorboard:
        loggers.append(TensorBoardLogger(workdir / "logs", name="tensorboard", default_hp_metric=False))
    trainer = L.Trainer(
        max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy,
        precision=_precision(cfg), deterministic=cfg.deterministic, logger=loggers,
        callbacks=callbacks, enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
        log_every_n_steps=1, default_root_dir=workdir,
    )
    last = workdir / "checkpoints" / "last.ckpt"
    resume = str(last) if cfg.resume and last.is_file() else None
    if resume:
        log.info("resuming %s from %s", workdir.name, last)
    with channels_last(module, cfg.channels_last):
        trainer.fit(module, datamodule=dm, ckpt_path=resume)
    best = ckpt.best_model_path if has_val and ckpt.best_model_path else ""
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    module = module.cpu()
    info = {"epochs_run": int(trainer.current_epoch), "best_checkpoint": Path(best).name if best else "last",
            "best_val_loss": float(ckpt.best_model_score) if has_val and ckpt.best_model_score is not None else None,
            "resumed_from": Path(resume).name if resume else None, "n_train": len(train_idx), "n_val": len(val_idx),
            "global_rank": int(trainer.global_rank)}
    return module, parts, info


def site_cells(frame: pd.DataFrame, train_idx: np.ndarray) -> np.ndarray:
    """``site|label`` of every sample, for site-balanced sampling; refused without a ``site`` column holding at
    least two sites among the training rows."""
    if "site" not in frame.columns:
        raise DataError("site_balance: the manifest has no 'site' column (one site name per row is needed)")
    sites = frame["site"].astype(str).to_numpy()
    found = sorted(set(sites[train_idx]))
    if len(found) < 2:
        raise DataError(f"site_balance: the training rows come from {len(found)} site(s) {found}; balancing needs "
                        "at least 2")
    return np.char.add(np.char.add(sites, "|"), frame["label"].astype(str).to_numpy())


def _save_model(path: Path, module: Any, parts: dict[str, Any], cfg: TrainConfig, samples: Samples,
                train_idx: np.ndarray, name: str, threshold: dict[str, Any] | None, metrics: dict[str, Any],
                extra: dict[str, Any]) -> None:
    from nodescope.models import UINT16_RULE, BundleMeta, InputSpec, Threshold, save_bundle

    mean, std = _normalisation(cfg)
    fr = samples.frame.iloc[train_idx]
    fusion = cfg.fusion == "intermediate"
    modalities = list(cfg.modalities) if fusion else ([cfg.modality] if cfg.modality else None)
    spec = InputSpec(image_size=cfg.image_size, channels=cfg.channels, mean=tuple(mean), std=tuple(std), roi=cfg.roi,
                     roi_margin=cfg.roi_margin, uint16=UINT16_RULE, tta=cfg.tta,
                     modalities=tuple(modalities) if modalities else None, scan_crop=cfg.scan_crop, grey=cfg.grey,
                     intensity=cfg.intensity, marks=cfg.marks, intensity_reference=samples.intensity_reference,
                     context_scale=cfg.context_scale)
    meta = BundleMeta(
        kind="fusion" if fusion else "classifier", name=name, run_id=Path(cfg.out).resolve().name,
        architecture={k: v for k, v in parts["architecture"].items() if k != "kind"}, input=spec,
        classes=tuple(samples.classes), positive_class=samples.positive,
        threshold=Threshold(**threshold) if threshold else None, group_col=cfg.group_col,
        weights_init=parts["weights_init"],
        training={"manifest": str(cfg.manifest), "n_samples": len(train_idx), "n_groups": int(fr["group"].nunique()),
                  "class_counts": {str(k): int(v) for k, v in fr["label"].value_counts().sort_index().items()},
                  **extra},
        synthetic_data=cfg.synthetic_data)
    save_bundle(path, module.net, meta, metrics=metrics)


def _set_fold_thresholds(run_dir: Path, folds: list[int], threshold: dict[str, Any]) -> None:
    """Store the pooled out-of-fold threshold in every fold bundle (saved before it was known); only model.json and
    the model card are rewritten, the weights stay as they are."""
    from nodescope.models import Threshold, read_bundle_meta, write_bundle_meta

    for k in folds:
        path = run_dir / "folds" / f"fold_{k}" / "bundle"
        write_bundle_meta(path, read_bundle_meta(path).replace(threshold=Threshold(**threshold)))


def _predict_any(m: Any, samples: Samples, idx: np.ndarray, tta: bool) -> np.ndarray:
    from nodescope.training._module import ClassifierModule, predict_tensor

    if isinstance(m, ClassifierModule):
        return predict_tensor(m, samples.images, idx, tta=tta, present=samples.present)
    from nodescope.models import predict_proba

    if samples.present is not None:
        raise ConfigError("final_model='none' with fusion on resumed folds is not supported; use final_model='refit'")
    return predict_proba(m, samples.images[torch.as_tensor(idx)], tta=tta)


#: Manifest columns copied into the predictions table when present, in this order.
EXTRA_COLUMNS = ("image", "lesion_id", "site", "modality", "view", "group")


class ClassifyTask:
    """Classifier training for :func:`~nodescope.training._folds.run_folds` (see the module docstring).

    Parameters
    ----------
    cfg : TrainConfig
    samples : Samples
        The preloaded images and their frame (row positions are the runner's indices).
    pretrain_overlap : str, optional
        The overlap warning of :func:`_check_pretrain_overlap`, reported in the summary.
    progress : Progress, optional
        Shows each fit (epoch, losses, ETA); None shows nothing.

    Notes
    -----
    Stateful: :meth:`finalise` records the pooled out-of-fold rows and the threshold the final model is saved with.
    """

    def __init__(self, cfg: TrainConfig, samples: Samples, pretrain_overlap: str | None = None,
                 progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.samples = samples
        self.pretrain_overlap = pretrain_overlap
        self.run_id = Path(cfg.out).resolve().name
        self.oof: pd.DataFrame | None = None
        self.threshold: OperatingThreshold | None = None
        self.calibration: TemperatureFit | None = None
        self._fold_bundles: list[Any] | None = None  # the fold bundles as finalise rewrote them (None: untouched)

    @classmethod
    def from_config(cls, cfg: TrainConfig, progress: Progress | None = None) -> ClassifyTask:
        """Set the torch threads, preload the data and check the pretraining overlap (may raise ConfigError)."""
        from nodescope.training._samples import build_samples

        _threads(cfg)
        samples = build_samples(cfg)
        return cls(cfg, samples, _check_pretrain_overlap(cfg, samples), progress)

    @property
    def _threshold_dict(self) -> dict[str, Any] | None:
        return self.threshold.to_dict() if self.threshold else None

    def fit(self, train_idx: np.ndarray, val_idx: np.ndarray, workdir: Path,
            seed: int) -> tuple[FittedClassifier, dict[str, Any]]:
        """Train one classifier (see :class:`~nodescope.training._folds.FoldTask`)."""
        module, parts, info = _fit(self.cfg, self.samples, train_idx, val_idx, workdir, seed, self.progress)
        return FittedClassifier(module, parts), info

    def _frame(self, idx: np.ndarray, probs: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        f = self.samples.frame.iloc[idx]
        return make_predictions(f["patient_id"].to_numpy(), f["label"].to_numpy(), probs, self.samples.classes,
                                split=split, fold=fold, model=self.cfg.name, run_id=self.run_id,
                                extra={c: f[c].to_numpy() for c in EXTRA_COLUMNS if c in f.columns})

    def predict(self, fitted: FittedClassifier, idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        """The predictions table of rows ``idx`` (``p_<class>`` per class)."""
        from nodescope.training._module import predict_tensor

        s = self.samples
        if self.calibration is not None:  # after finalise: the final model, calibrated as the folds are
            set_temperature(fitted.module.net, self.calibration.temperature)
        probs = predict_tensor(fitted.module, s.images, idx, tta=self.cfg.tta, present=s.present)
        return self._frame(idx, probs, split, fold)

    def predict_ensemble(self, models: Sequence[Any], idx: np.ndarray, split: str, fold: int) -> pd.DataFrame:
        """Mean probabilities of the fold models (fitted, or bundles of reused folds; the fold bundles as finalise
        rewrote them when it did)."""
        if self._fold_bundles is not None:
            models = self._fold_bundles
        ms = [m.module if isinstance(m, FittedClassifier) else m for m in models]
        probs = np.mean([_predict_any(m, self.samples, idx, self.cfg.tta) for m in ms], axis=0)
        return self._frame(idx, probs, split, fold)

    def save(self, fitted: FittedClassifier, path: Path, *, train_idx: np.ndarray, fold: int | None,
             info: dict[str, Any]) -> None:
        """A fold bundle (threshold added by :meth:`finalise`) or the final bundle (threshold, cv summary)."""
        cfg, s = self.cfg, self.samples
        if fold is not None:
            _save_model(path, fitted.module, fitted.parts, cfg, s, train_idx, f"{cfg.name}_fold{fold}", None, {}, info)
            return
        if self.oof is None:
            raise RuntimeError("ClassifyTask.save of the final model before finalise")
        thr = self.threshold.value if self.threshold else None
        cv = auc_summary(self.oof, s.classes, s.positive, thr)
        if self.calibration is not None:
            set_temperature(fitted.module.net, self.calibration.temperature)
            info = {**info, "calibration": self.calibration.to_dict()}
        _save_model(path, fitted.module, fitted.parts, cfg, s, train_idx, cfg.name, self._threshold_dict,
                    {"cross_validation": cv}, info)

    def load(self, path: Path) -> Any:
        """A fold's bundle (for the fold-model mean on resume)."""
        from nodescope.models import load_bundle

        return load_bundle(path)

    def read_predictions(self, path: Path) -> pd.DataFrame:
        """A finished fold's predictions: ids verbatim ("NA", "007", lesion "1"), numeric ``p_*`` and ``fold``."""
        return read_predictions(path, positive=self.samples.positive).frame

    def finalise(self, oof: pd.DataFrame, run_dir: Path, folds: Sequence[int]) -> pd.DataFrame:
        """Calibrate (``calibrate="temperature"``), then, for binary tasks, choose the Youden threshold on the pooled
        out-of-fold rows; both are stored in the fold bundles. Returns the out-of-fold rows the run reports (re-scored
        by the calibrated fold bundles when calibrated)."""
        oof = self._calibrate(oof, run_dir, list(folds))
        self.oof = oof
        pos = self.samples.positive
        if pos is None:
            return oof
        y = (oof["y_true"].astype(str) == pos).to_numpy()
        # the same rule `nodescope evaluate` applies to cv rows, so the bundle and the report agree
        t = choose_threshold(y.astype(int), oof[f"p_{pos}"].to_numpy(float), method="youden").threshold
        self.threshold = OperatingThreshold(t, "youden", "cv (pooled out-of-fold)", f"p_{pos} >= value")
        _set_fold_thresholds(run_dir, list(folds), self._threshold_dict)  # type: ignore[arg-type]
        return oof

    def _calibrate(self, oof: pd.DataFrame, run_dir: Path, folds: list[int]) -> pd.DataFrame:
        """Fit the temperature on ``oof``, set it in the fold bundles and re-score their rows; without
        ``calibrate="temperature"``, reset fold bundles an earlier run with it left calibrated (a resume)."""
        from nodescope.models import load_bundle, read_bundle_meta, save_bundle

        paths = [run_dir / "folds" / f"fold_{k}" / "bundle" for k in folds]
        if self.cfg.calibrate == "none":
            stale = [p for p in paths if "calibration" in read_bundle_meta(p).training]
            for path in stale:
                b = load_bundle(path)
                set_temperature(b.model, 1.0)
                training = {k: v for k, v in b.meta.training.items() if k != "calibration"}
                save_bundle(path, b.model, b.meta.replace(training=training), metrics=b.metrics)
            if stale:  # reused folds were loaded before the reset: the fold-model mean must use what is on disk
                self._fold_bundles = [load_bundle(p) for p in paths]
            return oof
        s = self.samples
        index = {c: i for i, c in enumerate(s.classes)}
        # float32, the precision of the network's output: rows read back from a finished fold's CSV on resume give
        # the same values, hence the same temperature, as the rows a run holds in memory
        probs = oof[[f"p_{c}" for c in s.classes]].to_numpy(float).astype(np.float32).astype(float)
        fit = fit_temperature(probs, oof["y_true"].astype(str).map(index).to_numpy())
        bound = " - at the bound of the search" if fit.at_bound else ""
        log.info("temperature scaling: T = %.4f on %d out-of-fold rows (log loss %.4f -> %.4f)%s", fit.temperature,
                 fit.n, fit.log_loss_before, fit.log_loss_after, bound)
        self.calibration = fit
        cv_idx = np.flatnonzero(s.frame["part"].to_numpy() == "cv")
        fold_of = s.frame["fold"].iloc[cv_idx].to_numpy().astype(int)
        frames, bundles = [], []
        for k, path in zip(folds, paths, strict=True):
            b = load_bundle(path)
            set_temperature(b.model, fit.temperature)
            meta = b.meta.replace(training={**b.meta.training, "calibration": fit.to_dict()})
            save_bundle(path, b.model, meta, metrics=b.metrics)
            b = load_bundle(path)  # what is on disk, as predict will read it
            idx = cv_idx[fold_of == k]
            frames.append(self._frame(idx, _predict_any(b, s, idx, self.cfg.tta), "cv", k))
            bundles.append(b)
        self._fold_bundles = bundles
        out = pd.concat(frames, ignore_index=True)
        out["fold"] = out["fold"].astype(int)
        return out

    def summarise(self, predictions: pd.DataFrame, folds: Mapping[int, dict[str, Any]],
                  final: dict[str, Any]) -> RunSummary:
        """The :class:`~nodescope.training._summary.RunSummary` of the run."""
        s = self.samples
        metric, splits = split_summaries(predictions, s.classes, s.positive,
                                         self.threshold.value if self.threshold else None)
        return RunSummary(metric, splits, s.classes, s.positive, self.threshold, folds, final, s.dropped,
                          self.pretrain_overlap, self.cfg.synthetic_data,
                          self.calibration.to_dict() if self.calibration else None)
