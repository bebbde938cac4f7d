"""Synthetic test data for the training tests: a 68-point face and a tiny 300W-style folder."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sdfl_core.schemas import W300

ASTRONAUT = Path(__file__).resolve().parents[1] / "fixtures" / "astronaut.jpg"
# Where the synthetic shape sits on the astronaut's face (MediaPipe finds it near x 87-135, y 35-86).
FACE_CENTER = np.array([111.0, 66.0])
FACE_SIZE = 50.0


def unit_face() -> np.ndarray:
    """A symmetric 68-point face (300W order), about 1 wide, centred on the origin, y down."""
    pts = np.zeros((68, 2))
    theta = np.linspace(np.pi, 0, 17)
    pts[0:17] = np.stack([0.5 * np.cos(theta), -0.1 + 0.6 * np.sin(theta)], 1)
    pts[17:22] = np.stack([np.linspace(-0.4, -0.1, 5), [-0.33, -0.37, -0.38, -0.37, -0.34]], 1)
    pts[27:31] = np.stack([np.zeros(4), np.linspace(-0.25, 0.05, 4)], 1)
    pts[31:36] = np.stack([np.linspace(-0.12, 0.12, 5), [0.1, 0.12, 0.13, 0.12, 0.1]], 1)
    pts[36:42] = [(-0.32, -0.2), (-0.26, -0.24), (-0.18, -0.24), (-0.12, -0.2), (-0.18, -0.16), (-0.26, -0.16)]
    k = np.arange(12)
    pts[48:60] = np.stack([0.2 * np.cos(np.pi + k * np.pi / 6), 0.3 + 0.08 * np.sin(np.pi + k * np.pi / 6)], 1)
    k = np.arange(8)
    pts[60:68] = np.stack([0.12 * np.cos(np.pi + k * np.pi / 4), 0.3 + 0.04 * np.sin(np.pi + k * np.pi / 4)], 1)
    # The left brow and eye are the mirror images of the right ones.
    for i in list(range(17, 22)) + list(range(36, 42)):
        pts[W300.mirror[i]] = (-pts[i, 0], pts[i, 1])
    return pts.astype(np.float32)


def write_pts(path: Path, points: np.ndarray) -> None:
    """iBUG .pts, 1-based like 300W."""
    rows = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{rows}\n}}\n")


def make_300w_folder(root: Path, count: int = 12, seed: int = 0) -> Path:
    """``count`` astronaut images under small random affines, each with its transformed synthetic face."""
    root.mkdir(parents=True, exist_ok=True)
    image = cv2.imread(str(ASTRONAUT))
    base = (unit_face() * FACE_SIZE + FACE_CENTER).astype(np.float64)
    rng = np.random.default_rng(seed)
    for i in range(count):
        angle, scale = rng.uniform(-10, 10), rng.uniform(0.9, 1.1)
        m = cv2.getRotationMatrix2D(tuple(FACE_CENTER), angle, scale)
        m[:, 2] += rng.uniform(-8, 8, size=2)
        cv2.imwrite(str(root / f"face{i:02d}.jpg"), cv2.warpAffine(image, m, (256, 256)))
        write_pts(root / f"face{i:02d}.pts", base @ m[:, :2].T + m[:, 2])
    return root
