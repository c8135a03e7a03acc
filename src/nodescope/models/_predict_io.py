"""Predicting files: a manifest, a folder of images or single image files -> a predictions table."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from nodescope.data import IMAGE_SUFFIXES
from nodescope.errors import BundleError, ConfigError, DataError, MissingFileError
from nodescope.models._bundle import ModelBundle
from nodescope.models._predict import Engine, Predictor
from nodescope.models._preprocess import require_lesion

__all__ = ["predict_files"]

log = logging.getLogger(__name__)


def _read_manifest_rows(p: Path, group_col: str, modalities: list[str] | None) -> tuple[pd.DataFrame, list[Path],
                                                                                         list[Path | None]]:
    from nodescope.data import read_manifest

    m = read_manifest(p, group_col=group_col)
    f = m.frame.copy()
    paths, masks = list(m.image_paths()), list(m.mask_paths())
    if "patient_id" not in f.columns:
        f["patient_id"] = f[group_col]
    # as training does: a row without a patient id is identified by its group (BUSI: dup_group)
    f["patient_id"] = f["patient_id"].where(f["patient_id"].astype(str) != "", f[group_col].astype(str))
    f["y_true"] = f["label"]
    if modalities:
        if "modality" not in f.columns:
            log.warning("%s has no 'modality' column; the bundle was trained on %s only and every row is scored", p,
                        modalities)
        else:
            keep = f["modality"].isin(modalities).to_numpy()
            if not keep.any():
                raise DataError(f"input: {p} has no rows of the bundle's modalities {modalities}; its modalities are "
                                 f"{sorted(set(f['modality']))}")
            if (~keep).any():
                log.warning("%s: %d row(s) of other modalities (%s) left out; the bundle was trained on %s", p,
                            int((~keep).sum()), sorted(set(f.loc[~keep, "modality"])), modalities)
            f = f[keep]
            paths = [q for q, k in zip(paths, keep, strict=True) if k]
            masks = [q for q, k in zip(masks, keep, strict=True) if k]
    return f.reset_index(drop=True), paths, masks


def _collect(inputs: Sequence[str | Path], *, group_col: str = "patient_id", modalities: list[str] | None = None
             ) -> tuple[pd.DataFrame, list[Path], list[Path | None]]:
    frames, paths, masks = [], [], []
    for item in inputs:
        p = Path(item)
        if p.is_file() and p.suffix.lower() == ".csv":
            f, ps, ms = _read_manifest_rows(p, group_col, modalities)
            frames.append(f)
            paths += ps
            masks += ms
        elif p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(f"input: folder {p} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            # the path below the folder identifies an image (benign/1.png and malignant/1.png are two patients)
            frames.append(pd.DataFrame({"patient_id": [q.relative_to(p).as_posix() for q in files], "y_true": "",
                                        "image": [str(q) for q in files]}))
            paths += files
            masks += [None] * len(files)
        elif p.is_file():
            frames.append(pd.DataFrame({"patient_id": [p.stem], "y_true": [""], "image": [str(p)]}))
            paths.append(p)
            masks.append(None)
        else:
            raise MissingFileError(f"input: {p} does not exist")
    return pd.concat(frames, ignore_index=True), paths, masks


def predict_files(bundle: ModelBundle, inputs: Sequence[str | Path], *, tta: bool | None = None,
                  engine: Engine = "torch", split: str = "test", batch_size: int = 32, group_col: str | None = None,
                  threads: int | None = None, mask_source: Callable[[Any], np.ndarray] | None = None,
                  features: bool = False, adapt_bn: bool = False, onnx_cache_dir: str | Path | None = None
                  ) -> pd.DataFrame:
    """Predict every image of ``inputs`` (manifest CSVs, folders, image files) with a classifier bundle.

    Manifests are read with ``group_col`` (default: the bundle's training ``group_col``, else ``patient_id``); an
    empty ``patient_id`` becomes the row's group, as in training. When the bundle names its modalities, manifest
    rows of other modalities are left out (counted in the log; none left is an error). Images found in a folder get
    their path below the folder (``class/file.png``) as ``patient_id``; single files their stem. ``tta=None``
    follows the bundle (``input.tta``: how its out-of-fold predictions and threshold were made); ``threads``
    defaults to torch's current setting for the torch engine and to the cores this process owns for ONNX.
    ``engine="onnx"`` keeps its export in ``onnx_cache_dir`` (default :func:`nodescope.models.onnx_cache_dir`); the
    bundle folder is never written.

    Returns a predictions frame (contract columns ``patient_id``, ``y_true`` -- the manifest label, empty for bare
    images --, ``p_<class>``, ``split``, ``fold`` = -1, ``model``, ``run_id``, ``image``, manifest extras) plus
    ``y_pred`` (binary: ``p_<positive> >= threshold`` of the bundle; otherwise the most probable class) and
    ``threshold``.

    ``mask_source`` (a callable from the decoded :class:`~nodescope.data.UltrasoundImage` to its ``(H, W)`` lesion
    mask, e.g. :func:`nodescope.segment.automatic_roi`) replaces the manifest's masks for a mask-cropping bundle
    (``input.roi`` ``"mask"`` or ``"two-view"``): image -> mask -> crop(s) -> class with no drawn mask; the output
    then has ``roi_source`` = ``automatic`` and ``roi_empty`` (no lesion found: the whole image was used, for both
    views of a two-view bundle). A two-view bundle refuses an empty manual mask (naming the image and the mask).

    With ``features=True`` the pooled penultimate-layer features follow as ``f_0 .. f_{F-1}``.

    ``adapt_bn=True`` (torch engine) first re-estimates the network's BatchNorm statistics on all the images given
    (AdaBN, :func:`nodescope.models.adapt_batchnorm`; no labels used, the bundle unchanged) and adds the column
    ``bn_adapted`` = ``n images`` so the predictions say they were made that way.
    """
    from nodescope.data import read_image
    from nodescope.evaluation import make_predictions

    if bundle.kind != "classifier":
        raise BundleError(f"bundle {bundle.path}: kind {bundle.kind!r}; predicting files needs a classifier")
    gcol = group_col or str(bundle.meta.group_col or "patient_id")
    mods = bundle.meta.modalities
    frame, paths, masks = _collect(inputs, group_col=gcol, modalities=list(mods) if mods else None)
    spec = bundle.spec
    if threads is None and engine == "torch":
        threads = torch.get_num_threads()
    if adapt_bn and engine != "torch":
        raise ConfigError(f"adapt_bn: re-estimating BatchNorm statistics needs engine 'torch', got {engine!r}")
    predictor = Predictor(bundle, engine=engine, batch_size=batch_size, threads=threads, onnx_cache_dir=onnx_cache_dir)
    if mask_source is not None and not spec.needs_mask:
        raise ConfigError(f"bundle {bundle.path}: input.roi is {spec.roi!r}: the classifier sees the whole image, so "
                          "an automatic mask (a segmenter) would not be used; give a bundle trained with roi 'mask' "
                          "or 'two-view'")
    imgs = torch.empty((len(paths), spec.tensor_channels, spec.image_size, spec.image_size), dtype=torch.uint8)
    roi_empty = []
    for i, (p, mp) in enumerate(zip(paths, masks, strict=True)):
        mask = None
        if mask_source is not None:
            img = read_image(p)
            mask = np.asarray(mask_source(img))
            roi_empty.append(not mask.any())
            imgs[i] = spec.prepare(img, mask=mask)[0]
            continue
        if spec.needs_mask:
            if mp is None:
                raise DataError(f"{p}: the bundle crops to the lesion (input.roi {spec.roi!r}) but this image has no "
                                "mask; give a manifest with a 'mask' column")
            mask = read_image(mp).pixels
            if spec.roi == "two-view":
                require_lesion(mask, p, mp)
        decoded = read_image(p)
        try:
            imgs[i] = spec.prepare(decoded, mask=mask)[0]
        except DataError as exc:  # e.g. no scan region in an all-black image: name the file
            raise DataError(f"{p}: {exc}") from None
    if adapt_bn:
        predictor.adapt_batchnorm(imgs)
    scored = predictor.predict(imgs, tta=tta, features=features)
    probs = scored.probabilities
    out = make_predictions(
        frame["patient_id"].to_numpy(), frame["y_true"].to_numpy(), probs, bundle.classes, split=split, fold=-1,
        model=bundle.name, run_id=str(bundle.meta.run_id or bundle.path.resolve().parent.parent.name),
        extra=frame[["image", *[c for c in frame.columns if c not in ("image", "label")]]])
    pos, thr = bundle.positive_class, bundle.threshold
    if pos is not None and thr is not None and len(bundle.classes) == 2:
        neg = next(c for c in bundle.classes if c != pos)
        out["y_pred"] = np.where(out[f"p_{pos}"] >= thr, pos, neg)
        out["threshold"] = thr
    else:
        out["y_pred"] = [bundle.classes[k] for k in probs.argmax(1)]
    if mask_source is not None:
        out["roi_source"] = "automatic"
        out["roi_empty"] = roi_empty
    if adapt_bn:
        out["bn_adapted"] = len(imgs)
    if features and scored.features is not None:
        feats = pd.DataFrame(scored.features, columns=[f"f_{j}" for j in range(scored.features.shape[1])])
        out = pd.concat([out.reset_index(drop=True), feats], axis=1)
    return out
