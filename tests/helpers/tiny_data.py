"""Tiny on-disk data sets for training tests (a few patients, 40 px PNGs, learnable signal); a helper module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def write_tiny_dataset(root: Path, *, n_patients: int = 12, per_patient: int = 2, size: int = 40,
                       modalities: tuple[str, ...] | None = None, seed: int = 0, masks: bool = False,
                       extra_rows: dict | None = None, patient_prefix: str = "P") -> Path:
    """Write PNGs + manifest.csv; 'malignant' images carry a bright disc, 'benign' a dim one.

    ``patient_prefix`` starts every patient id (e.g. ``"XP"`` for an external set: other people than ``"P"``'s).
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_patients):
        label = "malignant" if i % 2 else "benign"
        for j in range(per_patient):
            for mod in modalities or (None,):
                img = rng.integers(0, 60, (size, size + 8), dtype=np.uint8)
                cy, cx = rng.integers(12, size - 12, 2)
                yy, xx = np.ogrid[:size, :size + 8]
                disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 36
                img[disc] = 220 if label == "malignant" else 90
                name = f"p{i:02d}_{j}{'_' + mod if mod else ''}.png"
                Image.fromarray(img).save(root / name)
                row = {"patient_id": f"{patient_prefix}{i:02d}", "image": name, "label": label, "lesion_id": f"L{j}",
                       "site": "A" if i < n_patients // 2 else "B"}
                if mod:
                    row["modality"] = mod
                if masks:
                    Image.fromarray((disc * 255).astype(np.uint8)).save(root / f"m_{name}")
                    row["mask"] = f"m_{name}"
                rows.append(row)
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def write_dicom_grey16(path: Path, pixels: np.ndarray, *, bits_stored: int) -> Path:
    """Write an uncompressed MONOCHROME2 DICOM of uint16 ``pixels`` (H, W) with the given BitsStored."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    ds["PixelData"].VR = "OW"
    ds.save_as(path, enforce_file_format=True)
    return path


def save_tiny_classifier(path: Path, name: str = "tiny", **input_options: object) -> Path:
    """A seeded benign/malignant ResNet-18 classifier bundle at 32 px (random weights), saved to ``path``;
    ``input_options`` go to its ``InputSpec`` (e.g. ``roi="mask"``; ``roi="two-view"`` gives a two-view network)."""
    import torch

    from nodescope.models import BundleMeta, ClassifierNet, InputSpec, save_bundle

    torch.manual_seed(0)
    views = {"views": 2} if input_options.get("roi") == "two-view" else {}
    net = ClassifierNet("resnet18", 2, image_size=32, hidden=16, dropout=0.1, **views)  # type: ignore[arg-type]
    meta = BundleMeta(kind="classifier", name=name,
                      architecture={"backbone": "resnet18", "num_classes": 2, "in_chans": 3, "image_size": 32,
                                    "head": "mlp", "hidden": 16, "dropout": 0.1, **views},
                      classes=("benign", "malignant"), positive_class="malignant",
                      input=InputSpec(image_size=32, channels=3, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                                      **input_options))  # type: ignore[arg-type]
    return save_bundle(path, net, meta)
