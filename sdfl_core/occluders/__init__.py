"""Every occluder sdfl draws, in one place: ``rectangles`` (the GUI, the demo clip, training) and
``shapes`` (the robustness evaluation's rectangles and blobs, and part occluders)."""
from .rectangles import (
    COVER_SIDES,
    OCCLUDER_COLOR,
    Occluder,
    apply_occluders,
    cover_occluder,
    demo_bar,
    paint,
    random_occluder,
    random_patch,
)
from .shapes import (
    DEFAULT_LEVELS,
    PARTS,
    SHAPES,
    Occlusion,
    available_parts,
    box_coverage,
    box_region,
    case_rng,
    occlude_part,
    occlude_random,
    part_groups,
    part_points,
    point_visibility,
)

__all__ = [
    "COVER_SIDES", "DEFAULT_LEVELS", "OCCLUDER_COLOR", "PARTS", "SHAPES", "Occluder", "Occlusion", "apply_occluders",
    "available_parts", "box_coverage", "box_region", "case_rng", "cover_occluder", "demo_bar", "occlude_part",
    "occlude_random", "paint", "part_groups", "part_points", "point_visibility", "random_occluder", "random_patch",
]
