"""Ultrasound augmentation on batches of tensors (runs on the training device, after the batch is moved there).

Each image independently gets, in order: horizontal flip (p = 0.5), a small affine warp (rotation, isotropic
scale, translation; zero fill, bilinear), brightness ``+ b``, contrast ``(x - mean) * c + mean``, gamma ``x ** g``, and
speckle-like multiplicative noise ``x * (1 + s * n)`` where ``n`` is unit Gaussian noise smoothed by a 3x3 box filter
(a grain a few pixels wide, like speckle) and ``s`` is drawn per image. Vertical flips are off: they would put the
transducer at the bottom of the image. Values are clipped to [0, 1].

Given a mask batch too (segmentation), the geometric steps (flip, affine warp) are applied to the mask with the very
same draws -- the mask is warped with nearest-neighbour sampling so it stays a label map -- and the intensity steps
to the image only, as MONAI's dictionary transforms do for ``{"image", "label"}``. The random draws and their order
do not depend on whether a mask is given, so an image gets the same augmentation either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from nodescope.errors import ConfigError

__all__ = ["AugmentLevel", "UltrasoundAugment"]

AugmentLevel = Literal["none", "light", "standard"]


@dataclass(frozen=True)
class UltrasoundAugment:
    """Batch augmentation ``(N, C, S, S)`` float in [0, 1] -> same shape.

    Parameters (ranges are symmetric unless a pair is given)
    ----------
    hflip : float
        Probability of a left-right mirror.
    rotate : float
        Max rotation, degrees.
    scale : tuple of float
        Scale range.
    translate : float
        Max shift as a fraction of the side.
    brightness, contrast : float
        Max additive brightness shift; contrast factor in ``1 +- contrast``.
    gamma : tuple of float
        Gamma range.
    speckle : float
        Max std of the multiplicative noise.
    """

    hflip: float = 0.5
    rotate: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.2
    gamma: tuple[float, float] = (0.8, 1.25)
    speckle: float = 0.1

    @classmethod
    def from_level(cls, level: AugmentLevel) -> UltrasoundAugment | None:
        if level == "none":
            return None
        if level == "light":
            return cls(rotate=5.0, scale=(0.95, 1.05), translate=0.03, brightness=0.05, contrast=0.1,
                       gamma=(0.9, 1.1), speckle=0.05)
        if level == "standard":
            return cls()
        raise ConfigError(f"augment: expected 'none', 'light' or 'standard', got {level!r}")

    def __call__(self, x: torch.Tensor, mask: torch.Tensor | None = None
                 ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Augment ``x`` ``(N, C, S, S)``; with ``mask`` ``(N, K, S, S)`` return ``(x, mask)`` warped alike."""
        n, c, h, w = x.shape
        if mask is not None and (mask.shape[0] != n or mask.shape[-2:] != x.shape[-2:]):
            raise ValueError(f"mask: expected shape ({n}, K, {h}, {w}) to match the images, got {tuple(mask.shape)}")
        dev, dt = x.device, x.dtype

        def u(lo: float, hi: float) -> torch.Tensor:
            return torch.empty(n, device=dev, dtype=dt).uniform_(lo, hi)

        flip = torch.rand(n, device=dev) < self.hflip
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if mask is not None:
            mask = torch.where(flip[:, None, None, None], mask.flip(3), mask)
        ang = u(-self.rotate, self.rotate) * (math.pi / 180)
        sc = u(*self.scale)
        tx, ty = u(-self.translate, self.translate) * 2, u(-self.translate, self.translate) * 2
        cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if mask is not None:
            mask = F.grid_sample(mask.to(dt), grid, mode="nearest", padding_mode="zeros",
                                 align_corners=False).to(mask.dtype)
        x = x + u(-self.brightness, self.brightness)[:, None, None, None]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * u(1 - self.contrast, 1 + self.contrast)[:, None, None, None] + mean
        x = x.clamp(0, 1) ** u(*self.gamma)[:, None, None, None]
        if self.speckle > 0:
            noise = F.avg_pool2d(torch.randn(n, 1, h, w, device=dev, dtype=dt), 3, stride=1, padding=1) * 3.0
            x = x * (1 + u(0, self.speckle)[:, None, None, None] * noise)
        x = x.clamp(0, 1)
        return x if mask is None else (x, mask)
