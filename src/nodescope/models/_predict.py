"""Inference with a bundle: PyTorch eager or ONNX Runtime, optional test-time augmentation.

Inputs are the uint8 tensors of :func:`nodescope.models.prepare_image`, ``(N, C, S, S)``. The network sees
``(x / 255 - mean) / std``; outputs are softmax probabilities ``(N, K)`` in the bundle's class order.
TTA (``tta=True``) averages the probabilities of the image and its horizontal mirror (the only augmentation that is
harmless for every ultrasound view).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from nodescope.models._bundle import ModelBundle

__all__ = ["Engine", "InferenceModel", "OnnxPredictor", "export_onnx", "predict_proba"]

log = logging.getLogger(__name__)

Engine = Literal["torch", "onnx"]


class InferenceModel(nn.Module):
    """Bundle network + normalisation + softmax: ``(N, C, S, S)`` float in [0, 1] -> probabilities ``(N, K)``."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((x - self.mean) / self.std), dim=1)

    @classmethod
    def from_bundle(cls, bundle: ModelBundle) -> InferenceModel:
        if bundle.meta.get("kind") != "classifier":
            raise ValueError(f"bundle {bundle.path}: kind {bundle.meta.get('kind')!r} cannot predict single images; "
                             "expected 'classifier'")
        inp = bundle.meta["input"]
        return cls(bundle.model, inp["mean"], inp["std"]).eval()


def _as_float(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.ndim != 4:
        raise ValueError(f"images: expected (N, C, S, S), got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise TypeError(f"images: expected uint8 (from prepare_image), got {x.dtype}")
    return x.float().div_(255.0)


@torch.inference_mode()
def predict_proba(bundle: ModelBundle, images: torch.Tensor | np.ndarray, *, tta: bool = False,
                  batch_size: int = 32, engine: Engine = "torch", onnx_path: str | Path | None = None) -> np.ndarray:
    """Class probabilities ``(N, K)`` for prepared uint8 images ``(N, C, S, S)``.

    Parameters
    ----------
    bundle : ModelBundle
    images : tensor or array, uint8, (N, C, S, S)
    tta : bool, default False
        Average with the horizontally mirrored image.
    batch_size : int, default 32
    engine : {"torch", "onnx"}
        ``onnx`` exports the bundle (to ``onnx_path`` or ``<bundle>/model.onnx``, reused when present) and runs ONNX
        Runtime on CPU.
    """
    x = _as_float(images)
    if engine == "onnx":
        runner: OnnxPredictor | InferenceModel = OnnxPredictor(export_onnx(bundle, onnx_path))
    elif engine == "torch":
        runner = InferenceModel.from_bundle(bundle)
    else:
        raise ValueError(f"engine: expected 'torch' or 'onnx', got {engine!r}")
    outs = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        p = _run(runner, xb)
        if tta:
            p = (p + _run(runner, torch.flip(xb, dims=[3]))) / 2
        outs.append(p)
    k = len(bundle.classes)
    return np.concatenate(outs) if outs else np.zeros((0, k), np.float32)


def _run(runner: OnnxPredictor | InferenceModel, xb: torch.Tensor) -> np.ndarray:
    if isinstance(runner, OnnxPredictor):
        return runner(xb.numpy())
    return runner(xb).numpy()


def export_onnx(bundle: ModelBundle, path: str | Path | None = None, *, opset: int = 17) -> Path:
    """Export the bundle's :class:`InferenceModel` to ONNX (dynamic batch); returns the file path.

    The file is reused when it exists and is newer than weights.safetensors.
    """
    out = Path(path) if path is not None else bundle.path / "model.onnx"
    weights = bundle.path / "weights.safetensors"
    if out.is_file() and (not weights.is_file() or out.stat().st_mtime >= weights.stat().st_mtime):
        return out
    model = InferenceModel.from_bundle(bundle)
    s, c = bundle.image_size, bundle.channels
    dummy = torch.rand(1, c, s, s)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), str(out), dynamo=False, input_names=["image"],
                          output_names=["probabilities"], dynamic_axes={"image": {0: "batch"},
                                                                        "probabilities": {0: "batch"}},
                          opset_version=opset)
    log.info("exported %s", out)
    return out


class OnnxPredictor:
    """ONNX Runtime session on CPU: ``__call__(x: (N, C, S, S) float32 in [0, 1]) -> (N, K)`` probabilities."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
