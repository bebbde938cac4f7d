"""The video widget: shows the rendered frame scaled to fit, and lets the user draw, drag, resize and
delete occluder rectangles on it (in image pixels). Files dropped on it are opened."""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from sdfl_core.occluders import Occluder

from .widgets import accept_file_drags, dropped_file

HANDLE_PX = 8.0
"""How close (in screen pixels) to a rectangle's corner a press resizes instead of moving it."""


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """A QImage viewing ``image`` (the caller keeps the array alive while the QImage is used)."""
    h, w = image.shape[:2]
    return QImage(image.data, w, h, int(image.strides[0]), QImage.Format.Format_BGR888)


class VideoView(QWidget):
    occluders_changed = pyqtSignal(object)   # tuple[Occluder, ...]
    file_dropped = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(480, 360)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setMouseTracking(True)
        self._image: np.ndarray | None = None
        self._qimage: QImage | None = None
        self.pane_width = 0
        """Width in image pixels of the editable (left) pane; the image may hold two panes side by side."""
        self.occluders: list[Occluder] = []
        self.selected = -1
        self.edit_enabled = True
        self.message = ""
        self.caption = ""
        self._drag: tuple[str, int, QPointF, Occluder] | None = None

    # --- content ------------------------------------------------------------------------------
    def set_image(self, image_bgr: np.ndarray, pane_width: int | None = None) -> None:
        self._image = np.ascontiguousarray(image_bgr)
        self._qimage = bgr_to_qimage(self._image)
        self.pane_width = pane_width or image_bgr.shape[1]
        self.update()

    @property
    def image(self) -> np.ndarray | None:
        return self._image

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    def set_occluders(self, occluders, emit: bool = True) -> None:
        self.occluders = list(occluders)
        self.selected = min(self.selected, len(self.occluders) - 1)
        self.update()
        if emit:
            self.occluders_changed.emit(tuple(self.occluders))

    def delete_selected(self) -> None:
        if 0 <= self.selected < len(self.occluders):
            del self.occluders[self.selected]
            self.selected = -1
            self.set_occluders(self.occluders)

    # --- geometry -----------------------------------------------------------------------------
    def _transform(self) -> tuple[float, float, float]:
        """(scale, x offset, y offset) from image pixels to widget pixels."""
        if self._image is None:
            return 1.0, 0.0, 0.0
        h, w = self._image.shape[:2]
        scale = min(self.width() / w, self.height() / h)
        return scale, (self.width() - w * scale) / 2, (self.height() - h * scale) / 2

    # Image coordinates are sdfl's (pixel centres on integers): pixel i is drawn over [i - 0.5, i + 0.5).
    def to_image(self, pos: QPointF) -> QPointF:
        s, ox, oy = self._transform()
        return QPointF((pos.x() - ox) / s - 0.5, (pos.y() - oy) / s - 0.5)

    def to_widget(self, occ: Occluder) -> QRectF:
        s, ox, oy = self._transform()
        return QRectF(ox + (occ.x + 0.5) * s, oy + (occ.y + 0.5) * s, occ.w * s, occ.h * s)

    def _hit(self, pos: QPointF) -> tuple[str, int]:
        for k in reversed(range(len(self.occluders))):
            r = self.to_widget(self.occluders[k])
            corner = QPointF(r.right(), r.bottom())
            if (pos - corner).manhattanLength() <= 2 * HANDLE_PX:
                return "resize", k
            if r.contains(pos):
                return "move", k
        return "draw", -1

    # --- painting -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 26, 30))
        if self._qimage is not None:
            s, ox, oy = self._transform()
            h, w = self._image.shape[:2]
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(QRectF(ox, oy, w * s, h * s), self._qimage)
            for k, occ in enumerate(self.occluders):
                r = self.to_widget(occ)
                selected = k == self.selected
                p.setPen(QPen(QColor(255, 210, 0) if selected else QColor(235, 235, 235), 2, Qt.PenStyle.DashLine))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(r)
                p.fillRect(QRectF(r.right() - HANDLE_PX / 2, r.bottom() - HANDLE_PX / 2, HANDLE_PX, HANDLE_PX),
                           QColor(255, 210, 0) if selected else QColor(235, 235, 235))
        if self.caption:
            self._text_box(p, self.caption, bottom=True)
        if self.message:
            self._text_box(p, self.message, bottom=False)
        p.end()

    def _text_box(self, p: QPainter, text: str, bottom: bool) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        p.setFont(font)
        margin = 10
        rect = QRectF(margin, margin, self.width() - 2 * margin, 60)
        bound = p.boundingRect(rect, int(Qt.TextFlag.TextWordWrap), text).adjusted(-8, -6, 8, 6)
        if bottom:
            bound.moveBottom(self.height() - margin)
        p.fillRect(bound, QColor(0, 0, 0, 170))
        p.setPen(QColor(240, 240, 240))
        p.drawText(bound.adjusted(8, 6, -8, -6), int(Qt.TextFlag.TextWordWrap), text)

    # --- editing ------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if self._image is None or not self.edit_enabled:
            return
        pos = event.position()
        if event.button() == Qt.MouseButton.RightButton:
            mode, k = self._hit(pos)
            if k >= 0:
                self.selected = k
                self.delete_selected()
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        mode, k = self._hit(pos)
        start = self.to_image(pos)
        if mode == "draw":
            if not 0 <= start.x() < self.pane_width or not 0 <= start.y() < self._image.shape[0]:
                return
            self.occluders.append(Occluder(start.x(), start.y(), 1.0, 1.0))
            k, mode = len(self.occluders) - 1, "resize"
        self.selected = k
        self._drag = (mode, k, start, self.occluders[k])
        self.update()

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._drag is None:
            mode, _ = self._hit(pos)
            cursor = {"resize": Qt.CursorShape.SizeFDiagCursor, "move": Qt.CursorShape.SizeAllCursor}
            self.setCursor(cursor.get(mode, Qt.CursorShape.CrossCursor))
            return
        mode, k, start, orig = self._drag
        now = self.to_image(pos)
        dx, dy = now.x() - start.x(), now.y() - start.y()
        if mode == "move":
            self.occluders[k] = Occluder(orig.x + dx, orig.y + dy, orig.w, orig.h)
        else:
            self.occluders[k] = Occluder.from_corners(orig.x, orig.y, orig.x + orig.w + dx, orig.y + orig.h + dy)
        self.update()
        self.occluders_changed.emit(tuple(self.occluders))

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is not None:
            mode, k, _, _ = self._drag
            self._drag = None
            occ = self.occluders[k]
            if occ.w < 3 and occ.h < 3:  # a click, not a drag: no rectangle
                del self.occluders[k]
                self.selected = -1
            self.occluders_changed.emit(tuple(self.occluders))
            self.update()

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selected()
        else:
            super().keyPressEvent(event)

    # --- drag and drop --------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        accept_file_drags(event)

    def dropEvent(self, event) -> None:
        path = dropped_file(event)
        if path:
            self.file_dropped.emit(path)
            event.acceptProposedAction()
