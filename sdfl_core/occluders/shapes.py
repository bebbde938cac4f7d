"""Shaped occluders of the robustness evaluation: what ``sdfl occlusion`` draws over each face.

Occluders are drawn in image space, so every model (whatever its input size or crop scale) sees the same
occluded pixels. A random occluder is a rectangle or an object-like blob (a smooth, jittered ellipse),
filled with a random colour or a texture patch cut from another image of the dataset, and scaled so that
it covers ``level`` percent of the face's landmark box. Part occluders cover a schema part (both eyes, the
mouth) or the image-left / image-right half of the landmark box. A landmark is occluded when the pixel
it falls on is under the occluder mask.

Everything random comes from the ``numpy.random.Generator`` passed in. All shape parameters are drawn
before the size is fitted, so generators seeded alike give nested occluders of one shape across levels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .. import crops
from ..schemas import Schema

SHAPES = ("rect", "blob")
PARTS = ("eyes", "mouth", "left_half", "right_half")
DEFAULT_LEVELS = (0, 10, 20, 30, 40, 50)

_SHIFT = 4  # fixed-point bits for cv2.fillPoly: sub-pixel polygons, so coverage varies smoothly with size
_BLOB_VERTICES = 48
_BLOB_HARMONICS = (2, 3, 4)
_BLOB_JITTER = 0.12  # per-harmonic radius amplitude; 3 x 0.12 keeps the radius positive (star-shaped)


@dataclass(frozen=True, eq=False)
class Occlusion:
    """One occluded image: the pixels, the occluder mask, per-point visibility and the box coverage."""

    image: np.ndarray
    """(H, W, 3) uint8 BGR, a new array (the input image is never modified)."""
    mask: np.ndarray
    """(H, W) bool, True where the occluder is."""
    visible: np.ndarray
    """(N,) bool, False for landmarks whose pixel is under the mask."""
    coverage: float
    """Occluded fraction of the landmark box, in [0, 1]."""
    target: str = "random"
    """'random' or the part name."""

    def __post_init__(self) -> None:
        image, mask, visible = np.asarray(self.image), np.asarray(self.mask), np.asarray(self.visible)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
        if mask.dtype != bool or mask.shape != image.shape[:2]:
            raise ValueError(f"mask must be a bool array of shape {image.shape[:2]}, got {mask.dtype} {mask.shape}")
        if visible.dtype != bool or visible.ndim != 1:
            raise ValueError(f"visible must be a (N,) bool array, got {visible.dtype} {visible.shape}")
        if not 0.0 <= self.coverage <= 1.0:
            raise ValueError(f"coverage must be in [0, 1], got {self.coverage}")


# ------------------------------------------------------------------------------------------ geometry


def box_region(box: np.ndarray, shape_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Inclusive pixel range (x0, y0, x1, y1) of the pixels whose centres lie in ``box``, clipped to the image."""
    x, y, w, h = np.asarray(box, np.float64)
    height, width = shape_hw
    x0, y0 = max(math.ceil(x), 0), max(math.ceil(y), 0)
    x1, y1 = min(math.floor(x + w), width - 1), min(math.floor(y + h), height - 1)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"face box {[round(float(v), 1) for v in (x, y, w, h)]} does not overlap the {width}x{height} image")
    return x0, y0, x1, y1


def box_coverage(mask: np.ndarray, box: np.ndarray) -> float:
    """Occluded fraction of the landmark box (x, y, w, h): mask pixels inside the box / box pixels."""
    mask = np.asarray(mask, bool)
    x0, y0, x1, y1 = box_region(box, mask.shape)
    return float(mask[y0 : y1 + 1, x0 : x1 + 1].mean())


def point_visibility(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) bool: False where the point's pixel (nearest pixel centre) is under ``mask``.

    Points off the image are visible (no occluder reaches them).
    """
    points = np.asarray(points, np.float64)
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    ij = np.round(np.nan_to_num(points, nan=-1.0)).astype(np.int64)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    occluded = np.zeros(len(points), bool)
    occluded[inside] = mask[ij[inside, 1], ij[inside, 0]]
    return ~occluded


def _fill_polygon(shape_hw: tuple[int, int], polygon: np.ndarray, offset=(0, 0)) -> np.ndarray:
    canvas = np.zeros(shape_hw, np.uint8)
    fixed = np.round((np.asarray(polygon, np.float64) - offset) * (1 << _SHIFT))
    fixed = np.clip(fixed, -(1 << 26), 1 << 26).astype(np.int32)
    cv2.fillPoly(canvas, [fixed.reshape(-1, 1, 2)], 1, cv2.LINE_8, _SHIFT)
    return canvas.astype(bool)


@dataclass(frozen=True)
class _ShapeDraw:
    """Every random number one occluder needs, drawn in a fixed order (see the module docstring)."""

    shape: str
    use_texture: bool
    color: tuple[int, int, int]
    texture_pick: float
    texture_offset: tuple[float, float]
    center: tuple[float, float]
    aspect: float
    angle: float
    harmonics: tuple[tuple[float, float], ...]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _ShapeDraw:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        use_texture = bool(rng.random() < 0.5)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        texture_pick, ox, oy = (float(v) for v in rng.random(3))
        cx, cy = (float(v) for v in rng.uniform(0.25, 0.75, 2))
        aspect = float(np.exp(rng.uniform(-0.5, 0.5)))
        angle = float(rng.uniform(-np.pi, np.pi))
        amps = rng.uniform(0.0, _BLOB_JITTER, len(_BLOB_HARMONICS))
        phases = rng.uniform(0.0, 2 * np.pi, len(_BLOB_HARMONICS))
        return cls(shape, use_texture, color, texture_pick, (ox, oy), (cx, cy), aspect, angle,
                   tuple(zip(amps.tolist(), phases.tolist())))

    def unit_polygon(self) -> np.ndarray:
        """The shape around the origin (radius ~1), stretched by the aspect ratio and rotated."""
        if self.shape == "rect":
            pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
            angle = self.angle / 8  # rectangles stay nearly upright, like a hand or a sign held up
        else:
            t = np.linspace(0, 2 * np.pi, _BLOB_VERTICES, endpoint=False)
            radius = np.ones_like(t)
            for k, (amp, phase) in zip(_BLOB_HARMONICS, self.harmonics):
                radius += amp * np.cos(k * t + phase)
            pts = np.stack([radius * np.cos(t), radius * np.sin(t)], 1)
            angle = self.angle
        pts = pts * [self.aspect, 1.0 / self.aspect]
        c, s = np.cos(angle), np.sin(angle)
        return pts @ np.array([[c, s], [-s, c]])

    def inradius(self) -> float:
        """A lower bound of the unit shape's distance from its centre to its outline."""
        shrink = 1.0 if self.shape == "rect" else 1.0 - sum(a for a, _ in self.harmonics)
        return min(self.aspect, 1.0 / self.aspect) * shrink


def _fit_polygon(unit: np.ndarray, center: np.ndarray, max_scale: float, region: tuple[int, int, int, int],
                 target: float, iterations: int = 24) -> np.ndarray:
    """The polygon ``center + s * unit`` whose coverage of ``region`` is closest to ``target``.

    The unit shape is star-shaped about the centre, so growing ``s`` only adds pixels and bisection works.
    """
    x0, y0, x1, y1 = region
    shape_hw = (y1 - y0 + 1, x1 - x0 + 1)

    def coverage(scale: float) -> float:
        return float(_fill_polygon(shape_hw, center + scale * unit, offset=(x0, y0)).mean())

    lo, hi = 0.0, max_scale
    cov_lo, cov_hi = 0.0, coverage(hi)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        cov = coverage(mid)
        if cov < target:
            lo, cov_lo = mid, cov
        else:
            hi, cov_hi = mid, cov
    best = lo if abs(cov_lo - target) <= abs(cov_hi - target) else hi
    return center + best * unit


def _texture_patch(textures: Sequence[np.ndarray], draw: _ShapeDraw, width: int, height: int) -> np.ndarray:
    """A (height, width, 3) patch cut from one of ``textures`` (upscaled first when it is too small)."""
    tex = textures[min(int(draw.texture_pick * len(textures)), len(textures) - 1)]
    th, tw = tex.shape[:2]
    grow = max(width / tw, height / th, 1.0)
    if grow > 1.0:
        tex = cv2.resize(tex, (math.ceil(tw * grow), math.ceil(th * grow)), interpolation=cv2.INTER_LINEAR)
        th, tw = tex.shape[:2]
    x = int(draw.texture_offset[0] * (tw - width + 1))
    y = int(draw.texture_offset[1] * (th - height + 1))
    return tex[y : y + height, x : x + width]


def _paint(image: np.ndarray, mask: np.ndarray, draw: _ShapeDraw, textures: Sequence[np.ndarray]) -> np.ndarray:
    out = image.copy()
    if not mask.any():
        return out
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    if draw.use_texture and len(textures):
        patch = _texture_patch(textures, draw, int(x1 - x0 + 1), int(y1 - y0 + 1))
        sub = out[y0 : y1 + 1, x0 : x1 + 1]
        sel = mask[y0 : y1 + 1, x0 : x1 + 1]
        sub[sel] = patch[sel]
    else:
        out[mask] = draw.color
    return out


def _check_inputs(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 BGR, got {image.dtype} {image.shape}")
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 2:
        raise ValueError(f"points must be (N, 2) with N >= 2, got {points.shape}")
    return image, points


# --------------------------------------------------------------------------------------- occluders


def occlude_random(image: np.ndarray, points: np.ndarray, level: float, rng: np.random.Generator,
                   textures: Sequence[np.ndarray] = ()) -> Occlusion:
    """Cover ``level`` percent (0-100) of the landmark box with one random occluder.

    The occluder's centre lies in the middle half of the box; its size is fitted by bisection so that the
    achieved coverage is within a pixel row or so of the level. ``textures`` (BGR images, e.g. other faces
    of the dataset) supply texture fills; without them every fill is a random colour.
    """
    image, points = _check_inputs(image, points)
    if not 0.0 <= level <= 100.0:
        raise ValueError(f"occlusion level must be a percentage in [0, 100], got {level}")
    draw = _ShapeDraw.draw(rng)  # drawn even at level 0 so the generator advances alike at every level
    box = crops.landmark_box(points)
    region = box_region(box, image.shape[:2])
    if level == 0:
        mask = np.zeros(image.shape[:2], bool)
        return Occlusion(image.copy(), mask, np.ones(len(points), bool), 0.0)
    x, y, w, h = np.asarray(box, np.float64)
    center = np.array([x + draw.center[0] * w, y + draw.center[1] * h])
    unit = draw.unit_polygon()
    # At this scale the shape's inscribed circle reaches every corner of the box: full coverage.
    max_scale = 1.05 * math.hypot(w + 2, h + 2) / draw.inradius()
    polygon = _fit_polygon(unit, center, max_scale, region, level / 100.0)
    mask = _fill_polygon(image.shape[:2], polygon)
    return Occlusion(_paint(image, mask, draw, textures), mask, point_visibility(points, mask), box_coverage(mask, box))


def part_groups(schema: Schema) -> dict[str, tuple[int, ...]]:
    """The schema's points for the named parts that have them: 'eyes' and 'mouth'."""
    groups = {}
    eyes = tuple(i for name in ("right_eye", "left_eye") for i in schema.groups.get(name, ()))
    if eyes:
        groups["eyes"] = eyes
    mouth = tuple(i for name in ("outer_lips", "inner_lips", "mouth") for i in schema.groups.get(name, ()))
    if mouth:
        groups["mouth"] = mouth
    return groups


def part_points(part: str, points: np.ndarray, schema: Schema) -> np.ndarray:
    """Indices of the points a part occluder targets.

    'eyes' / 'mouth' come from the schema's groups; 'left_half' / 'right_half' are the points in the
    image-left / image-right half of the landmark box (image sides, not the subject's).
    """
    points = np.asarray(points, np.float64)
    if part in ("left_half", "right_half"):
        x, _, w, _ = crops.landmark_box(points)
        middle = x + w / 2
        side = points[:, 0] <= middle if part == "left_half" else points[:, 0] >= middle
        return np.flatnonzero(side)
    groups = part_groups(schema)
    if part not in groups:
        raise ValueError(f"unknown part {part!r} for schema {schema.name} (valid: {', '.join(available_parts(schema))})")
    return np.asarray(groups[part], np.int64)


def available_parts(schema: Schema) -> tuple[str, ...]:
    groups = part_groups(schema)
    return tuple(p for p in PARTS if p in groups or p.endswith("_half"))


def occlude_part(image: np.ndarray, points: np.ndarray, part: str, schema: Schema, rng: np.random.Generator,
                 textures: Sequence[np.ndarray] = ()) -> Occlusion:
    """Cover one part: every target point (see :func:`part_points`) ends up under the occluder.

    Eyes and mouth get a rectangle or a blob around the part's points with a margin of a fraction of
    the landmark box (a blob circumscribes that rectangle, its jitter only outward); a half gets a
    rectangle over that half of the landmark box, reaching past its outer edges.
    """
    image, points = _check_inputs(image, points)
    if schema.num_points != len(points):
        raise ValueError(f"schema {schema.name} has {schema.num_points} points, got {len(points)}")
    draw = _ShapeDraw.draw(rng)
    box = crops.landmark_box(points)
    bx, by, bw, bh = np.asarray(box, np.float64)
    idx = part_points(part, points, schema)
    if part in ("left_half", "right_half"):
        middle = bx + bw / 2
        pad = 0.15 * max(bw, bh) + 2
        lo_x, hi_x = (bx - pad, middle + 1) if part == "left_half" else (middle - 1, bx + bw + pad)
        polygon = np.array([[lo_x, by - pad], [hi_x, by - pad], [hi_x, by + bh + pad], [lo_x, by + bh + pad]])
    else:
        target = points[idx]
        lo, hi = target.min(axis=0), target.max(axis=0)
        margin = np.array([0.08 * bw, 0.08 * bh]) + 1.5
        half = (hi - lo) / 2 + margin
        center = (lo + hi) / 2
        if draw.shape == "rect":
            polygon = center + half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
        else:
            # An axis-aligned ellipse through the rectangle's corners (x sqrt 2), jittered outward.
            t = np.linspace(0, 2 * np.pi, _BLOB_VERTICES, endpoint=False)
            radius = np.ones_like(t)
            for k, (amp, phase) in zip(_BLOB_HARMONICS, draw.harmonics):
                radius += np.abs(amp * np.cos(k * t + phase))
            # Polygon chords cut inside the true curve by at most 1 - cos(pi / V); grow to compensate.
            radius /= math.cos(math.pi / _BLOB_VERTICES)
            polygon = center + math.sqrt(2) * half * np.stack([radius * np.cos(t), radius * np.sin(t)], 1)
    mask = _fill_polygon(image.shape[:2], polygon)
    return Occlusion(_paint(image, mask, draw, textures), mask, point_visibility(points, mask),
                     box_coverage(mask, box), target=part)


def case_rng(seed: int, index: int, kind: str) -> np.random.Generator:
    """The generator for face ``index`` and occlusion ``kind`` ('random' or a part): same seed, same draws."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    code = 0 if kind == "random" else 1 + PARTS.index(kind)
    return np.random.default_rng([int(seed), int(index), code])
