"""Small widgets of the main window: the message banner and the playback transport bar."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

BANNER_STYLES = {
    "info": "background: #1f3b57; color: #e8f1fb; border-radius: 4px;",
    "warning": "background: #5a4500; color: #fff6d5; border-radius: 4px;",
    "error": "background: #6b1d1d; color: #ffe9e9; border-radius: 4px;",
}


def dropped_file(event) -> str | None:
    """The first local file of a drag-and-drop event, None when it carries none."""
    urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
    return urls[0].toLocalFile() if urls else None


def accept_file_drags(event) -> None:
    if event.mimeData().hasUrls():
        event.acceptProposedAction()


class Banner(QWidget):
    """An inline message above the video (never modal), dismissed with its close button."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("\u2715")
        close.setAutoRaise(True)
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        row.addWidget(self.label, 1)
        row.addWidget(close)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.level = "info"
        self.topic = ""
        self.hide()

    def show_message(self, text: str, level: str = "info", topic: str = "") -> None:
        """``topic`` ('source', 'model') lets a later success clear the message it answers."""
        self.level, self.topic = level, topic
        self.setStyleSheet(BANNER_STYLES[level])
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class TransportBar(QWidget):
    """Play / pause, step back, step, a seek slider and the frame position."""

    play_toggled = pyqtSignal()
    step_back = pyqtSignal()
    step = pyqtSignal()
    seek = pyqtSignal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        style = self.style()
        self.play_button = self._button(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause), "Play / pause (Space)")
        self.back_button = self._button(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward), "Step back (Left)")
        self.step_button = self._button(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Step (Right)")
        self.play_button.clicked.connect(self.play_toggled)
        self.back_button.clicked.connect(self.step_back)
        self.step_button.clicked.connect(self.step)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setTracking(False)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.valueChanged.connect(self.seek)
        self.position = QLabel("-")
        self.position.setMinimumWidth(90)
        self.position.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        for w in (self.play_button, self.back_button, self.step_button):
            row.addWidget(w)
        row.addWidget(self.slider, 1)
        row.addWidget(self.position)

    def _button(self, icon, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return b

    def set_source(self, num_frames: int, seekable: bool) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, num_frames - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.slider.setEnabled(seekable and num_frames > 1)
        self.back_button.setEnabled(seekable)
        self._total = num_frames

    def set_position(self, index: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        total = getattr(self, "_total", 0)
        self.position.setText(f"{index + 1} / {total}" if total else f"frame {index + 1}")

    def set_playing(self, playing: bool) -> None:
        pix = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(pix))
