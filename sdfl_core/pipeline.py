"""The real-time engine: frame -> MediaPipe faces -> batched SDFL landmarks -> Kalman tracks -> FrameResult.

    with Pipeline(PipelineOptions()) as pipeline, open_source("video.mp4") as source:
        for result in pipeline.run(source):
            ...
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from . import crops
# Keep this import above .detector: the model stack (timm -> torch._dynamo -> triton) segfaults when
# triton's native library loads after mediapipe's, and triton loaded first is fine.
from .predictor import load_predictor  # isort: skip
from .detector import DetectorOptions, FaceDetector, to_rgb_uint8  # isort: skip
from .sources import Frame, Source
from .tracker import Tracker, TrackerOptions
from .types import Detection, FrameResult, Landmarks

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
    num_threads: int | None = None
    tracker: TrackerOptions = field(default_factory=TrackerOptions)

    def __post_init__(self) -> None:
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {self.max_faces}")
        if not 0.0 <= self.smoothing <= 1.0:
            raise ValueError(f"smoothing must be in [0, 1], got {self.smoothing}")


def detection_to_crop(det: Detection, info, detector: str | Path = "short") -> np.ndarray:
    """The crop affine for a detector box, through the checkpoint's calibration for that detector
    (a custom detector model uses the short-range calibration)."""
    x, y, w, h = det.box.astype(np.float64)
    cal = info.detector_box.get(str(detector), info.detector_box.get("short", {}))
    cx = x + w / 2 + cal.get("dx", 0.0) * w
    cy = y + h / 2 + cal.get("dy", 0.0) * h
    side = info.crop_scale * cal.get("scale", 1.0) * max(w, h)
    return crops.crop_affine(np.array([cx, cy]), side, info.config.input_size)


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

    def crops_for(self, image_bgr: np.ndarray, affines: list[np.ndarray]) -> np.ndarray:
        size = self.info.config.input_size
        return np.stack([crops.warp(image_bgr, a, size) for a in affines])

    def predict(self, image_bgr: np.ndarray, affines: list[np.ndarray]) -> list[Landmarks]:
        if not affines:
            return []
        units, weights = self.predictor.predict(self.crops_for(image_bgr, affines))
        size = self.info.config.input_size
        return [Landmarks(crops.units_to_image(u, a, size), w) for u, a, w in zip(units, affines, weights)]

    def predict_boxes(self, image_bgr: np.ndarray, detections: list[Detection], detector: str | Path = "short") -> list[Landmarks]:
        return self.predict(image_bgr, [detection_to_crop(d, self.info, detector) for d in detections])


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
        """Forget tracks (e.g. after a seek); detector timestamps keep increasing."""
        self.tracker.reset()

    def process(self, image: np.ndarray, index: int = 0, timestamp_ms: float | None = None) -> FrameResult:
        t0 = time.perf_counter()
        bgr = to_bgr_uint8(image)
        # MediaPipe's video mode needs strictly increasing integer timestamps, also after seeks/loops.
        ts = int(round(timestamp_ms if timestamp_ms is not None else index * 33.3))
        ts = max(ts, self._last_ts + 1)
        self._last_ts = ts
        detections = self.detector.detect(bgr, ts)
        t1 = time.perf_counter()
        landmarks = self.engine.predict_boxes(bgr, detections, self.options.detector)
        t2 = time.perf_counter()
        tracks = self.tracker.update(detections, landmarks)
        t3 = time.perf_counter()
        timings = {"detect": (t1 - t0) * 1e3, "landmarks": (t2 - t1) * 1e3, "track": (t3 - t2) * 1e3,
                   "total": (t3 - t0) * 1e3}
        return FrameResult(index=index, timestamp_ms=float(timestamp_ms if timestamp_ms is not None else ts),
                           tracks=tuple(tracks), timings_ms=timings, frame_size=(bgr.shape[1], bgr.shape[0]))

    def run_frames(self, source: Source, max_frames: int = 0) -> Iterator[tuple[Frame, FrameResult]]:
        for n, frame in enumerate(source):
            if max_frames and n >= max_frames:
                return
            yield frame, self.process(frame.image, frame.index, frame.timestamp_ms)

    def run(self, source: Source, max_frames: int = 0) -> Iterator[FrameResult]:
        for _, result in self.run_frames(source, max_frames):
            yield result
