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

Ultrasound-specific extras, each off by default (0) and drawn only when on, so the default augmentation is unchanged
(issue 14: other centres' gain, depth and annotations): ``depth`` (a zoom anchored at the top edge, as a shallower
depth setting magnifies the near field under the transducer), ``tgc`` (a smooth random time-gain-compensation
curve, a gain that varies with depth), ``blur`` (Gaussian blur, another probe's resolution) and ``calipers``
(synthetic caliper crosses and a dotted measurement line burned into the image, so a model learns to ignore the
marks some centres leave on their images).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from nodescope.errors import ConfigError

__all__ = ["AugmentLevel", "UltrasoundAugment", "augmentation"]

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
    depth : float, default 0
        Max extra magnification anchored at the top edge: scale ``1 + U(0, depth)`` about the top centre.
    tgc : float, default 0
        Time-gain compensation: each image is multiplied row by row by ``exp(a t + b (t^2 - 1/3))``, ``t`` the
        depth from -1 (top) to 1 (bottom), ``a, b ~ U(-tgc, tgc)``.
    blur : float, default 0
        Max Gaussian sigma in pixels (``U(0, blur)`` per image, applied to half of the images).
    calipers : float, default 0
        Probability that an image gets two caliper crosses (bright ``+`` marks of 7 % of the side) joined by a
        dotted line.
    """

    hflip: float = 0.5
    rotate: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.2
    gamma: tuple[float, float] = (0.8, 1.25)
    speckle: float = 0.1
    depth: float = 0.0
    tgc: float = 0.0
    blur: float = 0.0
    calipers: float = 0.0

    def __post_init__(self) -> None:
        for name in ("depth", "tgc", "blur", "calipers"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"augment {name}: expected a finite value >= 0, got {v!r}")
        if self.calipers > 1:
            raise ConfigError(f"augment calipers: a probability in [0, 1], got {self.calipers!r}")

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
        if self.depth > 0 or self.tgc > 0 or self.blur > 0 or self.calipers > 0:
            x, mask = self._extras(x, mask)
        return x if mask is None else (x, mask)

    def _extras(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The ultrasound-specific steps (depth, TGC, blur, calipers), each drawn only when on."""
        n, c, h, w = x.shape
        dev, dt = x.device, x.dtype
        if self.depth > 0:
            z = 1 + torch.rand(n, device=dev, dtype=dt) * self.depth
            zero = torch.zeros_like(z)
            # sample y' = y / z + (1 / z - 1): the top row (y = -1) stays the top row
            theta = torch.stack([torch.stack([1 / z, zero, zero], 1), torch.stack([zero, 1 / z, 1 / z - 1], 1)], 1)
            grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            if mask is not None:
                mask = F.grid_sample(mask.to(dt), grid, mode="nearest", padding_mode="zeros",
                                     align_corners=False).to(mask.dtype)
        if self.tgc > 0:
            t = torch.linspace(-1, 1, h, device=dev, dtype=dt)
            a = (torch.rand(n, 1, device=dev, dtype=dt) * 2 - 1) * self.tgc
            b = (torch.rand(n, 1, device=dev, dtype=dt) * 2 - 1) * self.tgc
            x = x * torch.exp(a * t + b * (t**2 - 1 / 3))[:, None, :, None]
        if self.blur > 0:
            x = _gaussian_blur(x, torch.rand(n, device=dev, dtype=dt) * self.blur
                               * (torch.rand(n, device=dev) < 0.5).to(dt))
        if self.calipers > 0:
            x = _draw_calipers(x, torch.rand(n, device=dev) < self.calipers)
        return x.clamp(0, 1), mask


def augmentation(cfg: Any) -> UltrasoundAugment | None:
    """The augmentation of a :class:`~nodescope.training.TrainConfig`: its ``augment`` level plus the extras
    ``aug_depth``, ``aug_tgc``, ``aug_blur``, ``aug_calipers`` (``None`` for level ``none``)."""
    base = UltrasoundAugment.from_level(cfg.augment)
    extras = {"depth": cfg.aug_depth, "tgc": cfg.aug_tgc, "blur": cfg.aug_blur, "calipers": cfg.aug_calipers}
    if base is None:
        return None
    return dataclasses.replace(base, **extras)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-image sigma ``(N,)`` in pixels (0: unchanged); reflect padding."""
    radius = max(1, math.ceil(3 * float(sigma.max())))
    offs = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.clamp_min(1e-3)[:, None]
    k = torch.exp(-(offs[None] ** 2) / (2 * s**2))
    k = k / k.sum(1, keepdim=True)  # (N, K); sigma ~ 0 gives a delta
    n, c, h, w = x.shape
    if radius >= min(h, w):
        return x
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, 0, 0), mode="reflect")
    kk = k.repeat_interleave(c, 0)
    y = F.conv2d(y, kk[:, None, None, :], groups=n * c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    y = F.conv2d(y, kk[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def _draw_calipers(x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Burn two bright caliper crosses and a dotted line between them into the images where ``which`` is set."""
    h, w = x.shape[-2:]
    arm = max(2, round(0.035 * min(h, w)))
    out = x.clone()
    for i in torch.nonzero(which).flatten().tolist():
        pts = [(int(torch.randint(arm, h - arm, ())), int(torch.randint(arm, w - arm, ()))) for _ in range(2)]
        for r, col in pts:
            out[i, :, r, col - arm:col + arm + 1] = 1.0
            out[i, :, r - arm:r + arm + 1, col] = 1.0
        (r0, c0), (r1, c1) = pts
        steps = max(abs(r1 - r0), abs(c1 - c0)) // 3
        for k in range(1, steps):
            out[i, :, r0 + (r1 - r0) * k // steps, c0 + (c1 - c0) * k // steps] = 1.0
    return out
