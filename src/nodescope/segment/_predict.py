"""Inference with segmenter bundles: one or several networks loaded once, masks at the original image size.

Each member prepares the image with its own :class:`~nodescope.models.InputSpec` (the same path as training), maps
the normalised tensor to a logit map on its grid, and draws the sigmoid probability back onto the original pixels
through the :class:`~nodescope.data.ImageTransform` of that preparation (bilinear; pixels outside the crop get 0).
Members are fused on the original grid (:func:`~nodescope.segment.fuse_masks`), so members with different input
sizes combine, then the optional clean-up (:func:`~nodescope.segment.postprocess_mask`) is applied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nodescope.data import ImageSource, ImageTransform, UltrasoundImage, read_image
from nodescope.errors import BundleError, ConfigError
from nodescope.models import InputSpec, ModelBundle, cached_onnx_export, load_bundle
from nodescope.segment._fusion import FUSION_RULES, FusionRule, fuse_masks, postprocess_mask

__all__ = ["MaskPrediction", "Segmenter", "export_segmenter_onnx", "probability_grid"]

log = logging.getLogger(__name__)


@torch.inference_mode()
def probability_grid(net: torch.nn.Module, spec: InputSpec, images: torch.Tensor, *, tta: bool = False,
                     batch_size: int = 16) -> np.ndarray:
    """Foreground probabilities on the model grid for prepared uint8 images.

    Parameters
    ----------
    net : torch.nn.Module
        A segmentation network ``(N, C, S, S) -> (N, 1, S, S)`` logits; put in eval mode for the call and restored.
    spec : InputSpec
        Its normalisation.
    images : torch.Tensor
        ``(N, C, S, S)`` uint8 from :meth:`InputSpec.prepare`.
    tta : bool, default False
        Average with the prediction of the mirrored image (mirrored back).
    batch_size : int, default 16

    Returns
    -------
    numpy.ndarray
        ``(N, S, S)`` float32 in [0, 1].
    """
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise ValueError(f"images: expected (N, C, S, S) uint8, got {tuple(images.shape)} {images.dtype}")
    was_training = net.training
    net.eval()
    dev = next(net.parameters()).device
    outs = []
    for i in range(0, len(images), batch_size):
        x = spec.normalise(images[i:i + batch_size].to(dev))
        p = torch.sigmoid(net(x).float())
        if tta:
            p = (p + torch.sigmoid(net(x.flip(-1)).float()).flip(-1)) / 2
        outs.append(p[:, 0].cpu().numpy())
    net.train(was_training)
    s = images.shape[-1]
    return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, s, s), np.float32)


class _ProbabilityNet(torch.nn.Module):
    """What is exported to ONNX: ``(N, C, S, S)`` float in [0, 1] -> normalise -> network -> sigmoid."""

    def __init__(self, net: torch.nn.Module, spec: InputSpec) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net((x - self.mean) / self.std))


def export_segmenter_onnx(bundle: ModelBundle, path: str | Path | None = None, *, opset: int = 17,
                          cache_dir: str | Path | None = None) -> Path:
    """Export a segmenter bundle (normalisation and sigmoid included) to ONNX with a dynamic batch.

    The graph maps ``image`` ``(N, C, S, S)`` float32 in [0, 1] to ``probability`` ``(N, 1, S, S)``. The file is
    ``path`` when given, else ``<cache_dir>/segmenter-<key>.onnx`` (default
    :func:`nodescope.models.onnx_cache_dir`); the bundle folder is never written. Keyed, checked and replaced as
    :func:`nodescope.models.cached_onnx_export` says (weights SHA-256, architecture, input spec, opset).

    Raises
    ------
    BundleError
        Not a segmenter, or its network cannot be exported (naming the bundle).
    """
    import copy

    if bundle.kind != "segmenter":
        raise BundleError(f"bundle {bundle.path}: kind {bundle.kind!r}; expected a 'segmenter' bundle")
    model = _ProbabilityNet(copy.deepcopy(bundle.model), bundle.spec).eval()
    s, c = bundle.image_size, bundle.channels
    return cached_onnx_export(bundle, model, (torch.rand(1, c, s, s),), input_names=["image"],
                              outputs=["probability"], opset=opset, path=path, cache_dir=cache_dir)


@dataclass(frozen=True)
class MaskPrediction:
    """The segmentation of one image at its original size.

    Attributes
    ----------
    mask : numpy.ndarray
        ``(H, W)`` bool: the fused (and post-processed) lesion mask.
    probability : numpy.ndarray
        ``(H, W)`` float32: the fused foreground probability (mean, vote fraction or STAPLE posterior).
    members : tuple of numpy.ndarray
        Each member's ``(H, W)`` float32 probability, in bundle order.
    transforms : tuple of ImageTransform
        Each member's preprocessing geometry.
    """

    mask: np.ndarray
    probability: np.ndarray
    members: tuple[np.ndarray, ...]
    transforms: tuple[ImageTransform, ...]


class Segmenter:
    """One or several ``segmenter`` bundles loaded once, predicting masks at the original image size.

    Parameters
    ----------
    bundles : sequence of (ModelBundle, str or Path)
        Segmenter bundles (or their folders); several are fused with ``fusion``.
    fusion : {"mean", "vote", "staple"}, default "mean"
        See :func:`~nodescope.segment.fuse_masks`; irrelevant for one bundle (its probability >= ``threshold``).
    engine : {"torch", "onnx"}, default "torch"
        ``onnx`` exports each bundle once into the ONNX cache (:func:`export_segmenter_onnx`; bundle folders are
        never written) and runs ONNX Runtime on the CPU. A member that cannot be exported is refused with a
        :class:`~nodescope.errors.BundleError` naming it.
    threshold : float, default 0.5
    largest_component, fill_holes : bool, default False
        Post-processing of the fused mask (:func:`~nodescope.segment.postprocess_mask`).
    tta : bool, optional
        Mirror test-time augmentation; default: each bundle's ``input.tta``.
    threads : int, optional
        ``torch.set_num_threads`` when given; ONNX Runtime's intra-op threads per member session.
    onnx_cache_dir : str or Path, optional
        With ``engine="onnx"``: the cache folder (default :func:`nodescope.models.onnx_cache_dir`).
    onnx_spinning : bool, default True
        Let idle ONNX Runtime threads busy-wait (see :class:`nodescope.models.OnnxPredictor`; a server turns it off).

    Examples
    --------
    >>> seg = Segmenter(["runs/seg/final/bundle"])             # doctest: +SKIP
    >>> m = seg.predict_mask(pixels)                            # doctest: +SKIP
    >>> m.mask.shape == pixels.shape[:2]                        # doctest: +SKIP
    True
    """

    def __init__(self, bundles: Sequence[ModelBundle | str | Path], fusion: FusionRule = "mean", *,
                 engine: str = "torch", threshold: float = 0.5, largest_component: bool = False,
                 fill_holes: bool = False, tta: bool | None = None, threads: int | None = None,
                 onnx_cache_dir: str | Path | None = None, onnx_spinning: bool = True) -> None:
        if isinstance(bundles, str | Path | ModelBundle):
            bundles = [bundles]
        if not bundles:
            raise ConfigError("bundles: give at least one segmenter bundle")
        if fusion not in FUSION_RULES:
            raise ConfigError(f"fusion: unknown rule {fusion!r}; valid: {list(FUSION_RULES)}")
        if engine not in ("torch", "onnx"):
            raise ConfigError(f"engine: expected 'torch' or 'onnx', got {engine!r}")
        if not 0.0 < float(threshold) < 1.0:
            raise ConfigError(f"threshold: expected a value in (0, 1), got {threshold!r}")
        if threads is not None:
            if int(threads) < 1:
                raise ConfigError(f"threads: expected a positive number, got {threads!r}")
            torch.set_num_threads(int(threads))
        loaded = [b if isinstance(b, ModelBundle) else load_bundle(b) for b in bundles]
        for b in loaded:
            if b.kind != "segmenter":
                raise BundleError(f"bundle {b.path}: kind {b.kind!r}; expected a 'segmenter' bundle")
            if b.spec.roi != "none":
                raise BundleError(f"bundle {b.path}: input.roi {b.spec.roi!r}; a segmenter sees the whole image")
        self.bundles: tuple[ModelBundle, ...] = tuple(loaded)
        self.fusion: FusionRule = fusion
        self.engine = engine
        self.threshold = float(threshold)
        self.largest_component = bool(largest_component)
        self.fill_holes = bool(fill_holes)
        self.tta = tta
        self._onnx: list[Any] = []
        if engine == "onnx":
            from nodescope.models import onnx_session

            self._onnx = [onnx_session(b, export_segmenter_onnx(b, cache_dir=onnx_cache_dir), threads=threads,
                                       spinning=onnx_spinning) for b in self.bundles]

    @property
    def names(self) -> tuple[str, ...]:
        """The members' bundle names."""
        return tuple(b.name for b in self.bundles)

    def member_probabilities(self, image: UltrasoundImage | np.ndarray | ImageSource
                             ) -> tuple[list[np.ndarray], list[ImageTransform], tuple[int, int]]:
        """Each member's foreground probability ``(H, W)`` at the original size, its transform, and ``(H, W)``."""
        if not isinstance(image, UltrasoundImage | np.ndarray):
            image = read_image(image)
        probs, transforms = [], []
        for i, b in enumerate(self.bundles):
            x, tr = b.spec.prepare(image)
            use_tta = b.spec.tta if self.tta is None else bool(self.tta)
            if self._onnx:
                xb = x[None].numpy().astype(np.float32) / np.float32(255.0)
                grid = self._onnx[i](xb)[0, 0]
                if use_tta:
                    grid = (grid + self._onnx[i](np.ascontiguousarray(xb[..., ::-1]))[0, 0, :, ::-1]) / 2
            else:
                grid = probability_grid(b.model, b.spec, x[None], tta=use_tta)[0]
            probs.append(tr.inverse(grid, resample="bilinear").astype(np.float32))
            transforms.append(tr)
        return probs, transforms, tuple(transforms[0].in_shape)  # type: ignore[return-value]

    def fuse(self, members: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Fuse members' ``(H, W)`` probabilities and post-process: ``(mask bool, probability float32)``."""
        if len(members) == 1:
            prob = np.asarray(members[0], np.float32)
            mask = prob >= self.threshold
        else:
            mask, prob = fuse_masks(np.stack(members), self.fusion, threshold=self.threshold)
        if self.largest_component or self.fill_holes:
            mask = postprocess_mask(mask, largest_component=self.largest_component, fill_holes=self.fill_holes)
        return mask, prob.astype(np.float32)

    def predict_mask(self, image: UltrasoundImage | np.ndarray | ImageSource) -> MaskPrediction:
        """The lesion mask of one image at its original size.

        Parameters
        ----------
        image : numpy.ndarray, UltrasoundImage or image source
            Original pixels ``(H, W)`` or ``(H, W, 3)`` uint8 (uint16 follows each bundle's rule), a decoded image,
            or a path / bytes to decode.

        Returns
        -------
        MaskPrediction
            ``mask`` bool ``(H, W)``, ``probability`` float32 ``(H, W)``.
        """
        members, transforms, _shape = self.member_probabilities(image)
        mask, prob = self.fuse(members)
        return MaskPrediction(mask, prob, tuple(members), tuple(transforms))
