"""Fusion of several segmenters' probability maps, and mask post-processing.

Rules (:func:`fuse_masks`), for ``M`` members' foreground probabilities of one image:

- ``mean``: the mean probability, thresholded at 0.5 (soft voting);
- ``vote``: majority vote of the members' binary masks (each thresholded at 0.5); a pixel is foreground when more
  than half of the members say so (a tie of an even number of members is background); the reported probability is
  the fraction of members voting foreground;
- ``staple``: Simultaneous Truth And Performance Level Estimation (Warfield, Zou & Wells 2004, IEEE TMI 23:903-921)
  on the members' binary masks: an EM that estimates each member's sensitivity ``p_j`` and specificity ``q_j`` and
  the posterior probability ``W`` that each pixel is foreground; the fused mask is ``W >= 0.5``. Neither MONAI nor
  the rest of the stack implements STAPLE (SimpleITK, which does, is not a dependency), so it is written here and
  validated on constructed cases in ``tests/segment/test_fusion.py`` (identical raters, one reliable rater among
  noisy ones, the closed-form first E-step).

Post-processing (:func:`postprocess_mask`, scipy.ndimage): keep the largest 8-connected component and/or fill holes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from nodescope.errors import ConfigError

__all__ = ["FUSION_RULES", "FusionRule", "StapleResult", "fuse_masks", "postprocess_mask", "staple"]

FusionRule = Literal["mean", "vote", "staple"]
#: The fusion rules :func:`fuse_masks` accepts.
FUSION_RULES: tuple[str, ...] = ("mean", "vote", "staple")


@dataclass(frozen=True)
class StapleResult:
    """What :func:`staple` estimated.

    Attributes
    ----------
    probability : numpy.ndarray
        ``W``: posterior probability of foreground per pixel, float32, the shape of one rater's mask.
    sensitivity, specificity : numpy.ndarray
        ``(M,)`` per rater.
    prior : float
        The foreground prior (the mean fraction of foreground over raters unless given).
    iterations : int
    converged : bool
    """

    probability: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray
    prior: float
    iterations: int
    converged: bool


def _stack(maps: np.ndarray | list[np.ndarray], name: str) -> np.ndarray:
    arr = np.asarray(maps if isinstance(maps, np.ndarray) else np.stack([np.asarray(m) for m in maps]))
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise ValueError(f"{name}: expected (M, H, W) maps of M >= 1 members, got shape {arr.shape}")
    return arr


def staple(masks: np.ndarray | list[np.ndarray], *, prior: float | None = None, max_iter: int = 100,
           tol: float = 1e-7, init_sensitivity: float = 0.99, init_specificity: float = 0.99) -> StapleResult:
    """Binary STAPLE (Warfield et al. 2004) of ``M`` raters' masks.

    With rater decisions ``D_ij`` in {0, 1}, the E-step is ``W_i = f a_i / (f a_i + (1 - f) b_i)`` with
    ``a_i = prod_j p_j^D_ij (1 - p_j)^(1 - D_ij)``, ``b_i = prod_j q_j^(1 - D_ij) (1 - q_j)^D_ij`` and prior ``f``; the
    M-step ``p_j = sum_i W_i D_ij / sum_i W_i``, ``q_j = sum_i (1 - W_i)(1 - D_ij) / sum_i (1 - W_i)``. Iterates until
    the largest change of any ``p_j``, ``q_j`` is below ``tol``. Computed in log space; ``p_j``, ``q_j`` are kept in
    ``[1e-6, 1 - 1e-6]``.

    Parameters
    ----------
    masks : array-like
        ``(M, ...)`` binary (nonzero = foreground) masks of the same image.
    prior : float, optional
        Foreground prior ``f``; default the mean foreground fraction over raters (Warfield's global prior).
    max_iter : int, default 100
    tol : float, default 1e-7
    init_sensitivity, init_specificity : float, default 0.99

    Returns
    -------
    StapleResult
    """
    d = (_stack(masks, "masks") > 0).reshape(np.shape(masks)[0], -1).astype(np.float64)
    m, _n = d.shape
    f = float(d.mean()) if prior is None else float(prior)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"prior: expected a probability in [0, 1], got {prior!r}")
    shape = np.shape(masks)[1:]
    if f in (0.0, 1.0):  # every rater says the same thing everywhere
        w = np.full(shape, f, np.float32)
        return StapleResult(w, np.ones(m), np.ones(m), f, 0, True)
    p = np.full(m, init_sensitivity)
    q = np.full(m, init_specificity)
    eps = 1e-6
    lf, lnf = np.log(f), np.log1p(-f)
    w = np.zeros(d.shape[1])
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        la = d.T @ np.log(p) + (1 - d).T @ np.log1p(-p) + lf
        lb = (1 - d).T @ np.log(q) + d.T @ np.log1p(-q) + lnf
        w = 1.0 / (1.0 + np.exp(np.clip(lb - la, -700, 700)))
        sw, snw = w.sum(), (1 - w).sum()
        p_new = np.clip((d @ w) / max(sw, 1e-12), eps, 1 - eps)
        q_new = np.clip(((1 - d) @ (1 - w)) / max(snw, 1e-12), eps, 1 - eps)
        delta = max(np.abs(p_new - p).max(), np.abs(q_new - q).max())
        p, q = p_new, q_new
        if delta < tol:
            converged = True
            break
    return StapleResult(w.reshape(shape).astype(np.float32), p, q, f, it, converged)


def fuse_masks(probabilities: np.ndarray | list[np.ndarray], rule: FusionRule = "mean", *,
               threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Fuse ``M`` members' foreground probability maps of one image.

    Parameters
    ----------
    probabilities : array-like
        ``(M, H, W)`` probabilities in [0, 1].
    rule : {"mean", "vote", "staple"}
        See the module docstring.
    threshold : float, default 0.5
        Threshold of a member's probability (``vote``, ``staple``) and of the fused probability.

    Returns
    -------
    mask : numpy.ndarray
        ``(H, W)`` bool.
    probability : numpy.ndarray
        ``(H, W)`` float32: the mean probability, the fraction of votes, or STAPLE's posterior.
    """
    p = _stack(probabilities, "probabilities").astype(np.float32)
    if rule not in FUSION_RULES:
        raise ConfigError(f"fusion: unknown rule {rule!r}; valid: {list(FUSION_RULES)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold: expected a value in (0, 1), got {threshold!r}")
    if rule == "mean":
        prob = p.mean(axis=0)
        return prob >= threshold, prob
    votes = p >= threshold
    if rule == "vote":
        frac = votes.mean(axis=0).astype(np.float32)
        return votes.sum(axis=0) * 2 > len(p), frac
    res = staple(votes)
    return res.probability >= 0.5, res.probability


def postprocess_mask(mask: np.ndarray, *, largest_component: bool = False, fill_holes: bool = False) -> np.ndarray:
    """Optional clean-up of a binary mask: keep its largest 8-connected component, fill its holes.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)``; nonzero = foreground.
    largest_component : bool, default False
        Keep only the largest component (ties: the first in scan order). An empty mask stays empty.
    fill_holes : bool, default False
        ``scipy.ndimage.binary_fill_holes``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` bool.
    """
    from scipy import ndimage

    m = np.asarray(mask) > 0
    if m.ndim != 2:
        raise ValueError(f"mask: expected (H, W), got shape {m.shape}")
    if fill_holes:
        m = ndimage.binary_fill_holes(m)
    if largest_component and m.any():
        lab, n = ndimage.label(m, structure=np.ones((3, 3), bool))
        if n > 1:
            sizes = np.bincount(lab.ravel())[1:]
            m = lab == (int(np.argmax(sizes)) + 1)
    return m
