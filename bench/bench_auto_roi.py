"""Issue 11 part 3 / issue 14: re-score the automatic-ROI rows of the ROI variants with other segmenters:
the saved fold bundles of each variant, the BrEaST manifest of the run, automatic crops from the given segmenters'
mean fusion; AUC (DeLong), calibration, sens/spec at the BUSI threshold, and the paired tests vs the manual crop and
the whole image, from the saved prediction files. Writes RUN/external_auto_roi_TAG.csv per run and a JSON summary.

Usage (as in docs/benchmarks.md: the ROI variants of bench_external.py runs, segmenters of a bench_segment.py run):
    PYTHONPATH=src python bench/bench_auto_roi.py SEG_OUT TAG RUN [RUN ...] --json OUT.json
SEG_OUT holds seg_unet, seg_unetplusplus and seg_deeplabv3plus (their final/bundle are fused by the mean); each RUN is
a variant folder of bench_external.py (folds/fold_*/bundle, predictions.csv; manifest_breast.csv beside it). The
whole-image twin (baseline/all) is looked up beside the run, then under --twins."""
import argparse
import json
from pathlib import Path

from bench_external import WHOLE_IMAGE_TWIN, external_rows, fold_mean, metrics, paired_auc_tests

from nodescope.models import load_bundle
from nodescope.segment import Segmenter, automatic_roi

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("seg_root", type=Path)
ap.add_argument("tag")
ap.add_argument("runs", type=Path, nargs="+")
ap.add_argument("--twins", type=Path, default=None, help="another bench_external.py output with the whole-image twins")
ap.add_argument("--json", type=Path, required=True)
args = ap.parse_args()
if args.json.exists():
    ap.error(f"{args.json} exists; not overwritten")
seg_root, tag, runs = args.seg_root, args.tag, args.runs
seg = Segmenter([seg_root / f"seg_{a}/final/bundle" for a in ("unet", "unetplusplus", "deeplabv3plus")])
src = automatic_roi(seg)
res = {}
for run in runs:
    bundles = sorted(run.glob("folds/fold_*/bundle"))
    if not bundles:
        raise SystemExit(f"{run}: no folds/fold_*/bundle")
    thr = float(load_bundle(bundles[0]).threshold)
    breast = run.parent / "manifest_breast.csv"
    target = run / f"external_auto_roi_{tag}.csv"
    if target.exists():
        raise SystemExit(f"{target} exists; choose another TAG (nothing is overwritten)")
    auto = fold_mean(bundles, breast, mask_source=src)
    auto.to_csv(target, index=False)
    r = {"auto": metrics(auto, thr)}
    ext = external_rows(run / "predictions.csv")
    twin = WHOLE_IMAGE_TWIN.get(run.name)
    frames = {"b_manual": ext, "c_auto": auto}
    if twin:
        for root in [d for d in (run.parent, args.twins) if d is not None]:
            if (root / twin / "predictions.csv").exists():
                frames["a_whole"] = external_rows(root / twin / "predictions.csv")
                break
    found = paired_auc_tests(frames, [("b_manual", "c_auto"), ("a_whole", "c_auto")])
    if "error" in found:
        raise SystemExit(f"{run}: {found['error']}")
    r.update(found)
    res[run.name] = r
    a = r["auto"]
    print(run.name, f"auto ROI ({tag}) AUC {a['auc']:.3f} ({a['ci'][0]:.3f}-{a['ci'][1]:.3f}) "
          f"int {a['cal_intercept']:.2f} slope {a['cal_slope']:.2f} sens/spec {a['sens']:.2f}/{a['spec']:.2f}",
          {k: v for k, v in r.items() if k != "auto"}, flush=True)
args.json.write_text(json.dumps(res, indent=2, default=float))
