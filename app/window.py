"""The main window: wires the capture and inference workers to the view, controls, menus and sinks.

It owns no compute: frames arrive as ``FrameBundle`` signals from the inference thread and the window
only renders (``app.render``), shows and records them.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QMetaObject, QThread, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QMessageBox, QSplitter, QVBoxLayout,
                             QWidget)

from sdfl_core.images import IMAGE_EXTENSIONS
from sdfl_core.registry import fc_twin

from .controls import ControlsPanel
from .messages import FrameBundle, ModelSummary, SourceInfo
from .occlusion import random_occluder
from .render import ViewOptions, render
from .recording import Recorder
from .video_view import VideoView
from .widgets import Banner, TransportBar
from .workers import CaptureWorker, InferenceWorker, LatestFrameQueue

log = logging.getLogger(__name__)

VIDEO_FILTER = "Videos and images (*.mp4 *.avi *.mov *.mkv *.webm *.m4v " + " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS)) + ");;All files (*)"
MODEL_FILTER = "Models (*.pt *.onnx);;All files (*)"
HOW_TO_OPEN = "Open a video or image with Ctrl+O (or drop it on the window), a folder with Ctrl+Shift+O, a camera with Ctrl+K."


class MainWindow(QMainWindow):
    # Requests to the workers: queued signals, so every call runs in the worker's own thread.
    _open = pyqtSignal(str, bool, int)
    _play = pyqtSignal()
    _pause = pyqtSignal()
    _step = pyqtSignal()
    _seek = pyqtSignal(int, int)
    _lossless = pyqtSignal(bool)
    _max_frames = pyqtSignal(int)
    _load_model = pyqtSignal(str)
    _load_compare = pyqtSignal(str)
    _smoothing = pyqtSignal(bool, float)
    _occluders = pyqtSignal(object)
    _cover = pyqtSignal(float, str)
    _compare = pyqtSignal(bool)
    _frozen = pyqtSignal(bool)
    _reprocess = pyqtSignal()
    _close_source = pyqtSignal()

    frame_shown = pyqtSignal(object)       # FrameBundle, after it was drawn
    source_finished = pyqtSignal(int, int)  # generation, frames shown in it

    def __init__(self, weights: str | None = None, device: str = "auto", interactive: bool = True) -> None:
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
        self._refresh_timer.timeout.connect(self._reprocess)
        self._model_choice = weights or "sdfl"

        self._build_ui()
        self._build_menus()
        self._start_workers(device)
        self._load_model.emit(self._model_choice)
        self.view.setFocus()

    # --- construction ---------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.view = VideoView()
        self.view.set_message("Starting ...")
        self.banner = Banner()
        self.transport = TransportBar()
        self.controls = ControlsPanel()
        video_side = QWidget()
        v = QVBoxLayout(video_side)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(4)
        v.addWidget(self.banner)
        v.addWidget(self.view, 1)
        v.addWidget(self.transport)
        splitter = QSplitter()
        splitter.addWidget(video_side)
        splitter.addWidget(self.controls)
        splitter.setStretchFactor(0, 1)
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)

        self.status_fps = QLabel("- fps")
        self.status_ms = QLabel("")
        self.status_faces = QLabel("0 faces")
        self.status_dropped = QLabel("0 dropped")
        self.status_rec = QLabel("")
        self.status_rec.setStyleSheet("color: #e0413a; font-weight: bold;")
        for w in (self.status_rec, self.status_ms, self.status_faces, self.status_dropped, self.status_fps):
            self.statusBar().addPermanentWidget(w)

        self.view.occluders_changed.connect(self._on_occluders)
        self.view.file_dropped.connect(self.open_source)
        self.transport.play_toggled.connect(self.toggle_play)
        self.transport.step.connect(self.step)
        self.transport.step_back.connect(self.step_back)
        self.transport.seek.connect(self.seek)
        c = self.controls
        c.camera_requested.connect(lambda i: self.open_source(f"camera:{i}"))
        c.open_file_requested.connect(self.open_file_dialog)
        c.demo_requested.connect(lambda: self.open_source("demo"))
        c.model_chosen.connect(self._on_model_chosen)
        c.compare_toggled.connect(self.set_compare)
        c.draw_options_changed.connect(self.redraw)
        c.smoothing_changed.connect(self._smoothing)
        c.lossless_toggled.connect(self._lossless)
        c.cover_changed.connect(self._on_cover)
        c.random_occluder_requested.connect(self.add_random_occluder)
        c.clear_occluders_requested.connect(lambda: self.view.set_occluders([]))
        c.freeze_toggled.connect(self.set_frozen)

    def _action(self, menu, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        f = bar.addMenu("&File")
        self._action(f, "&Open video or image...", self.open_file_dialog, QKeySequence.StandardKey.Open)
        self._action(f, "Open &folder of images...", self.open_folder_dialog, "Ctrl+Shift+O")
        self._action(f, "Open &camera", lambda: self.open_source(f"camera:{self.controls.camera_index.value()}"), "Ctrl+K")
        self._action(f, "&Demo clip", lambda: self.open_source("demo"), "Ctrl+D")
        f.addSeparator()
        self.record_action = self._action(f, "&Record annotated video...", self.toggle_recording, "Ctrl+R", checkable=True)
        self.csv_action = self._action(f, "&Export landmarks CSV...", self.toggle_csv, "Ctrl+E", checkable=True)
        self._action(f, "Save &screenshot...", self.screenshot_dialog, QKeySequence.StandardKey.Save)
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        p = bar.addMenu("&Playback")
        self._action(p, "&Play / pause", self.toggle_play, "Space")
        self._action(p, "&Step forward", self.step, "Right")
        self._action(p, "Step &back", self.step_back, "Left")
        self._action(p, "&Restart", lambda: self.seek(0), "Home")
        p.addSeparator()
        process_all = self._action(p, "Process &every frame", self.controls.lossless.setChecked, checkable=True)
        self.controls.lossless.toggled.connect(process_all.setChecked)

        m = bar.addMenu("&Model")
        self._action(m, "Shipped &SDFL model", lambda: self.load_model("sdfl"))
        self._action(m, "Shipped &FC twin", lambda: self.load_model("fc"))
        self._action(m, "Open &checkpoint...", self.open_model_dialog, "Ctrl+M")
        m.addSeparator()
        compare = self._action(m, "&Compare with FC twin", self.controls.compare.setChecked, "Ctrl+T", checkable=True)
        self.controls.compare.toggled.connect(compare.setChecked)
        self._action(m, "Choose comparison &model...", self.open_compare_dialog)

        view = bar.addMenu("&View")
        keys = {"landmarks": "L", "raw": "Shift+L", "boxes": "B", "ids": "Shift+B", "graph": "G", "weights": "W",
                "indices": "N"}
        for name, check in self.controls.overlay_checks().items():
            act = self._action(view, check.text(), check.setChecked, keys[name], checkable=True)
            act.setChecked(check.isChecked())
            check.toggled.connect(act.setChecked)
        view.addSeparator()
        self._action(view, "&Full screen", self._toggle_full_screen, "F11")

        o = bar.addMenu("&Occlusion")
        self._action(o, "&Random occluder", self.add_random_occluder, "O")
        self._action(o, "&Clear occluders", lambda: self.view.set_occluders([]), "Shift+O")
        self._action(o, "Delete selected", self.view.delete_selected, QKeySequence.StandardKey.Delete)
        freeze = self._action(o, "&Freeze frame and show displacement", self.controls.freeze.setChecked, "F", checkable=True)
        self.controls.freeze.toggled.connect(freeze.setChecked)

        h = bar.addMenu("&Help")
        self._action(h, "&Keyboard shortcuts", self._show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self._action(h, "&About sdfl", self._show_about)

    def _start_workers(self, device: str) -> None:
        self.queue = LatestFrameQueue()
        self.capture = CaptureWorker(self.queue)
        self.inference = InferenceWorker(self.queue, device)
        self.capture_thread = QThread(self)
        self.capture_thread.setObjectName("capture")
        self.inference_thread = QThread(self)
        self.inference_thread.setObjectName("inference")
        self.capture.moveToThread(self.capture_thread)
        self.inference.moveToThread(self.inference_thread)
        self.capture_thread.started.connect(self.capture.start)

        cap, inf = self.capture, self.inference
        self._open.connect(cap.open)
        self._play.connect(cap.play)
        self._pause.connect(cap.pause)
        self._step.connect(cap.step)
        self._seek.connect(cap.seek)
        self._lossless.connect(cap.set_lossless)
        self._max_frames.connect(cap.set_max_frames)
        self._close_source.connect(cap.close)
        cap.frame_queued.connect(inf.process_next)
        cap.source_opened.connect(self._on_source_opened)
        cap.source_failed.connect(lambda msg: self.show_error(msg, "error", "source"))
        cap.source_fallback.connect(lambda msg: self.show_error(msg, "warning", "source"))
        cap.source_ended.connect(self._on_source_ended)
        cap.playing_changed.connect(self._on_playing)

        self._load_model.connect(inf.load_model)
        self._load_compare.connect(inf.load_compare_model)
        self._smoothing.connect(inf.set_smoothing)
        self._occluders.connect(inf.set_occluders)
        self._cover.connect(inf.set_cover)
        self._compare.connect(inf.set_compare)
        self._frozen.connect(inf.set_frozen)
        self._reprocess.connect(inf.reprocess)
        inf.result_ready.connect(self._on_result)
        inf.model_loaded.connect(self._on_model_loaded)
        inf.model_failed.connect(lambda msg: self.show_error(f"{msg} - choose a model in the Model menu "
                                                             f"(Ctrl+M opens a checkpoint).", "error", "model"))
        inf.busy.connect(self._on_busy)

        self.capture_thread.start()
        self.inference_thread.start()

    # --- public API (menus, tests and smoke mode use the same calls) ------------------------------
    def start(self, source: str | None) -> None:
        """Open ``source``; without one try camera 0 and fall back to the demo clip."""
        if source:
            self.open_source(source)
        else:
            self._generation += 1
            self.view.set_message("Looking for a camera ...")
            self._open.emit("camera:0", True, self._generation)

    def open_source(self, spec: str) -> None:
        self._generation += 1
        self.view.set_message(f"Opening {spec} ...")
        self._open.emit(str(spec), False, self._generation)

    def load_model(self, choice: str) -> None:
        """'sdfl', 'fc' or a .pt / .onnx path; loads in the inference thread."""
        self._model_choice = str(choice)
        self.controls.model_label.setText(f"loading {Path(choice).name} ...")
        self._load_model.emit(str(choice))

    def set_compare_model(self, choice: str) -> None:
        self._load_compare.emit(str(choice))

    def play(self) -> None:
        if self.controls.freeze.isChecked():
            self.controls.freeze.setChecked(False)
        self._play.emit()

    def pause(self) -> None:
        self._pause.emit()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def step(self) -> None:
        self.controls.freeze.setChecked(False)
        self._step.emit()

    def step_back(self) -> None:
        if self.last_bundle is not None and self.source_info is not None and self.source_info.seekable:
            self.pause()
            self.seek(max(0, self.last_bundle.frame.index - 1))

    def seek(self, index: int) -> None:
        if self.source_info is None or not self.source_info.seekable:
            return
        self._generation += 1
        self._seek.emit(int(index), self._generation)

    def set_max_frames(self, count: int) -> None:
        self._max_frames.emit(int(count))

    def set_lossless(self, lossless: bool) -> None:
        self.controls.lossless.setChecked(lossless)

    def set_compare(self, enabled: bool) -> None:
        if enabled and self.model is not None and not self.model.compare_name:
            self.set_compare_model(self._twin_choice())
        self._compare.emit(enabled)
        self.redraw()
        self._refresh_if_paused()

    def set_frozen(self, frozen: bool) -> None:
        if frozen:
            self.pause()
        self.view.caption = ""
        self._frozen.emit(frozen)
        if not frozen:
            self._reprocess.emit()

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

    # --- dialogs ----------------------------------------------------------------------------------
    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video or image", "", VIDEO_FILTER)
        if path:
            self.open_source(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if path:
            self.open_source(path)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a checkpoint or ONNX model", "", MODEL_FILTER)
        if path:
            self.load_model(path)

    def open_compare_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Comparison model (e.g. the FC twin)", "", MODEL_FILTER)
        if path:
            self.set_compare_model(path)
            self.controls.compare.setChecked(True)

    def screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "sdfl.png", "PNG (*.png)")
        if path:
            self.save_screenshot(path)

    def toggle_recording(self) -> None:
        if self.recorder.recording_video:
            self.stop_recording()
            return
        path, _ = QFileDialog.getSaveFileName(self, "Record annotated video", "sdfl.mp4", "MP4 video (*.mp4)")
        if not path:
            self.record_action.setChecked(False)
            return
        try:
            self.start_recording(path)
        except (OSError, ValueError) as exc:
            self.record_action.setChecked(False)
            self.show_error(str(exc))

    def toggle_csv(self) -> None:
        if self.recorder.exporting_csv:
            self.stop_csv()
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export landmarks CSV", "landmarks.csv", "CSV (*.csv)")
        if not path:
            self.csv_action.setChecked(False)
            return
        try:
            self.export_csv(path)
        except (OSError, ValueError) as exc:
            self.csv_action.setChecked(False)
            self.show_error(str(exc))

    def _on_model_chosen(self, key: str) -> None:
        if key == "file":
            self.open_model_dialog()
        else:
            self.load_model(key)

    def _twin_choice(self) -> str:
        return fc_twin(self._model_choice)

    def _show_shortcuts(self) -> None:
        lines = [f"{a.shortcut().toString()}\t{a.text().replace('&', '')}" for a in self.actions() if not a.shortcut().isEmpty()]
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", "\n".join(lines), QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        self._dialogs.append(box)
        box.show()

    def _show_about(self) -> None:
        QMessageBox.about(self, "About sdfl", "sdfl - real-time face landmarks with Structure-Coherent Deep Feature "
                                              "Learning (learned landmark graph, robust to occlusion).")

    def _toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # --- worker signals ---------------------------------------------------------------------------
    def _on_source_opened(self, info: SourceInfo) -> None:
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

    def _on_source_ended(self, generation: int, frames: int) -> None:
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

    def _on_playing(self, playing: bool) -> None:
        self.playing = playing
        self.transport.set_playing(playing)

    def _on_busy(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text)
            if self.last_bundle is None:
                self.view.set_message(text)
        else:
            self.statusBar().clearMessage()
            if self.view.message.startswith("loading"):
                self.view.set_message("")

    def _on_model_loaded(self, summary: ModelSummary) -> None:
        self.model = summary
        kind = "graph head" if summary.has_graph else "FC head (no graph)"
        text = f"{summary.name} ({kind}, {summary.schema.num_points} points)\n{summary.path}"
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

    def _on_result(self, bundle: FrameBundle) -> None:
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

    def _on_occluders(self, occluders) -> None:
        self._occluders.emit(tuple(occluders))
        self._refresh_if_paused()

    def _on_cover(self, fraction: float, side: str) -> None:
        self._cover.emit(fraction, side)
        self._refresh_if_paused()

    def _refresh_if_paused(self) -> None:
        # Coalesced: dragging an occluder asks for many refreshes, the model runs once per pause in them.
        if not self.playing and not self.controls.freeze.isChecked():
            self._refresh_timer.start()

    # --- drag and drop / close ------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_source(urls[0].toLocalFile())

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
