"""Multi-face tracker: IoU association (Hungarian), stable ids, and a Kalman smoother per face.

Pure numpy/scipy/filterpy, norfair-style: no drawing here (see ``sdfl_core.draw``), and the per-track
filter is pluggable through ``TrackerOptions.filter_factory``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment

from sdfl_core.types import Detection, Landmarks, Track

if TYPE_CHECKING:
    from filterpy.kalman import KalmanFilter

log = logging.getLogger(__name__)

MEASUREMENT_STD = 0.01
"""Assumed landmark noise as a fraction of face size; only the noise *ratio* sets the smoothing, this
fixes the units so that the filter's covariances scale with the face."""

INITIAL_VELOCITY_STD = 0.1
"""Prior uncertainty of a new track's velocity, as a fraction of face size per frame."""


def _tracking_index(smoothing: float) -> float:
    """Process-to-measurement noise ratio for a ``smoothing`` knob in [0, 1].

    Log-linear from 10 (the filter almost follows the measurement) to 1e-3 (heavy smoothing); 0.5 gives
    0.1, which cuts the frame-to-frame jitter of a static point about fourfold.
    """
    return float(10.0 ** (1.0 - 4.0 * smoothing))


def smoothing_knob(smoothing: float, off: bool = False) -> float:
    """The smoothing value for a user's ``smoothing`` and an "off" switch (``--no-smooth``): 0 when off;
    ``smoothing`` is checked either way."""
    smoothing = _check_smoothing(smoothing)
    return 0.0 if off else smoothing


def _check_smoothing(smoothing: float) -> float:
    smoothing = float(smoothing)
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing}")
    return smoothing


MIN_VISIBILITY = 1e-3
"""Floor of the visibility that scales a point's measurement variance, ``R = sigma^2 / max(v, floor)``: a
point the model is sure it cannot see counts 1000x less than a visible one, never nothing, so a point that
stays hidden still drifts back to the measurement as the track's uncertainty grows."""


class PointFilter(Protocol):
    """What ``TrackerOptions.filter_factory`` must build: a smoother for one face's (N, 2) points.

    ``visibility`` is the model's (N,) probability that each point is visible, or None for a model
    without that output; a filter may ignore it."""

    smoothing: float

    def update(self, points: np.ndarray, scale: float, visibility: np.ndarray | None = None) -> np.ndarray: ...

    def predict(self) -> np.ndarray: ...


def _constant_velocity(num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """F and H of N independent constant-velocity points in the layout of the visibility-weighted filter:
    state rows 0..N-1 positions, N..2N-1 velocities; columns image x and y."""
    eye = np.eye(num_points)
    return np.kron(np.array([[1.0, 1.0], [0.0, 1.0]]), eye), np.hstack([eye, np.zeros_like(eye)])


class KalmanSmoother:
    """Constant-velocity Kalman smoother over the N points of one face.

    Without visibility all points share the same motion model, noise and update schedule, so their
    covariances and Kalman gains are identical: one filterpy ``KalmanFilter`` with a 4-state model
    (x, y, vx, vy) carries the N points as the N columns of its state matrix (4, N). That is exactly N
    independent filters, at the cost of one 4x4 filter plus a (4, N) matrix product per frame.

    With visibility (the first update says which) each point's measurement noise is its own,
    ``R_i = sigma^2 / max(v_i, MIN_VISIBILITY)``, given to filterpy per update (``update(z, R=...)``):
    an occluded point leans on its track, a visible one on the measurement. The points' gains then
    differ, so the filter carries them as the rows of a (2N, 2) state (positions, then velocities; x and
    y share a point's gain) with a 2N x 2N covariance that stays block-diagonal per point: still N
    independent filters, at the cost of 2N x 2N products (docs/benchmarks/notes.md has the time).

    Noise is expressed in units of ``scale`` (the face size in pixels), so a given ``smoothing`` behaves
    the same at any resolution or distance from the camera.
    """

    def __init__(self, smoothing: float = 0.5) -> None:
        self._smoothing = _check_smoothing(smoothing)
        self._kf: KalmanFilter | None = None
        self._first: tuple[np.ndarray, float] = (np.zeros((0, 2)), 0.0)
        self._weighted = False
        self._scale = 0.0
        self._num_points = -1
        self._predicted = False

    @property
    def smoothing(self) -> float:
        return self._smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self._smoothing = _check_smoothing(value)
        if self._kf is not None and self._scale > 0:
            self._set_noise(self._scale)

    @property
    def num_points(self) -> int:
        """Points the filter is tracking, -1 before the first update."""
        return self._num_points

    @property
    def weighted(self) -> bool:
        """Whether measurements are weighted by visibility (the filter was started with visibility)."""
        return self._weighted

    def _set_noise(self, scale: float) -> None:
        if self._scale > 0 and scale != self._scale:
            # Keep the covariance in the same face-relative units, so the gain does not jump when the
            # face box changes size.
            self._kf.P = self._kf.P * (scale / self._scale) ** 2
        self._scale = scale
        from filterpy.common import (
            Q_discrete_white_noise,  # imported on first use: a second of start-up
        )

        sigma = MEASUREMENT_STD * scale
        q = (_tracking_index(self._smoothing) * sigma) ** 2
        if self._weighted:
            self._kf.R = np.eye(self._num_points) * sigma**2
            self._kf.Q = np.kron(Q_discrete_white_noise(dim=2, dt=1.0, var=q), np.eye(self._num_points))
        else:
            self._kf.R = np.eye(2) * sigma**2
            self._kf.Q = Q_discrete_white_noise(dim=2, dt=1.0, var=q, block_size=2, order_by_dim=False)

    def _start(self, points: np.ndarray, scale: float, weighted: bool) -> None:
        """(Re)start at a first measurement. The filterpy filter itself is built when a second frame needs
        it: filterpy pulls in scipy.stats and matplotlib, which photos never need."""
        self._num_points, self._weighted = points.shape[0], weighted
        self._kf = None
        self._first = (points.copy(), scale)
        self._scale = 0.0
        self._predicted = False

    def _filter(self) -> KalmanFilter:
        if self._kf is not None:
            return self._kf
        from filterpy.kalman import KalmanFilter

        points, scale = self._first
        n = self._num_points
        pos_var = (MEASUREMENT_STD * scale) ** 2
        vel_var = (INITIAL_VELOCITY_STD * scale) ** 2
        if self._weighted:
            self._kf = KalmanFilter(dim_x=2 * n, dim_z=n)
            self._kf.F, self._kf.H = _constant_velocity(n)
            self._kf.x = np.vstack([points, np.zeros_like(points)])
            self._kf.P = np.kron(np.diag([pos_var, vel_var]), np.eye(n))
        else:
            self._kf = KalmanFilter(dim_x=4, dim_z=2)
            self._kf.F = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], np.float64)
            self._kf.H = np.eye(2, 4)
            self._kf.x = np.vstack([points.T, np.zeros_like(points.T)])
            self._kf.P = np.diag([pos_var, pos_var, vel_var, vel_var])
        self._scale = 0.0
        self._set_noise(scale)
        return self._kf

    def _positions(self) -> np.ndarray:
        x = self._kf.x
        return (x[: self._num_points] if self._weighted else x[:2].T).astype(np.float32)

    def predict(self) -> np.ndarray:
        """Advance the filter one frame and return the predicted (N, 2) points."""
        if self._num_points < 0:
            raise ValueError("KalmanSmoother.predict() called before the first update()")
        self._filter().predict()
        self._predicted = True
        return self._positions()

    def measurement_noise(self, visibility: np.ndarray) -> np.ndarray:
        """The (N, N) diagonal measurement covariance for this visibility at the current scale."""
        sigma2 = (MEASUREMENT_STD * self._scale) ** 2
        return np.diag(sigma2 / np.maximum(visibility, MIN_VISIBILITY))

    def update(self, points: np.ndarray, scale: float, visibility: np.ndarray | None = None) -> np.ndarray:
        """Correct the filter with this frame's (N, 2) measurement and return the smoothed points.

        ``visibility`` is the (N,) probability that each point is visible (None or empty: no weighting).
        Runs the predict step itself unless ``predict()`` was already called for this frame. The first
        update, or one with a different point count or with visibility where there was none (or the
        reverse), (re)starts the filter at the measurement.
        """
        points = np.asarray(points, np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2), got {points.shape}")
        scale = float(scale)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive face size in pixels, got {scale}")
        if not np.isfinite(points).all():
            raise ValueError("points contain NaN or infinite coordinates")
        vis = None if visibility is None else np.asarray(visibility, np.float64).ravel()
        if vis is not None and vis.size == 0:
            vis = None
        if vis is not None and (vis.shape != (points.shape[0],) or not np.isfinite(vis).all()):
            raise ValueError(f"visibility must be {points.shape[0]} finite probabilities, got shape {vis.shape}")
        if points.shape[0] != self._num_points or (vis is not None) != self._weighted:
            self._start(points, scale, weighted=vis is not None)
            return points.astype(np.float32)
        self._filter()
        self._set_noise(scale)
        if not self._predicted:
            self._kf.predict()
        self._predicted = False
        if self._weighted:
            self._kf.update(points, R=self.measurement_noise(vis), H=self._kf.H)
        else:
            # H is passed explicitly so filterpy takes z as the (2, N) matrix of all points' measurements
            # instead of reshaping it into a single column vector.
            self._kf.update(points.T, H=self._kf.H)
        if self._smoothing == 0.0:
            return points.astype(np.float32)
        return self._positions()


def _as_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(boxes, np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (K, 4), got {arr.shape}")
    return arr


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (A, 4) with every box in ``b`` (B, 4): (A, B)."""
    a, b = _as_boxes(a_xyxy, "a_xyxy"), _as_boxes(b_xyxy, "b_xyxy")
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(br - tl, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


@dataclass(frozen=True)
class TrackerOptions:
    iou_threshold: float = 0.3
    """Least IoU between a track's predicted box and a detection for them to be associated."""
    max_misses: int = 5
    """Consecutive frames a track may go undetected and still be picked up again; one more and it dies."""
    min_hits: int = 1
    """Detections a new track needs before it gets an id and is reported."""
    smoothing: float = 0.5
    """0 = output the measurement, 1 = heavy smoothing; changeable later through ``Tracker.smoothing``."""
    filter_factory: Callable[[float], PointFilter] | None = None
    """Builds a track's smoother from the smoothing value; ``None`` means ``KalmanSmoother``."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {self.iou_threshold}")
        if self.max_misses < 0:
            raise ValueError(f"max_misses must be >= 0, got {self.max_misses}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        _check_smoothing(self.smoothing)


class _TrackState:
    """Mutable bookkeeping of one live track (the public ``Track`` is a frozen per-frame snapshot)."""

    def __init__(self, detection: Detection, landmarks: Landmarks, smoother: PointFilter) -> None:
        self.track_id: int | None = None
        self.smoother = smoother
        self.detection = detection
        self.landmarks = landmarks
        self.smoothed = _smooth(smoother, detection, landmarks)
        self.predicted_xyxy = detection.xyxy
        self.age = 1
        self.hits = 1
        self.misses = 0

    def predict(self) -> None:
        shift = np.zeros(2, np.float32)
        if self.landmarks.num_points:
            predicted = np.asarray(self.smoother.predict(), np.float32)
            shift = predicted.mean(axis=0) - self.smoothed.mean(axis=0)
        # The box follows the landmarks' predicted motion, so a face that moves while it is missed is
        # still looked for where it should be.
        self.predicted_xyxy = self.predicted_xyxy + np.concatenate([shift, shift])

    def update(self, detection: Detection, landmarks: Landmarks) -> None:
        self.detection = detection
        self.landmarks = landmarks
        self.smoothed = _smooth(self.smoother, detection, landmarks)
        self.predicted_xyxy = detection.xyxy
        self.hits += 1
        self.misses = 0


def _face_scale(detection: Detection) -> float:
    return float(np.sqrt(detection.box[2] * detection.box[3]))


def _smooth(smoother: PointFilter, detection: Detection, landmarks: Landmarks) -> np.ndarray:
    scale = _face_scale(detection)
    if landmarks.has_visibility:
        return np.asarray(smoother.update(landmarks.points, scale, landmarks.visibility), np.float32)
    # Without visibility the call is the one every filter understands (custom factories included).
    return np.asarray(smoother.update(landmarks.points, scale), np.float32)


class Tracker:
    """Associates each frame's faces with the previous ones and smooths their landmarks.

    ``update`` returns one ``Track`` per detection of the frame whose track is confirmed (``min_hits``),
    ordered by track id. Ids are consecutive integers from 0 in order of confirmation and never reused.
    """

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self._smoothing = self.options.smoothing
        self._factory: Callable[[float], PointFilter] = self.options.filter_factory or KalmanSmoother
        self._tracks: list[_TrackState] = []
        self._next_id = 0

    @property
    def smoothing(self) -> float:
        return self._smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self._smoothing = _check_smoothing(value)
        for track in self._tracks:
            track.smoother.smoothing = self._smoothing

    @property
    def num_live_tracks(self) -> int:
        """Tracks kept alive, including tentative and currently missed ones."""
        return len(self._tracks)

    def reset(self) -> None:
        """Forget every track; ids start again from 0."""
        self._tracks = []
        self._next_id = 0

    def update(self, detections: list[Detection], landmarks: list[Landmarks]) -> list[Track]:
        return self.update_indexed(detections, landmarks)[0]

    def update_indexed(self, detections: list[Detection], landmarks: list[Landmarks]) -> tuple[list[Track], list[int]]:
        """``update``, and for each returned track the index of the detection (and landmarks) it took."""
        detections, landmarks = list(detections), list(landmarks)
        if len(detections) != len(landmarks):
            raise ValueError(f"got {len(detections)} detections but {len(landmarks)} landmark sets")

        for track in self._tracks:
            track.predict()
            track.age += 1

        matches, unmatched_tracks, unmatched_dets = self._associate(detections)
        source: dict[int, int] = {}
        """id() of a track state updated this frame -> the detection index it took."""
        for t, d in matches:
            track = self._tracks[t]
            if track.landmarks.num_points != landmarks[d].num_points:
                track.smoother = self._factory(self._smoothing)
            track.update(detections[d], landmarks[d])
            source[id(track)] = d

        for t in unmatched_tracks:
            self._tracks[t].misses += 1
        survivors = [t for t in self._tracks if t.misses <= self.options.max_misses]
        if len(survivors) != len(self._tracks):
            log.debug("tracker dropped %d track(s)", len(self._tracks) - len(survivors))

        for d in unmatched_dets:
            born = _TrackState(detections[d], landmarks[d], self._factory(self._smoothing))
            survivors.append(born)
            source[id(born)] = d
        self._tracks = survivors

        for track in self._tracks:
            if track.track_id is None and track.hits >= self.options.min_hits:
                track.track_id = self._next_id
                self._next_id += 1

        reported = [t for t in self._tracks if id(t) in source and t.track_id is not None]
        reported.sort(key=lambda t: t.track_id)
        tracks = [Track(track_id=t.track_id, detection=t.detection, raw=t.landmarks, smoothed=t.smoothed, age=t.age, hits=t.hits)
                  for t in reported]
        return tracks, [source[id(t)] for t in reported]

    def _associate(self, detections: list[Detection]) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        if not self._tracks or not detections:
            return [], list(range(len(self._tracks))), list(range(len(detections)))
        iou = iou_matrix(np.stack([t.predicted_xyxy for t in self._tracks]), np.stack([d.xyxy for d in detections]))
        rows, cols = linear_sum_assignment(-iou)
        matches = [(r, c) for r, c in zip(rows, cols) if iou[r, c] >= self.options.iou_threshold and iou[r, c] > 0]
        matched_t = {r for r, _ in matches}
        matched_d = {c for _, c in matches}
        return (
            matches,
            [t for t in range(len(self._tracks)) if t not in matched_t],
            [d for d in range(len(detections)) if d not in matched_d],
        )
