"""Deep-learning radiomics: penultimate-layer features of a bundle, and a LASSO-logistic signature built on them.

:func:`extract_features` scores images with a classifier bundle through the one prediction path
(``nodescope.models.predict_files`` with ``features=True``: the pooled features the head maps to logits) and,
on request, averages them per patient.

:func:`dlr_signature` is the deep-radiomics signature of the thyroid studies: features standardised, an L1-penalised
logistic regression (scikit-learn ``LogisticRegressionCV``, ``liblinear``) with its penalty chosen by patient-grouped,
stratified cross-validation on the AUC, the features with non-zero coefficients selected. So that the signature fed
to the nomogram is honest, the development patients get *out-of-fold* signatures: the whole procedure (scaling,
penalty choice, selection) is repeated inside an outer patient-grouped cross-validation, each patient scored by the
model that did not see them. Rows of a ``test`` / ``external`` split (a ``split`` column in the features table) are
scored by the model refitted on all development patients. The output is a predictions table (the project's
contract), which ``nodescope nomogram`` reads.

Reference: Tibshirani R. J R Stat Soc B 1996;58:267-88 (LASSO).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nodescope.errors import DataError, StatisticsInputError

__all__ = ["DlrSignature", "dlr_signature", "extract_features", "feature_columns"]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The ``f_<j>`` columns of a features table, in order."""
    cols = [c for c in frame.columns if c.startswith("f_") and c[2:].isdigit()]
    return sorted(cols, key=lambda c: int(c[2:]))


def extract_features(bundle: str | Path, inputs: Sequence[str | Path], *, pool: Literal["none", "mean"] = "none",
                     tta: bool | None = None, batch_size: int = 32) -> pd.DataFrame:
    """Penultimate-layer features of every image (optionally averaged per patient).

    Parameters
    ----------
    bundle : path
        A classifier bundle.
    inputs : sequence of path
        Manifest CSVs, folders or image files (as ``nodescope predict`` takes them).
    pool : {"none", "mean"}, default "none"
        ``"mean"``: one row per patient, the mean of its images' features.
    tta : bool, optional
        Test-time augmentation (default: as the bundle was validated).
    batch_size : int, default 32

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``y_true`` (the manifest label), ``image`` (``n_images`` when pooled), ``f_0 .. f_{F-1}``.
    """
    from nodescope.models import load_bundle, predict_files

    b = load_bundle(bundle)
    out = predict_files(b, inputs, tta=tta, batch_size=batch_size, features=True)
    feats = feature_columns(out)
    if not feats:
        raise DataError(f"bundle {bundle}: the model returned no features")
    table = out[["patient_id", "y_true", "image", *feats]].copy()
    if pool == "mean":
        grouped = table.groupby("patient_id", sort=False)
        if (grouped["y_true"].nunique() > 1).any():
            bad = grouped["y_true"].nunique()
            raise DataError(f"patient(s) {', '.join(bad.index[bad > 1][:5])} have images with different labels; "
                            "they cannot be pooled")
        pooled = grouped[feats].mean()
        pooled.insert(0, "n_images", grouped.size())
        pooled.insert(0, "y_true", grouped["y_true"].first())
        table = pooled.reset_index()
    elif pool != "none":
        raise DataError(f"pool: must be 'none' or 'mean', got {pool!r}")
    return table


@dataclass(frozen=True)
class DlrSignature:
    """A LASSO-logistic deep-radiomics signature.

    Attributes
    ----------
    predictions : pandas.DataFrame
        The predictions table (``patient_id``, ``y_true``, ``p_<negative>``, ``p_<positive>``, ``split``, ``fold``,
        ``model``, ``run_id``, ``signature`` = the linear predictor): out-of-fold for development rows.
    selected : pandas.DataFrame
        Features with non-zero coefficients in the model refitted on all development patients (``feature``,
        ``coef`` on the standardised scale), largest first.
    C : float
        The chosen inverse penalty of that model.
    oof_auc : float
        AUC of the out-of-fold signatures (what the nomogram will see).
    """

    predictions: pd.DataFrame
    selected: pd.DataFrame
    C: float
    oof_auc: float
    classes: tuple[str, str] = field(default=("0", "1"))


def _lasso(x: NDArray[np.float64], y: NDArray[np.int_], groups: NDArray[np.object_], folds: int, seed: int):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    inner = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups))
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=np.logspace(-3, 2, 20), cv=inner, l1_ratios=(1.0,), solver="liblinear", scoring="roc_auc",
        max_iter=2000, random_state=seed, use_legacy_attributes=False))
    return model.fit(x, y)


def dlr_signature(features: pd.DataFrame, *, positive: str | None = None, folds: int = 5, seed: int = 0,
                  model_name: str = "dlr-lasso") -> DlrSignature:
    """Build the LASSO-logistic signature with out-of-fold scores for the development patients.

    Parameters
    ----------
    features : pandas.DataFrame
        From :func:`extract_features` (``patient_id``, ``y_true``, ``f_*``), optionally with a ``split`` column
        (``test`` / ``external`` rows are held out; anything else is development).
    positive : str, optional
        The event label; default the second of the two labels in sorted order.
    folds : int, default 5
        Outer (out-of-fold scores) and inner (penalty choice) cross-validation folds, grouped by patient.
    seed : int, default 0
    model_name : str

    Returns
    -------
    DlrSignature
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    feats = feature_columns(features)
    if not feats:
        raise StatisticsInputError("features table: no f_<j> columns")
    labels = sorted(features["y_true"].astype(str).unique())
    if len(labels) != 2:
        raise StatisticsInputError(f"features table: y_true must have two labels, got {labels}")
    pos = positive or labels[1]
    if pos not in labels:
        raise StatisticsInputError(f"positive class {pos!r} is not a label of y_true ({', '.join(labels)})")
    neg = next(lab for lab in labels if lab != pos)
    split = features["split"].astype(str) if "split" in features.columns else pd.Series("cv", index=features.index)
    dev = ~split.isin(["test", "external"]).to_numpy()
    x = features[feats].to_numpy(float)
    y = (features["y_true"].astype(str) == pos).to_numpy(int)
    groups = features["patient_id"].astype(str).to_numpy()
    xd, yd, gd = x[dev], y[dev], groups[dev]
    if min(yd.sum(), len(yd) - yd.sum()) < folds:
        raise StatisticsInputError(f"features table: {int(yd.sum())} events and {int(len(yd) - yd.sum())} "
                                   f"non-events among development rows; {folds}-fold cross-validation needs at "
                                   f"least {folds} of each")
    lp = np.full(len(y), np.nan)
    fold = np.full(len(y), -1)
    dev_idx = np.flatnonzero(dev)
    outer = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(outer.split(xd, yd, gd)):
        m = _lasso(xd[tr], yd[tr], gd[tr], folds, seed)
        lp[dev_idx[te]] = m.decision_function(xd[te])
        fold[dev_idx[te]] = k
    final = _lasso(xd, yd, gd, folds, seed)
    if (~dev).any():
        lp[~dev] = final.decision_function(x[~dev])
    coef = final[-1].coef_.ravel()
    chosen = np.flatnonzero(coef)
    selected = pd.DataFrame({"feature": [feats[i] for i in chosen], "coef": coef[chosen]})
    selected = selected.reindex(selected.coef.abs().sort_values(ascending=False).index).reset_index(drop=True)
    p = 1 / (1 + np.exp(-lp))
    preds = pd.DataFrame({"patient_id": groups, "y_true": features["y_true"].astype(str).to_numpy(),
                          f"p_{neg}": 1 - p, f"p_{pos}": p,
                          "split": np.where(dev, "cv", split.to_numpy()), "fold": fold, "model": model_name,
                          "run_id": f"{model_name}-seed{seed}", "signature": lp})
    return DlrSignature(predictions=preds, selected=selected, C=float(np.ravel(final[-1].C_)[0]),
                        oof_auc=float(roc_auc_score(yd, lp[dev])), classes=(neg, pos))
