"""Issue 14 benchmark: train on BUSI only, test at another centre (BrEaST, Poland); ablation of the transfer options.

Every variant trains on all BUSI benign/malignant images (`dup_group` groups) with the same folds and seed (the
first variant's splits.csv is reused by the others), and scores BrEaST (`../shared/data/breast_lesions_usg`,
benign/malignant, one image per patient) as an external set with the mean of the fold models (a fold ensemble; no
refit). For each variant and test set the table gives AUC with its DeLong 95% CI, the calibration intercept and
slope (logistic recalibration, as rms val.prob), and sensitivity/specificity at the threshold chosen on BUSI (Youden
on the pooled out-of-fold predictions, stored in every fold bundle). Rows:

  BUSI OOF     internal, out of fold (sens/spec in-sample: the threshold was tuned on these rows)
  BrEaST       external, as trained (the run's own predictions.csv rows)
  BrEaST+AdaBN external, BatchNorm statistics of each fold model re-estimated on the BrEaST images (no labels)
  BrEaST auto  with --segmenter, for ROI variants: the crop from the automatic mask instead of the drawn one

Variants: `recipe` is the default of `nodescope train` (`--recipe transfer`: the ingredients of `all` plus
temperature scaling on the out-of-fold rows); every other variant is `--recipe none` plus its own options, so
`baseline` is the plain model and each ingredient is measured alone. Whole-image variants never use a mask at test
time; `roi-*` variants crop to the manual mask at training and test;
`two-view*` variants (`--roi two-view`, context_scale 3) see the manual-mask crop and a context crop of 3x its box
through one shared backbone (about twice the compute of `roi-*`), with the manual mask at training and test (and the
automatic mask in the "BrEaST auto ROI" row).
Every number is computed from the saved predictions (written beside each run as predictions.csv and
external_*.csv). Recipe: tf_efficientnet_lite0, ImageNet weights, 160 px, 10 epochs, AdamW 3e-4, batch 32, no
inner validation, mirrored TTA, 2 folds (as the issue's table).

Usage (the real run; see --budget-minutes):
    PYTHONPATH=src python bench/bench_external.py --out /tmp/bench_external
Smoke run (tiny subsets, 64 px, 1 epoch; a few minutes):
    PYTHONPATH=src python bench/bench_external.py --out /tmp/bench_external_smoke --smoke
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_busi_cv import subset_groups  # same folder: the scripts run as files

from nodescope.training._config import RECIPES

#: The ingredients of the default recipe (`nodescope train --recipe transfer`), as TrainConfig values.
RECIPE_PREP: dict[str, Any] = {k: RECIPES["transfer"][k] for k in ("scan_crop", "grey", "intensity", "marks")}
RECIPE_AUG: dict[str, Any] = {k: RECIPES["transfer"][k] for k in ("aug_depth", "aug_tgc", "aug_blur", "aug_calipers")}

#: name -> TrainConfig overrides; the order is the order of the runs (most informative first, for the budget).
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "all": {**RECIPE_PREP, **RECIPE_AUG},
    "recipe": {"recipe": "transfer"},  # the default of `nodescope train`: `all` + temperature scaling (+ TTA)
    "scan-crop": {"scan_crop": True},
    "tint": {"grey": "tint"},
    "marks": {"marks": "inpaint"},
    "percentile": {"intensity": "percentile"},
    "clahe": {"intensity": "clahe"},
    "match": {"intensity": "match"},
    "us-aug": dict(RECIPE_AUG),
    "mixup": {"mixup": 0.2},
    "swa": {"weight_averaging": "swa"},
    "roi-baseline": {"roi": "mask"},
    "roi-all": {"roi": "mask", **RECIPE_PREP, **RECIPE_AUG},
    "two-view": {"roi": "two-view", "context_scale": 3.0},
    "two-view-all": {"roi": "two-view", "context_scale": 3.0, **RECIPE_PREP, **RECIPE_AUG},
}


#: ROI variant -> the whole-image variant it is compared with (a) in the paired tests.
WHOLE_IMAGE_TWIN = {"roi-baseline": "baseline", "roi-all": "all", "two-view": "baseline", "two-view-all": "all"}


def busi_manifest(data: Path, out: Path, subset: int | None, seed: int) -> Path:
    src = data / "busi_256"
    df = pd.read_csv(src / "labels.csv", dtype=str, keep_default_na=False)
    df = df[df["label"].isin(["benign", "malignant"])]
    if subset:
        df = subset_groups(df, "dup_group", subset, seed)
    df = df.assign(image=[str((src / v).resolve()) for v in df["image"]],
                   mask=[str((src / v).resolve()) for v in df["mask"]])
    path = out / "manifest_busi.csv"
    df.to_csv(path, index=False)
    return path


def breast_manifest(data: Path, out: Path, subset: int | None, seed: int) -> Path:
    src = data / "breast_lesions_usg"
    df = pd.read_csv(src / "labels.csv", dtype=str, keep_default_na=False)
    df = df[df["label"].isin(["benign", "malignant"])]
    if subset:
        df = pd.concat([g.sample(min(len(g), subset // 2), random_state=seed) for _, g in df.groupby("label")])
    df = df.assign(image=[str((src / v).resolve()) for v in df["image"]],
                   mask=[str((src / v).resolve()) for v in df["mask"]], dup_group=df["patient_id"], split="external",
                   site="breast")
    path = out / "manifest_breast.csv"
    df.to_csv(path, index=False)
    return path


def metrics(frame: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """AUC (DeLong CI), calibration intercept/slope and sens/spec at ``threshold``, from a predictions frame."""
    from nodescope.evaluation import calibration_metrics, roc_auc

    y = (frame["y_true"] == "malignant").to_numpy(int)
    p = frame["p_malignant"].to_numpy(float)
    auc = roc_auc(y, p, method="delong")
    cal = calibration_metrics(y, np.clip(p, 1e-6, 1 - 1e-6), n_boot=200, hl_fitted_on_sample=False)
    pos = p >= threshold
    return {"n": len(y), "n_pos": int(y.sum()), "auc": auc.estimate, "ci": [auc.ci_low, auc.ci_high],
            "cal_intercept": cal.calibration_in_the_large.estimate, "cal_slope": cal.calibration_slope.estimate,
            "sens": float(pos[y == 1].mean()), "spec": float((~pos)[y == 0].mean())}


def fold_mean(bundles: list[Path], manifest: Path, **kw: Any) -> pd.DataFrame:
    """Mean probability of the fold bundles on a manifest (as the run scores external rows), via predict_files."""
    from nodescope.models import load_bundle, predict_files

    frames = [predict_files(load_bundle(b), [manifest], split="external", **kw) for b in bundles]
    out = frames[0].copy()
    for col in [c for c in out.columns if c.startswith("p_")]:
        out[col] = np.mean([f[col].to_numpy(float) for f in frames], axis=0)
    return out


def adabn_fold_mean(bundles: list[Path], external: pd.DataFrame) -> pd.DataFrame:
    """The run's external rows re-scored with AdaBN: each fold model's BatchNorm statistics re-estimated on all the
    external images (prepared once, as the bundles' input spec says), then the mean over the fold models."""
    import torch

    from nodescope.data import read_image
    from nodescope.models import Predictor, load_bundle

    first = load_bundle(bundles[0])
    spec = first.spec
    imgs = torch.stack([spec.prepare(read_image(p), mask=read_image(m).pixels if spec.needs_mask else None)[0]
                        for p, m in zip(external["image"], external["mask"], strict=True)])
    probs = []
    for b in bundles:
        pred = Predictor(load_bundle(b), threads=torch.get_num_threads())
        pred.adapt_batchnorm(imgs)
        probs.append(pred.predict(imgs).probabilities)  # TTA as the bundle records (input.tta)
    out = external.copy()
    for j, c in enumerate(first.classes):
        out[f"p_{c}"] = np.mean(probs, axis=0)[:, j]
    out["bn_adapted"] = len(imgs)
    return out


def run_variant(name: str, overrides: dict[str, Any], args: argparse.Namespace, busi: Path, breast: Path,
                splits: Path | None) -> dict[str, Any]:
    from nodescope.models import load_bundle
    from nodescope.training import TrainConfig, run_cv

    run_dir = args.out / name
    base = dict(recipe="none",  # every step as given here; the "recipe" variant asks for the default recipe
                manifest=busi, out=run_dir, name=f"busi_{name}", external=[breast], group_col="dup_group",
                classes=["benign", "malignant"], positive="malignant", backbone=args.backbone, weights="imagenet",
                image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                folds=args.folds, seed=args.seed, final_model="none", accelerator="cpu", tta=True, val_fraction=0.0,
                splits_file=splits, overwrite=True, channels_last=not args.plain_layout)
    cfg = TrainConfig(**{**base, **overrides})
    res = run_cv(cfg)
    pred = pd.read_csv(run_dir / "predictions.csv", dtype={"patient_id": str})
    bundles = [run_dir / "folds" / f"fold_{k}" / "bundle" for k in range(args.folds)]
    thr = float(load_bundle(bundles[0]).threshold)  # the pooled out-of-fold (BUSI) threshold, in every fold bundle
    rows = {"BUSI OOF": metrics(pred[pred["split"] == "cv"], thr),
            "BrEaST": metrics(pred[pred["split"] == "external"], thr)}
    ext = pred[pred["split"] == "external"].merge(pd.read_csv(breast, dtype=str)[["image", "mask"]], on="image")
    adapted = adabn_fold_mean(bundles, ext)
    adapted.to_csv(run_dir / "external_adabn.csv", index=False)
    rows["BrEaST+AdaBN"] = metrics(adapted, thr)
    if overrides.get("roi") in ("mask", "two-view") and args.segmenter:
        from nodescope.segment import Segmenter, automatic_roi

        auto = fold_mean(bundles, breast, mask_source=automatic_roi(Segmenter(args.segmenter)))
        auto.to_csv(run_dir / "external_auto_roi.csv", index=False)
        rows["BrEaST auto ROI"] = metrics(auto, thr)
    return {"overrides": overrides, "threshold": thr, "rows": rows,
            "auc_per_fold": res.summary["splits"]["cv"].get("auc_per_fold")}


def external_rows(path: Path) -> pd.DataFrame:
    """The external (BrEaST) rows of a saved prediction file (all rows of a file without a ``split`` column)."""
    f = pd.read_csv(path, dtype={"patient_id": str})
    return f[f["split"] == "external"] if "split" in f.columns else f


def paired_auc_tests(frames: dict[str, pd.DataFrame], pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """DeLong's paired test for each ``(a, b)`` in ``pairs`` whose both frames are given, on the images all frames
    share (``image``, ``y_true``, ``p_malignant`` columns); an ``error`` entry when they do not share every image."""
    from nodescope.evaluation import compare_auc

    merged = None
    for k, f in frames.items():
        g = f[["image", "y_true", "p_malignant"]].rename(columns={"p_malignant": k})
        merged = g if merged is None else merged.merge(g, on=["image", "y_true"], validate="one_to_one")
    assert merged is not None
    if any(len(merged) != len(f) for f in frames.values()):
        return {"error": f"the prediction files do not share their images "
                         f"({[len(f) for f in frames.values()]} rows, {len(merged)} in common)"}
    y = (merged["y_true"] == "malignant").to_numpy(int)
    tests: dict[str, Any] = {}
    for a, b in pairs:
        if a in merged and b in merged:
            t = compare_auc(y, merged[a].to_numpy(float), merged[b].to_numpy(float))
            d = t.difference
            tests[f"{a} vs {b}"] = {"n": len(y), "difference": d.estimate, "ci": [d.ci_low, d.ci_high],
                                    "p_value": t.p_value}
    return tests


def paired_tests(out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """DeLong's paired test on BrEaST (issue 11, part 3): whole image (a) vs manual-mask crop (b) vs automatic crop
    (c), for each ROI variant that has automatic-crop predictions, from the saved prediction files."""
    tests: dict[str, Any] = {}
    for roi in [n for n in results if (out / n / "external_auto_roi.csv").exists()]:
        base = WHOLE_IMAGE_TWIN.get(roi)  # the whole-image variant with the same preprocessing, if any
        frames = {"b_manual_crop": external_rows(out / roi / "predictions.csv"),
                  "c_automatic_crop": external_rows(out / roi / "external_auto_roi.csv")}
        if base is not None and base in results:
            frames["a_whole_image"] = external_rows(out / base / "predictions.csv")
        found = paired_auc_tests(frames, [("b_manual_crop", "c_automatic_crop"), ("a_whole_image", "c_automatic_crop")])
        if "error" in found:
            tests[roi] = {"error": f"{roi}: {found['error']}"}
            continue
        tests.update({f"{roi}: {k}": v for k, v in found.items()})
    return tests


def table(results: dict[str, Any]) -> str:
    lines = ["| variant | test | n (malignant) | AUC (95% CI) | cal. intercept | cal. slope | sens / spec at BUSI "
             "threshold | drop vs internal |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        internal = r["rows"]["BUSI OOF"]["auc"]
        for test, m in r["rows"].items():
            drop = "" if test == "BUSI OOF" else f"{internal - m['auc']:+.3f}"
            lines.append(f"| {name} | {test} | {m['n']} ({m['n_pos']}) | {m['auc']:.3f} ({m['ci'][0]:.3f}-"
                         f"{m['ci'][1]:.3f}) | {m['cal_intercept']:.2f} | {m['cal_slope']:.2f} | {m['sens']:.2f} / "
                         f"{m['spec']:.2f} | {drop} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--image-size", type=int, default=160)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--splits", type=Path, default=None,
                    help="a splits.csv of an earlier run to reuse (same folds as that run); default: the first "
                         "variant's folds, shared by the others")
    ap.add_argument("--segmenter", type=Path, action="append", default=[],
                    help="segmenter bundle(s) for the automatic-ROI rows of roi-* and two-view* variants")
    ap.add_argument("--budget-minutes", type=float, default=45.0,
                    help="no variant is started whose expected time (the mean of those done; 7 min for the first) "
                         "would end past this budget; skipped variants are listed")
    ap.add_argument("--plain-layout", action="store_true",
                    help="train in the plain memory layout (--no-channels-last), as the runs before 2026-12-06 did: "
                         "to add variants comparable with those runs' figures")
    ap.add_argument("--smoke", action="store_true", help="tiny: 40 BUSI and 24 BrEaST images, 64 px, 1 epoch")
    args = ap.parse_args()
    if args.smoke:
        args.image_size, args.epochs, args.batch_size = 64, 1, 8
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    return args


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    busi = busi_manifest(args.data, args.out, 40 if args.smoke else None, args.seed)
    breast = breast_manifest(args.data, args.out, 24 if args.smoke else None, args.seed)
    start, results, walls, skipped = time.perf_counter(), {}, [], []
    splits = args.splits
    for name in args.variants.split(","):
        elapsed = (time.perf_counter() - start) / 60
        expect = float(np.mean(walls)) if walls else 7.0
        if elapsed + expect > args.budget_minutes:
            skipped.append(name)
            print(f"{name}: skipped (budget: {elapsed:.1f} min used, about {expect:.1f} min needed, "
                  f"{args.budget_minutes:g} allowed)", flush=True)
            continue
        t0 = time.perf_counter()
        results[name] = run_variant(name, VARIANTS[name], args, busi, breast, splits)
        walls.append((time.perf_counter() - t0) / 60)
        results[name]["wall_min"] = walls[-1]
        splits = splits or args.out / name / "splits.csv"  # every later variant shares these folds
        rows = results[name]["rows"]
        partial = {"args": {k: str(v) for k, v in vars(args).items()}, "variants": results, "complete": False}
        (args.out / "bench_external.partial.json").write_text(json.dumps(partial, indent=2))  # survives a kill
        print(f"{name}: internal AUC {rows['BUSI OOF']['auc']:.3f}, BrEaST {rows['BrEaST']['auc']:.3f} "
              f"(AdaBN {rows['BrEaST+AdaBN']['auc']:.3f}; slope {rows['BrEaST']['cal_slope']:.2f} -> "
              f"{rows['BrEaST+AdaBN']['cal_slope']:.2f}), {walls[-1]:.1f} min", flush=True)
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "variants": results, "skipped": skipped,
              "paired_tests": paired_tests(args.out, results), "wall_min": (time.perf_counter() - start) / 60}
    (args.out / "bench_external.json").write_text(json.dumps(report, indent=2))
    print(table(results))
    for k, t in report["paired_tests"].items():
        if "error" in t:
            print(f"{k}: {t['error']}")
            continue
        print(f"{k}: difference {t['difference']:+.3f} ({t['ci'][0]:+.3f} to {t['ci'][1]:+.3f}), "
              f"p = {t['p_value']:.3g}, n = {t['n']}")
    print(f"total {report['wall_min']:.1f} min; skipped: {', '.join(skipped) or 'none'}")


if __name__ == "__main__":
    main()
