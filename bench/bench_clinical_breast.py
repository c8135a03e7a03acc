"""The clinical stage on BrEaST (Breast-Lesions-USG, 252 benign/malignant lesions, one per patient).

Prints and writes (into --out):
  * Table 1 by pathology (benign vs malignant): age, tissue composition, symptoms, BI-RADS (table1.md / .html);
  * the clinical-only logistic model ``label ~ rcs(age, 3) + tissue`` (tissue = the first listed tissue composition),
    complete cases and multiple imputation side by side, with the bootstrap optimism-corrected C (B = --n-boot);
  * the radiologists' BI-RADS as an ordinal reader score (2 < 3 < 4a < 4b < 4c < 5): AUC with its DeLong CI;
  * with --predictions (``nodescope predict`` of a BUSI-trained classifier on this manifest) or --train-signature
    (trains that classifier here: tf_efficientnet_lite0 from the offline ImageNet weights on all BUSI benign/malignant
    images of ../shared/data/busi_256, k-fold CV grouped by dup_group for the out-of-fold operating threshold, a refit
    on all of BUSI scoring BrEaST as an external set): the full nomogram run -- clinical-only vs DL-only vs combined,
    fitted on these patients (the signature's model never saw them) -- into OUT/nomogram/;
  * with --train-signature also: the model against the radiologists -- AUC of the DL signature and of the combined
    model vs BI-RADS (DeLong, paired), and sensitivity/specificity of the model at its BUSI-chosen threshold vs
    BI-RADS >= 4a (McNemar, exact) -- and Grad-CAM energy inside the lesion mask and pointing game, out of fold on
    BUSI and by the refit on BrEaST (OUT/reader_comparison.json, OUT/cam_summary.csv).

Usage (the worked example of docs/clinical.md, one command; about 20-30 minutes on 2 idle CPU cores):
    PYTHONPATH=src python bench/bench_clinical_breast.py --out /tmp/breast_worked --train-signature
Clinical part only, or with a signature from elsewhere:
    PYTHONPATH=src python bench/bench_clinical_breast.py --out /tmp/breast_clinical [--predictions P.csv]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nodescope.clinical import fit_lrm, fit_lrm_imputed, read_clinical_table, table1, validate
from nodescope.evaluation import roc_auc

BIRADS = {"2": 2, "3": 3, "4a": 4, "4b": 5, "4c": 6, "5": 7}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def train_signature(args: argparse.Namespace) -> tuple[Path, Path]:
    """Train the BUSI classifier (CV for the threshold + refit scoring BrEaST); return (BrEaST predictions, run)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_busi_cv import write_manifest

    from nodescope.training import TrainConfig, run_cv

    busi = write_manifest(SHARED / "busi_256", args.out, None, args.seed, "dup_group", ("benign", "malignant"))
    breast = write_manifest(args.data.parent, args.out, None, args.seed, "patient_id", ("benign", "malignant"))
    m = pd.read_csv(breast, dtype=str, keep_default_na=False)
    m.assign(dup_group=m["patient_id"]).to_csv(breast, index=False)  # one image per patient: the group is the patient
    cfg = TrainConfig(recipe="none",  # the documented figures: every step as given here
                      manifest=busi, external=[breast], out=args.out / "signature_run", name="busi_lite0",
                      group_col="dup_group", classes=["benign", "malignant"], positive="malignant",
                      weights="imagenet", image_size=args.signature_image_size, epochs=args.signature_epochs,
                      folds=args.signature_folds, val_fraction=0.0, patience=0, tta=True, seed=args.seed,
                      num_threads=args.threads)
    if args.signature_run is None:
        run_cv(cfg)
    run = args.signature_run or cfg.out
    pred = pd.read_csv(run / "predictions.csv", dtype=str, keep_default_na=False)
    ext = pred[pred["split"] == "external"]
    path = args.out / "signature_predictions.csv"
    ext.to_csv(path, index=False)
    return path, run


def reader_comparison(frame: pd.DataFrame, predictions: Path, run: Path, combined_lp: pd.Series) -> dict:
    """DL signature and combined model vs the radiologists' BI-RADS on the same patients."""
    from nodescope.evaluation import compare_auc, mcnemar_test
    from nodescope.models import load_bundle

    thr = load_bundle(run / "final" / "bundle").threshold
    pred = pd.read_csv(predictions, dtype={"patient_id": str}).set_index("patient_id")
    data = frame.set_index("patient_id").join(pred[["p_malignant"]], how="inner")
    data = data[data.birads.isin(BIRADS)]
    y = (data.label == "malignant").to_numpy(int)
    birads = data.birads.map(BIRADS).to_numpy(float)
    p = data.p_malignant.to_numpy(float)
    out: dict[str, object] = {"n": len(data), "threshold": thr}
    t = compare_auc(y, p, birads)
    a_dl, a_rad = roc_auc(y, p), roc_auc(y, birads)
    out["auc_dl_vs_birads"] = {"dl": t.auc_a, "dl_ci": [a_dl.ci_low, a_dl.ci_high], "birads": t.auc_b,
                               "birads_ci": [a_rad.ci_low, a_rad.ci_high], "difference": t.difference.estimate,
                               "difference_ci": [t.difference.ci_low, t.difference.ci_high], "p": t.p_value}
    keep = data.index.isin(combined_lp.index)
    lp = combined_lp.reindex(data.index[keep]).to_numpy(float)
    t = compare_auc(y[keep], lp, birads[keep])
    out["auc_combined_vs_birads"] = {"n": int(keep.sum()), "combined_apparent": t.auc_a,
                                     "birads": t.auc_b, "difference": t.difference.estimate,
                                     "p": t.p_value}
    call_dl, call_rad = (p >= thr).astype(int), (birads >= BIRADS["4a"]).astype(int)
    for on in ("sensitivity", "specificity"):
        m = mcnemar_test(y, call_dl, call_rad, on=on)
        out[f"{on}_dl_vs_birads4a"] = {"dl": m.proportion_a, "birads4a": m.proportion_b, "p": m.p_value,
                                        "table": list(m.table)}
    return out


def cam_energy(args: argparse.Namespace, run: Path) -> pd.DataFrame:
    """Grad-CAM energy in the lesion mask and pointing game: out of fold on BUSI, refit on BrEaST."""
    from bench_cam import oof_explanations

    from nodescope.explain import explain_files, summarise_localisation
    from nodescope.models import load_bundle

    methods = args.cam_methods.split(",")
    oof = oof_explanations(run, args.out / "manifest_busi_256.csv", args.out, methods, args.seed)
    ext = explain_files(load_bundle(run / "final" / "bundle"), [args.out / "manifest_breast_lesions_usg.csv"],
                        args.out / "cam_breast", methods=methods, n_boot=50, seed=args.seed,
                        group_col="patient_id", gallery_max=40).scores
    rows = []
    for name, scores in (("BUSI out-of-fold", oof), ("BrEaST (refit)", ext)):  # scores carry their group column
        rows.append(summarise_localisation(scores, n_boot=args.n_boot, seed=args.seed).to_frame().assign(data=name))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
                    / "breast_lesions_usg" / "labels.csv")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--predictions", type=Path)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--train-signature", action="store_true", help="train the BUSI classifier here (see above)")
    ap.add_argument("--signature-epochs", type=int, default=10)
    ap.add_argument("--signature-image-size", type=int, default=160)
    ap.add_argument("--signature-folds", type=int, default=2)
    ap.add_argument("--signature-run", type=Path, help="with --train-signature: reuse this finished training run")
    ap.add_argument("--cam-methods", default="gradcam")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.train_signature and args.predictions is not None:
        ap.error("--train-signature trains the signature; --predictions gives one: use one of them")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    run = None
    if args.train_signature:
        args.predictions, run = train_signature(args)
        print(f"signature trained and BrEaST scored in {time.time() - t0:.0f} s", flush=True)
    frame = read_clinical_table(args.data)
    frame = frame[frame.label != "normal"].reset_index(drop=True)
    frame["tissue"] = frame.tissue_composition.map(
        lambda v: v.split("&")[0].split(":")[0] if isinstance(v, str) else None)
    t1 = table1(frame, "label", variables=["age", "tissue_composition", "symptoms", "birads"])
    (args.out / "table1.md").write_text(t1.to_markdown())
    (args.out / "table1.html").write_text(t1.to_html())
    print(t1.to_markdown())

    formula = "label ~ rcs(age, 3) + tissue"
    # 5 lactating patients, all benign, separate the outcome: Firth is used when separation is found (firth=None)
    for name, fit in (("complete cases", fit_lrm(formula, frame, firth=None)),
                      ("multiple imputation (m=20)", fit_lrm_imputed(formula, frame, m=20, seed=0, firth=None))):
        val = validate(fit, B=args.n_boot, seed=0)
        print(f"clinical model, {name}: n={fit.n} events={fit.n_events} C={fit.stats['C']:.3f} "
              f"optimism-corrected C={val.corrected_c:.3f} (B={val.B}, {val.failed} failed); {fit.missing}")

    y = (frame.label == "malignant").to_numpy(int)
    score = frame.birads.map(BIRADS).to_numpy(float)
    keep = ~np.isnan(score)
    auc = roc_auc(y[keep], score[keep])
    print(f"BI-RADS as an ordinal score: AUC {auc.estimate:.3f} (95% CI {auc.ci_low:.3f}-{auc.ci_high:.3f}, "
          f"DeLong), n={int(keep.sum())}")

    if args.predictions is not None:
        from nodescope._files import atomic_folder
        from nodescope.clinical._combine import combine_signature, join_signature
        from nodescope.clinical._combine_report import write_combined

        clin = frame[["patient_id", "age", "tissue"]].copy()
        clin.attrs["source"] = str(args.data)
        data, notes = join_signature(args.predictions, clin, positive="malignant")
        # every joined row is a BrEaST patient the signature's model never saw (split "test" from `predict`,
        # "external" from --train-signature): all of them are the nomogram's development data
        res = combine_signature(data, "rcs(age, 3) + tissue", B=args.n_boot, development=tuple(set(data["split"])),
                                firth=None,
                                notes=notes)
        with atomic_folder(args.out / "nomogram") as tmp:
            write_combined(res, tmp, sources={"predictions": str(args.predictions), "clinical": str(args.data)})
        for k, f in res.fits.items():
            print(f"{k}: C={f.stats['C']:.3f} corrected {res.validation[k].corrected_c:.3f}")
        if run is not None:
            used = data.dropna(subset=["age", "tissue"]).copy()
            used["dl_signature"] = used["dl_signature"].astype(float)
            used["age"] = used["age"].astype(float)
            lp = pd.Series(res.fits["combined"].predict_lp(used), index=used["patient_id"].to_numpy())
            cmp_ = reader_comparison(frame, args.predictions, run, lp)
            (args.out / "reader_comparison.json").write_text(json.dumps(cmp_, indent=2))
            print(json.dumps(cmp_, indent=2))
            cam = cam_energy(args, run)
            cam.to_csv(args.out / "cam_summary.csv", index=False)
            print(cam.to_string(index=False))
    print(f"wall time {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
