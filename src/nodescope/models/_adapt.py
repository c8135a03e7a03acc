"""Label-free test-time adaptation: BatchNorm statistics re-estimated on the target images (AdaBN).

Li Y, Wang N, Shi J, Hou X, Liu J. Adaptive batch normalization for practical domain adaptation. Pattern
Recognition 2018;80:109-117. A network trained at one centre normalises each BatchNorm layer's input with the
running mean and variance of the training images; at another centre (other scanner, gain, tint) those statistics
are off and every later layer sees shifted inputs. AdaBN replaces them with the statistics of the target images;
nothing else changes (no labels, no gradient, the learned weights and BatchNorm affine parameters stay as trained).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from nodescope.errors import ConfigError, DataError

__all__ = ["adapt_batchnorm", "batchnorm_layers"]

log = logging.getLogger(__name__)

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1d/2d/3d, SyncBatchNorm, timm's BatchNormAct2d) of ``model`` that tracks running
    statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.running_mean is not None]


def adapt_batchnorm(model: ModuleT, images: torch.Tensor, *, batch_size: int = 32,
                    transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> ModuleT:
    """A copy of ``model`` whose BatchNorm running statistics are those of ``images`` (AdaBN).

    Every BatchNorm layer's running mean and variance are reset and re-estimated from forward passes over
    ``images`` in batches: with ``momentum = None`` PyTorch keeps the cumulative average of the batch statistics,
    so with equal batches the running mean is exactly the mean over all target images, and the running variance
    the average of the batches' unbiased variances (exact with one batch). Only the BatchNorm layers are in training
    mode during these passes -- dropout and stochastic depth stay off -- and no gradient is computed, so no
    parameter changes. ``model`` itself is not modified.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (its mode is irrelevant; the copy is returned in eval mode).
    images : torch.Tensor
        ``(N, ...)`` the target inputs, exactly as ``model`` takes them (or as ``transform`` turns them into those).
    batch_size : int, default 32
        Images per forward pass; a layer needs at least 2 values per channel in a batch, so a last batch of 1 image
        is merged into the one before.
    transform : callable, optional
        Applied to each batch before the forward pass (e.g. uint8 -> float scaling).

    Returns
    -------
    torch.nn.Module
        The adapted copy, in eval mode.

    Raises
    ------
    ConfigError
        ``model`` has no BatchNorm layer with running statistics (nothing to adapt), or ``batch_size < 2``.
    DataError
        Fewer than 2 images.
    """
    if int(batch_size) < 2:
        raise ConfigError(f"batch_size: BatchNorm statistics need >= 2 images per batch, got {batch_size}")
    n = int(images.shape[0])
    if n < 2:
        raise DataError(f"adapt_batchnorm: the target set has {n} image(s); BatchNorm statistics need at least 2")
    adapted = copy.deepcopy(model).eval()
    layers = batchnorm_layers(adapted)
    if not layers:
        raise ConfigError(f"the network ({type(model).__name__}) has no BatchNorm layer with running statistics: "
                          "nothing to adapt (AdaBN needs BatchNorm)")
    momenta = [bn.momentum for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the batches
        bn.train()
    starts = list(range(0, n, int(batch_size)))
    if n - starts[-1] == 1:
        starts.pop()  # merge a last single image into the previous batch
    ends = [*starts[1:], n]
    with torch.no_grad():
        for a, b in zip(starts, ends, strict=True):
            xb = images[a:b]
            adapted(transform(xb) if transform is not None else xb)
    for bn, m in zip(layers, momenta, strict=True):
        bn.momentum = m
    log.info("AdaBN: re-estimated %d BatchNorm layer(s) on %d target image(s)", len(layers), n)
    return adapted.eval()
