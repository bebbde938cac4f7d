"""Synthetic occlusion of faces and the robustness evaluation behind ``sdfl occlusion``.

Occluders are drawn in image space, so every model (whatever its input size or crop scale) sees the same
occluded pixels. A random occluder is a rectangle or an object-like blob (a smooth, jittered ellipse),
filled with a random colour or a texture patch cut from another image of the dataset, and scaled so that
it covers ``level`` percent of the face's landmark box. Part occluders cover a schema part (both eyes, the
mouth) or the image-left / image-right half of the landmark box. A landmark is occluded when the pixel
it falls on is under the occluder mask.

Everything random comes from the ``numpy.random.Generator`` passed in. All shape parameters are drawn
before the size is fitted, so generators seeded alike give nested occluders of one shape across levels.

The dlib baseline (:class:`DlibModel`) is given a ``dlib.rectangle`` of the same ground-truth landmark box.
dlib's 68-point model was trained on boxes from its HOG face detector, which are roughly but not exactly
the landmark box, so its numbers here are slightly pessimistic compared with running it on its own boxes.
"""
from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

from . import crops
from .datasets import Sample, load_image
from .metrics import failure_rate, nme_io
from .schemas import Schema

log = logging.getLogger(__name__)

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
    def draw(cls, rng: np.random.Generator) -> "_ShapeDraw":
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


# ------------------------------------------------------------------------------------------ models


class Landmarker(Protocol):
    name: str
    num_points: int

    def predict(self, images: Sequence[np.ndarray], points_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, N, 2) image-pixel points for B images of one face, located by its ground-truth points, the
        (B, N, N) edge weights the model used ((B, N, 0) for a model without a graph) and the (B, N)
        probability that each point is visible ((B, 0) for a model without that output)."""


class PredictorModel:
    """An sdfl predictor (``predictor.load_predictor``) cropped the standard way from the gt box."""

    def __init__(self, predictor, name: str) -> None:
        self.predictor = predictor
        self.name = name
        self.num_points = int(predictor.info.config.num_points)

    def predict(self, images: Sequence[np.ndarray], points_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        info = self.predictor.info
        size = int(info.config.input_size)
        affine = crops.landmark_crop_affine(points_gt, info.crop_scale, size)
        batch = np.stack([crops.warp(img, affine, size) for img in images])
        units, weights, visibility = self.predictor.predict(batch)
        return crops.units_to_image(units, affine, size), np.asarray(weights), np.asarray(visibility)


def dlib_model_path() -> Path | None:
    """face_recognition_models' 68-point file, found without importing the package (it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return path
    return None


def dlib_available() -> bool:
    return importlib.util.find_spec("dlib") is not None and dlib_model_path() is not None


class DlibModel:
    """dlib's 68-point shape predictor, given the ground-truth landmark box (see the module docstring)."""

    name = "dlib"
    num_points = 68

    def __init__(self, model_path: str | Path | None = None) -> None:
        import dlib

        path = Path(model_path) if model_path else dlib_model_path()
        if path is None or not path.is_file():
            raise FileNotFoundError(f"dlib 68-point model not found: {path or 'face_recognition_models is not installed'}")
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(path))

    def predict(self, images: Sequence[np.ndarray], points_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y, w, h = crops.landmark_box(points_gt)
        rect = self._dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        out = []
        for img in images:
            rgb = np.ascontiguousarray(img[:, :, ::-1])
            shape = self._predictor(rgb, rect)
            out.append([(p.x, p.y) for p in shape.parts()])
        return (np.asarray(out, np.float32), np.zeros((len(out), self.num_points, 0), np.float32),
                np.zeros((len(out), 0), np.float32))


# -------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class OcclusionOptions:
    levels: tuple[int, ...] = DEFAULT_LEVELS
    """Random-occluder coverage levels, percent of the landmark box."""
    parts: bool = False
    """Also run the part occluders (eyes, mouth, left/right half)."""
    seed: int = 0
    texture_pool: int = 8
    """How many other dataset images (downscaled) supply texture fills."""
    example_index: int = 0
    """Which face (index into the kept samples) the example grid shows."""
    example_size: int = 160

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("at least one occlusion level is needed")
        if any(not 0 <= lv <= 100 for lv in self.levels):
            raise ValueError(f"occlusion levels must be percentages in [0, 100], got {list(self.levels)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class Row:
    """One (model, kind, level) result; NMEs are fractions of the inter-ocular distance (NaN when empty)."""

    model: str
    level: int
    kind: str
    count: int
    nme_visible: float
    nme_occluded: float
    nme_all: float
    fr_10: float
    coverage: float
    """Mean achieved coverage of the landmark box, fraction."""
    occluded_count: int
    """Images with at least one occluded point (the ones in the occluded mean)."""
    edge_occluded: float = float("nan")
    """Mean weight of the graph edges from a visible landmark to an occluded neighbour (self-loops left out),
    in the occluded image; NaN for a model without a graph or when no such edge exists."""
    edge_clean: float = float("nan")
    """The same edges' mean weight in the unoccluded image. ``edge_occluded < edge_clean`` means the model
    moves weight away from occluded neighbours; equal means the edge weighting ignores the occlusion."""


@dataclass(frozen=True, eq=False)
class OcclusionReport:
    rows: tuple[Row, ...]
    examples: dict
    """'crops': {level: display crop}, 'points': {model: {level: (N, 2) display-crop points}}, 'visible': {level: (N,)}."""


def texture_pool(samples: Sequence[Sample], count: int, rng: np.random.Generator, side: int = 256) -> list[tuple[int, np.ndarray]]:
    pool = []
    for i in rng.permutation(len(samples))[:count]:
        try:
            img = load_image(samples[int(i)])
        except (ValueError, FileNotFoundError):
            continue
        scale = side / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        pool.append((int(i), img))
    return pool


def visible_to_occluded_edges(mask: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N, N) bool: the edges i -> j of ``mask`` with i visible and j occluded, self-loops left out."""
    mask = np.asarray(mask, bool)
    visible = np.asarray(visible, bool)
    return mask & ~np.eye(len(visible), dtype=bool) & visible[:, None] & ~visible[None, :]


def _summarize(model: str, kind: str, level: int, pred, gt, visible, coverage, schema: Schema,
               edges: tuple[list, list] = ((), ())) -> Row:
    occluded_w = np.concatenate([np.ravel(v) for v in edges[0]] or [np.zeros(0)])
    clean_w = np.concatenate([np.ravel(v) for v in edges[1]] or [np.zeros(0)])
    pred, gt, visible = np.stack(pred), np.stack(gt), np.stack(visible)
    all_ = nme_io(pred, gt, schema)
    vis = nme_io(pred, gt, schema, point_mask=visible)
    occ = nme_io(pred, gt, schema, point_mask=~visible)
    has_occ = np.isfinite(occ)
    return Row(
        model=model, level=int(level), kind=kind, count=int(len(all_)),
        nme_visible=float(np.nanmean(vis)) if np.isfinite(vis).any() else float("nan"),
        nme_occluded=float(occ[has_occ].mean()) if has_occ.any() else float("nan"),
        nme_all=float(all_.mean()), fr_10=failure_rate(all_, 0.1),
        coverage=float(np.mean(coverage)), occluded_count=int(has_occ.sum()),
        edge_occluded=float(occluded_w.mean()) if occluded_w.size else float("nan"),
        edge_clean=float(clean_w.mean()) if clean_w.size else float("nan"),
    )


def evaluate_occlusion(models: Sequence[Landmarker], samples: Sequence[Sample], schema: Schema,
                       options: OcclusionOptions = OcclusionOptions(), progress=None) -> OcclusionReport:
    """Run every model on every face under every occlusion; one :class:`Row` per model, kind and level.

    Each face's occluded images are made once and given to all models. Unreadable images are skipped
    with a warning. ``progress`` (e.g. a tqdm bar) gets ``update(1)`` per face.
    """
    if not models:
        raise ValueError("no models to evaluate")
    if not samples:
        raise ValueError("no samples to evaluate")
    n = samples[0].num_points
    if schema.num_points != n:
        raise ValueError(f"schema {schema.name} has {schema.num_points} points but the data has {n}")
    for m in models:
        if m.num_points != n:
            raise ValueError(f"model {m.name} predicts {m.num_points} points but the data has {n} points per face")
    kinds: list[tuple[str, int | None]] = [("random", int(lv)) for lv in options.levels]
    if options.parts:
        kinds += [(p, None) for p in available_parts(schema)]
    pool = texture_pool(samples, options.texture_pool, np.random.default_rng([options.seed, 1 << 20]))
    results: dict[tuple[str, str, int | None], dict[str, list]] = {}
    examples: dict = {"crops": {}, "points": {m.name: {} for m in models}, "visible": {}}
    kept = 0
    for index, sample in enumerate(samples):
        try:
            image = load_image(sample)
        except (ValueError, FileNotFoundError) as exc:
            log.warning("skipping %s", exc)
            if progress is not None:
                progress.update(1)
            continue
        textures = [img for i, img in pool if i != index]
        occlusions = []
        for kind, level in kinds:
            rng = case_rng(options.seed, index, kind)
            if kind == "random":
                occlusions.append(occlude_random(image, sample.points, level, rng, textures))
            else:
                occlusions.append(occlude_part(image, sample.points, kind, schema, rng, textures))
        is_example = kept == options.example_index
        if is_example:
            size = options.example_size
            affine = crops.landmark_crop_affine(sample.points, 1.3, size)
        for m in models:
            # The clean image goes last in the batch: its edge weights are the reference for each occlusion's.
            pred, weights, visibility = m.predict([o.image for o in occlusions] + [image], sample.points)
            clean_edges = weights[-1] > 0 if weights.shape[-1] else None  # None: a model without a graph
            for i, ((kind, level), o, p) in enumerate(zip(kinds, occlusions, pred)):
                bucket = results.setdefault((m.name, kind, level), {"pred": [], "gt": [], "visible": [], "coverage": [],
                                                                    "edges": ([], [])})
                bucket["pred"].append(p)
                bucket["gt"].append(sample.points)
                bucket["visible"].append(o.visible)
                bucket["coverage"].append(o.coverage)
                if clean_edges is not None:
                    sel = visible_to_occluded_edges(clean_edges, o.visible)
                    bucket["edges"][0].append(weights[i][sel])
                    bucket["edges"][1].append(weights[-1][sel])
                if is_example and kind == "random":
                    examples["points"][m.name][level] = crops.transform_points(p, affine)
        if is_example:
            for (kind, level), o in zip(kinds, occlusions):
                if kind == "random":
                    examples["crops"][level] = crops.warp(o.image, affine, size)
                    examples["visible"][level] = o.visible
        kept += 1
        if progress is not None:
            progress.update(1)
    if not kept:
        raise ValueError("none of the images could be read")
    rows = []
    for m in models:
        for kind, level in kinds:
            b = results[(m.name, kind, level)]
            shown_level = level if level is not None else int(round(100 * float(np.mean(b["coverage"]))))
            rows.append(_summarize(m.name, kind, shown_level, b["pred"], b["gt"], b["visible"], b["coverage"], schema,
                                   b["edges"]))
    return OcclusionReport(tuple(rows), examples)


# ------------------------------------------------------------------------------------------ outputs

CSV_COLUMNS = ("model", "level", "kind", "count", "nme_visible", "nme_occluded", "nme_all", "fr_10",
               "edge_occluded", "edge_clean")


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def write_csv(path: str | Path, rows: Sequence[Row]) -> None:
    """One line per row; NMEs and FR as fractions, an empty cell where there is nothing to average."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow([r.model, r.level, r.kind, r.count]
                            + ["" if not np.isfinite(v) else f"{v:.6f}"
                               for v in (r.nme_visible, r.nme_occluded, r.nme_all, r.fr_10, r.edge_occluded, r.edge_clean)])


def report_json(rows: Sequence[Row]) -> dict:
    """{model: [{level, count, nme_visible, nme_occluded, nme_all, fr_10, edge_occluded, edge_clean}, ...]}
    for the random occluders.

    Values are fractions; a value with nothing to average (no occluded point at level 0, edge weights of
    a model without a graph) is null.
    """
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r.kind != "random":
            continue
        out.setdefault(r.model, []).append({
            "level": int(r.level), "count": r.count,
            "nme_visible": _finite_or_none(r.nme_visible), "nme_occluded": _finite_or_none(r.nme_occluded),
            "nme_all": _finite_or_none(r.nme_all), "fr_10": r.fr_10,
            "edge_occluded": _finite_or_none(r.edge_occluded), "edge_clean": _finite_or_none(r.edge_clean),
        })
    return out


def plot_curves(path: str | Path, rows: Sequence[Row]) -> None:
    """NME (%) vs occluded %: one colour per model, visible points solid, occluded points dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.5))
    models = list(dict.fromkeys(r.model for r in rows))
    for i, model in enumerate(models):
        sel = sorted((r for r in rows if r.model == model and r.kind == "random"), key=lambda r: r.level)
        color = f"C{i}"
        levels = [r.level for r in sel]
        ax.plot(levels, [100 * r.nme_visible for r in sel], "-o", color=color, label=f"{model} visible")
        occ = [(r.level, 100 * r.nme_occluded) for r in sel if np.isfinite(r.nme_occluded)]
        if occ:
            ax.plot(*zip(*occ), "--s", color=color, label=f"{model} occluded")
    ax.set_xlabel("occluded area of the face box (%)")
    ax.set_ylabel("NME (% of inter-ocular distance)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_examples(path: str | Path, examples: dict) -> None:
    """Fig. 2 style grid: rows = levels, columns = models, one face; predicted points green where the
    ground-truth point is visible and red where it is occluded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .draw import draw_landmarks

    levels = sorted(examples["crops"])
    models = list(examples["points"])
    if not levels or not models:
        raise ValueError("no example face to draw")
    fig, axes = plt.subplots(len(levels), len(models), figsize=(2.2 * len(models), 2.2 * len(levels)), squeeze=False)
    for r, level in enumerate(levels):
        visible = examples["visible"][level]
        for c, model in enumerate(models):
            img = np.ascontiguousarray(examples["crops"][level].copy())
            pts = examples["points"][model][level]
            draw_landmarks(img, pts[visible], color=(0, 255, 0), radius=1)
            draw_landmarks(img, pts[~visible], color=(0, 0, 255), radius=1)
            ax = axes[r, c]
            ax.imshow(img[:, :, ::-1])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(model, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{level}%", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
