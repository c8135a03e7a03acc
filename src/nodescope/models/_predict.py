"""Inference with a bundle: a long-lived :class:`Predictor` (PyTorch eager or ONNX Runtime), optional TTA.

Inputs are the uint8 tensors of :meth:`nodescope.models.InputSpec.prepare`, ``(N, C, S, S)``. The network sees
``(x / 255 - mean) / std``; outputs are softmax probabilities ``(N, K)`` in the bundle's class order, and on request
the logits ``(N, K)`` and the pooled penultimate features ``(N, F)``. TTA averages the outputs of the image and its
horizontal mirror (the only augmentation that is harmless for every ultrasound view).

A :class:`Predictor` loads the network (or builds the ONNX Runtime session) once; ``predict``, the demo, and later the
web service and Grad-CAM share it, so nothing is rebuilt per call.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from nodescope.data import ImageSource, ImageTransform, UltrasoundImage, read_image
from nodescope.errors import BundleError, ConfigError
from nodescope.models._bundle import ModelBundle, load_bundle
from nodescope.models._onnx_cache import cached_onnx_export

__all__ = ["Engine", "InferenceModel", "OnnxPredictor", "Prediction", "Predictor", "export_onnx", "onnx_session",
           "owned_cores", "predict_proba"]

log = logging.getLogger(__name__)

Engine = Literal["torch", "onnx"]
_OUTPUTS = ("probabilities", "logits", "features")


def owned_cores() -> int:
    """CPU cores this process may run on (its affinity mask; the machine's count where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class InferenceModel(nn.Module):
    """Bundle network + normalisation + softmax: ``(N, C, S, S)`` float in [0, 1] -> probabilities ``(N, K)``.

    :meth:`outputs` also gives the logits and the pooled features (``net.features``; the head maps them to logits).
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((x - self.mean) / self.std), dim=1)

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(probabilities, logits, features)`` of ``x`` (float in [0, 1])."""
        feats = self.net.features((x - self.mean) / self.std)
        logits = self.net.head(feats)
        return torch.softmax(logits, dim=1), logits, feats

    @classmethod
    def from_bundle(cls, bundle: ModelBundle) -> InferenceModel:
        if bundle.kind != "classifier":
            raise BundleError(f"bundle {bundle.path}: kind {bundle.kind!r} cannot predict single images; expected "
                              "'classifier'")
        spec = bundle.spec  # two-view: the views are stacked on the channel axis, each normalised alike
        return cls(bundle.model, spec.mean * spec.views, spec.std * spec.views).eval()


class _AllOutputs(nn.Module):
    """What is exported to ONNX: the three outputs of :meth:`InferenceModel.outputs`."""

    def __init__(self, model: InferenceModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.outputs(x)


def export_onnx(bundle: ModelBundle, path: str | Path | None = None, *, opset: int = 17,
                cache_dir: str | Path | None = None) -> Path:
    """Export the bundle's network (normalisation and softmax included) to ONNX, dynamic batch; returns the path.

    The graph's outputs are ``probabilities``, ``logits`` and ``features``. The file is ``path`` when given, else
    ``<cache_dir>/classifier-<key>.onnx`` (default :func:`onnx_cache_dir`); the bundle folder is never written. The
    entry is keyed on the SHA-256 of the weights, the architecture, the input spec and the opset, checked against
    its record before use, and exported again when anything differs (see :func:`cached_onnx_export`).
    """
    # export a copy in eval mode: torch.onnx.export restores the training flag of the module it is given, and the
    # bundle's own network must come back exactly as it was (eval mode, untouched)
    model = _AllOutputs(copy.deepcopy(InferenceModel.from_bundle(bundle))).eval()
    s, c = bundle.image_size, bundle.spec.tensor_channels
    return cached_onnx_export(bundle, model, (torch.rand(1, c, s, s),), input_names=["image"], outputs=_OUTPUTS,
                              opset=opset, path=path, cache_dir=cache_dir)


class OnnxPredictor:
    """ONNX Runtime session on CPU: ``__call__(x: (N, C, S, S) float32 in [0, 1]) -> (N, K)`` probabilities.

    ``spinning=False`` stops idle intra-op threads from busy-waiting for the next run (ONNX Runtime's default is to
    spin): a server that also decodes uploads and answers HTTP between runs needs those cores.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, spinning: bool = True) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        if not spinning:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self.output_names[:1], {self.input_name: np.ascontiguousarray(x, np.float32)})[0]

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every output of the graph (probabilities, logits, features for nodescope's exports)."""
        return tuple(self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)}))


def onnx_session(bundle: ModelBundle, path: str | Path, *, threads: int | None = None, spinning: bool = True
                 ) -> OnnxPredictor:
    """An :class:`OnnxPredictor` of ``bundle``'s export at ``path``; a graph ONNX Runtime cannot load is a
    :class:`~nodescope.errors.BundleError` naming the bundle (one line, suggesting the torch engine)."""
    try:
        return OnnxPredictor(path, threads=threads, spinning=spinning)
    except ImportError:
        raise
    except Exception as exc:  # onnxruntime's own exception types (Fail, InvalidGraph, NotImplemented, ...)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise BundleError(f"bundle {bundle.path}: ONNX Runtime cannot run its export {path} "
                          f"({exc.__class__.__name__}: {first}); use engine 'torch'") from None


@dataclass(frozen=True)
class Prediction:
    """Outputs for a batch of images, rows in input order (two-view bundles: ``features`` holds both views'
    pooled features side by side, ``(N, 2F)``).

    Attributes
    ----------
    probabilities : numpy.ndarray
        ``(N, K)`` softmax probabilities in the bundle's class order.
    logits : numpy.ndarray or None
        ``(N, K)`` when asked for.
    features : numpy.ndarray or None
        ``(N, F)`` pooled penultimate-layer features when asked for.
    transforms : tuple of ImageTransform
        The geometry of each prepared image (empty when tensors were given).
    """

    probabilities: np.ndarray
    logits: np.ndarray | None = None
    features: np.ndarray | None = None
    transforms: tuple[ImageTransform, ...] = ()


class Predictor:
    """A classifier bundle loaded once, ready to score batches of images.

    Parameters
    ----------
    bundle : ModelBundle, str or Path
        A loaded bundle or its folder.
    engine : {"torch", "onnx"}, default "torch"
        ``onnx`` exports the network once (see :func:`export_onnx`) and runs ONNX Runtime on the CPU.
    threads : int, optional
        Intra-op threads; default: the cores this process owns (:func:`owned_cores`). With the torch engine this
        sets ``torch.set_num_threads`` (process-wide).
    batch_size : int, default 32
    onnx_path : str or Path, optional
        Where the ONNX export lives (default: the cache below). Never inside the bundle folder.
    onnx_cache_dir : str or Path, optional
        Without ``onnx_path``: the folder of the cached exports, named by the weights' digest (default
        :func:`nodescope.models.onnx_cache_dir`; see :func:`export_onnx`). The bundle folder is never written.
    onnx_spinning : bool, default True
        Let idle ONNX Runtime threads busy-wait between runs (fastest for back-to-back batches; a server turns it
        off, see :class:`OnnxPredictor`).
    """

    def __init__(self, bundle: ModelBundle | str | Path, *, engine: Engine = "torch", threads: int | None = None,
                 batch_size: int = 32, onnx_path: str | Path | None = None, onnx_spinning: bool = True,
                 onnx_cache_dir: str | Path | None = None) -> None:
        if engine not in ("torch", "onnx"):
            raise ConfigError(f"engine: expected 'torch' or 'onnx', got {engine!r}")
        if threads is not None and int(threads) < 1:
            raise ConfigError(f"threads: expected a positive number, got {threads!r}")
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size: expected a positive number, got {batch_size!r}")
        self.bundle = bundle if isinstance(bundle, ModelBundle) else load_bundle(bundle)
        self.engine: Engine = engine
        self.threads = int(threads) if threads is not None else owned_cores()
        self.batch_size = int(batch_size)
        self._torch = InferenceModel.from_bundle(self.bundle)
        self._onnx: OnnxPredictor | None = None
        if engine == "onnx":
            self._onnx = onnx_session(self.bundle, export_onnx(self.bundle, onnx_path, cache_dir=onnx_cache_dir),
                                      threads=self.threads, spinning=onnx_spinning)
        elif torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    @property
    def spec(self) -> Any:
        """The bundle's :class:`~nodescope.models.InputSpec`."""
        return self.bundle.spec

    @property
    def classes(self) -> tuple[str, ...]:
        return self.bundle.classes

    def prepare(self, image: UltrasoundImage | np.ndarray | ImageSource, *, mask: np.ndarray | None = None
                ) -> tuple[torch.Tensor, ImageTransform]:
        """Decode (paths, bytes) and prepare one image as the bundle's input spec says."""
        if not isinstance(image, UltrasoundImage | np.ndarray):
            image = read_image(image)
        return self.spec.prepare(image, mask=mask)

    def _run(self, xb: torch.Tensor | np.ndarray, want_all: bool) -> tuple[np.ndarray, ...]:
        if self._onnx is not None:
            arr = np.asarray(xb)
            return self._onnx.outputs(arr) if want_all else (self._onnx(arr),)
        with torch.inference_mode():
            if want_all:
                return tuple(t.numpy() for t in self._torch.outputs(xb))
            return (self._torch(xb).numpy(),)

    def adapt_batchnorm(self, images: torch.Tensor) -> None:
        """Re-estimate the network's BatchNorm statistics on these prepared uint8 target images (AdaBN, see
        :func:`nodescope.models.adapt_batchnorm`); later predictions use them. The bundle is not changed."""
        from nodescope.models._adapt import adapt_batchnorm

        if self._onnx is not None:
            raise ConfigError("adapting BatchNorm statistics needs the torch engine (the ONNX export holds the "
                              "bundle's statistics); use engine 'torch'")
        raw = torch.as_tensor(images)
        if raw.dtype != torch.uint8:
            raise TypeError(f"images: expected uint8 (from InputSpec.prepare), got {raw.dtype}")
        self._torch = adapt_batchnorm(self._torch, raw, batch_size=max(2, self.batch_size),
                                      transform=lambda xb: xb.float().div_(255.0))

    def predict(self, images: torch.Tensor | np.ndarray, *, tta: bool | None = None, logits: bool = False,
                features: bool = False) -> Prediction:
        """Outputs for prepared uint8 images ``(N, C, S, S)``.

        ``tta=None`` follows the bundle (``input.tta``); with TTA each output is the mean over the image and its
        mirror.
        """
        raw = torch.as_tensor(images)
        if raw.ndim != 4:
            raise ValueError(f"images: expected (N, C, S, S), got shape {tuple(raw.shape)}")
        if raw.dtype != torch.uint8:
            raise TypeError(f"images: expected uint8 (from InputSpec.prepare), got {raw.dtype}")
        x: torch.Tensor | np.ndarray
        if self._onnx is not None:
            # numpy, not torch: torch's thread pool would contend with ONNX Runtime's spinning threads
            x = raw.numpy().astype(np.float32) / np.float32(255.0)
        else:
            x = raw.float().div_(255.0)
        use_tta = self.spec.tta if tta is None else bool(tta)
        want_all = logits or features
        outs: list[tuple[np.ndarray, ...]] = []
        for i in range(0, len(x), self.batch_size):
            xb = x[i:i + self.batch_size]
            r = self._run(xb, want_all)
            if use_tta:
                mirrored = xb[..., ::-1] if isinstance(xb, np.ndarray) else torch.flip(xb, dims=[3])
                m = self._run(mirrored, want_all)
                r = tuple((a + b) / 2 for a, b in zip(r, m, strict=True))
            outs.append(r)
        k = len(self.classes)
        if not outs:
            return Prediction(np.zeros((0, k), np.float32), np.zeros((0, k), np.float32) if logits else None, None)
        cols = [np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))]
        return Prediction(cols[0], cols[1] if logits else None, cols[2] if features else None)

    def predict_images(self, images: Sequence[UltrasoundImage | np.ndarray | ImageSource], *,
                       masks: Sequence[np.ndarray | None] | None = None, tta: bool | None = None,
                       logits: bool = False, features: bool = False) -> Prediction:
        """Decode and prepare each image (paths, bytes, decoded images), then :meth:`predict`; the result carries
        each image's :class:`ImageTransform`."""
        ms = list(masks) if masks is not None else [None] * len(images)
        if len(ms) != len(images):
            raise ValueError(f"masks: expected one per image ({len(images)}), got {len(ms)}")
        s, c = self.spec.image_size, self.spec.tensor_channels
        x = torch.empty((len(images), c, s, s), dtype=torch.uint8)
        transforms = []
        for i, (img, m) in enumerate(zip(images, ms, strict=True)):
            x[i], tr = self.prepare(img, mask=m)
            transforms.append(tr)
        p = self.predict(x, tta=tta, logits=logits, features=features)
        return Prediction(p.probabilities, p.logits, p.features, tuple(transforms))


def predict_proba(bundle: ModelBundle, images: torch.Tensor | np.ndarray, *, tta: bool = False,
                  batch_size: int = 32, engine: Engine = "torch", onnx_path: str | Path | None = None) -> np.ndarray:
    """Class probabilities ``(N, K)`` for prepared uint8 images ``(N, C, S, S)``: a one-off :class:`Predictor`.

    For repeated calls build one :class:`Predictor` and keep it.
    """
    pred = Predictor(bundle, engine=engine, batch_size=batch_size, onnx_path=onnx_path,
                     threads=torch.get_num_threads() if engine == "torch" else None)
    return pred.predict(images, tta=tta).probabilities
