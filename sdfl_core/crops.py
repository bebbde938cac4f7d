"""Square face crops by affine warp, and the maps between image pixels and crop units.

Crop units: (0, 0) is the crop's top-left corner and (1, 1) its bottom-right (pixel centres of an
S-px crop sit at (i + 0.5) / S). Image pixels have their centres on integers.
"""
from __future__ import annotations

import cv2
import numpy as np


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(x, y, w, h) bounding box of (N, 2) points."""
    points = np.asarray(points, np.float32)
    lo, hi = points.min(axis=0), points.max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)


def square_from_box(box: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """Centre and side of the square of ``scale`` x the box's larger side, centred on the box."""
    x, y, w, h = np.asarray(box, np.float64)
    if w <= 0 or h <= 0:
        raise ValueError(f"box must have positive size, got {[x, y, w, h]}")
    return np.array([x + w / 2, y + h / 2]), float(scale * max(w, h))


def crop_affine(center: np.ndarray, side: float, out_size: int, angle_deg: float = 0.0) -> np.ndarray:
    """2x3 matrix mapping image pixels to crop pixels for a square of ``side`` around ``center``.

    A positive angle rotates the face counter-clockwise in the crop (OpenCV's convention).
    """
    if side <= 0:
        raise ValueError(f"crop side must be positive, got {side}")
    s = out_size / side
    m = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(angle_deg), s)
    # Move the square's centre to the crop's centre (pixel-centre convention: (S - 1) / 2).
    m[:, 2] += (out_size - 1) / 2 - np.asarray(center, np.float64)
    return m


def roll_degrees(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    """The in-plane roll of a face from its two eye centres (image pixels; the subject's right eye is on the
    image's left when the face is upright): the image angle of the line from the right eye to the left one,
    0 upright, positive when the face is turned clockwise on screen. ``crop_affine`` with this angle cuts
    the face upright."""
    dx, dy = np.asarray(left_eye, np.float64) - np.asarray(right_eye, np.float64)
    if not np.isfinite([dx, dy]).all() or dx == dy == 0:
        return 0.0
    return float(np.degrees(np.arctan2(dy, dx)))


def rotate_about(offset: np.ndarray, angle_deg: float) -> np.ndarray:
    """A vector given in an upright face's own axes, in image axes for the face rolled by ``angle_deg``."""
    return _rotation(angle_deg) @ np.asarray(offset, np.float64)


def upright_square(points: np.ndarray, scale: float, angle_deg: float) -> tuple[np.ndarray, float]:
    """:func:`square_from_box` of the landmark box in the face's own upright axes (the face rolled by
    ``angle_deg``): centre in image pixels and side. With angle 0 it is the standard protocol's square."""
    points = np.asarray(points, np.float64)
    origin = points.mean(axis=0)
    upright = (points - origin) @ _rotation(-angle_deg).T
    center, side = square_from_box(landmark_box(upright), scale)
    return origin + rotate_about(center, angle_deg), side


def landmark_square(points: np.ndarray, crop_scale: float, eyes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
                    ) -> tuple[np.ndarray, float, float]:
    """(centre, side, angle) of the crop around ``points``: the standard protocol's square (angle 0) or, with
    ``eyes`` (the indices of the right and the left eye's points, ``Schema.pupils``), the upright one: turned
    by the eyes' roll (:func:`roll_degrees`), the square of the landmark box in the face's own axes."""
    points = np.asarray(points, np.float64)
    angle = 0.0 if eyes is None else roll_degrees(points[list(eyes[0])].mean(axis=0), points[list(eyes[1])].mean(axis=0))
    center, side = upright_square(points, crop_scale, angle)
    return center, side, angle


def _rotation(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def landmark_crop_affine(points: np.ndarray, crop_scale: float, out_size: int) -> np.ndarray:
    """The standard protocol's crop: a square of ``crop_scale`` x the larger landmark-box side."""
    center, side = square_from_box(landmark_box(points), crop_scale)
    return crop_affine(center, side, out_size)


def warp(image: np.ndarray, affine: np.ndarray, out_size: int, border_value=(0, 0, 0)) -> np.ndarray:
    return cv2.warpAffine(image, affine, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return (points @ affine[:, :2].T + affine[:, 2]).astype(np.float32)


def invert(affine: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(affine, np.float64))


def image_to_units(points: np.ndarray, affine: np.ndarray, out_size: int) -> np.ndarray:
    """Image pixels -> crop units."""
    return (transform_points(points, affine) + 0.5) / out_size


def units_to_image(units: np.ndarray, affine: np.ndarray, out_size: int) -> np.ndarray:
    """Crop units -> image pixels (inverse of :func:`image_to_units`); works on (..., N, 2)."""
    inv = invert(affine)
    px = np.asarray(units, np.float64) * out_size - 0.5
    return (px @ inv[:, :2].T + inv[:, 2]).astype(np.float32)


def mirror_units(units: np.ndarray, mirror) -> np.ndarray:
    """Points in crop units (..., N, 2) as they lie in the crop flipped left to right: each point renamed to
    its mirror point (a schema's ``mirror`` map) and x -> 1 - x (a pixel centre at unit u lands at 1 - u).
    Its own inverse, so it also takes a flipped crop's points back to the crop."""
    flipped = np.array(np.asarray(units)[..., list(mirror), :])
    flipped[..., 0] = 1.0 - flipped[..., 0]
    return flipped


CROPS_PER_FACE = (1, 5, 9)
"""Crops per face that :func:`shifted_affines` knows: the crop alone, with its four diagonal shifts, or
the 3 x 3 grid of shifts."""

CROP_SHIFT = 0.05
"""Shift of the test-time crops, as a fraction of the crop side (chosen on the validation split; README)."""


PHOTO_CROPS = 5
"""The test-time crops per face run on photos unless told otherwise (:func:`default_crops_per_face`)."""


def default_crops_per_face(running_mode: str) -> int:
    """The test-time crops per face ``sdfl`` runs unless told: :data:`PHOTO_CROPS` on photos (``"image"`` mode,
    which has no frame rate to keep; chosen on the validation split with the photos' detector boxes and
    :data:`PHOTO_PASSES`, see the README), 1 on video and camera, which stay real time."""
    return PHOTO_CROPS if running_mode == "image" else 1


def check_crops_per_face(count: int) -> int:
    """``count`` if :func:`shifted_affines` knows it, else a one-line ValueError."""
    if count not in CROPS_PER_FACE:
        raise ValueError(f"test-time crops per face must be one of {', '.join(map(str, CROPS_PER_FACE))}, got {count}")
    return count


PASSES = (1, 2, 3)
"""Landmark passes per face: the first crops from the box it is given (a detector's, or ground truth), each
further pass from the previous pass's landmarks, as the model was trained to be cropped."""


PHOTO_PASSES = 2
"""The landmark passes run on photos unless told otherwise (:func:`default_passes`)."""


def default_passes(running_mode: str) -> int:
    """The landmark passes ``sdfl`` runs unless told: :data:`PHOTO_PASSES` on photos (``"image"`` mode, whose
    faces are cropped from a detector's box, which only approximates the training crop; chosen on the
    validation split, see the README), 1 on video and camera, which stay real time and, between
    detections, crop each face from its previous frame's landmarks."""
    return PHOTO_PASSES if running_mode == "image" else 1


def check_passes(count: int) -> int:
    """``count`` if it is a number of passes :data:`PASSES` allows, else a one-line ValueError."""
    if isinstance(count, bool) or count not in PASSES:
        raise ValueError(f"landmark passes per face must be one of {', '.join(map(str, PASSES))}, got {count}")
    return count


def recrop_affine(points: np.ndarray, previous: np.ndarray, crop_scale: float, out_size: int,
                  eyes: tuple[tuple[int, ...], tuple[int, ...]] | None = None) -> np.ndarray:
    """The standard crop around predicted ``points`` (:func:`landmark_crop_affine`), or ``previous`` when
    the points give no box to crop (not finite, or all on one horizontal or vertical line). With ``eyes``
    (the indices of the right and the left eye's points, ``Schema.pupils``) the crop is cut upright: turned
    by the roll of the predicted eyes (:func:`roll_degrees`), its square that of the landmark box in the
    face's own axes (:func:`upright_square`)."""
    box = landmark_box(points)
    if not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        return previous
    center, side, angle = landmark_square(points, crop_scale, eyes)
    return crop_affine(center, side, out_size, angle)


def crop_steps(count: int) -> list[tuple[int, int]]:
    """The moves of the test-time crops along the crop's (x, y) axes, in units of the shift: (0, 0) first,
    then the four diagonals (5 crops) or the 3 x 3 grid's other eight cells (9)."""
    check_crops_per_face(count)
    steps = [(0, 0)]
    if count == 5:
        steps += [(1, 1), (-1, -1), (1, -1), (-1, 1)]
    elif count == 9:
        steps += [(i, j) for j in (-1, 0, 1) for i in (-1, 0, 1) if (i, j) != (0, 0)]
    return steps


def shifted_affines(affine: np.ndarray, out_size: int, count: int, shift: float = CROP_SHIFT) -> list[np.ndarray]:
    """The crops of one face for test-time averaging: ``affine`` itself first, then copies of it moved by
    ``shift`` x the crop side along the crop's own axes (the four diagonals for 5 crops, the 3 x 3 grid's
    other eight cells for 9). Moving the window by (dx, dy) crop sides subtracts (dx, dy) x ``out_size``
    from every crop coordinate, so only the translation changes, whatever the crop's rotation."""
    out = []
    for i, j in crop_steps(count):
        moved = np.array(affine, np.float64, copy=True)
        moved[:, 2] -= np.array([i, j], np.float64) * shift * out_size
        out.append(moved)
    return out
