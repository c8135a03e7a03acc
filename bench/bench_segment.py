"""Segmentation benchmark (issue 11): BUSI k-fold Dice per architecture and fused; BrEaST external Dice and
detection; classification AUC on BrEaST with whole image vs manual-mask crop vs automatic crop; masks per second.

1. BUSI benign + malignant, k-fold CV grouped by ``dup_group`` (``nodescope segment train`` per architecture, same
   folds for all): out-of-fold Dice (mean, 95% patient-bootstrap CI) of each architecture, and of the fusions
   (mean, vote, STAPLE) of the fold models applied to their own held-out fold.
2. External: each architecture's refit on all of BUSI and their fusions applied to BrEaST
   (``../shared/data/breast_lesions_usg``): Dice, detection rate, HD95 in pixels (the release's ``pixel_size``
   column states no unit -- its values, ~0.008 per pixel over ~500 px, read like cm -- so no mm are claimed).
3. Classifier trained on BUSI only (benign vs malignant): (a) whole image, (b) manual-mask ROI crop, (c) the (b)
   classifier on automatic ROI crops from the fused segmenter. AUC with DeLong 95% CIs on BrEaST; (b) vs (c) and
   (a) vs (c) by DeLong's paired test.
4. Inference speed: masks per second of each member and of the fused segmenter, PyTorch and ONNX Runtime (one image
   at a time, at the original size: decoding excluded, preprocessing and the inverse transform included).

Every figure is computed from the saved masks and predictions under ``--out``; the JSON of all figures is written to
``--out/bench_segment.json``.

Usage (full run; the issue's budget is 60 minutes on 2 CPU cores for part 1 -- use a GPU or reduce --image-size):
    PYTHONPATH=src python bench/bench_segment.py --out /tmp/seg_bench
The runs reported in docs/benchmarks.md (78 min on 2 cores shared with other jobs; 42.5 min idle with channels-last
training, and 66 min with ``--epochs 11``; part 3 skipped here because bench_external.py's
``baseline`` / ``roi-baseline`` variants with ``--segmenter OUT/seg_*/final/bundle`` measure it without training the
classifiers a second time):
    PYTHONPATH=src python bench/bench_segment.py --out /tmp/seg_bench --busi ../shared/data/busi_256 \
        --image-size 96 --epochs 8 --lr 1e-3 --skip-classification
Tiny smoke run (a few minutes):
    PYTHONPATH=src python bench/bench_segment.py --out /tmp/seg_smoke --subset 40 --external-subset 20 \
        --epochs 1 --image-size 64 --archs unet,monai_unet --cls-epochs 1 --folds 2 --n-boot 200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_busi_cv import subset_groups  # same folder: the scripts run as files

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"


def write_manifest(src: Path, out: Path, name: str, subset: int | None, classes: tuple[str, ...], seed: int,
                   group_col: str) -> Path:
    """A copy of ``src/labels.csv`` restricted to ``classes`` (and to whole groups up to ``subset`` rows), with
    absolute image and mask paths."""
    df = pd.read_csv(src / "labels.csv", dtype=str, keep_default_na=False)
    df = df[df["label"].isin(classes) & (df["mask"] != "")]
    if subset:
        df = subset_groups(df, group_col, subset, seed)
    df = df.assign(image=[str((src / v).resolve()) for v in df["image"]],
                   mask=[str((src / v).resolve()) for v in df["mask"]], split="")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"manifest_{name}.csv"
    df.to_csv(path, index=False)
    return path


def dice_row(summary: pd.DataFrame, model: str, split: str) -> dict[str, float]:
    s = summary[(summary["model"] == model) & (summary["split"] == split)].set_index("metric")
    return {m: [float(s.loc[m, "estimate"]), float(s.loc[m, "ci_low"]), float(s.loc[m, "ci_high"])]
            for m in ("dice", "iou", "hd95", "detection_rate") if m in s.index}


def segment_cv(args: argparse.Namespace, busi: Path) -> dict[str, Path]:
    from nodescope.segment import SegmentConfig, run_segment_cv

    runs = {}
    for arch in args.archs:
        t0 = time.perf_counter()
        cfg = SegmentConfig.build(manifest=busi, out=args.out / f"seg_{arch}", name=arch, architecture=arch,
                                  encoder=args.encoder, weights="none" if arch == "monai_unet" else args.weights,
                                  group_col="dup_group", folds=args.folds, val_fraction=args.val_fraction,
                                  image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size,
                                  lr=args.lr, patience=args.patience, seed=args.seed, tta=True,
                                  num_threads=args.threads, overwrite=args.overwrite)
        run_segment_cv(cfg)
        runs[arch] = cfg.out
        print(f"[{arch}] trained {args.folds} folds + refit in {time.perf_counter() - t0:.0f} s", flush=True)
    return runs


def fused_oof(args: argparse.Namespace, runs: dict[str, Path]) -> pd.DataFrame:
    """Members and fusions of the fold models on their own held-out fold, scores pooled over folds."""
    from nodescope.segment import evaluate_segmenters

    first = next(iter(runs.values()))
    pred = pd.read_csv(first / "predictions.csv", dtype=str, keep_default_na=False)
    split = pd.read_csv(first / "splits.csv", dtype=str, keep_default_na=False)
    for r in runs.values():  # every architecture must share the folds, or the comparison is not paired
        other = pd.read_csv(r / "splits.csv", dtype=str, keep_default_na=False)
        if not other.equals(split):
            raise SystemExit(f"{r}: another split than {first}")
    scores = []
    for k in sorted(set(pred["fold"])):
        rows = pred[pred["fold"] == k]
        man = pd.DataFrame({"patient_id": rows["patient_id"], "dup_group": rows["group"],
                            "image": rows["image_path"], "label": rows["label"], "mask": rows["mask"]})
        mpath = args.out / f"fold_{k}_manifest.csv"
        man.to_csv(mpath, index=False)
        ev = evaluate_segmenters([r / "folds" / f"fold_{k}" / "bundle" for r in runs.values()], mpath,
                                 args.out / f"oof_fold_{k}", group_col="dup_group", n_boot=0, split="cv")
        scores.append(ev.scores.assign(model=[m.replace(f"_fold{k}", "") for m in ev.scores["model"]]))
    return pd.concat(scores, ignore_index=True)


def classification(args: argparse.Namespace, busi: Path, breast: Path, runs: dict[str, Path]) -> dict[str, object]:
    from nodescope.evaluation import compare_auc, roc_auc
    from nodescope.models import load_bundle, predict_files
    from nodescope.segment import Segmenter, automatic_roi
    from nodescope.training import TrainConfig, run_cv

    out: dict[str, object] = {}
    bundles = {}
    for roi in ("none", "mask"):
        cfg = TrainConfig(recipe="none",  # the documented figures: every step as given here
                          manifest=busi, out=args.out / f"cls_{roi}", name=f"cls_{roi}", group_col="dup_group",
                          classes=["benign", "malignant"], positive="malignant", roi=roi, weights=args.weights,
                          image_size=args.cls_image_size, epochs=args.cls_epochs, folds=args.folds,
                          val_fraction=0.0, tta=True, num_threads=args.threads, seed=args.seed,
                          overwrite=args.overwrite)
        run_cv(cfg)
        bundles[roi] = load_bundle(cfg.out / "final" / "bundle")
    seg = Segmenter([r / "final" / "bundle" for r in runs.values()], fusion=args.fusion)
    preds = {"a_whole_image": predict_files(bundles["none"], [breast], group_col="patient_id"),
             "b_manual_mask_crop": predict_files(bundles["mask"], [breast], group_col="patient_id"),
             "c_automatic_crop": predict_files(bundles["mask"], [breast], group_col="patient_id",
                                                 mask_source=automatic_roi(seg))}
    y = None
    for name, df in preds.items():
        df.to_csv(args.out / f"breast_{name}.csv", index=False)
        y = (df["y_true"] == "malignant").to_numpy(int)
        a = roc_auc(y, df["p_malignant"].to_numpy(float), method="delong")
        out[name] = {"auc": a.estimate, "ci": [a.ci_low, a.ci_high], "n": len(df)}
    p = {k: v["p_malignant"].to_numpy(float) for k, v in preds.items()}
    for a_, b_ in (("b_manual_mask_crop", "c_automatic_crop"), ("a_whole_image", "c_automatic_crop")):
        t = compare_auc(y, p[a_], p[b_])
        d = t.difference
        out[f"{a_}_vs_{b_}"] = {"difference": d.estimate, "ci": [d.ci_low, d.ci_high], "p_value": t.p_value}
    out["empty_automatic_masks"] = int(preds["c_automatic_crop"]["roi_empty"].sum())
    return out


def speed(runs: dict[str, Path], breast: Path, n: int, fusion: str, engine: str) -> dict[str, float]:
    from nodescope.data import read_image
    from nodescope.segment import Segmenter

    df = pd.read_csv(breast, dtype=str, keep_default_na=False).head(n)
    imgs = [read_image(p).pixels for p in df["image"]]
    res = {}
    for label, bundles in [*((a, [r / "final" / "bundle"]) for a, r in runs.items()),
                           (f"fusion_{fusion}", [r / "final" / "bundle" for r in runs.values()])]:
        seg = Segmenter(bundles, fusion=fusion, engine=engine)  # type: ignore[arg-type]
        seg.predict_mask(imgs[0])  # warm-up
        t0 = time.perf_counter()
        for im in imgs:
            seg.predict_mask(im)
        res[label] = len(imgs) / (time.perf_counter() - t0)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--busi", type=Path, default=SHARED / "busi")
    ap.add_argument("--breast", type=Path, default=SHARED / "breast_lesions_usg")
    ap.add_argument("--archs", type=lambda s: s.split(","), default=["unet", "unetplusplus", "deeplabv3plus"])
    ap.add_argument("--encoder", default="tf_efficientnet_lite0")
    ap.add_argument("--weights", default="imagenet")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--val-fraction", type=float, default=0.0)
    ap.add_argument("--patience", type=int, default=0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fusion", default="mean", choices=["mean", "vote", "staple"])
    ap.add_argument("--cls-image-size", type=int, default=160)
    ap.add_argument("--cls-epochs", type=int, default=10)
    ap.add_argument("--subset", type=int, default=None, help="BUSI rows (whole groups), for smoke runs")
    ap.add_argument("--external-subset", type=int, default=None)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--speed-images", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--skip-classification", action="store_true")
    args = ap.parse_args()
    from nodescope.segment import evaluate_segmenters
    from nodescope.segment._evaluate import _summaries

    t_all = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    busi = write_manifest(args.busi, args.out, "busi", args.subset, ("benign", "malignant"), args.seed, "dup_group")
    breast = write_manifest(args.breast, args.out, "breast", args.external_subset, ("benign", "malignant"),
                            args.seed, "patient_id")
    t0 = time.perf_counter()
    runs = segment_cv(args, busi)
    oof = fused_oof(args, runs)
    t_cv = time.perf_counter() - t0
    oof_summary = _summaries(oof, args.n_boot, args.seed)
    ext = evaluate_segmenters([r / "final" / "bundle" for r in runs.values()], breast, args.out / "external",
                              n_boot=args.n_boot, split="external")
    models = list(dict.fromkeys(oof["model"]))
    result: dict[str, object] = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "busi_oof": {m: dice_row(oof_summary, m, "cv") for m in models},
        "breast_external": {m: dice_row(ext.summary, m, "external") for m in models},
        "wall_s_segmentation_cv": t_cv,
    }
    print("\nBUSI out-of-fold (benign + malignant), Dice [95% CI]:")
    for m, r in result["busi_oof"].items():  # type: ignore[union-attr]
        print(f"  {m:24s} {r['dice'][0]:.3f} [{r['dice'][1]:.3f}, {r['dice'][2]:.3f}]  "
              f"detection {r['detection_rate'][0]:.3f}")
    print("BrEaST external, Dice [95% CI], detection, HD95 (px):")
    for m, r in result["breast_external"].items():  # type: ignore[union-attr]
        print(f"  {m:24s} {r['dice'][0]:.3f} [{r['dice'][1]:.3f}, {r['dice'][2]:.3f}]  "
              f"detection {r['detection_rate'][0]:.3f}  HD95 {r.get('hd95', [np.nan])[0]:.1f}")
    if not args.skip_classification:
        result["breast_classification"] = classification(args, busi, breast, runs)
        print("BrEaST classification AUC (DeLong 95% CI):")
        for k, v in result["breast_classification"].items():  # type: ignore[union-attr]
            print(f"  {k}: {v}")
    for engine in ("torch", "onnx"):
        result[f"masks_per_second_{engine}"] = sp = speed(runs, breast, args.speed_images, args.fusion, engine)
        print(f"masks per second ({engine}, {args.image_size} px):", {k: round(v, 2) for k, v in sp.items()})
    result["wall_s_total"] = time.perf_counter() - t_all
    print(f"wall time: segmentation CV {t_cv:.0f} s, total {result['wall_s_total']:.0f} s")
    (args.out / "bench_segment.json").write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
