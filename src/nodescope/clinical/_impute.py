"""Multiple imputation of missing predictors for the logistic model, pooled by Rubin's rules.

The chained-equations imputer is statsmodels' ``MICEData`` (each incomplete variable in turn regressed on all the
others, the outcome included, values drawn by predictive mean matching from the ``k_pmm`` nearest observed ones, so
an imputed value is always one that was observed -- for a categorical predictor, one of its levels: it is imputed on
its level codes). ``m`` completed data sets are drawn, each after ``n_burn`` cycles; the model is fitted on each with
the design (knots, levels) fixed on the observed values, and pooled:

    b = mean_i b_i,   W = mean_i V_i,   B = var_i(b_i),   T = W + (1 + 1/m) B

(Rubin 1987; as R's ``mice::pool`` and rms ``fit.mult.impute``). The fit's indexes (C, R2, Brier ...) are the means
over the completed data sets, and its stored ``x``/``y`` (used by bootstrap validation) are those of the first one,
which the fit's ``missing`` text says.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nodescope.clinical._design import Design, build_design
from nodescope.clinical._lrm import LogisticFit, SeparationWarning, fit_lrm
from nodescope.errors import StatisticsInputError

__all__ = ["fit_lrm_imputed", "pool_rubin"]


def pool_rubin(coefs: NDArray[np.float64], covs: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                                               NDArray[np.float64]]:
    """Rubin's rules: pooled coefficients and total covariance ``W + (1 + 1/m) B``.

    Parameters
    ----------
    coefs : ndarray, shape (m, p)
        Coefficients from each completed data set.
    covs : ndarray, shape (m, p, p)
        Their covariance matrices.

    Returns
    -------
    mean : ndarray, shape (p,)
    total : ndarray, shape (p, p)
    """
    coefs, covs = np.asarray(coefs, float), np.asarray(covs, float)
    m = coefs.shape[0]
    if m < 2:
        raise StatisticsInputError(f"Rubin's rules need at least 2 imputations, got {m}")
    within = covs.mean(axis=0)
    between = np.cov(coefs, rowvar=False, ddof=1).reshape(within.shape)
    return coefs.mean(axis=0), within + (1 + 1 / m) * between


def _completed_sets(frame: pd.DataFrame, design: Design, m: int, n_burn: int, seed: int) -> list[pd.DataFrame]:
    from statsmodels.imputation.mice import MICEData

    cols = [design.outcome, *design.variables]
    data = frame[cols].reset_index(drop=True)
    codes: dict[str, list[str]] = {}
    numeric = pd.DataFrame(index=data.index)
    for i, col in enumerate(cols):
        if col == design.outcome or design.kind(col) == "categorical":
            levels = sorted(data[col].dropna().astype(str).unique())
            codes[col] = levels
            numeric[f"c{i}"] = data[col].map(lambda v, lv=levels: np.nan if v is None or v != v else lv.index(str(v)))
        else:
            numeric[f"c{i}"] = pd.to_numeric(data[col], errors="coerce")
    numeric = numeric.astype(float)
    imp = MICEData(numeric, k_pmm=5, rng=np.random.default_rng(seed))
    out = []
    for _ in range(m):
        imp.update_all(n_burn)
        done = imp.data.copy()
        frame_i = pd.DataFrame(index=data.index)
        for i, col in enumerate(cols):
            vals = done[f"c{i}"].to_numpy()
            if col in codes:
                frame_i[col] = [codes[col][round(v)] for v in vals]
            else:
                frame_i[col] = [repr(float(v)) for v in vals]
        out.append(frame_i)
    return out


def fit_lrm_imputed(formula: str, frame: pd.DataFrame, *, m: int = 20, n_burn: int = 5, seed: int = 0,
                    firth: bool | None = False) -> LogisticFit:
    """Fit the logistic model after multiple imputation of missing predictors (Rubin's rules).

    Parameters
    ----------
    formula : str
    frame : pandas.DataFrame
        Rows with a missing outcome are dropped (an outcome is never imputed); missing predictors are imputed.
    m : int, default 20
        Completed data sets.
    n_burn : int, default 5
        Chained-equation cycles before each draw.
    seed : int, default 0
    firth : bool or None, default False

    Returns
    -------
    LogisticFit
        Pooled ``coef`` and ``cov``; ``missing`` says what was imputed and how.
    """
    design = build_design(formula, frame)
    have_y = frame[design.outcome].notna().to_numpy()
    data = frame[have_y].reset_index(drop=True)
    miss = data[design.variables].isna()
    if not miss.any().any():
        return fit_lrm(formula, data, firth=firth, design=design)
    if m < 2:
        raise StatisticsInputError(f"multiple imputation needs m >= 2 completed data sets, got {m}")
    sets = _completed_sets(data, design, m, n_burn, seed)
    with warnings.catch_warnings():  # one warning for the pooled fit, not one per completed data set
        warnings.simplefilter("ignore", SeparationWarning)
        fits = [fit_lrm(formula, s, firth=firth, design=design) for s in sets]
    if any(f.separation for f in fits) and not any(f.firth for f in fits):
        warnings.warn(f"outcome separated in {sum(f.separation for f in fits)} of {m} completed data sets; "
                      "maximum-likelihood estimates do not exist -- refit with Firth's penalised likelihood",
                      SeparationWarning, stacklevel=2)
    coef, cov = pool_rubin(np.array([f.coef.to_numpy() for f in fits]), np.array([f.cov.to_numpy() for f in fits]))
    stats = {k: float(np.mean([f.stats[k] for f in fits])) for k in fits[0].stats}
    per = ", ".join(f"{c}: {int(miss[c].sum())}" for c in miss.columns if miss[c].any())
    text = (f"multiple imputation: {int(miss.any(axis=1).sum())} of {len(data)} patients had missing predictors "
            f"({per}); {m} data sets completed by chained equations with predictive mean matching (statsmodels "
            f"MICEData), pooled by Rubin's rules; indexes are means over the completed sets; bootstrap validation "
            f"uses the first completed set"
            + (f"; {int((~have_y).sum())} rows without an outcome dropped" if (~have_y).any() else ""))
    first = fits[0]
    names = first.coef.index
    return LogisticFit(design=design, coef=pd.Series(coef, index=names), cov=pd.DataFrame(cov, names, names),
                       stats=stats, n=first.n, n_events=first.n_events, missing=text, method=first.method,
                       separation=any(f.separation for f in fits), converged=all(f.converged for f in fits),
                       x=first.x, y=first.y, warnings=tuple(dict.fromkeys(w for f in fits for w in f.warnings)))
