"""Binary logistic regression the way rms' ``lrm`` reports it: fit, indexes, Wald and LR tests, odds ratios.

The maximum-likelihood fit is statsmodels' ``Logit`` (Newton-Raphson). Firth's penalised likelihood (``firth=True``)
is Newton-Raphson on the Jeffreys-penalised log-likelihood ``l(b) + log|I(b)| / 2`` with step halving (Firth 1993,
Heinze & Schemper 2002), as R's ``logistf`` and ``brglm2`` (``type = "AS_mean"``) fit it.

Indexes (rms ``lrm`` ``stats``): model likelihood-ratio chi-square and its df and p; ``C`` (concordance, ties count
half) and Somers' ``Dxy = 2 (C - 0.5)``; Nagelkerke's ``R2 = (1 - exp(-LR / n)) / (1 - exp(-L0 / n))`` with ``L0``
the null deviance; ``Brier`` (mean squared error of the fitted probabilities); ``g`` (Gini's mean difference of the
linear predictor), ``gr = exp(g)`` and ``gp`` (Gini's mean difference of the probabilities).

Separation: before fitting, a linear programme (Konis 2007, as R's ``detectseparation``) looks for a direction ``b``
with ``(2y - 1) x'b >= 0`` for every patient and ``> 0`` for some -- complete or quasi-complete separation, under
which maximum-likelihood estimates do not exist. The fit then warns (or, when asked, switches to Firth).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import optimize, stats

from nodescope.clinical._design import Design, build_design
from nodescope.errors import StatisticsInputError

__all__ = ["LogisticFit", "SeparationWarning", "detect_separation", "fit_lrm", "gini_md", "lrm_indexes",
           "outcome_array"]


class SeparationWarning(UserWarning):
    """The outcome is (quasi-)completely separated by the predictors: maximum-likelihood estimates do not exist."""


def gini_md(x: NDArray[np.float64]) -> float:
    """Gini's mean difference ``sum_{i != j} |x_i - x_j| / (n (n - 1))`` (Hmisc ``GiniMd``), in O(n log n)."""
    x = np.sort(np.asarray(x, float))
    n = len(x)
    if n < 2:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(2 * np.sum((2 * i - n - 1) * x) / (n * (n - 1)))


def concordance(lp: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """``C``: the probability that a random event has a higher score than a random non-event, ties counting half."""
    ranks = stats.rankdata(lp)
    n1 = float(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _loglik(lp: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    return float(np.sum(y * lp - np.logaddexp(0, lp)))


def lrm_indexes(lp: NDArray[np.float64], y: NDArray[np.float64], *, df: int, loglik: float | None = None
                ) -> dict[str, float]:
    """rms' ``lrm`` indexes of a fitted linear predictor.

    Parameters
    ----------
    lp : ndarray, shape (n,)
        Linear predictor (log odds) of each patient.
    y : ndarray of {0, 1}, shape (n,)
    df : int
        Model degrees of freedom (columns without the intercept).
    loglik : float, optional
        The log-likelihood to use (default: computed from ``lp``; give the unpenalised one for a Firth fit).

    Returns
    -------
    dict
        ``Obs, Model L.R., d.f., P, C, Dxy, R2, Brier, g, gr, gp`` (names as rms prints them).
    """
    n = len(y)
    p1 = y.mean()
    ll0 = float(n * (p1 * math.log(p1) + (1 - p1) * math.log(1 - p1))) if 0 < p1 < 1 else 0.0
    ll = _loglik(lp, y) if loglik is None else loglik
    lr = 2 * (ll - ll0)
    c = concordance(lp, y)
    prob = 1 / (1 + np.exp(-lp))
    r2 = (1 - math.exp(-lr / n)) / (1 - math.exp(2 * ll0 / n)) if ll0 < 0 else float("nan")
    g = gini_md(lp)
    return {"Obs": float(n), "Model L.R.": lr, "d.f.": float(df), "P": float(stats.chi2.sf(lr, df)) if df else 1.0,
            "C": c, "Dxy": 2 * (c - 0.5), "R2": r2, "Brier": float(np.mean((prob - y) ** 2)), "g": g,
            "gr": math.exp(g), "gp": gini_md(prob)}


def detect_separation(x: NDArray[np.float64], y: NDArray[np.float64]) -> bool:
    """True when the outcome is completely or quasi-completely separated (Konis' linear programme).

    Parameters
    ----------
    x : ndarray, shape (n, p)
        The design matrix, intercept included.
    y : ndarray of {0, 1}, shape (n,)

    Returns
    -------
    bool
        Whether some ``b`` gives ``(2y - 1) x'b >= 0`` for all rows with a positive sum (bounded to ``|b| <= 1``).
    """
    s = (2 * y - 1)[:, None] * x
    res = optimize.linprog(-s.sum(axis=0), A_ub=-s, b_ub=np.zeros(len(y)), bounds=[(-1, 1)] * x.shape[1],
                           method="highs")
    return bool(res.status == 0 and -res.fun > 1e-7 * max(1.0, np.abs(s).sum()))


def _firth(x: NDArray[np.float64], y: NDArray[np.float64], *, maxiter: int = 100, tol: float = 1e-10
           ) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Firth's penalised maximum likelihood: coefficients, covariance (inverse information) and convergence."""
    beta = np.zeros(x.shape[1])

    def penalised(b: NDArray[np.float64]) -> float:
        lp = x @ b
        p = 1 / (1 + np.exp(-lp))
        sign, logdet = np.linalg.slogdet(x.T @ (x * (p * (1 - p))[:, None]))
        return _loglik(lp, y) + 0.5 * logdet if sign > 0 else -np.inf

    current = penalised(beta)
    for _ in range(maxiter):
        p = 1 / (1 + np.exp(-(x @ beta)))
        w = p * (1 - p)
        info = x.T @ (x * w[:, None])
        inv = np.linalg.inv(info)
        h = np.einsum("ij,jk,ik->i", x, inv, x) * w
        step = inv @ (x.T @ (y - p + h * (0.5 - p)))
        t = 1.0
        while t > 1e-8:
            trial = penalised(beta + t * step)
            if trial >= current - 1e-12:
                break
            t /= 2
        beta = beta + t * step
        current = penalised(beta)
        if np.max(np.abs(t * step)) < tol:
            p = 1 / (1 + np.exp(-(x @ beta)))
            return beta, np.asarray(np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None])), float), True
    p = 1 / (1 + np.exp(-(x @ beta)))
    return beta, np.asarray(np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None])), float), False


def _mle(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Maximum likelihood by statsmodels' Logit (Newton); under separation, where its Hessian turns singular, by
    statsmodels' GLM (IRLS), whose diverging estimates come back flagged as not converged."""
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = sm.Logit(y, x).fit(method="newton", maxiter=100, tol=1e-12, disp=0)
            return (np.asarray(res.params, float), np.asarray(res.cov_params(), float),
                    bool(res.mle_retvals["converged"]))
        except (np.linalg.LinAlgError, ValueError):
            pass
        try:
            glm = sm.GLM(y, x, family=sm.families.Binomial()).fit(maxiter=100)
            beta = np.asarray(glm.params, float)
            p = 1 / (1 + np.exp(-(x @ beta)))
            cov = np.linalg.pinv(x.T @ (x * (p * (1 - p))[:, None]))
        except (np.linalg.LinAlgError, ValueError):
            nan = np.full(x.shape[1], np.nan)
            return nan, np.full((x.shape[1], x.shape[1]), np.nan), False
    return beta, np.asarray(cov, float), False


def fit_matrix(x: NDArray[np.float64], y: NDArray[np.float64], *, firth: bool = False
               ) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Fit a logistic model on a design matrix (intercept included): coefficients, covariance, converged.

    A singular design (a bootstrap resample without any patient of some level: rms' "singularity") gives ``nan``
    estimates and ``converged = False`` instead of an exception, so resampling loops can count and skip it.
    """
    if firth:
        try:
            return _firth(x, y)
        except np.linalg.LinAlgError:
            p = x.shape[1]
            return np.full(p, np.nan), np.full((p, p), np.nan), False
    return _mle(x, y)


@dataclass(frozen=True)
class LogisticFit:
    """A fitted rms-style logistic model.

    Attributes
    ----------
    design : Design
        Formula, terms (knots, levels) and variable limits.
    coef : pandas.Series
        Coefficients named as rms names them (``Intercept``, ``age``, ``age'``, ``sex=M``, ...).
    cov : pandas.DataFrame
        Their covariance (inverse information).
    stats : dict
        The ``lrm`` indexes (see :func:`lrm_indexes`).
    n, n_events : int
        Patients used and events among them.
    missing : str
        How missing values were handled, in words (``"complete cases: 8 of 200 rows dropped (marker: 8)"``).
    method : str
        ``"maximum likelihood"`` or ``"Firth penalised likelihood"``.
    separation : bool
        Whether (quasi-)complete separation was detected.
    converged : bool
    warnings : tuple of str
    x, y : ndarray
        The design matrix and outcome used (kept for validation and LR tests).
    """

    design: Design
    coef: pd.Series
    cov: pd.DataFrame
    stats: dict[str, float]
    n: int
    n_events: int
    missing: str
    method: str
    separation: bool
    converged: bool
    x: NDArray[np.float64] = field(repr=False)
    y: NDArray[np.float64] = field(repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def linear_predictor(self) -> NDArray[np.float64]:
        """The fitted log odds of each patient used."""
        return self.x @ self.coef.to_numpy()

    @property
    def firth(self) -> bool:
        """Whether the fit used Firth's penalised likelihood."""
        return self.method.startswith("Firth")

    def predict_lp(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """Linear predictor of new rows (same columns; no missing values in the predictors)."""
        return self.design.matrix(frame) @ self.coef.to_numpy()

    def coef_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """``Coef, S.E., Wald Z, P, OR, OR lower, OR upper`` per design column (Wald intervals)."""
        se = np.sqrt(np.diag(self.cov.to_numpy()))
        z = self.coef.to_numpy() / se
        q = stats.norm.ppf(1 - alpha / 2)
        b = self.coef.to_numpy()
        with np.errstate(over="ignore"):  # a diverged (separated) fit has huge coefficients: OR inf, said in warnings
            return pd.DataFrame({"Coef": b, "S.E.": se, "Wald Z": z, "P": 2 * stats.norm.sf(np.abs(z)),
                                 "OR": np.exp(b), "OR lower": np.exp(b - q * se), "OR upper": np.exp(b + q * se)},
                                index=self.coef.index)


def _complete_cases(frame: pd.DataFrame, design: Design) -> tuple[pd.DataFrame, str]:
    cols = [design.outcome, *design.variables]
    miss = frame[cols].isna()
    keep = ~miss.any(axis=1)
    dropped = int((~keep).sum())
    per = ", ".join(f"{c}: {int(miss[c].sum())}" for c in cols if miss[c].any())
    text = f"complete cases: {dropped} of {len(frame)} rows dropped" + (f" ({per})" if per else "")
    return frame[keep].reset_index(drop=True), text


def outcome_array(frame: pd.DataFrame, name: str) -> NDArray[np.float64]:
    """The outcome column as 0/1 floats: ``0``/``1`` as given, or two labels of which the second (sorted) is 1."""
    raw = frame[name].astype(str).str.strip()
    levels = sorted(raw.unique())
    src = frame.attrs.get("source", "data")
    if set(levels) <= {"0", "1"} and len(levels) == 2:
        return (raw == "1").to_numpy(float)
    if len(levels) != 2:
        raise StatisticsInputError(f"{src}: outcome {name!r} must have two values (0/1, or two labels), got "
                                   f"{len(levels)}: {', '.join(levels[:6])}")
    return (raw == levels[1]).to_numpy(float)  # the second in sorted order is the event, as R's factor()


def fit_lrm(formula: str, frame: pd.DataFrame, *, firth: bool | None = False, design: Design | None = None
            ) -> LogisticFit:
    """Fit a binary logistic model the way rms' ``lrm`` does (complete cases).

    Parameters
    ----------
    formula : str
        ``"y ~ rcs(age, 4) + sex * marker + stage"`` (see :func:`~nodescope.clinical.build_design`).
    frame : pandas.DataFrame
        One row per patient (text cells as read by ``read_clinical_table``, or numbers). The outcome is 0/1, or two
        labels of which the second in sorted order is the event.
    firth : bool or None, default False
        Use Firth's penalised likelihood; ``None`` uses it only when separation is detected.
    design : Design, optional
        A design already fixed (knots, levels) on other data -- bootstrap refits use the original one, as rms does.

    Returns
    -------
    LogisticFit

    Warns
    -----
    SeparationWarning
        The outcome is separated and maximum likelihood was used (estimates diverge; use Firth).

    Raises
    ------
    StatisticsInputError
        Fewer than 2 events or non-events, an outcome with other than two values, more columns than patients.
    """
    design = design or build_design(formula, frame)
    data, missing = _complete_cases(frame, design)
    y = outcome_array(data, design.outcome)
    x = design.matrix(data)
    n_ev = int(y.sum())
    if min(n_ev, len(y) - n_ev) < 2 or x.shape[1] >= len(y):
        raise StatisticsInputError(f"logistic model {formula!r}: {len(y)} complete cases with {n_ev} events and "
                                   f"{x.shape[1]} coefficients; too few to fit")
    separated = detect_separation(x, y)
    notes: list[str] = []
    use_firth = bool(firth) or (firth is None and separated)
    if separated:
        msg = ("outcome is (quasi-)completely separated by the predictors; maximum-likelihood estimates do not exist"
               + (" -- Firth's penalised likelihood used" if use_firth else " -- refit with Firth's penalised "
                  "likelihood"))
        notes.append(msg)
        if not use_firth:
            warnings.warn(msg, SeparationWarning, stacklevel=2)
    beta, cov, converged = fit_matrix(x, y, firth=use_firth)
    if not converged:
        notes.append("the fit did not converge")
    names = ["Intercept", *design.columns]
    lp = x @ beta
    st = lrm_indexes(lp, y, df=x.shape[1] - 1)
    return LogisticFit(design=design, coef=pd.Series(beta, index=names), cov=pd.DataFrame(cov, names, names),
                       stats=st, n=len(y), n_events=n_ev, missing=missing,
                       method="Firth penalised likelihood" if use_firth else "maximum likelihood",
                       separation=separated, converged=converged, x=x, y=y, warnings=tuple(notes))
