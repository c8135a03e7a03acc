"""Issue 11: how far resolution and schedule move segmentation Dice -- one fold of one architecture.

Trains one architecture on four of the five folds of an earlier ``bench_segment.py`` run (its BUSI manifest and the
``splits.csv`` of one of its members, so the folds are exactly the benchmark's) and scores the held-out fold from the
saved masks. A probe, not a benchmark result: it is how the resolution of the 128 px segmentation run in
docs/benchmarks.md was chosen, and the held-out fold it scores is one fifth of that benchmark's evaluation images.

Usage:
    PYTHONPATH=src python bench/bench_seg_probe.py --run SEG_OUT --out OUT --arch unetplusplus --image-size 128 \
        --epochs 8 [--lr LR] [--fold 0] [--encoder tf_efficientnet_lite0]

Folds, batch size, seed, weights and (by default) learning rate are the run's (``SEG_OUT/bench_segment.json``); the
probe trains on the fixed schedule, without an inner validation split.

Writes ``OUT/result.json`` (Dice of the held-out fold, fit minutes) and ``OUT/scores.csv`` (per image); refuses an
existing OUT.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nodescope.segment._masks_io import score_table
from nodescope.segment._train import SegmentConfig, SegmentTask, build_seg_samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a bench_segment.py output (manifest_busi.csv, seg_*/)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--arch", default="unetplusplus")
    ap.add_argument("--encoder", default="tf_efficientnet_lite0")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=None, help="default: the run's")
    ap.add_argument("--fold", type=int, default=0)
    args = ap.parse_args()
    if args.out.exists():
        ap.error(f"{args.out} exists; choose another --out (nothing is overwritten)")
    splits = args.run / f"seg_{args.arch}" / "splits.csv"
    if not splits.is_file():
        splits = next(iter(sorted(args.run.glob("seg_*/splits.csv"))), None)
        if splits is None:
            ap.error(f"no seg_*/splits.csv under {args.run}")
    run = json.loads((args.run / "bench_segment.json").read_text())["settings"]  # folds, batch, seed, lr of the run
    if not 0 <= args.fold < run["folds"]:
        ap.error(f"--fold {args.fold}: the run has folds 0-{run['folds'] - 1}")
    lr = run["lr"] if args.lr is None else args.lr
    weights = "none" if args.arch == "monai_unet" else run["weights"]
    cfg = SegmentConfig(manifest=args.run / "manifest_busi.csv", out=args.out, name=args.arch, group_col="dup_group",
                        folds=run["folds"], val_fraction=0.0, architecture=args.arch,
                        encoder=args.encoder, weights=weights, image_size=args.image_size, epochs=args.epochs,
                        batch_size=run["batch_size"], lr=lr, seed=run["seed"],
                        final_model="refit", tta=True, overwrite=False)
    t0 = time.perf_counter()
    samples = build_seg_samples(cfg)
    ref = pd.read_csv(splits, dtype=str)[["image", "fold"]].rename(columns={"image": "_path", "fold": "ref_fold"})
    merged = samples.frame.merge(ref, on="_path")
    if len(merged) != len(samples.frame) or (merged["fold"].astype(int) != merged["ref_fold"].astype(int)).any():
        raise SystemExit(f"the folds rebuilt here differ from {splits}; the probe would not score the benchmark's fold")
    fold = samples.frame["fold"].to_numpy()
    test = np.flatnonzero(fold == args.fold)
    train = np.flatnonzero((fold != args.fold) & (samples.frame["part"] == "cv").to_numpy())
    task = SegmentTask(cfg, samples)
    t1 = time.perf_counter()
    fitted, _ = task.fit(train, np.array([], int), args.out / "fit", seed=run["seed"])
    t2 = time.perf_counter()
    scored = score_table(task.predict(fitted, test, "cv", args.fold), args.out)
    res = {"arch": args.arch, "encoder": args.encoder, "image_size": args.image_size, "epochs": args.epochs,
           "lr": lr, "fold": args.fold, "n_train": len(train), "n_test": len(test),
           "dice_mean": float(scored["dice"].mean()), "fit_min": (t2 - t1) / 60,
           "total_min": (time.perf_counter() - t0) / 60}
    scored.to_csv(args.out / "scores.csv", index=False)
    (args.out / "result.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
