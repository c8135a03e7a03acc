"""Segmentation evaluation: per-image scores from saved masks, summaries with patient-bootstrap CIs, an HTML report
with overlays of the worst and best cases; several segmenters and their fusions side by side.

Two entry points:

- :func:`evaluate_segmenters`: apply segmenter bundles to a manifest with reference masks; every member, and with
  several members every fusion rule (mean, vote, STAPLE), is saved as masks (``masks/<model>/``) and scored on the
  same images.
- :func:`evaluate_table`: score an existing segmentation predictions table (``predictions.csv`` of ``nodescope
  segment train``), per model and split.

Both write into the output folder ``predictions.csv`` (evaluate_segmenters only), ``scores.csv`` (one row per
image and model), ``summary.csv`` (metric, estimate, 95% CI, n per model and split) and ``report.html``.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nodescope._files import atomic_folder, atomic_write_csv
from nodescope.errors import ConfigError, DataError
from nodescope.segment._fusion import FUSION_RULES, fuse_masks, postprocess_mask
from nodescope.segment._masks_io import read_mask, score_table, write_mask_png

__all__ = ["SegmentationEvaluation", "evaluate_segmenters", "evaluate_table"]


@dataclass(frozen=True)
class SegmentationEvaluation:
    """What an evaluation wrote and computed.

    Attributes
    ----------
    out : Path
    scores : DataFrame
        One row per image and model (and split), with the metrics.
    summary : DataFrame
        ``model``, ``split``, ``metric``, ``estimate``, ``ci_low``, ``ci_high``, ``n``, ``unit``.
    """

    out: Path
    scores: pd.DataFrame
    summary: pd.DataFrame

    def dice_table(self) -> pd.DataFrame:
        """Dice, detection rate and false-positive rate per model and split, side by side."""
        s = self.summary[self.summary["metric"].isin(["dice", "detection_rate", "false_positive_rate"])]
        return s.pivot_table(index=["model", "split"], columns="metric", values="estimate", sort=False).reset_index()


def _summaries(scores: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    from nodescope.segment._metrics import summarise_scores

    parts = []
    for (model, split), g in scores.groupby(["model", "split"], sort=False):
        f = summarise_scores(g, n_boot=n_boot, seed=seed).to_frame()
        f.insert(0, "split", split)
        f.insert(0, "model", model)
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


def _png_data(rgb: np.ndarray, max_side: int = 360) -> str:
    from PIL import Image

    im = Image.fromarray(rgb)
    scale = max_side / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _overlay_html(rows: pd.DataFrame, base: Path) -> str:
    from nodescope.data import read_image
    from nodescope.segment._overlay import overlay_contours

    cells = []
    for r in rows.itertuples(index=False):
        img = read_image(str(r.image_path)).pixels
        truth = read_mask(str(r.mask))
        pred = read_mask(base / str(r.pred_mask) if not Path(str(r.pred_mask)).is_absolute() else str(r.pred_mask))
        data = _png_data(overlay_contours(img, pred, truth))
        cap = html.escape(f"{r.image} - Dice {r.dice:.3f}")
        cells.append(f'<figure style="display:inline-block;margin:.3rem"><img src="data:image/png;base64,{data}" '
                     f'alt="{cap}"><figcaption>{cap}</figcaption></figure>')
    return "<div>" + "".join(cells) + "</div>"


def _report(scores: pd.DataFrame, summary: pd.DataFrame, base: Path, title: str, n_cases: int) -> str:
    from nodescope.report import HtmlReport
    from nodescope.segment._metrics import EMPTY_POLICY

    rep = HtmlReport(title)
    rep.paragraph("Every figure is computed from the saved mask files listed in scores.csv. Dice and IoU are "
                  "means over images with a lesion (a missed lesion counts 0); HD95 and ASSD over detected lesions; "
                  "95% intervals are percentile bootstraps over patients (groups). Empty masks: " + EMPTY_POLICY,
                  css_class="note")
    rep.heading("Summary")
    side = summary.pivot_table(index=["model", "split"], columns="metric", values="estimate", sort=False)
    rep.table(side.reset_index(), caption="Estimates per model and split (each member and fusion on the same images)")
    for (model, split), g in summary.groupby(["model", "split"], sort=False):
        rep.table(g.drop(columns=["model", "split"]), caption=f"{model} - {split}")
    rep.heading("Worst and best cases")
    rep.paragraph("Contours: prediction yellow, reference green.", css_class="note")
    for (model, split), g in scores.groupby(["model", "split"], sort=False):
        lesion = g[~g["truth_empty"].astype(bool)].sort_values("dice", kind="stable")
        if lesion.empty:
            continue
        rep.heading(f"{model} - {split}", level=3)
        rep.paragraph(f"worst {min(n_cases, len(lesion))}")
        rep.raw_html(_overlay_html(lesion.head(n_cases), base))
        rep.paragraph(f"best {min(n_cases, len(lesion))}")
        rep.raw_html(_overlay_html(lesion.tail(n_cases).iloc[::-1], base))
    return rep.render()


def _finish(scores: pd.DataFrame, tmp: Path, base: Path, n_boot: int, seed: int, n_cases: int,
            title: str) -> pd.DataFrame:
    if scores.empty:
        raise DataError("no image with a reference mask to score")
    summary = _summaries(scores, n_boot, seed)
    atomic_write_csv(scores, tmp / "scores.csv", index=False)
    atomic_write_csv(summary, tmp / "summary.csv", index=False)
    (tmp / "report.html").write_text(_report(scores, summary, base, title, n_cases), encoding="utf-8")
    return summary


def evaluate_table(predictions: str | Path, out: str | Path, *, n_boot: int = 2000, seed: int = 0,
                   n_cases: int = 4, spacing_col: str | None = None) -> SegmentationEvaluation:
    """Score a segmentation predictions table from its saved masks; write scores, summary and report into ``out``.

    Parameters
    ----------
    predictions : str or Path
        A table with ``image_path`` (or ``image``), ``mask``, ``pred_mask`` (relative paths against the table's
        folder), ``model``, ``split`` and ``group``.
    out : str or Path
        Output folder.
    n_boot, seed : int
        Bootstrap replicates and seed.
    n_cases : int, default 4
        Overlays of the worst and best cases per model and split.
    spacing_col : str, optional
        Column of the pixel size in mm.
    """
    from nodescope.data._io_base import read_csv_text

    p = Path(predictions)
    table = read_csv_text(p, "segmentation predictions table", dtype=str, keep_default_na=False)
    for col, default in (("model", "model"), ("split", "all")):
        if col not in table.columns:
            table[col] = default
    if "image_path" not in table.columns:
        if "image" not in table.columns:
            raise DataError(f"{p}: column 'image_path' or 'image' missing (have {list(table.columns)})")
        table["image_path"] = [str(v if Path(v).is_absolute() else p.parent / v) for v in table["image"]]
    if "group" not in table.columns:
        table["group"] = table.get("patient_id", table["image_path"])
    scores = score_table(table, p.parent, spacing_col=spacing_col)
    scores["pred_mask"] = [str((p.parent / v).resolve()) for v in scores["pred_mask"]]
    with atomic_folder(out) as tmp:
        summary = _finish(scores, tmp, p.parent, n_boot, seed, n_cases, f"Segmentation: {p}")
    return SegmentationEvaluation(Path(out), scores, summary)


def evaluate_segmenters(bundles: Sequence[str | Path], manifest: str | Path, out: str | Path, *,
                        fusions: Sequence[str] = FUSION_RULES, group_col: str = "patient_id",
                        largest_component: bool = False, fill_holes: bool = False, tta: bool | None = None,
                        n_boot: int = 2000, seed: int = 0, n_cases: int = 4, spacing_col: str | None = None,
                        split: str = "test") -> SegmentationEvaluation:
    """Apply segmenter bundles to the rows of ``manifest`` that have a reference mask; members and fusions side by
    side (see the module docstring).

    Parameters
    ----------
    bundles : sequence of str or Path
        Segmenter bundles; with two or more, each rule of ``fusions`` is evaluated too.
    manifest : str or Path
        Rows with a ``mask`` are scored (an empty mask file = a lesion-free image).
    out : str or Path
        Output folder.
    fusions : sequence of {"mean", "vote", "staple"}
    group_col : str
        Bootstrap groups (patients); an empty ``patient_id`` falls back to it, as in training.
    largest_component, fill_holes : bool
        Post-processing of every member's and fusion's mask.
    tta : bool, optional
        Default: each bundle's ``input.tta``.
    n_boot, seed, n_cases, spacing_col
        As :func:`evaluate_table`.
    split : str, default "test"
        The ``split`` value of the rows.
    """
    from nodescope.data import read_image
    from nodescope.segment._predict import Segmenter
    from nodescope.segment._train import _read_rows

    bad = [f for f in fusions if f not in FUSION_RULES]
    if bad:
        raise ConfigError(f"fusions: unknown rule(s) {bad}; valid: {list(FUSION_RULES)}")
    seg = Segmenter(list(bundles), tta=tta)
    names = [f"{i}:{n}" for i, n in enumerate(seg.names)] if len(set(seg.names)) < len(seg.names) else list(seg.names)
    models = names + ([f"fusion_{f}" for f in fusions] if len(names) > 1 else [])
    rows = _read_rows(Path(manifest), group_col, "manifest")
    pred_rows = []
    with atomic_folder(out) as tmp:
        for i, r in enumerate(rows.to_dict("records")):
            members, _tr, _shape = seg.member_probabilities(read_image(r["_path"]))
            masks = [p >= 0.5 for p in members]
            if len(members) > 1:
                masks += [fuse_masks(np.stack(members), f)[0] for f in fusions]  # type: ignore[arg-type]
            stem = f"{i:05d}_{Path(str(r['_path'])).stem}.png"
            for model, m in zip(models, masks, strict=True):
                if largest_component or fill_holes:
                    m = postprocess_mask(m, largest_component=largest_component, fill_holes=fill_holes)
                rel = f"masks/{model.replace(':', '_')}/{stem}"
                write_mask_png(m, tmp / rel)
                pred_rows.append({"patient_id": r["patient_id"], "group": r["group"], "image": r["image"],
                                  "image_path": r["_path"], "label": r["label"], "mask": r["_mask"],
                                  "pred_mask": rel, "model": model, "split": split, "fold": -1,
                                  **({spacing_col: r.get(spacing_col, "")} if spacing_col else {})})
        table = pd.DataFrame(pred_rows)
        atomic_write_csv(table, tmp / "predictions.csv", index=False)
        scores = score_table(table, tmp, spacing_col=spacing_col)
        summary = _finish(scores, tmp, tmp, n_boot, seed, n_cases, f"Segmentation: {', '.join(seg.names)}")
    scores["pred_mask"] = [str(Path(out) / v) for v in scores["pred_mask"]]
    return SegmentationEvaluation(Path(out), scores, summary)
