"""Check crop_scan_region on every BUSI image: does the crop keep the whole lesion mask, and how much is kept?

Run: PYTHONPATH=src python bench/busi_scan_crop.py [path/to/shared/data/busi]   (about 1-2 minutes on 2 cores)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nodescope.data import crop_scan_region, read_image


def main(busi: Path) -> None:
    labels = pd.read_csv(busi / "labels.csv", dtype=str)
    cut, kept, start = [], [], time.perf_counter()
    for _, row in labels.iterrows():
        img = read_image(busi / row["image"]).pixels
        mask = read_image(busi / row["mask"]).pixels[..., 0] > 0
        _, (t, lft, b, r) = crop_scan_region(img)
        kept.append((b - t) * (r - lft) / (img.shape[0] * img.shape[1]))
        lost = int(mask.sum() - mask[t:b, lft:r].sum())
        if lost:
            cut.append((row["image"], lost, int(mask.sum())))
    print(f"{len(labels)} images in {time.perf_counter() - start:.1f} s")
    print(f"lesion mask cut in {len(cut)} images: {cut[:10]}")
    q = np.quantile(kept, [0, 0.01, 0.05, 0.5])
    print("fraction of the image kept, quantiles 0/1/5/50 %:", np.round(q, 4))


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "busi"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
