"""The automatic ROI pipeline: masks for images that never had one (``nodescope segment predict``).

:func:`segment_files` runs a :class:`~nodescope.segment.Segmenter` over a manifest, folders or image files and
writes one PNG mask per image at the image's original size plus a manifest whose ``mask`` column points at them, so
``nodescope train --roi mask`` and ``nodescope predict`` with a mask-cropping classifier run on it unchanged. A
manifest's own reference masks are kept as ``mask_manual``. ``nodescope predict --segmenter`` does the same in
memory: :func:`automatic_roi` is the mask source handed to :func:`nodescope.models.predict_files`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nodescope._files import atomic_folder, atomic_write_csv
from nodescope.data import UltrasoundImage
from nodescope.segment._masks_io import write_mask_png
from nodescope.segment._predict import Segmenter

__all__ = ["automatic_roi", "segment_files"]

log = logging.getLogger(__name__)


def automatic_roi(segmenter: Segmenter) -> Callable[[UltrasoundImage], np.ndarray]:
    """A mask source for :func:`nodescope.models.predict_files`: the segmenter's mask of each image."""

    def source(image: UltrasoundImage) -> np.ndarray:
        return segmenter.predict_mask(image).mask

    return source


def segment_files(segmenter: Segmenter, inputs: Sequence[str | Path], out: str | Path, *,
                  group_col: str = "patient_id", keep_probability: bool = False) -> pd.DataFrame:
    """Predict a mask for every image of ``inputs`` and write them with a manifest into ``out``.

    Parameters
    ----------
    segmenter : Segmenter
    inputs : sequence of str or Path
        Manifest CSVs, folders of images, or image files (as ``nodescope predict`` reads them).
    out : str or Path
        Output folder (written through a temporary folder and moved into place): ``masks/<row>_<stem>.png``, with
        ``keep_probability`` also ``probability/<row>_<stem>.png`` (8-bit, 255 = 1), and ``manifest.csv``.
    group_col : str, default "patient_id"
        Grouping column of input manifests.
    keep_probability : bool, default False

    Returns
    -------
    DataFrame
        The written manifest: the input manifest's columns (``image`` as an absolute path; ``label`` empty for bare
        images), ``mask`` (relative to ``out``), ``mask_manual`` (a manifest's own mask, absolute, when it had one),
        ``mask_empty`` (no lesion found), ``mask_area_frac``, ``segmenter`` (member names) and ``fusion``.
    """
    from PIL import Image

    from nodescope.data import read_image
    from nodescope.models._predict_io import _collect

    frame, paths, manual = _collect(inputs, group_col=group_col)
    frame = frame.rename(columns={"y_true": "label"}) if "label" not in frame.columns else frame.drop(
        columns=["y_true"], errors="ignore")
    frame["image"] = [str(Path(p).resolve()) for p in paths]
    if any(m is not None for m in manual):
        frame["mask_manual"] = [str(Path(m).resolve()) if m is not None else "" for m in manual]
    final = Path(out)
    rel, empty, area = [], [], []
    with atomic_folder(final) as tmp:
        for i, p in enumerate(paths):
            img = read_image(p)
            res = segmenter.predict_mask(img)
            name = f"{i:05d}_{Path(p).stem}.png"
            write_mask_png(res.mask, tmp / "masks" / name)
            if keep_probability:
                (tmp / "probability").mkdir(exist_ok=True)
                Image.fromarray((res.probability * 255).round().astype(np.uint8)).save(tmp / "probability" / name)
            rel.append(f"masks/{name}")
            empty.append(not res.mask.any())
            area.append(float(res.mask.mean()))
        frame["mask"] = rel
        frame["mask_empty"] = empty
        frame["mask_area_frac"] = np.round(area, 5)
        frame["segmenter"] = ";".join(segmenter.names)
        frame["fusion"] = segmenter.fusion if len(segmenter.bundles) > 1 else "none"
        atomic_write_csv(frame, tmp / "manifest.csv", index=False)
    n_empty = int(np.sum(empty))
    if n_empty:
        log.warning("%d of %d image(s) got an empty mask (no lesion found); a mask-cropping classifier sees them "
                    "whole", n_empty, len(paths))
    return frame
