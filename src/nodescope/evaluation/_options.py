"""The options of :func:`~nodescope.evaluation.evaluate_predictions`, validated once against the predictions.

:func:`evaluation_options` is the public boundary: every option a user gives is checked here, before anything is
computed, and a bad one raises :class:`~nodescope.errors.StatisticsInputError` naming the argument and the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from nodescope.errors import StatisticsInputError
from nodescope.evaluation._predictions import Predictions
from nodescope.evaluation._validation import check_alpha, check_n_boot

__all__ = ["EvaluationOptions", "ThresholdRule", "evaluation_options", "parse_threshold"]


@dataclass(frozen=True)
class ThresholdRule:
    """How the operating threshold is chosen: ``method`` and ``target`` as :func:`choose_threshold`."""

    method: str
    target: float | None
    spec: str


def parse_threshold(spec: str) -> ThresholdRule:
    """Parse ``youden``, ``sens:0.9``, ``spec:0.9`` or a probability such as ``0.37``.

    Raises
    ------
    StatisticsInputError
        Anything else, or a rate/probability outside [0, 1] (a ``ValueError``).
    """
    text = str(spec).strip().lower()
    if text == "youden":
        return ThresholdRule("youden", None, text)
    m = re.fullmatch(r"(sens|sensitivity|spec|specificity)\s*[:=]\s*([0-9]*\.?[0-9]+)", text)
    if m:
        value = float(m.group(2))
        if not 0 <= value <= 1:
            raise StatisticsInputError(f"threshold {spec!r}: the target rate must be in [0, 1]")
        return ThresholdRule("sensitivity" if m.group(1).startswith("sens") else "specificity", value, text)
    try:
        value = float(text)
    except ValueError:
        raise StatisticsInputError(f"threshold {spec!r} not understood; expected 'youden', 'sens:0.9', 'spec:0.9' or "
                                   "a probability such as 0.37") from None
    if not 0 <= value <= 1:
        raise StatisticsInputError(f"threshold {spec!r}: a fixed threshold is a probability in [0, 1]")
    return ThresholdRule("fixed", value, text)


@dataclass(frozen=True)
class EvaluationOptions:
    """Validated options of one evaluation.

    Attributes
    ----------
    rule : ThresholdRule
        How each model's operating threshold is chosen on its cv/val rows.
    by : tuple of str
        Subgroup columns (all present in the predictions).
    compare : (str, str) or None
        Two different models of the predictions.
    model : str or None
        The one model evaluated, when given.
    models : tuple of str
        The models reported (``(model,)`` or every model of the predictions).
    reader_model : str or None
        The model compared with the readers (``None`` without a reads table).
    alpha, n_boot, seed
        Interval level, bootstrap replicates and seed of every bootstrap.
    """

    rule: ThresholdRule
    by: tuple[str, ...]
    compare: tuple[str, str] | None
    model: str | None
    models: tuple[str, ...]
    reader_model: str | None
    alpha: float
    n_boot: int
    seed: int


def evaluation_options(
    preds: Predictions,
    *,
    threshold: str = "youden",
    by: Sequence[str] = (),
    compare: tuple[str, str] | None = None,
    model: str | None = None,
    readers: bool = False,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> EvaluationOptions:
    """Check the options of :func:`~nodescope.evaluation.evaluate_predictions` against ``preds``.

    Parameters
    ----------
    preds : Predictions
        The validated predictions the options refer to.
    readers : bool
        Whether a reads table comes with the run (needs a binary task and a single model to compare with).
    threshold, by, compare, model, alpha, n_boot, seed
        As :func:`~nodescope.evaluation.evaluate_predictions`.

    Returns
    -------
    EvaluationOptions

    Raises
    ------
    StatisticsInputError
        An unknown model or column, the same model twice in ``compare``, a threshold rule that does not parse, a
        reads table with a multi-class task or with several models and no ``model``, ``alpha`` outside (0, 1) or
        ``n_boot < 1``.
    """
    rule = parse_threshold(threshold)
    models_all = preds.values("model")
    if model is not None and model not in models_all:
        raise StatisticsInputError(f"model {model!r} is not in the predictions; models are {models_all}")
    if compare is not None:
        compare = (compare[0], compare[1])
        missing = [m for m in compare if m not in models_all]
        if missing:
            raise StatisticsInputError(f"compare: model(s) {missing} not in the predictions; models are {models_all}")
        if compare[0] == compare[1]:
            raise StatisticsInputError(f"compare needs two different models; got {compare[0]!r} twice")
    missing_by = [c for c in by if c not in preds.frame.columns]
    if missing_by:
        raise StatisticsInputError(f"by: column(s) {missing_by} not in the predictions; columns are "
                                   f"{list(preds.frame.columns)}")
    reader_model = None
    if readers:
        if preds.task != "binary":
            raise StatisticsInputError(f"a reads table needs a binary task (reader calls are positive/negative); "
                                       f"the predictions have classes {list(preds.classes)}")
        reader_model = model or (models_all[0] if len(models_all) == 1 else None)
        if reader_model is None:
            raise StatisticsInputError(f"a reads table is compared with one model, and the predictions have several "
                                       f"({models_all}); name it with model=")
    return EvaluationOptions(rule=rule, by=tuple(by), compare=compare, model=model,
                             models=(model,) if model else tuple(models_all), reader_model=reader_model,
                             alpha=check_alpha(alpha), n_boot=check_n_boot(n_boot), seed=seed)
