"""Multi-reader multi-case (MRMC) analysis: Obuchowski-Rockette with DeLong or jackknife covariances.

The Obuchowski-Rockette (OR) model (Obuchowski & Rockette 1995) for the empirical AUC
:math:`\\hat\\theta_{ij}` of modality ``i = 1..t`` and reader ``j = 1..r`` on the same ``N`` cases is

.. math:: \\hat\\theta_{ij} = \\mu + \\tau_i + R_j + (\\tau R)_{ij} + \\epsilon_{ij},

with random readers and random cases. The error covariance matrix of the ``t * r`` AUCs over cases is estimated by
DeLong's structural components (DeLong et al. 1988) or by the case jackknife, and summarised by its averages
``Var`` (diagonal), ``Cov1`` (same reader, different modality), ``Cov2`` (same modality, different reader) and
``Cov3`` (different both). The random-reader random-case (RRRC) test of equal modality means is Hillis's (2007):

.. math::
    F = \\frac{MS_T}{MS_{TR} + r \\max(Cov_2 - Cov_3, 0)}, \\quad
    \\nu_2 = \\frac{\\left(MS_{TR} + r \\max(Cov_2 - Cov_3, 0)\\right)^2}{MS_{TR}^2 / ((t-1)(r-1))},

``F ~ F(t - 1, nu_2)``. With jackknife covariances this F equals the Dorfman-Berbaum-Metz (DBM) F computed from
pseudovalues (Hillis et al. 2005, "OR-DBM equivalence"). The same quantities are reported by R's MRMCaov
(``mrmc(empirical_auc(truth, rating), test, reader, case, cov = DeLong)``) and RJafroc (``St(..., method = "OR")``).

References
----------
Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for multiple readers and multiple
tests: an ANOVA approach with dependent observations. Commun Stat Simul Comput 24:285-308.
Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS (2005). A comparison of the Dorfman-Berbaum-Metz and
Obuchowski-Rockette methods for receiver operating characteristic (ROC) data. Stat Med 24:1579-1607.
Hillis SL (2007). A comparison of denominator degrees of freedom methods for multiple observer ROC analysis.
Stat Med 26:596-619.
DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more correlated receiver operating
characteristic curves: a nonparametric approach. Biometrics 44:837-845.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError
from nodescope.evaluation._delong import delong_components
from nodescope.evaluation._results import ResultsMixin

__all__ = ["MRMCResult", "mrmc_analysis"]

MRMCCov = Literal["delong", "jackknife"]
_COV_METHODS = ("delong", "jackknife")


@dataclass(frozen=True)
class MRMCResult(ResultsMixin):
    """Result of an Obuchowski-Rockette MRMC analysis of empirical AUC.

    Attributes
    ----------
    modalities, readers : tuple of str
        Labels, in the order of the first two axes of the ratings.
    n_cases, n_positive, n_negative : int
        Cases read (every reader read every case in every modality).
    auc : pandas.DataFrame
        Empirical AUC per reader (rows) and modality (columns).
    cov_method : str
        ``"delong"`` or ``"jackknife"``.
    alpha : float
        ``1 - alpha`` confidence level.
    var_error, cov1, cov2, cov3 : float
        OR error variance and covariances (averages of the estimated covariance matrix).
    var_reader, var_modality_reader : float
        OR variance components :math:`\\sigma^2_R` and :math:`\\sigma^2_{TR}` (method-of-moments; may be negative).
    ms_t, ms_r, ms_tr : float
        Mean squares of the modality x reader AUC table.
    modality_auc : tuple of Estimate
        Mean AUC over readers per modality with a Hillis (2007) single-modality t interval (``extra``: se, df).
    differences : tuple of Estimate
        Every pairwise difference of modality means (``modalities[a] - modalities[b]``, a < b) with the RRRC t
        interval, standard error, df and p-value in ``extra``.
    f_statistic, df1, df2, p_value : float
        RRRC global F test of equal modality means (``nan`` when ``t == 1``).
    fixed_readers : dict
        Fixed-reader random-case test: ``chi2``, ``df``, ``p_value`` and ``differences`` (z-based).
    notes : tuple of str
        Caveats (zero denominators, truncated covariances).
    """

    modalities: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int
    n_positive: int
    n_negative: int
    auc: pd.DataFrame
    cov_method: str
    alpha: float
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    var_reader: float
    var_modality_reader: float
    ms_t: float
    ms_r: float
    ms_tr: float
    modality_auc: tuple[Estimate, ...]
    differences: tuple[Estimate, ...]
    f_statistic: float
    df1: float
    df2: float
    p_value: float
    fixed_readers: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    _summary_title = "Obuchowski-Rockette MRMC analysis of empirical AUC (random readers and cases)"

    def summary_frame(self) -> pd.DataFrame:
        """Same as :meth:`to_frame` (the spelling of :meth:`Estimate.summary_frame`)."""
        return self.to_frame()

    def _summary_footer(self) -> str:
        return (f"global F = {self.f_statistic:.4f}, df1 = {self.df1:g}, df2 = {self.df2:.4f}, "
                f"p-value = {self.p_value:.4g}; covariances: {self.cov_method}; df: Hillis (2007)"
                + "".join(f"\nnote: {n}" for n in self.notes))

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per modality mean and per pairwise difference."""
        rows = []
        for est in (*self.modality_auc, *self.differences):
            rows.append({
                "name": est.name, "estimate": est.estimate, "ci_low": est.ci_low, "ci_high": est.ci_high,
                "se": est.extra.get("se"), "df": est.extra.get("df"), "t": est.extra.get("t"),
                "p_value": est.extra.get("p_value"), "method": est.method, "alpha": est.alpha, "n": est.n,
            })
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``dict`` (``nan`` as ``None``)."""
        def clean(x: Any) -> Any:
            if isinstance(x, float) and not math.isfinite(x):
                return None
            return x

        return {
            "method": "obuchowski-rockette",
            "cov_method": self.cov_method,
            "df_method": "hillis-2007",
            "alpha": self.alpha,
            "modalities": list(self.modalities),
            "readers": list(self.readers),
            "n_cases": self.n_cases,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "reader_auc": {m: {r: clean(float(self.auc.loc[r, m])) for r in self.readers} for m in self.modalities},
            "variance_components": {k: clean(getattr(self, k)) for k in (
                "var_error", "cov1", "cov2", "cov3", "var_reader", "var_modality_reader")},
            "mean_squares": {k: clean(getattr(self, k)) for k in ("ms_t", "ms_r", "ms_tr")},
            "modality_auc": [e.to_dict() for e in self.modality_auc],
            "differences": [e.to_dict() for e in self.differences],
            "f_test": {"f": clean(self.f_statistic), "df1": clean(self.df1), "df2": clean(self.df2),
                       "p_value": clean(self.p_value)},
            "fixed_readers": {
                "chi2": clean(self.fixed_readers.get("chi2", float("nan"))),
                "df": self.fixed_readers.get("df"),
                "p_value": clean(self.fixed_readers.get("p_value", float("nan"))),
                "differences": [e.to_dict() for e in self.fixed_readers.get("differences", ())],
            },
            "notes": list(self.notes),
        }


def _error_covariance(truth: NDArray[np.bool_], flat: NDArray[np.float64], method: str) -> tuple[NDArray, NDArray]:
    """AUCs ``(K,)`` and their ``(K, K)`` error covariance over cases, for ratings of shape ``(K, N)``.

    DeLong: ``S10/m + S01/n`` from the structural components. Jackknife: leave-one-case-out AUCs are exact
    functions of the components (``(m AUC - V10_i)/(m - 1)`` without positive ``i``, ``(n AUC - V01_j)/(n - 1)``
    without negative ``j``), and ``Cov = (N - 1)/N sum_k (theta_(k) - mean)(theta_(k) - mean)^T``.
    """
    comp = delong_components(truth, flat.T)
    auc = comp.auc
    if method == "delong":
        return auc, comp.covariance
    m, n = comp.n_positive, comp.n_negative
    loo = np.concatenate([(m * auc[None, :] - comp.v10) / (m - 1), (n * auc[None, :] - comp.v01) / (n - 1)])
    big_n = loo.shape[0]
    dev = loo - loo.mean(axis=0, keepdims=True)
    return auc, (big_n - 1) / big_n * (dev.T @ dev)


def _average_covariances(cov: NDArray, t: int, r: int) -> tuple[float, float, float, float]:
    """Var, Cov1 (same reader), Cov2 (same modality), Cov3 (different both) from a ``(t*r, t*r)`` matrix."""
    idx = np.array([(i, j) for i in range(t) for j in range(r)])
    same_t = idx[:, 0][:, None] == idx[:, 0][None, :]
    same_r = idx[:, 1][:, None] == idx[:, 1][None, :]

    def avg(mask: NDArray[np.bool_]) -> float:
        return float(cov[mask].mean()) if mask.any() else float("nan")

    return avg(same_t & same_r), avg(~same_t & same_r), avg(same_t & ~same_r), avg(~same_t & ~same_r)


def _t_interval(name: str, estimate: float, se: float, df: float, alpha: float, n: int, method: str,
                *, test: bool = True, **extra: Any) -> Estimate:
    """A t (or z when ``df`` is infinite) interval; with ``test`` also the t statistic and p-value against 0."""
    if not (math.isfinite(se) and se > 0):
        return Estimate(name, estimate, float("nan"), float("nan"), method, alpha, n,
                        note="standard error is zero or undefined", extra={"se": se, "df": df, **extra})
    q = float(stats.t.ppf(1 - alpha / 2, df) if math.isfinite(df) else stats.norm.ppf(1 - alpha / 2))
    info: dict[str, Any] = {"se": se, "df": df, **extra}
    if test:
        tval = estimate / se
        info["t"] = tval
        info["p_value"] = float(2 * (stats.t.sf(abs(tval), df) if math.isfinite(df) else stats.norm.sf(abs(tval))))
    return Estimate(name, estimate, estimate - q * se, estimate + q * se, method, alpha, n, extra=info)


def _check_inputs(
    y_true: ArrayLike, ratings: ArrayLike, modalities: Sequence[str] | None, readers: Sequence[str] | None,
    cov: str, alpha: float,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], tuple[str, ...], tuple[str, ...]]:
    """Validate the arguments of :func:`mrmc_analysis`; return truth, ratings and the modality/reader labels."""
    if cov not in _COV_METHODS:
        raise StatisticsInputError(f"cov must be one of {_COV_METHODS}, got {cov!r}")
    if not 0 < alpha < 1:
        raise StatisticsInputError(f"alpha must be in (0, 1), got {alpha!r}")
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise StatisticsInputError(f"y_true must be one-dimensional, got shape {y.shape}")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise StatisticsInputError(f"y_true must hold 0/1 values, got {sorted(values, key=str)[:10]}")
    truth = y.astype(bool)
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 3 or x.shape[2] != truth.size:
        raise StatisticsInputError(
            f"ratings must have shape (n_modalities, n_readers, n_cases={truth.size}), got {x.shape}")
    if not np.isfinite(x).all():
        raise StatisticsInputError("ratings contain missing or non-finite values; the OR analysis needs a fully "
                                   "crossed design (every reader reads every case in every modality)")
    t, r = x.shape[:2]
    if r < 2:
        raise StatisticsInputError(f"an MRMC analysis needs at least two readers, got {r}")
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos < 2 or n_neg < 2:
        raise StatisticsInputError(f"need at least two positive and two negative cases, got {n_pos} and {n_neg}")
    mods = tuple(str(m) for m in (modalities if modalities is not None else range(t)))
    rdrs = tuple(str(j) for j in (readers if readers is not None else range(r)))
    if len(mods) != t or len(rdrs) != r:
        raise StatisticsInputError(f"got {len(mods)} modality and {len(rdrs)} reader labels for ratings of shape "
                                   f"{x.shape}")
    return truth, x, mods, rdrs


def _modality_means(theta: NDArray[np.float64], cov_mat: NDArray[np.float64], mods: tuple[str, ...], n_cases: int,
                    alpha: float, method: str) -> list[Estimate]:
    """Mean AUC over readers per modality with Hillis (2007) intervals (each uses only that modality's data)."""
    t, r = theta.shape
    mod_means = theta.mean(axis=1)
    modality_auc = []
    for i in range(t):
        ms_r_i = float(((theta[i] - mod_means[i]) ** 2).sum()) / (r - 1)
        _, _, cov2_i, _ = _average_covariances(cov_mat[i * r:(i + 1) * r, i * r:(i + 1) * r], 1, r)
        c2 = max(cov2_i, 0.0)
        se = math.sqrt(ms_r_i / r + c2)
        df = (ms_r_i + r * c2) ** 2 / (ms_r_i**2 / (r - 1)) if ms_r_i > 0 else float("inf")
        est = _t_interval(f"auc[{mods[i]}]", float(mod_means[i]), se, df, alpha, n_cases, method, test=False,
                          modality=mods[i], ms_r=ms_r_i, cov2=cov2_i)
        modality_auc.append(est)
    return modality_auc


def mrmc_analysis(
    y_true: ArrayLike,
    ratings: ArrayLike,
    *,
    modalities: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    cov: MRMCCov = "delong",
    alpha: float = 0.05,
) -> MRMCResult:
    """Obuchowski-Rockette MRMC analysis of empirical AUC (random readers, random cases; Hillis 2007 df).

    Parameters
    ----------
    y_true : array-like of shape (n_cases,)
        Case truth, 0/1 or bool (1 = diseased / positive).
    ratings : array-like of shape (n_modalities, n_readers, n_cases)
        Every reader's rating (probability, ordinal score or 0/1 call) of every case in every modality; higher
        means more suspicious. A fully crossed design is required (no missing values).
    modalities, readers : sequence of str, optional
        Labels for the first two axes (default ``"0"``, ``"1"``, ...).
    cov : {"delong", "jackknife"}
        How the error covariance of the AUCs over cases is estimated. ``"delong"`` matches MRMCaov's
        ``cov = DeLong``; ``"jackknife"`` matches MRMCaov's default and is equivalent to DBM.
    alpha : float
        ``1 - alpha`` confidence intervals (default 0.05).

    Returns
    -------
    MRMCResult
        Reader AUCs, OR covariances and variance components, per-modality means with CIs, pairwise differences
        with CIs and p-values, and the global F test; also the fixed-reader chi-square test.

    Notes
    -----
    Per-modality interval (Hillis 2007): :math:`SE_i = \\sqrt{MS_R^{(i)}/r + \\max(Cov_2^{(i)}, 0)}`,
    :math:`df_i = (MS_R^{(i)} + r\\max(Cov_2^{(i)},0))^2 / (MS_R^{(i)2}/(r-1))`. Pairwise difference:
    :math:`SE = \\sqrt{2 (MS_{TR} + r \\max(Cov_2 - Cov_3, 0)) / r}` with :math:`\\nu_2` df.
    Fixed readers: :math:`X^2 = (t-1) MS_T / (Var - Cov_1 + (r-1)\\max(Cov_2 - Cov_3, 0))`, chi-square with
    ``t - 1`` df.

    Raises
    ------
    ValueError
        Wrong shapes, missing values, one class only, fewer than two readers, unknown ``cov``.
    """
    truth, x, mods, rdrs = _check_inputs(y_true, ratings, modalities, readers, cov, alpha)
    t, r, n_cases = x.shape
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())

    auc_flat, cov_mat = _error_covariance(truth, x.reshape(t * r, n_cases), cov)
    theta = auc_flat.reshape(t, r)
    var_e, cov1, cov2, cov3 = _average_covariances(cov_mat, t, r)

    grand = theta.mean()
    mod_means = theta.mean(axis=1)
    rdr_means = theta.mean(axis=0)
    ms_r = t * float(((rdr_means - grand) ** 2).sum()) / (r - 1)
    if t > 1:
        ms_t = r * float(((mod_means - grand) ** 2).sum()) / (t - 1)
        resid = theta - mod_means[:, None] - rdr_means[None, :] + grand
        ms_tr = float((resid**2).sum()) / ((t - 1) * (r - 1))
    else:
        ms_t = ms_tr = float("nan")

    notes: list[str] = []
    method = f"obuchowski-rockette-{cov}"
    modality_auc = _modality_means(theta, cov_mat, mods, n_cases, alpha, method)

    differences: list[Estimate] = []
    fixed_diffs: list[Estimate] = []
    f_stat = df2 = p_val = float("nan")
    chi2 = p_chi2 = float("nan")
    if t > 1:
        c23 = max(cov2 - cov3, 0.0)
        if cov2 - cov3 < 0:
            notes.append("Cov2 < Cov3: max(Cov2 - Cov3, 0) = 0 used (Hillis 2007)")
        denom = ms_tr + r * c23
        df2 = denom**2 / (ms_tr**2 / ((t - 1) * (r - 1))) if ms_tr > 0 else float("inf")
        if denom > 0:
            f_stat = ms_t / denom
            p_val = float(stats.f.sf(f_stat, t - 1, df2)) if math.isfinite(df2) else float(
                stats.chi2.sf(f_stat * (t - 1), t - 1))
        else:
            notes.append("RRRC denominator MS(T:R) + r*max(Cov2-Cov3,0) is zero: F test undefined")
        se_diff = math.sqrt(2.0 * denom / r) if denom > 0 else float("nan")
        denom_fixed = var_e - cov1 + (r - 1) * c23
        if denom_fixed > 0:
            chi2 = (t - 1) * ms_t / denom_fixed
            p_chi2 = float(stats.chi2.sf(chi2, t - 1))
        se_fixed = math.sqrt(2.0 * denom_fixed / r) if denom_fixed > 0 else float("nan")
        for a, b in itertools.combinations(range(t), 2):
            name = f"auc[{mods[a]}] - auc[{mods[b]}]"
            diff = float(mod_means[a] - mod_means[b])
            differences.append(_t_interval(name, diff, se_diff, df2, alpha, n_cases, method,
                                           comparison=(mods[a], mods[b])))
            fixed_diffs.append(_t_interval(name, diff, se_fixed, float("inf"), alpha, n_cases,
                                           method + "-fixed-readers", comparison=(mods[a], mods[b])))
        var_tr = ms_tr - var_e + cov1 + max(cov2 - cov3, 0.0)
    else:
        var_tr = float("nan")
        notes.append("one modality: no comparison, only the mean AUC over readers")
    var_tr_for_r = var_tr if math.isfinite(var_tr) else 0.0
    var_r = (ms_r - var_tr_for_r - var_e - (t - 1) * cov1 + cov2 + (t - 1) * cov3) / t

    auc_frame = pd.DataFrame(theta.T, index=pd.Index(rdrs, name="reader"), columns=pd.Index(mods, name="modality"))
    return MRMCResult(
        modalities=mods, readers=rdrs, n_cases=n_cases, n_positive=n_pos, n_negative=n_neg, auc=auc_frame,
        cov_method=cov, alpha=alpha, var_error=var_e, cov1=cov1, cov2=cov2, cov3=cov3, var_reader=var_r,
        var_modality_reader=var_tr, ms_t=ms_t, ms_r=ms_r, ms_tr=ms_tr, modality_auc=tuple(modality_auc),
        differences=tuple(differences), f_statistic=f_stat, df1=float(t - 1) if t > 1 else float("nan"),
        df2=df2, p_value=p_val,
        fixed_readers={"chi2": chi2, "df": t - 1 if t > 1 else None, "p_value": p_chi2,
                       "differences": tuple(fixed_diffs)},
        notes=tuple(notes),
    )
