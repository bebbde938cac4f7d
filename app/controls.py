"""The side panel: source, model, overlays, smoothing and occlusion controls. It only emits signals."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sdfl_core.crops import CROPS_PER_FACE, PASSES, PHOTO_CROPS, PHOTO_PASSES
from sdfl_core.draw import DrawOptions
from sdfl_core.occluders import COVER_SIDES
from sdfl_core.registry import MODEL_CHOICES, MODEL_LABELS

MODEL_MENU = (*((MODEL_LABELS[key], key) for key in MODEL_CHOICES), ("Checkpoint file...", "file"))


def _slider(maximum: int, value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(0, maximum)
    s.setValue(value)
    return s


def _no_focus(*widgets) -> None:
    # Space and the arrow keys belong to playback, not to whichever checkbox was clicked last.
    for w in widgets:
        w.setFocusPolicy(Qt.FocusPolicy.NoFocus)


def _count_row(label: str, counts, verb: str, changed, tooltip: str, auto: str = "") -> tuple[QComboBox, QHBoxLayout]:
    """A labelled choice of a per-face work count (1 = real time), emitting ``changed`` with the count chosen;
    with ``auto`` a first item, the default, that emits 0: the source's mode chooses."""
    combo = QComboBox()
    if auto:
        combo.addItem(auto, 0)
    for count in counts:
        combo.addItem("1 (real time)" if count == 1 else f"{count} ({verb}, {count}x the work)", count)
    combo.setToolTip(tooltip)
    combo.activated.connect(lambda i: changed.emit(combo.itemData(i)))
    row = QHBoxLayout()
    row.addWidget(QLabel(label))
    row.addWidget(combo, 1)
    return combo, row


class ControlsPanel(QWidget):
    camera_requested = pyqtSignal(int)
    open_file_requested = pyqtSignal()
    demo_requested = pyqtSignal()
    model_chosen = pyqtSignal(str)            # 'sdfl', 'fc' or 'file' (the window asks for the file)
    compare_toggled = pyqtSignal(bool)
    draw_options_changed = pyqtSignal()
    smoothing_changed = pyqtSignal(bool, float)
    crops_per_face_changed = pyqtSignal(int)
    passes_changed = pyqtSignal(int)
    lossless_toggled = pyqtSignal(bool)
    cover_changed = pyqtSignal(float, str)
    random_occluder_requested = pyqtSignal()
    clear_occluders_requested = pyqtSignal()
    freeze_toggled = pyqtSignal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(270)
        self.setMaximumWidth(340)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._source_box())
        layout.addWidget(self._model_box())
        layout.addWidget(self._overlay_box())
        layout.addWidget(self._occlusion_box())
        layout.addStretch(1)

    # --- groups -------------------------------------------------------------------------------
    def _source_box(self) -> QGroupBox:
        box = QGroupBox("Source")
        # What is playing: the camera spin box below only picks the camera to open.
        self.current_source = QLabel("playing: nothing")
        self.current_source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        self.camera_index = QSpinBox()
        self.camera_index.setRange(0, 9)
        self.camera_index.setPrefix("camera ")
        cam = QPushButton("Open camera")
        cam.clicked.connect(lambda: self.camera_requested.emit(self.camera_index.value()))
        row.addWidget(self.camera_index)
        row.addWidget(cam)
        row2 = QHBoxLayout()
        open_btn = QPushButton("Open file...")
        open_btn.clicked.connect(self.open_file_requested)
        demo = QPushButton("Demo")
        demo.clicked.connect(self.demo_requested)
        row2.addWidget(open_btn)
        row2.addWidget(demo)
        self.lossless = QCheckBox("Process every frame (no drops)")
        self.lossless.setToolTip("Files: wait for the model on every frame instead of dropping frames to keep real time")
        self.lossless.toggled.connect(self.lossless_toggled)
        v = QVBoxLayout(box)
        v.addWidget(self.current_source)
        v.addLayout(row)
        v.addLayout(row2)
        v.addWidget(self.lossless)
        _no_focus(cam, open_btn, demo, self.lossless)
        return box

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        self.model_combo = QComboBox()
        for label, key in MODEL_MENU:
            self.model_combo.addItem(label, key)
        self.model_combo.activated.connect(lambda i: self.model_chosen.emit(self.model_combo.itemData(i)))
        self.model_label = QLabel("no model loaded")
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: palette(mid);")
        self.compare = QCheckBox("Compare side by side with FC twin")
        self.compare.toggled.connect(self.compare_toggled)
        # Test-time averaging (sdfl --crops-per-face) and landmark passes (sdfl --passes): more accurate points
        # on photos and paused frames, at N times the network's work per face, so video stays at 1 by default.
        self.crops_per_face, crops_row = _count_row(
            "Crops per face", CROPS_PER_FACE, "averaged", self.crops_per_face_changed,
            "Crops per face: the model also runs on copies of each face's crop shifted by 5 % of its side, and the "
            f"points are averaged (more accurate on photos). Auto: {PHOTO_CROPS} for photos, 1 for video and camera",
            auto=f"auto ({PHOTO_CROPS} for photos, 1 for video)")
        self.passes, passes_row = _count_row(
            "Passes per face", PASSES, "re-cropped", self.passes_changed,
            "Passes per face: each pass after the first crops the face again from the landmarks the pass before "
            "found, the crop the model was trained on (more accurate on photos). Auto: "
            f"{PHOTO_PASSES} for photos, 1 for video and camera",
            auto=f"auto ({PHOTO_PASSES} for photos, 1 for video)")
        v = QVBoxLayout(box)
        v.addWidget(self.model_combo)
        v.addWidget(self.model_label)
        v.addWidget(self.compare)
        v.addLayout(crops_row)
        v.addLayout(passes_row)
        _no_focus(self.model_combo, self.compare, self.crops_per_face, self.passes)
        return box

    def _overlay_box(self) -> QGroupBox:
        box = QGroupBox("Overlays")
        self.show_landmarks = QCheckBox("Landmarks (smoothed)")
        self.show_raw = QCheckBox("Raw landmarks")
        self.show_boxes = QCheckBox("Face boxes")
        self.show_ids = QCheckBox("Face ids")
        self.show_graph = QCheckBox("Learned graph (M)")
        self.show_weights = QCheckBox("Live edge weights")
        self.show_indices = QCheckBox("Landmark indices")
        defaults = DrawOptions()
        checks = [(self.show_landmarks, defaults.landmarks), (self.show_raw, defaults.raw), (self.show_boxes, defaults.boxes),
                  (self.show_ids, defaults.ids), (self.show_graph, True), (self.show_weights, True),
                  (self.show_indices, defaults.indices)]
        form = QVBoxLayout(box)
        grid = QHBoxLayout()
        left, right = QVBoxLayout(), QVBoxLayout()
        for k, (check, value) in enumerate(checks):
            check.setChecked(value)
            check.toggled.connect(lambda _=False: self.draw_options_changed.emit())
            (left if k % 2 == 0 else right).addWidget(check)
            _no_focus(check)
        grid.addLayout(left)
        grid.addLayout(right)
        form.addLayout(grid)
        self.smooth = QCheckBox("Smoothing")
        self.smooth.setChecked(True)
        self.smoothing = _slider(100, 50)
        self.smoothing_value = QLabel("0.50")
        self.smooth.toggled.connect(lambda _: self._emit_smoothing())
        self.smoothing.valueChanged.connect(lambda _: self._emit_smoothing())
        row = QHBoxLayout()
        row.addWidget(self.smooth)
        row.addWidget(self.smoothing, 1)
        row.addWidget(self.smoothing_value)
        form.addLayout(row)
        _no_focus(self.smooth, self.smoothing)
        # Models with a visibility output: points it thinks are covered are drawn hollow.
        self.visibility_threshold = _slider(100, int(round(100 * defaults.visibility_threshold)))
        self.visibility_threshold.setToolTip("Points whose predicted visibility is below this are drawn hollow "
                                             "(models with a visibility output)")
        self.visibility_value = QLabel(f"{defaults.visibility_threshold:.2f}")
        self.visibility_threshold.valueChanged.connect(self._emit_visibility_threshold)
        vrow = QHBoxLayout()
        vrow.addWidget(QLabel("Hollow below"))
        vrow.addWidget(self.visibility_threshold, 1)
        vrow.addWidget(self.visibility_value)
        form.addLayout(vrow)
        _no_focus(self.visibility_threshold)
        return box

    def _occlusion_box(self) -> QGroupBox:
        box = QGroupBox("Occlusion inspection")
        hint = QLabel("Drag on the video to draw an occluder; drag it to move, its corner to resize, "
                      "right-click or Delete to remove.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid);")
        rnd = QPushButton("Random occluder")
        rnd.clicked.connect(self.random_occluder_requested)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear_occluders_requested)
        row = QHBoxLayout()
        row.addWidget(rnd)
        row.addWidget(clear)
        self.cover = _slider(100, 0)
        self.cover_side = QComboBox()
        self.cover_side.addItems(COVER_SIDES)
        self.cover_value = QLabel("0%")
        self.cover.valueChanged.connect(lambda _: self._emit_cover())
        self.cover_side.currentTextChanged.connect(lambda _: self._emit_cover())
        cover_row = QHBoxLayout()
        cover_row.addWidget(self.cover, 1)
        cover_row.addWidget(self.cover_value)
        form = QFormLayout()
        form.addRow("Cover face from", self.cover_side)
        form.addRow("Covered", cover_row)
        self.freeze = QCheckBox("Freeze frame && show displacement")
        self.freeze.toggled.connect(self.freeze_toggled)
        v = QVBoxLayout(box)
        v.addWidget(hint)
        v.addLayout(row)
        v.addLayout(form)
        v.addWidget(self.freeze)
        _no_focus(rnd, clear, self.cover, self.cover_side, self.freeze)
        return box

    def show_model_choice(self, choice: str) -> None:
        """Select the combo entry of the loaded model; a file gets its own entry above 'Checkpoint file...'."""
        index = self.model_combo.findData(choice)
        if index < 0:
            from pathlib import Path

            index = self.model_combo.count() - 1
            self.model_combo.insertItem(index, Path(choice).name, choice)
            self.model_combo.setItemData(index, choice, Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentIndex(index)

    # --- values -------------------------------------------------------------------------------
    def _emit_smoothing(self) -> None:
        self.smoothing_value.setText(f"{self.smoothing.value() / 100:.2f}")
        self.smoothing.setEnabled(self.smooth.isChecked())
        self.smoothing_changed.emit(self.smooth.isChecked(), self.smoothing.value() / 100.0)

    def _emit_visibility_threshold(self, value: int) -> None:
        self.visibility_value.setText(f"{value / 100:.2f}")
        self.draw_options_changed.emit()

    def _emit_cover(self) -> None:
        self.cover_value.setText(f"{self.cover.value()}%")
        self.cover_changed.emit(self.cover.value() / 100.0, self.cover_side.currentText())

    def draw_options(self) -> DrawOptions:
        return DrawOptions(landmarks=self.show_landmarks.isChecked(), raw=self.show_raw.isChecked(),
                           boxes=self.show_boxes.isChecked(), ids=self.show_ids.isChecked(),
                           graph=self.show_graph.isChecked(), weights=self.show_weights.isChecked(),
                           indices=self.show_indices.isChecked(),
                           visibility_threshold=self.visibility_threshold.value() / 100.0)

    def overlay_checks(self) -> dict[str, QCheckBox]:
        return {"landmarks": self.show_landmarks, "raw": self.show_raw, "boxes": self.show_boxes, "ids": self.show_ids,
                "graph": self.show_graph, "weights": self.show_weights, "indices": self.show_indices}
