"""Rendering of one synthetic lymph node: B-mode, colour Doppler overlay, strain-elastography overlay.

Imaging chain of the B-mode frame (rows = depth, columns = lateral position, linear probe)::

    I(y, x) = R(y, x) * T(y, x) * TGC(y) * g * E(y, x)
    T(y, x) = exp(-sum_{y' < y} alpha(y', x))            (depth attenuation; shadowing / enhancement)
    TGC(y)  = exp(0.75 * alpha_0 * y)                     (time-gain compensation, partial)
    E       = |h * (n_1 + i n_2)|                        (correlated Rayleigh speckle; h anisotropic Gaussian PSF)
    grey    = 255 * clip((20 log10 I - (L_ref - DR)) / DR, 0, 1)

with ``R`` the tissue reflectivity map (layered soft tissue, fascia, skin line, optional vein, and the node:
hypoechoic cortex, echogenic fatty hilum, reticular septa, calcifications, cystic necrosis), ``alpha`` the
attenuation per pixel (lower in hypoechoic/cystic tissue, very high in calcifications), ``g`` the site gain and
``DR`` the site dynamic range. Lengths are given for a 128-pixel image and scaled with the image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["Geometry", "NodeParams", "block_mean", "render_bmode", "render_doppler", "render_elastography",
           "render_factor"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NodeParams:
    """The generating parameters of one node (written to the manifest as ``synth_*`` columns)."""

    short_axis_mm: float
    ls_ratio: float
    echo: float
    hilum: bool
    hilum_width: float
    bulge: float
    heterogeneity: float
    margin_blur: float
    irregularity: float
    reticular: bool
    calcification: bool
    necrosis: bool
    doppler_pattern: str
    vascularity: int
    elasto_score: int
    fov_mm: float


@dataclass(frozen=True)
class Geometry:
    """Where the node lies in the frame (shared by the three modalities)."""

    size: int
    scale: float  # size / 128
    mm_per_px: float
    cx: float
    cy: float
    theta: float
    a_px: float  # half long axis
    b_px: float  # half short axis
    u: FloatArray  # node coordinates, long axis (1 = boundary of the ellipse)
    v: FloatArray  # node coordinates, short axis
    radius: FloatArray  # boundary radius R(phi) in node coordinates
    mask: NDArray[np.bool_]
    hilum_side: float  # +1 / -1: side (along v) where the hilum and the hilar vessels enter
    hilum_offset: float

    def to_pixels(self, u: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Node coordinates -> (x, y) pixel coordinates."""
        c, s = math.cos(self.theta), math.sin(self.theta)
        x = self.cx + self.a_px * u * c - self.b_px * v * s
        y = self.cy + self.a_px * u * s + self.b_px * v * c
        return x, y

    def box(self, pad: float) -> tuple[int, int, int, int]:
        """Axis-aligned box ``(y0, y1, x0, x1)`` around the node, enlarged by ``pad`` x its half extent."""
        c, s = math.cos(self.theta), math.sin(self.theta)
        ex = math.hypot(self.a_px * c, self.b_px * s) * (1.0 + pad)
        ey = math.hypot(self.a_px * s, self.b_px * c) * (1.0 + pad)
        y0 = max(1, int(self.cy - ey))
        y1 = min(self.size - 2, math.ceil(self.cy + ey))
        x0 = max(1, int(self.cx - ex))
        x1 = min(self.size - 2, math.ceil(self.cx + ex))
        return y0, y1, x0, x1


#: Images are rendered with at least this many pixels a side, then block-averaged to the size asked for.
MIN_RENDER_SIZE = 192


def render_factor(size: int) -> int:
    """The integer factor ``f`` such that an image of side ``size`` is rendered at ``f * size >= MIN_RENDER_SIZE``.

    A real frame has ~500 pixels a side and speckle cells smaller than a millimetre; a network sees it resized to
    64-128 pixels, where each pixel averages several speckle cells and a 1 mm vessel covers part of a pixel. Rendering
    small images directly would give one independent speckle sample per pixel and vessels thresholded to whole
    pixels; rendering larger and averaging gives what the resized scan would show.
    """
    return max(1, math.ceil(MIN_RENDER_SIZE / size))


def block_mean(arr: NDArray, factor: int) -> FloatArray:
    """Mean over non-overlapping ``factor x factor`` blocks: ``(f*S, f*S[, C])`` -> ``(S, S[, C])`` float."""
    if factor == 1:
        return np.asarray(arr, dtype=np.float64)
    h, w = arr.shape[:2]
    a = np.asarray(arr, dtype=np.float64).reshape(h // factor, factor, w // factor, factor, *arr.shape[2:])
    return a.mean(axis=(1, 3))


def _sigmoid(z: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> FloatArray:
    """Gaussian-filtered white noise rescaled to zero mean, unit standard deviation."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (f - f.mean()) / (f.std() + 1e-12)


def _wrap(angle: FloatArray) -> FloatArray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def render_bmode(
    node: NodeParams, size: int, site: dict[str, float], rng: np.random.Generator
) -> tuple[NDArray[np.uint8], Geometry]:
    """Render the grey B-mode frame ``(size, size, 1)`` uint8 and return the node geometry."""
    k = size / 128.0
    mm_per_px = node.fov_mm / size
    a = node.short_axis_mm * node.ls_ratio / 2.0 / mm_per_px
    b = node.short_axis_mm / 2.0 / mm_per_px
    cx = size * rng.uniform(0.40, 0.60)
    cy = size * rng.uniform(0.42, 0.58)
    theta = float(np.clip(rng.normal(0.0, 0.2), -0.5, 0.5))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c, s = math.cos(theta), math.sin(theta)
    dx, dy = xx - cx, yy - cy
    u = (dx * c + dy * s) / a
    v = (-dx * s + dy * c) / b
    rho = np.hypot(u, v)
    phi = np.arctan2(v, u)

    # Boundary: ellipse + irregular lobulation + eccentric cortical bulge on one side of the short axis.
    radius = np.ones_like(rho)
    for order in range(3, 8):
        radius += node.irregularity * rng.normal() / math.sqrt(2.5) * np.cos(order * phi + rng.uniform(0, 2 * np.pi))
    bulge_side = float(rng.choice([-1.0, 1.0]))
    bulge_angle = bulge_side * np.pi / 2 + rng.normal(0.0, 0.5)
    radius += node.bulge * np.exp(-_wrap(phi - bulge_angle) ** 2 / (2 * 0.55**2))
    grad = np.hypot(*np.gradient(rho)) + 1e-9
    dist = (rho - radius) / grad  # ~ signed distance to the boundary in pixels
    blur = node.margin_blur * k
    inside = _sigmoid(-dist / max(blur, 0.25))
    mask = dist < 0

    # Background soft tissue: horizontal striations (fat septa / muscle fibres), fascia lines, skin line.
    refl = 1.0 + 0.3 * _smooth_noise(rng, (size, size), (0.8 * k, 7.0 * k))
    for _ in range(int(rng.integers(1, 3))):
        y_f = size * rng.uniform(0.12, 0.95) + 2.5 * k * np.sin(2 * np.pi * xx / (size * rng.uniform(0.6, 1.5))
                                                                 + rng.uniform(0, 2 * np.pi))
        refl += rng.uniform(0.8, 1.6) * np.exp(-(((yy - y_f) / (0.9 * k)) ** 2))
    refl += 2.0 * _sigmoid((3.0 * k - yy) / (0.7 * k))  # skin / transducer interface
    refl = np.clip(refl, 0.15, None)
    atten = np.full((size, size), 1.6 / size)

    # Optional vein below or above the node (anechoic tube, class-independent).
    vein = np.zeros((size, size), dtype=bool)
    if rng.random() < 0.35:
        bv = rng.uniform(3.0, 6.0) * k
        av = rng.uniform(3.0, 6.0) * bv
        ext_y = math.hypot(a * s, b * c) * 1.25
        yv_below = cy + ext_y + bv + 3 * k
        yv_above = cy - ext_y - bv - 3 * k
        yv = yv_below if yv_below < size - bv - 2 else (yv_above if yv_above > 8 * k + bv else None)
        if yv is not None:
            xv = size * rng.uniform(0.25, 0.75)
            vein = ((xx - xv) / av) ** 2 + ((yy - yv) / bv) ** 2 < 1.0
            refl = np.where(vein, 0.06, refl)
            wall = np.abs(np.hypot((xx - xv) / av, (yy - yv) / bv) - 1.0) < 0.9 * k / bv
            refl = np.where(wall & ~vein, refl + 0.8, refl)
            atten = np.where(vein, 0.15 / size, atten)

    # Node: cortex, hilum, reticular septa, heterogeneity, necrosis, calcification.
    cortex = node.echo * np.exp(node.heterogeneity * _smooth_noise(rng, (size, size), 2.5 * k))
    if node.reticular:
        band = _smooth_noise(rng, (size, size), 1.6 * k) - 0.8 * _smooth_noise(rng, (size, size), 3.5 * k)
        septa = np.exp(-((band / (0.28 * band.std())) ** 2))
        cortex = cortex * (1.0 + 3.0 * septa)
    hilum_offset = -bulge_side * (0.15 + 1.2 * node.bulge) * (1.0 - node.hilum_width)
    hilum_side = -bulge_side
    hilum_map = np.zeros_like(rho)
    if node.hilum:
        hl = rng.uniform(0.55, 0.8)
        hr = np.hypot(u / hl, (v - hilum_offset) / node.hilum_width)
        channel = _sigmoid((0.14 - np.abs(u)) / 0.04) * _sigmoid((hilum_side * (v - hilum_offset)) / 0.05)
        hilum_map = np.maximum(_sigmoid((1.0 - hr) / 0.12), channel) * inside
        cortex_band = _sigmoid((radius - rho) / 0.05)
        hilum_map = hilum_map * (0.35 + 0.65 * cortex_band)
    hilum_refl = 1.7 * np.exp(0.25 * _smooth_noise(rng, (size, size), 0.8 * k))
    node_refl = cortex * (1.0 - hilum_map) + hilum_refl * hilum_map
    node_att = (0.45 + 0.55 * min(node.echo, 1.0)) * 1.6 / size * np.ones_like(rho)
    if node.necrosis:
        ang = rng.uniform(0, 2 * np.pi)
        rr = rng.uniform(0.0, 0.45)
        nu, nv = rr * math.cos(ang), rr * math.sin(ang)
        nr = rng.uniform(0.22, 0.4)
        lumpy = 1.0 + 0.25 * _smooth_noise(rng, (size, size), 2.0 * k)
        cyst = _sigmoid((1.0 - np.hypot(u - nu, v - nv) / nr * lumpy) / 0.08) * inside
        node_refl = node_refl * (1.0 - cyst) + 0.025 * cyst
        node_att = node_att * (1.0 - 0.85 * cyst)
    if node.calcification:
        for _ in range(int(rng.integers(1, 4))):
            ang, rr = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.7)
            px, py = (float(t) for t in _to_px(cx, cy, theta, a, b, rr * math.cos(ang), rr * math.sin(ang)))
            dot = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * (0.8 * k) ** 2))
            node_refl = node_refl + 5.0 * dot
            node_att = node_att + 0.9 * dot
    refl = refl * (1.0 - inside) + node_refl * inside
    atten = atten * (1.0 - inside) + node_att * inside

    # Imaging chain.
    trans = np.exp(-(np.cumsum(atten, axis=0) - atten))
    trans = ndimage.gaussian_filter1d(trans, 0.8 * k, axis=1)
    tgc = np.exp(0.75 * (1.6 / size) * yy)
    grain = site["grain"] * max(k, 0.6)
    env = np.abs(
        ndimage.gaussian_filter(rng.standard_normal((size, size)), (0.65 * grain, 1.3 * grain))
        + 1j * ndimage.gaussian_filter(rng.standard_normal((size, size)), (0.65 * grain, 1.3 * grain))
    )
    env /= math.sqrt(float(np.mean(env**2)))
    intensity = refl * trans * tgc * site["gain"] * env
    dr = site["dynamic_range"]
    ref_db = -1.0 + 0.5 * dr
    db = 20.0 * np.log10(intensity + 1e-6)
    grey = np.clip((db - (ref_db - dr)) / dr, 0.0, 1.0)
    grey = ndimage.gaussian_filter(grey, 0.35 * k)
    grey_u8 = np.round(255.0 * grey).astype(np.uint8)[..., None]

    geom = Geometry(size=size, scale=k, mm_per_px=mm_per_px, cx=cx, cy=cy, theta=theta, a_px=a, b_px=b, u=u, v=v,
                    radius=radius, mask=mask, hilum_side=hilum_side, hilum_offset=hilum_offset)
    return grey_u8, geom


def _to_px(cx: float, cy: float, theta: float, a: float, b: float, u: float, v: float) -> tuple[float, float]:
    c, s = math.cos(theta), math.sin(theta)
    return cx + a * u * c - b * v * s, cy + a * u * s + b * v * c


# --- colour Doppler -------------------------------------------------------------------------------------------


def _stroke(rng: np.random.Generator, ctrl: list[tuple[float, float]], wiggle: float, n: int = 64) -> FloatArray:
    """A smooth random curve through control points in node coordinates, ``(n, 2)`` of (u, v)."""
    pts = np.asarray(ctrl, dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)
    tc = np.linspace(0.0, 1.0, len(pts))
    uv = np.stack([np.interp(t, tc, pts[:, 0]), np.interp(t, tc, pts[:, 1])], axis=1)
    noise = ndimage.gaussian_filter1d(rng.standard_normal((n, 2)), 6.0, axis=0, mode="nearest")
    noise *= wiggle / (noise.std() + 1e-12) * np.sin(np.pi * t)[:, None]
    return uv + noise


def _vessel_strokes(geom: Geometry, node: NodeParams, rng: np.random.Generator) -> list[tuple[FloatArray, float, float]]:
    """Vessel centre lines ``(uv points, direction sign, width factor)`` for the node's vascular pattern."""
    out: list[tuple[FloatArray, float, float]] = []
    side, off = geom.hilum_side, geom.hilum_offset
    pattern, nv = node.doppler_pattern, node.vascularity

    def hilar(n_branches: int) -> None:
        entry = (rng.normal(0, 0.05), side * 1.15)
        for sign, du in ((1.0, -0.03), (-1.0, 0.03)):  # artery and vein side by side
            out.append((_stroke(rng, [(entry[0] + du, entry[1]), (du, off)], 0.03, 32), sign, 1.3))
            for end in (-0.7, 0.7):
                out.append((_stroke(rng, [(du, off), (end * 0.6, off + 0.05 * rng.normal()), (end, off)], 0.05), sign, 1.0))
        for _ in range(n_branches):
            u0 = rng.uniform(-0.6, 0.6)
            out.append((_stroke(rng, [(u0, off), (u0 + rng.normal(0, 0.15), rng.choice([-1, 1]) * rng.uniform(0.4, 0.75))],
                                0.05, 32), float(rng.choice([-1.0, 1.0])), 0.7))

    def peripheral(n_arcs: int) -> None:
        for _ in range(n_arcs):
            p0 = rng.uniform(0, 2 * np.pi)
            span = rng.uniform(0.5, 1.4)
            ang = np.linspace(p0, p0 + span, 6)
            r = rng.uniform(0.9, 1.08)
            out.append((_stroke(rng, [(r * math.cos(t), r * math.sin(t)) for t in ang], 0.03), float(rng.choice([-1.0, 1.0])), 0.9))
            t = p0 + rng.uniform(0, span)
            t2 = t + rng.normal(0, 0.3)
            depth = rng.uniform(0.4, 0.7)
            out.append((_stroke(rng, [(r * math.cos(t), r * math.sin(t)), (depth * math.cos(t2), depth * math.sin(t2))], 0.04, 32),
                        float(rng.choice([-1.0, 1.0])), 0.7))

    def chaotic(n_strokes: int) -> None:
        for _ in range(n_strokes):
            pts = [(rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8)) for _ in range(3)]
            out.append((_stroke(rng, pts, 0.08), float(rng.choice([-1.0, 1.0])), 0.8))

    if pattern == "hilar":
        hilar(nv)
    elif pattern == "peripheral":
        peripheral(max(1, nv))
    elif pattern == "mixed":
        hilar(max(0, nv // 2 - 1))
        peripheral(max(1, nv // 2))
        chaotic(max(1, nv // 3))
    return out


def render_doppler(
    grey: NDArray[np.uint8], geom: Geometry, node: NodeParams, site: dict[str, float], rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Colour Doppler frame ``(S, S, 3)`` uint8: the B-mode with red/blue flow inside a colour box."""
    size, k = geom.size, geom.scale
    rgb = np.repeat(grey, 3, axis=2).astype(np.float64)
    y0, y1, x0, x1 = geom.box(0.35)
    flows = {1.0: np.zeros((size, size)), -1.0: np.zeros((size, size))}
    step = 0.35
    for uv, sign, width in _vessel_strokes(geom, node, rng):
        x, y = geom.to_pixels(uv[:, 0], uv[:, 1])
        seg = np.hypot(np.diff(x), np.diff(y))
        t = np.concatenate([[0.0], np.cumsum(seg)])
        ts = np.arange(0.0, t[-1] + step, step)
        xs, ys = np.interp(ts, t, x), np.interp(ts, t, y)
        xi, yi = np.round(xs).astype(int), np.round(ys).astype(int)
        ok = (xi >= x0) & (xi <= x1) & (yi >= y0) & (yi <= y1)
        np.add.at(flows[sign], (yi[ok], xi[ok]), width * (1.0 + 0.3 * rng.standard_normal(int(ok.sum()))))
    sigma = 0.75 * k * site["bloom"]
    line_peak = (1.0 / step) / (math.sqrt(2 * np.pi) * sigma)
    vel = {sgn: np.clip(ndimage.gaussian_filter(f, sigma) / line_peak, 0.0, 1.5) for sgn, f in flows.items()}
    red, blue = vel[1.0], vel[-1.0]
    show_red = (red > 0.3) & (red >= blue)
    show_blue = (blue > 0.3) & (blue > red)
    vr = np.clip(red / 1.2, 0, 1)
    vb = np.clip(blue / 1.2, 0, 1)
    rgb[show_red] = np.stack([150 + 105 * vr, 10 + 200 * vr**2.5, 10 * vr], axis=-1)[show_red]
    rgb[show_blue] = np.stack([10 * vb, 40 + 200 * vb**2.5, 150 + 105 * vb], axis=-1)[show_blue]
    _box_outline(rgb, (y0, y1, x0, x1), (200.0, 200.0, 200.0))
    return np.round(np.clip(rgb, 0, 255)).astype(np.uint8)


def _box_outline(rgb: FloatArray, box: tuple[int, int, int, int], colour: tuple[float, float, float]) -> None:
    y0, y1, x0, x1 = box
    col = np.asarray(colour)
    rgb[y0, x0:x1 + 1] = col
    rgb[y1, x0:x1 + 1] = col
    rgb[y0:y1 + 1, x0] = col
    rgb[y0:y1 + 1, x1] = col


# --- strain elastography --------------------------------------------------------------------------------------

_HARD_FRACTION = {1: (0.0, 0.06), 2: (0.12, 0.42), 3: (0.5, 0.85), 4: (0.93, 1.0)}


def _strain_colours(strain: FloatArray) -> FloatArray:
    """Strain in [0, 1] (0 hard, 1 soft) -> RGB: blue (hard), green (intermediate), red (soft)."""
    s = np.clip(strain, 0.0, 1.0)
    r = np.clip(2.0 * s - 1.0, 0.0, 1.0)
    bl = np.clip(1.0 - 2.0 * s, 0.0, 1.0)
    g = 1.0 - r - bl
    return 255.0 * np.stack([r, g, bl], axis=-1)


def render_elastography(
    grey: NDArray[np.uint8], geom: Geometry, node: NodeParams, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Strain-elastography frame ``(S, S, 3)`` uint8: the B-mode with a colour strain map in a box."""
    size, k = geom.size, geom.scale
    rgb = np.repeat(grey, 3, axis=2).astype(np.float64)
    y0, y1, x0, x1 = geom.box(0.6)
    strain = 0.62 + 0.16 * _smooth_noise(rng, (size, size), 4.0 * k)
    lo, hi = _HARD_FRACTION[node.elasto_score]
    frac = rng.uniform(lo, hi)
    node_region = geom.mask
    pattern = _smooth_noise(rng, (size, size), 3.0 * k)
    if node.elasto_score == 4:
        # hard over the whole node; sometimes a softer rim
        pattern = pattern - 4.0 * (np.hypot(geom.u, geom.v) < 0.85 * geom.radius)
    if frac > 0 and node_region.any():
        thr = float(np.quantile(pattern[node_region], frac))
        hard = _sigmoid((thr - pattern) / 0.15) * node_region
    else:
        hard = np.zeros((size, size))
    node_strain = 0.55 + 0.12 * _smooth_noise(rng, (size, size), 2.0 * k)
    node_strain = node_strain * (1.0 - hard) + (0.06 + 0.05 * pattern.clip(-1, 1)) * hard
    inside = ndimage.gaussian_filter(node_region.astype(np.float64), 1.0 * k)
    strain = strain * (1.0 - inside) + node_strain * inside
    strain = ndimage.gaussian_filter(strain, 1.0 * k)
    colour = _strain_colours(strain)
    alpha = 0.55
    sl = (slice(y0, y1 + 1), slice(x0, x1 + 1))
    rgb[sl] = (1.0 - alpha) * rgb[sl] + alpha * colour[sl]
    _box_outline(rgb, (y0, y1, x0, x1), (230.0, 230.0, 230.0))
    return np.round(np.clip(rgb, 0, 255)).astype(np.uint8)
