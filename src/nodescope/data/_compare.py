"""Shift diagnostics: how different are two sets of images (two manifests), in what, and could a model cheat?

:func:`compare_datasets` reads two manifests, samples at most ``max_images`` rows of each (seeded), measures every
sampled image with :func:`nodescope.data._shift_features.image_descriptors` and compares the sets
(:mod:`nodescope.data._shift_stats`):

- every descriptor: KS test / SMD (Fisher's exact test for 0/1 flags), Holm-adjusted;
- class prevalence: chi-square test and Cramer's V;
- **overall**: the cross-validated AUC of a logistic regression telling B from A on all descriptors;
- **shortcut flags**: the same classifier on the *acquisition* descriptors only (image geometry, colour, annotation
  marks, side-panel text: :data:`~nodescope.data._shift_features.ACQUISITION_FEATURES`), for the sites (A vs B) and
  for each class against the others within each set. An AUC of at least ``flag_auc`` whose lower confidence bound is
  above 0.5 is flagged: a model could separate these groups without looking at the lesion;
- given a classifier bundle: its penultimate features (:class:`nodescope.models.Predictor`, the one prediction path)
  of every sampled image, the domain-classifier AUC and the MMD permutation test on them, and each image's
  out-of-fold probability of belonging to B (the images of B with the highest and of A with the lowest look most
  foreign to the other set).

:func:`write_comparison` writes the report folder (``report.html``, ``summary.json``, CSV tables).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nodescope._estimate import Estimate
from nodescope.data._duplicates import thumbnail
from nodescope.data._io import read_image
from nodescope.data._manifest import Manifest, _resolve, read_manifest
from nodescope.data._shift_features import ACQUISITION_FEATURES, FEATURE_GROUPS, image_descriptors
from nodescope.data._shift_stats import MmdResult, domain_auc, feature_tests, mmd_test, prevalence_test
from nodescope.errors import ConfigError, DataError, StatisticsInputError

__all__ = ["EmbeddingShift", "ShiftComparison", "compare_datasets", "write_comparison"]

BINARY_FEATURES = ("not_grey", "tinted", "has_marks")
THUMB = 96


@dataclass(frozen=True)
class EmbeddingShift:
    """Shift in a classifier's feature space.

    Attributes
    ----------
    bundle : str
        The bundle folder.
    n_features : int
        Width of the penultimate features.
    domain : Estimate
        Cross-validated domain-classifier AUC (B vs A) on the features.
    mmd : MmdResult
    """

    bundle: str
    n_features: int
    domain: Estimate
    mmd: MmdResult


@dataclass(frozen=True)
class ShiftComparison:
    """The result of :func:`compare_datasets`.

    Attributes
    ----------
    names : tuple of str
        Display names of sets A and B.
    sources : tuple of str
        The two manifests.
    n_total : tuple of int
        Rows of each manifest (before sampling).
    images : pandas.DataFrame
        One row per sampled image: ``set`` (``A``/``B``), ``image`` (as in the manifest), ``label``, ``group``,
        every descriptor, and ``p_domain`` (out-of-fold probability of B on the bundle's features) with a bundle.
    histograms : numpy.ndarray
        ``(len(images), HIST_BINS)`` intensity histograms, rows as ``images``.
    thumbnails : numpy.ndarray
        ``(len(images), 96, 96)`` uint8 grey thumbnails, rows as ``images``.
    tests : pandas.DataFrame
        :func:`~nodescope.data._shift_stats.feature_tests`, with a ``group`` column.
    prevalence : pandas.DataFrame
    prevalence_test : dict
    overall : Estimate
        Domain-classifier AUC on all descriptors.
    shortcuts : pandas.DataFrame
        ``target``, ``features``, ``n``, ``auc``, ``ci_low``, ``ci_high``, ``flagged``.
    embedding : EmbeddingShift or None
    settings : dict
        ``max_images``, ``seed``, ``flag_auc``, ``folds``, ``n_permutations``, ``group_cols``, ``spacing_col``.
    """

    names: tuple[str, str]
    sources: tuple[str, str]
    n_total: tuple[int, int]
    images: pd.DataFrame
    histograms: np.ndarray
    thumbnails: np.ndarray
    tests: pd.DataFrame
    prevalence: pd.DataFrame
    prevalence_test: dict[str, float]
    overall: Estimate
    shortcuts: pd.DataFrame
    embedding: EmbeddingShift | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def largest_differences(self, k: int = 3) -> pd.DataFrame:
        """The ``k`` descriptors whose distributions differ most (largest KS D or |difference in proportions|), among
        those defined for at least 5 images and a fifth of the sampled images of each set (a tint hue measured on a
        handful of coloured images is not a difference between the sets)."""
        n = [int((self.images["set"] == s).sum()) for s in ("A", "B")]
        t = self.tests.dropna(subset=["statistic"])
        t = t[(t["n_a"] >= max(5, 0.2 * n[0])) & (t["n_b"] >= max(5, 0.2 * n[1]))].copy()
        t["size"] = t["statistic"].abs()
        return t.sort_values("size", ascending=False).head(k)


def _sample(m: Manifest, max_images: int | None, seed: int) -> pd.DataFrame:
    frame = m.frame.reset_index(drop=True)
    if max_images is not None and len(frame) > max_images:
        keep = np.sort(np.random.default_rng(seed).choice(len(frame), max_images, replace=False))
        frame = frame.iloc[keep]
    return frame


def _spacing(value: str, column: str, m: Manifest, row: int) -> float | None:
    if value == "":
        return None
    try:
        out = float(value)
    except ValueError:
        out = math.nan
    if not math.isfinite(out) or out <= 0:
        raise DataError(f"{m.path}: row {row + 2}, column {column!r} (value {value!r}): expected a positive pixel "
                        "spacing in millimetres")
    return out


def _measure(m: Manifest, rows: pd.DataFrame, tag: str, spacing_col: str | None
             ) -> tuple[pd.DataFrame, list[np.ndarray], list[np.ndarray]]:
    """Descriptors, histograms and thumbnails of the sampled rows of one manifest."""
    records, hists, thumbs = [], [], []
    has_mask = "mask" in rows.columns
    for idx, row in rows.iterrows():
        path = _resolve(m.root, row["image"])
        img = read_image(path)
        mask = None
        if has_mask and row["mask"]:
            mask = read_image(_resolve(m.root, row["mask"])).pixels
        spacing = None
        if spacing_col and spacing_col in rows.columns:
            spacing = _spacing(row[spacing_col], spacing_col, m, int(idx))
        if spacing is None and img.spacing is not None:
            spacing = float(np.mean(img.spacing))
        desc, hist = image_descriptors(img.pixels, mask=mask, spacing_mm=spacing, name=str(path))
        records.append({"set": tag, "image": row["image"], "label": row["label"], "group": row[m.group_col],
                        "path": str(path), "mask_path": str(_resolve(m.root, row["mask"])) if has_mask and row["mask"] else "",
                        **desc})
        hists.append(hist)
        thumbs.append(thumbnail(img.pixels, THUMB).reshape(THUMB, THUMB).round().astype(np.uint8))
    return pd.DataFrame(records), hists, thumbs


def _cv_groups(images: pd.DataFrame) -> np.ndarray:
    """Cross-validation groups of the pooled sets: ``set/group``, with the groups of an image file that is in both
    sets merged, so that copies of one image are never on both sides of a fold (a copy in the training fold labelled
    as the other set would push the held-out one the wrong way: two identical sets gave an AUC of 0.06)."""
    keys = (images["set"] + "/" + images["group"].astype(str)).to_numpy()
    parent = {k: k for k in keys}

    def root(k: str) -> str:
        while parent[k] != k:
            k = parent[k]
        return k

    for _, rows in images.groupby("path"):
        first = root(keys[rows.index[0]])
        for i in rows.index[1:]:
            parent[root(keys[i])] = first
    return np.array([root(k) for k in keys], dtype=object)


def _shortcuts(images: pd.DataFrame, names: tuple[str, str], *, flag_auc: float, folds: int, seed: int
               ) -> pd.DataFrame:
    """Domain-classifier AUCs on the acquisition descriptors: sites, and each class against the rest per set."""
    feats = list(ACQUISITION_FEATURES)
    targets: list[tuple[str, pd.DataFrame, np.ndarray]] = [
        (f"site: {names[1]} vs {names[0]}", images, (images["set"] == "B").to_numpy())]
    pooled_groups = _cv_groups(images)
    for tag, name in zip(("A", "B"), names, strict=True):
        part = images[images["set"] == tag]
        labels = sorted(set(part["label"]))
        if len(labels) < 2:
            continue
        for c in labels:
            targets.append((f"class within {name}: {c} vs rest", part, (part["label"] == c).to_numpy()))
    rows = []
    for target, part, y in targets:
        row: dict[str, Any] = {"target": target, "features": "acquisition", "n": len(part), "n_positive": int(y.sum()),
                               "auc": math.nan, "ci_low": math.nan, "ci_high": math.nan, "note": ""}
        try:
            groups = pooled_groups if part is images else part["group"].astype(str).to_numpy()
            est, _ = domain_auc(part[feats].to_numpy(float), y, groups=groups, folds=folds, seed=seed)
            row.update(auc=est.estimate, ci_low=est.ci_low, ci_high=est.ci_high, note=est.note)
        except StatisticsInputError as exc:  # a class with fewer than 2 images (groups): not estimable
            row["note"] = str(exc)
        row["flagged"] = bool(row["auc"] >= flag_auc and row["ci_low"] > 0.5)
        rows.append(row)
    return pd.DataFrame(rows)


def _predictor(bundle: str | Path, samples: list[tuple[Manifest, pd.DataFrame]]) -> Any:
    """The bundle loaded once; refused before any image is measured when it crops to masks that a row lacks."""
    from nodescope.models import Predictor

    pred = Predictor(bundle)
    if pred.spec.needs_mask:
        for m, rows in samples:
            masks = rows["mask"] if "mask" in rows.columns else pd.Series("", index=rows.index)
            if (masks == "").any():
                i = int(np.flatnonzero((masks == "").to_numpy())[0])
                raise DataError(f"bundle {bundle} crops to the lesion mask (input.roi = {pred.spec.roi!r}), but image "
                                f"{rows['image'].iloc[i]!r} (row {int(rows.index[i]) + 2} of {m.path}) has no mask")
    return pred


def _embedding(images: pd.DataFrame, pred: Any, *, folds: int, seed: int, n_permutations: int
               ) -> tuple[EmbeddingShift, np.ndarray]:
    """The bundle's penultimate features of every sampled image, and the shift between the sets in that space."""
    masks = None
    if pred.spec.needs_mask:
        masks = [read_image(p).pixels[..., 0] for p in images["mask_path"]]
    out = pred.predict_images(list(images["path"]), masks=masks, features=True)
    feats = np.asarray(out.features, float)
    y = (images["set"] == "B").to_numpy()
    dom, oof = domain_auc(feats, y, groups=_cv_groups(images), folds=folds, seed=seed)
    mmd = mmd_test(feats[~y], feats[y], n_permutations=n_permutations, seed=seed)
    return EmbeddingShift(str(pred.bundle.path), feats.shape[1], dom, mmd), oof


def compare_datasets(a: str | Path, b: str | Path, *, names: tuple[str | None, str | None] | None = None,
                     group_cols: tuple[str, str] = ("patient_id", "patient_id"), max_images: int | None = 200,
                     seed: int = 0, bundle: str | Path | None = None, spacing_col: str | None = None,
                     flag_auc: float = 0.75, folds: int = 5, n_permutations: int = 500) -> ShiftComparison:
    """Compare two image sets (manifests) for distribution shift.

    Parameters
    ----------
    a, b : path
        Manifests (see ``docs/manifest.md``); A is the reference (e.g. the training site).
    names : tuple of (str or None), optional
        Display names; default (or where None) the manifests' folder names (``A``/``B`` when they are equal).
    group_cols : tuple of str, default ("patient_id", "patient_id")
        Grouping column of each manifest (``dup_group`` for BUSI): images of one group stay in one fold of the
        domain classifiers.
    max_images : int or None, default 200
        Images sampled at random (seeded) from each manifest; None: all.
    seed : int, default 0
        Sampling, folds and permutations.
    bundle : path, optional
        A classifier bundle: adds the shift in its penultimate-feature space.
    spacing_col : str, optional
        A manifest column with the pixel spacing in millimetres (used where present and not blank; DICOM spacing
        otherwise).
    flag_auc : float, default 0.75
        Shortcut flag threshold on the acquisition-descriptor AUC.
    folds : int, default 5
        Cross-validation folds of the domain classifiers.
    n_permutations : int, default 500
        Permutations of the MMD test.

    Returns
    -------
    ShiftComparison

    Raises
    ------
    ConfigError
        For option values out of range.
    ManifestError, DataError
        For manifests or images that cannot be read (naming the file, row and column).
    """
    if max_images is not None and max_images < 4:
        raise ConfigError(f"max_images: must be at least 4 (or None for all), got {max_images}")
    if not 0.5 <= flag_auc <= 1:
        raise ConfigError(f"flag_auc: must be in [0.5, 1], got {flag_auc}")
    if folds < 2:
        raise ConfigError(f"folds: must be >= 2, got {folds}")
    if n_permutations < 1:
        raise ConfigError(f"n_permutations: must be >= 1, got {n_permutations}")
    ma = read_manifest(a, check_images=False, group_col=group_cols[0])
    mb = read_manifest(b, check_images=False, group_col=group_cols[1])
    if spacing_col and spacing_col not in ma.frame.columns and spacing_col not in mb.frame.columns:
        raise ConfigError(f"spacing_col: neither {a} nor {b} has a column {spacing_col!r}")
    na, nb = Path(a).resolve().parent.name, Path(b).resolve().parent.name
    default = (na, nb) if na != nb else ("A", "B")
    given = names or (None, None)
    shown = (given[0] or default[0], given[1] or default[1])
    rows_a, rows_b = _sample(ma, max_images, seed), _sample(mb, max_images, seed + 1)
    pred = None if bundle is None else _predictor(bundle, [(ma, rows_a), (mb, rows_b)])
    fa, ha, ta = _measure(ma, rows_a, "A", spacing_col)
    fb, hb, tb = _measure(mb, rows_b, "B", spacing_col)
    images = pd.concat([fa, fb], ignore_index=True)
    all_feats = [f for group in FEATURE_GROUPS.values() for f in group]
    tests = feature_tests(fa, fb, all_feats, binary=BINARY_FEATURES)
    tests.insert(0, "group", [g for g, fs in FEATURE_GROUPS.items() for _ in fs])
    prevalence, ptest = prevalence_test(fa["label"], fb["label"])
    y = (images["set"] == "B").to_numpy()
    overall, _ = domain_auc(images[all_feats].to_numpy(float), y, groups=_cv_groups(images), folds=folds, seed=seed)
    shortcuts = _shortcuts(images, shown, flag_auc=flag_auc, folds=folds, seed=seed)
    embedding = None
    if pred is not None:
        embedding, oof = _embedding(images, pred, folds=folds, seed=seed, n_permutations=n_permutations)
        images["p_domain"] = oof
    settings = {"max_images": max_images, "seed": seed, "flag_auc": flag_auc, "folds": folds,
                "n_permutations": n_permutations, "group_cols": list(group_cols), "spacing_col": spacing_col}
    return ShiftComparison(names=shown, sources=(str(a), str(b)), n_total=(len(ma), len(mb)), images=images,
                           histograms=np.vstack(ha + hb), thumbnails=np.stack(ta + tb), tests=tests,
                           prevalence=prevalence, prevalence_test=ptest, overall=overall, shortcuts=shortcuts,
                           embedding=embedding, settings=settings)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_dict(result: ShiftComparison) -> dict[str, Any]:
    """The JSON summary of a comparison (what ``summary.json`` holds)."""
    def est(e: Estimate) -> dict[str, Any]:
        return {"estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high, "method": e.method,
                "alpha": e.alpha, "n": e.n, "note": e.note}

    out: dict[str, Any] = {
        "names": list(result.names), "sources": list(result.sources), "n_total": list(result.n_total),
        "n_sampled": [int((result.images["set"] == s).sum()) for s in ("A", "B")],
        "settings": result.settings, "domain_auc_descriptors": est(result.overall),
        "largest_differences": result.largest_differences(5)[["feature", "test", "statistic", "smd", "p_holm"]]
        .to_dict("records"),
        "prevalence": result.prevalence.to_dict("records"), "prevalence_test": result.prevalence_test,
        "shortcuts": result.shortcuts.to_dict("records"),
        "shortcut_flags": [t for t, f in zip(result.shortcuts["target"], result.shortcuts["flagged"], strict=True)
                           if f],
        "embedding": None,
    }
    if result.embedding is not None:
        e = result.embedding
        out["embedding"] = {"bundle": e.bundle, "n_features": e.n_features, "domain_auc": est(e.domain),
                            "mmd2": e.mmd.mmd2, "mmd_p_value": e.mmd.p_value, "mmd_bandwidth": e.mmd.bandwidth,
                            "mmd_permutations": e.mmd.n_permutations}
    return _clean(out)


def write_comparison(result: ShiftComparison, out: str | Path) -> list[Path]:
    """Write ``report.html``, ``summary.json``, ``images.csv``, ``tests.csv``, ``prevalence.csv`` and
    ``shortcuts.csv`` into the folder ``out`` (created; existing files of these names are replaced -- the caller
    checks outputs first, see :func:`nodescope._files.check_outputs`).

    Returns
    -------
    list of Path
        The files written.
    """
    from nodescope._files import atomic_write_csv, atomic_write_text
    from nodescope.data._compare_report import build_report

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [atomic_write_text(folder / "report.html", build_report(result).render()),
             atomic_write_text(folder / "summary.json", json.dumps(summary_dict(result), indent=2) + "\n"),
             atomic_write_csv(result.images.drop(columns=["path", "mask_path"]), folder / "images.csv",
                              index=False),
             atomic_write_csv(result.tests, folder / "tests.csv", index=False),
             atomic_write_csv(result.prevalence, folder / "prevalence.csv", index=False),
             atomic_write_csv(result.shortcuts, folder / "shortcuts.csv", index=False)]
    return paths
