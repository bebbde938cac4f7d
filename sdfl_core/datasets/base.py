"""The common sample type every dataset format becomes, the checks its readers share, and its pixels.

Coordinates in a Sample are 0-based pixels with pixel centres on integers (see ``schemas``); readers of
formats that use another convention shift on the way in. No torch here: a training Dataset wraps these.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..images import read_image, to_bgr_uint8

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Sample:
    """One annotated face.

    ``image`` holds the pixels for formats that store them inside the annotation file (COFW .mat); then
    ``image_path`` is a label such as ``"/data/COFW.mat#train/17"`` rather than a file.

    ``occluded`` is (N,) bool where the annotation flags occluded points (COFW's third column), None where
    the data has no such flags: ``visible`` alone does not say (COCO's ``v > 0`` means "labelled").
    """

    image_path: str
    points: np.ndarray
    box: np.ndarray | None = None
    visible: np.ndarray | None = None
    attributes: dict[str, int] = field(default_factory=dict)
    group: str = ""
    image: np.ndarray | None = None
    occluded: np.ndarray | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
            raise ValueError(f"points must have shape (N, 2) with N > 0, got {points.shape}")
        object.__setattr__(self, "points", points)
        if self.box is not None:
            box = np.asarray(self.box, dtype=np.float32)
            if box.shape != (4,):
                raise ValueError(f"box must have shape (4,) as x, y, w, h, got {box.shape}")
            object.__setattr__(self, "box", box)
        if self.visible is not None:
            visible = np.asarray(self.visible, dtype=bool)
            if visible.shape != (points.shape[0],):
                raise ValueError(f"visible must have shape ({points.shape[0]},), got {visible.shape}")
            object.__setattr__(self, "visible", visible)
        if self.occluded is not None:
            occluded = np.asarray(self.occluded, dtype=bool)
            if occluded.shape != (points.shape[0],):
                raise ValueError(f"occluded must have shape ({points.shape[0]},), got {occluded.shape}")
            object.__setattr__(self, "occluded", occluded)
        if self.image is not None:
            image = np.asarray(self.image)
            if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
                raise ValueError(f"image must be uint8 (H, W) or (H, W, 1|3|4), got {image.dtype} {image.shape}")
        object.__setattr__(self, "image_path", str(self.image_path))
        object.__setattr__(self, "attributes", {str(k): int(v) for k, v in self.attributes.items()})
        object.__setattr__(self, "group", str(self.group))

    @property
    def num_points(self) -> int:
        return int(self.points.shape[0])




def require_dir(root: str | Path, what: str) -> Path:
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise FileNotFoundError(f"{what} folder not found: {root}")
    if not root.is_dir():
        raise ValueError(f"{what} path is not a folder: {root}")
    return root


def require_file(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if not path.is_file():
        raise ValueError(f"{what} path is not a file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} file is empty: {path}")
    return path


def check_images_exist(samples: list[Sample], source: Path) -> None:
    missing = [s.image_path for s in samples if not Path(s.image_path).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(samples)} images listed in {source} are missing, first: {missing[0]}"
        )


def check_point_counts(samples: list[Sample], num_points: int | None, source: Path) -> None:
    expected = num_points if num_points is not None else samples[0].num_points
    for s in samples:
        if s.num_points != expected:
            raise ValueError(f"point-count mismatch in {source}: {s.image_path} has {s.num_points} points, expected {expected}")



def load_image(sample: Sample) -> np.ndarray:
    """Return the sample's image as (H, W, 3) BGR uint8.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError("cannot read image <path>")`` for a
    file OpenCV cannot decode, so callers can skip it with a warning.
    """
    if sample.image is not None:
        return to_bgr_uint8(sample.image)
    return to_bgr_uint8(read_image(sample.image_path, exif_orientation=True))


def readable_images(samples: Iterable[Sample]) -> Iterator[tuple[Sample, np.ndarray]]:
    """(sample, BGR image) for every sample whose image reads; the others are skipped with a warning
    naming them (a corrupt file in a dataset should not end an evaluation or a training run)."""
    for sample in samples:
        try:
            image = load_image(sample)
        except (ValueError, FileNotFoundError) as exc:
            log.warning("skipping %s", exc)
            continue
        yield sample, image
