"""The two worker threads: capture (source -> frames) and inference (frames -> results).

DeepLabCut-live style: ``CaptureWorker`` is moved to a ``QThread`` and pushes frames into a
``LatestFrameQueue`` of size 1 (a new frame replaces an unprocessed one; replacements are counted as
drops); ``InferenceWorker`` lives in its own ``QThread``, takes the newest frame, runs the pipeline on
the (occluded) frame and sends a ``FrameBundle`` back by signal. Models load in the inference thread,
so the window never waits for them.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal, pyqtSlot

from sdfl_core.errors import first_line
from sdfl_core.images import to_bgr_uint8
from sdfl_core.landmarker import Landmarker, load_landmarker
from sdfl_core.pipeline import Pipeline, PipelineOptions
from sdfl_core.registry import require_model_file
from sdfl_core.tracker import TrackerOptions, smoothing_knob
from sdfl_core.sources import Frame, Source, open_source
from sdfl_core.types import FrameResult

from .inspection import inspect
from .messages import FrameBundle, Inspection, ModelSummary, SourceInfo
from .occlusion import Occluder, apply_occluders, cover_occluder

log = logging.getLogger(__name__)


class LatestFrameQueue:
    """A thread-safe queue of size 1: ``put`` replaces an unconsumed frame (counted in ``dropped``).

    ``idle`` is true when no frame is waiting and none is being processed, which is what the capture
    side waits for in lossless mode (every frame processed, none dropped).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: tuple[Frame, int] | None = None
        self._busy = False
        self.dropped = 0
        self.put_count = 0

    def put(self, frame: Frame, generation: int = 0) -> None:
        with self._lock:
            if self._item is not None:
                self.dropped += 1
            self._item = (frame, generation)
            self.put_count += 1

    def take(self) -> tuple[Frame, int] | None:
        """The newest (frame, generation) (marks the consumer busy until ``done``), or None when there is none.

        The generation changes when playback restarts (open, seek): the consumer then starts fresh tracks.
        """
        with self._lock:
            item, self._item = self._item, None
            if item is not None:
                self._busy = True
            return item

    def done(self) -> None:
        with self._lock:
            self._busy = False

    def clear(self) -> None:
        with self._lock:
            self._item = None

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._item is None and not self._busy


class CaptureWorker(QObject):
    """Owns the frame source; a timer in the capture thread paces playback at the source's fps."""

    source_opened = pyqtSignal(object)   # SourceInfo
    source_failed = pyqtSignal(str)
    source_fallback = pyqtSignal(str)    # the asked-for source failed; the demo plays instead
    source_ended = pyqtSignal(int, int)  # generation, frames read in it
    frame_captured = pyqtSignal(int)     # index of the frame just queued
    frame_queued = pyqtSignal()          # tells the inference worker a frame is waiting
    playing_changed = pyqtSignal(bool)

    def __init__(self, queue: LatestFrameQueue) -> None:
        super().__init__()
        self.queue = queue
        self.source: Source | None = None
        self._frames = None
        self._timer: QTimer | None = None
        self._playing = False
        self.lossless = False
        self.max_frames = 0
        self.frames_read = 0
        self.last_index = -1
        self.generation = 0

    @pyqtSlot()
    def start(self) -> None:
        """Runs in the capture thread (connected to ``QThread.started``)."""
        self._timer = QTimer(self)
        self._timer.setTimerType(self._timer.timerType().PreciseTimer)
        self._timer.timeout.connect(self._tick)

    @pyqtSlot(str, bool, int)
    def open(self, spec: str, fallback_to_demo: bool = False, generation: int = 0) -> None:
        try:
            source = open_source(spec)
        except (ValueError, FileNotFoundError, OSError) as exc:
            log.warning("cannot open %s: %s", spec, exc)
            if not fallback_to_demo:
                self.source_failed.emit(str(exc))
                return
            self.source_fallback.emit(f"{exc}. Playing the built-in demo instead: open a video or image with "
                                      f"Ctrl+O (or drop it on the window), a folder with Ctrl+Shift+O, "
                                      f"a camera with Ctrl+K.")
            source = open_source("demo")
        self._set_source(source, source.name.startswith("camera:"), generation)

    def _set_source(self, source: Source, is_camera: bool, generation: int) -> None:
        self.close()
        self.source = source
        self._frames = iter(source)
        self.generation = generation
        self.frames_read = 0
        self.last_index = -1
        self.queue.clear()
        self.source_opened.emit(SourceInfo(source.name, source.num_frames, source.fps, source.seekable, is_camera))
        self.play()

    def _interval_ms(self) -> int:
        fps = self.source.fps if self.source is not None and self.source.fps > 0 else 25.0
        return max(1, int(round(1000.0 / fps)))

    @pyqtSlot()
    def play(self) -> None:
        if self.source is None or self._timer is None:
            return
        self._timer.start(1 if self.lossless else self._interval_ms())
        if not self._playing:
            self._playing = True
            self.playing_changed.emit(True)

    @pyqtSlot()
    def pause(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self._playing:
            self._playing = False
            self.playing_changed.emit(False)

    @pyqtSlot(bool)
    def set_lossless(self, lossless: bool) -> None:
        self.lossless = lossless
        if self._playing:
            self.play()

    @pyqtSlot(int)
    def set_max_frames(self, count: int) -> None:
        self.max_frames = count

    @pyqtSlot()
    def step(self) -> None:
        self.pause()
        self._read_one()

    @pyqtSlot(int, int)
    def seek(self, index: int, generation: int) -> None:
        """Go to ``index``; frames from here on belong to ``generation`` (fresh tracks downstream)."""
        if self.source is None or not self.source.seekable:
            return
        self.source.seek(index)
        self._frames = iter(self.source)
        self.queue.clear()
        self.generation = generation
        self.frames_read = 0
        if not self._playing:
            self._read_one()

    def _tick(self) -> None:
        if self.lossless and not self.queue.idle:
            return
        self._read_one()

    def _read_one(self) -> None:
        if self._frames is None:
            return
        if self.max_frames and self.frames_read >= self.max_frames:
            self.pause()
            self.source_ended.emit(self.generation, self.frames_read)
            return
        try:
            frame = next(self._frames)
        except StopIteration:
            self.pause()
            self.source_ended.emit(self.generation, self.frames_read)
            return
        except (ValueError, OSError) as exc:  # e.g. a camera unplugged mid-run
            log.warning("%s", exc)
            self.pause()
            self._frames = None
            self.source_failed.emit(f"{exc} - open another source (Ctrl+O, Ctrl+K).")
            return
        self.frames_read += 1
        self.last_index = frame.index
        self.queue.put(Frame(frame.index, frame.timestamp_ms, to_bgr_uint8(frame.image), frame.source), self.generation)
        self.frame_captured.emit(frame.index)
        self.frame_queued.emit()

    @pyqtSlot()
    def close(self) -> None:
        self.pause()
        if self.source is not None:
            self.source.close()
        self.source = None
        self._frames = None

    @pyqtSlot()
    def shutdown(self) -> None:
        self.close()
        if self._timer is not None:
            self._timer.deleteLater()
            self._timer = None



class InferenceWorker(QObject):
    """Runs the pipeline (and, in compare mode, a second engine on the same detections)."""

    result_ready = pyqtSignal(object)    # FrameBundle
    model_loaded = pyqtSignal(object)    # ModelSummary
    model_failed = pyqtSignal(str)
    busy = pyqtSignal(str)               # a long operation started ("" when it ended)

    def __init__(self, queue: LatestFrameQueue, device: str = "auto") -> None:
        super().__init__()
        self.queue = queue
        self.device = device
        self.pipeline: Pipeline | None = None
        self._weights = Path()
        self.compare_engine: Landmarker | None = None
        self.compare_enabled = False
        self.occluders: tuple[Occluder, ...] = ()
        self.cover = (0.0, "left")
        self.smoothing = 0.5
        self.smooth = True
        self.frozen = False
        self._last_frame: Frame | None = None
        self.generation = 0
        self._rerun = False
        self._inspect_pending = False
        self._last_result: FrameResult | None = None
        self._last_box: np.ndarray | None = None
        self._clean_result: FrameResult | None = None
        self.processed = 0

    # --- models -----------------------------------------------------------------------------
    def _options(self) -> PipelineOptions:
        return PipelineOptions(tracker=TrackerOptions(smoothing=smoothing_knob(self.smoothing, off=not self.smooth)))

    @pyqtSlot(str)
    def load_model(self, choice: str) -> None:
        self.busy.emit(f"loading model {choice} ...")
        try:
            weights = require_model_file(choice)
            engine = load_landmarker(weights, self.device)
            pipeline = Pipeline(self._options(), landmarker=engine)
        except Exception as exc:  # any broken file must leave the app running with a message
            log.warning("model %s failed to load: %s", choice, exc)
            self.busy.emit("")
            self.model_failed.emit(first_line(exc))
            return
        if self.pipeline is not None:
            self.pipeline.close()
        self.pipeline = pipeline
        self._weights = weights
        self.busy.emit("")
        self._emit_summary()
        self.reprocess()

    @pyqtSlot(str)
    def load_compare_model(self, choice: str) -> None:
        self.busy.emit(f"loading comparison model {choice} ...")
        try:
            engine = load_landmarker(require_model_file(choice), self.device)
        except Exception as exc:
            log.warning("comparison model %s failed to load: %s", choice, exc)
            self.busy.emit("")
            self.compare_engine = None
            self.model_failed.emit(f"comparison model: {first_line(exc)}")
            return
        self.compare_engine = engine
        self.busy.emit("")
        if self.pipeline is not None:
            self._emit_summary()
        self.reprocess()

    def _emit_summary(self) -> None:
        info = self.pipeline.info
        compare = (self.compare_engine.info.name or "comparison") if self.compare_engine is not None else ""
        self.model_loaded.emit(ModelSummary(name=info.name or self._weights.stem, path=str(self._weights),
                                            schema=info.schema, mask=np.asarray(info.mask, bool),
                                            has_graph=info.config.head != "fc", compare_name=compare,
                                            has_visibility=self.pipeline.landmarker.has_visibility))

    @pyqtSlot()
    def reset_tracking(self) -> None:
        """A fresh pipeline on the same engine: tracks and detector clock exactly as a new run."""
        if self.pipeline is not None:
            engine = self.pipeline.landmarker
            self.pipeline.close()
            self.pipeline = Pipeline(self._options(), landmarker=engine)

    # --- settings ---------------------------------------------------------------------------
    @pyqtSlot(bool, float)
    def set_smoothing(self, enabled: bool, strength: float) -> None:
        self.smooth, self.smoothing = enabled, float(strength)
        if self.pipeline is not None:
            self.pipeline.smoothing = self.smoothing if enabled else 0.0

    @pyqtSlot(object)
    def set_occluders(self, occluders) -> None:
        self.occluders = tuple(occluders)
        self._refresh_paused()

    @pyqtSlot(float, str)
    def set_cover(self, fraction: float, side: str) -> None:
        self.cover = (float(fraction), side)
        self._refresh_paused()

    @pyqtSlot(bool)
    def set_compare(self, enabled: bool) -> None:
        self.compare_enabled = enabled
        self._refresh_paused()

    @pyqtSlot(bool)
    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        self._clean_result = self._last_result if frozen else None
        self._refresh_paused()

    def _refresh_paused(self) -> None:
        # Coalesced: the zero timer fires after every change already queued (e.g. a whole drag) is applied.
        if self.frozen and not self._inspect_pending:
            self._inspect_pending = True
            QTimer.singleShot(0, self._run_pending_inspect)

    def _run_pending_inspect(self) -> None:
        self._inspect_pending = False
        if self.frozen:
            self._inspect()

    # --- frames -----------------------------------------------------------------------------
    def occluders_for(self, boxes: list[np.ndarray]) -> list[Occluder]:
        occluders = list(self.occluders)
        fraction, side = self.cover
        for box in boxes:
            cover = cover_occluder(box, fraction, side)
            if cover is not None:
                occluders.append(cover)
        return occluders

    def _known_boxes(self) -> list[np.ndarray]:
        # The cover slider needs the face box before inference; the previous frame's is the best guess.
        return [] if self._last_box is None else [self._last_box]

    @pyqtSlot()
    def reprocess(self) -> None:
        """Run the last frame again (after a model or occluder change while paused)."""
        if self.frozen:
            self._inspect()
        elif self._last_frame is not None and self.queue.idle:
            self.queue.put(self._last_frame, self.generation)
            self._rerun = True
            try:
                self.process_next()
            finally:
                self._rerun = False

    @pyqtSlot()
    def process_next(self) -> None:
        item = self.queue.take()
        if item is None:
            return
        frame, generation = item
        try:
            if generation != self.generation:
                self.generation = generation
                self._last_box = None
                self.reset_tracking()
            self._process(frame)
        finally:
            self.queue.done()

    def _process(self, frame: Frame) -> None:
        self._last_frame = frame
        model_input = apply_occluders(frame.image, self.occluders_for(self._known_boxes()))
        if self.pipeline is None:
            h, w = model_input.shape[:2]
            result = FrameResult(frame.index, frame.timestamp_ms, (), {}, (w, h))
            compare = ()
        else:
            try:
                result = self.pipeline.process(model_input, frame.index, frame.timestamp_ms)
                compare = self._compare(model_input, [t.detection for t in result.tracks])
            except Exception as exc:
                log.exception("inference failed on frame %d", frame.index)
                self.model_failed.emit(f"inference failed: {first_line(exc)}")
                return
        self._last_result = result
        if result.tracks:
            self._last_box = max((t.detection.box for t in result.tracks), key=lambda b: b[2] * b[3])
        self.processed += 1
        self.result_ready.emit(FrameBundle(frame, model_input, result, compare, Inspection(), self.queue.dropped,
                                           self.generation, self._rerun))

    def _compare(self, image: np.ndarray, detections) -> tuple:
        if not self.compare_enabled or self.compare_engine is None or not detections:
            return ()
        return tuple(self.compare_engine.predict_boxes(image, detections))

    def _inspect(self) -> None:
        frame, result = self._last_frame, self._clean_result
        if frame is None or result is None or self.pipeline is None:
            return
        detections = [t.detection for t in result.tracks]
        occluders = self.occluders_for([d.box for d in detections])
        model_input = apply_occluders(frame.image, occluders)
        try:
            inspection = inspect(self.pipeline.landmarker, frame.image, model_input, detections, occluders)
            compare = self._compare(model_input, detections)
        except Exception as exc:
            log.exception("inspection failed")
            self.model_failed.emit(f"inspection failed: {first_line(exc)}")
            return
        self.result_ready.emit(FrameBundle(frame, model_input, result, compare, inspection, self.queue.dropped,
                                           self.generation, True))

    @pyqtSlot()
    def shutdown(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None
