"""Multi-face tracker: IoU association (Hungarian), stable ids, and a point smoother per face.

Pure numpy/scipy, norfair-style: no drawing here (see ``sdfl_core.draw``), and the per-track filter
(``smoothing.KalmanSmoother`` by default) is pluggable through ``TrackerOptions.filter_factory``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .smoothing import KalmanSmoother, PointFilter, check_smoothing
from .types import Detection, Landmarks, Track

log = logging.getLogger(__name__)

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


def best_pairs(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """The (row, column) pairs of the assignment with the largest total IoU (Hungarian, scipy) whose IoU is
    at least ``threshold`` and above 0."""
    # Imported here: scipy.optimize takes most of a second to import, and a photo (one frame) never needs it.
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= threshold and iou[r, c] > 0]


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
        check_smoothing(self.smoothing)


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
        self._smoothing = check_smoothing(value)
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
        matches = best_pairs(iou, self.options.iou_threshold)
        matched_t = {r for r, _ in matches}
        matched_d = {c for _, c in matches}
        return (
            matches,
            [t for t in range(len(self._tracks)) if t not in matched_t],
            [d for d in range(len(detections)) if d not in matched_d],
        )
