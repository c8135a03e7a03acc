"""The model bundle: a directory that ``predict``, ``explain`` and ``serve`` load (no pickles).

Layout::

    model.json           the typed description (:class:`~nodescope.models.BundleMeta`): kind, architecture, classes,
                         positive class, input (:class:`~nodescope.models.InputSpec`), modalities, operating
                         threshold (value, method, data it was chosen on), weight source, training-data summary,
                         versions
    weights.safetensors  the network's state dict
    metrics.json         metrics computed from saved predictions (may be {})
    MODEL_CARD.md        human-readable summary

``kind`` selects the builder of the network from a registry (:func:`register_bundle_kind`): ``classifier``
(:class:`ClassifierNet`), ``fusion`` (:class:`IntermediateFusionNet`), ``backbone`` (a pretraining result whose
backbone ``train --weights`` can start from); later stages register theirs (``segmenter``).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nodescope._files import atomic_path, atomic_write_text
from nodescope.errors import BundleError, MissingFileError
from nodescope.models._meta import BUNDLE_FORMAT_VERSION, BundleMeta, InputSpec

__all__ = ["BUNDLE_FORMAT_VERSION", "BundleKind", "ModelBundle", "build_model", "bundle_kinds", "load_bundle",
           "read_bundle_meta", "register_bundle_kind", "save_bundle", "write_bundle_meta"]

_FILES = ("model.json", "weights.safetensors", "metrics.json", "MODEL_CARD.md")


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("nodescope", "torch", "timm", "lightning"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


# ------------------------------------------------------------------------------------------------ kinds


@dataclass(frozen=True)
class BundleKind:
    """How a bundle kind's network is built and checked.

    Attributes
    ----------
    name : str
    build : callable
        ``build(meta) -> nn.Module``: a randomly initialised network from ``meta.architecture``.
    n_outputs : callable or None
        ``n_outputs(meta) -> int``: the number of outputs the built network gives, checked against
        ``len(meta.classes)`` when the bundle has classes.
    """

    name: str
    build: Callable[[BundleMeta], nn.Module]
    n_outputs: Callable[[BundleMeta], int] | None = None


_KINDS: dict[str, BundleKind] = {}
#: Kinds registered by a stage package when it is imported; ``build_model`` imports it on first use.
_KIND_MODULES = {"segmenter": "nodescope.segment"}


def register_bundle_kind(kind: BundleKind) -> BundleKind:
    """Add (or replace) a bundle kind; later stages register theirs (e.g. ``segmenter``)."""
    _KINDS[kind.name] = kind
    return kind


def bundle_kinds() -> tuple[str, ...]:
    """Registered bundle kinds."""
    return tuple(sorted(_KINDS))


def _build_classifier(meta: BundleMeta) -> nn.Module:
    from nodescope.models._registry import build_classifier

    return build_classifier(dict(meta.architecture))


def _build_fusion(meta: BundleMeta) -> nn.Module:
    from nodescope.models._fusion import IntermediateFusionNet

    return IntermediateFusionNet.from_config(dict(meta.architecture))


def _build_backbone(meta: BundleMeta) -> nn.Module:
    from nodescope.models._registry import build_backbone

    arch = meta.architecture
    holder = nn.Module()
    holder.backbone = build_backbone(str(arch["backbone"]), in_chans=int(arch.get("in_chans", 3)),
                                     image_size=int(arch.get("image_size", 224)))
    return holder


def _num_classes(meta: BundleMeta) -> int:
    return int(meta.architecture.get("num_classes", -1))


register_bundle_kind(BundleKind("classifier", _build_classifier, _num_classes))
register_bundle_kind(BundleKind("fusion", _build_fusion, _num_classes))
register_bundle_kind(BundleKind("backbone", _build_backbone))


def build_model(meta: BundleMeta, *, source: str = "model.json") -> nn.Module:
    """Instantiate (randomly initialised) the network ``meta`` describes, through its kind's registered builder."""
    if meta.kind not in _KINDS and meta.kind in _KIND_MODULES:
        import importlib

        importlib.import_module(_KIND_MODULES[meta.kind])
    kind = _KINDS.get(meta.kind)
    if kind is None:
        raise BundleError(f"{source}: key 'kind' is {meta.kind!r}; known kinds: {list(bundle_kinds())}")
    if kind.n_outputs is not None and meta.classes and kind.n_outputs(meta) != len(meta.classes):
        raise BundleError(f"{source}: key 'classes' lists {len(meta.classes)} classes {list(meta.classes)} but "
                          f"architecture.num_classes is {kind.n_outputs(meta)}; the probabilities would be "
                          "assigned to the wrong classes")
    in_chans = meta.architecture.get("in_chans")
    if in_chans is not None and int(in_chans) != meta.input.channels:
        raise BundleError(f"{source}: architecture.in_chans is {in_chans} but input.channels is "
                          f"{meta.input.channels}")
    views = meta.architecture.get("views", 1)
    if meta.kind == "classifier" and views != meta.input.views:
        raise BundleError(f"{source}: architecture.views is {views} but input.roi {meta.input.roi!r} gives "
                          f"{meta.input.views} view(s) of each image")
    try:
        return kind.build(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{source}: key 'architecture' cannot build a {meta.kind} network ({exc})") from exc


# ------------------------------------------------------------------------------------------------ the bundle


@dataclass
class ModelBundle:
    """A loaded bundle.

    Attributes
    ----------
    path : Path
    meta : BundleMeta
        The typed content of model.json.
    model : torch.nn.Module
        The network in eval mode (logits out).
    metrics : dict
    """

    path: Path
    meta: BundleMeta
    model: nn.Module
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.meta.kind

    @property
    def spec(self) -> InputSpec:
        return self.meta.input

    @property
    def classes(self) -> tuple[str, ...]:
        return self.meta.classes

    @property
    def positive_class(self) -> str | None:
        return self.meta.positive_class

    @property
    def threshold(self) -> float | None:
        return None if self.meta.threshold is None else float(self.meta.threshold.value)

    @property
    def image_size(self) -> int:
        return self.meta.input.image_size

    @property
    def channels(self) -> int:
        return self.meta.input.channels

    @property
    def name(self) -> str:
        return self.meta.name


def _model_card(meta: BundleMeta, metrics: dict[str, Any]) -> str:
    arch, inp, thr = meta.architecture, meta.input, meta.threshold
    lines = [
        f"# Model card: {meta.name}",
        "",
        f"- kind: {meta.kind}; backbone: {arch.get('backbone')}; head: {arch.get('head', '-')}",
        f"- classes: {', '.join(meta.classes)}; positive class: {meta.positive_class or '-'}",
        f"- input: {inp.image_size} px, {inp.channels} channel(s), resize {inp.resize}, ROI {inp.roi}"
        f"{f' (context view: box x {inp.context_scale:g})' if inp.roi == 'two-view' else ''}, "
        f"mean {list(inp.mean)}, std {list(inp.std)}, test-time mirror {'on' if inp.tta else 'off'}",
        f"- modalities: {', '.join(meta.modalities or ['any'])}",
        f"- initial weights: {meta.weights_init.get('source', '-')}",
    ]
    if thr:
        lines.append(f"- operating threshold: {thr.value:.4f} ({thr.method}, chosen on {thr.chosen_on} "
                     "predictions; apply unchanged to test data)")
    if meta.training:
        lines.append(f"- training data: {json.dumps(meta.training, sort_keys=True)}")
    if meta.synthetic_data:
        lines += ["", "**Trained on SYNTHETIC demo data: it exercises the software and has no clinical meaning.**"]
    if metrics:
        lines += ["", "## Metrics (computed from saved predictions)", "", "```json", json.dumps(metrics, indent=2),
                  "```"]
    lines += ["", "## Intended use", "",
              "Research use only. Not a medical device. Validate on data from your own site before drawing any "
              "conclusion; report the operating threshold with any sensitivity/specificity.", ""]
    return "\n".join(lines)


def read_bundle_json(path: Path) -> Any:
    """A JSON file of a bundle (model.json, metrics.json, pretrain_images.json); malformed JSON is a
    :class:`~nodescope.errors.BundleError` naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None


def write_bundle_meta(path: str | Path, meta: BundleMeta, *, metrics: dict[str, Any] | None = None) -> BundleMeta:
    """Rewrite a bundle's model.json and MODEL_CARD.md (and metrics.json when given); the weights are not touched.

    Use it to change only the description, e.g. the operating threshold::

        b = load_bundle(path)
        write_bundle_meta(path, b.meta.replace(threshold=Threshold(0.42, "youden", "cv", "p_malignant >= value")))

    Returns the metadata as written (with ``created`` and ``versions`` of this writing).
    """
    out = Path(path)
    if not (out / "weights.safetensors").is_file():
        raise MissingFileError(f"bundle: {out / 'weights.safetensors'} is missing; write the bundle with save_bundle")
    if metrics is None:
        mf = out / "metrics.json"
        metrics = read_bundle_json(mf) if mf.is_file() else {}
    full = meta.replace(created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), versions=_versions())
    atomic_write_text(out / "model.json", json.dumps(full.to_dict(), indent=2, sort_keys=False))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(out / "MODEL_CARD.md", _model_card(full, metrics))
    return full


def save_bundle(path: str | Path, model: nn.Module, meta: BundleMeta, *,
                metrics: dict[str, Any] | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """Write ``model`` and its description as a bundle directory (created; existing bundle files replaced).

    Parameters
    ----------
    path : str or Path
        Bundle directory.
    model : torch.nn.Module
        Its ``state_dict()`` is saved to weights.safetensors (tensors made contiguous, shared storage cloned).
    meta : BundleMeta
        ``created`` and ``versions`` are set at writing.
    metrics : dict, optional
        Written to metrics.json.
    extra_files : dict, optional
        File name -> text content written beside the bundle files (e.g. ``pretrain_images.json``).
    """
    from safetensors.torch import save_file

    if not isinstance(meta, BundleMeta):
        raise TypeError(f"meta: expected a BundleMeta, got {type(meta).__name__}")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(out / "weights.safetensors") as tmp:
        save_file(state, str(tmp))
    write_bundle_meta(out, meta, metrics=metrics or {})
    for name, text in (extra_files or {}).items():
        atomic_write_text(out / name, text)
    return out


def read_bundle_meta(path: str | Path) -> BundleMeta:
    """The typed model.json of a bundle folder, without building the network."""
    p = Path(path)
    if not p.is_dir():
        raise MissingFileError(f"bundle: {p} is not a directory")
    f = p / "model.json"
    if not f.is_file():
        raise MissingFileError(f"bundle: {f} is missing")
    return BundleMeta.from_dict(read_bundle_json(f), source=str(f))


def _temperature_keys(model: nn.Module) -> list[str]:
    from nodescope.models._registry import Temperature

    return [f"{name}.temperature" for name, m in model.named_modules() if isinstance(m, Temperature)]


def load_bundle(path: str | Path, *, map_location: str | torch.device = "cpu") -> ModelBundle:
    """Load a bundle directory written by :func:`save_bundle`; the model is returned in eval mode.

    Raises
    ------
    MissingFileError
        When the folder or one of model.json / weights.safetensors is missing (names it).
    BundleError
        When model.json is not a nodescope bundle of a known version, has unknown, missing or inconsistent keys
        (e.g. classes that do not match the network's outputs), or the weights do not fit the architecture or
        cannot be read.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    meta = read_bundle_meta(p)
    wf = p / "weights.safetensors"
    if not wf.is_file():
        raise MissingFileError(f"bundle: {wf} is missing")
    model = build_model(meta, source=str(p / "model.json"))
    try:
        state = load_file(str(wf), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{wf}: not a readable safetensors file ({exc})") from exc
    target = model.state_dict()
    for k in _temperature_keys(model):  # bundles written before the head had a Temperature: T = 1
        state.setdefault(k, target[k])
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    bad = [k for k in state if k in target and state[k].shape != target[k].shape]
    if missing or unexpected or bad:
        raise BundleError(f"bundle: weights in {p} do not fit the architecture in model.json: missing "
                          f"{missing[:5]}, unexpected {unexpected[:5]}, other shape {bad[:5]}")
    model.load_state_dict(state)
    model.eval()
    mf = p / "metrics.json"
    metrics = read_bundle_json(mf) if mf.is_file() else {}
    return ModelBundle(path=p, meta=meta, model=model, metrics=metrics)

