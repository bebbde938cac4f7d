"""The real-time engine: frame -> MediaPipe faces -> batched SDFL landmarks -> Kalman tracks -> FrameResult.

With ``PipelineOptions.redetect_every = K > 1`` the detector runs only every K-th frame (and whenever a
frame has no tracks or a track looked lost); a tracked face is cropped from its previous frame's raw
landmarks exactly as in training (``crops.landmark_crop_affine``), through a dead band that keeps the
crop still while the face is (``PipelineOptions.crop_deadband``), also on detection frames, where the
detector finds new faces and checks the tracked ones.

    with Pipeline(PipelineOptions()) as pipeline, open_source("video.mp4") as source:
        for result in pipeline.run(source):
            ...
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
from scipy.optimize import linear_sum_assignment

from . import crops
from .detector import RUNNING_MODES, DetectorOptions, FaceDetector, to_rgb_uint8
from .predictor import load_predictor
from .sources import Frame, Source, prefetch
from .tracker import Tracker, TrackerOptions, iou_matrix
from .types import Detection, FrameResult, Landmarks, Track

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineOptions:
    weights: str | Path | None = None
    """Checkpoint or ONNX export; None = the shipped SDFL model."""
    device: str = "auto"
    detector: str | Path = "short"
    min_confidence: float = 0.5
    max_faces: int = 5
    smoothing: float = 0.5
    smooth: bool = True
    running_mode: str = "video"
    """"video": consecutive frames, tracked and smoothed; "image": every frame is an unrelated photo (no
    track or filter state crosses frames, smoothed == raw, ids number the faces of one photo). Must
    match the source's ``running_mode`` in :meth:`Pipeline.run_frames`."""
    num_threads: int | None = None
    """ONNX Runtime intra-op threads; None = ORT's default (see :func:`streaming_options` for the loop of
    ``sdfl track``). Frame by frame (``process``) neither 1 thread nor ORT's default won clearly on the
    shared 2-core machine (benchmarks/speed.py --threads N)."""
    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    redetect_every: int = 1
    """1 = run the face detector on every frame; K > 1 = only every K-th frame, and on the frame after
    one without tracks or with a lost track; the frames in between crop from the previous landmarks."""
    crop_deadband: float = 0.04
    """Between detections, a track keeps its last crop until its landmark crop moves by more than this
    fraction of the crop side (or changes size by more than this fraction): a crop that followed every
    frame's landmarks would feed their noise back into the next frame. 0 = follow every frame."""

    def __post_init__(self) -> None:
        if isinstance(self.redetect_every, bool) or not isinstance(self.redetect_every, (int, np.integer)) \
                or self.redetect_every < 1:
            raise ValueError(f"redetect_every must be an int >= 1, got {self.redetect_every!r}")
        if self.running_mode not in RUNNING_MODES:
            raise ValueError(f"running_mode must be one of {RUNNING_MODES}, got {self.running_mode!r}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {self.max_faces}")
        if not 0.0 <= self.smoothing <= 1.0:
            raise ValueError(f"smoothing must be in [0, 1], got {self.smoothing}")
        if not 0.0 <= self.crop_deadband < 0.5:
            raise ValueError(f"crop_deadband must be in [0, 0.5), got {self.crop_deadband}")


def detection_to_crop(det: Detection, info, detector: str | Path = "short") -> np.ndarray:
    """The crop affine for a detector box, through the checkpoint's calibration for that detector
    (a custom detector model uses the short-range calibration)."""
    x, y, w, h = det.box.astype(np.float64)
    cal = info.detector_box.get(str(detector), info.detector_box.get("short", {}))
    cx = x + w / 2 + cal.get("dx", 0.0) * w
    cy = y + h / 2 + cal.get("dy", 0.0) * h
    side = info.crop_scale * cal.get("scale", 1.0) * max(w, h)
    return crops.crop_affine(np.array([cx, cy]), side, info.config.input_size)


MAX_SIZE_CHANGE = 0.4
"""A landmark-cropped face whose landmark box grows or shrinks by more than this fraction in one frame is lost."""
MAX_MOVE = 0.5
"""... or whose landmark box centre moves by more than this many box sizes in one frame."""


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


def stable_crop(previous: tuple[np.ndarray, float] | None, target: tuple[np.ndarray, float],
                deadband: float) -> tuple[np.ndarray, float]:
    """The (centre, side) crop square to use: ``previous`` while ``target`` stays within ``deadband``
    (a fraction of the previous side) of it in position and in size, else ``target``."""
    if previous is None:
        return target
    (c0, s0), (c1, s1) = previous, target
    if np.linalg.norm(np.asarray(c1) - np.asarray(c0)) <= deadband * s0 and abs(s1 / s0 - 1.0) <= deadband:
        return previous
    return target


def _box_size(box: np.ndarray) -> float:
    return float(np.sqrt(max(box[2], 0.0) * max(box[3], 0.0)))


def carry_box(detected_box: np.ndarray, detected_landmark_box: np.ndarray, landmark_box: np.ndarray) -> np.ndarray:
    """The detector box of the last detection moved and scaled as the landmark box has moved and scaled
    since then: an (x, y, w, h) box in the detector's convention for a frame without detection."""
    d, a, b = (np.asarray(v, np.float64) for v in (detected_box, detected_landmark_box, landmark_box))
    scale = _box_size(b) / _box_size(a)
    centre = b[:2] + b[2:] / 2 + (d[:2] + d[2:] / 2 - a[:2] - a[2:] / 2) * scale
    size = d[2:] * scale
    return np.concatenate([centre - size / 2, size]).astype(np.float32)


def to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """Gray / BGRA / 16-bit frames -> contiguous BGR uint8 (the form crops and drawing use)."""
    rgb = to_rgb_uint8(image)
    return np.ascontiguousarray(rgb[..., ::-1])


class LandmarkEngine:
    """Detector boxes -> landmarks in image pixels, all faces of a frame in one batch."""

    def __init__(self, weights=None, device: str = "auto", num_threads: int | None = None) -> None:
        self.predictor = load_predictor(weights, device=device, num_threads=num_threads)
        self.info = self.predictor.info

    @property
    def schema(self):
        return self.info.schema_obj

    @property
    def has_visibility(self) -> bool:
        """Whether the model reports per-point visibility (``Landmarks.visibility`` is then (N,), else (0,))."""
        return bool(self.predictor.has_visibility)

    def crops_for(self, image_bgr: np.ndarray, affines: list[np.ndarray]) -> np.ndarray:
        size = self.info.config.input_size
        return np.stack([crops.warp(image_bgr, a, size) for a in affines])

    def predict(self, image_bgr: np.ndarray, affines: list[np.ndarray]) -> list[Landmarks]:
        if not affines:
            return []
        units, weights, visibility = self.predictor.predict(self.crops_for(image_bgr, affines))
        size = self.info.config.input_size
        return [Landmarks(crops.units_to_image(u, a, size), w, v) for u, a, w, v in zip(units, affines, weights, visibility)]

    def predict_boxes(self, image_bgr: np.ndarray, detections: list[Detection], detector: str | Path = "short") -> list[Landmarks]:
        return self.predict(image_bgr, [detection_to_crop(d, self.info, detector) for d in detections])


def streaming_options(options: PipelineOptions) -> PipelineOptions:
    """``options`` for :meth:`Pipeline.run_frames` with the detector running ahead in its own thread:
    one ONNX Runtime thread unless ``num_threads`` is set, since the detector has the other core.
    On franck.mp4 -> CSV (2 cores, five interleaved runs each) that measured 184 fps median (176-193)
    against 136 (129-141) with ORT's default threads."""
    if options.num_threads is None and options.redetect_every == 1:
        return replace(options, num_threads=1)
    return options


class Pipeline:
    """Owns the detector (native resources: use as a context manager), the landmark engine and the tracker."""

    def __init__(self, options: PipelineOptions | None = None, engine: LandmarkEngine | None = None) -> None:
        self.options = options or PipelineOptions()
        self.engine = engine or LandmarkEngine(self.options.weights, self.options.device, self.options.num_threads)
        self.detector = FaceDetector(DetectorOptions(model=self.options.detector, min_confidence=self.options.min_confidence,
                                                     running_mode=self.options.running_mode, max_faces=self.options.max_faces))
        tracker_opts = self.options.tracker
        from dataclasses import replace

        self.tracker = Tracker(replace(tracker_opts, smoothing=self.options.smoothing if self.options.smooth else 0.0))
        self._last_ts = -1
        self._previous: tuple[Track, ...] = ()
        self._since_detect = 0
        self._force_detect = True
        self._anchors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._crops: dict[int, tuple[np.ndarray, float]] = {}

    @property
    def info(self):
        return self.engine.info

    @property
    def schema(self):
        return self.engine.schema

    @property
    def smoothing(self) -> float:
        return self.tracker.smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self.tracker.smoothing = value

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.detector.close()

    def reset(self) -> None:
        """Forget tracks, ids and filters (a seek, a new source, the next photo); detector timestamps
        keep increasing."""
        self.tracker.reset()
        self._previous = ()
        self._crops = {}
        self._anchors = {}
        self._since_detect = 0
        self._force_detect = True

    @property
    def image_mode(self) -> bool:
        return self.options.running_mode == "image"

    def _detect_now(self) -> bool:
        return (self._force_detect or not self._previous
                or self._since_detect + 1 >= self.options.redetect_every)

    def _prepare(self, image: np.ndarray, index: int, timestamp_ms: float | None) -> tuple[np.ndarray, int]:
        """The BGR uint8 frame and the detector timestamp for it."""
        bgr = to_bgr_uint8(image)
        # MediaPipe's video mode needs strictly increasing integer timestamps, also after seeks/loops.
        ts = int(round(timestamp_ms if timestamp_ms is not None else index * 33.3))
        ts = max(ts, self._last_ts + 1)
        self._last_ts = ts
        return bgr, ts

    def process(self, image: np.ndarray, index: int = 0, timestamp_ms: float | None = None) -> FrameResult:
        if self.image_mode:
            self.reset()
        t0 = time.perf_counter()
        bgr, ts = self._prepare(image, index, timestamp_ms)
        detections = self.detector.detect(bgr, ts) if self._detect_now() else None
        return self._finish(bgr, index, timestamp_ms, ts, detections, (time.perf_counter() - t0) * 1e3)

    def _finish(self, bgr: np.ndarray, index: int, timestamp_ms: float | None, ts: int,
                detections: list[Detection] | None, detect_ms: float) -> FrameResult:
        """Landmarks and tracks of a frame, given its detections (None: a frame between detections)."""
        if self.image_mode:
            self.reset()  # a photo shares nothing with the one before it
        t1 = time.perf_counter()
        squares: list = []
        if detections is not None:
            if self.options.redetect_every > 1 and self._previous:
                landmarks, squares = self._tracked_crops_at_detection(bgr, detections)
            else:
                landmarks = self.engine.predict_boxes(bgr, detections, self.options.detector)
            self._since_detect = 0
            self._force_detect = False
        else:
            detections, landmarks = self._from_previous_landmarks(bgr)
            self._since_detect += 1
        t2 = time.perf_counter()
        tracks = self.tracker.update(detections, landmarks)
        self._previous = tuple(tracks)
        if self._since_detect == 0:
            self._anchors = {t.track_id: (t.detection.box, crops.landmark_box(t.raw.points)) for t in tracks}
            # Tracks whose landmarks came from their own kept crop keep it; the others start afresh.
            self._crops = {t.track_id: sq for t in tracks for lm, sq in zip(landmarks, squares)
                           if sq is not None and t.raw is lm}
        t3 = time.perf_counter()
        timings = {"detect": detect_ms, "landmarks": (t2 - t1) * 1e3, "track": (t3 - t2) * 1e3,
                   "total": detect_ms + (t3 - t1) * 1e3}
        return FrameResult(index=index, timestamp_ms=float(timestamp_ms if timestamp_ms is not None else ts),
                           tracks=tuple(tracks), timings_ms=timings, frame_size=(bgr.shape[1], bgr.shape[0]))

    def _tracked_crops_at_detection(self, bgr: np.ndarray, detections: list[Detection]
                                    ) -> tuple[list[Landmarks], list[tuple[np.ndarray, float] | None]]:
        """Landmarks for a detection frame when ``redetect_every > 1``: a detection that overlaps a tracked
        face (IoU >= the tracker's threshold with its last box) is cropped from that face's landmarks,
        through the dead band, like the frames in between; the detection still drives association and
        the box columns. Switching to the detector's crop every K frames would make the points jump
        between two crop conventions. New faces, and tracked ones whose landmark crop looks lost, are
        cropped from the detector box. Returns the landmarks and each one's kept square (None: detector crop)."""
        if not detections:
            return [], []
        previous = self._previous[: self.options.max_faces]
        size = self.info.config.input_size
        iou = iou_matrix(np.stack([t.detection.xyxy for t in previous]), np.stack([d.xyxy for d in detections]))
        squares: list = [None] * len(detections)
        sources: list = [None] * len(detections)
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] >= self.tracker.options.iou_threshold:
                squares[c], sources[c] = self._kept_square(previous[r]), previous[r]
        affines = [crops.crop_affine(sq[0], sq[1], size) if sq is not None
                   else detection_to_crop(d, self.info, self.options.detector) for d, sq in zip(detections, squares)]
        landmarks = self.engine.predict(bgr, affines)
        frame_size = (bgr.shape[1], bgr.shape[0])
        redo = [i for i, track in enumerate(sources)
                if track is not None and self._carried(track, landmarks[i], frame_size, detections[i]) is None]
        if redo:
            fresh = self.engine.predict_boxes(bgr, [detections[i] for i in redo], self.options.detector)
            for i, lm in zip(redo, fresh):
                landmarks[i], squares[i] = lm, None
        return landmarks, squares

    def _kept_square(self, track: Track) -> tuple[np.ndarray, float]:
        """The (centre, side) crop square for a tracked face: the landmark crop of its last raw points,
        or the square it already had while that stays within the dead band."""
        target = crops.square_from_box(crops.landmark_box(track.raw.points), self.info.crop_scale)
        return stable_crop(self._crops.get(track.track_id), target, self.options.crop_deadband)

    def _carried(self, track: Track, landmarks: Landmarks, frame_size: tuple[int, int],
                 reference: Detection) -> Detection | None:
        """The track's last detector box carried along by ``landmarks`` (from the track's own crop; score
        carried over), or None when they look lost: ``prediction_lost`` against the previous frame, or a
        carried box overlapping ``reference`` with IoU below the tracker's threshold."""
        detected_box, detected_landmarks = self._anchors.get(track.track_id, (crops.landmark_box(track.raw.points),) * 2)
        if prediction_lost(track.raw.points, landmarks.points, frame_size, _box_size(detected_landmarks)):
            return None
        box = carry_box(detected_box, detected_landmarks, crops.landmark_box(landmarks.points))
        carried = Detection(box=box, score=track.detection.score)
        if iou_matrix(reference.xyxy[None], carried.xyxy[None])[0, 0] < self.tracker.options.iou_threshold:
            return None
        return carried

    def _from_previous_landmarks(self, bgr: np.ndarray) -> tuple[list[Detection], list[Landmarks]]:
        """Landmarks of last frame's tracks from crops of their raw landmarks (one batch), minus the ones
        that look lost; any lost one makes the next frame run the detector. A dropped track counts a
        tracker miss, so re-detection on the next frame picks it up under the same id.

        Each Detection is the last detector box carried along by the landmark box (``carry_box``), score
        carried over: box columns then stay in the detector's convention on every frame, and the
        tracker's IoU association at the next detection compares like with like (a bare landmark box
        is a different shape, ~0.85 IoU with a detector box for a trained model, far less for a drifting one).
        """
        previous = self._previous[: self.options.max_faces]
        size = self.info.config.input_size
        squares = [self._kept_square(t) for t in previous]
        self._crops = {t.track_id: sq for t, sq in zip(previous, squares)}
        predicted = self.engine.predict(bgr, [crops.crop_affine(c, side, size) for c, side in squares])
        frame_size = (bgr.shape[1], bgr.shape[0])
        detections, landmarks = [], []
        for track, lm in zip(previous, predicted):
            # A box the tracker would not associate with the track would start a new id instead.
            detection = self._carried(track, lm, frame_size, track.detection)
            if detection is None:
                log.debug("track %d lost its face between detections; re-detecting next frame", track.track_id)
                self._force_detect = True
                continue
            detections.append(detection)
            landmarks.append(lm)
        return detections, landmarks

    def run_frames(self, source: Source, max_frames: int = 0, decode_ahead: bool = True,
                   detect_ahead: bool | None = None) -> Iterator[tuple[Frame, FrameResult]]:
        """(frame, result) for each frame of ``source``, in order.

        ``decode_ahead`` decodes in a background thread. ``detect_ahead`` (default: when the detector runs
        on every frame, ``redetect_every == 1``) also runs the detector in a background thread, one frame
        ahead of the landmarks and tracking of the main thread: MediaPipe and ONNX Runtime both release
        the GIL, so on two cores detection overlaps the rest. Results are the same as ``process`` gives.
        With K > 1 whether a frame is detected depends on the last frame's tracks, so it cannot run ahead.

        A run starts clean (no tracks from an earlier source). The source's ``running_mode`` must be the
        pipeline's: a folder of photos is run in image mode, or opened with ``sequence=True``.
        """
        if source.running_mode != self.options.running_mode:
            raise ValueError(f"{source.name} is a source for {source.running_mode} mode, but the pipeline runs in "
                             f"{self.options.running_mode} mode (PipelineOptions.running_mode; a folder of images "
                             f"opened with sequence=True is a video)")
        self.reset()
        if detect_ahead is None:
            detect_ahead = self.options.redetect_every == 1
        if detect_ahead and self.options.redetect_every != 1:
            raise ValueError("detect_ahead needs redetect_every == 1")
        frames = prefetch(source) if decode_ahead else source
        if not detect_ahead:
            for n, frame in enumerate(frames):
                if max_frames and n >= max_frames:
                    return
                yield frame, self.process(frame.image, frame.index, frame.timestamp_ms)
            return

        def detected():
            try:
                for n, frame in enumerate(frames):
                    if max_frames and n >= max_frames:
                        return
                    t0 = time.perf_counter()
                    bgr, ts = self._prepare(frame.image, frame.index, frame.timestamp_ms)
                    detections = self.detector.detect(bgr, ts)
                    yield frame, bgr, ts, detections, (time.perf_counter() - t0) * 1e3
            finally:
                if hasattr(frames, "close"):
                    frames.close()  # stops the decode thread too

        for frame, bgr, ts, detections, detect_ms in prefetch(detected(), depth=2):
            yield frame, self._finish(bgr, frame.index, frame.timestamp_ms, ts, detections, detect_ms)

    def run(self, source: Source, max_frames: int = 0) -> Iterator[FrameResult]:
        for _, result in self.run_frames(source, max_frames):
            yield result
