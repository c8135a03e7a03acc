"""Batch explanation: images (files, folders, manifests) -> overlays, saved heat maps, localisation scores, a gallery.

Output folder::

    explanations.csv          one row per image and method: ids, label, explained class, probabilities, the CAM
                              layer, mask_fraction, energy_in_mask, pointing_hit, and the files below
    summary.csv               (images with masks) means per method and class with patient-bootstrap intervals
    heatmaps/<method>/*.png   each heat map at the original size, 16-bit grey (value x 65535): the scores are
                              computed from exactly these quantised maps, so they can be recomputed from the files
    overlays/<method>/*.png   the map blended over the original image (RGB)
    gallery.html              self-contained page: the summary and every image with its overlays
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nodescope.data import read_image
from nodescope.errors import DataError
from nodescope.explain._cam import CamExplainer, CamResult
from nodescope.explain._localise import (
    LocalisationSummary,
    energy_in_mask,
    pointing_hit,
    summarise_localisation,
)
from nodescope.explain._overlay import display_pixels, overlay_heatmap
from nodescope.models import ModelBundle

__all__ = ["ExplainRun", "explain_files", "write_gallery"]

log = logging.getLogger(__name__)

_UNIT_COLS = ("patient_id", "lesion_id")
#: one gallery entry: the first score row of an image, its thumbnail, and (method, overlay thumbnail) pairs
_Card = tuple[dict[str, object], str, list[tuple[str, str]]]


@dataclass(frozen=True)
class ExplainRun:
    """What :func:`explain_files` computed and wrote.

    Attributes
    ----------
    scores : pandas.DataFrame
        The rows of ``explanations.csv``.
    summary : LocalisationSummary or None
        None when no image has a mask.
    methods : tuple of str
    bundle : str
        The bundle's folder.
    files : dict
        ``explanations``, ``summary`` (when written), ``gallery`` -> path.
    """

    scores: pd.DataFrame
    summary: LocalisationSummary | None
    methods: tuple[str, ...]
    bundle: str
    files: dict[str, Path] = field(default_factory=dict)


def _read_mask(path: Path | None, shape: tuple[int, int], image: Path) -> np.ndarray | None:
    if path is None:
        return None
    m = read_image(path).pixels
    m = m.max(axis=-1) if m.ndim == 3 else m
    if tuple(m.shape) != tuple(shape):
        raise DataError(f"{path}: mask size {tuple(m.shape)} differs from its image {image} {tuple(shape)}")
    return m > 0


def _roi_mask(mask: np.ndarray | None, needed: bool) -> np.ndarray | None:
    return mask.astype(np.uint8) if needed and mask is not None else None


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _thumb(array: np.ndarray, side: int) -> str:
    from PIL import Image

    img = Image.fromarray(array)
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _score_row(res: CamResult, mask: np.ndarray | None, tolerance: float) -> tuple[np.ndarray, dict[str, float]]:
    """Quantise the map to 16 bits (what is saved) and score it against the mask."""
    q = np.rint(res.heatmap * 65535.0).astype(np.uint16)
    h = q.astype(np.float64) / 65535.0
    if mask is None:
        return q, {"mask_fraction": np.nan, "energy_in_mask": np.nan, "pointing_hit": np.nan}
    return q, {"mask_fraction": float(mask.mean()) if mask.any() else np.nan,
               "energy_in_mask": energy_in_mask(h, mask), "pointing_hit": pointing_hit(h, mask, tolerance=tolerance)}


def _units(frame: pd.DataFrame, fusion: bool) -> list[list[int]]:
    if not fusion:
        return [[i] for i in range(len(frame))]
    keys = [c for c in _UNIT_COLS if c in frame.columns]
    return [list(idx) for idx in frame.groupby(keys, sort=False, dropna=False).indices.values()]


def explain_files(bundle: ModelBundle, inputs: Sequence[str | Path], out: str | Path, *,
                  methods: Sequence[str] = ("gradcam",), target: int | str | None = None, alpha: float = 0.45,
                  tolerance: float = 0.0, n_boot: int = 2000, ci_alpha: float = 0.05, seed: int = 0,
                  group_col: str | None = None, thumbnail: int = 256, gallery_max: int = 200) -> ExplainRun:
    """Explain every image of ``inputs`` with each CAM method and write the outputs into ``out``.

    Parameters
    ----------
    bundle : ModelBundle
        A classifier or fusion bundle.
    inputs : sequence of str or Path
        Manifests (``.csv``; a ``mask`` column gives the localisation scores), folders of images, image files --
        read as ``nodescope predict`` reads them (rows of modalities the bundle was not trained on are left out).
    out : str or Path
        Output folder (written into; the caller checks it, see :func:`nodescope._files.check_outputs`).
    methods : sequence of str
        CAM methods (:data:`nodescope.explain.METHODS`).
    target : int, str or None
        Class to explain; None: each image's predicted class.
    alpha : float, default 0.45
        Overlay colour weight.
    tolerance : float, default 0
        Pointing-game tolerance in pixels.
    n_boot, ci_alpha, seed
        Patient bootstrap of the summary.
    group_col : str, optional
        Manifest grouping column (default: the bundle's, else ``patient_id``).
    thumbnail : int, default 256
        Longest side of the gallery's images (the PNG files keep the full size).
    gallery_max : int, default 200
        Images shown in the gallery (the first ones, in input order; every image still gets its files and row).

    Returns
    -------
    ExplainRun
    """
    from nodescope.models._predict_io import _collect

    out = Path(out)
    gcol = group_col or str(bundle.meta.group_col or "patient_id")
    mods = bundle.meta.modalities
    frame, paths, mask_paths = _collect(inputs, group_col=gcol, modalities=list(mods) if mods else None)
    fusion = bundle.kind == "fusion"
    if fusion and "modality" not in frame.columns:
        raise DataError(f"input: a fusion bundle explains manifests with a 'modality' column; got {list(inputs)}")
    needs_mask = bundle.spec.needs_mask
    rows: list[dict[str, object]] = []
    gallery: dict[str, _Card] = {}
    with ExitStack() as stack:
        cams = [stack.enter_context(CamExplainer(bundle, method=m)) for m in methods]  # type: ignore[arg-type]
        for unit in _units(frame, fusion):
            imgs = {i: read_image(paths[i]) for i in unit}
            masks = {i: _read_mask(mask_paths[i], imgs[i].pixels.shape[:2], paths[i]) for i in unit}
            for i in unit:
                if needs_mask and masks[i] is None:
                    raise DataError(f"{paths[i]}: the bundle crops to the lesion (input.roi {bundle.spec.roi!r}) but "
                                    "this image has no mask; give a manifest with a 'mask' column")
            roi = {i: _roi_mask(masks[i], needs_mask) for i in unit}
            for i in unit:
                for cam in cams:
                    res = _explain_one(cam, i, unit, frame, imgs, roi, target)
                    shown = len(gallery) < gallery_max or str(paths[i]) in gallery
                    rows.append(_write_one(out, i, paths[i], frame.iloc[i], imgs[i], masks[i], mask_paths[i], res,
                                           bundle, alpha, tolerance, gallery if shown else None, thumbnail))
    scores = pd.DataFrame(rows)
    summary = None
    if scores["mask"].astype(str).ne("").any():
        summary = summarise_localisation(scores[scores["mask"].astype(str) != ""], n_boot=n_boot, alpha=ci_alpha,
                                         seed=seed)
    return _finish(out, scores, summary, tuple(methods), bundle, gallery)


def _explain_one(cam: CamExplainer, i: int, unit: list[int], frame: pd.DataFrame, imgs: dict[int, Any],
                 roi: dict[int, np.ndarray | None], target: int | str | None) -> CamResult:
    """One image's map; a fusion image is explained with the first image of each other modality of its unit as
    context (the image training used for that modality)."""
    if not cam.fusion:
        return cam.explain(imgs[i], target, mask=roi[i])
    mod = str(frame.at[i, "modality"])
    first: dict[str, int] = {}
    for j in unit:
        first.setdefault(str(frame.at[j, "modality"]), j)
    others = {m: j for m, j in first.items() if m != mod}
    return cam.explain(imgs[i], target, mask=roi[i], modality=mod, others={m: imgs[j] for m, j in others.items()},
                       other_masks={m: roi[j] for m, j in others.items()})


def _write_one(out: Path, i: int, path: Path, row: pd.Series, image: object, mask: np.ndarray | None,
               mask_path: Path | None, res: CamResult, bundle: ModelBundle, alpha: float, tolerance: float,
               gallery: dict[str, _Card] | None, thumbnail: int) -> dict[str, object]:
    q, metrics = _score_row(res, mask, tolerance)
    shown = display_pixels(image, uint16=bundle.spec.uint16)  # type: ignore[arg-type]
    over = overlay_heatmap(shown, q.astype(np.float32) / 65535.0, alpha)
    stem = f"{i:05d}_{path.stem}"
    heat_file = out / "heatmaps" / res.method / f"{stem}.png"
    over_file = out / "overlays" / res.method / f"{stem}.png"
    for f, arr in ((heat_file, q), (over_file, over)):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(_png(arr))
    rec: dict[str, object] = {
        "image": str(path), "patient_id": str(row.get("patient_id", "")), "label": str(row.get("y_true", "") or ""),
        "modality": str(res.modality or row.get("modality", "") or ""), "method": res.method, "layer": res.layer,
        "target_class": res.target_class,
        **{f"p_{c}": float(p) for c, p in zip(bundle.classes, res.probabilities, strict=True)},
        "mask": str(mask_path) if mask_path is not None else "", **metrics,
        "heatmap": heat_file.relative_to(out).as_posix(), "overlay": over_file.relative_to(out).as_posix()}
    rec["group"] = rec["patient_id"]
    if gallery is None:
        return rec
    if rec["image"] not in gallery:
        rgb = shown if shown.ndim == 3 else np.repeat(shown[..., None], 3, axis=-1)
        gallery[str(rec["image"])] = (rec, _thumb(rgb, thumbnail), [])
    gallery[str(rec["image"])][2].append((res.method, _thumb(over, thumbnail)))
    return rec


def write_gallery(path: Path, scores: pd.DataFrame, summary: LocalisationSummary | None, methods: Sequence[str],
                  bundle: ModelBundle, gallery: dict[str, _Card]) -> Path:
    """The self-contained HTML gallery (images embedded as base64 PNG thumbnails)."""
    from nodescope.report import HtmlReport

    banner = ("Trained on SYNTHETIC demo data: these maps exercise the software and have no clinical meaning."
              if bundle.meta.synthetic_data else None)
    rep = HtmlReport(f"Class activation maps: {bundle.name}", banner=banner)
    rep.paragraph(f"Bundle {bundle.path}; methods: {', '.join(methods)}; {scores['image'].nunique()} image(s). "
                  "Each map is the CAM of the explained class at the backbone layer named below, drawn back onto "
                  "the original image through the input transform (crop, padding and resize undone) and scaled to "
                  "[0, 1] over the pixels the model saw.")
    if summary is not None:
        rep.heading("Does the heat map look at the lesion?")
        rep.paragraph("Energy in mask: share of the map's energy inside the lesion mask (chance level: the mask's "
                      "area fraction, mask_fraction). Pointing game: share of images whose map peaks inside the "
                      "lesion. Means with 95% percentile bootstrap intervals resampling patients.", css_class="note")
        rep.table(summary.to_frame()[["method", "class", "metric", "estimate", "ci_low", "ci_high", "n",
                                      "n_groups", "n_undefined"]])
    n_all = scores["image"].nunique()
    rep.heading("Images")
    if len(gallery) < n_all:
        rep.paragraph(f"The first {len(gallery)} of {n_all} images are shown; explanations.csv and the PNG files "
                      "cover all of them.", css_class="note")
    cards = []
    for rec, original, overs in gallery.values():
        meta = (f"{rec['patient_id']} | label {rec['label'] or '-'} | explained: {rec['target_class']}"
                + (f" | {rec['modality']}" if rec["modality"] else ""))
        sub = scores[(scores["image"] == rec["image"])]
        figs = [f'<figure><img alt="original" src="data:image/png;base64,{original}"/><figcaption>original'
                "</figcaption></figure>"]
        for method, data in overs:
            r = sub[sub["method"] == method]
            e = r["energy_in_mask"].iloc[0] if len(r) else np.nan
            layer = r["layer"].iloc[0] if len(r) else ""
            cap = f"{method} @ {layer}" + ("" if not np.isfinite(e) else f" | energy in mask {e:.2f}")
            figs.append(f'<figure><img alt="{html.escape(method)}" src="data:image/png;base64,{data}"/>'
                        f"<figcaption>{html.escape(cap)}</figcaption></figure>")
        cards.append(f'<div class="cam-card"><p class="note">{html.escape(str(rec["image"]))}<br/>'
                     f'{html.escape(meta)}</p><div class="cam-row">{"".join(figs)}</div></div>')
    rep.raw_html("<style>.cam-row{display:flex;flex-wrap:wrap;gap:.5rem}.cam-row figure{margin:0;width:220px}"
                 ".cam-row img{width:220px;height:auto;image-rendering:pixelated}"
                 ".cam-card{border-top:1px solid #d5dbe5;padding:.4rem 0}</style>" + "".join(cards))
    from nodescope._files import atomic_write_text

    return atomic_write_text(path, rep.render())


def _finish(out: Path, scores: pd.DataFrame, summary: LocalisationSummary | None, methods: tuple[str, ...],
            bundle: ModelBundle, gallery: dict[str, _Card]) -> ExplainRun:
    from nodescope._files import atomic_write_csv

    files = {"explanations": atomic_write_csv(scores, out / "explanations.csv")}
    if summary is not None:
        files["summary"] = atomic_write_csv(summary.to_frame(), out / "summary.csv")
    files["gallery"] = write_gallery(out / "gallery.html", scores, summary, methods, bundle, gallery)
    return ExplainRun(scores, summary, methods, str(bundle.path), files)
