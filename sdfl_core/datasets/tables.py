"""Landmark tables: a CSV of ``name,x0,y0,...`` rows (YouTube Faces) and COCO keypoint JSON."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from .base import (
    Sample,
    check_images_exist,
    check_point_counts,
    require_dir,
    require_file,
)

_FRAME_SUFFIX = re.compile(r"_\d+(\.[A-Za-z0-9]+)?$")


def _is_header(row: list[str]) -> bool:
    values = [c.strip() for c in row[1:]]
    if not row[0].strip() or values == [str(i) for i in range(len(values))]:
        return True  # pandas' index header ",0,1,..."
    try:
        np.asarray(values, dtype=np.float64)
    except ValueError:
        return True  # named columns such as "name,x0,y0,..."
    return False


def read_landmark_csv(csv_file: str | Path, image_root: str | Path | None = None, num_points: int | None = None) -> list[Sample]:
    """Read a ``name,x0,y0,...`` landmark CSV (the YouTube-Faces ``*_frames_keypoints.csv`` files).

    A header row (pandas' ``,0,1,...``) is skipped. Coordinates are 0-based. Images are resolved in
    ``image_root``, by default the folder named like the CSV minus ``_frames_keypoints``
    (``training_frames_keypoints.csv`` -> ``training/``), else the CSV's folder.
    group = name without its trailing ``_NN.jpg`` frame number (the identity).
    """
    csv_file = require_file(csv_file, "landmark CSV")
    if image_root is None:
        guess = csv_file.parent / csv_file.stem.removesuffix("_frames_keypoints")
        root = guess if guess.is_dir() else csv_file.parent
    else:
        root = require_dir(image_root, "CSV image")
    with open(csv_file, newline="", encoding="utf-8") as f:
        rows = [(i, r) for i, r in enumerate(csv.reader(f), start=1) if r and any(c.strip() for c in r)]
    if rows and _is_header(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"landmark CSV has no data rows: {csv_file}")
    samples = []
    for lineno, row in rows:
        name, values = row[0].strip(), row[1:]
        if len(values) < 2 or len(values) % 2:
            raise ValueError(f"{csv_file}:{lineno}: expected name followed by x,y pairs, got {len(values)} values")
        try:
            coords = np.asarray(values, dtype=np.float64)
        except ValueError:
            raise ValueError(f"{csv_file}:{lineno}: non-numeric coordinate") from None
        samples.append(Sample(str(root / name), coords.reshape(-1, 2), group=_FRAME_SUFFIX.sub("", name)))
    check_point_counts(samples, num_points, csv_file)
    check_images_exist(samples, csv_file)
    return samples


# ------------------------------------------------------------------------------------------------ COCO


def read_coco(json_file: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Read a COCO-style keypoint JSON (as mmpose writes for its face sets).

    ``keypoints`` is flat ``x, y, v``; ``visible = v > 0`` (labelled: mmpose's face files use 1 and 2
    alike). ``bbox`` is x, y, w, h (None when absent). Coordinates are kept as stored.
    ``file_name`` is relative to ``image_root`` (default: the JSON's folder). group = first folder of
    ``file_name`` when it has one (a 300VW video), else the image stem.
    """
    json_file = require_file(json_file, "COCO JSON")
    root = require_dir(image_root, "COCO image") if image_root is not None else json_file.parent
    try:
        data = json.loads(json_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_file} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise ValueError(f"{json_file} is not a COCO keypoint file (needs 'images' and 'annotations')")
    images = {img["id"]: img["file_name"] for img in data["images"]}
    samples = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        ident = ann.get("id", "?")
        if ann.get("image_id") not in images:
            raise ValueError(f"{json_file}: annotation {ident} refers to unknown image_id {ann.get('image_id')}")
        kps = np.asarray(ann.get("keypoints", []), np.float64)
        if kps.size == 0 or kps.size % 3:
            raise ValueError(f"{json_file}: annotation {ident} keypoints must be a flat x,y,v list, got {kps.size} values")
        kps = kps.reshape(-1, 3)
        file_name = images[ann["image_id"]]
        rel = Path(file_name)
        box = ann.get("bbox")
        samples.append(
            Sample(
                image_path=str(root / rel),
                points=kps[:, :2],
                box=np.asarray(box) if box is not None and len(box) == 4 else None,
                visible=kps[:, 2] > 0,
                group=rel.parts[0] if len(rel.parts) > 1 else rel.stem,
            )
        )
    if not samples:
        raise ValueError(f"COCO JSON has no keypoint annotations: {json_file}")
    check_point_counts(samples, None, json_file)
    check_images_exist(samples, json_file)
    return samples

