"""Data: manifest, image I/O, preprocessing, patient-level splits, importers and synthetic demo data."""

from nodescope.data._importers import ImportResult, import_busi, import_image_folder
from nodescope.data._io import ImageReadError, UltrasoundImage, read_image
from nodescope.data._manifest import (
    KNOWN_MODALITIES,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    Manifest,
    ManifestError,
    ManifestProblem,
    join_clinical,
    read_clinical,
    read_manifest,
    validate_manifest,
)
from nodescope.data._splits import LeakageError, SplitMethod, check_leakage, make_splits, split_summary

__all__ = [
    "KNOWN_MODALITIES",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "ImageReadError",
    "ImportResult",
    "LeakageError",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "SplitMethod",
    "UltrasoundImage",
    "check_leakage",
    "import_busi",
    "import_image_folder",
    "join_clinical",
    "make_splits",
    "read_clinical",
    "read_image",
    "read_manifest",
    "split_summary",
    "validate_manifest",
]
