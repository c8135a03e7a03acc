"""Explanation: class activation maps (Grad-CAM, Grad-CAM++, Score-CAM, EigenCAM, LayerCAM via pytorch-grad-cam)
over every registered backbone, drawn back onto the original image; overlays; whether the maps look at the lesion
(energy in the lesion mask, pointing game, patient-bootstrap intervals); the batch run behind ``nodescope explain``.

Needs the ``explain`` extra (``grad-cam``)."""

from nodescope.explain._cam import METHODS, CamExplainer, CamMethod, CamResult
from nodescope.explain._layers import CamLayer, cam_layer, token_reshape
from nodescope.explain._localise import (
    LOCALISATION_METRICS,
    LocalisationSummary,
    energy_in_mask,
    pointing_hit,
    summarise_localisation,
)
from nodescope.explain._overlay import display_pixels, overlay_heatmap
from nodescope.explain._run import ExplainRun, explain_files, write_gallery

__all__ = [
    "LOCALISATION_METRICS",
    "METHODS",
    "CamExplainer",
    "CamLayer",
    "CamMethod",
    "CamResult",
    "ExplainRun",
    "LocalisationSummary",
    "cam_layer",
    "display_pixels",
    "energy_in_mask",
    "explain_files",
    "overlay_heatmap",
    "pointing_hit",
    "summarise_localisation",
    "token_reshape",
    "write_gallery",
]
