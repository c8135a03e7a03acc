"""Which layer a class activation map is taken from, for every registered backbone, and how its output becomes a
``(N, C, h, w)`` map.

Convolutional backbones: the last spatial feature map before global pooling. Transformers give tokens, which are
reshaped onto the model's patch grid (the ``reshape_transform`` of pytorch-grad-cam):

- ViT (class-token pooling): ``blocks[-1].norm1``. The class token is computed in the last block, so the patch tokens
  *after* it get no gradient from the output; the input of the last block's attention is the usual choice
  (pytorch-grad-cam's "vision transformers" tutorial). The prefix tokens (class, registers:
  ``num_prefix_tokens``) are dropped and the rest laid on ``patch_embed.grid_size``.
- Swin (average pooling): ``layers[-1].blocks[-1].norm2``, laid on the last stage's ``input_resolution``; the final
  block's ``norm1`` gives background-heavy maps on pretrained Swin-T while ``norm2`` localises (reported in
  torch-cam pull request 412, which validated both on ImageNet weights). timm gives ``(N, L, C)`` tokens or
  ``(N, H, W, C)`` channels-last maps depending on the layer; both are handled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nodescope.errors import BundleError
from nodescope.models import get_backbone_spec

__all__ = ["CamLayer", "cam_layer", "token_reshape"]

Reshape = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CamLayer:
    """The layer a CAM is computed on.

    Attributes
    ----------
    module : torch.nn.Module
        The target layer (a forward hook is attached to it while a :class:`~nodescope.explain.CamExplainer` is open).
    name : str
        Its dotted name inside the backbone (``layer4``, ``blocks.11.norm1`` ...), for reports.
    reshape : callable or None
        Maps the layer's output to ``(N, C, h, w)`` (transformers); None for convolutional maps.
    grid : tuple of int or None
        ``(h, w)`` token grid of a transformer layer.
    """

    module: nn.Module
    name: str
    reshape: Reshape | None = None
    grid: tuple[int, int] | None = None


def token_reshape(grid: tuple[int, int], prefix_tokens: int = 0) -> Reshape:
    """A ``reshape_transform`` laying transformer tokens on a ``(h, w)`` patch grid.

    Parameters
    ----------
    grid : tuple of int
        ``(h, w)``: patches per column and per row.
    prefix_tokens : int, default 0
        Leading tokens that are not patches (class token, register tokens), dropped.

    Returns
    -------
    callable
        ``(N, prefix + h*w, C)`` tokens or ``(N, h, w, C)`` channels-last maps -> ``(N, C, h, w)``.
    """
    h, w = int(grid[0]), int(grid[1])

    def reshape(t: torch.Tensor) -> torch.Tensor:
        if t.ndim == 4:  # channels-last (N, h, w, C)
            if tuple(t.shape[1:3]) != (h, w):
                raise ValueError(f"CAM layer output {tuple(t.shape)} does not match the patch grid {(h, w)}")
            return t.permute(0, 3, 1, 2)
        if t.ndim != 3 or t.shape[1] != prefix_tokens + h * w:
            raise ValueError(f"CAM layer output {tuple(t.shape)} does not match the patch grid: expected "
                             f"(N, {prefix_tokens} + {h}x{w}, C) tokens")
        return t[:, prefix_tokens:, :].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)

    return reshape


def _named(backbone: nn.Module, name: str) -> CamLayer:
    return CamLayer(backbone.get_submodule(name), name)


def cam_layer(backbone: nn.Module, name: str) -> CamLayer:
    """The CAM layer of a registered backbone (a timm model built by :func:`nodescope.models.build_backbone`).

    Parameters
    ----------
    backbone : torch.nn.Module
        The backbone module (``ClassifierNet.backbone``, one encoder of an ``IntermediateFusionNet``).
    name : str
        Its registered name (``model.json`` ``architecture.backbone``).

    Returns
    -------
    CamLayer

    Raises
    ------
    BundleError
        When the module does not have the layer its family should have (a network not built by nodescope).
    """
    family = get_backbone_spec(name).family
    bb: Any = backbone  # timm models: attributes resolved at run time
    try:
        if family == "vit":
            gh, gw = (int(v) for v in bb.patch_embed.grid_size)
            grid = (gh, gw)
            return CamLayer(bb.blocks[-1].norm1, f"blocks.{len(bb.blocks) - 1}.norm1",
                            token_reshape(grid, int(getattr(bb, "num_prefix_tokens", 1))), grid)
        if family == "swin":
            block = bb.layers[-1].blocks[-1]
            gh, gw = (int(v) for v in block.input_resolution)
            grid = (gh, gw)
            name_ = f"layers.{len(bb.layers) - 1}.blocks.{len(bb.layers[-1].blocks) - 1}.norm2"
            return CamLayer(block.norm2, name_, token_reshape(grid, 0), grid)
        if family == "efficientnet":  # the 1x1 head convolution (+ BN and activation) is still spatial
            return _named(backbone, "bn2")
        if family == "densenet":
            return _named(backbone, "features.norm5")
        # resnet, inception, convnext, mobilenet: timm's last feature stage is the last spatial map before pooling
        return _named(backbone, str(bb.feature_info[-1]["module"]))
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise BundleError(f"backbone {name!r} ({family}): its CAM layer was not found ({exc}); was the network built "
                          "by nodescope.models.build_backbone?") from exc
