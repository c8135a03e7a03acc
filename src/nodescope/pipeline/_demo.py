"""The main job on built-in synthetic data: ``nodescope demo``.

Steps, each through the public API of its stage:

1. write the synthetic lymph-node data set (:func:`nodescope.data.make_synthetic_dataset`) and a binary view of it
   (metastatic vs not; the three-class diagnosis is kept in a ``diagnosis`` column);
2. one patient-level split for everything: a stratified 20 % hold-out test part and ``folds`` folds on the rest;
3. one CNN per modality (B-mode, colour Doppler, elastography) by k-fold cross-validation, sharing the split
   (:func:`nodescope.training.run_cv`), each scoring the untouched test patients with its fold models;
4. late fusion of the three modalities by logistic stacking fitted on out-of-fold predictions only
   (:func:`nodescope.models.late_fusion`), and intermediate fusion (one encoder per modality, concatenated
   features, one head; trained on the same split), so the three multimodal strategies can be compared;
5. the evaluation of every model from the saved ``predictions.csv`` (:func:`nodescope.evaluation.evaluate_predictions`):
   AUC with DeLong CIs, threshold chosen on out-of-fold predictions and applied unchanged to the test part,
   calibration, decision curves, the fusion-vs-B-mode DeLong comparison, and the HTML report.

Everything it writes says that the data are synthetic.

The defaults (150 patients, 64 px, 3 folds x 12 epochs, batch 8, class weights, difficulty 0.1, no intermediate
fusion) are sized for under 3 minutes on 2 idle CPU cores; the figures behind them are in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from nodescope._files import atomic_write_csv, atomic_write_text, check_outputs
from nodescope.errors import OutputExistsError

if TYPE_CHECKING:
    from nodescope._progress import Progress

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger(__name__)

SYNTHETIC_NOTE = ("SYNTHETIC DATA: every image, label and number in this run comes from nodescope's synthetic "
                  "lymph-node generator. It exercises the software; it says nothing about medicine.")
MODALITIES = ("bmode", "cdfi", "elastography")
POSITIVE = "metastatic"
NEGATIVE = "not_metastatic"
FUSION_NAME = "fusion_intermediate"


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote.

    Attributes
    ----------
    out_dir : Path
        The demo folder.
    manifest : Path
        The binary manifest the models were trained on.
    predictions : Path
        All models' predictions (out-of-fold and test), the file every statistic is computed from.
    report : Path
        The evaluation report (HTML).
    metrics : Path
        ``metrics.json`` of the evaluation.
    auc : pandas.DataFrame
        AUC with its CI per model and split (from the evaluation).
    seconds : dict of str to float
        Wall time per step.
    cpu_seconds : float
        CPU time (user + system) of this process over the whole demo, all threads.
    """

    out_dir: Path
    manifest: Path
    predictions: Path
    report: Path
    metrics: Path
    auc: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = float("nan")


def _binary_manifest(src: Path, dst: Path) -> Path:
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    df.insert(df.columns.get_loc("label") + 1, "diagnosis", df["label"])
    df["label"] = [POSITIVE if v == POSITIVE else NEGATIVE for v in df["diagnosis"]]
    return atomic_write_csv(df, dst, index=False)


def _load_predictions(path: Path) -> pd.DataFrame:
    """A run's predictions.csv as the contract reads it: ids verbatim ("NA", "007", "1"), numeric p_* and fold."""
    from nodescope.evaluation import read_predictions

    return read_predictions(path, positive=POSITIVE).frame


def run_demo(
    out_dir: str | Path = "nodescope_demo",
    *,
    n_patients: int = 150,
    image_size: int = 64,
    epochs: int = 12,
    folds: int = 3,
    batch_size: int = 8,
    backbone: str = "tf_efficientnet_lite0",
    weights: str = "imagenet",
    difficulty: float = 0.1,
    seed: int = 0,
    n_boot: int = 1000,
    intermediate_fusion: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the main job end to end on synthetic data.

    Parameters
    ----------
    out_dir : str or Path
        Folder for everything the demo writes (data, runs, predictions, evaluation).
    n_patients : int
        Synthetic patients (one node each, three modality images per node).
    image_size : int
        Side of the generated images and of the network input.
    epochs : int
        Epochs per fold: a fixed cosine schedule on all of the fold's training patients (no inner validation split:
        with ~100 training images per fold its loss is too noisy to stop on). Classes are balanced by loss weights
        rather than oversampling (the same balance for fewer images per epoch).
    folds : int
        Cross-validation folds.
    batch_size : int
        Images per training batch.
    backbone : str
        A registered backbone name.
    weights : str
        ``"imagenet"`` (default: EfficientNet-Lite0's ImageNet weights, installed with nodescope, no network) or
        ``"none"`` (train from scratch) or a weights file/bundle, as ``nodescope train --weights``.
    difficulty : float
        Class overlap of the synthetic data (0 textbook signs ... 1 classes identical); the generator's own default
        is 0.5, the demo's 0.1 keeps the signs close to their textbook descriptions.
    seed : int
        Seed for the data, the split and training.
    n_boot : int
        Bootstrap replicates for the evaluation's bootstrap-based intervals.
    intermediate_fusion : bool
        Also train the intermediate-fusion model (three encoders, one head) on the same split.
    overwrite : bool
        Replace an earlier demo in ``out_dir``.
    progress : Progress, optional
        Shows the stages, each with the time left at the pace measured so far, and every fit's fold, epoch,
        losses and ETA (:mod:`nodescope._progress`; the CLI hands one in). None: the stage lines are logged.

    Returns
    -------
    DemoResult
    """
    from nodescope.data import make_synthetic_dataset
    from nodescope.evaluation import evaluate_predictions, read_predictions, write_evaluation

    out = _fresh_folder(Path(out_dir), overwrite, [Path(weights)] if Path(weights).exists() else [])
    cpu0 = time.process_time()
    pace = _Pace(progress, n_fits=len(MODALITIES) + (len(MODALITIES) if intermediate_fusion else 0))
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    pace.stage(f"1/4 writing the synthetic data set ({n_patients} patients x {len(MODALITIES)} modalities)")
    ds = make_synthetic_dataset(out / "data", n_patients=n_patients, image_size=image_size, difficulty=difficulty,
                                seed=seed)
    manifest = _binary_manifest(ds.manifest_path, out / "data" / "manifest_metastasis.csv")
    seconds["data"] = time.perf_counter() - t0

    common: dict[str, Any] = dict(
        manifest=manifest, classes=[NEGATIVE, POSITIVE], positive=POSITIVE, backbone=backbone, weights=weights,
        image_size=image_size, epochs=epochs, folds=folds, test_size=0.2, batch_size=batch_size, lr=1e-3,
        imbalance="class_weights", final_model="none", seed=seed, accelerator="cpu", synthetic_data=True,
        val_fraction=0.0, patience=0,
        # plain steps: the synthetic images have no scan UI, calipers or second centre, and the demo's few epochs
        # are too short for the transfer recipe's augmentation (docs/training.md)
        recipe="none",
    )
    frames, fused_name = _train_models(out, common, folds=folds, intermediate_fusion=intermediate_fusion,
                                       pace=pace, seconds=seconds)
    allp = pd.concat(frames, ignore_index=True, sort=False)
    allp["synthetic"] = "yes"
    pred_path = out / "predictions.csv"
    atomic_write_csv(allp, pred_path, index=False)

    t0 = time.perf_counter()
    pace.stage("4/4 evaluating every model from predictions.csv and writing the report")
    run = evaluate_predictions(read_predictions(pred_path, positive=POSITIVE), compare=(fused_name, "bmode"),
                               by=("site",), n_boot=n_boot, seed=seed, source=str(pred_path))
    written = write_evaluation(run, out / "evaluation", title="nodescope demo: metastatic lymph node (SYNTHETIC data)")
    seconds["evaluate"] = time.perf_counter() - t0
    auc = run.tables.get("discrimination", pd.DataFrame())
    return DemoResult(out, manifest, pred_path, Path(written["report"]), Path(written["metrics"]), auc, seconds,
                      time.process_time() - cpu0)


class _Pace:
    """The demo's stage lines, each with the time left at the training pace measured so far.

    Training dominates the run: ``n_fits`` counts encoder trainings (one per modality model, one per modality
    encoder of the intermediate fusion, which costs about as much as the three single models together); the time
    left is the seconds per finished fit times the fits to go (unknown before the first one finishes).
    """

    def __init__(self, progress: Progress | None, n_fits: int) -> None:
        self.progress = progress
        self.n_fits = n_fits
        self.done = 0
        self.training_s = 0.0
        self._t = time.perf_counter()

    def stage(self, text: str) -> None:
        """Show a stage line with the estimated time left."""
        left = "?" if self.done == 0 else _clock(self.training_s / self.done * (self.n_fits - self.done))
        line = f"{text}  [training left: about {left}]" if self.done < self.n_fits else text
        if self.progress is None:
            logger.info(line)
        else:
            self.progress.message(line)
        self._t = time.perf_counter()

    def fitted(self, n: int) -> None:
        """``n`` encoder trainings finished since the last stage line."""
        self.training_s += time.perf_counter() - self._t
        self.done += n


def _clock(seconds: float) -> str:
    from nodescope._progress import format_seconds

    return format_seconds(seconds)


def _fresh_folder(out: Path, overwrite: bool, inputs: list[Path]) -> Path:
    """Create ``out``; an earlier demo there is replaced only when asked, and nothing but a demo folder ever is.

    ``inputs`` (a weights file or bundle given by path) are never deleted: a demo folder holding one is refused.
    """
    check_outputs([out], inputs, overwrite=True, kind="folder")  # a file, or a folder holding an input
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} is not empty; choose another folder or pass overwrite=True")
        if not (out / "DEMO.txt").is_file():
            raise OutputExistsError(f"{out} does not look like a nodescope demo folder (no DEMO.txt); refusing to "
                                    "delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "DEMO.txt", SYNTHETIC_NOTE + "\nWritten by `nodescope demo`.\n")
    return out


def _train_models(out: Path, common: dict[str, Any], *, folds: int, intermediate_fusion: bool,
                  pace: _Pace, seconds: dict[str, float]) -> tuple[list[pd.DataFrame], str]:
    """One CNN per modality on one patient split, their late fusion and (optionally) the intermediate fusion.

    Returns the predictions frames of every model and the late-fusion model's name.
    """
    from nodescope.models import late_fusion
    from nodescope.training import load_config, run_cv

    preds: dict[str, pd.DataFrame] = {}
    splits_file: Path | None = None
    for i, mod in enumerate(MODALITIES):
        t0 = time.perf_counter()
        pace.stage(f"2/4 training the {mod} model: {folds}-fold patient-level CV + hold-out test "
                   f"({i + 1}/{len(MODALITIES)})")
        # the first run draws the hold-out test part; the others reuse its splits.csv, which fixes it
        cfg = load_config(None, out=out / "runs" / mod, name=mod, modality=mod, splits_file=splits_file,
                          **(common if splits_file is None else dict(common, test_size=0.0)))
        res = run_cv(cfg, progress=pace.progress)
        pace.fitted(1)
        if splits_file is None:  # every modality reuses the first run's patient split
            splits_file = res.run_dir / "splits.csv"
        preds[mod] = _load_predictions(res.run_dir / "predictions.csv")
        _check_saved_bundles(res.run_dir, preds[mod], Path(common["manifest"]).parent)
        seconds[f"train_{mod}"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pace.stage("3/4 late fusion of the three modalities (logistic stacking on out-of-fold predictions only)")
    fused = late_fusion(preds, positive=POSITIVE, method="stacking")
    frames = [*preds.values(), fused]
    seconds["late_fusion"] = time.perf_counter() - t0
    if intermediate_fusion:
        t0 = time.perf_counter()
        pace.stage("3/4 intermediate fusion: one encoder per modality, concatenated features, one head (same split)")
        cfg = load_config(None, out=out / "runs" / FUSION_NAME, name=FUSION_NAME, fusion="intermediate",
                          modalities=list(MODALITIES), splits_file=splits_file, **dict(common, test_size=0.0))
        res = run_cv(cfg, progress=pace.progress)
        pace.fitted(len(MODALITIES))
        frames.append(_load_predictions(res.run_dir / "predictions.csv"))
        seconds[f"train_{FUSION_NAME}"] = time.perf_counter() - t0
    return frames, str(fused["model"].iloc[0])


def _check_saved_bundles(run_dir: Path, pred: pd.DataFrame, image_root: Path, atol: float = 1e-4) -> None:
    """The saved fold bundles, loaded by the :class:`~nodescope.models.Predictor` that ``predict`` uses, reproduce
    the run's hold-out predictions (the mean of the fold models); a mismatch is a bug, never a user error."""
    import torch

    from nodescope.models import Predictor

    test = pred[pred["split"] == "test"]
    if test.empty:
        return
    paths = [image_root / str(p) for p in test["image"]]
    bundles = sorted((run_dir / "folds").glob("fold_*/bundle"))
    predictors = [Predictor(b, threads=torch.get_num_threads()) for b in bundles]
    pos = predictors[0].classes.index(POSITIVE)
    got = sum(pr.predict_images(paths).probabilities[:, pos] for pr in predictors) / len(predictors)
    diff = float(abs(got - test[f"p_{POSITIVE}"].to_numpy(float)).max())
    if diff > atol:
        raise RuntimeError(f"{run_dir}: the saved fold bundles predict the test images {diff:.2e} away from the run's "
                           "own predictions; the bundles do not reproduce the model")
    logger.info("%s: saved bundles reproduce the hold-out predictions (max |diff| %.1e)", run_dir.name, diff)
