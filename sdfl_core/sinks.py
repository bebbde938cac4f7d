"""Result sinks: a CSV writer that flushes every frame, an MP4 writer (both context managers) and a folder
of annotated images, one per frame.

The CSV and MP4 write to a temporary file beside their target (``partial_path``, a hidden name in the same
folder) and move it into place when they close: an existing file is only replaced by a finished one. Each
image of the folder is written the same way, so an interrupt never leaves half an image. Leaving the
``with`` block normally or by an interrupt (KeyboardInterrupt, which ``sdfl track`` also raises on
SIGTERM) keeps the output; leaving it by an error discards it and leaves the target as it was.
Missing folders of the target are created.
"""
from __future__ import annotations

import csv
import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .files import plain_file_mode
from .images import is_image_path
from .types import FrameResult

log = logging.getLogger(__name__)

_META_COLUMNS = ["source", "frame", "time_ms", "face_id", "score", "box_x", "box_y", "box_w", "box_h"]


def csv_columns(num_points: int, include_raw: bool = True, visibility: bool = False) -> list[str]:
    """Header of the landmark CSV: metadata, smoothed x then y per point, then (optionally) the raw ones,
    then (for a model with a visibility output) each point's probability of being visible."""
    if num_points < 0:
        raise ValueError(f"num_points must be >= 0, got {num_points}")
    cols = _META_COLUMNS + [f"x_{i}" for i in range(num_points)] + [f"y_{i}" for i in range(num_points)]
    if include_raw:
        cols += [f"raw_x_{i}" for i in range(num_points)] + [f"raw_y_{i}" for i in range(num_points)]
    if visibility:
        cols += [f"vis_{i}" for i in range(num_points)]
    return cols


class _PartialFile:
    """A temporary file beside ``path`` that becomes ``path`` on ``commit`` (an atomic rename)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
        except OSError as exc:
            raise OSError(f"cannot write {what} to {path}: {exc.strerror or exc}") from exc
        os.close(fd)
        os.chmod(tmp, plain_file_mode())
        self.partial = Path(tmp)

    def commit(self) -> None:
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)

    def finish(self, keep: bool) -> None:
        """Move into place (``keep``) or delete, leaving ``path`` as it was."""
        if keep:
            self.commit()
        else:
            self.discard()


def check_writable(path: str | Path, what: str) -> None:
    """Raise a clear OSError now, before any work, if ``path`` cannot be written (its folder is created)."""
    path = Path(path)
    if path.is_dir():
        raise OSError(f"cannot write {what} to {path}: it is a folder")
    _PartialFile(path, what).discard()


def check_folder_writable(folder: str | Path, what: str) -> None:
    """Raise a clear OSError now, before any work, if files cannot be written into ``folder`` (created if missing)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OSError(f"cannot write {what} into {folder}: it is a file, not a folder")
    check_writable(folder / "probe", what)


def _keeps_output(exc_type) -> bool:
    """Whether a ``with`` block left this way keeps what was written: normally, or by an interrupt."""
    return exc_type is None or issubclass(exc_type, KeyboardInterrupt)


def _px(values: np.ndarray) -> list[str]:
    return [f"{v:.2f}" for v in np.asarray(values, np.float64).ravel()]


class CsvSink:
    """One CSV row per tracked face per frame, flushed after every frame.

    Flushing per frame means the file being written (``partial_path``) is a valid CSV of every frame so
    far at any moment; it becomes ``path`` on close. Use as ``with CsvSink(path, 68) as sink:
    sink.write(result, frame.source)``. ``visibility`` (the model has a visibility output, e.g.
    ``LandmarkEngine.has_visibility``) adds the ``vis_i`` columns, probabilities with three decimals.
    """

    def __init__(self, path: str | Path, num_points: int, include_raw: bool = True, visibility: bool = False) -> None:
        if num_points < 0:
            raise ValueError(f"num_points must be >= 0, got {num_points}")
        self.path = Path(path)
        self.num_points = int(num_points)
        self.include_raw = include_raw
        self.visibility = bool(visibility)
        self.columns = csv_columns(self.num_points, include_raw, self.visibility)
        self._file = None
        self._writer = None
        self._partial: _PartialFile | None = None
        self.rows_written = 0

    @property
    def partial_path(self) -> Path | None:
        """The file being written while the sink is open (None when closed)."""
        return self._partial.partial if self._partial is not None else None

    def open(self) -> CsvSink:
        if self._file is not None:
            return self
        if self.path.is_dir():
            raise OSError(f"cannot write CSV to {self.path}: it is a folder")
        partial = _PartialFile(self.path, "CSV")
        try:
            self._file = open(partial.partial, "w", newline="", encoding="utf-8")
        except OSError as exc:
            partial.discard()
            raise OSError(f"cannot write CSV to {self.path}: {exc.strerror or exc}") from exc
        self._partial = partial
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.columns)
        self._file.flush()
        log.debug("writing landmarks CSV to %s (renamed into place at the end)", self.path)
        return self

    def close(self, keep: bool = True) -> None:
        """Close, then move the CSV into place (``keep``) or delete it, leaving ``path`` as it was."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        self._writer = None
        partial, self._partial = self._partial, None
        partial.finish(keep)

    def __enter__(self) -> CsvSink:
        return self.open()

    def __exit__(self, exc_type, *exc_info) -> None:
        self.close(keep=_keeps_output(exc_type))

    @property
    def is_open(self) -> bool:
        return self._file is not None

    def write(self, result: FrameResult, source: str = "") -> None:
        """Append one row per track of ``result``; a frame with no face writes nothing. ``source`` is the
        frame's ``Frame.source`` (the photo's file name, or the video's)."""
        if self._writer is None:
            raise ValueError(f"CsvSink for {self.path} is not open (use it as a context manager)")
        rows = []
        for track in result.tracks:
            if track.raw.num_points != self.num_points:
                raise ValueError(
                    f"CsvSink for {self.path} expects {self.num_points} points, "
                    f"track {track.track_id} in frame {result.index} has {track.raw.num_points}"
                )
            box = track.detection.box
            row = [source, str(result.index), f"{result.timestamp_ms:.3f}", str(track.track_id), f"{track.detection.score:.4f}"]
            row += _px(box)
            row += _px(track.smoothed[:, 0]) + _px(track.smoothed[:, 1])
            if self.include_raw:
                row += _px(track.raw.points[:, 0]) + _px(track.raw.points[:, 1])
            if self.visibility:
                if not track.raw.has_visibility:
                    raise ValueError(f"CsvSink for {self.path} writes visibility, track {track.track_id} in frame "
                                     f"{result.index} has none (a model without the output)")
                row += [f"{v:.3f}" for v in track.raw.visibility.astype(np.float64)]
            rows.append(row)
        self._writer.writerows(rows)
        self._file.flush()
        self.rows_written += len(rows)


class VideoSink:
    """MP4 writer (fourcc ``mp4v``; avc1/H.264 is not available in this OpenCV build).

    ``frame_size`` is (width, height); a frame of another size (a folder of photos of many sizes) is scaled
    to fit inside it, its aspect ratio kept, on black bars (:func:`letterbox`).
    """

    FOURCC = "mp4v"

    def __init__(self, path: str | Path, fps: float, frame_size: tuple[int, int]) -> None:
        self.path = Path(path)
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if len(frame_size) != 2 or min(int(frame_size[0]), int(frame_size[1])) <= 0:
            raise ValueError(f"frame_size must be a positive (width, height), got {tuple(frame_size)}")
        self.fps = float(fps)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self._writer: cv2.VideoWriter | None = None
        self._partial: _PartialFile | None = None
        self.frames_written = 0
        self._warned_resize = False

    @property
    def partial_path(self) -> Path | None:
        """The file being written while the sink is open (None when closed)."""
        return self._partial.partial if self._partial is not None else None

    def open(self) -> VideoSink:
        if self._writer is not None:
            return self
        if self.path.is_dir():
            raise OSError(f"cannot write video to {self.path}: it is a folder")
        partial = _PartialFile(self.path, "video")
        writer = cv2.VideoWriter(str(partial.partial), cv2.VideoWriter_fourcc(*self.FOURCC), self.fps, self.frame_size)
        if not writer.isOpened():
            writer.release()
            partial.discard()
            w, h = self.frame_size
            raise OSError(
                f"cannot write video to {self.path}: OpenCV could not open a {self.FOURCC} writer "
                f"({w}x{h} @ {self.fps:g} fps)"
            )
        self._writer, self._partial = writer, partial
        log.debug("writing video to %s (renamed into place at the end)", self.path)
        return self

    def close(self, keep: bool = True) -> None:
        """Finish the MP4 (its index is written on release), then move it into place (``keep``) or delete it."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        partial, self._partial = self._partial, None
        partial.finish(keep)

    def __enter__(self) -> VideoSink:
        return self.open()

    def __exit__(self, exc_type, *exc_info) -> None:
        self.close(keep=_keeps_output(exc_type))

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def write(self, frame_bgr: np.ndarray) -> None:
        """Append a BGR uint8 (H, W, 3) frame; grey (H, W) and BGRA frames are converted."""
        if self._writer is None:
            raise ValueError(f"VideoSink for {self.path} is not open (use it as a context manager)")
        frame = np.asarray(frame_bgr)
        if frame.dtype != np.uint8:
            raise ValueError(f"video frames must be uint8, got {frame.dtype}")
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        elif frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"video frames must be (H, W, 3) BGR, got shape {frame.shape}")
        if (frame.shape[1], frame.shape[0]) != self.frame_size:
            if not self._warned_resize:
                log.warning("fitting %dx%d frames into the video's %dx%d (aspect kept, black bars)",
                            frame.shape[1], frame.shape[0], *self.frame_size)
                self._warned_resize = True
            frame = letterbox(frame, self.frame_size)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames_written += 1


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit inside ``size`` (width, height) with its aspect ratio kept, centred on black."""
    width, height = size
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    fit_w, fit_h = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    canvas = np.zeros((height, width) + image.shape[2:], image.dtype)
    x, y = (width - fit_w) // 2, (height - fit_h) // 2
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas[y:y + fit_h, x:x + fit_w] = cv2.resize(image, (fit_w, fit_h), interpolation=interpolation)
    return canvas


class ImageFolderSink:
    """Annotated frames as image files in ``folder`` (created if missing): a photo's frame keeps the photo's
    file name, so ``photo.jpg`` becomes ``folder/photo.jpg``; a video's frames are ``000000.png``,
    ``000001.png`` ... by frame index. Each image is written to a temporary file beside its target and moved
    into place when complete, so an existing image is only replaced by a finished one."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.images_written = 0

    def name_for(self, index: int, source: str = "") -> str:
        """The file name of frame ``index`` from ``source`` (the frame's ``Frame.source``)."""
        return Path(source).name if is_image_path(source) else f"{index:06d}.png"

    def write(self, image_bgr: np.ndarray, index: int, source: str = "") -> Path:
        target = self.folder / self.name_for(index, source)
        partial = _PartialFile(target, "image")
        try:
            try:
                written = cv2.imwrite(str(partial.partial), np.ascontiguousarray(image_bgr))
            except cv2.error:
                written = False
            if not written:
                raise OSError(f"cannot write image to {target}: OpenCV could not encode it")
        except BaseException:
            partial.discard()
            raise
        partial.commit()
        self.images_written += 1
        return target
