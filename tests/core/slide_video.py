"""A short synthetic clip shared by the source, pipeline and track-CLI tests: the astronaut sliding
left to right over a dark 320x240 frame (MediaPipe finds that face)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "astronaut.jpg"
NUM_FRAMES, FPS, SIZE = 12, 25.0, (320, 240)  # the slide's own defaults


def synthetic_frame(i: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Frame ``i`` of the slide: the astronaut (200 px) moved 100 px over ``num_frames`` frames."""
    frame = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
    x = 10 + round(100 * i / max(1, num_frames - 1))
    frame[20:220, x:x + 200] = cv2.resize(cv2.imread(str(FIXTURE)), (200, 200))
    return frame


def write_slide(path: Path, num_frames: int = NUM_FRAMES) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for i in range(num_frames):
        writer.write(synthetic_frame(i, num_frames))
    writer.release()
    return path
