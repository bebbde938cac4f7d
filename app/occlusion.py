"""Occluder rectangles for occlusion inspection: what the pipeline sees when part of a face is covered.

Pure numpy (no Qt): rectangles are in image pixels, ``(x, y, w, h)`` with x, y the top-left corner.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OCCLUDER_COLOR = (90, 90, 90)
"""BGR fill; the same flat grey the demo clip's moving occluder uses."""

COVER_SIDES = ("left", "right", "top", "bottom")


@dataclass(frozen=True)
class Occluder:
    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        values = (self.x, self.y, self.w, self.h)
        if not all(np.isfinite(values)):
            raise ValueError(f"occluder must have finite coordinates, got {values}")
        if self.w <= 0 or self.h <= 0:
            raise ValueError(f"occluder width and height must be positive, got {self.w} x {self.h}")

    @classmethod
    def from_corners(cls, x0: float, y0: float, x1: float, y1: float) -> "Occluder":
        return cls(min(x0, x1), min(y0, y1), max(abs(x1 - x0), 1.0), max(abs(y1 - y0), 1.0))

    def pixel_slices(self, width: int, height: int) -> tuple[slice, slice]:
        """Row and column slices of the pixels whose centres lie inside, clipped to the image."""
        c0 = int(np.clip(np.ceil(self.x - 0.5), 0, width))
        c1 = int(np.clip(np.ceil(self.x + self.w - 0.5), 0, width))
        r0 = int(np.clip(np.ceil(self.y - 0.5), 0, height))
        r1 = int(np.clip(np.ceil(self.y + self.h - 0.5), 0, height))
        return slice(r0, r1), slice(c0, c1)

    def contains(self, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        return ((pts[:, 0] >= self.x) & (pts[:, 0] <= self.x + self.w)
                & (pts[:, 1] >= self.y) & (pts[:, 1] <= self.y + self.h))


def apply_occluders(image_bgr: np.ndarray, occluders, color=OCCLUDER_COLOR) -> np.ndarray:
    """A copy of the frame with every occluder filled; the frame itself is never changed."""
    out = np.array(image_bgr, copy=True)
    h, w = out.shape[:2]
    for occ in occluders:
        rows, cols = occ.pixel_slices(w, h)
        out[rows, cols] = color
    return out


def cover_occluder(box: np.ndarray, fraction: float, side: str = "left") -> Occluder | None:
    """The part of a face box ``(x, y, w, h)`` covered from ``side``: ``fraction`` 0 covers nothing (None)."""
    if side not in COVER_SIDES:
        raise ValueError(f"cover side must be one of {COVER_SIDES}, got {side!r}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"cover fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return None
    x, y, w, h = (float(v) for v in box)
    if side == "left":
        return Occluder(x, y, w * fraction, h)
    if side == "right":
        return Occluder(x + w * (1 - fraction), y, w * fraction, h)
    if side == "top":
        return Occluder(x, y, w, h * fraction)
    return Occluder(x, y + h * (1 - fraction), w, h * fraction)


def random_occluder(rng: np.random.Generator, box: np.ndarray | None, image_size: tuple[int, int]) -> Occluder:
    """A rectangle of 25-50 % of the face box's sides somewhere on the face (the image centre without a face)."""
    width, height = image_size
    if box is None:
        box = np.array([width * 0.3, height * 0.25, width * 0.4, height * 0.5])
    x, y, w, h = (float(v) for v in box)
    ow, oh = w * rng.uniform(0.25, 0.5), h * rng.uniform(0.25, 0.5)
    return Occluder(x + rng.uniform(0, w - ow), y + rng.uniform(0, h - oh), ow, oh)
