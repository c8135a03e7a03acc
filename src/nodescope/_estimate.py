"""The one result type for a statistic with a confidence interval.

Every statistic in nodescope that reports an interval returns an :class:`Estimate` (or a frozen dataclass holding
several), so that reports, JSON files and tables are built the same way everywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

__all__ = ["Estimate"]


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
        Method-specific details (standard error, counts, ...), JSON-serialisable.
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
