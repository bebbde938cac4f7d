"""Rectangular occluders: the GUI's (drawn, covering a face box from one side, random), the demo clip's
moving bar, and training's random patch.

One pixel rule for all of them, in sdfl's pixel convention (pixel centres on integers): a rectangle
``(x, y, w, h)`` covers the pixels whose centres lie in ``[x, x + w) x [y, y + h)``, clipped to the image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OCCLUDER_COLOR = (90, 90, 90)
"""BGR fill of the GUI's and the demo clip's occluders: a flat grey."""

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
    def from_corners(cls, x0: float, y0: float, x1: float, y1: float) -> Occluder:
        return cls(min(x0, x1), min(y0, y1), max(abs(x1 - x0), 1.0), max(abs(y1 - y0), 1.0))

    @classmethod
    def from_pixels(cls, col: int, row: int, cols: int, rows: int) -> Occluder:
        """The rectangle that covers exactly ``cols`` x ``rows`` pixels from pixel (col, row)."""
        return cls(float(col), float(row), float(cols), float(rows))

    def pixel_slices(self, width: int, height: int) -> tuple[slice, slice]:
        """Row and column slices of the pixels whose centres lie inside, clipped to the image."""
        def span(lo: float, size: float, n: int) -> slice:
            return slice(min(max(math.ceil(lo), 0), n), min(max(math.ceil(lo + size), 0), n))

        return span(self.y, self.h, height), span(self.x, self.w, width)

    def mask(self, shape_hw: tuple[int, int]) -> np.ndarray:
        """(H, W) bool: the pixels this rectangle covers."""
        out = np.zeros(shape_hw, bool)
        rows, cols = self.pixel_slices(shape_hw[1], shape_hw[0])
        out[rows, cols] = True
        return out

    def contains(self, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        return ((pts[:, 0] >= self.x) & (pts[:, 0] <= self.x + self.w)
                & (pts[:, 1] >= self.y) & (pts[:, 1] <= self.y + self.h))


def apply_occluders(image_bgr: np.ndarray, occluders, color=OCCLUDER_COLOR) -> np.ndarray:
    """A copy of the frame with every occluder filled; the frame itself is never changed."""
    out = np.array(image_bgr, copy=True)
    paint(out, occluders, color)
    return out


def paint(image: np.ndarray, occluders, fill=OCCLUDER_COLOR) -> None:
    """Fill ``occluders`` in ``image`` in place, with a colour or with an image patch of each one's size."""
    h, w = image.shape[:2]
    for occ in occluders:
        rows, cols = occ.pixel_slices(w, h)
        image[rows, cols] = fill


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


def random_patch(size: int, area: float, rng: np.random.Generator) -> Occluder:
    """Training's occluder on a square ``size``-px crop: whole pixels, about ``area`` of the crop
    (0.5-1.5 x, aspect e^[-0.7, 0.7]), at least 4 px a side."""
    frac = area * rng.uniform(0.5, 1.5)
    aspect = np.exp(rng.uniform(-0.7, 0.7))
    rw = int(np.clip(size * np.sqrt(frac * aspect), 4, size))
    rh = int(np.clip(size * np.sqrt(frac / aspect), 4, size))
    x0 = int(rng.integers(0, size - rw + 1))
    y0 = int(rng.integers(0, size - rh + 1))
    return Occluder.from_pixels(x0, y0, rw, rh)


def demo_bar(width: int, height: int, phase: float) -> Occluder:
    """The demo clip's occluder at ``phase`` in [0, 1): a bar 12 % of the frame wide over the middle
    45 % of its height, entering from the right and crossing the face."""
    ox = int(width * (1.1 - 1.4 * phase))
    top, bottom = int(height * 0.25), int(height * 0.7)
    return Occluder.from_pixels(ox, top, int(width * 0.12) + 1, bottom - top + 1)
