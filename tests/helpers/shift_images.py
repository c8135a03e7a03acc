"""Synthetic ultrasound-like images with known shifts, for the shift-diagnostics tests; a helper module."""

from __future__ import annotations

import math

import numpy as np

RAYLEIGH_SNR = math.sqrt(math.pi / (4 - math.pi))  # mean / SD of a Rayleigh variable: 1.913


def speckle(shape=(192, 256), sigma=45.0, seed=0) -> np.ndarray:
    """Fully developed speckle: a Rayleigh envelope, rounded to 8 bits."""
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rng.rayleigh(sigma, shape)), 0, 255).astype(np.uint8)


def tint(grey: np.ndarray) -> np.ndarray:
    """A bluish colour cast: R, G, B = 0.75, 0.85, 1.0 x grey (HSV hue 216 degrees)."""
    return np.stack([grey * 0.75, grey * 0.85, grey * 1.0], -1).round().astype(np.uint8)


def draw_crosses(img: np.ndarray, centres, arm: int = 6, value: int = 255) -> np.ndarray:
    """White caliper crosses ('+', 1 pixel thick, arms of ``arm`` pixels) at ``centres``."""
    out = img.copy()
    for y, x in centres:
        out[y - arm:y + arm + 1, x] = value
        out[y, x - arm:x + arm + 1] = value
    return out
