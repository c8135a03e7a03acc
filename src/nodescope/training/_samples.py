"""From a manifest to training samples: filtering, positive class, splits, preloaded tensors, fusion units."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nodescope.errors import ConfigError, DataError
from nodescope.evaluation import POSITIVE_NAMES
from nodescope.training._config import TrainConfig
from nodescope.training._data import intensity_reference, preload_images

__all__ = ["Samples", "build_samples", "resolve_positive"]

log = logging.getLogger(__name__)

_KEEP = ("image", "lesion_id", "site", "modality", "view")


def resolve_positive(classes: tuple[str, ...] | list[str], positive: str | None) -> str | None:
    """The positive class of a binary task (None for multi-class), per the predictions contract.

    When ``positive`` is not given it is inferred only if exactly one class is in
    :data:`nodescope.evaluation.POSITIVE_NAMES` (the rule of :func:`nodescope.evaluation.read_predictions`).
    """
    classes = tuple(classes)
    if len(classes) != 2:
        if positive is not None and positive not in classes:
            raise ConfigError(f"positive: {positive!r} is not a class; classes: {list(classes)}")
        return positive
    if positive is not None:
        if positive not in classes:
            raise ConfigError(f"positive: {positive!r} is not a class; classes: {list(classes)}")
        return positive
    hits = [c for c in classes if c.lower() in POSITIVE_NAMES]
    if len(hits) != 1:
        raise ConfigError(f"positive: cannot infer the positive class of {list(classes)}; name it (positive="
                          f"{classes[-1]!r}, say)")
    return hits[0]


@dataclass
class Samples:
    """One row per training sample (image, or unit for fusion) with its tensors.

    ``frame`` columns: ``patient_id``, ``group``, ``label``, ``y`` (class index), ``part`` (cv/test/external),
    ``fold``, plus ``image``/``lesion_id``/``site``/``modality``/``view`` where available.
    ``images``: ``(N, C, S, S)`` or ``(N, M, C, S, S)`` uint8; ``present``: ``(N, M)`` bool for fusion.
    """

    frame: pd.DataFrame
    images: torch.Tensor
    present: torch.Tensor | None
    hashes: list[str]
    classes: tuple[str, ...]
    positive: str | None
    dropped: dict[str, int]
    intensity_reference: tuple[float, ...] | None = None

    @property
    def y(self) -> np.ndarray:
        return self.frame["y"].to_numpy(np.int64)


def _read(path: Path, cfg: TrainConfig, classes: tuple[str, ...] | None, dropped: dict[str, int],
          tag: str) -> pd.DataFrame:
    from nodescope.data import read_manifest

    m = read_manifest(path, group_col=cfg.group_col)
    df = m.frame.copy()
    df["_path"] = [str(p) for p in m.image_paths()]
    df["_mask"] = [str(p) if p is not None else "" for p in m.mask_paths()]
    if cfg.modality is not None:
        if "modality" not in df.columns:
            raise DataError(f"modality={cfg.modality!r} but {path} has no 'modality' column")
        keep = df["modality"] == cfg.modality
        if not keep.any():
            raise DataError(f"modality: no rows of {cfg.modality!r} in {path}; found {sorted(set(df['modality']))}")
        dropped[f"{tag}: other modalities"] = int((~keep).sum())
        df = df[keep]
    if cfg.fusion == "intermediate":
        if "modality" not in df.columns:
            raise DataError(f"fusion needs a 'modality' column in {path}")
        keep = df["modality"].isin(cfg.modalities or [])
        dropped[f"{tag}: modalities not fused"] = int((~keep).sum())
        df = df[keep]
    if classes is not None and tag == "manifest":
        absent = [c for c in classes if c not in set(df["label"])]
        if absent:  # caught here: left for later, a misspelt class surfaced as a question about the positive class
            raise ConfigError(f"classes: {absent} have no rows in the development (cv) part: no row of {path} has "
                              f"such a label (its labels: {sorted(set(df['label']))})")
    if classes is not None:
        unknown = sorted(set(df["label"]) - set(classes))
        if unknown and cfg.classes is None:
            raise DataError(f"{path}: labels {unknown} not among the training classes {list(classes)}")
        keep = df["label"].isin(classes)
        if (~keep).any():
            dropped[f"{tag}: labels {sorted(set(df.loc[~keep, 'label']))}"] = int((~keep).sum())
            log.info("%s: %d rows with labels outside %s left out", path, int((~keep).sum()), list(classes))
        df = df[keep]
    if df.empty:
        raise DataError(f"{path}: no rows left after filtering (classes={cfg.classes}, modality={cfg.modality})")
    return df


def _apply_splits_file(frame: pd.DataFrame, path: Path, fixed: pd.Series) -> pd.DataFrame:
    """Parts and folds from a run's splits.csv, after checking the file itself and its fit to this manifest."""
    from nodescope.data import LeakageError, check_leakage
    from nodescope.data._io_base import read_csv_text

    sp = read_csv_text(path, "splits file")
    for col in ("group", "part", "fold"):
        if col not in sp.columns:
            raise DataError(f"splits_file {path}: column {col!r} missing (have {list(sp.columns)})")
    _check_split_cells(sp, path)
    try:
        check_leakage(sp)
    except LeakageError as exc:  # a group in two parts/folds: refuse rather than keep one of them silently
        raise LeakageError(f"splits_file {path}: {exc}") from exc
    g = sp.drop_duplicates("group").set_index("group")
    missing = sorted(set(frame["group"]) - set(g.index))
    if missing:
        raise DataError(f"splits_file {path}: {len(missing)} group(s) of this manifest are not in it, e.g. "
                         f"{missing[:5]}")
    frame = frame.copy()
    frame["part"] = frame["group"].map(g["part"])
    frame["fold"] = frame["group"].map(g["fold"]).astype(int)
    if fixed.any():
        clash = fixed & (frame["part"] != frame["split"])
        if clash.any():
            eg = frame.loc[clash].iloc[0]
            raise DataError(f"splits_file {path} contradicts the manifest's 'split' column on {int(clash.sum())} "
                             f"row(s): e.g. group {eg['group']!r} is {eg['split']!r} in the manifest but "
                             f"{eg['part']!r} in the splits file")
    return frame


#: The parts a training splits file may assign (as ``nodescope train`` writes them in splits.csv).
_SPLIT_PARTS = ("cv", "test", "external")


def _check_split_cells(sp: pd.DataFrame, path: Path) -> None:
    """Every ``part`` one training knows and every ``fold`` a whole number (``-1`` outside cv); else the file's
    line (header = line 1), column and value are named."""
    for i, (part, fold) in enumerate(zip(sp["part"], sp["fold"], strict=True)):
        line = i + 2
        if part not in _SPLIT_PARTS:
            raise DataError(f"splits_file {path}: line {line}, column 'part': unknown part {part!r}; expected one of "
                            f"{list(_SPLIT_PARTS)} (a splits.csv written by nodescope train)")
        try:
            k = int(fold)
        except ValueError:
            k = None
        if k is None or (part == "cv" and k < 0):
            want = "a fold number >= 0" if part == "cv" else "a whole number (-1 outside cv)"
            raise DataError(f"splits_file {path}: line {line}, column 'fold': {fold!r} is not {want}")


def _check_classes_present(dev: pd.DataFrame, classes: tuple[str, ...]) -> None:
    """Every class must be in the cv part and in the training rows of every fold (checked before any training)."""
    cv = dev[dev["part"] == "cv"]
    counts = cv["label"].value_counts()
    absent = [c for c in classes if c not in counts.index]
    if absent:
        raise DataError(f"classes: {absent} have no rows in the development (cv) part; its class counts are "
                         f"{ {str(k): int(v) for k, v in counts.items()} }. Remove them from classes or add data")
    folds = cv["fold"].astype(int)
    for k in sorted(set(folds)):
        have = set(cv.loc[folds != k, "label"])
        lack = [c for c in classes if c not in have]
        if lack:
            raise DataError(f"fold {k}: its training folds have no rows of class(es) {lack} (all of them are in "
                             f"fold {k}); use fewer folds or add data")


def build_samples(cfg: TrainConfig) -> Samples:
    """Read, filter, split and preload everything a run needs (see :class:`Samples`); images above
    ``cfg.max_pixels`` (when given) are refused."""
    from nodescope.data._io_base import max_pixels_limit

    with max_pixels_limit(cfg.max_pixels):
        return _build_samples(cfg)


def _build_samples(cfg: TrainConfig) -> Samples:
    from nodescope.data import check_leakage, make_splits

    dropped: dict[str, int] = {}
    classes0 = tuple(cfg.classes) if cfg.classes is not None else None
    dev = _read(cfg.manifest, cfg, classes0, dropped, "manifest")
    classes = classes0 or tuple(sorted(set(dev["label"])))
    if len(classes) < 2:
        raise ConfigError(f"classes: need >= 2 classes, found {list(classes)}")
    positive = resolve_positive(classes, cfg.positive)
    dev["group"] = dev[cfg.group_col].astype(str)
    fixed = dev["split"].isin(["test", "external"]) if "split" in dev.columns else pd.Series(False, index=dev.index)
    dev["part"], dev["fold"] = "", -1
    if fixed.any():
        dev.loc[fixed, "part"] = dev.loc[fixed, "split"]
    if cfg.splits_file is not None:
        dev = _apply_splits_file(dev, cfg.splits_file, fixed)
    else:
        pool = dev[~fixed]
        sp = make_splits(pool, method=cfg.cv, group_col=cfg.group_col, n_splits=cfg.folds,
                         test_size=cfg.test_size, seed=cfg.seed, site_col=cfg.site_col)
        dev.loc[pool.index, "part"] = sp["part"]
        dev.loc[pool.index, "fold"] = sp["fold"]
    _check_classes_present(dev, classes)
    frames = [dev]
    for i, ext in enumerate(cfg.external):
        e = _read(ext, cfg, classes, dropped, f"external[{i}]")
        e["group"] = e[cfg.group_col].astype(str)
        e["part"], e["fold"] = "external", -1
        frames.append(e)
    df = pd.concat(frames, ignore_index=True)
    check_leakage(df[["group", "part", "fold"]].assign(label=df["label"]))
    masks = None
    if cfg.roi != "none":
        masks = [m or None for m in df["_mask"]]
    reference = None
    if cfg.intensity == "match":  # from the development rows only (no test or external image), no labels
        dev = (df["part"] == "cv").to_numpy()
        dev_masks = [m for m, d in zip(masks, dev, strict=True) if d] if masks else None
        reference = intensity_reference(list(df["_path"][dev]), mask_paths=dev_masks, roi_margin=cfg.roi_margin,
                                        scan_crop=cfg.scan_crop, grey=cfg.grey, marks=cfg.marks)
    pre = preload_images(list(df["_path"]), size=cfg.image_size, channels=cfg.channels, mask_paths=masks,
                         roi_margin=cfg.roi_margin, scan_crop=cfg.scan_crop, grey=cfg.grey, intensity=cfg.intensity,
                         marks=cfg.marks, reference=reference, two_view=cfg.roi == "two-view",
                         context_scale=cfg.context_scale)
    if "patient_id" not in df.columns:
        df["patient_id"] = df["group"]
    df["patient_id"] = df["patient_id"].where(df["patient_id"].astype(str) != "", df["group"])
    cmap = {c: i for i, c in enumerate(classes)}
    df["y"] = df["label"].map(cmap).astype(int)
    if cfg.fusion != "intermediate":
        keep = ["patient_id", "group", "label", "y", "part", "fold", *[c for c in _KEEP if c in df.columns]]
        return Samples(df[keep].reset_index(drop=True), pre.images, None, pre.hashes, classes, positive, dropped,
                       reference)
    return _units(cfg, df, pre.images, pre.hashes, classes, positive, dropped)


def _units(cfg: TrainConfig, df: pd.DataFrame, images: torch.Tensor, hashes: list[str],
           classes: tuple[str, ...], positive: str | None, dropped: dict[str, int]) -> Samples:
    mods = list(cfg.modalities or [])
    keys = [c for c in cfg.unit_cols if c in df.columns]
    if "patient_id" not in keys:
        keys = ["patient_id", *keys]
    df = df.reset_index(drop=True)
    rows = []
    m = len(mods)
    unit_imgs, unit_present = [], []
    for key, g in df.groupby(keys, sort=True, dropna=False):
        labels = set(g["label"])
        if len(labels) > 1:
            raise DataError(f"unit {key}: images carry different labels {sorted(labels)}")
        x = torch.zeros((m, *images.shape[1:]), dtype=torch.uint8)
        pr = torch.zeros(m, dtype=torch.bool)
        for j, mod in enumerate(mods):
            hit = g.index[g["modality"] == mod]
            if len(hit):
                x[j] = images[int(hit[0])]
                pr[j] = True
                if len(hit) > 1:
                    log.info("unit %s: %d %s images, the first is used", key, len(hit), mod)
        first = g.iloc[0]
        rec = {c: first[c] for c in ("patient_id", "group", "label", "y", "part", "fold")}
        if "lesion_id" in g.columns:
            rec["lesion_id"] = first["lesion_id"]
        rec["modality"] = "+".join(mod for mod, p in zip(mods, pr.tolist(), strict=True) if p)
        rec["image"] = ";".join(g["image"])
        rows.append(rec)
        unit_imgs.append(x)
        unit_present.append(pr)
    frame = pd.DataFrame(rows)
    return Samples(frame, torch.stack(unit_imgs), torch.stack(unit_present), hashes, classes, positive, dropped)


def with_part(samples: Samples, mask: np.ndarray) -> Samples:
    """A view restricted to rows ``mask`` (used by tests)."""
    idx = np.flatnonzero(mask)
    return replace(samples, frame=samples.frame.iloc[idx].reset_index(drop=True), images=samples.images[idx],
                   present=None if samples.present is None else samples.present[idx])
