"""Synthetic lymph-node ultrasound demo data: B-mode, colour Doppler and strain elastography.

The generator draws one lymph node per patient from a class-conditional model of the sonographic signs that
radiologists use (short axis, long-to-short axis ratio, fatty hilum, cortical thickening, echogenicity, reticular
pattern, margins, calcification, cystic necrosis, vascular pattern, elasticity score) and renders it with a simple
but physical-looking imaging chain: tissue reflectivity x depth attenuation (with posterior shadowing/enhancement)
x time-gain compensation x correlated Rayleigh speckle, followed by log compression.

Every class-dependent parameter is drawn from overlapping distributions. ``difficulty`` moves each class-specific
parameter towards the average over the three classes::

    theta_c(d) = (1 - d) * theta_c + d * mean_k(theta_k)

(locations of continuous parameters, probabilities of binary and categorical ones), so ``d = 0`` gives the widest
class separation and ``d = 1`` makes the classes identical in distribution (chance-level discrimination).

The data are SYNTHETIC. They exercise the software; they carry no medical evidence.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from PIL import Image

from nodescope._files import atomic_path, atomic_write_csv, atomic_write_text
from nodescope.data._synth_render import (
    Geometry,
    NodeParams,
    block_mean,
    render_bmode,
    render_doppler,
    render_elastography,
    render_factor,
)
from nodescope.errors import ConfigError, OutputExistsError

__all__ = ["SYNTHETIC_CLASSES", "SYNTHETIC_MODALITIES", "SyntheticDataset", "make_synthetic_dataset"]

logger = logging.getLogger(__name__)

#: Class names written to the ``label`` column, in this order.
SYNTHETIC_CLASSES: tuple[str, ...] = ("benign", "lymphoma", "metastatic")
#: Modalities the generator can render (``modality`` column values).
SYNTHETIC_MODALITIES: tuple[str, ...] = ("bmode", "cdfi", "elastography")

_SITES = ("site_A", "site_B")
_FIRST_DAY = _dt.date(2023, 1, 1)
_N_DAYS = (_dt.date(2024, 12, 31) - _FIRST_DAY).days + 1

# --- class-conditional parameter tables (order of SYNTHETIC_CLASSES: benign, lymphoma, metastatic) -------------
# Continuous: name -> (per-class location, common spread), drawn as Normal(location_c(d), spread) on the scale given
# by the name (log_ = natural log). Values are chosen to resemble published sonographic descriptions of reactive,
# lymphomatous and metastatic nodes (e.g. Ahuja & Ying, Clin Radiol 2005;60:745-756; Ying et al., Ultrasound Med
# Biol 2013), not fitted to any data set.
_CONTINUOUS: dict[str, tuple[tuple[float, float, float], float]] = {
    "log_short_axis_mm": ((math.log(6.5), math.log(14.0), math.log(10.5)), 0.35),
    "log_ls_excess": ((math.log(1.3), math.log(0.35), math.log(0.25)), 0.5),  # L/S = 1 + exp(.)
    "log_echo": ((math.log(0.45), math.log(0.17), math.log(0.32)), 0.32),  # cortex reflectivity / background
    "hilum_width": ((0.46, 0.30, 0.28), 0.10),  # hilum half-width / node half short axis (when present)
    "bulge": ((0.03, 0.05, 0.20), 0.08),  # eccentric cortical bulge, fraction of the radius
    "heterogeneity": ((0.12, 0.22, 0.42), 0.12),
    "log_margin_blur": ((math.log(0.6), math.log(0.8), math.log(1.7)), 0.45),  # px at 128 px
    "irregularity": ((0.02, 0.03, 0.07), 0.025),
    "log_vascularity": ((math.log(2.0), math.log(4.5), math.log(3.0)), 0.35),  # number of vessel strokes
}
# Binary: name -> per-class probability.
_BINARY: dict[str, tuple[float, float, float]] = {
    "hilum": (0.90, 0.35, 0.15),
    "reticular": (0.05, 0.55, 0.05),
    "calcification": (0.02, 0.02, 0.18),
    "necrosis": (0.01, 0.05, 0.22),
}
# Categorical: name -> (levels, per-class probabilities).
_CATEGORICAL: dict[str, tuple[tuple[Any, ...], tuple[tuple[float, ...], ...]]] = {
    "doppler_pattern": (
        ("hilar", "peripheral", "mixed", "absent"),
        ((0.70, 0.02, 0.08, 0.20), (0.25, 0.10, 0.55, 0.10), (0.05, 0.65, 0.25, 0.05)),
    ),
    # Elasticity score after Alam et al., AJR 2008;191:604-610 (1: no/very small hard area; 2: hard area < 45 %;
    # 3: hard area >= 45 %; 4: hard area over the entire node).
    "elasto_score": (
        (1, 2, 3, 4),
        ((0.50, 0.38, 0.10, 0.02), (0.20, 0.45, 0.28, 0.07), (0.03, 0.12, 0.40, 0.45)),
    ),
}
# Clinical signals (clinical.csv).
_CLIN_CONTINUOUS: dict[str, tuple[tuple[float, float, float], float]] = {
    "age": ((42.0, 55.0, 63.0), 14.0),
    "log_ldh": ((math.log(190.0), math.log(300.0), math.log(225.0)), 0.25),
    "log_crp": ((math.log(5.0), math.log(9.0), math.log(4.0)), 0.9),
}
_CLIN_BINARY: dict[str, tuple[float, float, float]] = {
    "male": (0.45, 0.55, 0.60),
    "primary_cancer_history": (0.15, 0.08, 0.75),
    "b_symptoms": (0.08, 0.45, 0.12),
}
_REGIONS = ("cervical", "axillary", "inguinal")
_REGION_P = (0.6, 0.3, 0.1)
# Site effects (class-independent): gain, speckle grain, dynamic range (dB), Doppler blooming.
_SITE_EFFECTS: dict[str, dict[str, float]] = {
    "site_A": {"gain": 1.0, "grain": 1.0, "dynamic_range": 60.0, "bloom": 1.0},
    "site_B": {"gain": 1.3, "grain": 1.25, "dynamic_range": 54.0, "bloom": 1.35},
}


@dataclass(frozen=True)
class SyntheticDataset:
    """Where a synthetic data set was written and what it holds.

    Attributes
    ----------
    manifest_path : Path
        ``<root>/manifest.csv`` (one row per image; contract columns plus ``synthetic`` and ``synth_*``).
    clinical_path : Path
        ``<root>/clinical.csv`` (one row per patient).
    root : Path
        The output folder.
    n_patients : int
        Number of patients (one node each).
    n_images : int
        Number of images (``n_patients * len(modalities)``).
    classes : tuple of str
        Class names, ``("benign", "lymphoma", "metastatic")``.
    """

    manifest_path: Path
    clinical_path: Path
    root: Path
    n_patients: int
    n_images: int
    classes: tuple[str, ...]


def _shrink(values: Sequence[float], cls: int, difficulty: float) -> float:
    """``(1 - d) * values[cls] + d * mean(values)``."""
    return (1.0 - difficulty) * float(values[cls]) + difficulty * float(np.mean(values))


def _draw_node(rng: np.random.Generator, cls: int, difficulty: float) -> NodeParams:
    c: dict[str, float] = {}
    for name, (locs, spread) in _CONTINUOUS.items():
        c[name] = float(rng.normal(_shrink(locs, cls, difficulty), spread))
    b = {name: bool(rng.random() < _shrink(p, cls, difficulty)) for name, p in _BINARY.items()}
    cat: dict[str, Any] = {}
    for name, (levels, probs) in _CATEGORICAL.items():
        p = np.array([_shrink([row[j] for row in probs], cls, difficulty) for j in range(len(levels))])
        cat[name] = levels[int(rng.choice(len(levels), p=p / p.sum()))]
    short = float(np.clip(math.exp(c["log_short_axis_mm"]), 3.0, 35.0))
    ls = float(np.clip(1.0 + math.exp(c["log_ls_excess"]), 1.0, 4.5))
    long_mm = short * ls
    fov = max(20.0, long_mm * float(rng.uniform(1.3, 1.6)))  # field of view (mm) adapted to the node
    return NodeParams(
        short_axis_mm=short,
        ls_ratio=ls,
        echo=float(np.clip(math.exp(c["log_echo"]), 0.05, 1.2)),
        hilum=b["hilum"],
        hilum_width=float(np.clip(c["hilum_width"], 0.12, 0.7)),
        bulge=float(np.clip(c["bulge"], 0.0, 0.45)),
        heterogeneity=float(np.clip(c["heterogeneity"], 0.0, 0.9)),
        margin_blur=float(np.clip(math.exp(c["log_margin_blur"]), 0.25, 5.0)),
        irregularity=float(np.clip(c["irregularity"], 0.0, 0.2)),
        reticular=b["reticular"],
        calcification=b["calcification"],
        necrosis=b["necrosis"],
        doppler_pattern=str(cat["doppler_pattern"]),
        vascularity=max(1, round(math.exp(c["log_vascularity"]))),
        elasto_score=int(cat["elasto_score"]),
        fov_mm=fov,
    )


def _draw_clinical(rng: np.random.Generator, cls: int, difficulty: float) -> dict[str, Any]:
    c = {n: float(rng.normal(_shrink(locs, cls, difficulty), s)) for n, (locs, s) in _CLIN_CONTINUOUS.items()}
    b = {n: bool(rng.random() < _shrink(p, cls, difficulty)) for n, p in _CLIN_BINARY.items()}
    return {
        "age": int(np.clip(round(c["age"]), 18, 92)),
        "sex": "M" if b["male"] else "F",
        "node_region": _REGIONS[int(rng.choice(len(_REGIONS), p=_REGION_P))],
        "primary_cancer_history": "yes" if b["primary_cancer_history"] else "no",
        "b_symptoms": "yes" if b["b_symptoms"] else "no",
        "ldh_u_l": round(math.exp(c["log_ldh"])),
        "crp_mg_l": round(math.exp(c["log_crp"]), 1),
    }


def _check_args(
    n_patients: object, difficulty: object, image_size: object, modalities: object, seed: object
) -> tuple[str, ...]:
    if isinstance(n_patients, bool) or not isinstance(n_patients, int | np.integer):
        raise TypeError(f"n_patients must be an int, got {type(n_patients).__name__}")
    if n_patients < 3:
        raise ConfigError(f"n_patients must be >= 3 (one per class at least), got {n_patients}")
    if isinstance(difficulty, bool) or not isinstance(difficulty, int | float | np.floating | np.integer):
        raise TypeError(f"difficulty must be a number in [0, 1], got {type(difficulty).__name__}")
    if not 0.0 <= float(difficulty) <= 1.0:
        raise ConfigError(f"difficulty must be in [0, 1] (0 easy, 1 chance level), got {difficulty}")
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise TypeError(f"image_size must be an int, got {type(image_size).__name__}")
    if not 32 <= image_size <= 2048:
        raise ConfigError(f"image_size must be between 32 and 2048 pixels, got {image_size}")
    if isinstance(modalities, str) or not isinstance(modalities, Sequence):
        raise TypeError(
            f"modalities must be a sequence of names such as ('bmode', 'cdfi'), got {modalities!r}"
        )
    mods = tuple(modalities)
    if not mods:
        raise ConfigError(f"modalities is empty; choose from {SYNTHETIC_MODALITIES}")
    for m in mods:
        if m not in SYNTHETIC_MODALITIES:
            raise ConfigError(f"unknown modality {m!r}; valid: {SYNTHETIC_MODALITIES}")
    if len(set(mods)) != len(mods):
        raise ConfigError(f"modalities contains duplicates: {mods}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    return mods


#: The generator's marker file: one line per file it writes (paths relative to the data set folder).
SYNTH_MARKER = "synth_files.txt"
_MARKER_HEADER = "# files written by nodescope.data.make_synthetic_dataset; overwrite removes exactly these\n"


def _planned_files(pids: Sequence[str], mods: tuple[str, ...]) -> list[str]:
    """Every file a data set of patients ``pids`` writes, relative to its folder."""
    files = ["manifest.csv", "clinical.csv", "README.txt"]
    for pid in pids:
        files += [f"masks/{pid}_node.png", *(f"images/{pid}_{m}.png" for m in mods)]
    return files


def _listed_files(root: Path) -> set[str]:
    """The files an earlier generation recorded in its marker (relative paths inside ``root`` only)."""
    marker = root / SYNTH_MARKER
    if not marker.is_file():
        return set()
    lines = [ln.strip() for ln in marker.read_text(encoding="utf-8").splitlines()]
    return {ln for ln in lines if ln and not ln.startswith("#") and not Path(ln).is_absolute()
            and ".." not in Path(ln).parts}


def _prepare_out_dir(root: Path, overwrite: bool, planned: list[str]) -> None:
    """Refuse a folder holding a data set unless ``overwrite``; then remove only the files the marker lists.

    A file the new data set would write that the marker does not list (real data, or the user's own files) is never
    replaced, even with ``overwrite``.
    """
    ours = [root / "manifest.csv", root / "clinical.csv", root / "README.txt", root / SYNTH_MARKER]
    pngs = [*sorted((root / "images").glob("*.png")), *sorted((root / "masks").glob("*.png"))]
    existing = [p for p in ours if p.exists()] + pngs
    if existing and not overwrite:
        raise OutputExistsError(
            f"{root} already holds a data set ({existing[0].name} and {len(existing) - 1} more files); "
            "choose an empty folder or pass overwrite=True"
        )
    listed = _listed_files(root)
    foreign = [rel for rel in planned if (root / rel).exists() and rel not in listed]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise OutputExistsError(
            f"{root / foreign[0]}{more} would be replaced but were not written by the generator (not listed in "
            f"{root / SYNTH_MARKER}); refusing to replace them: move them or choose an empty folder"
        )
    for rel in sorted(listed):
        target = root / rel
        if target.is_file() or target.is_symlink():
            target.unlink()
    (root / SYNTH_MARKER).unlink(missing_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    # the marker first: a generation killed half-way can still be replaced with overwrite
    atomic_write_text(root / SYNTH_MARKER, _MARKER_HEADER + "".join(f"{rel}\n" for rel in planned))


def _save_png(arr: NDArray[np.uint8], path: Path) -> None:
    img = Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", compress_level=6)


def _readme_text(seed: int, n_patients: int, difficulty: float, image_size: int, mods: tuple[str, ...],
                 counts: dict[str, int], n_images: int) -> str:
    from nodescope import __version__

    return (
        "SYNTHETIC DATA - NOT PATIENT DATA\n"
        "=================================\n\n"
        f"Generated by nodescope {__version__} with nodescope.data.make_synthetic_dataset(\n"
        f"    n_patients={n_patients}, difficulty={difficulty}, image_size={image_size},\n"
        f"    modalities={mods!r}, seed={seed})\n\n"
        "Every image, mask and clinical value in this folder was drawn by a random generator from a\n"
        "class-conditional model of textbook sonographic signs of lymph nodes. They exercise the software;\n"
        "they carry no medical evidence, and no result obtained on them says anything about patients.\n\n"
        f"Patients: {n_patients} (one node each); images: {n_images}; classes: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + "\nSites: site_A, site_B (different gain, speckle grain and dynamic range); exam dates 2023-01-01..2024-12-31.\n\n"
        "Files\n-----\n"
        "manifest.csv   one row per image (patient_id, image, label, lesion_id, modality, mask, site, date,\n"
        "               synthetic='yes', synth_* = the true generating parameters of the node)\n"
        "clinical.csv   one row per patient (age, sex, node_short_axis_mm, site, exam_date, clinical signals)\n"
        "images/        <patient>_<modality>.png (bmode: 8-bit grey; cdfi, elastography: 8-bit RGB)\n"
        "masks/         <patient>_node.png (node mask, 0/255, same size as the images)\n\n"
        "See docs/demo-data.md in the nodescope sources for the model and its parameters.\n"
    )


def make_synthetic_dataset(
    out_dir: str | Path,
    *,
    n_patients: int = 60,
    difficulty: float = 0.5,
    image_size: int = 128,
    modalities: Sequence[str] = ("bmode", "cdfi", "elastography"),
    seed: int = 0,
    progress: bool = False,
    overwrite: bool = False,
) -> SyntheticDataset:
    """Write a synthetic lymph-node ultrasound data set (images, masks, manifest, clinical table).

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created when missing). It must not already hold a data set unless ``overwrite``.
    n_patients : int, default 60
        Number of patients, one node each, at least 3. Classes are balanced: counts differ by at most one.
    difficulty : float in [0, 1], default 0.5
        Overlap of the class-conditional distributions: every class-specific parameter ``theta_c`` is replaced
        by ``(1 - d) * theta_c + d * mean_k theta_k``. 0 = easiest, 1 = classes identical (chance level).
    image_size : int, default 128
        Height and width of every image and mask, 32 to 2048 pixels.
    modalities : sequence of str, default ("bmode", "cdfi", "elastography")
        Which images to render per patient; any of ``SYNTHETIC_MODALITIES``.
    seed : int, default 0
        Seed of the generator. The same arguments give byte-identical files.
    progress : bool, default False
        Show a progress bar (tqdm, on stderr).
    overwrite : bool, default False
        Replace a data set already in ``out_dir``: only the files its ``synth_files.txt`` lists are removed. A file
        the new data set would write that the marker does not list (real data, your own files) is never replaced:
        the call is refused instead.

    Returns
    -------
    SyntheticDataset

    Raises
    ------
    TypeError, ValueError
        Bad argument types or values (the message names the argument).
    FileExistsError
        ``out_dir`` already holds a data set and ``overwrite`` is False.

    Notes
    -----
    Files written under ``out_dir``:

    - ``images/<patient>_<modality>.png``: ``bmode`` is ``(S, S)`` uint8 grey; ``cdfi`` (colour Doppler, red/blue
      flow inside a colour box) and ``elastography`` (strain colour map, blue = hard, green = intermediate,
      red = soft, inside a box) are ``(S, S, 3)`` uint8 RGB drawn over the same B-mode frame;
    - ``masks/<patient>_node.png``: node mask, 0/255, ``(S, S)``;
    - ``manifest.csv``: ``patient_id, image, label, lesion_id, modality, mask, site, date, synthetic`` and the
      true generating parameters ``synth_*`` (``synth_elasto_score`` 1-4, ``synth_doppler_pattern``, ...);
    - ``clinical.csv``: ``patient_id, age, sex, node_short_axis_mm, site, exam_date, node_region,
      primary_cancer_history, b_symptoms, ldh_u_l, crp_mg_l``;
    - ``README.txt``: says the data are synthetic and records the arguments;
    - ``synth_files.txt``: the generator's marker, listing every file above (written first; ``overwrite`` removes
      exactly these).

    Every file is written to a temporary name in its folder and renamed, so an interrupted run leaves no half file.

    Sites ``site_A``/``site_B`` (independent of class) differ in gain, speckle grain, dynamic range and Doppler
    blooming; exam dates are uniform over 2023-01-01 to 2024-12-31.

    Examples
    --------
    >>> ds = make_synthetic_dataset("demo", n_patients=12, image_size=64)  # doctest: +SKIP
    >>> ds.n_images
    36
    """
    mods = _check_args(n_patients, difficulty, image_size, modalities, seed)
    n = int(n_patients)
    d = float(difficulty)
    size = int(image_size)
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"out_dir {root} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(n)))
    pids = [f"SYN{i + 1:0{width}d}" for i in range(n)]
    _prepare_out_dir(root, overwrite, _planned_files(pids, mods))

    counts, labels, sites, days, patient_ss = _draw_cohort(int(seed), n)
    k = len(SYNTHETIC_CLASSES)
    from tqdm.auto import tqdm

    manifest_rows: list[dict[str, Any]] = []
    clinical_rows: list[dict[str, Any]] = []
    for i in tqdm(range(n), desc="synthetic patients", disable=not progress, leave=False):
        pid = pids[i]
        cls = int(labels[i])
        site = _SITES[int(sites[i])]
        date = (_FIRST_DAY + _dt.timedelta(days=int(days[i]))).isoformat()
        rows, clin_row = _write_patient(root, pid, cls, site, date, patient_ss[i], d, size, mods)
        manifest_rows += rows
        clinical_rows.append(clin_row)

    manifest_path = root / "manifest.csv"
    clinical_path = root / "clinical.csv"
    atomic_write_csv(pd.DataFrame(manifest_rows), manifest_path, index=False, lineterminator="\n")
    atomic_write_csv(pd.DataFrame(clinical_rows), clinical_path, index=False, lineterminator="\n")
    class_counts = {SYNTHETIC_CLASSES[j]: int(counts[j]) for j in range(k)}
    atomic_write_text(root / "README.txt",
                      _readme_text(int(seed), n, d, size, mods, class_counts, len(manifest_rows)))
    logger.info("wrote synthetic data set: %d patients, %d images under %s", n, len(manifest_rows), root)
    return SyntheticDataset(
        manifest_path=manifest_path,
        clinical_path=clinical_path,
        root=root,
        n_patients=n,
        n_images=len(manifest_rows),
        classes=SYNTHETIC_CLASSES,
    )


def _draw_cohort(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                              list[np.random.SeedSequence]]:
    """Balanced class counts, each patient's class, site and exam day, and one seed sequence per patient."""
    cohort_ss, *patient_ss = np.random.SeedSequence(seed).spawn(n + 1)
    cohort = np.random.default_rng(cohort_ss)
    k = len(SYNTHETIC_CLASSES)
    counts = np.full(k, n // k)
    counts[cohort.choice(k, size=n % k, replace=False)] += 1
    labels = cohort.permutation(np.repeat(np.arange(k), counts))
    sites = cohort.integers(0, len(_SITES), size=n)
    days = cohort.integers(0, _N_DAYS, size=n)
    return counts, labels, sites, days, patient_ss


def _write_patient(root: Path, pid: str, cls: int, site: str, date: str, seed_seq: np.random.SeedSequence,
                   d: float, size: int, mods: tuple[str, ...]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Draw, render and save one patient; return its manifest rows (one per modality) and its clinical row."""
    r_params, r_clin, r_bmode, r_cdfi, r_elasto = (np.random.default_rng(s) for s in seed_seq.spawn(5))
    node = _draw_node(r_params, cls, d)
    clin = _draw_clinical(r_clin, cls, d)
    effects = _SITE_EFFECTS[site]
    # small images are rendered at an integer multiple of their size and block-averaged down, as a scanner's
    # frame resized for a network would be (speckle averaged, thin vessels blended into their pixel)
    f = render_factor(size)
    grey, geom = render_bmode(node, size * f, effects, r_bmode)
    mask_rel = f"masks/{pid}_node.png"
    _save_png(np.where(block_mean(geom.mask, f) >= 0.5, 255, 0).astype(np.uint8), root / mask_rel)
    rendered: dict[str, NDArray[np.uint8]] = {"bmode": grey}
    if "cdfi" in mods:
        rendered["cdfi"] = render_doppler(grey, geom, node, effects, r_cdfi)
    if "elastography" in mods:
        rendered["elastography"] = render_elastography(grey, geom, node, r_elasto)
    rendered = {m: np.round(block_mean(a, f)).astype(np.uint8) for m, a in rendered.items()}
    synth = _synth_columns(node, geom, f)
    manifest_rows: list[dict[str, Any]] = []
    for m in mods:
        rel = f"images/{pid}_{m}.png"
        _save_png(rendered[m], root / rel)
        manifest_rows.append({
            "patient_id": pid, "image": rel, "label": SYNTHETIC_CLASSES[cls], "lesion_id": f"{pid}_N1",
            "modality": m, "mask": mask_rel, "site": site, "date": date, "synthetic": "yes", **synth,
        })
    clinical_row = {
        "patient_id": pid, "age": clin["age"], "sex": clin["sex"],
        "node_short_axis_mm": round(node.short_axis_mm, 1), "site": site, "exam_date": date,
        **{key: clin[key] for key in ("node_region", "primary_cancer_history", "b_symptoms", "ldh_u_l",
                                      "crp_mg_l")},
    }
    return manifest_rows, clinical_row


def _synth_columns(node: NodeParams, geom: Geometry, factor: int) -> dict[str, Any]:
    """The true generating parameters of a node, as ``synth_*`` manifest columns (``factor``: render / image size)."""
    yn = {True: "yes", False: "no"}
    return {
        "synth_short_axis_mm": round(node.short_axis_mm, 2),
        "synth_ls_ratio": round(node.ls_ratio, 3),
        "synth_hilum": yn[node.hilum],
        "synth_cortex_echo": round(node.echo, 3),
        "synth_reticular": yn[node.reticular],
        "synth_eccentric_bulge": round(node.bulge, 3),
        "synth_heterogeneity": round(node.heterogeneity, 3),
        "synth_margin_blur_px": round(node.margin_blur, 3),
        "synth_irregularity": round(node.irregularity, 3),
        "synth_calcification": yn[node.calcification],
        "synth_necrosis": yn[node.necrosis],
        "synth_doppler_pattern": node.doppler_pattern,
        "synth_elasto_score": node.elasto_score,
        "synth_pixel_mm": round(geom.mm_per_px * factor, 4),
    }
