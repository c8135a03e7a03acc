"""Evaluation: pure, validated statistics over saved predictions.

Every function takes arrays (``y_true, y_score`` first, options keyword-only) and returns a frozen dataclass or a
:class:`nodescope._estimate.Estimate`. Threshold rule everywhere: ``score >= threshold`` is positive. Figures are
drawn by the ``plot_*`` functions from computed results. See docs/evaluation.md for formulas, references, the
undefined-case policy and what each statistic was checked against.
"""

from nodescope.evaluation._bootstrap import bootstrap_metric
from nodescope.evaluation._calibration import (
    CalibrationMetrics,
    HosmerLemeshow,
    ReliabilityCurve,
    calibration_metrics,
    hosmer_lemeshow,
    reliability_curve,
)
from nodescope.evaluation._compare import (
    AucComparison,
    McNemarResult,
    bootstrap_difference,
    compare_auc,
    compare_auc_unpaired,
    mcnemar_test,
)
from nodescope.evaluation._dca import (
    DecisionCurve,
    NetBenefitDifference,
    decision_curve,
    net_benefit_difference,
)
from nodescope.evaluation._delong import DelongComponents, delong_components
from nodescope.evaluation._multiclass import MulticlassMetrics, multiclass_metrics
from nodescope.evaluation._plots import (
    plot_calibration,
    plot_confusion_matrix,
    plot_decision_curve,
    plot_pr,
    plot_roc,
)
from nodescope.evaluation._predictions import (
    POSITIVE_NAMES,
    Predictions,
    PredictionsError,
    make_predictions,
    read_predictions,
)
from nodescope.evaluation._proportions import proportion_ci
from nodescope.evaluation._roc import (
    PrCurve,
    RocBand,
    RocCurve,
    average_precision,
    pr_curve,
    roc_auc,
    roc_band,
    roc_curve,
)
from nodescope.evaluation._threshold import (
    BinaryMetrics,
    ConfusionTable,
    ThresholdChoice,
    binary_metrics,
    choose_threshold,
)

__all__ = [
    "POSITIVE_NAMES",
    "AucComparison",
    "BinaryMetrics",
    "CalibrationMetrics",
    "ConfusionTable",
    "DecisionCurve",
    "DelongComponents",
    "HosmerLemeshow",
    "McNemarResult",
    "MulticlassMetrics",
    "NetBenefitDifference",
    "PrCurve",
    "Predictions",
    "PredictionsError",
    "ReliabilityCurve",
    "RocBand",
    "RocCurve",
    "ThresholdChoice",
    "average_precision",
    "binary_metrics",
    "bootstrap_difference",
    "bootstrap_metric",
    "calibration_metrics",
    "choose_threshold",
    "compare_auc",
    "compare_auc_unpaired",
    "decision_curve",
    "delong_components",
    "hosmer_lemeshow",
    "make_predictions",
    "mcnemar_test",
    "multiclass_metrics",
    "net_benefit_difference",
    "plot_calibration",
    "plot_confusion_matrix",
    "plot_decision_curve",
    "plot_pr",
    "plot_roc",
    "pr_curve",
    "proportion_ci",
    "read_predictions",
    "reliability_curve",
    "roc_auc",
    "roc_band",
    "roc_curve",
]

# Reader studies, MRMC, subgroups and the report of ``nodescope evaluate`` (kept apart from the block above so that
# the two parts of this package can grow without merge conflicts).
# External validation at new sites and recalibration from a local sample (issue 14).
from nodescope.evaluation._external import ExternalValidation, SiteResult, external_validation
from nodescope.evaluation._mrmc import MRMCResult, mrmc_analysis
from nodescope.evaluation._readers import (
    PairedComparison,
    ReaderPoint,
    ReaderStudy,
    read_reads,
    reader_study,
    validate_reads,
)
from nodescope.evaluation._recalibration import (
    Recalibration,
    RecalibrationCurve,
    recalibrate,
    recalibration_curve,
)
from nodescope.evaluation._report import (
    METRICS_SCHEMA_VERSION,
    EvaluationRun,
    evaluate_predictions,
    parse_threshold,
    write_evaluation,
)
from nodescope.evaluation._subgroups import subgroup_metrics

__all__ += [
    "METRICS_SCHEMA_VERSION",
    "EvaluationRun",
    "MRMCResult",
    "PairedComparison",
    "ReaderPoint",
    "ReaderStudy",
    "evaluate_predictions",
    "mrmc_analysis",
    "parse_threshold",
    "read_reads",
    "reader_study",
    "subgroup_metrics",
    "validate_reads",
    "write_evaluation",
]
__all__ += ["ExternalValidation", "Recalibration", "RecalibrationCurve", "SiteResult", "external_validation",
            "recalibrate", "recalibration_curve"]

# Statistics API 1.0 (issue 15): val.prob indices, several proportion intervals, results objects.
from nodescope.evaluation._compare import mcnemar_paired  # noqa: E402
from nodescope.evaluation._proportions import PROPORTION_METHODS, proportion_cis  # noqa: E402
from nodescope.evaluation._results import ResultsMixin  # noqa: E402
from nodescope.evaluation._roc import AucEstimate  # noqa: E402
from nodescope.evaluation._threshold import OperatingPoint  # noqa: E402
from nodescope.evaluation._valprob import VAL_PROB_LABELS, ValProb, val_prob  # noqa: E402

__all__ += [
    "PROPORTION_METHODS",
    "VAL_PROB_LABELS",
    "AucEstimate",
    "OperatingPoint",
    "ResultsMixin",
    "ValProb",
    "mcnemar_paired",
    "proportion_cis",
    "val_prob",
]
