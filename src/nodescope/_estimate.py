"""The one result type for a statistic with a confidence interval.

Every statistic in nodescope that reports an interval returns an :class:`Estimate` (or a frozen dataclass holding
several), so that reports, JSON files and tables are built the same way everywhere.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

__all__ = ["Estimate", "EstimateExtra"]

# Old keys of ``Estimate.extra`` that the meta-analysis results used before statistics API 1.0, and their one
# spelling now: ``mu`` (the estimate on the model scale named by ``extra["scale"]``) and ``se`` (its standard error).
DEPRECATED_EXTRA_KEYS: dict[str, str] = {"logit": "mu", "se_logit": "se", "log": "mu", "se_log": "se"}


class EstimateExtra(dict):
    """The ``extra`` mapping of an :class:`Estimate`: a plain ``dict`` that still answers the old key names.

    Reading a key of :data:`DEPRECATED_EXTRA_KEYS` (``"se_logit"``, ``"se_log"``, ``"logit"``, ``"log"``) that is
    not stored returns the value of its new name (``"se"`` or ``"mu"``) with a :class:`DeprecationWarning`.
    Keys that are stored are returned as they are, so nothing that sets an old key explicitly changes.
    """

    def _alias(self, key: object) -> str | None:
        new = DEPRECATED_EXTRA_KEYS.get(key) if isinstance(key, str) else None
        if new is None or dict.__contains__(self, key) or not dict.__contains__(self, new):
            return None
        warnings.warn(f"Estimate.extra[{key!r}] is deprecated; use extra[{new!r}] (on the scale extra['scale'])",
                      DeprecationWarning, stacklevel=3)
        return new

    def __missing__(self, key: object) -> Any:
        new = self._alias(key)
        if new is None:
            raise KeyError(key)
        return dict.__getitem__(self, new)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._alias(key) is not None

    def get(self, key: object, default: Any = None) -> Any:  # type: ignore[override]
        """``dict.get`` that also answers the deprecated key names (with a warning)."""
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        new = self._alias(key)
        return dict.__getitem__(self, new) if new is not None else default


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided ``1 - alpha`` confidence interval.

    Attributes
    ----------
    name : str
        What was estimated (``"sensitivity"``, ``"auc"``, ...).
    estimate : float
        The point estimate (``nan`` when undefined; see ``note``).
    ci_low, ci_high : float
        Interval bounds (``nan`` when undefined).
    method : str
        How the interval was computed (``"wilson"``, ``"delong"``, ``"bootstrap-percentile"``, ...).
    alpha : float
        ``1 - alpha`` is the nominal coverage; 0.05 unless stated.
    n : int or None
        The number of units the estimate rests on (its denominator for proportions).
    note : str
        Why an estimate is undefined, or any caveat (continuity correction applied, ...).
    extra : dict
        Method-specific details, JSON-serialisable. Where an interval is a Wald interval on a transformed scale,
        ``extra["scale"]`` names the scale (``"logit_sens"``, ``"log_dor"``, ...), ``extra["mu"]`` is the estimate and
        ``extra["se"]`` its standard error on that scale (the old names ``"logit"``/``"log"`` and
        ``"se_logit"``/``"se_log"`` still read, with a :class:`DeprecationWarning`; see :class:`EstimateExtra`).

    Examples
    --------
    >>> from nodescope import Estimate
    >>> Estimate("sensitivity", 0.9, 0.8, 0.95, "wilson", n=50).format()
    '0.900 (0.800-0.950)'
    """

    name: str
    estimate: float
    ci_low: float
    ci_high: float
    method: str
    alpha: float = 0.05
    n: int | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.extra, EstimateExtra):
            object.__setattr__(self, "extra", EstimateExtra(self.extra))

    @property
    def defined(self) -> bool:
        """``True`` when the point estimate is a finite number."""
        return math.isfinite(self.estimate)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` for JSON output (``nan`` kept as ``None``)."""
        out = asdict(self)
        for key in ("estimate", "ci_low", "ci_high"):
            if out[key] is not None and not math.isfinite(out[key]):
                out[key] = None
        return out

    def summary_frame(self) -> pd.DataFrame:
        """One-row :class:`pandas.DataFrame` with the estimate, interval and method."""
        return pd.DataFrame(
            [
                {
                    "name": self.name,
                    "estimate": self.estimate,
                    "ci_low": self.ci_low,
                    "ci_high": self.ci_high,
                    "method": self.method,
                    "alpha": self.alpha,
                    "n": self.n,
                    "note": self.note,
                }
            ]
        )

    def format(self, digits: int = 3) -> str:
        """Human-readable ``"0.912 (0.871-0.944)"``; ``"n/a"`` when undefined."""
        if not self.defined:
            return "n/a"
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return f"{self.estimate:.{digits}f}"
        return f"{self.estimate:.{digits}f} ({self.ci_low:.{digits}f}-{self.ci_high:.{digits}f})"
