"""Landmark schemas: per-dataset metadata in one place (ids, mirror order, normalisation, groups).

Coordinates everywhere in sdfl are 0-based pixels with pixel centres on integers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Schema:
    name: str
    num_points: int
    mirror: tuple[int, ...]
    """``mirror[i]`` is the index that point ``i`` becomes after a horizontal flip."""
    ocular: tuple[int, int]
    """Outer eye corners, the inter-ocular normalisation."""
    pupils: tuple[tuple[int, ...], tuple[int, ...]]
    """Points whose mean is each pupil (a single index where the schema annotates pupils)."""
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Drawing polylines: name -> ordered point indices."""
    closed_groups: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        mirror = np.asarray(self.mirror)
        if mirror.shape != (self.num_points,) or sorted(mirror.tolist()) != list(range(self.num_points)):
            raise ValueError(f"schema {self.name}: mirror map must be a permutation of 0..{self.num_points - 1}")
        if not np.array_equal(mirror[mirror], np.arange(self.num_points)):
            raise ValueError(f"schema {self.name}: mirror map must be an involution")

    def flip_points(self, points: np.ndarray, width: float) -> np.ndarray:
        """Mirror (..., N, 2) points horizontally in an image of ``width`` pixels and reorder them."""
        flipped = np.array(points, dtype=np.float32, copy=True)
        flipped[..., 0] = (width - 1) - flipped[..., 0]
        return flipped[..., list(self.mirror), :]

    def ocular_distance(self, points: np.ndarray) -> np.ndarray:
        a, b = self.ocular
        return np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)

    def pupil_distance(self, points: np.ndarray) -> np.ndarray:
        left = points[..., list(self.pupils[0]), :].mean(axis=-2)
        right = points[..., list(self.pupils[1]), :].mean(axis=-2)
        return np.linalg.norm(left - right, axis=-1)

    def to_dict(self) -> dict:
        return {"name": self.name, "num_points": self.num_points}


def _pairs_to_mirror(n: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    mirror = list(range(n))
    for a, b in pairs:
        mirror[a], mirror[b] = b, a
    return tuple(mirror)


def _r(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b + 1))


_300W_PAIRS = (
    [(i, 16 - i) for i in range(8)]
    + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]
    + [(60, 64), (61, 63), (65, 67)]
)

W300 = Schema(
    name="300w",
    num_points=68,
    mirror=_pairs_to_mirror(68, _300W_PAIRS),
    ocular=(36, 45),
    pupils=(_r(36, 41), _r(42, 47)),
    groups={
        "jaw": _r(0, 16),
        "right_brow": _r(17, 21),
        "left_brow": _r(22, 26),
        "nose_bridge": _r(27, 30),
        "nose_base": _r(31, 35),
        "right_eye": _r(36, 41),
        "left_eye": _r(42, 47),
        "outer_lips": _r(48, 59),
        "inner_lips": _r(60, 67),
    },
    closed_groups=frozenset({"right_eye", "left_eye", "outer_lips", "inner_lips"}),
)

_WFLW_PAIRS = (
    [(i, 32 - i) for i in range(16)]
    + [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47)]
    + [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
    + [(55, 59), (56, 58)]
    + [(76, 82), (77, 81), (78, 80), (87, 83), (86, 84), (88, 92), (89, 91), (95, 93), (96, 97)]
)

WFLW = Schema(
    name="wflw",
    num_points=98,
    mirror=_pairs_to_mirror(98, _WFLW_PAIRS),
    ocular=(60, 72),
    pupils=((96,), (97,)),
    groups={
        "jaw": _r(0, 32),
        "right_brow": _r(33, 41),
        "left_brow": _r(42, 50),
        "nose_bridge": _r(51, 54),
        "nose_base": _r(55, 59),
        "right_eye": _r(60, 67),
        "left_eye": _r(68, 75),
        "outer_lips": _r(76, 87),
        "inner_lips": _r(88, 95),
    },
    closed_groups=frozenset({"right_brow", "left_brow", "right_eye", "left_eye", "outer_lips", "inner_lips"}),
)

_COFW_PAIRS = [(0, 1), (4, 6), (2, 3), (5, 7), (8, 9), (10, 11), (12, 14), (16, 17), (13, 15), (18, 19), (22, 23)]

COFW = Schema(
    name="cofw",
    num_points=29,
    mirror=_pairs_to_mirror(29, _COFW_PAIRS),
    ocular=(8, 9),
    pupils=((16,), (17,)),
    groups={
        "right_brow": (0, 4, 2, 5),
        "left_brow": (3, 6, 1, 7),
        "right_eye": (8, 12, 10, 13),
        "left_eye": (11, 14, 9, 15),
        "nose": (18, 20, 19, 21),
        "mouth": (22, 24, 23, 25, 26, 27),
        "chin": (28,),
    },
    closed_groups=frozenset({"right_brow", "left_brow", "right_eye", "left_eye", "nose", "mouth"}),
)

SCHEMAS: dict[str, Schema] = {s.name: s for s in (W300, WFLW, COFW)}

# Index of the WFLW point that stands for each of the 68 300W points.
WFLW_TO_68: tuple[int, ...] = (
    tuple(range(0, 33, 2))  # jaw
    + _r(33, 37) + _r(42, 46)  # upper brow contours
    + _r(51, 54) + _r(55, 59)  # nose
    + (60, 61, 63, 64, 65, 67)  # right eye
    + (68, 69, 71, 72, 73, 75)  # left eye
    + _r(76, 95)  # lips
)


def wflw_to_68(points: np.ndarray) -> np.ndarray:
    """Convert (..., 98, 2) WFLW points to the (..., 68, 2) 300W layout."""
    points = np.asarray(points)
    if points.shape[-2:] != (98, 2):
        raise ValueError(f"expected (..., 98, 2) WFLW points, got shape {points.shape}")
    return points[..., list(WFLW_TO_68), :]


def get_schema(name_or_count: str | int) -> Schema:
    """Look a schema up by name ('300w', 'wflw', 'cofw') or by point count (68, 98, 29)."""
    if isinstance(name_or_count, (int, np.integer)):
        for schema in SCHEMAS.values():
            if schema.num_points == int(name_or_count):
                return schema
        raise ValueError(f"no schema with {name_or_count} points (known: 68, 98, 29)")
    key = str(name_or_count).lower()
    if key not in SCHEMAS:
        raise ValueError(f"unknown schema {name_or_count!r} (known: {', '.join(SCHEMAS)})")
    return SCHEMAS[key]
