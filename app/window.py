"""The main window: wires the capture and inference workers to the view, controls, menus and sinks.

It owns no compute: frames arrive as ``FrameBundle`` signals from the inference thread and the window
only renders (``app.render``), shows and records them.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QMetaObject, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QMainWindow, QMessageBox

from sdfl_core.occluders import random_occluder
from sdfl_core.registry import fc_twin

from .menus import build_menus, open_model_dialog
from .messages import FrameBundle, ModelSummary, SourceInfo
from .recording import Recorder
from .render import ViewOptions, render
from .widgets import accept_file_drags, dropped_file
from .wiring import build_ui, start_workers

log = logging.getLogger(__name__)

HOW_TO_OPEN = "Open a video or image with Ctrl+O (or drop it on the window), a folder with Ctrl+Shift+O, a camera with Ctrl+K."


class MainWindow(QMainWindow):
    # Requests to the workers: queued signals, so every call runs in the worker's own thread.
    ask_open = pyqtSignal(str, bool, int, bool)  # spec, fall back to the demo, generation, folder as a sequence
    ask_play = pyqtSignal()
    ask_pause = pyqtSignal()
    ask_step = pyqtSignal()
    ask_seek = pyqtSignal(int, int)
    ask_lossless = pyqtSignal(bool)
    ask_max_frames = pyqtSignal(int)
    ask_load_model = pyqtSignal(str)
    ask_load_compare = pyqtSignal(str)
    ask_smoothing = pyqtSignal(bool, float)
    ask_crops_per_face = pyqtSignal(int)
    ask_passes = pyqtSignal(int)
    ask_occluders = pyqtSignal(object)
    ask_cover = pyqtSignal(float, str)
    ask_compare = pyqtSignal(bool)
    ask_frozen = pyqtSignal(bool)
    ask_reprocess = pyqtSignal()
    ask_close_source = pyqtSignal()

    frame_shown = pyqtSignal(object)       # FrameBundle, after it was drawn
    source_finished = pyqtSignal(int, int)  # generation, frames shown in it

    def __init__(self, weights: str | None = None, device: str = "auto", interactive: bool = True,
                 engine: str = "auto") -> None:
        super().__init__()
        self.setWindowTitle("sdfl - face landmark tracker")
        self.resize(1320, 820)
        self.setAcceptDrops(True)
        self.interactive = interactive
        self.model: ModelSummary | None = None
        self.source_info: SourceInfo | None = None
        self.last_bundle: FrameBundle | None = None
        self.last_image: np.ndarray | None = None
        self.playing = False
        self.errors: list[str] = []
        self.frames_shown = 0
        self._generation = 0
        self._shown_in_generation = 0
        self._ended: tuple[int, int] | None = None
        self._csv_generation: int | None = None
        self._csv_lossless_before = False
        self._fps = 0.0
        self._last_time = 0.0
        self._rng = np.random.default_rng()
        self._dialogs: list[QMessageBox] = []
        self.recorder = Recorder()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(30)
        self._refresh_timer.timeout.connect(self.ask_reprocess)
        self._model_choice = weights or "sdfl"

        build_ui(self)
        build_menus(self)
        start_workers(self, device, engine)
        self.ask_load_model.emit(self._model_choice)
        self.view.setFocus()

    # --- public API (menus, tests and smoke mode use the same calls) ------------------------------
    def start(self, source: str | None) -> None:
        """Open ``source``; without one try camera 0 and fall back to the demo clip."""
        if source:
            self.open_source(source)
        else:
            self._generation += 1
            self.view.set_message("Looking for a camera ...")
            self.ask_open.emit("camera:0", True, self._generation, False)

    def open_source(self, spec: str, sequence: bool | None = None) -> None:
        """Open ``spec``. A folder of images runs in image mode (every photo on its own) unless ``sequence``
        (default: the File menu's "Folders are video sequences") treats it as consecutive frames."""
        if sequence is None:
            sequence = self.sequence_action.isChecked()
        self._generation += 1
        self.view.set_message(f"Opening {spec} ...")
        self.ask_open.emit(str(spec), False, self._generation, bool(sequence))

    def load_model(self, choice: str) -> None:
        """'sdfl', 'fc' or a .pt / .onnx path; loads in the inference thread."""
        self._model_choice = str(choice)
        self.controls.model_label.setText(f"loading {Path(choice).name} ...")
        self.ask_load_model.emit(str(choice))

    def set_compare_model(self, choice: str) -> None:
        self.ask_load_compare.emit(str(choice))

    def play(self) -> None:
        if self.controls.freeze.isChecked():
            self.controls.freeze.setChecked(False)
        self.ask_play.emit()

    def pause(self) -> None:
        self.ask_pause.emit()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def step(self) -> None:
        self.controls.freeze.setChecked(False)
        self.ask_step.emit()

    def step_back(self) -> None:
        if self.last_bundle is not None and self.source_info is not None and self.source_info.seekable:
            self.pause()
            self.seek(max(0, self.last_bundle.frame.index - 1))

    def seek(self, index: int) -> None:
        if self.source_info is None or not self.source_info.seekable:
            return
        self._generation += 1
        self.ask_seek.emit(int(index), self._generation)

    def set_max_frames(self, count: int) -> None:
        self.ask_max_frames.emit(int(count))

    def set_lossless(self, lossless: bool) -> None:
        self.controls.lossless.setChecked(lossless)

    def set_compare(self, enabled: bool) -> None:
        if enabled and self.model is not None and not self.model.compare_name:
            self.set_compare_model(self._twin_choice())
        self.ask_compare.emit(enabled)
        self.redraw()
        self._refresh_if_paused()

    def set_frozen(self, frozen: bool) -> None:
        if frozen:
            self.pause()
        self.view.caption = ""
        self.ask_frozen.emit(frozen)
        if not frozen:
            self.ask_reprocess.emit()

    def add_random_occluder(self) -> None:
        box = None
        if self.last_bundle is not None and self.last_bundle.result.tracks:
            box = self.last_bundle.result.tracks[0].detection.box
        size = self.last_bundle.result.frame_size if self.last_bundle is not None else (640, 480)
        self.view.set_occluders(self.view.occluders + [random_occluder(self._rng, box, size)])

    def start_recording(self, path: str | Path) -> None:
        fps = self.source_info.fps if self.source_info is not None else 25.0
        self.recorder.start_video(path, fps)
        self.record_action.setChecked(True)
        self.status_rec.setText(f"\u25cf REC {Path(path).name}")
        self.statusBar().showMessage(f"recording to {path}", 4000)

    def stop_recording(self) -> int:
        frames = self.recorder.stop_video()
        self.record_action.setChecked(False)
        self.status_rec.setText("")
        self.statusBar().showMessage(f"recording stopped ({frames} frames)", 5000)
        return frames

    def export_csv(self, path: str | Path) -> None:
        """Track the whole file from its first frame into ``path`` (same rows as ``sdfl track --csv``).

        Playback restarts with fresh tracks and waits for the model on every frame (no drops); a camera
        is recorded from now until the export is stopped.
        """
        if self.model is None:
            raise ValueError("no model loaded: choose one in the Model menu before exporting landmarks")
        self.recorder.start_csv(path, self.model.schema.num_points, self.model.has_visibility)
        self.csv_action.setChecked(True)
        self._csv_lossless_before = self.controls.lossless.isChecked()
        self.set_lossless(True)
        self.controls.freeze.setChecked(False)
        if self.source_info is not None and self.source_info.seekable:
            self.pause()
            self.set_max_frames(0)
            self.seek(0)
            self._csv_generation = self._generation
            self.play()
        else:
            self._csv_generation = self._generation
        self.statusBar().showMessage(f"exporting landmarks to {path}", 4000)

    def stop_csv(self) -> int:
        rows = self.recorder.stop_csv()
        self._csv_generation = None
        self.csv_action.setChecked(False)
        self.set_lossless(self._csv_lossless_before)
        self.statusBar().showMessage(f"CSV export finished ({rows} rows)", 6000)
        return rows

    def save_screenshot(self, path: str | Path) -> bool:
        ok = self.grab().save(str(path))
        if ok:
            self.statusBar().showMessage(f"screenshot saved to {path}", 4000)
        else:
            self.show_error(f"cannot save screenshot to {path}", "error")
        return ok

    def show_error(self, text: str, level: str = "error", topic: str = "") -> None:
        """Banner + status bar; a non-modal message box too when a person is at the keyboard."""
        log.log(logging.ERROR if level == "error" else logging.WARNING, "%s", text)
        if level == "error":
            self.errors.append(text)
        self.banner.show_message(text, level, topic)
        self.statusBar().showMessage(text, 10000)
        if self.last_bundle is None:
            self.view.set_message("")
        if self.interactive and level == "error":
            box = QMessageBox(QMessageBox.Icon.Warning, "sdfl", text, QMessageBox.StandardButton.Ok, self)
            box.setModal(False)
            box.finished.connect(lambda _: self._dialogs.remove(box) if box in self._dialogs else None)
            self._dialogs.append(box)
            box.show()

    def redraw(self) -> None:
        if self.last_bundle is not None:
            self._draw(self.last_bundle)

    def on_model_chosen(self, key: str) -> None:
        if key == "file":
            open_model_dialog(self)
        else:
            self.load_model(key)

    def _twin_choice(self) -> str:
        return fc_twin(self._model_choice)

    # --- worker signals ---------------------------------------------------------------------------
    def on_source_opened(self, info: SourceInfo) -> None:
        self.source_info = info
        self.last_bundle = None
        self._shown_in_generation = 0
        self._ended = None
        self.transport.set_source(info.num_frames, info.seekable)
        shown = Path(info.name).name if not info.is_camera else info.name
        self.setWindowTitle(f"sdfl - {shown}")
        self.controls.current_source.setText(f"playing: {shown}")
        self.controls.current_source.setToolTip(info.name)
        self.view.set_message("")
        if info.name == "demo":
            if not self.banner.isVisible():
                self.banner.show_message(f"Playing the built-in demo clip. {HOW_TO_OPEN}", "info", "source")
        elif self.banner.topic == "source":
            self.banner.hide()
        self.statusBar().showMessage(f"opened {info.name}", 4000)

    def on_source_ended(self, generation: int, frames: int) -> None:
        if generation == self._generation:
            self._ended = (generation, frames)
            self._check_finished()

    def _check_finished(self) -> None:
        if self._ended is None or self._shown_in_generation < self._ended[1]:
            return
        generation, frames = self._ended
        self._ended = None
        if self._csv_generation == generation:
            self.stop_csv()
        self.source_finished.emit(generation, frames)

    def on_playing(self, playing: bool) -> None:
        self.playing = playing
        self.transport.set_playing(playing)

    def on_busy(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text)
            if self.last_bundle is None:
                self.view.set_message(text)
        else:
            self.statusBar().clearMessage()
            if self.view.message.startswith("loading"):
                self.view.set_message("")

    def on_model_loaded(self, summary: ModelSummary) -> None:
        self.model = summary
        kind = "graph head" if summary.has_graph else "FC head (no graph)"
        text = f"{summary.name} ({kind}, {summary.schema.num_points} points, {summary.engine})\n{summary.path}"
        if summary.compare_name:
            text += f"\ncompare: {summary.compare_name}"
        self.controls.model_label.setText(text)
        self.controls.show_model_choice(self._model_choice)
        self.controls.show_graph.setEnabled(summary.has_graph)
        self.controls.show_weights.setEnabled(summary.has_graph)
        if self.banner.topic == "model":
            self.banner.hide()
        self.statusBar().showMessage(f"model {summary.name} loaded", 4000)
        self.redraw()

    def on_result(self, bundle: FrameBundle) -> None:
        if bundle.generation != self._generation:
            return  # a frame from before the last open/seek
        now = time.perf_counter()
        if not bundle.rerun:
            if self._last_time:
                rate = 1.0 / max(now - self._last_time, 1e-6)
                self._fps = rate if not self._fps else 0.9 * self._fps + 0.1 * rate
            self._last_time = now
            self.frames_shown += 1
            self._shown_in_generation += 1
            if self._csv_generation == bundle.generation:
                self.recorder.write_result(bundle.result, bundle.frame.source)
        self.last_bundle = bundle
        self._draw(bundle)
        if self.recorder.recording_video and self.last_image is not None:
            try:
                self.recorder.write_frame(self.last_image)
            except (OSError, ValueError) as exc:
                self.stop_recording()
                self.show_error(str(exc))
        self._update_status(bundle)
        self.frame_shown.emit(bundle)
        self._check_finished()

    def _draw(self, bundle: FrameBundle) -> None:
        options = ViewOptions(draw=self.controls.draw_options(), compare=self.controls.compare.isChecked())
        image, caption = render(bundle, self.model, options)
        self.last_image = image
        self.view.caption = caption
        self.view.set_image(image, pane_width=bundle.model_input.shape[1])
        if self.view.message and self.model is not None:
            self.view.set_message("")

    def _update_status(self, bundle: FrameBundle) -> None:
        t = bundle.result.timings_ms
        self.status_fps.setText(f"{self._fps:5.1f} fps")
        if t:
            self.status_ms.setText("  ".join(f"{k} {v:.1f} ms" for k, v in t.items()))
        self.status_faces.setText(f"{len(bundle.result.tracks)} face{'s' if len(bundle.result.tracks) != 1 else ''}")
        self.status_dropped.setText(f"{bundle.dropped} dropped")
        self.transport.set_position(bundle.frame.index)

    def on_occluders(self, occluders) -> None:
        self.ask_occluders.emit(tuple(occluders))
        self._refresh_if_paused()

    def on_cover(self, fraction: float, side: str) -> None:
        self.ask_cover.emit(fraction, side)
        self._refresh_if_paused()

    def _refresh_if_paused(self) -> None:
        # Coalesced: dragging an occluder asks for many refreshes, the model runs once per pause in them.
        if not self.playing and not self.controls.freeze.isChecked():
            self._refresh_timer.start()

    # --- drag and drop / close ------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        accept_file_drags(event)

    def dropEvent(self, event) -> None:
        path = dropped_file(event)
        if path:
            self.open_source(path)

    def shutdown(self) -> None:
        """Stop playback, close sinks and the source, and end both threads (idempotent)."""
        if not self.capture_thread.isRunning() and not self.inference_thread.isRunning():
            return
        self.recorder.close()
        for worker, thread in ((self.capture, self.capture_thread), (self.inference, self.inference_thread)):
            # A blocking queued call runs the clean-up in the worker's own thread, then the thread stops.
            QMetaObject.invokeMethod(worker, "shutdown", Qt.ConnectionType.BlockingQueuedConnection)
            thread.quit()
            thread.wait(10000)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)
