"""The real-time pipeline: frame -> face detector -> landmarker (crops, one batch) -> tracker -> FrameResult.

Options compose the components' own: ``PipelineOptions(detector=DetectorOptions(...),
tracker=TrackerOptions(smoothing=...), redetect=RedetectOptions(every=K))``. Which frames run the
detector, and where faces are cropped in between, is the policy of ``redetect``.

    with Pipeline(PipelineOptions()) as pipeline, open_source("video.mp4") as source:
        for result in pipeline.run(source):
            ...
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .crops import default_crops_per_face, default_passes
from .detector import DetectorOptions, FaceDetector
from .images import to_bgr_uint8
from .landmarker import Landmarker, load_landmarker
from .redetect import FramePolicy, PolicyContext, RedetectOptions, make_policy
from .smoothing import preload_filterpy
from .sources import Frame, Source, prefetch
from .tracker import Tracker, TrackerOptions
from .types import Detection, FrameResult


def _video_detector() -> DetectorOptions:
    return DetectorOptions(running_mode="video", max_faces=5)


@dataclass(frozen=True)
class PipelineOptions:
    weights: str | Path | None = None
    """Checkpoint or ONNX export, or 'sdfl' / 'fc'; None = the shipped SDFL model."""
    device: str = "auto"
    engine: str = "auto"
    """The landmark model's runtime (``landmarker.ENGINES``); 'auto': torch on CUDA, on the CPU
    ``landmarker.cpu_engine()``."""
    num_threads: int | None = None
    """The CPU engine's threads; None = its default (see :func:`streaming_options`)."""
    crops_per_face: int | None = None
    """Test-time crops per face (1, 5 or 9; :class:`Landmarker`), at that many times the landmark model's
    time. None: the detector's running mode chooses (:func:`~sdfl_core.crops.default_crops_per_face`: more
    for photos, 1 for video)."""
    passes: int | None = None
    """Landmark passes per face (1, 2 or 3; :class:`Landmarker`): each pass after the first crops the face
    from the landmarks of the pass before, at that many times the landmark model's time. None: the
    detector's running mode chooses (:func:`~sdfl_core.crops.default_passes`: more for photos, 1 for video)."""
    mirror: bool = False
    """Also run each crop's mirror image and average (:class:`Landmarker`), at twice the landmark model's time."""
    upright: bool = True
    """Cut tilted faces upright, turned by the roll of their eyes (:class:`Landmarker`); False: axis-aligned crops."""
    detector: DetectorOptions = field(default_factory=_video_detector)
    """The face detector, and the running mode of the whole pipeline: "video" (consecutive frames,
    tracked and smoothed) or "image" (every frame an unrelated photo: no track or filter state crosses
    frames, smoothed == raw, ids number the faces of one photo). Must match the source's
    ``running_mode`` in :meth:`Pipeline.run_frames`."""
    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    """Association and smoothing; ``tracker.smoothing`` is the one smoothing knob (0 = off)."""
    redetect: RedetectOptions = field(default_factory=RedetectOptions)

    def crops_to_run(self) -> int:
        """``crops_per_face``, or when None the default of the detector's running mode."""
        return self.crops_per_face or default_crops_per_face(self.detector.running_mode)

    def passes_to_run(self) -> int:
        """``passes``, or when None the default of the detector's running mode."""
        return self.passes or default_passes(self.detector.running_mode)

    def __post_init__(self) -> None:
        for name, kind in (("detector", DetectorOptions), ("tracker", TrackerOptions), ("redetect", RedetectOptions)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"PipelineOptions.{name} must be a {kind.__name__}, got {getattr(self, name)!r}")

    @property
    def running_mode(self) -> str:
        return self.detector.running_mode


def streaming_options(options: PipelineOptions) -> PipelineOptions:
    """``options`` for :meth:`Pipeline.run_frames` with the detector running ahead in its own thread:
    one ONNX Runtime thread unless ``num_threads`` is set, since the detector has the other core
    (docs/benchmarks has the measurement)."""
    if options.num_threads is None and options.redetect.every == 1:
        return replace(options, num_threads=1)
    return options


class Pipeline:
    """Owns the detector (native resources: use as a context manager), the landmarker, the tracker and
    the detection policy.

    ``landmarker`` shares a loaded model between pipelines; ``options.weights``, ``device``,
    ``num_threads``, ``crops_per_face`` and ``passes`` then must stay at their defaults (they would load another)."""

    def __init__(self, options: PipelineOptions | None = None, landmarker: Landmarker | None = None,
                 policy: FramePolicy | None = None) -> None:
        self.options = options or PipelineOptions()
        # The tracker's smoother needs filterpy from a video's second frame on: its import overlaps the
        # loading below and is done before the first frame, not a stall in the stream (preload_filterpy).
        preloading = preload_filterpy() if self.options.running_mode == "video" else None
        if landmarker is not None:
            given = [n for n, v in (("weights", self.options.weights), ("device", self.options.device != "auto" and self.options.device),
                                    ("engine", self.options.engine != "auto" and self.options.engine),
                                    ("num_threads", self.options.num_threads),
                                    ("crops_per_face", self.options.crops_per_face is not None),
                                    ("passes", self.options.passes is not None), ("mirror", self.options.mirror),
                                    ("upright", not self.options.upright)) if v]
            if given:
                raise ValueError(f"Pipeline got a landmarker and PipelineOptions.{', '.join(given)}: pass one or the other")
        self.landmarker = landmarker or load_landmarker(self.options.weights, self.options.device, self.options.engine,
                                                        num_threads=self.options.num_threads,
                                                        crops_per_face=self.options.crops_to_run(),
                                                        passes=self.options.passes_to_run(),
                                                        mirror=self.options.mirror, upright=self.options.upright)
        self.detector = FaceDetector(self.options.detector)
        self.tracker = Tracker(self.options.tracker)
        self.policy = policy or make_policy(
            PolicyContext(self.landmarker, str(self.options.detector.model), self.options.tracker.iou_threshold,
                          self.options.detector.max_faces), self.options.redetect)
        self._last_ts = -1
        if preloading is not None:
            preloading.join()

    @property
    def info(self):
        return self.landmarker.info

    @property
    def schema(self):
        return self.landmarker.schema

    @property
    def smoothing(self) -> float:
        return self.tracker.smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self.tracker.smoothing = value

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.detector.close()

    def reset(self) -> None:
        """Forget tracks, ids, filters and the policy's state (a seek, a new source, the next photo);
        detector timestamps keep increasing."""
        self.tracker.reset()
        self.policy.reset()

    @property
    def image_mode(self) -> bool:
        return self.options.running_mode == "image"

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
        detections = self.detector.detect(bgr, ts) if self.policy.should_detect() else None
        return self._finish(bgr, index, timestamp_ms, ts, detections, (time.perf_counter() - t0) * 1e3)

    def _finish(self, bgr: np.ndarray, index: int, timestamp_ms: float | None, ts: int,
                detections: list[Detection] | None, detect_ms: float) -> FrameResult:
        """Landmarks and tracks of a frame, given its detections (None: a frame between detections)."""
        if self.image_mode:
            self.reset()  # a photo shares nothing with the one before it
        t1 = time.perf_counter()
        detected = detections is not None
        if detected:
            landmarks, squares = self.policy.at_detection(bgr, detections)
        else:
            detections, landmarks = self.policy.between(bgr)
            squares = [None] * len(detections)
        t2 = time.perf_counter()
        tracks, indices = self.tracker.update_indexed(detections, landmarks)
        self.policy.observe(tracks, indices, squares, detected)
        t3 = time.perf_counter()
        timings = {"detect": detect_ms, "landmarks": (t2 - t1) * 1e3, "track": (t3 - t2) * 1e3,
                   "total": detect_ms + (t3 - t1) * 1e3}
        return FrameResult(index=index, timestamp_ms=float(timestamp_ms if timestamp_ms is not None else ts),
                           tracks=tuple(tracks), timings_ms=timings, frame_size=(bgr.shape[1], bgr.shape[0]))

    def run_frames(self, source: Source, max_frames: int = 0, decode_ahead: bool = True,
                   detect_ahead: bool | None = None) -> Iterator[tuple[Frame, FrameResult]]:
        """(frame, result) for each frame of ``source``, in order.

        ``decode_ahead`` decodes in a background thread. ``detect_ahead`` (default: when the detector runs
        on every frame, ``redetect.every == 1``) also runs the detector in a background thread, one frame
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
            detect_ahead = self.options.redetect.every == 1
        if detect_ahead and self.options.redetect.every != 1:
            raise ValueError("detect_ahead needs redetect.every == 1")
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
