"""Data: manifest, image I/O, preprocessing, patient-level splits, importers and synthetic demo data."""

from nodescope.data._io import ImageInfo, ImageReadError, UltrasoundImage, image_info, read_image
from nodescope.data._preprocess import (
    COLOUR_MODALITIES,
    GREY_MODALITIES,
    Box,
    ResizeTransform,
    crop_roi,
    crop_scan_region,
    resize_pad,
    roi_box_from_mask,
    to_model_channels,
)

__all__ = [
    "COLOUR_MODALITIES",
    "GREY_MODALITIES",
    "Box",
    "ImageInfo",
    "ImageReadError",
    "ResizeTransform",
    "UltrasoundImage",
    "crop_roi",
    "crop_scan_region",
    "image_info",
    "read_image",
    "resize_pad",
    "roi_box_from_mask",
    "to_model_channels",
]
