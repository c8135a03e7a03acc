"""Data: manifest, image I/O, preprocessing, patient-level splits, importers and synthetic demo data."""

from nodescope.data._appearance import GreyRule, IntensityRule, normalise_intensity, tint_direction, untint
from nodescope.data._duplicates import duplicate_groups, thumbnail
from nodescope.data._importers import (
    DUP_GROUP_COLUMN,
    ImportResult,
    import_busi,
    import_image_folder,
    import_table,
)
from nodescope.data._io import (
    IMAGE_SUFFIXES,
    ImageInfo,
    ImageReadError,
    ImageSource,
    UltrasoundImage,
    image_info,
    read_image,
)
from nodescope.data._io_base import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, max_pixels_limit
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
from nodescope.data._preprocess import (
    COLOUR_MODALITIES,
    GREY_MODALITIES,
    Box,
    crop_roi,
    resize_pad,
    roi_box_from_mask,
    to_model_channels,
)
from nodescope.data._scan_region import crop_scan_region, scan_region
from nodescope.data._splits import LeakageError, SplitMethod, check_leakage, make_splits, split_summary
from nodescope.data._synth import (
    SYNTHETIC_CLASSES,
    SYNTHETIC_MODALITIES,
    SyntheticDataset,
    make_synthetic_dataset,
)
from nodescope.data._transform import ImageTransform

__all__ = [
    "COLOUR_MODALITIES",
    "DEFAULT_MAX_PIXELS",
    "DUP_GROUP_COLUMN",
    "GREY_MODALITIES",
    "IMAGE_SUFFIXES",
    "KNOWN_MODALITIES",
    "MAX_PIXELS_ENV",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_MODALITIES",
    "Box",
    "GreyRule",
    "ImageInfo",
    "ImageReadError",
    "ImageSource",
    "ImageTransform",
    "ImportResult",
    "IntensityRule",
    "LeakageError",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "SplitMethod",
    "SyntheticDataset",
    "UltrasoundImage",
    "check_leakage",
    "crop_roi",
    "crop_scan_region",
    "duplicate_groups",
    "image_info",
    "import_busi",
    "import_image_folder",
    "import_table",
    "join_clinical",
    "make_splits",
    "make_synthetic_dataset",
    "max_pixels_limit",
    "normalise_intensity",
    "read_clinical",
    "read_image",
    "read_manifest",
    "resize_pad",
    "roi_box_from_mask",
    "scan_region",
    "split_summary",
    "thumbnail",
    "tint_direction",
    "to_model_channels",
    "untint",
    "validate_manifest",
]
