"""Shift diagnostics of BUSI vs BrEaST (`nodescope data compare`), with the feature space of an ImageNet backbone.

The bundle is EfficientNet-Lite0 with its offline ImageNet weights and an *untrained* head, built in a temporary
folder: its penultimate features are ImageNet features, so the feature-space figures say how foreign BrEaST looks to
a generic backbone, not to a model trained on BUSI (pass ``--bundle`` to `nodescope data compare` for that).

Run: PYTHONPATH=src python bench/bench_shift.py [path/to/shared/data] [max_images]   (2-7 min on 2 busy cores)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from nodescope.data import compare_datasets, write_comparison
from nodescope.data._compare_report import summary_lines
from nodescope.models import BundleMeta, ClassifierNet, InputSpec, save_bundle
from nodescope.models._registry import default_normalisation
from nodescope.models._weights import load_weights

BACKBONE, SIZE = "tf_efficientnet_lite0", 160


def imagenet_bundle(folder: Path) -> Path:
    """A classifier bundle whose backbone carries the offline ImageNet weights (head random, seed 0)."""
    torch.manual_seed(0)
    net = ClassifierNet(BACKBONE, 2, image_size=SIZE, hidden=16)
    load_weights(net.backbone, BACKBONE, "imagenet", image_size=SIZE)
    mean, std = default_normalisation(BACKBONE, 3)
    meta = BundleMeta(kind="classifier", name="imagenet-lite0-features",
                      architecture={"backbone": BACKBONE, "num_classes": 2, "in_chans": 3, "image_size": SIZE,
                                    "head": "mlp", "hidden": 16, "dropout": 0.2},
                      classes=("benign", "malignant"), positive_class="malignant",
                      input=InputSpec(image_size=SIZE, channels=3, mean=mean, std=std))
    return save_bundle(folder / "bundle", net, meta)


def main(shared: Path, max_images: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = imagenet_bundle(Path(tmp))
        start = time.perf_counter()
        res = compare_datasets(shared / "busi" / "labels.csv", shared / "breast_lesions_usg" / "labels.csv",
                               names=("BUSI", "BrEaST"), group_cols=("dup_group", "patient_id"),
                               max_images=max_images, bundle=bundle)
        seconds = time.perf_counter() - start
        write_comparison(res, Path(tmp) / "out")
    for line in summary_lines(res):
        print(line)
    print(f"{max_images} images per set at most, {seconds:.0f} s (compare_datasets, wall)")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default, int(sys.argv[2]) if len(sys.argv) > 2 else 120)
