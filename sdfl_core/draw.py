"""Annotators: draw landmarks, schema outlines, the landmark graph and face boxes on BGR frames.

Every function draws in place on a C-contiguous BGR uint8 image and returns it. Lines and circles are
anti-aliased with sub-pixel positions; points that are off the image or not finite are skipped or
clipped by OpenCV, never an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from sdfl_core.schemas import Schema
from sdfl_core.types import Detection, FrameResult

_SHIFT = 4
"""Fractional bits for OpenCV drawing: positions are drawn to 1/16 pixel."""
_ONE = 1 << _SHIFT
_LIMIT = 1 << 20
"""Coordinates are clipped to +-this many pixels so the fixed-point values stay within int32."""

Color = tuple[int, int, int]

LANDMARK_COLOR: Color = (0, 255, 0)
RAW_COLOR: Color = (0, 0, 255)
AGREE_COLOR: Color = (0, 255, 0)
DISAGREE_COLOR: Color = (0, 0, 255)
GRAPH_COLOR: Color = (255, 200, 0)
_TRACK_PALETTE: tuple[Color, ...] = (
    (255, 128, 0), (0, 200, 255), (255, 0, 200), (0, 255, 128), (128, 128, 255), (255, 255, 0), (0, 128, 255), (200, 0, 255),
)


@dataclass(frozen=True)
class DrawOptions:
    """What ``annotate`` draws."""

    landmarks: bool = True
    """Smoothed points (and the schema's outlines when a schema is given)."""
    raw: bool = False
    """Unsmoothed model output, as small red dots."""
    boxes: bool = True
    ids: bool = True
    """Track id and detection score above the box."""
    graph: bool = False
    """Edges of the adjacency mask."""
    weights: bool = False
    """Colour and thicken graph edges by the model's edge weights (implies ``graph``)."""
    indices: bool = False
    """Point numbers beside the landmarks."""
    visibility_threshold: float = 0.5
    """Points whose predicted visibility is below this are drawn hollow (a model with a visibility output;
    0 draws every point filled)."""


def _check_image(img: np.ndarray) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        shape = getattr(img, "shape", None)
        raise ValueError(f"expected a BGR uint8 image of shape (H, W, 3), got {type(img).__name__} {shape}")
    if not img.flags.c_contiguous or not img.flags.writeable:
        raise ValueError("image must be a writeable C-contiguous array to be drawn on in place")
    return img


def _check_points(points: np.ndarray, num_points: int | None = None) -> np.ndarray:
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {pts.shape}")
    if num_points is not None and pts.shape[0] != num_points:
        raise ValueError(f"got {pts.shape[0]} points, the schema/mask expects {num_points}")
    return pts


def _fixed(points: np.ndarray) -> np.ndarray:
    """Fixed-point integer positions for OpenCV's ``shift`` argument (non-finite entries become 0)."""
    clipped = np.clip(np.nan_to_num(points, nan=0.0, posinf=_LIMIT, neginf=-_LIMIT), -_LIMIT, _LIMIT)
    return np.round(clipped * _ONE).astype(np.int64)


def _segment(img: np.ndarray, p: np.ndarray, q: np.ndarray, color: Color, thickness: int) -> None:
    cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), color, thickness, cv2.LINE_AA, _SHIFT)


def draw_landmarks(
    img: np.ndarray,
    points: np.ndarray,
    schema: Schema | None = None,
    color: Color = LANDMARK_COLOR,
    radius: int = 2,
    indices: bool = False,
    hollow: np.ndarray | None = None,
) -> np.ndarray:
    """Filled dots at ``points`` (N, 2), rings where ``hollow`` (N,) bool is set (e.g. points the model
    says are covered); with a schema also its outlines (``draw_groups``) underneath."""
    _check_image(img)
    pts = _check_points(points, schema.num_points if schema is not None else None)
    ring = np.zeros(len(pts), bool) if hollow is None else np.asarray(hollow, bool)
    if ring.shape != (len(pts),):
        raise ValueError(f"hollow must have shape ({len(pts)},), got {ring.shape}")
    if schema is not None:
        draw_groups(img, pts, schema, color=color)
    h, w = img.shape[:2]
    finite = np.isfinite(pts).all(axis=1)
    with np.errstate(invalid="ignore"):
        inside_x = (pts[:, 0] > -radius - 1) & (pts[:, 0] < w + radius)
        inside_y = (pts[:, 1] > -radius - 1) & (pts[:, 1] < h + radius)
    visible = finite & inside_x & inside_y
    fixed = _fixed(pts)
    for i in np.flatnonzero(visible):
        centre = (int(fixed[i, 0]), int(fixed[i, 1]))
        if ring[i]:
            cv2.circle(img, centre, (radius + 1) * _ONE, color, 1, cv2.LINE_AA, _SHIFT)
        else:
            cv2.circle(img, centre, radius * _ONE, color, -1, cv2.LINE_AA, _SHIFT)
    if indices:
        for i in np.flatnonzero(visible):
            org = (int(round(pts[i, 0])) + radius + 1, int(round(pts[i, 1])) - radius - 1)
            cv2.putText(img, str(i), org, cv2.FONT_HERSHEY_SIMPLEX, 0.3, color, 1, cv2.LINE_AA)
    return img


def draw_groups(
    img: np.ndarray, points: np.ndarray, schema: Schema, color: Color = LANDMARK_COLOR, thickness: int = 1
) -> np.ndarray:
    """Polylines through ``schema.groups``, closed for the groups in ``schema.closed_groups``."""
    _check_image(img)
    pts = _check_points(points, schema.num_points)
    finite = np.isfinite(pts).all(axis=1)
    fixed = _fixed(pts)
    for name, group in schema.groups.items():
        idx = list(group)
        pairs = list(zip(idx[:-1], idx[1:]))
        if name in schema.closed_groups and len(idx) > 2:
            pairs.append((idx[-1], idx[0]))
        for a, b in pairs:
            if finite[a] and finite[b]:
                _segment(img, fixed[a], fixed[b], color, thickness)
    return img


@lru_cache(maxsize=8)
def colormap_lut(name: str = "viridis") -> np.ndarray:
    """(256, 3) uint8 BGR lookup table of an OpenCV colormap (``viridis``, ``magma``, ... : the same
    tables as matplotlib's, which the base install leaves out), built once per name."""
    code = getattr(cv2, f"COLORMAP_{name.upper()}", None)
    if code is None:
        raise ValueError(f"unknown colormap {name!r}")
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], code)[:, 0].copy()
    lut.setflags(write=False)
    return lut


def draw_graph(
    img: np.ndarray,
    points: np.ndarray,
    mask: np.ndarray,
    weights: np.ndarray | None = None,
    color: Color = GRAPH_COLOR,
    thickness: int = 1,
    max_thickness: int = 3,
    cmap: str = "viridis",
) -> np.ndarray:
    """Edges of the (N, N) adjacency ``mask`` between ``points``; self loops are not drawn.

    With ``weights`` (the (N, N) row-softmaxed edge weights, zero off the mask) an edge's weight is
    max(w_ij, w_ji), relative to the strongest edge of this face: the colormap runs from its low end to
    its high end and the thickness from ``thickness`` to ``max_thickness``. Strong edges are drawn last,
    on top. An (N, 0) weights array (FC-head model) counts as no weights.
    """
    _check_image(img)
    pts = _check_points(points)
    n = pts.shape[0]
    adj = np.asarray(mask)
    if adj.shape != (n, n):
        raise ValueError(f"mask must have shape ({n}, {n}) for {n} points, got {adj.shape}")
    adj = adj.astype(bool)
    adj = (adj | adj.T) & ~np.eye(n, dtype=bool)
    ii, jj = np.nonzero(np.triu(adj, k=1))
    finite = np.isfinite(pts).all(axis=1)
    keep = finite[ii] & finite[jj]
    ii, jj = ii[keep], jj[keep]
    fixed = _fixed(pts)

    w = None if weights is None else np.asarray(weights, np.float64)
    if w is not None and w.shape == (n, 0):
        w = None
    if w is None:
        for i, j in zip(ii, jj):
            _segment(img, fixed[i], fixed[j], color, thickness)
        return img
    if w.shape != (n, n):
        raise ValueError(f"weights must have shape ({n}, {n}) or ({n}, 0), got {w.shape}")
    edge_w = np.maximum(w[ii, jj], w[jj, ii])
    edge_w = np.nan_to_num(edge_w, nan=0.0)
    top = edge_w.max() if edge_w.size else 0.0
    rel = np.clip(edge_w / top, 0.0, 1.0) if top > 0 else np.zeros_like(edge_w)
    lut = colormap_lut(cmap)
    for k in np.argsort(rel, kind="stable"):
        c = tuple(int(v) for v in lut[int(round(rel[k] * 255))])
        t = int(round(thickness + rel[k] * (max_thickness - thickness)))
        _segment(img, fixed[ii[k]], fixed[jj[k]], c, max(t, 1))
    return img


def draw_box(
    img: np.ndarray,
    det: Detection,
    track_id: int | None = None,
    color: Color = (255, 128, 0),
    thickness: int = 2,
    label: bool = True,
) -> np.ndarray:
    """The detection box, its keypoints, and a '#id score' label above it (id only when given)."""
    _check_image(img)
    x0, y0, x1, y1 = det.xyxy.astype(np.float64)
    p0, p1 = _fixed(np.array([[x0, y0], [x1, y1]]))
    cv2.rectangle(img, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), color, thickness, cv2.LINE_AA, _SHIFT)
    for kp in _fixed(det.keypoints.astype(np.float64)):
        cv2.circle(img, (int(kp[0]), int(kp[1])), 2 * _ONE, color, -1, cv2.LINE_AA, _SHIFT)
    if label:
        text = f"{det.score:.2f}" if track_id is None else f"#{track_id} {det.score:.2f}"
        h = img.shape[0]
        x = int(np.clip(x0, 0, max(img.shape[1] - 1, 0)))
        y = int(np.clip(y0 - 4, 12, max(h - 1, 12)))
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return img


def draw_visibility_check(img: np.ndarray, points: np.ndarray, visibility: np.ndarray, covered: np.ndarray,
                          threshold: float = 0.5, radius: int = 3) -> np.ndarray:
    """Predicted visibility against a known cover: each point a ring where the model says it is covered
    (visibility below ``threshold``) and a dot where it says visible, green where that matches ``covered``
    (N,) bool and red where it does not. An empty ``visibility`` (no such output) draws nothing."""
    _check_image(img)
    pts = _check_points(points)
    vis = np.asarray(visibility, np.float64)
    if vis.size == 0:
        return img
    covered = np.asarray(covered, bool)
    if vis.shape != (len(pts),) or covered.shape != (len(pts),):
        raise ValueError(f"visibility and covered must have shape ({len(pts)},), got {vis.shape} and {covered.shape}")
    said_covered = vis < threshold
    for agree, color in ((True, AGREE_COLOR), (False, DISAGREE_COLOR)):
        sel = (said_covered == covered) == agree
        draw_landmarks(img, pts[sel], color=color, radius=radius - 1, hollow=said_covered[sel])
    return img


def track_color(track_id: int) -> Color:
    """A stable colour per track id."""
    return _TRACK_PALETTE[int(track_id) % len(_TRACK_PALETTE)]


def annotate(
    frame: np.ndarray,
    result: FrameResult,
    schema: Schema | None = None,
    mask: np.ndarray | None = None,
    options: DrawOptions = DrawOptions(),
) -> np.ndarray:
    """Draw every track of ``result`` on ``frame`` as ``options`` says.

    The graph uses ``mask`` when given, else the non-zero pattern of the track's edge weights; it is
    skipped when neither is available.
    """
    _check_image(frame)
    for track in result.tracks:
        points = track.smoothed
        if options.graph or options.weights:
            weights = track.raw.edge_weights if options.weights else None
            if weights is not None and weights.shape[1] == 0:
                weights = None
            graph_mask = mask if mask is not None else (weights > 0 if weights is not None else None)
            if graph_mask is not None:
                draw_graph(frame, points, graph_mask, weights)
        if options.boxes:
            track_id = track.track_id if options.ids else None
            draw_box(frame, track.detection, track_id, color=track_color(track.track_id), label=options.ids)
        if options.raw:
            draw_landmarks(frame, track.raw.points, color=RAW_COLOR, radius=1)
        if options.landmarks:
            use_schema = schema if schema is not None and schema.num_points == points.shape[0] else None
            draw_landmarks(frame, points, use_schema, indices=options.indices,
                           hollow=track.raw.occluded(options.visibility_threshold))
        elif options.indices:
            draw_landmarks(frame, points, radius=0, indices=True)
    return frame
