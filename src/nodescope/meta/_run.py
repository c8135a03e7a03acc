"""One call that runs a whole diagnostic-accuracy meta-analysis the way a PRISMA-DTA review reports it.

:func:`run_meta_analysis` takes validated :class:`~nodescope.meta.Studies` (and optionally a QUADAS-2 table), fits the
main bivariate model and every secondary analysis with the public functions of :mod:`nodescope.meta`, and returns a
:class:`MetaAnalysis` holding all results. Writing files (``results.json``, CSV tables, figures, ``report.html``) is
:func:`nodescope.meta.write_meta_report`'s job.

Secondary analyses that cannot be done on the data at hand (a subgroup level with a single cohort, Deeks' test with
fewer than 3 cohorts, no study with several cohorts for the one-per-study analysis) are recorded in
:attr:`MetaAnalysis.skipped` with the reason, and shown in the report; they never stop the main analysis. Every warning
raised by a model (fallback to ``rho = 0``, convergence) is kept in :attr:`MetaAnalysis.warnings` under the name of the
analysis that raised it.

**Cohorts of one study are treated as independent.** The models have one random effect per cohort (the model frame
gives each cohort its own label), so several cohorts from one study (e.g. an internal and an external test set, or a
CNN and radiologists read on the same patients) count as independent studies. That ignores their correlation (shared
patients, readers, protocol) and can make CIs too narrow and heterogeneity look smaller or larger than it is. When a
study contributes several cohorts a :class:`~nodescope.meta.MetaAnalysisWarning` says so (kept under
``"cohorts per study"`` in :attr:`MetaAnalysis.warnings`, shown beside the pooled estimates in the report), and the
one-cohort-per-study sensitivity analysis (on by default) checks how much the result depends on the assumption.
A three-level model (cohorts within studies) is not implemented.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from nodescope.errors import ConfigError, StatisticsInputError
from nodescope.meta._analyses import (
    DeeksResult,
    MetaRegressionResult,
    PostTestResult,
    SubgroupResult,
    deeks_test,
    leave_one_out,
    meta_regression,
    one_per_study,
    post_test_probability,
    subgroup_analysis,
)
from nodescope.meta._bivariate import bivariate_glmm, reitsma
from nodescope.meta._quadas import QuadasTable
from nodescope.meta._sroc import SrocCurve, SrocSummary, sroc_summary
from nodescope.meta._studies import COUNT_COLUMNS, Studies
from nodescope.meta._summary import BivariateResult, MetaAnalysisWarning
from nodescope.meta._univariate import UNIVARIATE_MEASURES, UnivariateResult, univariate_pool

__all__ = ["MetaAnalysis", "run_meta_analysis"]

Model = Literal["glmm", "reitsma"]
T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class MetaAnalysis:
    """Everything a meta-analysis run produced.

    Attributes
    ----------
    studies : Studies
        The cohorts analysed (after ``select``).
    excluded : Studies or None
        Cohorts read but left out by ``select`` (``None`` when none were).
    model : {"glmm", "reitsma"}
        The main bivariate model.
    pooled : BivariateResult
        The main fit on all analysed cohorts.
    univariate : dict of str to UnivariateResult
        REML random-effects pooling of each measure of :data:`~nodescope.meta.UNIVARIATE_MEASURES`
        (heterogeneity: Q, I2, tau2, prediction intervals).
    deeks : DeeksResult or None
    subgroups : dict of str to SubgroupResult
        One entry per subgroup column that could be analysed.
    regression : MetaRegressionResult or None
        Meta-regression on all ``covariates`` together.
    one_per_study : BivariateResult or None
        The main model refitted on one cohort per study (highest Youden index).
    one_per_study_rows : pandas.DataFrame or None
        The cohorts kept by the one-per-study selection (``study``, ``cohort``, counts, ``youden``).
    leave_one_out : pandas.DataFrame or None
        One row per omitted cohort.
    post_test : PostTestResult
        Post-test probabilities at ``pretest`` from the pooled LRs.
    pretest_source : str
        ``"given"`` or how the pre-test probability was chosen.
    quadas : QuadasTable or None
    quadas_missing : list of str
        Studies without a QUADAS-2 row.
    options : dict
        The arguments of the run (JSON-ready).
    warnings : tuple of (str, str)
        ``(analysis, message)`` pairs.
    skipped : dict of str to str
        Analysis name -> why it was not done.
    subgroup_sroc : dict of str to dict of str to SrocSummary
        The same SROC choice for every subgroup level (column -> level -> summary).
    sroc : SrocSummary or None
        The SROC curve reported (the main fit's, or a labelled alternative when its AUC is undefined, or
        Moses-Littenberg when asked for), its AUC, partial AUC over the observed FPR range, and why the main fit's
        AUC is undefined.
    """

    studies: Studies
    excluded: Studies | None
    model: str
    pooled: BivariateResult
    univariate: dict[str, UnivariateResult]
    deeks: DeeksResult | None
    subgroups: dict[str, SubgroupResult]
    regression: MetaRegressionResult | None
    one_per_study: BivariateResult | None
    one_per_study_rows: pd.DataFrame | None
    leave_one_out: pd.DataFrame | None
    post_test: PostTestResult
    pretest_source: str
    quadas: QuadasTable | None
    quadas_missing: list[str]
    options: dict[str, Any]
    warnings: tuple[tuple[str, str], ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    sroc: SrocSummary | None = None
    subgroup_sroc: dict[str, dict[str, SrocSummary]] = field(default_factory=dict)

    @property
    def alpha(self) -> float:
        return float(self.options["alpha"])


def _model_frame(studies: Studies) -> pd.DataFrame:
    """Frame for the model functions: ``study`` holds the cohort label (the models treat each row as a cohort)."""
    frame = studies.to_frame()
    frame["study_name"] = frame["study"]
    frame["study"] = studies.labels()
    return frame


def _select(studies: Studies, select: Mapping[str, str | Sequence[str]]) -> tuple[Studies, Studies | None]:
    keep = np.ones(len(studies), dtype=bool)
    for col, wanted in select.items():
        if col not in studies.frame.columns:
            raise StatisticsInputError(f"select: column {col!r} is not in the studies table; columns are "
                             f"{list(studies.frame.columns)}")
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        present = set(studies.frame[col].astype(str))
        unknown = [v for v in values if v not in present]
        if unknown:
            raise StatisticsInputError(f"select: value(s) {unknown} do not occur in column {col!r}; its values are "
                             f"{sorted(present)}")
        keep &= studies.frame[col].astype(str).isin(values).to_numpy()
    if not keep.any():
        raise StatisticsInputError(f"select {dict(select)} leaves no cohort to analyse")
    excluded = studies.subset(~keep) if (~keep).any() else None
    return studies.subset(keep), excluded


def run_meta_analysis(
    studies: Studies,
    *,
    model: Model = "glmm",
    subgroups: Sequence[str] = (),
    covariates: Sequence[str] = (),
    quadas: QuadasTable | None = None,
    one_per_study_by: Literal["youden"] | None = "youden",
    pretest: float | None = None,
    select: Mapping[str, str | Sequence[str]] | None = None,
    leave_one_out_analysis: bool = True,
    alpha: float = 0.05,
    sroc: SrocCurve = "rutter-gatsonis",
) -> MetaAnalysis:
    """Run the main bivariate model and the secondary analyses of a DTA review.

    Parameters
    ----------
    studies : Studies
        From :func:`~nodescope.meta.read_studies`.
    model : {"glmm", "reitsma"}
        Main model: the exact bivariate binomial GLMM (Laplace; default) or the Reitsma normal-approximation model
        (REML, 0.5 added to every cell of every cohort when any cell is zero: mada's convention).
    subgroups : sequence of str
        Covariate columns: each gets separate pooled fits per level and a meta-regression likelihood-ratio test.
    covariates : sequence of str
        Covariates of one joint meta-regression (likelihood-ratio test against the intercept-only model).
    quadas : QuadasTable, optional
        QUADAS-2 judgements; its studies must be studies of the table (:meth:`QuadasTable.check_studies`).
    one_per_study_by : {"youden"} or None
        Sensitivity analysis keeping one cohort per study (highest Youden index); ``None`` skips it.
    pretest : float, optional
        Pre-test probability for post-test probabilities (Fagan). Default: the median prevalence
        ``(TP + FN) / n`` of the analysed cohorts, recorded in :attr:`MetaAnalysis.pretest_source`.
    select : mapping, optional
        Keep only cohorts whose column equals the value (or one of the values), e.g.
        ``{"index_test": "deep learning"}``; the others are reported as excluded.
    leave_one_out_analysis : bool
        Refit without each cohort in turn. Default True.
    alpha : float
        ``1 - alpha`` confidence level throughout. Default 0.05.
    sroc : {"rutter-gatsonis", "moses"}
        The SROC curve to report (:func:`nodescope.meta.sroc_summary`): the main fit's Rutter-Gatsonis curve
        (default; when its AUC is undefined because a between-cohort variance is zero, the rho = 0 Reitsma fit's
        curve or else Moses-Littenberg, labelled), or Moses-Littenberg.

    Returns
    -------
    MetaAnalysis

    Raises
    ------
    TypeError
        ``studies`` is not a :class:`Studies`, ``quadas`` not a :class:`QuadasTable`.
    ValueError
        Bad option values (unknown model, columns, pre-test outside (0, 1)), or a main fit that cannot be done.
    """
    _check_options(studies, model=model, subgroups=subgroups, covariates=covariates, quadas=quadas,
                   one_per_study_by=one_per_study_by, pretest=pretest, alpha=alpha)
    if sroc not in ("rutter-gatsonis", "moses"):
        raise ConfigError(f"sroc={sroc!r} is not valid; choose 'rutter-gatsonis' or 'moses'")
    analysed, excluded = _select(studies, select or {})
    frame = _model_frame(analysed)
    rec = _Recorder()
    msg = _several_cohorts_message(analysed)
    if msg is not None:
        warnings.warn(msg, MetaAnalysisWarning, stacklevel=2)
        rec.caught.append(("cohorts per study", msg))
    pool = functools.partial(_pool, model=model, alpha=alpha)

    pooled = rec.attempt("pooled", lambda: pool(frame), required=True)
    if pooled is None:  # pragma: no cover - required=True re-raises instead
        raise RuntimeError("the main fit returned nothing")
    sroc_result = rec.attempt("sroc", lambda: sroc_summary(pooled, frame, curve=sroc, alpha=alpha))
    univariate: dict[str, UnivariateResult] = {}
    for measure in UNIVARIATE_MEASURES:
        uni = rec.attempt(f"univariate {measure}",
                          functools.partial(univariate_pool, frame, measure, method="REML", alpha=alpha))  # type: ignore[arg-type]
        if uni is not None:
            univariate[measure] = uni
    deeks = rec.attempt("deeks", lambda: deeks_test(frame))
    subgroup_results, subgroup_sroc = _subgroups(frame, subgroups, model, alpha, sroc, rec)
    regression = None
    if covariates:
        regression = rec.attempt("meta-regression", lambda: meta_regression(frame, list(covariates), model=model,
                                                                             alpha=alpha))
    ops_fit = ops_rows = None
    if one_per_study_by is not None:
        ops_fit, ops_rows = _one_per_study_fit(analysed, frame, one_per_study_by, pool, rec)
    loo = None
    if leave_one_out_analysis:
        if len(analysed) >= 3:
            loo = rec.attempt("leave-one-out", lambda: leave_one_out(frame, model=model, alpha=alpha))
        else:
            rec.skipped["leave-one-out"] = f"needs at least 3 cohorts; got {len(analysed)}"
    pre, source = _pretest(analysed, pretest)
    post = post_test_probability(pre, pooled.lr_positive, pooled.lr_negative)
    missing: list[str] = []
    if quadas is not None:
        missing = quadas.check_studies(analysed.frame["study"])
    options = {
        "model": model, "subgroups": list(subgroups), "covariates": list(covariates),
        "one_per_study": one_per_study_by, "pretest": None if pretest is None else float(pretest),
        "select": {k: (v if isinstance(v, str) else list(v)) for k, v in (select or {}).items()},
        "leave_one_out": bool(leave_one_out_analysis), "alpha": float(alpha), "sroc": sroc,
    }
    return MetaAnalysis(
        studies=analysed, excluded=excluded, model=model, pooled=pooled, univariate=univariate, deeks=deeks,
        subgroups=subgroup_results, regression=regression, one_per_study=ops_fit, one_per_study_rows=ops_rows,
        leave_one_out=loo, post_test=post, pretest_source=source, quadas=quadas, quadas_missing=missing,
        options=options, warnings=tuple(rec.caught), skipped=rec.skipped, sroc=sroc_result,
        subgroup_sroc=subgroup_sroc,
    )


def _check_options(
    studies: Studies,
    *,
    model: str,
    subgroups: Sequence[str],
    covariates: Sequence[str],
    quadas: QuadasTable | None,
    one_per_study_by: str | None,
    pretest: float | None,
    alpha: float,
) -> None:
    """Fail on argument types and option values that :func:`run_meta_analysis` cannot work with."""
    if not isinstance(studies, Studies):
        raise TypeError(f"studies must be a nodescope.meta.Studies (from read_studies), got {type(studies).__name__}")
    if quadas is not None and not isinstance(quadas, QuadasTable):
        raise TypeError(f"quadas must be a QuadasTable (from read_quadas) or None, got {type(quadas).__name__}")
    if model not in ("glmm", "reitsma"):
        raise ConfigError(f"model={model!r} is not valid; choose 'glmm' or 'reitsma'")
    if one_per_study_by not in (None, "youden"):
        raise ConfigError(f"one_per_study_by={one_per_study_by!r} is not valid; choose 'youden' or None")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha!r}")
    if pretest is not None and not (isinstance(pretest, int | float) and 0 < pretest < 1):
        raise ConfigError(f"pretest must be a probability strictly between 0 and 1, got {pretest!r}")
    for name, cols in (("subgroup", subgroups), ("covariate", covariates)):
        for col in cols:
            if col not in studies.covariates:
                raise StatisticsInputError(f"{name} column {col!r} is not a covariate of the studies table; the covariates are "
                                 f"{list(studies.covariates)}")


def _several_cohorts_message(analysed: Studies) -> str | None:
    """The independence warning when some study contributes several cohorts; ``None`` when none does."""
    per_study = analysed.frame["study"].value_counts(sort=False)
    multi = per_study[per_study > 1]
    if not len(multi):
        return None
    return (f"{len(multi)} of {len(per_study)} studies contribute several cohorts ("
            + ", ".join(f"{s}: {n}" for s, n in multi.items())
            + "); the models treat every cohort as an independent study, which ignores the correlation of cohorts "
            "from one study (shared patients, readers or protocol) and can make the CIs too narrow; compare the "
            "one-cohort-per-study sensitivity analysis")


@dataclass(frozen=True)
class _Recorder:
    """Runs the analyses of one meta-analysis, keeping their warnings and why the skipped ones were not done."""

    caught: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def attempt(self, name: str, func: Callable[[], T], *, required: bool = False) -> T | None:
        """``func()``, its warnings recorded under ``name``; a ``ValueError`` skips it unless ``required``."""
        logger.info("meta-analysis: %s", name)
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            try:
                out = func()
            except ValueError as err:
                if required:
                    raise
                self.skipped[name] = str(err)
                out = None
        for w in got:
            msg = str(w.message)
            if (name, msg) not in self.caught:
                self.caught.append((name, msg))
        return out


def _subgroups(frame: pd.DataFrame, columns: Sequence[str], model: Model, alpha: float, sroc: SrocCurve,
               rec: _Recorder) -> tuple[dict[str, SubgroupResult], dict[str, dict[str, SrocSummary]]]:
    """Per-level fits and the LRT of each subgroup column, and the SROC choice of every level."""
    results: dict[str, SubgroupResult] = {}
    per_column: dict[str, dict[str, SrocSummary]] = {}
    for col in columns:
        sg = rec.attempt(f"subgroup {col}", functools.partial(_subgroup, frame, col, model, alpha))
        if sg is None:
            continue
        results[col] = sg
        levels = frame[col].astype(str)
        per_level = {lev: rec.attempt(f"sroc subgroup {col}={lev}", functools.partial(
            sroc_summary, fit, frame[levels == lev], curve=sroc, alpha=alpha)) for lev, fit in sg.fits.items()}
        per_column[col] = {lev: x for lev, x in per_level.items() if x is not None}
    return results, per_column


def _pool(data: pd.DataFrame, *, model: str, alpha: float) -> BivariateResult:
    return bivariate_glmm(data, alpha=alpha) if model == "glmm" else reitsma(data, alpha=alpha)


def _one_per_study_fit(
    analysed: Studies,
    frame: pd.DataFrame,
    by: Literal["youden"],
    pool: Callable[[pd.DataFrame], BivariateResult],
    rec: _Recorder,
) -> tuple[BivariateResult | None, pd.DataFrame | None]:
    """Pool one cohort per study (the fit and the kept rows); skipped when every study has a single cohort."""
    ops_fit = ops_rows = None
    if analysed.frame["study"].duplicated().any():
        picked = rec.attempt("one per study", lambda: one_per_study(analysed.to_frame(), by=by))
        if picked is not None:
            ops_rows = picked[["study", "cohort", *COUNT_COLUMNS, "youden"]].reset_index(drop=True)
            ops_frame = frame.iloc[picked.index.to_numpy()]
            ops_fit = rec.attempt("one per study", lambda: pool(ops_frame))
    else:
        rec.skipped["one per study"] = "every study contributes a single cohort; nothing to select"
    return ops_fit, ops_rows


def _pretest(analysed: Studies, pretest: float | None) -> tuple[float, str]:
    """The pre-test probability and where it came from (given, or the median prevalence of the cohorts)."""
    if pretest is None:
        prevalence = (analysed.tp + analysed.fn) / (analysed.tp + analysed.fp + analysed.fn + analysed.tn)
        return float(np.median(prevalence)), f"median prevalence of the {len(analysed)} analysed cohorts"
    return float(pretest), "given"


def _subgroup(frame: pd.DataFrame, column: str, model: Model, alpha: float) -> SubgroupResult:
    values = frame[column]
    if values.isna().any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(values.isna().to_numpy()))
        raise StatisticsInputError(f"subgroup column {column!r} is empty in row(s) {rows}")
    counts = values.astype(str).value_counts()
    small = counts[counts < 2]
    if len(small):
        raise StatisticsInputError(f"level(s) {sorted(small.index)} of {column!r} have a single cohort; a pooled estimate "
                         "needs at least 2 (merge or drop those levels)")
    return subgroup_analysis(frame, column, model=model, alpha=alpha)


def finite_or_none(value: Any) -> Any:
    """``nan``/``inf`` -> ``None`` recursively; numpy scalars and arrays -> Python types (for JSON)."""
    if isinstance(value, dict):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite_or_none(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    return value
