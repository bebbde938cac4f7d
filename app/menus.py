"""The main window's menus and its file dialogs: actions that call the window's public API."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QMessageBox

from sdfl_core.images import IMAGE_EXTENSIONS

VIDEO_FILTER = ("Videos and images (*.mp4 *.avi *.mov *.mkv *.webm *.m4v "
                + " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS)) + ");;All files (*)")
MODEL_FILTER = "Models (*.pt *.onnx);;All files (*)"


def action(window, menu, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
    act = QAction(text, window)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
        act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    act.setCheckable(checkable)
    if tip:
        act.setStatusTip(tip)
    act.triggered.connect(slot)
    menu.addAction(act)
    window.addAction(act)
    return act


def build_menus(window) -> None:
    bar = window.menuBar()
    f = bar.addMenu("&File")
    action(window, f, "&Open video or image...", lambda: open_file_dialog(window), QKeySequence.StandardKey.Open)
    action(window, f, "Open &folder of images...", lambda: open_folder_dialog(window), "Ctrl+Shift+O")
    window.sequence_action = action(window, f, "Folders are video &sequences", lambda: None, checkable=True,
                                    tip="Off: every photo of a folder on its own (image mode). On: the folder's "
                                        "images are consecutive frames, tracked and smoothed (like --sequence).")
    action(window, f, "Open &camera", lambda: window.open_source(f"camera:{window.controls.camera_index.value()}"), "Ctrl+K")
    action(window, f, "&Demo clip", lambda: window.open_source("demo"), "Ctrl+D")
    f.addSeparator()
    window.record_action = action(window, f, "&Record annotated video...", lambda: toggle_recording(window), "Ctrl+R", checkable=True)
    window.csv_action = action(window, f, "&Export landmarks CSV...", lambda: toggle_csv(window), "Ctrl+E", checkable=True)
    action(window, f, "Save &screenshot...", lambda: screenshot_dialog(window), QKeySequence.StandardKey.Save)
    f.addSeparator()
    action(window, f, "&Quit", window.close, QKeySequence.StandardKey.Quit)

    p = bar.addMenu("&Playback")
    action(window, p, "&Play / pause", window.toggle_play, "Space")
    action(window, p, "&Step forward", window.step, "Right")
    action(window, p, "Step &back", window.step_back, "Left")
    action(window, p, "&Restart", lambda: window.seek(0), "Home")
    p.addSeparator()
    process_all = action(window, p, "Process &every frame", window.controls.lossless.setChecked, checkable=True)
    window.controls.lossless.toggled.connect(process_all.setChecked)

    m = bar.addMenu("&Model")
    action(window, m, "Shipped &SDFL model", lambda: window.load_model("sdfl"))
    action(window, m, "Shipped &FC twin", lambda: window.load_model("fc"))
    action(window, m, "Open &checkpoint...", lambda: open_model_dialog(window), "Ctrl+M")
    m.addSeparator()
    compare = action(window, m, "&Compare with FC twin", window.controls.compare.setChecked, "Ctrl+T", checkable=True)
    window.controls.compare.toggled.connect(compare.setChecked)
    action(window, m, "Choose comparison &model...", lambda: open_compare_dialog(window))

    view = bar.addMenu("&View")
    keys = {"landmarks": "L", "raw": "Shift+L", "boxes": "B", "ids": "Shift+B", "graph": "G", "weights": "W",
            "indices": "N"}
    for name, check in window.controls.overlay_checks().items():
        act = action(window, view, check.text(), check.setChecked, keys[name], checkable=True)
        act.setChecked(check.isChecked())
        check.toggled.connect(act.setChecked)
    view.addSeparator()
    action(window, view, "&Full screen", lambda: toggle_full_screen(window), "F11")

    o = bar.addMenu("&Occlusion")
    action(window, o, "&Random occluder", window.add_random_occluder, "O")
    action(window, o, "&Clear occluders", lambda: window.view.set_occluders([]), "Shift+O")
    action(window, o, "Delete selected", window.view.delete_selected, QKeySequence.StandardKey.Delete)
    freeze = action(window, o, "&Freeze frame and show displacement", window.controls.freeze.setChecked, "F", checkable=True)
    window.controls.freeze.toggled.connect(freeze.setChecked)

    h = bar.addMenu("&Help")
    action(window, h, "&Keyboard shortcuts", lambda: show_shortcuts(window), QKeySequence.StandardKey.HelpContents)
    action(window, h, "&About sdfl", lambda: show_about(window))


def open_file_dialog(window) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Open video or image", "", VIDEO_FILTER)
    if path:
        window.open_source(path)


def open_folder_dialog(window) -> None:
    path = QFileDialog.getExistingDirectory(window, "Open a folder of images")
    if path:
        window.open_source(path)


def open_model_dialog(window) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Open a checkpoint or ONNX model", "", MODEL_FILTER)
    if path:
        window.load_model(path)


def open_compare_dialog(window) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Comparison model (e.g. the FC twin)", "", MODEL_FILTER)
    if path:
        window.set_compare_model(path)
        window.controls.compare.setChecked(True)


def screenshot_dialog(window) -> None:
    path, _ = QFileDialog.getSaveFileName(window, "Save screenshot", "sdfl.png", "PNG (*.png)")
    if path:
        window.save_screenshot(path)


def _save_and_start(window, checked_action, title: str, default: str, file_filter: str, start) -> None:
    path, _ = QFileDialog.getSaveFileName(window, title, default, file_filter)
    if not path:
        checked_action.setChecked(False)
        return
    try:
        start(path)
    except (OSError, ValueError) as exc:
        checked_action.setChecked(False)
        window.show_error(str(exc))


def toggle_recording(window) -> None:
    if window.recorder.recording_video:
        window.stop_recording()
    else:
        _save_and_start(window, window.record_action, "Record annotated video", "sdfl.mp4", "MP4 video (*.mp4)",
                        window.start_recording)


def toggle_csv(window) -> None:
    if window.recorder.exporting_csv:
        window.stop_csv()
    else:
        _save_and_start(window, window.csv_action, "Export landmarks CSV", "landmarks.csv", "CSV (*.csv)", window.export_csv)


def show_shortcuts(window) -> None:
    lines = [f"{a.shortcut().toString()}\t{a.text().replace('&', '')}" for a in window.actions() if not a.shortcut().isEmpty()]
    box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", "\n".join(lines), QMessageBox.StandardButton.Ok, window)
    box.setModal(False)
    window._dialogs.append(box)
    box.show()


def show_about(window) -> None:
    QMessageBox.about(window, "About sdfl", "sdfl - real-time face landmarks with Structure-Coherent Deep Feature "
                                          "Learning (learned landmark graph, robust to occlusion).")


def toggle_full_screen(window) -> None:
    window.showNormal() if window.isFullScreen() else window.showFullScreen()
