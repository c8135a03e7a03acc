"""Temperature scaling fitted on a run's pooled out-of-fold predictions (``calibrate="temperature"``).

One parameter ``T > 0`` divides a classifier's logits, ``p' = softmax(z / T)`` (Guo et al. 2017, "On calibration of
modern neural networks", ICML), chosen by maximum likelihood on the pooled out-of-fold rows: rows no model saw in
training, so the fit is not the in-sample fit that would leave an over-confident network as it is. It needs no
logits: ``log p = z - logsumexp(z)`` differs from ``z`` by a per-row constant, so ``softmax(log p / T) =
softmax(z / T)``. With test-time mirroring the saved probability is the mean of two views' and the fit is on that
mean, while the bundle divides each view's logits (the stored predictions are re-scored by the calibrated bundles, so
what the run reports is what the bundles give).

It changes no decision of one image (the arg-max is unchanged) and not the ranking of a binary task's probabilities
(AUC unchanged); it changes the probabilities themselves, hence the calibration slope, the Brier score and every
threshold read on the probability scale (the run's operating threshold is chosen after it). It is fitted on the
training centre: it corrects the network's over-confidence there, not a shift at another centre (for that, see the
recalibration learning curve of ``nodescope evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from torch import nn

from nodescope.errors import ConfigError

__all__ = ["TemperatureFit", "fit_temperature", "set_temperature"]

#: The search interval of T (a value at a bound is reported: the data say "more" or "less" than it can express).
T_BOUNDS = (0.05, 20.0)


@dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature and what it did to the log loss of the rows it was fitted on.

    Attributes
    ----------
    temperature : float
        ``T``; > 1 softens the probabilities, < 1 sharpens them.
    log_loss_before, log_loss_after : float
        Mean negative log-likelihood of the true class at ``T = 1`` and at ``T``.
    n : int
        Rows fitted on.
    at_bound : bool
        ``T`` is at an end of the search interval (0.05-20): the data would push it further.
    """

    temperature: float
    log_loss_before: float
    log_loss_after: float
    n: int
    at_bound: bool

    def to_dict(self) -> dict[str, Any]:
        """The record stored in ``summary.json`` and the bundles' ``training.calibration``."""
        return {"method": "temperature", "temperature": self.temperature, "fitted_on": "cv (pooled out-of-fold)",
                "n": self.n, "log_loss_before": self.log_loss_before, "log_loss_after": self.log_loss_after,
                "at_bound": self.at_bound}


def _log_loss(logp: np.ndarray, y: np.ndarray, t: float) -> float:
    return float(-log_softmax(logp / t, axis=1)[np.arange(len(y)), y].mean())


def fit_temperature(probabilities: np.ndarray, y: np.ndarray) -> TemperatureFit:
    """Maximum-likelihood temperature of softmax probabilities ``(N, K)`` against true class indices ``y``.

    Parameters
    ----------
    probabilities : ndarray, shape (N, K)
        Rows of softmax probabilities (each sums to 1), e.g. the pooled out-of-fold ``p_<class>`` columns.
    y : ndarray of int, shape (N,)
        Index of each row's true class.

    Returns
    -------
    TemperatureFit

    Raises
    ------
    ConfigError
        Fewer than 2 classes present in ``y``, probabilities that are not finite or not in [0, 1], or shapes that do
        not agree.
    """
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(y)
    if p.ndim != 2 or p.shape[1] < 2 or len(y) != len(p):
        raise ConfigError(f"temperature scaling: expected probabilities (N, K >= 2) and N labels, got {p.shape} and "
                          f"{len(y)}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ConfigError("temperature scaling: probabilities must be finite and in [0, 1]")
    if len(np.unique(y)) < 2:
        raise ConfigError(f"temperature scaling needs rows of at least 2 classes; the {len(y)} out-of-fold rows are "
                          "all of one class")
    y = y.astype(int)
    logp = np.log(np.clip(p, 1e-12, 1.0))
    lo, hi = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    res = minimize_scalar(lambda s: _log_loss(logp, y, float(np.exp(s))), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-6})
    t = float(np.exp(res.x))
    return TemperatureFit(temperature=t, log_loss_before=_log_loss(logp, y, 1.0), log_loss_after=_log_loss(logp, y, t),
                          n=len(y), at_bound=bool(min(res.x - lo, hi - res.x) < 1e-3))


def set_temperature(net: nn.Module, temperature: float) -> None:
    """Set the :class:`~nodescope.models.Temperature` at the end of ``net.head`` (absolute, so setting it twice is
    setting it once).

    Raises
    ------
    ConfigError
        The network's head has no temperature (e.g. an intermediate-fusion network), or ``temperature`` is not a
        positive finite number.
    """
    from nodescope.models import Temperature

    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature: expected a positive finite number, got {temperature!r}")
    head = getattr(net, "head", None)
    last = head[-1] if isinstance(head, nn.Sequential) and len(head) else None
    if not isinstance(last, Temperature):
        raise ConfigError(f"{type(net).__name__} has no temperature at the end of its head; temperature scaling is "
                          "for single-input classifiers")
    with torch.no_grad():
        last.temperature.fill_(float(temperature))
