"""Input checks shared by the evaluation functions (validate once, at the public boundary)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nodescope.errors import StatisticsInputError

__all__: list[str] = []


def check_choice(name: str, value: Any, valid: Iterable[str]) -> str:
    """Return ``value`` when it is one of ``valid``; else a ValueError listing the choices (and a close match)."""
    valid = tuple(valid)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {valid}; got {type(value).__name__} {value!r}")
    if value not in valid:
        close = difflib.get_close_matches(value, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise StatisticsInputError(f"{name}={value!r} is not valid; expected one of {valid}.{hint}")
    return value


def check_alpha(alpha: float) -> float:
    """``alpha`` must be a float in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise TypeError(f"alpha must be a float in (0, 1); got {type(alpha).__name__}")
    if not 0.0 < float(alpha) < 1.0:
        raise StatisticsInputError(f"alpha must be in (0, 1); got {alpha!r}")
    return float(alpha)


def check_n_boot(n_boot: int, *, allow_zero: bool = False) -> int:
    """Number of bootstrap replicates: an int >= 1 (>= 0 with ``allow_zero``: no bootstrap, no interval)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)):
        raise TypeError(f"n_boot must be an int; got {type(n_boot).__name__}")
    least = 0 if allow_zero else 1
    if n_boot < least:
        raise StatisticsInputError(f"n_boot must be >= {least}; got {n_boot}")
    return int(n_boot)


def as_binary_labels(y_true: ArrayLike, name: str = "y_true") -> NDArray[np.bool_]:
    """0/1 (or boolean) labels as a boolean vector; anything else is an error naming the offending values."""
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise StatisticsInputError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must hold 0/1 (or True/False) labels; got dtype {arr.dtype}. "
            "Convert class names with (y == positive_class) first."
        )
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        values = np.unique(arr[bad])[:5].tolist()
        rows = np.flatnonzero(bad)[:5].tolist()
        raise StatisticsInputError(f"{name} must hold only 0 and 1; got {values} at positions {rows}")
    return arr.astype(bool)


def as_scores(y_score: ArrayLike, n: int, name: str = "y_score") -> NDArray[np.float64]:
    """Finite real scores of length ``n``."""
    arr = np.asarray(y_score)
    if arr.dtype.kind not in "iufb":
        raise TypeError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 1:
        raise StatisticsInputError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.shape[0] != n:
        raise StatisticsInputError(f"{name} has {arr.shape[0]} values but y_true has {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise StatisticsInputError(f"{name} must be finite; non-finite values at positions {rows}")
    return arr


def as_probabilities(y_prob: ArrayLike, n: int, name: str = "y_prob") -> NDArray[np.float64]:
    """Scores that must be probabilities in [0, 1]."""
    arr = as_scores(y_prob, n, name)
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise StatisticsInputError(
            f"{name} must be probabilities in [0, 1]; got {arr[bad][:5].tolist()} at positions {rows}"
        )
    return arr


def as_groups(groups: ArrayLike | None, n: int) -> NDArray[np.intp] | None:
    """Cluster labels (any hashable values) as integer codes 0..G-1, or ``None``."""
    if groups is None:
        return None
    arr = np.asarray(groups)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise StatisticsInputError(f"groups must be 1-D with one entry per row ({n}); got shape {arr.shape}")
    if arr.dtype.kind == "O":
        arr = arr.astype(str)
    _, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.intp)


def binary_inputs(y_true: ArrayLike, y_score: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Validate a ``(y_true, y_score)`` pair for a binary task."""
    y = as_binary_labels(y_true)
    s = as_scores(y_score, y.shape[0])
    if y.shape[0] == 0:
        raise StatisticsInputError("y_true is empty")
    return y, s
