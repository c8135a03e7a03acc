"""ONNX export and ONNX Runtime inference of intermediate-fusion bundles (``kind: fusion``).

The exported graph takes ``image`` ``(N, M, C, S, S)`` float32 in [0, 1] (one slot per modality, in the bundle's
modality order) and ``present`` ``(N, M)`` bool, and returns ``probabilities`` ``(N, K)``: the same computation as
``softmax(net((x - mean) / std, present))`` in PyTorch (normalisation included, absent modalities given as absent).
The file is placed and keyed exactly as :func:`nodescope.models.export_onnx` does (the shared ONNX cache of
:mod:`nodescope.models._onnx_cache`, or a given path; never the bundle folder).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nodescope.errors import BundleError
from nodescope.models._bundle import ModelBundle
from nodescope.models._onnx_cache import cached_onnx_export

__all__ = ["FusionOnnxPredictor", "export_fusion_onnx"]

_OUTPUTS = ("probabilities",)


class _FusionProbabilities(nn.Module):
    """Fusion network + normalisation + softmax: ``(x in [0, 1], present)`` -> probabilities."""

    def __init__(self, bundle: ModelBundle) -> None:
        super().__init__()
        self.net = copy.deepcopy(bundle.model).eval()
        spec = bundle.spec
        self.register_buffer("mean", torch.tensor(list(spec.mean), dtype=torch.float32).view(1, 1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(spec.std), dtype=torch.float32).view(1, 1, -1, 1, 1))

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((x - self.mean) / self.std, present), dim=1)


def export_fusion_onnx(bundle: ModelBundle, path: str | Path | None = None, *, opset: int = 17,
                       cache_dir: str | Path | None = None) -> Path:
    """Export a ``fusion`` bundle (see the module docstring); returns the file: ``path`` when given, else
    ``<cache_dir>/fusion-<key>.onnx`` (default :func:`nodescope.models.onnx_cache_dir`)."""
    if bundle.kind != "fusion":
        raise BundleError(f"bundle {bundle.path}: kind {bundle.kind!r}; expected a 'fusion' bundle")
    m, c, s = len(bundle.meta.modalities or ()), bundle.channels, bundle.image_size
    example = (torch.rand(1, m, c, s, s), torch.tensor([[True] * (m - 1) + [False]]))
    return cached_onnx_export(bundle, _FusionProbabilities(bundle).eval(), example, input_names=["image", "present"],
                              outputs=_OUTPUTS, opset=opset, path=path, cache_dir=cache_dir)


class FusionOnnxPredictor:
    """ONNX Runtime session of :func:`export_fusion_onnx`'s graph:
    ``__call__(x (N, M, C, S, S) float32 in [0, 1], present (N, M) bool) -> (N, K)`` probabilities.

    ``threads`` and ``spinning`` as for :class:`nodescope.models.OnnxPredictor`; with ``bundle`` a graph ONNX Runtime
    cannot load is a :class:`~nodescope.errors.BundleError` naming that bundle.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, spinning: bool = True,
                 bundle: ModelBundle | None = None) -> None:
        from nodescope.models._predict import OnnxPredictor, onnx_session

        if bundle is not None:
            self._session = onnx_session(bundle, path, threads=threads, spinning=spinning).session
        else:
            self._session = OnnxPredictor(path, threads=threads, spinning=spinning).session

    def __call__(self, x: np.ndarray, present: np.ndarray) -> np.ndarray:
        feeds = {"image": np.ascontiguousarray(x, np.float32), "present": np.ascontiguousarray(present, np.bool_)}
        return self._session.run(["probabilities"], feeds)[0]
