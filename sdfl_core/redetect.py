"""When the face detector runs, and where a tracked face is cropped on the frames it does not.

A policy owns its state across frames. The pipeline asks it, per frame: :meth:`should_detect`; then for
the landmarks of a detection frame (:meth:`at_detection`) or of a frame in between (:meth:`between`);
then tells it the tracks that came out (:meth:`observe`). :class:`EveryFrame` detects on every frame and
crops from the detector boxes. :class:`Redetect` detects every K-th frame, and on the frame after one
without tracks or with a lost track; the frames in between crop a tracked face from its previous raw
landmarks as in training (``crops.landmark_square``; upright, turned by the eyes' roll, as the landmarker
cuts tilted faces), through a dead band that keeps the crop still while the face is, also on detection
frames, where the detector finds new faces and checks the tracked ones.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import crops
from .landmarker import Landmarker, detection_to_crop
from .tracker import best_pairs, iou_matrix
from .types import Detection, Landmarks, Track

log = logging.getLogger(__name__)

Square = tuple[np.ndarray, float, float]
"""A crop square: centre (x, y) and side, in image pixels, and its angle in degrees (``crops.crop_affine``'s;
non-zero when the landmarker cuts tilted faces upright)."""

MAX_SIZE_CHANGE = 0.4
"""A landmark-cropped face whose landmark box grows or shrinks by more than this fraction in one frame is lost."""
MAX_MOVE = 0.5
"""... or whose landmark box centre moves by more than this many box sizes in one frame."""


@dataclass(frozen=True)
class RedetectOptions:
    every: int = 1
    """1 = run the face detector on every frame; K > 1 = only every K-th frame, and on the frame after
    one without tracks or with a lost track; the frames in between crop from the previous landmarks."""
    crop_deadband: float = 0.04
    """Between detections, a track keeps its last crop until its landmark crop moves by more than this
    fraction of the crop side (or changes size by more than this fraction): a crop that followed every
    frame's landmarks would feed their noise back into the next frame. 0 = follow every frame."""

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, (int, np.integer)) or self.every < 1:
            raise ValueError(f"redetect_every (RedetectOptions.every) must be an int >= 1, got {self.every!r}")
        if not 0.0 <= self.crop_deadband < 0.5:
            raise ValueError(f"crop_deadband must be in [0, 0.5), got {self.crop_deadband}")


@dataclass(frozen=True)
class PolicyContext:
    """What a policy needs from the pipeline it serves."""

    landmarker: Landmarker
    detector: str
    """The detector model name ('short', 'full' or a path): picks the checkpoint's box calibration."""
    iou_threshold: float
    """The tracker's: a box the tracker would not associate with a track would start a new id."""
    max_faces: int | None


class FramePolicy(Protocol):
    def reset(self) -> None: ...

    def should_detect(self) -> bool: ...

    def at_detection(self, bgr: np.ndarray, detections: list[Detection]) -> tuple[list[Landmarks], list[Square | None]]: ...

    def between(self, bgr: np.ndarray) -> tuple[list[Detection], list[Landmarks]]: ...

    def observe(self, tracks: list[Track], indices: list[int], squares: list[Square | None], detected: bool) -> None: ...


class EveryFrame:
    """The detector on every frame; every face cropped from its detector box. Holds no state."""

    def __init__(self, context: PolicyContext) -> None:
        self.context = context

    def reset(self) -> None:
        pass

    def should_detect(self) -> bool:
        return True

    def at_detection(self, bgr: np.ndarray, detections: list[Detection]) -> tuple[list[Landmarks], list[Square | None]]:
        return self.context.landmarker.predict_boxes(bgr, detections, self.context.detector), [None] * len(detections)

    def between(self, bgr: np.ndarray) -> tuple[list[Detection], list[Landmarks]]:
        raise RuntimeError("EveryFrame detects on every frame")

    def observe(self, tracks: list[Track], indices: list[int], squares: list[Square | None], detected: bool) -> None:
        pass


def prediction_lost(previous: np.ndarray, current: np.ndarray, frame_size: tuple[int, int],
                    detected_size: float | None = None) -> bool:
    """Whether landmarks predicted from a crop of the ``previous`` (N, 2) landmarks look lost: not finite,
    a degenerate box, a box that changed size by > MAX_SIZE_CHANGE (against the previous frame, and
    against ``detected_size``, the landmark-box size at the last detection, which catches slow drift)
    or moved by > MAX_MOVE box sizes, or a box centre outside the (width, height) frame."""
    if not np.isfinite(current).all():
        return True
    prev_box, box = crops.landmark_box(previous).astype(np.float64), crops.landmark_box(current).astype(np.float64)
    if box[2] <= 0 or box[3] <= 0 or prev_box[2] <= 0 or prev_box[3] <= 0:
        return True
    prev_size, size = np.sqrt(prev_box[2] * prev_box[3]), np.sqrt(box[2] * box[3])
    for reference in (prev_size, detected_size or prev_size):
        if abs(size / reference - 1.0) > MAX_SIZE_CHANGE:
            return True
    centre, prev_centre = box[:2] + box[2:] / 2, prev_box[:2] + prev_box[2:] / 2
    if np.linalg.norm(centre - prev_centre) > MAX_MOVE * prev_size:
        return True
    width, height = frame_size
    return not (-0.5 <= centre[0] <= width - 0.5 and -0.5 <= centre[1] <= height - 0.5)


def square_affine(square: Square, size: int) -> np.ndarray:
    """The crop affine of a (centre, side, angle) square, ``size`` px."""
    center, side, angle = square
    return crops.crop_affine(center, side, size, angle)


def stable_crop(previous: Square | None, target: Square, deadband: float) -> Square:
    """The (centre, side, angle) crop square to use: ``previous`` while ``target`` stays within ``deadband``
    of it (a fraction of the previous side in position and in size, that many radians in angle), else
    ``target``."""
    if previous is None:
        return target
    (c0, s0, a0), (c1, s1, a1) = previous, target
    turn = abs((a1 - a0 + 180.0) % 360.0 - 180.0)
    if (np.linalg.norm(np.asarray(c1) - np.asarray(c0)) <= deadband * s0 and abs(s1 / s0 - 1.0) <= deadband
            and turn <= np.degrees(deadband)):
        return previous
    return target


def box_size(box: np.ndarray) -> float:
    """sqrt(w * h) of an (x, y, w, h) box, 0 for a degenerate one."""
    return float(np.sqrt(max(box[2], 0.0) * max(box[3], 0.0)))


def carry_box(detected_box: np.ndarray, detected_landmark_box: np.ndarray, landmark_box: np.ndarray) -> np.ndarray:
    """The detector box of the last detection moved and scaled as the landmark box has moved and scaled
    since then: an (x, y, w, h) box in the detector's convention for a frame without detection."""
    d, a, b = (np.asarray(v, np.float64) for v in (detected_box, detected_landmark_box, landmark_box))
    scale = box_size(b) / box_size(a)
    centre = b[:2] + b[2:] / 2 + (d[:2] + d[2:] / 2 - a[:2] - a[2:] / 2) * scale
    size = d[2:] * scale
    return np.concatenate([centre - size / 2, size]).astype(np.float32)


class Redetect:
    """The detector every ``options.every``-th frame (see the module docstring)."""

    def __init__(self, context: PolicyContext, options: RedetectOptions) -> None:
        self.context, self.options = context, options
        self.reset()

    def reset(self) -> None:
        self._previous: tuple[Track, ...] = ()
        self._since_detect = 0
        self._force_detect = True
        self._anchors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        """track id -> (detector box, landmark box) at its last detection."""
        self._crops: dict[int, Square] = {}
        """track id -> the crop square it keeps while its face stays within the dead band."""

    def should_detect(self) -> bool:
        return self._force_detect or not self._previous or self._since_detect + 1 >= self.options.every

    def _tracked(self) -> tuple[Track, ...]:
        return self._previous[: self.context.max_faces]

    def at_detection(self, bgr: np.ndarray, detections: list[Detection]) -> tuple[list[Landmarks], list[Square | None]]:
        """A detection that overlaps a tracked face (IoU >= the tracker's threshold with its last box) is
        cropped from that face's landmarks, through the dead band, like the frames in between; the
        detection still drives association and the box columns. Switching to the detector's crop every K
        frames would make the points jump between two crop conventions. New faces, and tracked ones
        whose landmark crop looks lost, are cropped from the detector box. Returns the landmarks and
        each one's kept square (None: detector crop)."""
        ctx = self.context
        if not self._previous:
            return ctx.landmarker.predict_boxes(bgr, detections, ctx.detector), [None] * len(detections)
        if not detections:
            return [], []
        previous = self._tracked()
        size = ctx.landmarker.input_size
        iou = iou_matrix(np.stack([t.detection.xyxy for t in previous]), np.stack([d.xyxy for d in detections]))
        squares: list[Square | None] = [None] * len(detections)
        sources: list[Track | None] = [None] * len(detections)
        for r, c in best_pairs(iou, ctx.iou_threshold):
            squares[c], sources[c] = self._kept_square(previous[r]), previous[r]
        affines = [square_affine(sq, size) if sq is not None
                   else detection_to_crop(d, ctx.landmarker.info, ctx.detector) for d, sq in zip(detections, squares)]
        landmarks = ctx.landmarker.predict(bgr, affines)
        frame_size = (bgr.shape[1], bgr.shape[0])
        redo = [i for i, track in enumerate(sources)
                if track is not None and self._carried(track, landmarks[i], frame_size, detections[i]) is None]
        if redo:
            fresh = ctx.landmarker.predict_boxes(bgr, [detections[i] for i in redo], ctx.detector)
            for i, lm in zip(redo, fresh):
                landmarks[i], squares[i] = lm, None
        return landmarks, squares

    def between(self, bgr: np.ndarray) -> tuple[list[Detection], list[Landmarks]]:
        """Landmarks of last frame's tracks from crops of their raw landmarks (one batch), minus the ones
        that look lost; any lost one makes the next frame run the detector. A dropped track counts a
        tracker miss, so re-detection on the next frame picks it up under the same id.

        Each Detection is the last detector box carried along by the landmark box (``carry_box``), score
        carried over: box columns then stay in the detector's convention on every frame, and the
        tracker's IoU association at the next detection compares like with like (a bare landmark box
        is a different shape from a detector box).
        """
        previous = self._tracked()
        size = self.context.landmarker.input_size
        squares = [self._kept_square(t) for t in previous]
        self._crops = {t.track_id: sq for t, sq in zip(previous, squares)}
        predicted = self.context.landmarker.predict(bgr, [square_affine(sq, size) for sq in squares])
        frame_size = (bgr.shape[1], bgr.shape[0])
        detections, landmarks = [], []
        for track, lm in zip(previous, predicted):
            detection = self._carried(track, lm, frame_size, track.detection)
            if detection is None:
                log.debug("track %d lost its face between detections; re-detecting next frame", track.track_id)
                self._force_detect = True
                continue
            detections.append(detection)
            landmarks.append(lm)
        return detections, landmarks

    def observe(self, tracks: list[Track], indices: list[int], squares: list[Square | None], detected: bool) -> None:
        """The frame's tracks, each with the index of the detection / landmarks it came from."""
        self._previous = tuple(tracks)
        if detected:
            self._since_detect = 0
            self._force_detect = False
            self._anchors = {t.track_id: (t.detection.box, crops.landmark_box(t.raw.points)) for t in tracks}
            # Tracks whose landmarks came from their own kept crop keep it; the others start afresh.
            self._crops = {t.track_id: squares[i] for t, i in zip(tracks, indices) if squares[i] is not None}
        else:
            self._since_detect += 1

    def _kept_square(self, track: Track) -> Square:
        """The landmark crop of the track's last raw points, or the square it already had while that
        stays within the dead band."""
        landmarker = self.context.landmarker
        target = crops.landmark_square(track.raw.points, landmarker.info.crop_scale, landmarker.eyes)
        return stable_crop(self._crops.get(track.track_id), target, self.options.crop_deadband)

    def _carried(self, track: Track, landmarks: Landmarks, frame_size: tuple[int, int],
                 reference: Detection) -> Detection | None:
        """The track's last detector box carried along by ``landmarks`` (from the track's own crop; score
        carried over), or None when they look lost: ``prediction_lost`` against the previous frame, or a
        carried box overlapping ``reference`` with IoU below the tracker's threshold."""
        detected_box, detected_landmarks = self._anchors.get(track.track_id, (crops.landmark_box(track.raw.points),) * 2)
        if prediction_lost(track.raw.points, landmarks.points, frame_size, box_size(detected_landmarks)):
            return None
        box = carry_box(detected_box, detected_landmarks, crops.landmark_box(landmarks.points))
        carried = Detection(box=box, score=track.detection.score)
        if iou_matrix(reference.xyxy[None], carried.xyxy[None])[0, 0] < self.context.iou_threshold:
            return None
        return carried


def make_policy(context: PolicyContext, options: RedetectOptions) -> FramePolicy:
    return EveryFrame(context) if options.every == 1 else Redetect(context, options)
