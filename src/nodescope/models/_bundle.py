"""The model bundle: a directory that ``predict``, ``explain`` and ``serve`` load (no pickles).

Layout::

    model.json           architecture, classes, positive class, input (size, channels, resize, normalisation, ROI),
                         modalities, operating threshold (value, method, data it was chosen on), weight source,
                         training-data summary, versions
    weights.safetensors  the network's state dict
    metrics.json         metrics computed from saved predictions (may be {})
    MODEL_CARD.md        human-readable summary

``kind`` in model.json is ``classifier`` (:class:`ClassifierNet`), ``fusion`` (:class:`IntermediateFusionNet`) or
``backbone`` (a pretraining result whose backbone ``train --weights`` can start from).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["BUNDLE_FORMAT_VERSION", "ModelBundle", "build_model", "load_bundle", "save_bundle"]

BUNDLE_FORMAT_VERSION = 1
_FILES = ("model.json", "weights.safetensors", "metrics.json", "MODEL_CARD.md")


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("nodescope", "torch", "timm", "lightning"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


@dataclass
class ModelBundle:
    """A loaded bundle.

    Attributes
    ----------
    path : Path
    meta : dict
        Contents of model.json.
    model : torch.nn.Module
        The network in eval mode (logits out).
    metrics : dict
    """

    path: Path
    meta: dict[str, Any]
    model: nn.Module
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta.get("classes", ()))

    @property
    def positive_class(self) -> str | None:
        return self.meta.get("positive_class")

    @property
    def threshold(self) -> float | None:
        t = self.meta.get("threshold")
        return None if t is None else float(t["value"])

    @property
    def image_size(self) -> int:
        return int(self.meta["input"]["image_size"])

    @property
    def channels(self) -> int:
        return int(self.meta["input"]["channels"])

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.name))


def build_model(meta: dict[str, Any]) -> nn.Module:
    """Instantiate (randomly initialised) the network a model.json describes."""
    from nodescope.models._fusion import IntermediateFusionNet
    from nodescope.models._registry import build_backbone, build_classifier

    kind = meta.get("kind")
    arch = dict(meta["architecture"])
    if kind == "classifier":
        return build_classifier(arch)
    if kind == "fusion":
        return IntermediateFusionNet.from_config(arch)
    if kind == "backbone":
        holder = nn.Module()
        holder.backbone = build_backbone(str(arch["backbone"]), in_chans=int(arch.get("in_chans", 3)),
                                         image_size=int(arch.get("image_size", 224)))
        return holder
    raise ValueError(f"model.json: unknown kind {kind!r}; expected 'classifier', 'fusion' or 'backbone'")


def _model_card(meta: dict[str, Any], metrics: dict[str, Any]) -> str:
    arch = meta.get("architecture", {})
    inp = meta.get("input", {})
    thr = meta.get("threshold")
    tr = meta.get("training", {})
    lines = [
        f"# Model card: {meta.get('name', 'model')}",
        "",
        f"- kind: {meta.get('kind')}; backbone: {arch.get('backbone')}; head: {arch.get('head', '-')}",
        f"- classes: {', '.join(meta.get('classes', []))}; positive class: {meta.get('positive_class') or '-'}",
        f"- input: {inp.get('image_size')} px, {inp.get('channels')} channel(s), resize {inp.get('resize')}, "
        f"ROI {inp.get('roi', 'none')}, mean {inp.get('mean')}, std {inp.get('std')}",
        f"- modalities: {', '.join(meta.get('modalities') or ['any'])}",
        f"- initial weights: {meta.get('weights_init', {}).get('source', '-')}",
    ]
    if thr:
        lines.append(f"- operating threshold: {thr['value']:.4f} ({thr.get('method')}, chosen on "
                     f"{thr.get('chosen_on')} predictions; apply unchanged to test data)")
    if tr:
        lines.append(f"- training data: {json.dumps(tr, sort_keys=True)}")
    if meta.get("synthetic_data"):
        lines += ["", "**Trained on SYNTHETIC demo data: it exercises the software and has no clinical meaning.**"]
    if metrics:
        lines += ["", "## Metrics (computed from saved predictions)", "", "```json", json.dumps(metrics, indent=2),
                  "```"]
    lines += ["", "## Intended use", "",
              "Research use only. Not a medical device. Validate on data from your own site before drawing any "
              "conclusion; report the operating threshold with any sensitivity/specificity.", ""]
    return "\n".join(lines)


def save_bundle(path: str | Path, model: nn.Module, meta: dict[str, Any], *,
                metrics: dict[str, Any] | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """Write ``model`` and its description as a bundle directory (created; existing bundle files replaced).

    Parameters
    ----------
    path : str or Path
        Bundle directory.
    model : torch.nn.Module
        Its ``state_dict()`` is saved to weights.safetensors (tensors made contiguous, shared storage cloned).
    meta : dict
        Must hold ``kind`` and ``architecture``; ``format``, ``format_version``, ``created`` and ``versions`` are added.
    metrics : dict, optional
        Written to metrics.json.
    extra_files : dict, optional
        File name -> text content written beside the bundle files (e.g. ``pretrain_images.json``).
    """
    from safetensors.torch import save_file

    if "kind" not in meta or "architecture" not in meta:
        raise ValueError("meta: 'kind' and 'architecture' are required")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    full = {"format": "nodescope-bundle", "format_version": BUNDLE_FORMAT_VERSION, **meta,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "versions": _versions()}
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(out / "weights.safetensors"))
    (out / "model.json").write_text(json.dumps(full, indent=2, sort_keys=False))
    (out / "metrics.json").write_text(json.dumps(metrics or {}, indent=2))
    (out / "MODEL_CARD.md").write_text(_model_card(full, metrics or {}))
    for name, text in (extra_files or {}).items():
        (out / name).write_text(text)
    return out


def load_bundle(path: str | Path, *, map_location: str | torch.device = "cpu") -> ModelBundle:
    """Load a bundle directory written by :func:`save_bundle`; the model is returned in eval mode.

    Raises
    ------
    FileNotFoundError
        When the folder or one of model.json / weights.safetensors is missing (names it).
    ValueError
        When model.json is not a nodescope bundle of a known version or the weights do not fit the architecture.
    """
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"bundle: {p} is not a directory")
    for name in ("model.json", "weights.safetensors"):
        if not (p / name).is_file():
            raise FileNotFoundError(f"bundle: {p / name} is missing")
    meta = json.loads((p / "model.json").read_text())
    if meta.get("format") != "nodescope-bundle":
        raise ValueError(f"bundle: {p / 'model.json'} is not a nodescope bundle (format={meta.get('format')!r})")
    if int(meta.get("format_version", 0)) > BUNDLE_FORMAT_VERSION:
        raise ValueError(f"bundle: {p} has format_version {meta['format_version']}, this nodescope reads "
                         f"<= {BUNDLE_FORMAT_VERSION}; upgrade nodescope")
    model = build_model(meta)
    state = load_file(str(p / "weights.safetensors"), device=str(map_location))
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    bad = [k for k in state if k in target and state[k].shape != target[k].shape]
    if missing or unexpected or bad:
        raise ValueError(f"bundle: weights in {p} do not fit the architecture in model.json: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, other shape {bad[:5]}")
    model.load_state_dict(state)
    model.eval()
    metrics = json.loads((p / "metrics.json").read_text()) if (p / "metrics.json").is_file() else {}
    return ModelBundle(path=p, meta=meta, model=model, metrics=metrics)
