"""300W-style ``.pts`` annotations (300W, 300VW, menpo): one file of points beside each image."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from ..images import IMAGE_EXTENSIONS
from .base import Sample, check_point_counts, require_dir, require_file

log = logging.getLogger(__name__)

_FACE_INDEX = re.compile(r"_\d+$")


def read_pts(path: str | Path) -> np.ndarray:
    """Read an iBUG ``.pts`` file as stored (300W files are 1-based: the caller shifts)."""
    path = require_file(path, "pts")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise ValueError(f"{path}: not an iBUG .pts file (no '{{' ... '}}' block)") from None
    declared = None
    for ln in lines[:start]:
        key, _, value = ln.partition(":")
        if key.strip().lower() == "n_points":
            try:
                declared = int(value)
            except ValueError:
                raise ValueError(f"{path}: bad n_points header {ln!r}") from None
    rows = []
    for lineno, ln in enumerate(lines[start + 1 : end], start=start + 2):
        if not ln:
            continue
        parts = ln.split()
        try:
            if len(parts) != 2:
                raise ValueError
            rows.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ValueError(f"{path}:{lineno}: malformed point row {ln!r} (expected 'x y')") from None
    if not rows:
        raise ValueError(f"{path}: no points")
    if declared is not None and declared != len(rows):
        raise ValueError(f"{path}: point-count mismatch, header says {declared} points, file has {len(rows)}")
    return np.asarray(rows, np.float32)


def _find_image(pts: Path) -> Path | None:
    folders = [pts.parent]
    if pts.parent.name.lower() == "annot":  # 300VW: <video>/annot/000001.pts + <video>/imgs/000001.jpg
        folders.append(pts.parent.parent / "imgs")
    for folder in folders:
        for ext in IMAGE_EXTENSIONS:
            for candidate in (folder / (pts.stem + ext), folder / (pts.stem + ext.upper())):
                if candidate.is_file():
                    return candidate
    return None


def _load_broken_frames(root: Path) -> dict[str, set[int]]:
    # mmpose ships 300VW's list of badly annotated frames as a pickled {video: [frame, ...]} dict.
    path = root / "broken_frames.npy"
    if not path.is_file():
        return {}
    try:
        table = np.load(path, allow_pickle=True).item()
        return {str(k): {int(f) for f in v} for k, v in table.items()}
    except Exception as exc:  # a damaged side file should not stop the whole read
        log.warning("ignoring unreadable %s: %s", path, exc)
        return {}


def read_300w(root: str | Path, num_points: int | None = 68, skip_broken: bool = True) -> list[Sample]:
    """Read every ``.pts`` under ``root`` (recursively) with its same-stem image.

    Handles the 300W layout (``img.jpg`` + ``img.pts`` side by side; group = stem without the ``_N`` face
    index) and the 300VW layout (``<video>/annot/*.pts`` + ``<video>/imgs/*.jpg``; group = video folder).
    300W coordinates are 1-based, so 1 is subtracted. With ``skip_broken``, frames listed in a
    ``broken_frames.npy`` at ``root`` (mmpose's 300VW list) are left out. ``num_points=None`` accepts any
    count as long as all files agree.
    """
    root = require_dir(root, "300W")
    pts_files = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".pts" and p.is_file())
    if not pts_files:
        raise ValueError(f"no .pts files found under {root}")
    broken = _load_broken_frames(root) if skip_broken else {}
    samples, unpaired, skipped = [], [], 0
    for pts in pts_files:
        is_video = pts.parent.name.lower() == "annot"
        group = pts.parent.parent.name if is_video else _FACE_INDEX.sub("", pts.stem)
        if is_video and pts.stem.isdigit() and int(pts.stem) in broken.get(group, ()):
            skipped += 1
            continue
        image = _find_image(pts)
        if image is None:
            unpaired.append(pts)
            continue
        samples.append(Sample(str(image), read_pts(pts) - 1.0, group=group))
    if skipped:
        log.info("skipped %d frames listed in %s", skipped, root / "broken_frames.npy")
    if unpaired:
        log.warning("%d .pts files under %s have no image and were skipped, first: %s", len(unpaired), root, unpaired[0])
    if not samples:
        raise ValueError(f"no .pts file under {root} has a matching image ({', '.join(IMAGE_EXTENSIONS)})")
    check_point_counts(samples, num_points, root)
    return samples

