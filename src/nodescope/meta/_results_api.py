"""What every meta-analysis result shares: JSON-safe conversion, R-like text tables, deprecated field names.

The result classes (:class:`~nodescope.meta.BivariateResult`, :class:`~nodescope.meta.UnivariateResult`,
:class:`~nodescope.meta.DeeksResult`, :class:`~nodescope.meta.SubgroupResult`,
:class:`~nodescope.meta.MetaRegressionResult`) follow statsmodels' habit: ``summary()`` returns a text table to
print (laid out like R's ``print(summary(fit))``), ``to_frame()`` a :class:`pandas.DataFrame`, ``to_dict()`` a
JSON-safe ``dict`` (``nan``/``inf`` as ``None``, arrays as lists).

One spelling per concept (statistics API 1.0): ``*_p_value`` for p-values, ``*_percent`` for quantities in percent
(``i2_percent``), ``extra["se"]``/``extra["mu"]``/``extra["scale"]`` in :class:`~nodescope.Estimate`. The names used
before (``q_pvalue``, ``i2``, ``i2_sens``, ``extra["se_logit"]``, ...) still read, with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from nodescope._estimate import Estimate

__all__ = ["deprecated_alias", "format_table", "json_safe", "text_block"]


def json_safe(obj: Any) -> Any:
    """Recursively turn ``obj`` into JSON-ready Python values.

    numpy arrays and scalars become lists and numbers, tuples become lists, non-finite floats become ``None``,
    :class:`Estimate` becomes its :meth:`~nodescope.Estimate.to_dict`, other dataclasses their fields, DataFrames a
    list of row dicts.
    """
    if isinstance(obj, Estimate):
        return json_safe(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: json_safe(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, pd.DataFrame):
        return [json_safe(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _fmt(v: Any, digits: int) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if not math.isfinite(v):
            return "NA" if math.isnan(v) else str(v)
        if v != 0 and (abs(v) < 10 ** -digits or abs(v) >= 1e6):
            return f"{v:.{digits}g}"
        return f"{v:.{digits}f}"
    return str(v)


def format_table(frame: pd.DataFrame, *, digits: int = 4, index: bool = True) -> str:
    """Right-aligned fixed-width text of a frame, numbers to ``digits`` decimals, ``nan`` as ``NA`` (as R prints)."""
    cols = [str(c) for c in frame.columns]
    body = [[_fmt(v, digits) for v in row] for row in frame.itertuples(index=False)]
    labels = [str(i) for i in frame.index] if index else []
    widths = [max([len(c)] + [len(r[j]) for r in body]) for j, c in enumerate(cols)]
    lw = max([len(s) for s in labels] + [0]) if index else 0
    head = (" " * lw + " " if index else "") + " ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))
    lines = [head]
    for i, r in enumerate(body):
        pre = labels[i].ljust(lw) + " " if index else ""
        lines.append(pre + " ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


def text_block(title: str, sections: Iterable[tuple[str, pd.DataFrame | str]], *, digits: int = 4) -> str:
    """A titled text report: each section a heading and a table (or a line of text), separated by blank lines."""
    out = [title, "=" * len(title)]
    for head, body in sections:
        out.append("")
        if head:
            out.append(head)
        out.append(body if isinstance(body, str) else format_table(body, digits=digits))
    return "\n".join(out)


def deprecated_alias(new: str, old: str, owner: str) -> property:
    """A read-only property ``old`` that returns attribute ``new`` with a :class:`DeprecationWarning`."""

    def getter(self: Any) -> Any:
        warnings.warn(f"{owner}.{old} is deprecated; use {owner}.{new}", DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    getter.__doc__ = f"Deprecated alias of :attr:`{new}` (statistics API 1.0); reading it warns."
    return property(getter)
