"""Typed bundle metadata: what ``model.json`` says, as frozen objects.

:class:`InputSpec` is what a network expects as input (size, channels, normalisation, ROI rule, uint16 rule,
test-time augmentation, modalities) and owns the method that turns a decoded image into that input.
:class:`BundleMeta` is the rest of the description (kind, architecture, classes, operating threshold, training
summary, versions). Both convert to and from the JSON dict with ``to_dict`` / ``from_dict``; an unknown key, a
missing required key or a value of the wrong kind is a :class:`~nodescope.errors.BundleError` naming the bundle
file and the key.

model.json format versions: 1 (nodescope 0.1: no ``input.tta``), 2 (``input.tta`` recorded). Version 1 files are
read with ``tta = False``; files of a newer version than this nodescope knows are refused.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from nodescope.data import N_QUANTILES, GreyRule, ImageTransform, IntensityRule, MarksRule, UltrasoundImage
from nodescope.errors import BundleError, DataError
from nodescope.models._preprocess import (
    UINT16_RULE,
    RoiMode,
    Uint16Rule,
    prepare_image,
    prepare_mask,
    prepare_two_view,
    stored_bits,
)

__all__ = ["BUNDLE_FORMAT", "BUNDLE_FORMAT_VERSION", "BundleMeta", "InputSpec", "Threshold"]

BUNDLE_FORMAT = "nodescope-bundle"
BUNDLE_FORMAT_VERSION = 2

_INPUT_KEYS = {"image_size", "channels", "mean", "std", "resize", "scale", "roi", "roi_margin", "uint16", "tta",
               "scan_crop", "grey", "intensity", "marks", "intensity_reference", "context_scale"}
_STEP_DEFAULTS: dict[str, Any] = {"scan_crop": False, "grey": "auto", "intensity": "none", "marks": "keep"}


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise BundleError(f"{where}: expected true or false, got {value!r}")
    return value


_META_KEYS = {"format", "format_version", "kind", "name", "run_id", "architecture", "classes", "positive_class",
              "input", "modalities", "threshold", "group_col", "weights_init", "training", "pretraining",
              "synthetic_data", "created", "versions"}
_THRESHOLD_KEYS = {"value", "method", "chosen_on", "rule"}


def _need(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise BundleError(f"{where}: key {key!r} is missing")
    return d[key]


def _unknown(d: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(d) - known)
    if extra:
        raise BundleError(f"{where}: unknown key(s) {extra}; known keys: {sorted(known)}")


@dataclass(frozen=True)
class InputSpec:
    """How a decoded image becomes a network's input (``model.json`` ``input``).

    Attributes
    ----------
    image_size : int
        Side of the square input, pixels.
    channels : {1, 3}
    mean, std : tuple of float
        Per-channel normalisation on the 0..1 scale: the network sees ``(x / 255 - mean) / std``.
    roi : {"none", "mask", "two-view"}
        ``mask``: the image is cropped to its mask's box plus ``roi_margin`` x the box side first. ``two-view``: the
        network sees two views of the image, that crop and a context crop around it (:attr:`context_scale`),
        stacked on the channel axis (``2 * channels`` channels, see :func:`nodescope.models.prepare_two_view`).
    roi_margin : float
    uint16 : {"bits_stored", "full_range"}
        How 16-bit pixels become 8 bits (see :data:`nodescope.models.UINT16_RULE`).
    tta : bool
        The bundle's predictions (out-of-fold, threshold) were made with horizontal-mirror test-time augmentation;
        prediction does the same unless told otherwise.
    modalities : tuple of str or None
        The modalities the network was trained on (``None``: any); several for intermediate fusion.
    resize : {"pad"}
        Aspect kept: zero-padded to a centred square, then resized.
    scan_crop : bool
        Crop to the scan region first (:func:`nodescope.data.scan_region`: UI, text, rulers cut away).
    grey : {"auto", "tint"}
        ``tint``: a colour-tinted grey image becomes grey (:func:`nodescope.data.untint`); colour content is kept.
    intensity : {"none", "percentile", "clahe", "match"}
        Per-image intensity normalisation (:func:`nodescope.data.normalise_intensity`).
    intensity_reference : tuple of float or None
        ``match`` only: the 101 grey-level quantiles (0..100 %) that every image's histogram is matched to, the
        mean quantile function of the training images.
    marks : {"keep", "inpaint"}
        ``inpaint``: caliper and annotation marks filled in (:func:`nodescope.data.inpaint_marks`).
    context_scale : float, default 3.0
        ``two-view`` only: the context view is the ROI view's box scaled by this factor about its centre, clipped
        to the image (0: the whole image). Written to model.json only for ``two-view``.

    ``scan_crop``, ``grey``, ``intensity`` and ``marks`` are written to model.json only when not at their default,
    as is ``context_scale``, so bundles without them read as before and a nodescope that does not know them
    refuses such a bundle instead of preparing images differently.
    """

    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    roi: RoiMode = "none"
    roi_margin: float = 0.1
    uint16: Uint16Rule = UINT16_RULE
    tta: bool = False
    modalities: tuple[str, ...] | None = None
    resize: Literal["pad"] = "pad"
    scan_crop: bool = False
    grey: GreyRule = "auto"
    intensity: IntensityRule = "none"
    marks: MarksRule = "keep"
    intensity_reference: tuple[float, ...] | None = None
    context_scale: float = 3.0

    def __post_init__(self) -> None:
        where = "input"
        if int(self.image_size) < 1:
            raise BundleError(f"{where}.image_size: expected a positive size, got {self.image_size!r}")
        if self.channels not in (1, 3):
            raise BundleError(f"{where}.channels: expected 1 or 3, got {self.channels!r}")
        for key in ("mean", "std"):
            vals = getattr(self, key)
            if len(vals) != self.channels:
                raise BundleError(f"{where}.{key}: expected {self.channels} value(s) (one per channel), got {list(vals)}")
            if not all(math.isfinite(float(v)) for v in vals):
                raise BundleError(f"{where}.{key}: values must be finite, got {list(vals)}")
        if any(float(v) <= 0 for v in self.std):
            raise BundleError(f"{where}.std: values must be > 0, got {list(self.std)}")
        if self.roi not in ("none", "mask", "two-view"):
            raise BundleError(f"{where}.roi: expected 'none', 'mask' or 'two-view', got {self.roi!r}")
        cs = float(self.context_scale)
        if self.roi == "two-view" and not (cs == 0 or (math.isfinite(cs) and 1 <= cs <= 100)):
            raise BundleError(f"{where}.context_scale: expected 0 (the whole image) or a value in [1, 100], got "
                              f"{self.context_scale!r}")
        if not 0 <= float(self.roi_margin) <= 10:
            raise BundleError(f"{where}.roi_margin: expected a value in [0, 10], got {self.roi_margin!r}")
        if self.uint16 not in ("bits_stored", "full_range"):
            raise BundleError(f"{where}.uint16: expected 'bits_stored' or 'full_range', got {self.uint16!r}")
        if self.resize != "pad":
            raise BundleError(f"{where}.resize: expected 'pad', got {self.resize!r}")
        if self.grey not in ("auto", "tint"):
            raise BundleError(f"{where}.grey: expected 'auto' or 'tint', got {self.grey!r}")
        if self.intensity not in ("none", "percentile", "clahe", "match"):
            raise BundleError(f"{where}.intensity: expected 'none', 'percentile', 'clahe' or 'match', got "
                              f"{self.intensity!r}")
        ref = self.intensity_reference
        if (ref is not None) != (self.intensity == "match"):
            raise BundleError(f"{where}.intensity_reference: given exactly when intensity is 'match' (intensity "
                              f"{self.intensity!r}, reference {'given' if ref is not None else 'missing'})")
        if ref is not None and (len(ref) != N_QUANTILES or any(b < a for a, b in itertools.pairwise(ref))
                                or not all(math.isfinite(float(v)) for v in ref)):
            raise BundleError(f"{where}.intensity_reference: expected {N_QUANTILES} finite non-decreasing grey "
                              f"levels, got {len(ref)} value(s)")
        if self.marks not in ("keep", "inpaint"):
            raise BundleError(f"{where}.marks: expected 'keep' or 'inpaint', got {self.marks!r}")

    # ------------------------------------------------------------------------------------------------ images
    @property
    def views(self) -> int:
        """Views of each image the network sees: 2 for ``roi="two-view"`` (ROI, context), else 1."""
        return 2 if self.roi == "two-view" else 1

    @property
    def needs_mask(self) -> bool:
        """True when every image needs its lesion mask (``roi`` ``mask`` or ``two-view``)."""
        return self.roi != "none"

    @property
    def tensor_channels(self) -> int:
        """Channels of the prepared tensor: ``views * channels``."""
        return self.views * int(self.channels)

    def prepare(self, image: UltrasoundImage | np.ndarray, *, mask: np.ndarray | None = None,
                meta: Mapping[str, Any] | None = None) -> tuple[torch.Tensor, ImageTransform]:
        """A decoded image -> ``(tensor_channels, image_size, image_size)`` uint8 tensor and its
        :class:`ImageTransform` (for ``two-view``: the ROI view's; :meth:`prepare_views` gives both).

        Parameters
        ----------
        image : UltrasoundImage or numpy.ndarray
            From :func:`nodescope.data.read_image` (its ``meta`` gives the DICOM stored bits), or bare pixels.
        mask : numpy.ndarray, optional
            The lesion mask; required when :attr:`roi` is ``"mask"`` or ``"two-view"`` (the crop), ignored otherwise.
        meta : mapping, optional
            ``read_image`` meta for bare pixels.
        """
        if self.roi == "two-view":
            x, (roi_tr, _ctx) = self.prepare_views(image, mask=mask, meta=meta)
            return x, roi_tr
        if isinstance(image, UltrasoundImage):
            pixels, meta = image.pixels, image.meta
        else:
            pixels = np.asarray(image)
        if self.roi == "mask" and mask is None:
            raise DataError("input.roi is 'mask': this network needs the lesion mask of every image")
        return prepare_image(pixels, size=self.image_size, channels=self.channels,
                             mask=mask if self.roi == "mask" else None, roi_margin=self.roi_margin,
                             bits_stored=stored_bits(dict(meta or {}), self.uint16), **self.steps())

    def prepare_views(self, image: UltrasoundImage | np.ndarray, *, mask: np.ndarray | None,
                      meta: Mapping[str, Any] | None = None
                      ) -> tuple[torch.Tensor, tuple[ImageTransform, ImageTransform]]:
        """``roi="two-view"``: the ``(2 * channels, S, S)`` tensor and both views' transforms ``(roi, context)``
        (see :func:`nodescope.models.prepare_two_view`)."""
        if self.roi != "two-view":
            raise BundleError(f"input.roi is {self.roi!r}: prepare_views is for 'two-view' networks")
        if isinstance(image, UltrasoundImage):
            pixels, meta = image.pixels, image.meta
        else:
            pixels = np.asarray(image)
        if mask is None:
            raise DataError("input.roi is 'two-view': this network needs the lesion mask of every image")
        return prepare_two_view(pixels, size=self.image_size, channels=self.channels, mask=mask,
                                roi_margin=self.roi_margin, context_scale=self.context_scale,
                                bits_stored=stored_bits(dict(meta or {}), self.uint16), **self.steps())

    def steps(self) -> dict[str, Any]:
        """The appearance options as keyword arguments of :func:`prepare_image` (``scan_crop``, ``grey``,
        ``intensity``, ``marks``)."""
        return {"scan_crop": bool(self.scan_crop), "grey": self.grey, "intensity": self.intensity,
                "marks": self.marks, "reference": self.intensity_reference}

    def prepare_mask(self, mask: np.ndarray, transform: ImageTransform) -> torch.Tensor:
        """A label mask on the grid of the image that ``transform`` came from (see :func:`prepare_mask`)."""
        return prepare_mask(mask, transform)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, tensor_channels, S, S)`` (or float 0..255) -> the network's float input
        ``(x / 255 - mean) / std`` (each view normalised alike)."""
        x = images.float() / 255.0
        mean = torch.tensor(self.mean * self.views, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std * self.views, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    # ------------------------------------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The ``input`` block of model.json (``modalities`` lives at the top level, see :class:`BundleMeta`)."""
        return {"image_size": int(self.image_size), "channels": int(self.channels), "resize": self.resize,
                "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std], "roi": self.roi,
                "roi_margin": float(self.roi_margin), "scale": "x / 255", "uint16": self.uint16, "tta": self.tta,
                **{k: v for k, v in self.steps().items() if k in _STEP_DEFAULTS and v != _STEP_DEFAULTS[k]},
                **({"intensity_reference": [float(v) for v in self.intensity_reference]}
                   if self.intensity_reference is not None else {}),
                **({"context_scale": float(self.context_scale)} if self.roi == "two-view" else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, modalities: Sequence[str] | None = None, where: str = "input",
                  legacy_uint16: Uint16Rule = "full_range") -> InputSpec:
        """Read an ``input`` block; ``legacy_uint16`` is the rule of bundles written before the key existed."""
        if not isinstance(d, Mapping):
            raise BundleError(f"{where}: expected an object, got {type(d).__name__}")
        _unknown(d, _INPUT_KEYS, where)
        if d.get("scale", "x / 255") != "x / 255":
            raise BundleError(f"{where}.scale: expected 'x / 255', got {d['scale']!r}")
        if "context_scale" in d and d.get("roi") != "two-view":
            raise BundleError(f"{where}.context_scale: only for roi 'two-view', but roi is {d.get('roi', 'none')!r}")
        try:
            return cls(image_size=int(_need(d, "image_size", where)), channels=int(_need(d, "channels", where)),
                       mean=tuple(float(v) for v in _need(d, "mean", where)),
                       std=tuple(float(v) for v in _need(d, "std", where)),
                       roi=d.get("roi", "none"), roi_margin=float(d.get("roi_margin", 0.1)),
                       uint16=d.get("uint16", legacy_uint16), tta=bool(d.get("tta", False)),
                       modalities=tuple(modalities) if modalities else None, resize=d.get("resize", "pad"),
                       scan_crop=_flag(d.get("scan_crop", False), f"{where}.scan_crop"),
                       grey=d.get("grey", "auto"), intensity=d.get("intensity", "none"),
                       marks=d.get("marks", "keep"),
                       intensity_reference=(tuple(float(v) for v in d["intensity_reference"])
                                            if d.get("intensity_reference") is not None else None),
                       context_scale=float(d.get("context_scale", 3.0)))
        except BundleError as exc:
            raise BundleError(f"{where.rsplit(':', 1)[0]}: {exc}" if ":" in where else str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise BundleError(f"{where}: a value has the wrong type ({exc})") from None


@dataclass(frozen=True)
class Threshold:
    """The operating threshold of a binary classifier: predict positive when ``p_<positive> >= value``."""

    value: float
    method: str
    chosen_on: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": float(self.value), "method": self.method, "chosen_on": self.chosen_on, "rule": self.rule}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "threshold") -> Threshold:
        if not isinstance(d, Mapping):
            raise BundleError(f"{where}: expected an object, got {type(d).__name__}")
        _unknown(d, _THRESHOLD_KEYS, where)
        value = float(_need(d, "value", where))
        if not 0.0 <= value <= 1.0:
            raise BundleError(f"{where}.value: expected a probability in [0, 1], got {value!r}")
        return cls(value=value, method=str(d.get("method", "")), chosen_on=str(d.get("chosen_on", "")),
                   rule=str(d.get("rule", "")))


@dataclass(frozen=True)
class BundleMeta:
    """The content of a bundle's ``model.json``.

    Attributes
    ----------
    kind : str
        What the network is; :func:`nodescope.models.load_bundle` builds it through the kind's registered builder
        (``classifier``, ``fusion`` -- an intermediate-fusion classifier --, ``backbone``; ``segmenter`` next).
    name : str
    architecture : dict
        Plain, JSON-serialisable arguments of the kind's builder.
    input : InputSpec
    classes : tuple of str
        Output order of the network's probabilities (empty for a backbone).
    positive_class : str or None
    threshold : Threshold or None
    group_col, run_id : str or None
    weights_init, training, pretraining : dict
        Where the initial weights came from; what the network was trained on (free-form, recorded verbatim).
    synthetic_data : bool
    created : str or None
        ISO time stamp of the writing.
    versions : dict
        Package versions at writing.
    format_version : int
    """

    kind: str
    architecture: dict[str, Any]
    input: InputSpec
    name: str = "model"
    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    threshold: Threshold | None = None
    group_col: str | None = None
    run_id: str | None = None
    weights_init: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    pretraining: dict[str, Any] | None = None
    synthetic_data: bool = False
    created: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = BUNDLE_FORMAT_VERSION

    @property
    def modalities(self) -> tuple[str, ...] | None:
        return self.input.modalities

    def replace(self, **changes: Any) -> BundleMeta:
        """A copy with some fields changed (e.g. ``meta.replace(threshold=Threshold(...))``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of model.json (keys in a fixed order; empty optional blocks left out)."""
        d: dict[str, Any] = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "kind": self.kind,
                             "name": self.name}
        if self.run_id is not None:
            d["run_id"] = self.run_id
        d["architecture"] = dict(self.architecture)
        if self.classes:
            d["classes"] = list(self.classes)
            d["positive_class"] = self.positive_class
        d["input"] = self.input.to_dict()
        d["modalities"] = list(self.modalities) if self.modalities else None
        if self.classes:
            d["threshold"] = self.threshold.to_dict() if self.threshold else None
        d["group_col"] = self.group_col
        d["weights_init"] = dict(self.weights_init)
        if self.training:
            d["training"] = self.training
        if self.pretraining is not None:
            d["pretraining"] = self.pretraining
        d["synthetic_data"] = bool(self.synthetic_data)
        if self.created is not None:
            d["created"] = self.created
        if self.versions:
            d["versions"] = dict(self.versions)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "model.json") -> BundleMeta:
        """Read model.json's content; ``source`` (the file) is named in every error."""
        if not isinstance(d, Mapping):
            raise BundleError(f"{source}: expected a JSON object, got {type(d).__name__}")
        if d.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{source}: not a nodescope bundle (key 'format' is {d.get('format')!r}, expected "
                              f"{BUNDLE_FORMAT!r})")
        version = d.get("format_version", 0)
        if not isinstance(version, int) or version < 1:
            raise BundleError(f"{source}: key 'format_version' must be a positive integer, got {version!r}")
        if version > BUNDLE_FORMAT_VERSION:
            raise BundleError(f"{source}: format_version {version} is newer than this nodescope reads "
                              f"(<= {BUNDLE_FORMAT_VERSION}); upgrade nodescope")
        _unknown(d, _META_KEYS, source)
        kind = _need(d, "kind", source)
        arch = _need(d, "architecture", source)
        if not isinstance(arch, Mapping):
            raise BundleError(f"{source}: key 'architecture' must be an object, got {type(arch).__name__}")
        mods = d.get("modalities")
        spec = InputSpec.from_dict(_need(d, "input", source), modalities=mods, where=f"{source}: input")
        classes = tuple(str(c) for c in d.get("classes") or ())
        positive = d.get("positive_class")
        if positive is not None and positive not in classes:
            raise BundleError(f"{source}: key 'positive_class' is {positive!r}, not one of the classes {list(classes)}")
        thr = d.get("threshold")
        return cls(kind=str(kind), architecture=dict(arch), input=spec, name=str(d.get("name", "model")),
                   classes=classes, positive_class=positive,
                   threshold=Threshold.from_dict(thr, f"{source}: threshold") if thr else None,
                   group_col=d.get("group_col"), run_id=d.get("run_id"), weights_init=dict(d.get("weights_init") or {}),
                   training=dict(d.get("training") or {}), pretraining=d.get("pretraining"),
                   synthetic_data=bool(d.get("synthetic_data", False)), created=d.get("created"),
                   versions=dict(d.get("versions") or {}), format_version=version)
