"""Segmentation: networks (U-Net, U-Net++, DeepLabV3/V3+, MONAI U-Net; the ``segmenter`` bundle kind), loss, and
metrics of predicted lesion masks against reference masks. Training and the automatic ROI pipeline come next."""

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

__all__ = [
    "EMPTY_POLICY",
    "SEGMENTER_ARCHITECTURES",
    "MaskScores",
    "SegmentationSummary",
    "SegmenterArch",
    "build_segmenter",
    "load_encoder_weights",
    "mask_scores",
    "score_masks",
    "segmentation_loss",
    "summarise_scores",
]
