"""Tests of the synthetic demo data generator (nodescope.data.make_synthetic_dataset)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nodescope.data import SYNTHETIC_CLASSES, SyntheticDataset, make_synthetic_dataset, read_image
from nodescope.data._synth import _draw_node

MANIFEST_COLUMNS = ["patient_id", "image", "label", "lesion_id", "modality", "mask", "site", "date", "synthetic"]
CLINICAL_COLUMNS = ["patient_id", "age", "sex", "node_short_axis_mm", "site", "exam_date", "node_region",
                    "primary_cancer_history", "b_symptoms", "ldh_u_l", "crp_mg_l"]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    return make_synthetic_dataset(tmp_path_factory.mktemp("synth") / "ds", n_patients=12, image_size=48, seed=3)


def test_layout_and_contract_columns(small: SyntheticDataset) -> None:
    root = small.root
    assert small.manifest_path == root / "manifest.csv" and small.clinical_path == root / "clinical.csv"
    assert (small.n_patients, small.n_images, small.classes) == (12, 36, ("benign", "lymphoma", "metastatic"))
    m = pd.read_csv(small.manifest_path, dtype=str, keep_default_na=False)
    assert list(m.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    extra = list(m.columns[len(MANIFEST_COLUMNS):])
    assert extra and all(c.startswith("synth_") for c in extra)
    assert "synth_elasto_score" in extra
    assert len(m) == 36 and (m["synthetic"] == "yes").all()
    assert set(m["modality"]) == {"bmode", "cdfi", "elastography"}
    assert m.groupby("patient_id").size().eq(3).all()
    # patient-level columns are constant within a patient
    per_patient = m.groupby("patient_id")[["label", "site", "date", "mask", "lesion_id", "synth_elasto_score"]]
    assert per_patient.nunique().eq(1).all().all()
    for rel in [*m["image"], *m["mask"]]:
        assert (root / rel).is_file(), rel
    assert all(img == f"images/{pid}_{mod}.png" for img, pid, mod in zip(m["image"], m["patient_id"], m["modality"],
                                                                            strict=True))
    assert set(m["synth_elasto_score"].astype(int)) <= {1, 2, 3, 4}
    for d in m["date"]:
        assert dt.date(2023, 1, 1) <= dt.date.fromisoformat(d) <= dt.date(2024, 12, 31)
    c = pd.read_csv(small.clinical_path, dtype=str, keep_default_na=False)
    assert list(c.columns) == CLINICAL_COLUMNS
    assert sorted(c["patient_id"]) == sorted(m["patient_id"].unique())
    joined = m.drop_duplicates("patient_id").merge(c, on="patient_id", suffixes=("", "_clin"))
    assert (joined["site"] == joined["site_clin"]).all() and (joined["date"] == joined["exam_date"]).all()
    np.testing.assert_allclose(joined["node_short_axis_mm"].astype(float),
                               joined["synth_short_axis_mm"].astype(float), atol=0.051)
    readme = (root / "README.txt").read_text()
    assert "SYNTHETIC" in readme and "seed=3" in readme and "difficulty=0.5" in readme


def test_images_shapes_dtypes_and_masks(small: SyntheticDataset) -> None:
    m = pd.read_csv(small.manifest_path, dtype=str)
    for _, row in m.iterrows():
        px = read_image(small.root / row["image"]).pixels
        assert px.dtype == np.uint8
        assert px.shape == ((48, 48, 1) if row["modality"] == "bmode" else (48, 48, 3))
        assert px.std() > 5  # not blank
    for rel in m["mask"].unique():
        mask = read_image(small.root / rel).pixels[..., 0]
        assert mask.shape == (48, 48) and set(np.unique(mask)) == {0, 255}
        on = mask > 0
        assert 0.02 < on.mean() < 0.6
        # the node lies inside the frame and is one piece
        assert not (on[0].any() or on[-1].any() or on[:, 0].any() or on[:, -1].any())
        assert ndimage.label(on)[1] == 1
    # colour overlays differ from the grey frame; Doppler keeps the grey frame outside the flow
    pid = m["patient_id"].iloc[0]
    grey = read_image(small.root / f"images/{pid}_bmode.png").pixels[..., 0]
    elasto = read_image(small.root / f"images/{pid}_elastography.png").pixels
    assert np.abs(elasto.astype(int) - grey[..., None]).mean() > 10
    cdfi = read_image(small.root / f"images/{pid}_cdfi.png").pixels
    grey_like = (cdfi[..., 0] == cdfi[..., 1]) & (cdfi[..., 1] == cdfi[..., 2])
    # small images are block-averaged from a larger rendering, so the pixels under the 1-pixel colour-box outline
    # are grey but mixed with the outline's grey; every other grey pixel is the B-mode frame's
    same = cdfi[grey_like][:, 0] == grey[grey_like]
    assert same.mean() > 0.85 and grey_like.mean() > 0.5, (same.mean(), grey_like.mean())


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    kw = {"n_patients": 6, "image_size": 40}
    a = make_synthetic_dataset(tmp_path / "a", seed=11, **kw)
    b = make_synthetic_dataset(tmp_path / "b", seed=11, **kw)
    c = make_synthetic_dataset(tmp_path / "c", seed=12, **kw)
    da, db, dc = _digests(a.root), _digests(b.root), _digests(c.root)
    assert da == db
    images = [k for k in da if k.startswith("images/")]
    assert len(images) == 18
    assert all(da[k] != dc.get(k) for k in images)
    assert asdict(a) != asdict(c) and (a.n_images, a.classes) == (c.n_images, c.classes)


def test_subset_of_modalities_keeps_bmode_identical(tmp_path: Path) -> None:
    full = make_synthetic_dataset(tmp_path / "full", n_patients=4, image_size=40, seed=5)
    only = make_synthetic_dataset(tmp_path / "only", n_patients=4, image_size=40, seed=5, modalities=["bmode"])
    assert only.n_images == 4
    m = pd.read_csv(only.manifest_path, dtype=str)
    assert set(m["modality"]) == {"bmode"}
    for rel in m["image"]:
        assert (only.root / rel).read_bytes() == (full.root / rel).read_bytes()


@pytest.mark.parametrize(("n", "expected"), [(3, [1, 1, 1]), (10, [3, 3, 4]), (60, [20, 20, 20])])
def test_class_balance(tmp_path: Path, n: int, expected: list[int]) -> None:
    ds = make_synthetic_dataset(tmp_path, n_patients=n, image_size=32, modalities=("bmode",), seed=1)
    counts = pd.read_csv(ds.clinical_path).merge(
        pd.read_csv(ds.manifest_path)[["patient_id", "label"]], on="patient_id")["label"].value_counts()
    assert set(counts.index) == set(SYNTHETIC_CLASSES)
    assert sorted(counts.tolist()) == expected


def test_difficulty_one_makes_classes_identical_in_distribution() -> None:
    # At d = 1 every class-specific parameter equals the class average, so the same random stream gives the
    # same node whatever the class; at d = 0 it does not.
    nodes = [_draw_node(np.random.default_rng(7), cls, 1.0) for cls in range(3)]
    assert nodes[0] == nodes[1] == nodes[2]
    easy = [_draw_node(np.random.default_rng(7), cls, 0.0) for cls in range(3)]
    assert easy[0] != easy[2]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_patients": 2}, ValueError, "n_patients must be >= 3"),
        ({"n_patients": 6.0}, TypeError, "n_patients must be an int"),
        ({"difficulty": 1.5}, ValueError, r"difficulty must be in \[0, 1\]"),
        ({"difficulty": "hard"}, TypeError, "difficulty must be a number"),
        ({"image_size": 16}, ValueError, "image_size must be between 32 and 2048"),
        ({"modalities": "bmode"}, TypeError, "modalities must be a sequence"),
        ({"modalities": ("bmode", "ct")}, ValueError, "unknown modality 'ct'"),
        ({"modalities": ()}, ValueError, "modalities is empty"),
        ({"modalities": ("bmode", "bmode")}, ValueError, "duplicates"),
        ({"seed": -1}, TypeError, "seed must be a non-negative int"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make_synthetic_dataset(tmp_path / "x", **kwargs)  # type: ignore[arg-type]


def test_existing_data_set_needs_overwrite(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path, n_patients=6, image_size=32, modalities=("bmode",))
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_synthetic_dataset(tmp_path, n_patients=3, image_size=32, modalities=("bmode",))
    ds = make_synthetic_dataset(tmp_path, n_patients=3, image_size=32, modalities=("bmode",), overwrite=True)
    assert len(list((tmp_path / "images").glob("*.png"))) == 3 and ds.n_images == 3
    assert keep.read_text() == "mine"  # files that are not ours are left alone
    with pytest.raises(ValueError, match="not a folder"):
        make_synthetic_dataset(keep)


# --- the class signal is learnable, but not trivially, and vanishes at difficulty 1 -----------------------------


def _simple_features(root: Path, frame: pd.DataFrame) -> np.ndarray:
    """Five hand-made B-mode features per node: axis ratio, echogenicity, heterogeneity, central brightness, shape."""
    rows = []
    for _, r in frame.iterrows():
        g = np.asarray(Image.open(root / r["image"]), dtype=float)
        mk = np.asarray(Image.open(root / r["mask"])) > 127
        ev = np.linalg.eigvalsh(np.cov(np.stack(np.nonzero(mk))))
        ring = ndimage.binary_dilation(mk, iterations=4) & ~mk
        core = ndimage.binary_erosion(mk, iterations=max(1, int(0.8 * np.sqrt(ev[0]))))
        inside = g[mk]
        perimeter = mk.sum() - ndimage.binary_erosion(mk).sum()
        rows.append([0.5 * np.log(ev[1] / ev[0]), inside.mean() / g[ring].mean(), inside.std() / inside.mean(),
                     (g[core].mean() if core.any() else inside.mean()) / inside.mean(), perimeter**2 / mk.sum()])
    return np.asarray(rows)


def _cv_auc_metastatic(tmp_path: Path, difficulty: float) -> tuple[float, pd.DataFrame]:
    ds = make_synthetic_dataset(tmp_path / f"d{difficulty}", n_patients=90, image_size=64, difficulty=difficulty,
                                modalities=("bmode",), seed=0)
    m = pd.read_csv(ds.manifest_path)
    x = _simple_features(ds.root, m)
    y = (m["label"] == "metastatic").to_numpy()  # one B-mode image per patient: rows are patients
    model = make_pipeline(StandardScaler(), LogisticRegression())
    p = cross_val_predict(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                          method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p)), m


def test_class_signal_learnable_but_not_trivial(tmp_path: Path) -> None:
    # Observed while building the generator (seeds 0-4, n = 90, 64 px): AUC 0.80-0.87 at d = 0.5,
    # 0.33-0.59 at d = 1 (chance, with n = 90 noise). Bounds below leave room for that spread.
    auc_default, m = _cv_auc_metastatic(tmp_path, 0.5)
    auc_random, _ = _cv_auc_metastatic(tmp_path, 1.0)
    assert 0.68 < auc_default < 0.95, auc_default
    assert abs(auc_random - 0.5) < 0.2, auc_random
    assert auc_default - auc_random > 0.15
    # the generating parameters move in the documented directions at the default difficulty
    by = m.groupby("label")
    assert by["synth_ls_ratio"].median()["benign"] > by["synth_ls_ratio"].median()["metastatic"]
    hilum = by["synth_hilum"].apply(lambda s: (s == "yes").mean())
    assert hilum["benign"] > hilum["metastatic"]
    assert by["synth_elasto_score"].mean()["metastatic"] > by["synth_elasto_score"].mean()["benign"]
    assert by["synth_cortex_echo"].median()["lymphoma"] < by["synth_cortex_echo"].median()["benign"]


def test_renderer_does_not_import_the_generator():
    # one-way dependency: _synth uses _synth_render (and its NodeParams), never the other way round
    import ast

    import nodescope.data._synth_render as render

    tree = ast.parse(Path(render.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "nodescope.data._synth" not in imported
