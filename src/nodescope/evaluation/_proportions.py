"""Confidence intervals for proportions (Wilson, Wilson with continuity correction, Clopper-Pearson, ...) and for
ratios of proportions (log method).

Proportion intervals (``x`` successes of ``n``, ``p = x/n``, ``z = z_{1-alpha/2}``):

* ``"wilson"``: Wilson score interval **without** continuity correction (Wilson 1927; Newcombe 1998 method 3),
  ``(p + z^2/2n +/- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` (statsmodels; R ``prop.test(correct = FALSE)``);
* ``"wilson-cc"``: Wilson score interval **with** continuity correction, R's ``prop.test(x, n)`` default
  (Newcombe 1998 method 4): the same formula with ``p`` replaced by ``p - c/n`` for the lower and ``p + c/n`` for
  the upper bound, a bound set to 0 (1) when ``p -/+ c/n`` reaches 0 (1). As ``prop.test`` with its default null
  ``p0 = 0.5``, ``c = min(0.5, |x - n/2|)``: no correction when ``x = n/2`` exactly. Written here (statsmodels has
  no continuity-corrected Wilson interval) and checked against ``prop.test`` in
  tests/evaluation/reference/evaluation_api15.R;
* ``"clopper-pearson"``: exact interval from beta quantiles, ``Beta(a/2; x, n-x+1)`` to ``Beta(1-a/2; x+1, n-x)``
  (statsmodels ``"beta"``; R ``binom.test``);
* ``"agresti-coull"``, ``"jeffreys"``, ``"wald"``: statsmodels' ``"agresti_coull"``, ``"jeffreys"`` and
  ``"normal"``.

:func:`proportion_cis` gives several of them in one call.

Likelihood ratios and the diagnostic odds ratio use the log method (Simel, Samsa & Matchar 1991;
Glas et al. 2003): ``log(LR+) +/- z sqrt(1/TP - 1/(TP+FN) + 1/FP - 1/(FP+TN))``,
``log(LR-) +/- z sqrt(1/FN - 1/(TP+FN) + 1/TN - 1/(FP+TN))``, ``log(DOR) +/- z sqrt(1/TP + 1/FP + 1/FN + 1/TN)``.
A zero cell makes the log-method interval undefined; nothing is added to the cells unless the caller asks for it
with ``correction=0.5`` (Haldane), which is then recorded in the result's note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import pandas as pd
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._validation import check_alpha, check_choice

__all__ = ["proportion_ci", "proportion_cis"]

ProportionMethod = Literal["wilson", "wilson-cc", "clopper-pearson", "agresti-coull", "jeffreys", "wald"]
PROPORTION_METHODS: tuple[str, ...] = ("wilson", "wilson-cc", "clopper-pearson", "agresti-coull", "jeffreys", "wald")
_STATSMODELS_NAME = {"wilson": "wilson", "clopper-pearson": "beta", "agresti-coull": "agresti_coull",
                     "jeffreys": "jeffreys", "wald": "normal"}


def _wilson_cc(x: int, n: int, alpha: float) -> tuple[float, float]:
    """Continuity-corrected Wilson bounds exactly as R's ``prop.test(x, n, conf.level = 1 - alpha)``."""
    z = float(norm.ppf(1 - alpha / 2))
    est = x / n
    yates = min(0.5, abs(x - n * 0.5))
    z22n = z * z / (2 * n)

    def bound(pc: float, sign: float) -> float:
        return (pc + z22n + sign * z * math.sqrt(pc * (1 - pc) / n + z22n / (2 * n))) / (1 + 2 * z22n)

    hi = 1.0 if est + yates / n >= 1 else bound(est + yates / n, 1.0)
    lo = 0.0 if est - yates / n <= 0 else bound(est - yates / n, -1.0)
    return lo, hi


def proportion_ci(
    successes: int,
    n: int,
    *,
    method: ProportionMethod = "wilson",
    alpha: float = 0.05,
    name: str = "proportion",
) -> Estimate:
    """A proportion ``successes / n`` with a ``1 - alpha`` interval.

    Parameters
    ----------
    successes, n : int
        Counts, ``0 <= successes <= n``.
    method : {"wilson", "wilson-cc", "clopper-pearson", "agresti-coull", "jeffreys", "wald"}, default "wilson"
        Wilson score without continuity correction (default), Wilson with R ``prop.test``'s continuity
        correction, the exact Clopper-Pearson interval, or statsmodels' Agresti-Coull, Jeffreys, Wald intervals
        (module docstring).
    alpha : float, default 0.05
    name : str
        Recorded in the result.

    Returns
    -------
    Estimate
        ``nan`` with a note when ``n == 0`` (the proportion is undefined). ``extra`` holds the counts.
    """
    method = check_choice("method", method, PROPORTION_METHODS)  # type: ignore[assignment]
    alpha = check_alpha(alpha)
    for arg, val in (("successes", successes), ("n", n)):
        if isinstance(val, bool) or not float(val).is_integer():
            raise TypeError(f"{arg} must be a whole number; got {val!r}")
    successes, n = int(successes), int(n)
    if n < 0 or not 0 <= successes <= n:
        raise StatisticsInputError(f"need 0 <= successes <= n; got successes={successes}, n={n}")
    extra = {"successes": successes, "n": n}
    if n == 0:
        return Estimate(name, math.nan, math.nan, math.nan, method, alpha, 0, "undefined: denominator is 0", extra)
    if method == "wilson-cc":
        lo, hi = _wilson_cc(successes, n, alpha)
    else:
        lo, hi = proportion_confint(successes, n, alpha=alpha, method=_STATSMODELS_NAME[method])
    est = successes / n
    # the closed-form Wilson bounds of 0/n and n/n land a rounding error (~1e-17) past the estimate; both
    # intervals are exactly [0, .] and [., 1] there
    lo = 0.0 if successes == 0 else min(max(float(lo), 0.0), est)
    hi = 1.0 if successes == n else max(min(float(hi), 1.0), est)
    return Estimate(name, est, lo, hi, method, alpha, n, "", extra)


def proportion_cis(
    successes: int,
    n: int,
    *,
    methods: Sequence[ProportionMethod] = ("wilson", "wilson-cc", "clopper-pearson"),
    alpha: float = 0.05,
    name: str = "proportion",
) -> pd.DataFrame:
    """One proportion with several intervals side by side, one row per method.

    Parameters
    ----------
    successes, n : int
        Counts, ``0 <= successes <= n``.
    methods : sequence of str, default ("wilson", "wilson-cc", "clopper-pearson")
        Any of :data:`PROPORTION_METHODS`, each at most once.
    alpha : float, default 0.05
    name : str

    Returns
    -------
    pandas.DataFrame
        Columns ``name, estimate, ci_low, ci_high, method, alpha, n, note`` (as :meth:`Estimate.summary_frame`).
    """
    if isinstance(methods, str) or len(methods) == 0:
        raise StatisticsInputError(f"methods must be a non-empty sequence of method names; got {methods!r}")
    if len(set(methods)) != len(methods):
        raise StatisticsInputError(f"methods has a repeated name: {list(methods)}")
    rows = [proportion_ci(successes, n, method=m, alpha=alpha, name=name).summary_frame() for m in methods]
    return pd.concat(rows, ignore_index=True)


def log_ratio_ci(
    name: str, estimate: float, var_terms: list[float], *, alpha: float, note: str = ""
) -> Estimate:
    """Interval ``exp(log(est) +/- z sqrt(sum(var_terms)))``; undefined (nan bounds, noted) when it cannot be formed."""
    z = float(norm.ppf(1 - alpha / 2))
    if not math.isfinite(estimate) or estimate <= 0 or any(not math.isfinite(t) for t in var_terms):
        why = note or "log-method interval undefined (a zero cell)"
        return Estimate(name, estimate, math.nan, math.nan, "log", alpha, None, why, {})
    se = math.sqrt(max(sum(var_terms), 0.0))
    log_est = math.log(estimate)
    return Estimate(
        name, estimate, math.exp(log_est - z * se), math.exp(log_est + z * se), "log", alpha, None, note,
        {"se_log": se},
    )


def _inv(x: float) -> float:
    return 1.0 / x if x > 0 else math.inf


def ratio_estimates(
    tp: int, fp: int, fn: int, tn: int, *, alpha: float, correction: float = 0.0
) -> tuple[Estimate, Estimate, Estimate]:
    """LR+, LR- and DOR with log-method intervals from a 2x2 table (optionally ``correction`` added to every cell)."""
    if correction < 0:
        raise StatisticsInputError(f"correction must be >= 0; got {correction}")
    note = f"{correction} added to every cell (Haldane correction)" if correction else ""
    a, b, c, d = (float(v) + correction for v in (tp, fp, fn, tn))
    pos, neg = a + c, b + d
    if pos == 0 or neg == 0:
        why = "undefined: needs both positive and negative reference cases"
        nan = math.nan
        return tuple(  # type: ignore[return-value]
            Estimate(nm, nan, nan, nan, "log", alpha, None, why, {}) for nm in ("lr_positive", "lr_negative", "dor")
        )
    sens, spec = a / pos, d / neg
    with_zero = "" if correction else "a zero cell makes the estimate or its log-method interval infinite/undefined"

    def ratio(num: float, den: float) -> float:
        if den == 0:
            return math.inf if num > 0 else math.nan
        return num / den

    lr_pos = ratio(sens, 1 - spec)
    lr_neg = ratio(1 - sens, spec)
    dor = ratio(a * d, b * c)
    lrp = log_ratio_ci(
        "lr_positive", lr_pos, [_inv(a) - 1 / pos, _inv(b) - 1 / neg], alpha=alpha,
        note=note or (with_zero if min(a, b) == 0 else ""),
    )
    lrn = log_ratio_ci(
        "lr_negative", lr_neg, [_inv(c) - 1 / pos, _inv(d) - 1 / neg], alpha=alpha,
        note=note or (with_zero if min(c, d) == 0 else ""),
    )
    dr = log_ratio_ci(
        "dor", dor, [_inv(a), _inv(b), _inv(c), _inv(d)], alpha=alpha,
        note=note or (with_zero if min(a, b, c, d) == 0 else ""),
    )
    # Degenerate tables: no case called positive (TP = FP = 0, so sens = 0 and spec = 1) makes LR- = 1/1 = 1 and
    # its log-method SE exactly 0 (1/FN - 1/(TP+FN) + 1/TN - 1/(FP+TN) = 0): an interval [1, 1] that only reflects
    # that the test never says "positive". Likewise LR+ when every case is called positive (FN = TN = 0).
    if a + b == 0:
        lrn = Estimate("lr_negative", lrn.estimate, math.nan, math.nan, "log", alpha, None,
                       "degenerate: no case called positive (sensitivity 0, specificity 1), LR- = 1 by "
                       "construction; no interval", {})
    if c + d == 0:
        lrp = Estimate("lr_positive", lrp.estimate, math.nan, math.nan, "log", alpha, None,
                       "degenerate: every case called positive (sensitivity 1, specificity 0), LR+ = 1 by "
                       "construction; no interval", {})
    return lrp, lrn, dr
