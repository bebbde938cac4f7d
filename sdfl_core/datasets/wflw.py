"""WFLW list files: 98 points, a face box and six attribute flags per line."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Sample, check_images_exist, require_dir, require_file

WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")


def _default_wflw_root(list_file: Path) -> Path:
    # Official layout: WFLW_annotations/list_98pt_rect_attr_train_test/list_*.txt beside WFLW_images/.
    for candidate in (list_file.parent.parent / "WFLW_images", list_file.parent.parent.parent / "WFLW_images"):
        if candidate.is_dir():
            return candidate
    return list_file.parent


def read_wflw(list_file: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Read a WFLW ``list_98pt_rect_attr_{train,test}.txt``.

    Each line: 196 coordinates ``x0 y0 ... x97 y97`` (0-based already), box ``xmin ymin xmax ymax``, six
    flags (pose expression illumination make-up occlusion blur), then the image path relative to
    ``image_root`` (default ``<list dir>/../WFLW_images`` when it exists, else the list's folder).
    group = image path: faces of one photo stay together.
    """
    list_file = require_file(list_file, "WFLW list")
    root = require_dir(image_root, "WFLW image") if image_root is not None else _default_wflw_root(list_file)
    n_values = 2 * 98 + 4 + len(WFLW_ATTRIBUTES) + 1
    samples = []
    for lineno, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != n_values:
            raise ValueError(f"{list_file}:{lineno}: expected {n_values} fields (196 coords, 4 box, 6 flags, path), got {len(parts)}")
        try:
            numbers = np.asarray(parts[:-1], dtype=np.float64)
        except ValueError:
            raise ValueError(f"{list_file}:{lineno}: non-numeric coordinate, box or flag") from None
        points = numbers[:196].reshape(98, 2)
        x0, y0, x1, y1 = numbers[196:200]
        flags = numbers[200:].astype(int)
        rel = parts[-1]
        samples.append(
            Sample(
                image_path=str(root / rel),
                points=points,
                box=np.array([x0, y0, x1 - x0, y1 - y0]),
                attributes=dict(zip(WFLW_ATTRIBUTES, flags.tolist())),
                group=str(Path(rel).with_suffix("")),
            )
        )
    if not samples:
        raise ValueError(f"WFLW list file has no annotation lines: {list_file}")
    check_images_exist(samples, list_file)
    return samples

