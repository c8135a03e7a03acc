"""Preloaded uint8 image tensors, datasets, in-fold oversampling and the Lightning data module.

All images of a run are decoded once and kept as one ``(N, C, S, S)`` uint8 tensor (224 px colour: 150 kB per image);
batches are slices of it, so loading never waits on decoding and no worker processes are needed. Augmentation runs
on the batch in the LightningModule.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from nodescope.data import GreyRule, ImageTransform, IntensityRule, MarksRule
from nodescope.errors import DataError
from nodescope.models._preprocess import prepare_image, prepare_two_view, require_lesion, stored_bits

__all__ = [
    "ImageDataModule",
    "PreloadedImages",
    "TensorImageDataset",
    "intensity_reference",
    "oversample_indices",
    "pixel_hash",
    "preload_images",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreloadedImages:
    """Prepared images of a manifest, row-aligned.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, C, S, S)`` uint8 (two-view: ``(N, 2C, S, S)``, the ROI view's channels first).
    hashes : list of str
        SHA-256 of each decoded image's pixels (shape + bytes), for pretraining-overlap checks.
    transforms : list of ImageTransform
        Where each prepared image came from in its original (crop box, padding, scale).
    """

    images: torch.Tensor
    hashes: list[str]
    transforms: list[ImageTransform] = field(default_factory=list)


def pixel_hash(pixels: np.ndarray) -> str:
    """SHA-256 of a decoded image: shape, dtype and raw pixel bytes (lossless re-encoding keeps it)."""
    h = hashlib.sha256(f"{pixels.shape}{pixels.dtype}".encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


def preload_images(image_paths: Sequence, *, size: int, channels: int = 3, mask_paths: Sequence | None = None,
                   roi_margin: float = 0.1, scan_crop: bool = False, grey: GreyRule = "auto",
                   intensity: IntensityRule = "none", marks: MarksRule = "keep",
                   reference: Sequence[float] | None = None, two_view: bool = False,
                   context_scale: float = 3.0) -> PreloadedImages:
    """Decode and prepare every image (see :meth:`nodescope.models.InputSpec.prepare`).

    ``mask_paths`` (same length, entries may be None) switches on cropping to the mask box; a row without a mask is
    an error then, naming the image. uint16 pixels are scaled over the file's stored bits (DICOM BitsStored; full
    16-bit range otherwise), the rule :data:`nodescope.models.UINT16_RULE` that bundles record. ``scan_crop``,
    ``grey``, ``intensity`` and ``marks`` are the appearance steps of :func:`nodescope.models.prepare_image` (recorded in the
    bundle's ``input`` block, so prediction repeats them). ``two_view`` (needs ``mask_paths``) prepares each image
    as the ROI view and a context view of ``context_scale`` x its box (:func:`nodescope.models.prepare_two_view`),
    ``2 * channels`` channels; an empty mask is an error then, naming the image and its mask.
    """
    from nodescope.data import read_image

    n = len(image_paths)
    if two_view and mask_paths is None:
        raise DataError("roi 'two-view': every image needs its lesion mask, but no mask paths were given")
    out = torch.empty((n, channels * (2 if two_view else 1), size, size), dtype=torch.uint8)
    hashes, transforms = [], []
    for i, p in enumerate(image_paths):
        img = read_image(p)
        px = img.pixels
        hashes.append(pixel_hash(px))
        mask = None
        if mask_paths is not None:
            mp = mask_paths[i]
            if mp is None:
                roi = "two-view" if two_view else "mask"
                raise DataError(f"{p}: the images are cropped to their lesion (roi {roi!r}) but this image's "
                                "manifest row has no mask")
            mask = read_image(mp).pixels
            if two_view:
                require_lesion(mask, p, mp)
        steps = {"size": size, "channels": channels, "mask": mask, "roi_margin": roi_margin,
                 "bits_stored": stored_bits(img.meta), "scan_crop": scan_crop, "grey": grey, "intensity": intensity,
                 "marks": marks, "reference": reference}
        try:
            if two_view:
                out[i], (tr, _ctx) = prepare_two_view(px, context_scale=context_scale, **steps)  # type: ignore[arg-type]
            else:
                out[i], tr = prepare_image(px, **steps)  # type: ignore[arg-type]
        except DataError as exc:  # e.g. no scan region in an all-black image: name the file
            raise DataError(f"{p}: {exc}") from None
        transforms.append(tr)
    return PreloadedImages(out, hashes, transforms)


def intensity_reference(image_paths: Sequence, *, mask_paths: Sequence | None = None, roi_margin: float = 0.1,
                        scan_crop: bool = False, grey: GreyRule = "auto", marks: MarksRule = "keep"
                        ) -> tuple[float, ...]:
    """The histogram-matching reference of a set of images: the mean of their grey-level quantile functions.

    Each image goes through the same first steps as at training (:func:`nodescope.models.cleaned_pixels`: crops,
    8 bits, marks, tint); its 101 quantiles (0..100 %, :func:`nodescope.data.grey_quantiles`) are averaged over the
    images -- the quantile function of the 1-D Wasserstein barycentre of their histograms. No label is used.
    """
    from nodescope.data import grey_quantiles, read_image
    from nodescope.models._preprocess import cleaned_pixels

    if len(image_paths) == 0:
        raise DataError("intensity 'match': no training image to compute the reference from")
    qs = []
    for i, p in enumerate(image_paths):
        img = read_image(p)
        mask = read_image(mask_paths[i]).pixels if mask_paths is not None and mask_paths[i] is not None else None
        arr, _box, _shape = cleaned_pixels(img.pixels, mask=mask, roi_margin=roi_margin,
                                           bits_stored=stored_bits(img.meta), scan_crop=scan_crop, grey=grey,
                                           marks=marks)
        qs.append(grey_quantiles(arr))
    return tuple(float(v) for v in np.mean(qs, axis=0))


class TensorImageDataset(Dataset):
    """Rows ``index`` of preloaded images with integer labels.

    Items are ``(image uint8 (C, S, S), label)`` or, with ``present`` given (fusion, images ``(U, M, C, S, S)``),
    ``(images (M, C, S, S), present (M,), label)``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, index: Sequence[int] | np.ndarray,
                 present: torch.Tensor | None = None) -> None:
        self.images = images
        self.labels = labels
        self.index = np.asarray(index, dtype=np.int64)
        self.present = present

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):  # type: ignore[override]
        j = int(self.index[i])
        if self.present is None:
            return self.images[j], self.labels[j]
        return self.images[j], self.present[j], self.labels[j]


def oversample_indices(index: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Random oversampling: every class drawn with replacement up to the largest class's count (within ``index``).

    Returns the original indices plus the drawn duplicates (unshuffled; the loader shuffles).
    """
    rng = np.random.default_rng(seed)
    lab = labels[index]
    counts = pd.Series(lab).value_counts()
    target = int(counts.max())
    parts = [index]
    for cls, cnt in counts.items():
        if cnt < target:
            pool = index[lab == cls]
            parts.append(rng.choice(pool, size=target - int(cnt), replace=True))
    return np.concatenate(parts)


class ImageDataModule(L.LightningDataModule):
    """Train/validation loaders over preloaded tensors (``num_workers=0``: slicing memory is faster than workers).

    ``oversample`` draws every class up to the largest class's count; ``balance_by`` (one key per sample, e.g.
    ``site|class``) does the same over its keys instead, so every (site, class) cell is seen equally often.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, train_index: np.ndarray,
                 val_index: np.ndarray | None, *, batch_size: int = 32, oversample: bool = False, seed: int = 0,
                 present: torch.Tensor | None = None, balance_by: np.ndarray | None = None) -> None:
        super().__init__()
        self.images, self.labels, self.present = images, labels, present
        idx = np.asarray(train_index, dtype=np.int64)
        if balance_by is not None:  # e.g. (site, class) cells: each drawn up to the largest cell's count
            idx = oversample_indices(idx, np.asarray(balance_by), seed)
        elif oversample:
            idx = oversample_indices(idx, labels.numpy(), seed)
        self.train_index = idx
        self.val_index = None if val_index is None or len(val_index) == 0 else np.asarray(val_index, np.int64)
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        ds = TensorImageDataset(self.images, self.labels, self.train_index, self.present)
        drop_last = len(ds) > self.batch_size and len(ds) % self.batch_size == 1  # avoid BatchNorm on 1 sample
        return DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=g, num_workers=0,
                          drop_last=drop_last)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_index is None:
            return []
        ds = TensorImageDataset(self.images, self.labels, self.val_index, self.present)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=False, num_workers=0)
