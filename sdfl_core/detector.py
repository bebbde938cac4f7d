"""Face detection with MediaPipe's BlazeFace models through the mediapipe Tasks ``FaceDetector``.

Two bundled models (``assets/mediapipe/``, built by ``tools/build_face_detector.py``):

- ``"short"``: 128x128 input, made for faces within about 2 m of the camera (webcam, selfie, a face
  that fills much of the frame). In large group photos it misses faces and gives loose boxes.
- ``"full"``: 192x192 input, made for faces up to about 5 m away: the one for group photos and distant
  cameras, at a somewhat higher cost per frame (docs/benchmarks/notes.md has the measurement).

Boxes and keypoints are in the sdfl convention: 0-based pixels with pixel centres on integers, so the
whole image spans [-0.5, W - 0.5] x [-0.5, H - 0.5]. Boxes are clipped to that span; keypoints are not
(an ear outside the frame stays outside). The six keypoints are MediaPipe's, in its order: right eye,
left eye, nose tip, mouth centre, right ear tragion, left ear tragion ("right" is the subject's right).
"""
from __future__ import annotations

import logging
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .assets import asset_path
from .devices import load_torch_native_first
from .errors import first_line
from .images import to_rgb_uint8
from .types import Detection

log = logging.getLogger(__name__)

MODEL_FILES = {
    "short": "face_detection_short_range.tflite",
    "full": "face_detection_full_range.tflite",
}
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")
RUNNING_MODES = ("image", "video")
PHOTO_MAX_FACES = 20
"""The faces a photo keeps unless told (a group photo); video and camera keep :data:`VIDEO_MAX_FACES`."""
VIDEO_MAX_FACES = 5


def default_detector(running_mode: str) -> str:
    """The detector model ``sdfl`` runs unless told: ``"full"`` (long range, faces up to about 5 m) on photos,
    whose faces are often small (a group), ``"short"`` (selfie range, faster) on video and camera."""
    return "full" if running_mode == "image" else "short"


def default_max_faces(running_mode: str) -> int:
    """The most faces per frame ``sdfl`` keeps unless told: :data:`PHOTO_MAX_FACES` on photos, which have no
    frame rate to keep, :data:`VIDEO_MAX_FACES` on video and camera."""
    return PHOTO_MAX_FACES if running_mode == "image" else VIDEO_MAX_FACES

_LIVE_DETECTORS: weakref.WeakSet = weakref.WeakSet()


def _close_live_detectors() -> None:
    for detector in list(_LIVE_DETECTORS):
        detector.close()


def _import_mediapipe() -> None:
    load_torch_native_first()
    import mediapipe
    import mediapipe.tasks.c  # noqa: F401
    from mediapipe.tasks.python.vision import face_detector  # noqa: F401

    # MediaPipe runs each native call on a concurrent.futures worker, which refuses work once interpreter
    # shutdown begins, before atexit handlers run; a detector left open then fails noisily in MediaPipe's
    # __del__. threading's exit hooks run before that, last registered first: register after mediapipe's.
    if hasattr(threading, "_register_atexit"):
        threading._register_atexit(_close_live_detectors)


def _mediapipe():
    """mediapipe, imported on first use (the first detector), not when this module is imported.

    torch must load its native libraries first (``devices.load_torch_native_first``). Importing mediapipe
    late lets a process that needs torch (a .pt checkpoint, CUDA) load it first: ``Pipeline`` builds its
    landmarker before its detector. When torch is already loaded, torch._dynamo is loaded first.
    Tracking with the ONNX model imports neither, so this costs it nothing.

    The import runs in a thread of its own: ``mediapipe.tasks.c`` keeps the frames that import it alive
    for ever, which from here would pin the first FaceDetector (and its graph)."""
    if "mediapipe.tasks.c" not in sys.modules:
        errors: list[BaseException] = []

        def load() -> None:
            try:
                _import_mediapipe()
            except BaseException as exc:  # re-raised in the caller
                errors.append(exc)

        loader = threading.Thread(target=load, name="sdfl-import-mediapipe")
        loader.start()
        loader.join()
        if errors:
            raise errors[0]
    import mediapipe as mp

    return mp


@dataclass(frozen=True)
class DetectorOptions:
    """Options of :class:`FaceDetector`.

    ``model`` is ``"short"`` or ``"full"`` (the bundled models) or a path to a .tflite with MediaPipe
    Tasks metadata; a relative path that does not exist as given is looked up under ``assets/``.
    ``max_faces`` keeps the highest-scoring faces (MediaPipe's FaceDetector has no such option).
    """

    model: str | Path = "short"
    min_confidence: float = 0.5
    min_suppression: float = 0.3
    running_mode: str = "image"
    max_faces: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, (str, Path)) or not str(self.model):
            raise ValueError(f"model must be 'short', 'full' or a path to a .tflite, got {self.model!r}")
        for name in ("min_confidence", "min_suppression"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.running_mode not in RUNNING_MODES:
            raise ValueError(f"running_mode must be one of {RUNNING_MODES}, got {self.running_mode!r}")
        if self.max_faces is not None and (
            isinstance(self.max_faces, bool) or not isinstance(self.max_faces, (int, np.integer)) or self.max_faces < 1
        ):
            raise ValueError(f"max_faces must be a positive int or None, got {self.max_faces!r}")

    def model_path(self) -> Path:
        """The .tflite file these options name; raises FileNotFoundError when it does not exist."""
        if isinstance(self.model, str) and self.model in MODEL_FILES:
            return asset_path("mediapipe", MODEL_FILES[self.model])
        path = Path(self.model).expanduser()
        if path.is_file():
            return path
        if not path.is_absolute():
            try:
                return asset_path(path)
            except FileNotFoundError:
                pass
        raise FileNotFoundError(f"face detector model not found: {self.model} (nor under the assets folder)")



class FaceDetector:
    """MediaPipe Tasks face detector; use as a context manager (it holds a native graph).

    ``detect`` returns the faces of one frame, highest score first, ``[]`` when there is none. In
    ``"video"`` mode every call needs a ``timestamp_ms`` larger than the previous one (MediaPipe rejects
    equal or decreasing timestamps); in ``"image"`` mode ``timestamp_ms`` is ignored.
    """

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()
        self.model_path = self.options.model_path()
        mp = _mediapipe()
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.vision import face_detector as mp_face_detector
        from mediapipe.tasks.python.vision.core.vision_task_running_mode import (
            VisionTaskRunningMode,
        )

        self._mp = mp
        mode = VisionTaskRunningMode.VIDEO if self.options.running_mode == "video" else VisionTaskRunningMode.IMAGE
        mp_options = mp_face_detector.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=mode,
            min_detection_confidence=float(self.options.min_confidence),
            min_suppression_threshold=float(self.options.min_suppression),
        )
        try:
            self._detector = mp_face_detector.FaceDetector.create_from_options(mp_options)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"mediapipe cannot load face detector model {self.model_path}: {first_line(exc)}") from exc
        # Closes the native graph when this object is collected or at exit, if the user did not.
        self._finalizer = weakref.finalize(self, self._detector.close)
        _LIVE_DETECTORS.add(self)
        self._last_timestamp_ms: int | None = None
        self._warned_max_faces = False
        log.debug("face detector %s (%s mode) loaded", self.model_path.name, self.options.running_mode)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def detect(self, frame_bgr: np.ndarray, timestamp_ms: int | None = None) -> list[Detection]:
        """Faces in a BGR (or gray / BGRA, uint8 or uint16) frame, best first; ``[]`` when none."""
        if self.closed:
            raise ValueError("FaceDetector is closed; create a new one")
        rgb = to_rgb_uint8(frame_bgr)
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        if self.options.running_mode == "video":
            timestamp_ms = self._check_timestamp(timestamp_ms)
            result = self._detector.detect_for_video(image, timestamp_ms)
            self._last_timestamp_ms = timestamp_ms
        else:
            result = self._detector.detect(image)
        height, width = rgb.shape[:2]
        detections = [d for d in (_to_detection(r, width, height) for r in result.detections) if d is not None]
        detections.sort(key=lambda d: d.score, reverse=True)
        if self.options.max_faces is not None and len(detections) > self.options.max_faces:
            if not self._warned_max_faces:
                log.warning("%d faces in frame, only the %d most confident are kept (max_faces; sdfl track --max-faces); "
                            "not repeated for later frames", len(detections), self.options.max_faces)
                self._warned_max_faces = True
            detections = detections[: self.options.max_faces]
        return detections

    def _check_timestamp(self, timestamp_ms) -> int:
        if timestamp_ms is None:
            raise ValueError("video mode needs timestamp_ms for every frame")
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, np.integer)):
            raise ValueError(f"timestamp_ms must be an int (milliseconds), got {timestamp_ms!r}")
        timestamp_ms = int(timestamp_ms)
        if self._last_timestamp_ms is not None and timestamp_ms <= self._last_timestamp_ms:
            raise ValueError(
                f"timestamp_ms must increase from frame to frame: got {timestamp_ms} after {self._last_timestamp_ms}"
            )
        return timestamp_ms


def _to_detection(mp_detection, width: int, height: int) -> Detection | None:
    """A MediaPipe detection in sdfl pixel coordinates, its box clipped to the image; None if it falls outside."""
    bb = mp_detection.bounding_box
    # MediaPipe pixels have their edges on integers; sdfl's have their centres on integers.
    x0 = np.clip(bb.origin_x - 0.5, -0.5, width - 0.5)
    y0 = np.clip(bb.origin_y - 0.5, -0.5, height - 0.5)
    x1 = np.clip(bb.origin_x + bb.width - 0.5, -0.5, width - 0.5)
    y1 = np.clip(bb.origin_y + bb.height - 0.5, -0.5, height - 0.5)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    score = mp_detection.categories[0].score if mp_detection.categories else 0.0
    keypoints = np.array(
        [(kp.x * width - 0.5, kp.y * height - 0.5) for kp in (mp_detection.keypoints or [])], np.float32
    ).reshape(-1, 2)
    return Detection(box=np.array([x0, y0, x1 - x0, y1 - y0]), score=score, keypoints=keypoints)
