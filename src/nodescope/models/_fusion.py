"""Multimodal fusion: intermediate (feature-level) fusion network and late fusion of per-modality predictions.

Late fusion works on ``predictions.csv`` frames (the contract in docs/architecture.md), one per modality model, and is
fitted on out-of-fold (``split == "cv"``) rows only:

- ``mean``: average of the available modalities' probabilities;
- ``weighted``: weights ``w = softmax(a)`` on the simplex minimising the log loss of ``sum_m w_m p_m`` (renormalised
  over the modalities present);
- ``stacking``: logistic regression on ``logit(p_m)`` (scikit-learn, L2, C=1).

For ``cv`` rows of fold k the weights/stacker are fitted on the other folds' ``cv`` rows (cross-fitting, so the fused
out-of-fold predictions stay out-of-fold); ``val``/``test``/``external`` rows use a fit on all ``cv`` rows.
Units (lesions) missing a modality: ``weighted`` renormalises, ``stacking`` falls back to the mean of the available
modalities and marks the row ``fusion_fallback=True``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.models._registry import build_backbone, feature_dim, make_head

__all__ = ["IntermediateFusionNet", "LateFusionMethod", "late_fusion"]

LateFusionMethod = Literal["mean", "weighted", "stacking"]


class IntermediateFusionNet(nn.Module):
    """Per-modality encoders, concatenated features (+ presence flags), one head.

    Parameters
    ----------
    backbone : str
        Registered backbone used for every modality.
    modalities : sequence of str
        Modality names, in input order.
    num_classes : int
    in_chans, image_size, head, hidden, dropout
        As in :class:`nodescope.models.ClassifierNet`.
    shared : bool, default False
        One encoder for all modalities (fewer parameters) instead of one each.

    Notes
    -----
    ``forward(x, present)``: ``x`` is ``(N, M, C, S, S)`` normalised float; ``present`` ``(N, M)`` bool (all True when
    omitted). Features of absent modalities are replaced by zeros and the head also sees ``present`` as 0/1 inputs,
    so a missing modality at inference is a situation seen in training (modality dropout, see the training module).
    Returns logits ``(N, num_classes)``.
    """

    def __init__(self, backbone: str, modalities: list[str] | tuple[str, ...], num_classes: int, *,
                 in_chans: int = 3, image_size: int = 224, head: Literal["mlp", "linear"] = "mlp",
                 hidden: int = 256, dropout: float = 0.2, shared: bool = False) -> None:
        super().__init__()
        if len(modalities) < 2:
            raise ConfigError(f"modalities: intermediate fusion needs >= 2, got {list(modalities)}")
        self.modalities = tuple(modalities)
        self.shared = shared
        n_enc = 1 if shared else len(modalities)
        self.encoders = nn.ModuleList(
            build_backbone(backbone, in_chans=in_chans, image_size=image_size) for _ in range(n_enc))
        nf = feature_dim(self.encoders[0])
        self.head = make_head(nf * len(modalities) + len(modalities), num_classes, kind=head, hidden=hidden,
                              dropout=dropout)
        self.config = {"backbone": backbone, "modalities": list(modalities), "num_classes": num_classes,
                       "in_chans": in_chans, "image_size": image_size, "head": head, "hidden": hidden,
                       "dropout": dropout, "shared": shared}

    @property
    def backbone(self) -> nn.Module:
        """The first encoder (what pretrained weights are loaded into; copied to the others by the caller)."""
        return self.encoders[0]

    @classmethod
    def from_config(cls, arch: dict[str, Any]) -> IntermediateFusionNet:
        a = {k: v for k, v in arch.items() if k != "kind"}
        return cls(a.pop("backbone"), a.pop("modalities"), int(a.pop("num_classes")), **a)

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        n, m = x.shape[:2]
        if m != len(self.modalities):
            raise ValueError(f"x: expected {len(self.modalities)} modalities in dim 1, got {m}")
        if present is None:
            present = torch.ones(n, m, dtype=torch.bool, device=x.device)
        feats = []
        for i in range(m):
            enc = self.encoders[0 if self.shared else i]
            f = enc(x[:, i])
            feats.append(f * present[:, i, None].to(f.dtype))
        z = torch.cat([*feats, present.to(feats[0].dtype)], dim=1)
        return self.head(z)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _fit_weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize

    avail = ~np.isnan(P)

    def loss(a: np.ndarray) -> float:
        w = np.exp(a - a.max())
        w = w / w.sum()
        ww = np.where(avail, w, 0.0)
        p = np.nansum(np.where(avail, P, 0.0) * ww, axis=1) / ww.sum(axis=1)
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    res = minimize(loss, np.zeros(P.shape[1]), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9})
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


def _apply_weights(P: np.ndarray, w: np.ndarray) -> np.ndarray:
    avail = ~np.isnan(P)
    ww = np.where(avail, w, 0.0)
    return np.sum(np.where(avail, P, 0.0) * ww, axis=1) / ww.sum(axis=1)


def _input_col(modality: str, pcol: str) -> str:
    """Column holding one modality's input probability in the fused table."""
    return f"{modality}:{pcol}"


def late_fusion(predictions: dict[str, pd.DataFrame], *, positive: str, method: LateFusionMethod = "mean",
                unit_cols: tuple[str, ...] = ("patient_id", "lesion_id")) -> pd.DataFrame:
    """Fuse per-modality binary predictions into one prediction per unit (lesion or patient).

    Parameters
    ----------
    predictions : dict
        Modality name -> predictions frame (contract columns; ``p_<positive>`` required). Image rows are first
        averaged per unit and split.
    positive : str
        Positive class; the output has ``p_<positive>`` (and ``p_<negative>`` when the inputs name a second class).
    method : {"mean", "weighted", "stacking"}
    unit_cols : tuple of str
        Columns identifying a unit; those absent from the frames are ignored (``patient_id`` is required).

    Returns
    -------
    pandas.DataFrame
        One row per unit and split: ``patient_id`` (+ ``lesion_id``), ``y_true``, ``p_<class>``, ``split``, ``fold``,
        ``model = "late_<method>"``, ``run_id``, ``<modality>:p_<positive>`` per modality (the fused inputs; not
        named ``p_...``, which the predictions contract keeps for class probabilities), ``fusion_fallback``,
        and ``fusion_weights`` (weighted) as a JSON-able string.
    """
    from sklearn.linear_model import LogisticRegression

    if method not in ("mean", "weighted", "stacking"):
        raise ConfigError(f"method: expected 'mean', 'weighted' or 'stacking', got {method!r}")
    if len(predictions) < 2:
        raise StatisticsInputError(f"predictions: need >= 2 modalities, got {list(predictions)}")
    pcol = f"p_{positive}"
    parts = []
    classes: set[str] = set()
    for mod, df in predictions.items():
        for col in ("patient_id", "y_true", "split", pcol):
            if col not in df.columns:
                raise StatisticsInputError(f"predictions[{mod!r}]: column {col!r} missing (have {list(df.columns)})")
        classes |= set(df["y_true"].dropna().astype(str))
        keys = [c for c in unit_cols if c in df.columns]
        d = df.copy()
        d["fold"] = (pd.to_numeric(d["fold"], errors="coerce").fillna(-1).astype(int) if "fold" in d.columns
                     else -1)
        g = d.groupby([*keys, "split"], dropna=False, sort=False).agg(
            y_true=("y_true", "first"), fold=("fold", "first"), p=(pcol, "mean")).reset_index()
        g = g.rename(columns={"p": _input_col(mod, pcol)})
        parts.append(g.set_index([*keys, "split"]))
    wide = parts[0]
    first = next(iter(predictions))
    for mod, g in zip(list(predictions)[1:], parts[1:], strict=True):
        g2 = g.drop(columns=["y_true", "fold"])
        wide = wide.join(g2, how="outer")
        fill = g.reindex(wide.index)
        both = wide["y_true"].notna() & fill["y_true"].notna()
        clash = both & (wide["y_true"].astype(str) != fill["y_true"].astype(str))
        if clash.any():
            unit = wide.index[clash.to_numpy()][0]
            raise StatisticsInputError(f"late_fusion: unit {dict(zip(wide.index.names, unit, strict=True))} has y_true "
                             f"{wide.loc[unit, 'y_true']!r} in the {first!r} predictions (or an earlier one) but "
                             f"{fill.loc[unit, 'y_true']!r} in {mod!r}; {int(clash.sum())} unit(s) disagree")
        wide["y_true"] = wide["y_true"].fillna(fill["y_true"])
        wide["fold"] = wide["fold"].fillna(fill["fold"])
    wide = wide.reset_index()
    wide["fold"] = wide["fold"].astype(int)  # NaN during the outer join made it float (0.0)
    mods = list(predictions)
    P = wide[[_input_col(m, pcol) for m in mods]].to_numpy(float)
    y = (wide["y_true"].astype(str) == positive).to_numpy(float)
    is_cv = (wide["split"] == "cv").to_numpy()
    folds = wide["fold"].astype(int).to_numpy()
    fused = np.nanmean(P, axis=1)
    fallback = np.zeros(len(wide), bool)
    weights_txt = ""
    if method != "mean":
        if is_cv.sum() < 4 or len(np.unique(y[is_cv])) < 2:
            raise StatisticsInputError("late_fusion: fitting needs cv rows of both classes")
        complete = ~np.isnan(P).any(axis=1)

        def fit_apply(train_mask: np.ndarray, apply_mask: np.ndarray) -> None:
            nonlocal weights_txt
            if method == "weighted":
                w = _fit_weights(P[train_mask], y[train_mask])
                fused[apply_mask] = _apply_weights(P[apply_mask], w)
                return
            tm = train_mask & complete
            am = apply_mask & complete
            if len(np.unique(y[tm])) < 2:
                raise StatisticsInputError("late_fusion: a stacking fit has one class only; use more folds or 'mean'")
            lr = LogisticRegression(C=1.0).fit(_logit(P[tm]), y[tm])
            if am.any():
                fused[am] = lr.predict_proba(_logit(P[am]))[:, 1]
            fallback[apply_mask & ~complete] = True

        for k in np.unique(folds[is_cv]):
            fit_apply(is_cv & (folds != k), is_cv & (folds == k))
        if (~is_cv).any():
            fit_apply(is_cv, ~is_cv)
        if method == "weighted":
            w_all = _fit_weights(P[is_cv], y[is_cv])
            weights_txt = ";".join(f"{m}={v:.4f}" for m, v in zip(mods, w_all, strict=True))
    out = wide.drop(columns=[_input_col(m, pcol) for m in mods]).copy()
    negs = sorted(c for c in classes if c != positive)
    if len(negs) == 1:
        out[f"p_{negs[0]}"] = 1.0 - fused
    out[pcol] = fused
    for j, m in enumerate(mods):
        out[_input_col(m, pcol)] = P[:, j]
    out["model"] = f"late_{method}"
    out["run_id"] = f"late_{method}"
    out["fusion_fallback"] = fallback
    if weights_txt:
        out["fusion_weights"] = weights_txt
    return out
