"""Data: manifest, image I/O, preprocessing, patient-level splits, importers and synthetic demo data."""

from nodescope.data._io import ImageReadError, UltrasoundImage, read_image
from nodescope.data._synth import (
    SYNTHETIC_CLASSES,
    SYNTHETIC_MODALITIES,
    SyntheticDataset,
    make_synthetic_dataset,
)

__all__ = [
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_MODALITIES",
    "ImageReadError",
    "SyntheticDataset",
    "UltrasoundImage",
    "make_synthetic_dataset",
    "read_image",
]
