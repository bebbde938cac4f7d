"""Baseline landmark models for comparisons: dlib's 68-point shape predictor.

A baseline has the interface of :meth:`landmarker.Landmarker.predict_face` (several images of one face,
located by its ground-truth points) and a ``name`` and ``num_points``. The dlib baseline is given a
``dlib.rectangle`` of the ground-truth landmark box. dlib's 68-point model was trained on boxes from its
HOG face detector, which are roughly but not exactly the landmark box, so its numbers are slightly
pessimistic compared with running it on its own boxes.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import crops


def dlib_model_path() -> Path | None:
    """face_recognition_models' 68-point file, found without importing the package (it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return path
    return None


def dlib_available() -> bool:
    return importlib.util.find_spec("dlib") is not None and dlib_model_path() is not None


class DlibModel:
    """dlib's 68-point shape predictor, given the ground-truth landmark box (see the module docstring)."""

    name = "dlib"
    num_points = 68

    def __init__(self, model_path: str | Path | None = None) -> None:
        import dlib

        path = Path(model_path) if model_path else dlib_model_path()
        if path is None or not path.is_file():
            raise FileNotFoundError(f"dlib 68-point model not found: {path or 'face_recognition_models is not installed'}")
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(path))

    def predict_face(self, images: Sequence[np.ndarray], points_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y, w, h = crops.landmark_box(points_gt)
        rect = self._dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        out = []
        for img in images:
            rgb = np.ascontiguousarray(img[:, :, ::-1])
            shape = self._predictor(rgb, rect)
            out.append([(p.x, p.y) for p in shape.parts()])
        return (np.asarray(out, np.float32), np.zeros((len(out), self.num_points, 0), np.float32),
                np.zeros((len(out), 0), np.float32))
