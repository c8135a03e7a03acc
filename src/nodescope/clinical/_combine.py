"""The DL signature joined with clinical factors: clinical-only, DL-only and combined models, compared and validated.

Inputs are the two contracts: ``predictions.csv`` (the DL signature is the positive class's probability, used as its
log odds ``logit(p)`` by default; several images of one patient are pooled as the mean log odds) and a clinical table
(one row per patient) joined on ``patient_id``. Development rows are the out-of-fold (``cv``) and validation (``val``)
predictions; ``test`` and ``external`` rows, when present, are held out: the three models are fitted on the
development patients only and evaluated, unchanged, on each held-out split.

All three models are fitted on the same patients: the complete cases of the combined model (so the comparisons are
paired). Comparisons: DeLong's test of the C statistics (``nodescope.evaluation.compare_auc``), NRI and IDI of the
combined over the clinical model (:func:`~nodescope.clinical.reclassification`), and the likelihood-ratio test of the
signature added to the clinical model. Each model is validated by the bootstrap (rms ``validate`` / ``calibrate``);
the combined model also gets its nomogram and the evaluation module's calibration and decision-curve analysis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from nodescope.clinical._design import parse_formula
from nodescope.clinical._lrm import LogisticFit, fit_lrm, outcome_array
from nodescope.clinical._nomogram import Nomogram, nomogram
from nodescope.clinical._reclass import Reclassification, reclassification
from nodescope.clinical._table import read_clinical_table, require_columns
from nodescope.clinical._validate import Calibration, Validation, calibrate, validate
from nodescope.errors import ConfigError, DataError

if TYPE_CHECKING:
    from nodescope._estimate import Estimate
    from nodescope.evaluation import AucComparison, CalibrationMetrics, DecisionCurve

__all__ = ["SIGNATURE", "CombinedModels", "HeldOut", "combine_signature", "join_signature", "model_table"]

#: Name of the DL-signature variable in the joined table and in the models.
SIGNATURE = "dl_signature"
_DEV = ("cv", "val")


@dataclass(frozen=True)
class HeldOut:
    """The development models applied, unchanged, to one held-out split (``test`` or ``external``)."""

    split: str
    n: int
    n_events: int
    auc: dict[str, Estimate]
    comparisons: dict[str, AucComparison]
    calibration: CalibrationMetrics
    decision: dict[str, DecisionCurve]
    probabilities: dict[str, np.ndarray] = field(repr=False)
    y: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class CombinedModels:
    """Clinical-only, DL-only and combined models with their comparisons and validation.

    Attributes
    ----------
    fits : dict
        ``{"clinical": LogisticFit, "dl": LogisticFit, "combined": LogisticFit}`` on the same patients.
    validation, calibration : dict
        Bootstrap ``validate`` / ``calibrate`` per model.
    delong : dict
        ``{"combined vs clinical": AucComparison, "combined vs dl": ..., "dl vs clinical": ...}``.
    reclass : Reclassification
        NRI / IDI of the combined over the clinical model.
    lr_signature : dict
        ``chi2``, ``df``, ``p`` of the signature added to the clinical model.
    nomogram : Nomogram or None
        Of the combined model (None when it has interactions; see ``notes``).
    calibration_summary : CalibrationMetrics
        The evaluation module's calibration summary of the combined model (development patients, apparent).
    decision : dict
        The evaluation module's decision curve per model (development patients, apparent).
    held_out : tuple of HeldOut
    notes : tuple of str
        Joins, pooled images, dropped patients, missing-data handling, separation.
    """

    formulas: dict[str, str]
    fits: dict[str, LogisticFit]
    validation: dict[str, Validation]
    calibration: dict[str, Calibration]
    delong: dict[str, AucComparison]
    reclass: Reclassification
    lr_signature: dict[str, float]
    nomogram: Nomogram | None
    calibration_summary: CalibrationMetrics
    decision: dict[str, DecisionCurve]
    held_out: tuple[HeldOut, ...]
    notes: tuple[str, ...]
    data: pd.DataFrame = field(repr=False)


def join_signature(predictions: str | Path, clinical: str | Path | pd.DataFrame, *, model: str | None = None,
                   positive: str | None = None, scale: Literal["logit", "probability"] = "logit",
                   outcome: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Join the DL signature of ``predictions.csv`` with a clinical table on ``patient_id``.

    Parameters
    ----------
    predictions : path
        A predictions table (``nodescope.evaluation.read_predictions``), binary task.
    clinical : path or DataFrame
        One row per patient with ``patient_id``.
    model : str, optional
        The ``model`` to use when the table holds several.
    positive : str, optional
        The positive class (inferred as ``read_predictions`` does).
    scale : {"logit", "probability"}, default "logit"
        The signature as the log odds of the positive class (clipped to [1e-6, 1 - 1e-6] first) or as the
        probability.
    outcome : str, optional
        A clinical column to use as the outcome instead of the predictions' ``y_true``.

    Returns
    -------
    frame : pandas.DataFrame
        One row per joined patient: the clinical columns, ``dl_signature``, ``split`` and the outcome column
        ``y`` (``"0"``/``"1"``), all as text.
    notes : list of str
        What was pooled and dropped.
    """
    from nodescope.evaluation import read_predictions

    preds = read_predictions(predictions, positive=positive)
    if preds.task != "binary":
        raise DataError(f"{preds.source}: the nomogram needs a binary task; classes are {', '.join(preds.classes)}")
    models = preds.values("model")
    if model is None and len(models) > 1:
        raise ConfigError(f"{preds.source} holds {len(models)} models ({', '.join(models)}); choose one")
    if model is not None:
        if model not in models:
            raise ConfigError(f"{preds.source}: no model {model!r}; it has {', '.join(models)}")
        preds = preds.where(model=model)
    frame = preds.frame
    p = frame[f"p_{preds.positive}"].to_numpy(float)
    clip = np.clip(p, 1e-6, 1 - 1e-6)
    sig = np.log(clip / (1 - clip)) if scale == "logit" else p
    per = pd.DataFrame({"patient_id": frame["patient_id"].astype(str).to_numpy(), "sig": sig,
                        "y": preds.y_true(), "split": frame["split"].astype(str).to_numpy()})
    notes: list[str] = []
    if per.patient_id.duplicated().any():
        notes.append(f"{len(per)} prediction rows pooled to {per.patient_id.nunique()} patients (mean "
                     f"{'log odds' if scale == 'logit' else 'probability'} of a patient's rows)")
    pooled = per.groupby("patient_id", sort=False).agg(sig=("sig", "mean"), y=("y", "first"), split=("split", "first"),
                                                       n_y=("y", "nunique"), n_split=("split", "nunique"))
    bad = pooled.index[(pooled.n_y > 1) | (pooled.n_split > 1)]
    if len(bad):
        raise DataError(f"{preds.source}: patient(s) {', '.join(bad[:5])} have rows with different y_true or split")
    clin = clinical if isinstance(clinical, pd.DataFrame) else read_clinical_table(clinical)
    require_columns(clin, ["patient_id"])
    dup = clin.patient_id[clin.patient_id.duplicated()]
    if len(dup):
        raise DataError(f"{clin.attrs.get('source', 'clinical table')}: patient_id {dup.iloc[0]!r} appears more "
                        "than once; a clinical table has one row per patient")
    for col in (SIGNATURE, "split", "y"):
        if col in clin.columns and not (col == "y" and outcome == "y"):
            raise DataError(f"{clin.attrs.get('source', 'clinical table')}: column {col!r} is reserved for the "
                            "joined table; rename it")
    joined = clin.merge(pooled.reset_index(), on="patient_id", how="inner", suffixes=("", "_pred"))
    lost = len(pooled) - len(joined)
    if lost:
        notes.append(f"{lost} of {len(pooled)} predicted patients have no clinical row and were left out")
    if joined.empty:
        raise DataError("no patient_id is shared by the predictions and the clinical table")
    if outcome is not None:
        require_columns(clin, [outcome])
        joined["y"] = joined[outcome]
    else:
        joined["y"] = joined["y"].astype(int).astype(str)
    joined[SIGNATURE] = [repr(float(v)) for v in joined["sig"]]
    joined = joined.drop(columns=[c for c in ("sig", "n_y", "n_split") if c in joined.columns])
    joined.attrs["source"] = "joined predictions and clinical table"
    return joined, notes


def _lr_added(small: LogisticFit, big: LogisticFit) -> dict[str, float]:
    chi = big.stats["Model L.R."] - small.stats["Model L.R."]
    df = int(big.stats["d.f."] - small.stats["d.f."])
    return {"chi2": float(chi), "df": float(df), "p": float(stats.chi2.sf(chi, df))}


def _evaluate_split(name: str, fits: dict[str, LogisticFit], data: pd.DataFrame, seed: int) -> HeldOut:
    from nodescope.evaluation import calibration_metrics, compare_auc, decision_curve, roc_auc

    y = outcome_array(data, "y")
    lps = {k: f.predict_lp(data) for k, f in fits.items()}
    probs = {k: 1 / (1 + np.exp(-v)) for k, v in lps.items()}
    auc = {k: roc_auc(y, v) for k, v in lps.items()}
    comps = {"combined vs clinical": compare_auc(y, lps["combined"], lps["clinical"]),
             "combined vs dl": compare_auc(y, lps["combined"], lps["dl"])}
    cal = calibration_metrics(y, probs["combined"], hl_fitted_on_sample=False, n_boot=200, seed=seed)
    dec = {k: decision_curve(y, v, n_boot=0) for k, v in probs.items()}
    return HeldOut(split=name, n=len(y), n_events=int(y.sum()), auc=auc, comparisons=comps, calibration=cal,
                   decision=dec, probabilities=probs, y=y)


def combine_signature(data: pd.DataFrame, clinical_terms: str, *, dl_term: str = SIGNATURE, B: int = 200,
                      seed: int = 0, firth: bool | None = False, cutoffs: Sequence[float] | None = None,
                      missing: Literal["complete", "impute"] = "complete", m: int = 20,
                      development: Sequence[str] = _DEV, notes: Sequence[str] = ()) -> CombinedModels:
    """Fit, compare and validate the clinical-only, DL-only and combined models.

    Parameters
    ----------
    data : pandas.DataFrame
        From :func:`join_signature` (columns ``y``, ``split``, ``dl_signature`` and the clinical ones).
    clinical_terms : str
        The clinical part of the formula, e.g. ``"rcs(age, 3) + shape"``.
    dl_term : str, default ``"dl_signature"``
        How the signature enters (``"rcs(dl_signature, 3)"`` for a spline).
    B : int, default 200
        Bootstrap repetitions of validate / calibrate.
    seed : int, default 0
    firth : bool or None, default False
        Firth's penalised likelihood (None: only when separation is detected).
    cutoffs : sequence of float, optional
        Risk categories for a categorical NRI (default: category-free).
    missing : {"complete", "impute"}, default "complete"
        Complete-case analysis, or multiple imputation of missing clinical predictors (``m`` data sets, Rubin's
        rules; :func:`~nodescope.clinical.fit_lrm_imputed`). Patients without a signature or outcome are always
        left out. The choice is stated in ``notes``.
    m : int, default 20
        Imputed data sets when ``missing="impute"``.
    development : sequence of str, default ("cv", "val")
        The ``split`` values the models are fitted on; the other splits among ``test`` / ``external`` are held
        out. Give ``("test",)`` when the signature came from a model trained elsewhere and every patient here is
        its test set (the nomogram is then developed on those patients).
    notes : sequence of str
        Notes from the join, carried into the result.

    Returns
    -------
    CombinedModels
    """
    from nodescope.evaluation import calibration_metrics, compare_auc, decision_curve

    formulas = {"clinical": f"y ~ {clinical_terms}", "dl": f"y ~ {dl_term}",
                "combined": f"y ~ {clinical_terms} + {dl_term}"}
    variables = {v for f in formulas.values() for _, v, _ in parse_formula(f)[1]}
    require_columns(data, sorted(variables))
    notes = list(notes)
    development = tuple(development)
    dev_mask = data["split"].isin(development).to_numpy()
    if not dev_mask.any():
        raise DataError(f"no development rows: the predictions have splits {sorted(set(data['split']))}; the "
                        f"models are fitted on {' and '.join(development)} rows (by default the out-of-fold and "
                        "validation predictions)")
    cols = ["y", *sorted(variables)]
    always = ["y", SIGNATURE] if SIGNATURE in variables else ["y"]
    need = cols if missing == "complete" else always
    complete = data[need].notna().all(axis=1).to_numpy()
    dev = data[dev_mask & complete].reset_index(drop=True)
    dropped = int((dev_mask & ~complete).sum())
    per = ", ".join(f"{c}: {int(data.loc[dev_mask, c].isna().sum())}" for c in cols
                    if data.loc[dev_mask, c].isna().any())
    if missing == "complete":
        notes.append(f"missing data: complete-case analysis -- {dropped} of {int(dev_mask.sum())} development "
                     f"patients dropped{f' ({per})' if per else ''}; all three models use the same {len(dev)} "
                     "patients (multiple imputation not applied)")
        fits = {k: fit_lrm(f, dev, firth=firth) for k, f in formulas.items()}
    elif missing == "impute":
        from nodescope.clinical._impute import fit_lrm_imputed

        notes.append(f"missing data: multiple imputation of clinical predictors ({m} data sets, Rubin's rules); "
                     f"{dropped} development patients without outcome or signature left out"
                     f"{f'; missing per column: {per}' if per else ''}")
        fits = {k: fit_lrm_imputed(f, dev, m=m, seed=seed, firth=firth) for k, f in formulas.items()}
        complete = data[cols].notna().all(axis=1).to_numpy()  # held-out rows are scored only when complete
    else:
        raise ConfigError(f"missing: must be 'complete' or 'impute', got {missing!r}")
    for k, f in fits.items():
        notes += [f"{k} model: {w}" for w in f.warnings]
    y = fits["combined"].y
    lps = {k: f.linear_predictor for k, f in fits.items()}
    probs = {k: 1 / (1 + np.exp(-v)) for k, v in lps.items()}
    delong = {"combined vs clinical": compare_auc(y, lps["combined"], lps["clinical"]),
              "combined vs dl": compare_auc(y, lps["combined"], lps["dl"]),
              "dl vs clinical": compare_auc(y, lps["dl"], lps["clinical"])}
    reclass = reclassification(y, probs["clinical"], probs["combined"], cutoffs=cutoffs)
    validation = {k: validate(f, B=B, seed=seed) for k, f in fits.items()}
    calib = {k: calibrate(f, B=B, seed=seed) for k, f in fits.items()}
    try:
        nom: Nomogram | None = nomogram(fits["combined"])
    except ConfigError as exc:
        nom = None
        notes.append(str(exc))
    cal_summary = calibration_metrics(y, probs["combined"], n_boot=200, seed=seed)
    decision = {k: decision_curve(y, v, n_boot=0) for k, v in probs.items()}
    held = []
    for split in (s for s in ("test", "external") if s not in development):
        rows = data[(data["split"] == split).to_numpy() & complete].reset_index(drop=True)
        if len(rows):
            if rows["y"].nunique() < 2:
                notes.append(f"{split} split: only one outcome value among {len(rows)} patients; not evaluated")
                continue
            held.append(_evaluate_split(split, fits, rows, seed))
    return CombinedModels(formulas=formulas, fits=fits, validation=validation, calibration=calib, delong=delong,
                          reclass=reclass, lr_signature=_lr_added(fits["clinical"], fits["combined"]), nomogram=nom,
                          calibration_summary=cal_summary, decision=decision, held_out=tuple(held), notes=tuple(notes), data=dev)


def model_table(result: CombinedModels) -> pd.DataFrame:
    """One row per model: n, events, apparent and optimism-corrected C, calibration slope, Brier, R2, LR chi2."""
    rows = []
    for k, f in result.fits.items():
        v = result.validation[k].table
        rows.append({"model": k, "formula": result.formulas[k], "n": f.n, "events": f.n_events,
                     "C": f.stats["C"], "C corrected": v.loc["Dxy", "index.corrected"] / 2 + 0.5,
                     "slope corrected": v.loc["Slope", "index.corrected"], "R2": f.stats["R2"],
                     "R2 corrected": v.loc["R2", "index.corrected"], "Brier": f.stats["Brier"],
                     "LR chi2": f.stats["Model L.R."], "d.f.": f.stats["d.f."], "AIC": _aic(f)})
    return pd.DataFrame(rows)


def _aic(fit: LogisticFit) -> float:
    lp = fit.linear_predictor
    ll = float(np.sum(fit.y * lp - np.logaddexp(0, lp)))
    return -2 * ll + 2 * (fit.stats["d.f."] + 1) if math.isfinite(ll) else math.nan
