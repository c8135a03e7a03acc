"""Segmentation: metrics of predicted lesion masks against reference masks (networks and training come next)."""

from nodescope.segment._metrics import (
    EMPTY_POLICY,
    MaskScores,
    SegmentationSummary,
    mask_scores,
    score_masks,
    summarise_scores,
)

__all__ = ["EMPTY_POLICY", "MaskScores", "SegmentationSummary", "mask_scores", "score_masks", "summarise_scores"]
