"""Two-sample statistics for shift diagnostics: per-feature tests, a cross-validated domain classifier and MMD.

- :func:`feature_tests`: for each descriptor, the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``,
  exact where scipy chooses it and can, asymptotic otherwise) with its statistic D (the largest gap between the two ECDFs, 0..1) and the
  standardised mean difference ``SMD = (mean_B - mean_A) / sqrt((var_A + var_B) / 2)`` (Cohen's d with the average
  variance, as in propensity-score balance tables); for 0/1 descriptors, Fisher's exact test
  (``scipy.stats.fisher_exact``) and the difference in proportions. p-values are also given Holm-adjusted over all
  descriptors (``statsmodels.stats.multitest.multipletests``).
- :func:`prevalence_test`: class counts of both sets, chi-square test of homogeneity (``scipy.stats.chi2_contingency``,
  no continuity correction) and Cramer's V.
- :func:`domain_auc`: how well a standardised logistic regression (scikit-learn) tells the two groups apart, as the
  AUC of out-of-fold probabilities (stratified group k-fold, so images of one patient stay in one fold), with the
  DeLong interval of :func:`nodescope.evaluation.roc_auc`. About 0.5: indistinguishable; near 1: separable. The
  DeLong interval treats the out-of-fold scores as one score; it ignores the variation between the fold models.
  Without any shift, cross-validated AUCs scatter around and on average fall somewhat *below* 0.5 (each training
  fold is enriched in the group its test fold lacks, so the fitted intercept and means lean the wrong way; 0.36 for
  100 + 100 draws of one 5-variate normal in the tests): read any value up to about 0.5 as "no detectable shift".
- :func:`mmd_test`: the unbiased squared maximum mean discrepancy with a Gaussian kernel (bandwidth: the median
  pairwise distance of the pooled, standardised sample) and a permutation p-value ``(1 + #{MMD*_b >= MMD}) / (1 + B)``.
  Reference: Gretton A, Borgwardt KM, Rasch MJ, Schoelkopf B, Smola A. A kernel two-sample test. JMLR 2012;13:723-73.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from nodescope._estimate import Estimate
from nodescope.errors import StatisticsInputError

__all__ = ["MmdResult", "domain_auc", "feature_tests", "mmd_test", "prevalence_test", "smd"]


def smd(a: ArrayLike, b: ArrayLike) -> float:
    """Standardised mean difference ``(mean(b) - mean(a)) / sqrt((var(a) + var(b)) / 2)`` (NaN values ignored).

    0 when both sets are constant and equal; +/-inf when they are constant and differ; NaN with fewer than 2 values
    in a set.
    """
    x = np.asarray(a, float)
    y = np.asarray(b, float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        return math.nan
    diff = float(y.mean() - x.mean())
    pooled = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / pooled


def _binary(x: NDArray[np.float64]) -> bool:
    v = x[np.isfinite(x)]
    return len(v) > 0 and bool(np.isin(v, (0.0, 1.0)).all())


def feature_tests(a: pd.DataFrame, b: pd.DataFrame, features: Sequence[str], *,
                  binary: Sequence[str] = ()) -> pd.DataFrame:
    """Compare each descriptor between sets A and B.

    Parameters
    ----------
    a, b : pandas.DataFrame
        One row per image; the ``features`` columns numeric (NaN = undefined for that image).
    features : sequence of str
        Columns to compare.
    binary : sequence of str
        Columns holding 0/1 flags (compared as proportions with Fisher's exact test).

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature``, ``n_a``, ``n_b`` (defined values), ``mean_a``, ``mean_b``, ``median_a``,
        ``median_b``, ``test`` (``ks`` or ``fisher``), ``statistic`` (KS D, or the difference in proportions),
        ``smd``, ``p_value``, ``p_holm``. A feature with no defined value in a set has NaN statistics and p-value.
    """
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    rows = []
    for f in features:
        x = a[f].to_numpy(float)
        y = b[f].to_numpy(float)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        row = {"feature": f, "n_a": len(x), "n_b": len(y),
               "mean_a": x.mean() if len(x) else math.nan, "mean_b": y.mean() if len(y) else math.nan,
               "median_a": float(np.median(x)) if len(x) else math.nan,
               "median_b": float(np.median(y)) if len(y) else math.nan,
               "test": "fisher" if f in binary else "ks", "statistic": math.nan, "smd": smd(x, y),
               "p_value": math.nan}
        if len(x) and len(y):
            if f in binary:
                if not (_binary(x) and _binary(y)):
                    raise StatisticsInputError(f"feature {f!r}: expected 0/1 values for a binary feature")
                table = [[int(x.sum()), len(x) - int(x.sum())], [int(y.sum()), len(y) - int(y.sum())]]
                row["statistic"] = float(y.mean() - x.mean())
                row["p_value"] = float(stats.fisher_exact(table).pvalue)
            else:
                with warnings.catch_warnings():  # "exact calculation unsuccessful": scipy falls back to asymp
                    warnings.simplefilter("ignore", RuntimeWarning)
                    res = stats.ks_2samp(x, y)
                row["statistic"], row["p_value"] = float(res.statistic), float(res.pvalue)
        rows.append(row)
    out = pd.DataFrame(rows)
    ok = out["p_value"].notna()
    out["p_holm"] = math.nan
    if ok.any():
        out.loc[ok, "p_holm"] = multipletests(out.loc[ok, "p_value"].to_numpy(), method="holm")[1]
    return out


def prevalence_test(labels_a: Sequence[str], labels_b: Sequence[str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Class counts and shares of both sets, chi-square test of homogeneity and Cramer's V.

    Returns
    -------
    table : pandas.DataFrame
        ``class``, ``n_a``, ``share_a``, ``n_b``, ``share_b``.
    test : dict
        ``chi2``, ``dof``, ``p_value``, ``cramers_v`` (NaN when there is a single class in all).
    """
    from scipy import stats

    ca, cb = pd.Series(list(labels_a)).value_counts(), pd.Series(list(labels_b)).value_counts()
    classes = sorted(set(ca.index) | set(cb.index))
    na = np.array([int(ca.get(c, 0)) for c in classes])
    nb = np.array([int(cb.get(c, 0)) for c in classes])
    table = pd.DataFrame({"class": classes, "n_a": na, "share_a": na / max(na.sum(), 1),
                          "n_b": nb, "share_b": nb / max(nb.sum(), 1)})
    test = {"chi2": math.nan, "dof": math.nan, "p_value": math.nan, "cramers_v": math.nan}
    if len(classes) > 1 and na.sum() and nb.sum():
        chi2, p, dof, _ = stats.chi2_contingency(np.vstack([na, nb]), correction=False)
        test = {"chi2": float(chi2), "dof": float(dof), "p_value": float(p),
                "cramers_v": math.sqrt(chi2 / (na.sum() + nb.sum()))}  # min(rows, cols) - 1 = 1 with two sets
    return table, test


def domain_auc(x: ArrayLike, y: ArrayLike, *, groups: ArrayLike | None = None, folds: int = 5, seed: int = 0,
               alpha: float = 0.05) -> tuple[Estimate, NDArray[np.float64]]:
    """Cross-validated AUC of a logistic regression telling ``y == 1`` from ``y == 0`` on features ``x``.

    Parameters
    ----------
    x : array-like, shape (N, F)
        Features; NaN values are replaced by the training fold's column median (and a column that is NaN
        throughout by 0) before standardisation.
    y : array-like, shape (N,)
        0/1 group (set B = 1, or a class against the rest).
    groups : array-like, shape (N,), optional
        Patient (or group) ids; rows of one group stay in one fold.
    folds : int, default 5
        Reduced to the number of rows (or groups) of the smaller class when that is smaller; at least 2.
    seed : int, default 0
    alpha : float, default 0.05

    Returns
    -------
    auc : Estimate
        ``name="domain_auc"``, DeLong interval on the out-of-fold probabilities; ``extra["folds"]``.
    oof : numpy.ndarray, shape (N,)
        Out-of-fold probability of ``y == 1`` for each row.

    Raises
    ------
    StatisticsInputError
        When ``x`` and ``y`` disagree in length or a class has fewer than 2 rows.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from nodescope.evaluation import roc_auc

    xa = np.asarray(x, float)
    ya = np.asarray(y).astype(int)
    if xa.ndim != 2 or len(xa) != len(ya):
        raise StatisticsInputError(f"x: expected (N, F) with N = len(y) = {len(ya)}, got shape {xa.shape}")
    g = np.arange(len(ya)) if groups is None else np.asarray(groups, dtype=object)
    per_class = min(len(set(g[ya == k])) for k in (0, 1))
    if per_class < 2:
        raise StatisticsInputError(f"domain classifier: each group needs at least 2 rows (groups), got {per_class}")
    k = max(2, min(int(folds), per_class))
    xa = np.where(np.isnan(xa).all(axis=0), 0.0, xa)  # a column undefined everywhere carries nothing
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=2000))
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    oof = cross_val_predict(model, xa, ya, groups=g, cv=cv, method="predict_proba")[:, 1]
    est = roc_auc(ya, oof, alpha=alpha)
    return Estimate("domain_auc", est.estimate, est.ci_low, est.ci_high, f"{est.method} (out-of-fold, {k} folds)",
                    alpha=est.alpha, n=len(ya), note=est.note, extra={**est.extra, "folds": k}), oof


@dataclass(frozen=True)
class MmdResult:
    """Kernel two-sample test.

    Attributes
    ----------
    mmd2 : float
        Unbiased squared MMD (can be slightly negative when the sets do not differ).
    p_value : float
        Permutation p-value.
    bandwidth : float
        Gaussian kernel width ``sigma`` in ``k(u, v) = exp(-|u - v|^2 / (2 sigma^2))``.
    n_permutations : int
    n_a, n_b : int
    """

    mmd2: float
    p_value: float
    bandwidth: float
    n_permutations: int
    n_a: int
    n_b: int


def _mmd2(k: NDArray[np.float64], is_b: NDArray[np.bool_]) -> float:
    """Unbiased MMD^2 from the pooled kernel matrix and a group indicator."""
    ia, ib = ~is_b, is_b
    m, n = int(ia.sum()), int(ib.sum())
    kaa, kbb, kab = k[np.ix_(ia, ia)], k[np.ix_(ib, ib)], k[np.ix_(ia, ib)]
    return float((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
                 - 2 * kab.mean())


def mmd_test(a: ArrayLike, b: ArrayLike, *, n_permutations: int = 500, seed: int = 0) -> MmdResult:
    """Maximum mean discrepancy between feature sets ``a`` ``(M, F)`` and ``b`` ``(N, F)`` with a permutation test.

    The pooled features are standardised (each column to mean 0, SD 1; constant columns dropped) before the
    Gaussian kernel is applied; see the module docstring for the estimator, bandwidth and p-value.
    """
    from scipy.spatial.distance import pdist, squareform

    xa, xb = np.asarray(a, float), np.asarray(b, float)
    if xa.ndim != 2 or xb.ndim != 2 or xa.shape[1] != xb.shape[1]:
        raise StatisticsInputError(f"a, b: expected (M, F) and (N, F), got {xa.shape} and {xb.shape}")
    if len(xa) < 2 or len(xb) < 2:
        raise StatisticsInputError(f"MMD needs at least 2 rows per set, got {len(xa)} and {len(xb)}")
    if not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        raise StatisticsInputError("MMD: the features contain NaN or infinite values")
    if n_permutations < 1:
        raise StatisticsInputError(f"n_permutations: must be >= 1, got {n_permutations}")
    pooled = np.vstack([xa, xb])
    sd = pooled.std(axis=0)
    keep = sd > 0
    z = (pooled[:, keep] - pooled[:, keep].mean(axis=0)) / sd[keep] if keep.any() else np.zeros((len(pooled), 1))
    d2 = squareform(pdist(z, "sqeuclidean"))
    med = float(np.median(np.sqrt(d2[np.triu_indices(len(z), 1)])))
    sigma = med if med > 0 else 1.0
    k = np.exp(-d2 / (2 * sigma**2))
    is_b = np.r_[np.zeros(len(xa), bool), np.ones(len(xb), bool)]
    observed = _mmd2(k, is_b)
    rng = np.random.default_rng(seed)
    hits = sum(_mmd2(k, np.asarray(rng.permutation(is_b), bool)) >= observed for _ in range(n_permutations))
    return MmdResult(observed, (1 + hits) / (1 + n_permutations), sigma, n_permutations, len(xa), len(xb))
