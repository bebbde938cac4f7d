"""Image files and pixel formats: one extension list, one reader, one rule from any frame to 8-bit BGR.

16-bit pixels map to 8 bits over the full range (65535 -> 255, rounded), for photos, datasets and frames alike.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: str | Path, exif_orientation: bool = False) -> np.ndarray:
    """Any 8/16-bit gray, BGR or BGRA image as it is stored (``to_bgr_uint8`` converts). With
    ``exif_orientation`` the pixels are turned as the file's EXIF orientation says, as OpenCV's colour
    reader does (the dataset reader: its annotations were made on the turned image)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    # imdecode on the raw bytes, unlike imread, copes with non-ASCII paths on Windows.
    data = np.fromfile(str(path), np.uint8)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH if exif_orientation else cv2.IMREAD_UNCHANGED
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None or image.size == 0:
        raise ValueError(f"cannot read image {path} (corrupt or not an image)")
    return image


def _checked_uint8(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"frame dtype must be uint8 or uint16, got {frame.dtype}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise ValueError(f"frame must be (H, W) gray, (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA, got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame is empty, shape {frame.shape}")
    frame = np.ascontiguousarray(frame)
    if frame.dtype == np.uint16:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / 65535.0)
    return frame


_CONVERSIONS = {  # (source channels, target) -> OpenCV code; None: already in the target layout
    (1, "rgb"): cv2.COLOR_GRAY2RGB, (4, "rgb"): cv2.COLOR_BGRA2RGB, (3, "rgb"): cv2.COLOR_BGR2RGB,
    (1, "bgr"): cv2.COLOR_GRAY2BGR, (4, "bgr"): cv2.COLOR_BGRA2BGR, (3, "bgr"): None,
}


def _to_uint8(frame: np.ndarray, target: str) -> np.ndarray:
    frame = _checked_uint8(frame)
    code = _CONVERSIONS[(1 if frame.ndim == 2 else frame.shape[2], target)]
    return frame if code is None else cv2.cvtColor(frame, code)


def to_rgb_uint8(frame: np.ndarray) -> np.ndarray:
    """A contiguous uint8 RGB copy of a BGR / BGRA / grayscale frame (uint8 or uint16)."""
    return _to_uint8(frame, "rgb")


def to_bgr_uint8(frame: np.ndarray) -> np.ndarray:
    """Gray / BGRA / 16-bit frames -> contiguous BGR uint8 (the form crops and drawing use)."""
    return _to_uint8(frame, "bgr")
