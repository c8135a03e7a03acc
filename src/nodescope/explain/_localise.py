"""Does the heat map look at the lesion? Energy inside the lesion mask and the pointing game, with patient-bootstrap
intervals.

Per image, with ``H`` the heat map (>= 0) and ``M`` the lesion mask at the original image's size:

- **energy in mask** ``sum(H * M) / sum(H)``: the share of the map's energy inside the lesion (the "energy-based
  pointing game" of Wang et al., Score-CAM, CVPR Workshops 2020, with the lesion mask in place of a box). A map
  spread evenly over the image scores the mask's area fraction, reported beside it as ``mask_fraction`` (chance).
- **pointing game hit** (Zhang et al., Top-down neural attention by excitation backprop, ECCV 2016): 1 when the
  map's maximum falls inside the mask (grown by ``tolerance`` pixels; Zhang et al. used 15), else 0. Where several
  pixels share the maximum, one of them inside counts as a hit.

Undefined cases give ``nan`` and are left out of the means (their number is reported): an empty mask (no lesion to
point at) and a map that is zero everywhere.

Summaries are means per CAM method and class (and over all classes) with percentile bootstrap intervals that
resample patients (whole clusters; images of one patient are not independent), through the evaluation package's
replicate weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError

__all__ = ["LOCALISATION_METRICS", "LocalisationSummary", "energy_in_mask", "pointing_hit",
           "summarise_localisation"]

LOCALISATION_METRICS = ("energy_in_mask", "pointing_hit", "mask_fraction")


def _pair(heatmap: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(heatmap, dtype=np.float64)
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=-1)
    if h.ndim != 2 or h.shape != m.shape:
        raise StatisticsInputError(f"heatmap {h.shape} and mask {m.shape}: expected two (H, W) arrays of one size")
    if not np.isfinite(h).all() or (h < 0).any():
        raise StatisticsInputError("heatmap: expected finite values >= 0")
    return h, m > 0


def energy_in_mask(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Share of the heat map's energy inside the mask, ``sum(H * M) / sum(H)``; nan for an empty mask or map."""
    h, m = _pair(heatmap, mask)
    total = h.sum()
    if not m.any() or total <= 0:
        return float("nan")
    return float(h[m].sum() / total)


def pointing_hit(heatmap: np.ndarray, mask: np.ndarray, *, tolerance: float = 0.0) -> float:
    """1.0 when the heat map's maximum lies in the mask grown by ``tolerance`` pixels (Euclidean), else 0.0; nan for
    an empty mask or map."""
    from scipy import ndimage

    h, m = _pair(heatmap, mask)
    if tolerance < 0:
        raise StatisticsInputError(f"tolerance: expected >= 0 pixels, got {tolerance!r}")
    if not m.any() or h.max() <= 0:
        return float("nan")
    if tolerance > 0:
        m = ndimage.distance_transform_edt(~m) <= tolerance
    return float(bool((h[m] >= h.max()).any()))


@dataclass(frozen=True)
class LocalisationSummary:
    """Means of the per-image localisation scores with patient-bootstrap intervals.

    Attributes
    ----------
    estimates : tuple of Estimate
        One per method, class (``"all"`` for every image) and metric (:data:`LOCALISATION_METRICS`); ``extra`` holds
        ``method``, ``class``, ``metric``, ``n_groups`` and ``n_undefined`` (images left out as undefined).
    n_boot : int
    seed : int
    """

    estimates: tuple[Estimate, ...]
    n_boot: int
    seed: int

    def to_frame(self) -> pd.DataFrame:
        """One row per estimate: method, class, metric, estimate, ci_low, ci_high, n (images), n_groups, ..."""
        rows = [{"method": e.extra["method"], "class": e.extra["class"], "metric": e.extra["metric"],
                 "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n,
                 "n_groups": e.extra["n_groups"], "n_undefined": e.extra["n_undefined"], "ci_method": e.method,
                 "alpha": e.alpha, "note": e.note} for e in self.estimates]
        return pd.DataFrame(rows)


def _mean_ci(values: np.ndarray, groups: np.ndarray, *, n_boot: int, alpha: float, seed: int,
             name: str) -> Estimate:
    from nodescope.evaluation._bootstrap import (
        bootstrap_note,
        bootstrap_weights,
        make_rng,
        percentile_interval,
    )
    from nodescope.evaluation._validation import as_groups

    ok = np.isfinite(values)
    v, g = values[ok], groups[ok]
    if v.size == 0:
        return Estimate(name, float("nan"), float("nan"), float("nan"), "none", alpha, 0,
                        note="no image with a defined value")
    codes = as_groups(g, v.size)
    assert codes is not None  # groups were given
    w = bootstrap_weights(np.zeros(v.size, bool), n_boot=n_boot, rng=make_rng(seed), groups=codes,
                          stratified=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = (w @ v) / w.sum(axis=1)
    lo, hi, used = percentile_interval(reps, alpha)
    note = f"patients resampled: {len(np.unique(codes))}, replicates: {n_boot}"
    extra_note = bootstrap_note(used, n_boot)
    return Estimate(name, float(v.mean()), lo, hi, "bootstrap-percentile-clustered", alpha, int(v.size),
                    note=f"{note}; {extra_note}" if extra_note else note)


def summarise_localisation(scores: pd.DataFrame, *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0,
                           metrics: Sequence[str] = LOCALISATION_METRICS) -> LocalisationSummary:
    """Mean energy in mask, pointing-game hit rate and mask fraction per method and class, with intervals.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per image and method: ``method``, ``label`` (class; empty for unlabelled images, which count in
        ``all`` only), ``group`` (patient), and the metric columns (nan where undefined).
    n_boot : int, default 2000
        Bootstrap replicates (whole patients drawn with replacement).
    alpha : float, default 0.05
    seed : int, default 0
    metrics : sequence of str
        Columns to summarise.

    Returns
    -------
    LocalisationSummary
    """
    from nodescope.evaluation._validation import check_alpha, check_n_boot

    need = {"method", "label", "group", *metrics}
    missing = sorted(need - set(scores.columns))
    if missing:
        raise StatisticsInputError(f"scores: missing column(s) {missing}; have {list(scores.columns)}")
    if scores.empty:
        raise StatisticsInputError("scores: no images to summarise")
    alpha, n_boot = check_alpha(alpha), check_n_boot(n_boot)
    out = []
    labels = sorted(str(v) for v in scores["label"].dropna().unique() if str(v) != "")
    for method, by_method in scores.groupby("method", sort=False):
        for cls in (*labels, "all"):
            part = by_method if cls == "all" else by_method[by_method["label"].astype(str) == cls]
            groups = part["group"].astype(str).to_numpy()
            for metric in metrics:
                vals = pd.to_numeric(part[metric], errors="coerce").to_numpy(float)
                e = _mean_ci(vals, groups, n_boot=n_boot, alpha=alpha, seed=seed, name=metric)
                n_groups = len(np.unique(groups[np.isfinite(vals)]))
                out.append(Estimate(e.name, e.estimate, e.ci_low, e.ci_high, e.method, e.alpha, e.n, e.note,
                                    {"method": str(method), "class": cls, "metric": metric, "n_groups": n_groups,
                                     "n_undefined": int((~np.isfinite(vals)).sum())}))
    return LocalisationSummary(tuple(out), n_boot, seed)
