"""The inference thread: frames -> results. ``InferenceWorker`` lives in its own ``QThread``, takes the
newest frame from the capture queue, runs the pipeline on the (occluded) frame and sends a ``FrameBundle``
back by signal. Models load in this thread, so the window never waits for them.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal, pyqtSlot

from sdfl_core.crops import default_crops_per_face, default_passes
from sdfl_core.detector import DetectorOptions, default_detector, default_max_faces
from sdfl_core.errors import first_line
from sdfl_core.landmarker import Landmarker, load_landmarker
from sdfl_core.occluders import Occluder, apply_occluders, cover_occluder
from sdfl_core.pipeline import Pipeline, PipelineOptions
from sdfl_core.registry import require_model_file
from sdfl_core.smoothing import smoothing_knob
from sdfl_core.sources import Frame
from sdfl_core.tracker import TrackerOptions
from sdfl_core.types import FrameResult

from .capture import LatestFrameQueue
from .inspection import inspect
from .messages import FrameBundle, Inspection, ModelSummary, SourceInfo

log = logging.getLogger(__name__)


class InferenceWorker(QObject):
    """Runs the pipeline (and, in compare mode, a second engine on the same detections)."""

    result_ready = pyqtSignal(object)    # FrameBundle
    model_loaded = pyqtSignal(object)    # ModelSummary
    model_failed = pyqtSignal(str)
    busy = pyqtSignal(str)               # a long operation started ("" when it ended)

    def __init__(self, queue: LatestFrameQueue, device: str = "auto", runtime: str = "auto") -> None:
        super().__init__()
        self.queue = queue
        self.device = device
        self.runtime = runtime  # the models' engine (landmarker.ENGINES)
        self.pipeline: Pipeline | None = None
        self._weights = Path()
        self.compare_engine: Landmarker | None = None
        self.compare_enabled = False
        self.occluders: tuple[Occluder, ...] = ()
        self.cover = (0.0, "left")
        self.smoothing = 0.5
        self.smooth = True
        self.crops_per_face = 0  # 0: the source's mode chooses (default_crops_per_face)
        self.passes = 0  # 0: the source's mode chooses (default_passes)
        self.frozen = False
        self._last_frame: Frame | None = None
        self.generation = 0
        self._rerun = False
        self._inspect_pending = False
        self._last_result: FrameResult | None = None
        self._last_box: np.ndarray | None = None
        self._clean_result: FrameResult | None = None
        self.processed = 0
        self.running_mode = "video"

    # --- models -----------------------------------------------------------------------------
    def _options(self) -> PipelineOptions:
        return PipelineOptions(detector=DetectorOptions(model=default_detector(self.running_mode), running_mode=self.running_mode,
                                                        max_faces=default_max_faces(self.running_mode)),
                               tracker=TrackerOptions(smoothing=smoothing_knob(self.smoothing, off=not self.smooth)))

    @pyqtSlot(object)
    def on_source_opened(self, info: SourceInfo) -> None:
        """Run the pipeline in the new source's mode: photos share no tracks or filter state."""
        if info.running_mode != self.running_mode:
            self.running_mode = info.running_mode
            for engine in self._engines():
                if not self.passes:
                    engine.passes = self._passes()
                if not self.crops_per_face:
                    engine.crops_per_face = self._crops()
            self.reset_tracking()

    @pyqtSlot(str)
    def load_model(self, choice: str) -> None:
        self.busy.emit(f"loading model {choice} ...")
        try:
            weights = require_model_file(choice)
            engine = load_landmarker(weights, self.device, self.runtime, crops_per_face=self._crops(), passes=self._passes())
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
            engine = load_landmarker(require_model_file(choice), self.device, self.runtime, crops_per_face=self._crops(),
                                     passes=self._passes())
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
                                            has_visibility=self.pipeline.landmarker.has_visibility,
                                            engine=self.pipeline.landmarker.engine_label))

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

    @pyqtSlot(int)
    def set_crops_per_face(self, count: int) -> None:
        """Test-time crops per face for the model and its comparison twin (0: the source's mode chooses); a
        paused frame is run again."""
        self.crops_per_face = count
        self._set_on_engines("crops_per_face", self._crops())

    @pyqtSlot(int)
    def set_passes(self, count: int) -> None:
        """Landmark passes per face for the model and its comparison twin (0: the source's mode chooses); a
        paused frame is run again."""
        self.passes = count
        self._set_on_engines("passes", self._passes())

    def _crops(self) -> int:
        return self.crops_per_face or default_crops_per_face(self.running_mode)

    def _passes(self) -> int:
        return self.passes or default_passes(self.running_mode)

    def _engines(self) -> list[Landmarker]:
        """The model's landmarker and its comparison twin's, those loaded."""
        return [e for e in (self.pipeline.landmarker if self.pipeline is not None else None, self.compare_engine) if e is not None]

    def _set_on_engines(self, name: str, value) -> None:
        """One per-face setting on the model and its comparison twin; a paused frame is run again."""
        for engine in self._engines():
            setattr(engine, name, value)
        self.reprocess()

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
