"""Frame sources: video file, image, folder of images, camera, and a built-in synthetic demo clip.

Every source is an iterable context manager of :class:`Frame`; opening a bad source raises a clear
``FileNotFoundError`` / ``ValueError`` before the first frame. A source says how it must be run
(``running_mode``): an image or a folder of photos in ``"image"`` mode (every photo on its own), a video,
camera, demo clip or a folder opened with ``sequence=True`` in ``"video"`` mode.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .images import IMAGE_EXTENSIONS, is_image_path, read_image
from .occluders import demo_bar, paint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp_ms: float
    image: np.ndarray
    source: str = ""
    """Where the frame came from: the image's file name, or the video's (``demo``, ``camera:N``)."""


class Source:
    """Base: a context manager yielding frames. ``fps`` is the nominal rate (0 when unknown)."""

    fps: float = 0.0
    num_frames: int = 0
    name: str = ""
    seekable: bool = False
    running_mode: str = "video"
    """"image": frames are unrelated photos; "video": consecutive frames of one scene."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def seek(self, index: int) -> None:
        raise ValueError(f"{self.name} cannot seek")


class VideoSource(Source):
    seekable = True

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"video not found: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"video file is empty (0 bytes): {path}")
        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise ValueError(f"cannot open {path} as a video (unsupported or corrupt file)")
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            raise ValueError(f"{path} has no readable video frames (truncated, corrupt or not a video)")
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) or 25.0
        self.num_frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.name = str(path)
        self.label = path.name
        self._next = 0

    def seek(self, index: int) -> None:
        index = int(np.clip(index, 0, max(0, self.num_frames - 1)))
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._next = index

    def __iter__(self) -> Iterator[Frame]:
        failures = 0
        while True:
            ok, image = self.cap.read()
            if not ok or image is None:
                # A frame that does not decode mid-file is skipped; the end (or a truncated tail) stops.
                if self.num_frames and self._next < self.num_frames - 1 and failures < 25:
                    failures += 1
                    log.warning("%s: frame %d unreadable, skipped", self.name, self._next)
                    self._next += 1
                    continue
                return
            failures = 0
            yield Frame(self._next, self._next * 1000.0 / self.fps, image, self.label)
            self._next += 1

    def close(self) -> None:
        self.cap.release()


class ImageSource(Source):
    running_mode = "image"

    def __init__(self, path: str | Path) -> None:
        self.image = read_image(path, exif_orientation=True)  # the photo as every viewer shows it
        self.name = str(path)
        self.num_frames = 1

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.image, Path(self.name).name)


class FolderSource(Source):
    """The images of a folder in name order: unrelated photos (image mode), or with ``sequence=True``
    the consecutive frames of one video at ``fps``. Like :class:`ImageSource`, each is turned as its EXIF
    orientation says: the photo as viewers show it."""

    seekable = True

    def __init__(self, path: str | Path, fps: float = 10.0, sequence: bool = False) -> None:
        path = Path(path)
        self.files = sorted(p for p in path.iterdir() if is_image_path(p))
        if not self.files:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
        self.name, self.fps, self.num_frames = str(path), fps, len(self.files)
        self.running_mode = "video" if sequence else "image"
        self._next = 0

    def seek(self, index: int) -> None:
        self._next = int(np.clip(index, 0, self.num_frames - 1))

    def __iter__(self) -> Iterator[Frame]:
        while self._next < len(self.files):
            i = self._next
            self._next += 1
            try:
                image = read_image(self.files[i], exif_orientation=True)
            except ValueError as exc:
                log.warning("skipping %s", exc)
                continue
            yield Frame(i, i * 1000.0 / self.fps, image, self.files[i].name)


class CameraSource(Source):
    def __init__(self, index: int) -> None:
        self.cap = cv2.VideoCapture(int(index))
        if not self.cap.isOpened():
            self.cap.release()
            raise ValueError(f"camera {index} is not available (no such device, or it is in use)")
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) or 30.0
        self.name = f"camera:{index}"

    def __iter__(self) -> Iterator[Frame]:
        import time

        start, i = time.monotonic(), 0
        while True:
            ok, image = self.cap.read()
            if not ok or image is None:
                raise ValueError(f"{self.name} stopped delivering frames (unplugged?)")
            yield Frame(i, (time.monotonic() - start) * 1000.0, image, self.name)
            i += 1

    def close(self) -> None:
        self.cap.release()


class DemoSource(Source):
    """A clip made from a public-domain portrait (scikit-image's astronaut, shipped in assets/demo):
    the face drifts, turns and zooms while a grey occluder sweeps across it. Needs no download."""

    seekable = True

    def __init__(self, num_frames: int = 240, size: tuple[int, int] = (640, 480), fps: float = 30.0,
                 occluder: bool = True) -> None:
        from .assets import asset_path

        self.portrait = read_image(asset_path("demo", "astronaut.jpg"))
        self.num_frames, self.fps, self.size, self.occluder = num_frames, fps, size, occluder
        self.name = "demo"
        self._next = 0

    def seek(self, index: int) -> None:
        self._next = int(np.clip(index, 0, self.num_frames - 1))

    # Where the face sits in the portrait (fractions of its width, height): the clip keeps it centred.
    FACE_AT = (0.45, 0.3)

    def render(self, i: int) -> np.ndarray:
        w, h = self.size
        t = i / self.fps
        ph, pw = self.portrait.shape[:2]
        # Sized so the face spans ~1/3 of the frame, as a webcam sees it (the short-range detector's range).
        scale = 1.3 * h / ph * (1 + 0.12 * np.sin(2 * np.pi * t / 6))
        angle = 12 * np.sin(2 * np.pi * t / 5)
        cx = w / 2 + 0.15 * w * np.sin(2 * np.pi * t / 7)
        cy = h / 2 + 0.05 * h * np.sin(2 * np.pi * t / 4)
        fx, fy = pw * self.FACE_AT[0], ph * self.FACE_AT[1]
        m = cv2.getRotationMatrix2D((fx, fy), angle, scale)
        m[:, 2] += (cx - fx, cy - fy)
        frame = cv2.warpAffine(self.portrait, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        if self.occluder:
            # The occluder enters from the right every 4 s and crosses the face.
            phase = (t % 4) / 4
            paint(frame, [demo_bar(w, h, phase)])
        return frame

    def __iter__(self) -> Iterator[Frame]:
        while self._next < self.num_frames:
            i = self._next
            self._next += 1
            yield Frame(i, i * 1000.0 / self.fps, self.render(i), self.name)


def prefetch(frames: Iterable[Frame], depth: int = 4) -> Iterator[Frame]:
    """Run ``frames`` (any iterable) ahead in a background thread, up to ``depth`` items: decoding
    (OpenCV releases the GIL while decoding) then overlaps inference on a second core. Errors of the
    iterable are raised in the consumer, in order."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        items.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            items.put(exc)

    thread = threading.Thread(target=produce, name="sdfl-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def open_source(spec: str | Path, sequence: bool = False) -> Source:
    """'demo', 'camera:N', a video file, an image file or a folder of images (photos, or with
    ``sequence=True`` the frames of a video)."""
    text = str(spec)
    if text == "demo":
        return DemoSource()
    if text.startswith("camera:"):
        try:
            index = int(text.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"camera source must be camera:N with an integer N, got {text!r}") from None
        return CameraSource(index)
    path = Path(text)
    if path.is_dir():
        return FolderSource(path, sequence=sequence)
    if not path.exists():
        raise FileNotFoundError(f"source not found: {path}")
    if is_image_path(path):
        return ImageSource(path)
    return VideoSource(path)
