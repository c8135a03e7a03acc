"""Data: manifest, image I/O, preprocessing, patient-level splits, importers and synthetic demo data."""

from nodescope.data._io import ImageReadError, UltrasoundImage, read_image

__all__ = ["ImageReadError", "UltrasoundImage", "read_image"]
