"""Explanation: class activation maps (Grad-CAM, Grad-CAM++, Score-CAM, EigenCAM, LayerCAM via pytorch-grad-cam)
over every registered backbone, drawn back onto the original image, and overlays.

Needs the ``explain`` extra (``grad-cam``)."""

from nodescope.explain._cam import METHODS, CamExplainer, CamMethod, CamResult
from nodescope.explain._layers import CamLayer, cam_layer, token_reshape
from nodescope.explain._overlay import display_pixels, overlay_heatmap

__all__ = [
    "METHODS",
    "CamExplainer",
    "CamLayer",
    "CamMethod",
    "CamResult",
    "cam_layer",
    "display_pixels",
    "overlay_heatmap",
    "token_reshape",
]
