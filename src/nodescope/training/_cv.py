"""Patient-level cross-validation runner behind ``nodescope train``.

Run directory (``config.out``)::

    config.yaml         the resolved configuration
    splits.csv          one row per sample: group, label, part, fold (+ image)
    folds/fold_<k>/     logs/ (CSV; tensorboard/ with ``tensorboard``), checkpoints/ (last.ckpt, best; removed
                        once the fold is done unless ``keep_checkpoints``), bundle/, predictions.csv, DONE
    final/              the model refitted on all development data (bundle/ with the operating threshold)
    predictions.csv     out-of-fold rows (split "cv") + test/external rows scored by the final model
    summary.json        AUCs (pooled out-of-fold, per fold, test), threshold, counts, dropped rows

Per fold k: the training groups are those of the other folds; ``val_fraction`` of them (stratified, by group) are
held out for early stopping and checkpoint choice; fold k is predicted by the best checkpoint only.
The operating threshold (binary tasks) maximises Youden's J = sensitivity + specificity - 1 on the pooled
out-of-fold predictions (Youden 1950, Cancer 3:32-35) and is stored, unchanged, for test/external data.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from nodescope.evaluation import choose_threshold, read_predictions
from nodescope.training._config import TrainConfig
from nodescope.training._samples import Samples, build_samples

__all__ = ["CVResult", "auc_summary", "run_cv"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CVResult:
    """What a run produced: its folder, the predictions table and the summary (also written to disk)."""

    run_dir: Path
    predictions: pd.DataFrame
    summary: dict[str, Any]


def auc_summary(pred: pd.DataFrame, classes: tuple[str, ...], positive: str | None,
                threshold: float | None = None) -> dict[str, Any]:
    """AUC of each split (binary: ``p_<positive>``; multi-class: macro one-vs-rest) and, for ``cv``, each fold.

    A quick summary for the run log; ``nodescope evaluate`` computes the full statistics with CIs.
    """
    from sklearn.metrics import roc_auc_score

    from nodescope.evaluation import roc_auc

    def auc(d: pd.DataFrame) -> float | None:
        y = d["y_true"].astype(str).to_numpy()
        if len(set(y)) < 2:
            return None
        if positive is not None:
            return roc_auc((y == positive).astype(int), d[f"p_{positive}"].to_numpy(float)).estimate
        present = [c for c in classes if c in set(y)]
        if len(present) < len(classes):
            return None
        return float(roc_auc_score(y, d[[f"p_{c}" for c in classes]].to_numpy(float), multi_class="ovr",
                                   average="macro", labels=list(classes)))

    out: dict[str, Any] = {"metric": "AUC" if positive else "macro one-vs-rest AUC", "splits": {}}
    for split, d in pred.groupby("split", sort=False):
        rec: dict[str, Any] = {"n": len(d), "patients": int(d["patient_id"].nunique()), "auc": auc(d)}
        if split == "cv":
            rec["auc_per_fold"] = {int(k): auc(g) for k, g in d.groupby("fold")}
        if positive is not None and threshold is not None:
            # the threshold was tuned on the pooled cv rows: their sensitivity/specificity are in-sample (optimistic)
            rec["threshold_applied"] = ("in-sample: tuned on these same rows" if split == "cv"
                                        else "chosen on cv rows, applied unchanged")
            y = d["y_true"].astype(str).to_numpy() == positive
            yhat = d[f"p_{positive}"].to_numpy(float) >= threshold
            rec["sensitivity"] = float((yhat & y).sum() / y.sum()) if y.sum() else None
            rec["specificity"] = float((~yhat & ~y).sum() / (~y).sum()) if (~y).sum() else None
        out["splits"][str(split)] = rec
    return out


def _precision(cfg: TrainConfig) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    return "16-mixed" if gpu else "32-true"


def _threads(cfg: TrainConfig) -> None:
    n = cfg.num_threads
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            n = os.cpu_count() or 1
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
        net = ClassifierNet(cfg.backbone, n_classes, **common)
        info = load_weights(net.backbone, cfg.backbone, cfg.weights, in_chans=cfg.channels,
                            image_size=cfg.image_size)
        arch = {"backbone": cfg.backbone, "num_classes": n_classes, **common}
    return net, {"architecture": arch, "weights_init": info.to_dict()}


def _normalisation(cfg: TrainConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from nodescope.models import default_normalisation

    return default_normalisation(cfg.backbone, cfg.channels)


def _check_pretrain_overlap(cfg: TrainConfig, samples: Samples) -> str | None:
    p = Path(cfg.weights)
    f = p / "pretrain_images.json"
    if not (p.is_dir() and f.is_file()):
        return None
    pre = set(json.loads(f.read_text()))
    hit = [i for i, h in enumerate(samples.hashes) if h in pre]
    if not hit:
        return None
    msg = (f"weights {p}: {len(hit)} image(s) of this experiment were used for pretraining (identical pixels); "
           f"they fall in test folds or test sets, which makes the evaluation optimistic. Pretrain without them, "
           f"or pass allow_pretrain_overlap=True (--allow-pretrain-overlap) to proceed anyway.")
    if not cfg.allow_pretrain_overlap:
        raise ValueError(msg)
    log.warning(msg)
    return msg


def _inner_val(cfg: TrainConfig, samples: Samples, train_idx: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from nodescope.data import make_splits

    if cfg.val_fraction <= 0:
        return train_idx, np.zeros(0, np.int64)
    fr = samples.frame.iloc[train_idx]
    sp = make_splits(fr, method="holdout", group_col="group", test_size=cfg.val_fraction, seed=seed)
    is_val = (sp["part"] == "test").to_numpy()
    return train_idx[~is_val], train_idx[is_val]


def _fit(cfg: TrainConfig, samples: Samples, train_idx: np.ndarray, val_idx: np.ndarray, workdir: Path,
         seed: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Train one model; returns (module with best weights, bundle meta parts, fit info)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from nodescope.training._augment import UltrasoundAugment
    from nodescope.training._data import ImageDataModule
    from nodescope.training._module import ClassifierModule

    L.seed_everything(seed, workers=True, verbose=False)
    k = len(samples.classes)
    net, parts = _build_net(cfg, k)
    mean, std = _normalisation(cfg)
    y = samples.y
    cw = None
    if cfg.imbalance == "class_weights":
        counts = np.bincount(y[train_idx], minlength=k).astype(float)
        cw = (counts.sum() / (k * np.maximum(counts, 1))).tolist()
    module = ClassifierModule(net, mean, std, augment=UltrasoundAugment.from_level(cfg.augment), class_weights=cw,
                              optimizer=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                              scheduler=cfg.scheduler, step_size=cfg.step_size, gamma=cfg.gamma,
                              max_epochs=cfg.epochs, modality_dropout=cfg.modality_dropout,
                              fusion=cfg.fusion == "intermediate")
    dm = ImageDataModule(samples.images, torch.tensor(y), train_idx, val_idx, batch_size=cfg.batch_size,
                         oversample=cfg.imbalance == "oversample", seed=seed, present=samples.present)
    has_val = len(val_idx) > 0
    ckpt = ModelCheckpoint(dirpath=workdir / "checkpoints", filename="best-{epoch}",
                           monitor="val_loss" if has_val else None, mode="min", save_last=True, save_top_k=1)
    callbacks: list[Any] = [ckpt]
    if has_val and cfg.patience > 0:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=cfg.patience, mode="min"))
    loggers: list[Any] = [CSVLogger(workdir, name="logs")]
    if cfg.tensorboard:
        loggers.append(TensorBoardLogger(workdir / "logs", name="tensorboard", default_hp_metric=False))
    trainer = L.Trainer(
        max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy,
        precision=_precision(cfg), deterministic=cfg.deterministic, logger=loggers,
        callbacks=callbacks, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
        log_every_n_steps=1, default_root_dir=workdir,
    )
    last = workdir / "checkpoints" / "last.ckpt"
    resume = str(last) if cfg.resume and last.is_file() else None
    if resume:
        log.info("resuming %s from %s", workdir.name, last)
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


def _drop_checkpoints(cfg: TrainConfig, workdir: Path) -> None:
    """Remove a finished model's Lightning checkpoints (weights + optimiser state, ~3x the bundle) unless kept.

    A finished fold is resumed from its predictions and bundle, never from its checkpoints; an interrupted fold keeps
    ``last.ckpt`` because it never reaches this point.
    """
    if not cfg.keep_checkpoints:
        shutil.rmtree(workdir / "checkpoints", ignore_errors=True)


def _pred_frame(samples: Samples, idx: np.ndarray, probs: np.ndarray, split: str, cfg: TrainConfig,
                run_id: str, fold: np.ndarray | int) -> pd.DataFrame:
    f = samples.frame.iloc[idx]
    out = pd.DataFrame({"patient_id": f["patient_id"].to_numpy(), "y_true": f["label"].to_numpy()})
    for j, c in enumerate(samples.classes):
        out[f"p_{c}"] = probs[:, j]
    out["split"] = split
    out["fold"] = fold
    out["model"] = cfg.name
    out["run_id"] = run_id
    for col in ("image", "lesion_id", "site", "modality", "view", "group"):
        if col in f.columns:
            out[col] = f[col].to_numpy()
    return out


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
                     modalities=tuple(modalities) if modalities else None)
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


#: Config fields a resumed run must share with the run it continues (data, split, network); others (epochs, lr,
#: patience, ...) may change.
RESUME_KEYS = ("manifest", "external", "classes", "positive", "group_col", "modality", "modalities", "fusion",
               "unit_cols", "folds", "test_size", "splits_file", "val_fraction", "seed", "backbone", "weights", "head",
               "hidden", "channels", "image_size", "roi", "roi_margin")


def _check_resume(run_dir: Path, cfg: TrainConfig, splits: pd.DataFrame) -> None:
    """Refuse to resume into a run whose saved config (key fields) or splits.csv differ from this one's."""
    import yaml

    saved_cfg = run_dir / "config.yaml"
    if saved_cfg.is_file():
        old = yaml.safe_load(saved_cfg.read_text()) or {}
        new = cfg.model_dump(mode="json")
        diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in RESUME_KEYS if old.get(k) != new.get(k)]
        if diff:
            raise ValueError(f"resume: {saved_cfg} differs from this configuration in {'; '.join(diff)}; the finished "
                             "folds would not belong to this run. Use a new output folder or the saved settings")
    saved = run_dir / "splits.csv"
    if not saved.is_file():
        return
    old_sp = pd.read_csv(saved, dtype=str, keep_default_na=False)
    new_sp = splits.astype(str).reset_index(drop=True)
    if list(old_sp.columns) != list(new_sp.columns) or len(old_sp) != len(new_sp):
        raise ValueError(f"resume: {saved} has {len(old_sp)} rows with columns {list(old_sp.columns)}, this run "
                         f"{len(new_sp)} rows with {list(new_sp.columns)}; the data or the split changed")
    neq = old_sp.to_numpy() != new_sp.to_numpy()
    if neq.any():
        r, c = map(int, np.argwhere(neq)[0])
        raise ValueError(f"resume: the split differs from {saved} on {int(neq.any(axis=1).sum())} row(s), e.g. row "
                         f"{r + 2} column {old_sp.columns[c]!r}: saved {old_sp.iat[r, c]!r}, now {new_sp.iat[r, c]!r}; "
                         "use a new output folder")


def run_cv(cfg: TrainConfig) -> CVResult:
    """Run the whole cross-validation experiment described by ``cfg`` (see the module docstring)."""
    from nodescope.training._module import predict_tensor

    _threads(cfg)
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_dir.resolve().name
    samples = build_samples(cfg)
    overlap_note = _check_pretrain_overlap(cfg, samples)
    fr = samples.frame
    is_rank0 = int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0
    split_cols = [c for c in ("patient_id", "group", "image", "label", "part", "fold") if c in fr.columns]
    if cfg.resume:
        _check_resume(run_dir, cfg, fr[split_cols])
    if is_rank0:
        (run_dir / "config.yaml").write_text(cfg.to_yaml())
        fr[split_cols].to_csv(run_dir / "splits.csv", index=False)
    cv_idx = np.flatnonzero(fr["part"].to_numpy() == "cv")
    folds = sorted(set(fr["fold"].iloc[cv_idx].astype(int)))
    if len(folds) < 2:
        raise ValueError(f"need >= 2 cross-validation folds, found {folds}")
    fold_preds, fold_info, fold_modules = [], {}, []
    for k in folds:
        fdir = run_dir / "folds" / f"fold_{k}"
        fdir.mkdir(parents=True, exist_ok=True)
        test_idx = cv_idx[fr["fold"].iloc[cv_idx].to_numpy() == k]
        done = fdir / "DONE"
        if cfg.resume and done.is_file() and (fdir / "predictions.csv").is_file():
            log.info("fold %d already complete: reusing its predictions", k)
            # verbatim ids ("NA", "007", lesion "1"), numeric p_* and fold: the contract's reader
            fold_preds.append(read_predictions(fdir / "predictions.csv", positive=samples.positive).frame)
            fold_info[k] = json.loads(done.read_text())
            if cfg.final_model == "none":
                from nodescope.models import load_bundle

                fold_modules.append(load_bundle(fdir / "bundle"))
            continue
        tr = cv_idx[fr["fold"].iloc[cv_idx].to_numpy() != k]
        tr, va = _inner_val(cfg, samples, tr, cfg.seed + 1000 * (k + 1))
        module, parts, info = _fit(cfg, samples, tr, va, fdir, cfg.seed + k)
        fold_modules.append(module)
        if not is_rank0:
            continue
        probs = predict_tensor(module, samples.images, test_idx, tta=cfg.tta, present=samples.present)
        pf = _pred_frame(samples, test_idx, probs, "cv", cfg, run_id, k)
        pf.to_csv(fdir / "predictions.csv", index=False)
        _save_model(fdir / "bundle", module, parts, cfg, samples, tr, f"{cfg.name}_fold{k}", None, {},
                    {"fold": k, **info})
        fold_preds.append(pf)
        fold_info[k] = info
        done.write_text(json.dumps(info))
        _drop_checkpoints(cfg, fdir)
    if not is_rank0:
        if cfg.final_model == "refit":  # DDP: every rank must enter the refit's trainer.fit, or rank 0 waits forever
            tr, va = _inner_val(cfg, samples, cv_idx, cfg.seed + 99_999)
            _fit(cfg, samples, tr, va, run_dir / "final", cfg.seed + 9_999)
        return CVResult(run_dir, pd.DataFrame(), {})
    oof = pd.concat(fold_preds, ignore_index=True)
    oof["fold"] = oof["fold"].astype(int)
    threshold = None
    if samples.positive is not None:
        y = (oof["y_true"].astype(str) == samples.positive).to_numpy()
        # the same rule `nodescope evaluate` applies to cv rows, so the bundle and the report agree
        t = choose_threshold(y.astype(int), oof[f"p_{samples.positive}"].to_numpy(float), method="youden").threshold
        threshold = {"value": t, "method": "youden", "chosen_on": "cv (pooled out-of-fold)",
                     "rule": f"p_{samples.positive} >= value"}
        _set_fold_thresholds(run_dir, folds, threshold)
    test_idx = np.flatnonzero(fr["part"].isin(["test", "external"]).to_numpy())
    preds = [oof]
    final_info: dict[str, Any] = {}
    if cfg.final_model == "refit":
        fdir = run_dir / "final"
        tr, va = _inner_val(cfg, samples, cv_idx, cfg.seed + 99_999)
        module, parts, final_info = _fit(cfg, samples, tr, va, fdir, cfg.seed + 9_999)
        summary_pre = auc_summary(oof, samples.classes, samples.positive, threshold["value"] if threshold else None)
        for part in ("test", "external"):
            idx = test_idx[fr["part"].iloc[test_idx].to_numpy() == part]
            if len(idx):
                probs = predict_tensor(module, samples.images, idx, tta=cfg.tta, present=samples.present)
                preds.append(_pred_frame(samples, idx, probs, part, cfg, run_id, -1))
        _save_model(fdir / "bundle", module, parts, cfg, samples, cv_idx, cfg.name, threshold,
                    {"cross_validation": summary_pre}, {"refit_on": "all development (cv) data", **final_info})
        _drop_checkpoints(cfg, fdir)
    elif len(test_idx):
        for part in ("test", "external"):
            idx = test_idx[fr["part"].iloc[test_idx].to_numpy() == part]
            if len(idx):
                probs = np.mean([_predict_any(m, samples, idx, cfg.tta) for m in fold_modules], axis=0)
                preds.append(_pred_frame(samples, idx, probs, part, cfg, run_id, -1))
    pred = pd.concat(preds, ignore_index=True)
    pred.to_csv(run_dir / "predictions.csv", index=False)
    summary = auc_summary(pred, samples.classes, samples.positive, threshold["value"] if threshold else None)
    summary.update({"classes": list(samples.classes), "positive": samples.positive, "threshold": threshold,
                    "folds": {str(k): v for k, v in fold_info.items()}, "final": final_info,
                    "dropped_rows": samples.dropped, "pretrain_overlap": overlap_note,
                    "synthetic_data": cfg.synthetic_data})
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return CVResult(run_dir, pred, summary)


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
        raise ValueError("final_model='none' with fusion on resumed folds is not supported; use final_model='refit'")
    return predict_proba(m, samples.images[torch.as_tensor(idx)], tta=tta)
