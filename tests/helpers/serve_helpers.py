"""Helpers of the service tests: tiny bundles (ResNet-18 at 32 px, seeded), images and DICOMs in memory, a live uvicorn
server in a thread."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nodescope.models import (
    BundleMeta,
    ClassifierNet,
    InputSpec,
    IntermediateFusionNet,
    Threshold,
    save_bundle,
)

MODALITIES = ("bmode", "cdfi", "elastography")
#: metrics.json of the tiny bundles (made-up figures of an untrained network: the page only has to show them)
METRICS = {"metric": "auc", "splits": {"cv": {"n": 24, "patients": 12, "auc": 0.61, "auc_ci": [0.4, 0.8]}}}


def _meta(kind: str, arch: dict[str, Any], mods: tuple[str, ...] | None, *, name: str, roi: str = "none",
          channels: int = 1) -> BundleMeta:
    return BundleMeta(
        kind=kind, name=name, run_id="serve-test", architecture=arch, classes=("benign", "malignant"),
        positive_class="malignant",
        input=InputSpec(image_size=32, channels=channels, mean=(0.5,) * channels, std=(0.25,) * channels,
                        roi=roi, modalities=mods),  # type: ignore[arg-type]
        threshold=Threshold(0.42, "youden", "cv (pooled out-of-fold)", "p_malignant >= value"),
        training={"n_patients": 12, "source": "tiny synthetic test data"}, weights_init={"source": "none"},
        synthetic_data=True)


def make_classifier(path: Path, modality: str | None, *, seed: int = 0, roi: str = "none") -> Path:
    """A seeded ResNet-18 classifier bundle (1 channel, 32 px) for ``modality`` (None: any image)."""
    torch.manual_seed(seed)
    net = ClassifierNet("resnet18", 2, in_chans=1, image_size=32, hidden=8, dropout=0.0)
    arch = {"backbone": "resnet18", "num_classes": 2, "in_chans": 1, "image_size": 32, "head": "mlp", "hidden": 8,
            "dropout": 0.0}
    meta = _meta("classifier", arch, (modality,) if modality else None, name=f"tiny_{modality or 'any'}", roi=roi)
    return save_bundle(path, net, meta, metrics=METRICS)


def make_fusion(path: Path) -> Path:
    """A seeded intermediate-fusion bundle (shared ResNet-18 encoder) over the three modalities."""
    torch.manual_seed(1)
    net = IntermediateFusionNet("resnet18", list(MODALITIES), 2, in_chans=1, image_size=32, hidden=8, dropout=0.0,
                                shared=True)
    return save_bundle(path, net, _meta("fusion", {"kind": "fusion", **net.config}, MODALITIES, name="tiny_fusion"),
                       metrics=METRICS)


def make_segmenter(path: Path) -> Path:
    """A seeded tiny MONAI U-Net segmenter bundle (1 channel, 32 px, random weights)."""
    from nodescope.segment import build_segmenter

    torch.manual_seed(3)
    arch = {"name": "monai_unet", "in_chans": 1, "features": [4, 4, 8, 8, 16, 4]}
    meta = BundleMeta(kind="segmenter", architecture=arch, name="tiny_seg",
                      input=InputSpec(image_size=32, channels=1, mean=(0.5,), std=(0.25,)))
    return save_bundle(path, build_segmenter(arch), meta)


def png(shape: tuple[int, ...] = (40, 48), seed: int = 0, fmt: str = "PNG") -> bytes:
    """A random grey (or RGB for a 3-tuple shape) image encoded in memory."""
    arr = np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


PHI = {"PatientName": "Doe^Jane", "PatientID": "MRN-998877", "PatientBirthDate": "19700101",
       "InstitutionName": "St Example Hospital", "ReferringPhysicianName": "Who^Doctor", "AccessionNumber": "ACC12345",
       "StudyDate": "20260101", "OperatorsName": "Op^Erator", "DeviceSerialNumber": "SN-4242"}


def dicom_bytes(pixels: np.ndarray, *, phi: bool = True) -> bytes:
    """An uncompressed MONOCHROME2 8-bit ultrasound DICOM in memory, with patient-identifying tags when ``phi``."""
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
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if phi:
        for k, v in PHI.items():
            setattr(ds, k, v)
        ds.add_new(0x00091010, "LO", "private Doe^Jane")
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) in a thread; ``url``, ``stop()``."""

    def __init__(self, app: Any, *, graceful: float = 10.0) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        cfg = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                             timeout_graceful_shutdown=int(graceful))
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

