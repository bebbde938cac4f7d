"""Result types that flow between pipeline stages: frozen, shape-checked, never ``None`` for 'nothing'."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _as_array(value, shape_tail: tuple[int, ...], name: str, dtype=np.float32) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim != len(shape_tail) or any(t != -1 and s != t for s, t in zip(arr.shape, shape_tail)):
        raise ValueError(f"{name} must have shape {tuple('*' if t == -1 else t for t in shape_tail)}, got {arr.shape}")
    return arr


@dataclass(frozen=True)
class Detection:
    """A face box in image pixels: (x, y, w, h), a score in [0, 1], and optional (K, 2) keypoints."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _as_array(self.box, (4,), "box"))
        object.__setattr__(self, "keypoints", _as_array(self.keypoints, (-1, 2), "keypoints"))
        if self.box[2] <= 0 or self.box[3] <= 0:
            raise ValueError(f"box width and height must be positive, got {self.box.tolist()}")
        object.__setattr__(self, "score", float(self.score))

    @property
    def xyxy(self) -> np.ndarray:
        x, y, w, h = self.box
        return np.array([x, y, x + w, y + h], np.float32)


@dataclass(frozen=True)
class Landmarks:
    """Landmarks of one face in image pixels, the edge weights the model used for it and its visibility.

    ``edge_weights`` is the (N, N) row-softmaxed adjacency (zero off the graph's edges); an FC-head model,
    which has no graph, gives an (N, 0) array. ``visibility`` is the (N,) probability that each point is
    visible (not covered); a model without a visibility output gives a (0,) array.
    """

    points: np.ndarray
    edge_weights: np.ndarray
    visibility: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        points = _as_array(self.points, (-1, 2), "points")
        object.__setattr__(self, "points", points)
        weights = np.asarray(self.edge_weights, np.float32)
        if weights.ndim != 2 or weights.shape[0] != points.shape[0] or weights.shape[1] not in (0, points.shape[0]):
            raise ValueError(f"edge_weights must be (N, N) or (N, 0) for N={points.shape[0]}, got {weights.shape}")
        object.__setattr__(self, "edge_weights", weights)
        visibility = np.asarray(self.visibility, np.float32)
        if visibility.shape not in ((0,), (points.shape[0],)):
            raise ValueError(f"visibility must be (N,) or (0,) for N={points.shape[0]}, got {visibility.shape}")
        if visibility.size and not ((visibility >= 0) & (visibility <= 1)).all():
            raise ValueError("visibility must be probabilities in [0, 1]")
        object.__setattr__(self, "visibility", visibility)

    @property
    def num_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def has_visibility(self) -> bool:
        return bool(self.visibility.size)

    def occluded(self, threshold: float = 0.5) -> np.ndarray:
        """(N,) bool: the points whose visibility is below ``threshold`` (none without a visibility output)."""
        if not self.has_visibility:
            return np.zeros(self.num_points, bool)
        return self.visibility < threshold


@dataclass(frozen=True)
class Track:
    """One tracked face in one frame."""

    track_id: int
    detection: Detection
    raw: Landmarks
    smoothed: np.ndarray
    age: int
    hits: int

    def __post_init__(self) -> None:
        smoothed = _as_array(self.smoothed, (-1, 2), "smoothed")
        if smoothed.shape != self.raw.points.shape:
            raise ValueError(f"smoothed points {smoothed.shape} must match raw points {self.raw.points.shape}")
        object.__setattr__(self, "smoothed", smoothed)


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline knows about one frame. A frame with no face has an empty ``tracks`` tuple."""

    index: int
    timestamp_ms: float
    tracks: tuple[Track, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    frame_size: tuple[int, int] = (0, 0)
    """(width, height) of the frame the results refer to."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracks", tuple(self.tracks))
