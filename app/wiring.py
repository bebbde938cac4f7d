"""How the main window is put together: its widgets and layout, and its two worker threads with the
queued signals between them. Both connect only the window's public signals and handlers."""
from __future__ import annotations

from PyQt6.QtCore import QThread
from PyQt6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from .capture import CaptureWorker, LatestFrameQueue
from .controls import ControlsPanel
from .inference import InferenceWorker
from .menus import open_file_dialog
from .video_view import VideoView
from .widgets import Banner, TransportBar


def build_ui(window) -> None:
    window.view = VideoView()
    window.view.set_message("Starting ...")
    window.banner = Banner()
    window.transport = TransportBar()
    window.controls = ControlsPanel()
    video_side = QWidget()
    v = QVBoxLayout(video_side)
    v.setContentsMargins(0, 0, 0, 0)
    v.setSpacing(4)
    v.addWidget(window.banner)
    v.addWidget(window.view, 1)
    v.addWidget(window.transport)
    splitter = QSplitter()
    splitter.addWidget(video_side)
    splitter.addWidget(window.controls)
    splitter.setStretchFactor(0, 1)
    splitter.setChildrenCollapsible(False)
    window.setCentralWidget(splitter)

    window.status_fps = QLabel("- fps")
    window.status_ms = QLabel("")
    window.status_faces = QLabel("0 faces")
    window.status_dropped = QLabel("0 dropped")
    window.status_rec = QLabel("")
    window.status_rec.setStyleSheet("color: #e0413a; font-weight: bold;")
    for w in (window.status_rec, window.status_ms, window.status_faces, window.status_dropped, window.status_fps):
        window.statusBar().addPermanentWidget(w)

    window.view.occluders_changed.connect(window.on_occluders)
    window.view.file_dropped.connect(window.open_source)
    window.transport.play_toggled.connect(window.toggle_play)
    window.transport.step.connect(window.step)
    window.transport.step_back.connect(window.step_back)
    window.transport.seek.connect(window.seek)
    c = window.controls
    c.camera_requested.connect(lambda i: window.open_source(f"camera:{i}"))
    c.open_file_requested.connect(lambda: open_file_dialog(window))
    c.demo_requested.connect(lambda: window.open_source("demo"))
    c.model_chosen.connect(window.on_model_chosen)
    c.compare_toggled.connect(window.set_compare)
    c.draw_options_changed.connect(window.redraw)
    c.smoothing_changed.connect(window.ask_smoothing)
    c.crops_per_face_changed.connect(window.ask_crops_per_face)
    c.passes_changed.connect(window.ask_passes)
    c.lossless_toggled.connect(window.ask_lossless)
    c.cover_changed.connect(window.on_cover)
    c.random_occluder_requested.connect(window.add_random_occluder)
    c.clear_occluders_requested.connect(lambda: window.view.set_occluders([]))
    c.freeze_toggled.connect(window.set_frozen)


def start_workers(window, device: str, engine: str = "auto") -> None:
    window.queue = LatestFrameQueue()
    window.capture = CaptureWorker(window.queue)
    window.inference = InferenceWorker(window.queue, device, engine)
    window.capture_thread = QThread(window)
    window.capture_thread.setObjectName("capture")
    window.inference_thread = QThread(window)
    window.inference_thread.setObjectName("inference")
    window.capture.moveToThread(window.capture_thread)
    window.inference.moveToThread(window.inference_thread)
    window.capture_thread.started.connect(window.capture.start)

    cap, inf = window.capture, window.inference
    window.ask_open.connect(cap.open)
    window.ask_play.connect(cap.play)
    window.ask_pause.connect(cap.pause)
    window.ask_step.connect(cap.step)
    window.ask_seek.connect(cap.seek)
    window.ask_lossless.connect(cap.set_lossless)
    window.ask_max_frames.connect(cap.set_max_frames)
    window.ask_close_source.connect(cap.close)
    cap.frame_queued.connect(inf.process_next)
    cap.source_opened.connect(window.on_source_opened)
    cap.source_opened.connect(inf.on_source_opened)  # queued before the source's first frame_queued
    cap.source_failed.connect(lambda msg: window.show_error(msg, "error", "source"))
    cap.source_fallback.connect(lambda msg: window.show_error(msg, "warning", "source"))
    cap.source_ended.connect(window.on_source_ended)
    cap.playing_changed.connect(window.on_playing)

    window.ask_load_model.connect(inf.load_model)
    window.ask_load_compare.connect(inf.load_compare_model)
    window.ask_smoothing.connect(inf.set_smoothing)
    window.ask_crops_per_face.connect(inf.set_crops_per_face)
    window.ask_passes.connect(inf.set_passes)
    window.ask_occluders.connect(inf.set_occluders)
    window.ask_cover.connect(inf.set_cover)
    window.ask_compare.connect(inf.set_compare)
    window.ask_frozen.connect(inf.set_frozen)
    window.ask_reprocess.connect(inf.reprocess)
    inf.result_ready.connect(window.on_result)
    inf.model_loaded.connect(window.on_model_loaded)
    inf.model_failed.connect(lambda msg: window.show_error(f"{msg} - choose a model in the Model menu "
                                                         f"(Ctrl+M opens a checkpoint).", "error", "model"))
    inf.busy.connect(window.on_busy)

    window.capture_thread.start()
    window.inference_thread.start()
