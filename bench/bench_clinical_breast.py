"""The clinical stage on BrEaST (Breast-Lesions-USG, 252 benign/malignant lesions, one per patient).

Prints and writes (into --out):
  * Table 1 by pathology (benign vs malignant): age, tissue composition, symptoms, BI-RADS (table1.md / .html);
  * the clinical-only logistic model ``label ~ rcs(age, 3) + tissue`` (tissue = the first listed tissue composition),
    complete cases and multiple imputation side by side, with the bootstrap optimism-corrected C (B = --n-boot);
  * the radiologists' BI-RADS as an ordinal reader score (2 < 3 < 4a < 4b < 4c < 5): AUC with its DeLong CI;
  * with --predictions (``nodescope predict`` of a BUSI-trained classifier on this manifest): the full nomogram run
    -- clinical-only vs DL-only vs combined, fitted on these patients (the signature's model never saw them) --
    into OUT/nomogram/.

Usage:
    PYTHONPATH=src python bench/bench_clinical_breast.py --out /tmp/breast_clinical [--predictions P.csv]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nodescope.clinical import fit_lrm, fit_lrm_imputed, read_clinical_table, table1, validate
from nodescope.evaluation import roc_auc

BIRADS = {"2": 2, "3": 3, "4a": 4, "4b": 5, "4c": 6, "5": 7}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
                    / "breast_lesions_usg" / "labels.csv")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--predictions", type=Path)
    ap.add_argument("--n-boot", type=int, default=200)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
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
        res = combine_signature(data, "rcs(age, 3) + tissue", B=args.n_boot, development=("test",), firth=None,
                                notes=notes)
        with atomic_folder(args.out / "nomogram") as tmp:
            write_combined(res, tmp, sources={"predictions": str(args.predictions), "clinical": str(args.data)})
        for k, f in res.fits.items():
            print(f"{k}: C={f.stats['C']:.3f} corrected {res.validation[k].corrected_c:.3f}")
    print(f"wall time {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
