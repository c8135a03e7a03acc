"""Does a BUSI classifier's heat map look at the lesion? Energy in the lesion mask and pointing game, out of fold.

A benign-vs-malignant classifier (tf_efficientnet_lite0 from the offline ImageNet weights) is trained by k-fold
cross-validation grouped by dup_group on ../shared/data/busi_256 (the 'normal' class, which has no lesion, is left
out); each image is then explained by the fold model that did not train on it, with each CAM method, and
nodescope.explain summarises energy in the lesion mask, the pointing-game hit rate and the chance level (the mask's
area fraction) per method and class with 95% bootstrap intervals that resample dup_group clusters. Prints the
out-of-fold AUC too, from the saved predictions, so the maps can be read against how good the classifier is.

Usage (2 CPU cores; about 10-15 minutes at the defaults):
    PYTHONPATH=src python bench/bench_cam.py --out /tmp/busi_cam
Tiny smoke run:
    PYTHONPATH=src python bench/bench_cam.py --out /tmp/busi_cam_smoke --subset 60 --epochs 1 --image-size 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))



def oof_explanations(run: Path, manifest: Path, out: Path, methods: list[str], seed: int,
                     group_col: str = "dup_group") -> pd.DataFrame:
    """Explain each image of ``manifest`` with the fold model of ``run`` that did not train on it; one row per image
    and method (``nodescope.explain.explain_files`` scores), with the fold."""
    from nodescope.explain import explain_files
    from nodescope.models import load_bundle

    m = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    splits = pd.read_csv(run / "splits.csv", dtype=str, keep_default_na=False)
    fold_of = splits.drop_duplicates("group").set_index("group")["fold"]
    frames = []
    for k in sorted(set(fold_of[fold_of != "-1"])):
        part = m[m[group_col].map(fold_of) == k]
        fm = out / f"manifest_fold{k}.csv"
        part.to_csv(fm, index=False)
        bundle = load_bundle(run / "folds" / f"fold_{k}" / "bundle")
        res = explain_files(bundle, [fm], out / f"cam_fold{k}", methods=methods, n_boot=50, seed=seed,
                            group_col=group_col, gallery_max=40)
        frames.append(res.scores.assign(fold=k))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    from bench_busi_cv import write_manifest

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--methods", default="gradcam,gradcampp,layercam,eigencam",
                    help="comma list (scorecam: one forward pass per channel of the 1280-channel head, slow on CPU)")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--subset", type=int, default=None, help="use about this many images (smoke test)")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: the cores this process owns)")
    args = ap.parse_args()

    from nodescope.evaluation import roc_auc
    from nodescope.explain import summarise_localisation
    from nodescope.training import TrainConfig, run_cv

    t0 = time.perf_counter()
    manifest = write_manifest(args.data / "busi_256", args.out, args.subset, args.seed, "dup_group",
                              ("benign", "malignant"))
    cfg = TrainConfig(recipe="none",  # the documented figures: every step as given here
                      manifest=manifest, out=args.out / "run", name="busi_cam", group_col="dup_group",
                      classes=["benign", "malignant"], positive="malignant", weights="imagenet",
                      image_size=args.image_size, epochs=args.epochs, folds=args.folds, seed=args.seed,
                      final_model="none", accelerator="cpu", val_fraction=0.0, patience=0,
                      num_threads=args.threads)
    run_cv(cfg)
    t_train = time.perf_counter() - t0
    preds = pd.read_csv(args.out / "run" / "predictions.csv", dtype={"patient_id": str})
    cv = preds[preds["split"] == "cv"]
    auc = roc_auc((cv["y_true"] == "malignant").to_numpy(int), cv["p_malignant"].to_numpy(float), method="delong")

    scores = oof_explanations(args.out / "run", manifest, args.out, args.methods.split(","), args.seed)
    scores.to_csv(args.out / "explanations_oof.csv", index=False)
    summary = summarise_localisation(scores, n_boot=args.n_boot, seed=args.seed).to_frame()
    summary.to_csv(args.out / "summary_oof.csv", index=False)
    wall = time.perf_counter() - t0

    print(f"BUSI benign vs malignant, {len(cv)} images, {args.folds}-fold CV by dup_group, tf_efficientnet_lite0 "
          f"(ImageNet), {args.image_size} px, {args.epochs} epochs: OOF AUC {auc.estimate:.3f} "
          f"({auc.ci_low:.3f}-{auc.ci_high:.3f}, DeLong)")
    print("out-of-fold maps; 95% CIs resample dup_group clusters; chance = mean mask area fraction")
    chance = {(r["method"], r["class"]): r["estimate"] for r in summary.to_dict("records")
              if r["metric"] == "mask_fraction"}
    for r in summary.to_dict("records"):
        if r["metric"] != "mask_fraction":
            print(f"  {r['method']:9s} {r['class']:9s} {r['metric']:15s} {r['estimate']:.3f} "
                  f"({r['ci_low']:.3f}-{r['ci_high']:.3f}) n={r['n']}  chance {chance[(r['method'], r['class'])]:.3f}")
    print(f"wall {wall / 60:.1f} min (training {t_train / 60:.1f} min)")
    (args.out / "bench_cam.json").write_text(json.dumps({
        "auc": auc.to_dict(), "summary": summary.to_dict(orient="records"), "wall_s": wall, "train_s": t_train,
        "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))


if __name__ == "__main__":
    main()
