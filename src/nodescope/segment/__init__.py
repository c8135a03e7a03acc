"""Segmentation: networks (U-Net, U-Net++, DeepLabV3/V3+, MONAI U-Net; the ``segmenter`` bundle kind), loss, and
metrics of predicted lesion masks against reference masks, fusion of several segmenters (mean, vote, STAPLE),
inference at the original image size (:class:`Segmenter`) and contour overlays."""

from typing import TYPE_CHECKING, Any

from nodescope.segment._evaluate import SegmentationEvaluation, evaluate_segmenters, evaluate_table
from nodescope.segment._fusion import (
    FUSION_RULES,
    FusionRule,
    StapleResult,
    fuse_masks,
    postprocess_mask,
    staple,
)
from nodescope.segment._metrics import (
    EMPTY_POLICY,
    MaskScores,
    SegmentationSummary,
    mask_scores,
    score_masks,
    summarise_scores,
)
from nodescope.segment._nets import (
    SEGMENTER_ARCHITECTURES,
    SegmenterArch,
    build_segmenter,
    load_encoder_weights,
    segmentation_loss,
)
from nodescope.segment._overlay import contour, overlay_contours
from nodescope.segment._pipeline import automatic_roi, segment_files
from nodescope.segment._predict import MaskPrediction, Segmenter, export_segmenter_onnx, probability_grid

if TYPE_CHECKING:
    from nodescope.segment._train import SegmentConfig, SegmenterModule, SegmentRunSummary, run_segment_cv

#: Training names, imported on first use: they need Lightning, which inference (the web service) does not.
_LAZY = {"SegmentConfig", "SegmenterModule", "SegmentRunSummary", "run_segment_cv"}


def __getattr__(name: str) -> Any:
    """The training names of :data:`_LAZY`, imported on first access."""
    if name in _LAZY:
        from nodescope.segment import _train

        return getattr(_train, name)
    raise AttributeError(f"module 'nodescope.segment' has no attribute {name!r}")


__all__ = [
    "EMPTY_POLICY",
    "FUSION_RULES",
    "SEGMENTER_ARCHITECTURES",
    "FusionRule",
    "MaskPrediction",
    "MaskScores",
    "SegmentConfig",
    "SegmentRunSummary",
    "SegmentationEvaluation",
    "SegmentationSummary",
    "Segmenter",
    "SegmenterArch",
    "SegmenterModule",
    "StapleResult",
    "automatic_roi",
    "build_segmenter",
    "contour",
    "evaluate_segmenters",
    "evaluate_table",
    "export_segmenter_onnx",
    "fuse_masks",
    "load_encoder_weights",
    "mask_scores",
    "overlay_contours",
    "postprocess_mask",
    "probability_grid",
    "run_segment_cv",
    "score_masks",
    "segment_files",
    "segmentation_loss",
    "staple",
    "summarise_scores",
]
