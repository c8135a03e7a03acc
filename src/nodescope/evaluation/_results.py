"""The statsmodels habit for every evaluation result: ``summary()``, ``to_frame()`` and ``to_dict()``.

* ``to_frame()`` -- a tidy :class:`pandas.DataFrame` (one row per statistic, or per threshold, reader, ...);
* ``summary()`` -- that table as R-like plain text with a title line, for a console or a log;
* ``to_dict()`` -- JSON-safe values only (``nan``/``inf`` become ``None``, numpy scalars and arrays become Python
  numbers and lists, tables become lists of records).

:func:`jsonable` is the one converter used for every JSON document of this package (``metrics.json`` included).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from nodescope._estimate import Estimate

__all__ = ["ResultsMixin", "deprecated_alias", "jsonable", "text_table"]


def jsonable(obj: Any) -> Any:
    """Convert results (dataclasses, Estimates, numpy, DataFrames) to JSON values; ``nan``/``inf`` become ``None``."""
    if isinstance(obj, Estimate):
        return jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, pd.DataFrame):
        return jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "NA"
        if v != 0 and (abs(v) < 0.01 or abs(v) >= 10**7):
            return f"{v:.{digits}g}"
        return f"{v:.{digits}f}"
    return str(value)


def text_table(frame: pd.DataFrame, title: str = "", *, digits: int = 4, footer: str = "") -> str:
    """A DataFrame as an R-like plain-text table: right-aligned columns, ``NA`` for missing numbers.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table; its index is printed only when it is not the default ``RangeIndex``.
    title : str
        First line.
    digits : int, default 4
        Decimals of floats (very small or very large values in ``g`` format).
    footer : str
        Printed below the table (notes, the interval method, ...).
    """
    show_index = not isinstance(frame.index, pd.RangeIndex)
    cols = [str(c) for c in frame.columns]
    body = [[_cell(v, digits) for v in row] for row in frame.itertuples(index=False, name=None)]
    if show_index:
        cols = ["", *cols]
        body = [[str(i), *r] for i, r in zip(frame.index, body, strict=True)]
    widths = [max([len(c), *(len(r[j]) for r in body)]) for j, c in enumerate(cols)]
    lines = [title] if title else []
    lines.append("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    if footer:
        lines.append(footer)
    return "\n".join(lines)


class ResultsMixin:
    """``summary()``, ``to_frame()`` and ``to_dict()`` for a frozen result dataclass.

    A class sets ``_summary_title`` and implements ``to_frame()``; ``to_dict()`` defaults to :func:`jsonable` of
    every field; ``_summary_footer()`` may add notes under the table.
    """

    _summary_title: ClassVar[str] = ""

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the result."""
        raise NotImplementedError

    def _summary_footer(self) -> str:
        return ""

    def summary(self, digits: int = 4) -> str:
        """The result as an R-like text table (``print(result.summary())``)."""
        return text_table(self.to_frame(), self._summary_title, digits=digits, footer=self._summary_footer())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe ``dict`` of every field (``nan`` as ``None``)."""
        out = jsonable(self)
        assert isinstance(out, dict)  # a dataclass converts to a dict
        return out



def deprecated_alias(old: str, new: str) -> property:
    """A read-only property ``old`` that warns (``DeprecationWarning``) and returns ``self.<new>``."""

    def getter(self: Any) -> Any:
        warnings.warn(f"{type(self).__name__}.{old} is deprecated; use .{new} (same value)", DeprecationWarning,
                      stacklevel=2)
        return getattr(self, new)

    return property(getter, doc=f"Deprecated alias of ``{new}`` (warns).")
