"""The capture thread: a source -> frames, pushed into a latest-frame-wins queue.

DeepLabCut-live style: ``CaptureWorker`` is moved to a ``QThread`` and pushes frames into a
``LatestFrameQueue`` of size 1 (a new frame replaces an unprocessed one; replacements are counted as
drops); ``inference.InferenceWorker`` takes the newest frame in a thread of its own.
"""
from __future__ import annotations

import logging
import threading

from PyQt6.QtCore import QObject, QTimer, pyqtSignal, pyqtSlot

from sdfl_core.images import to_bgr_uint8
from sdfl_core.sources import Frame, Source, open_source

from .messages import SourceInfo

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

    @pyqtSlot(str, bool, int, bool)
    def open(self, spec: str, fallback_to_demo: bool = False, generation: int = 0, sequence: bool = False) -> None:
        """Open ``spec``; ``sequence`` opens a folder of images as the frames of one video."""
        try:
            source = open_source(spec, sequence=sequence)
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
        self.source_opened.emit(SourceInfo(source.name, source.num_frames, source.fps, source.seekable, is_camera,
                                           source.running_mode))
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
