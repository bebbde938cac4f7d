"""Fixtures for the training tests (helpers live in synthetic_faces.py so test modules can import them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_faces import FACE_CENTER, FACE_SIZE, make_300w_folder, unit_face


@pytest.fixture(scope="session")
def unit_face_shape() -> np.ndarray:
    return unit_face()


@pytest.fixture(scope="session")
def face_shape() -> np.ndarray:
    """The synthetic face placed on the astronaut's face, in 0-based image pixels."""
    return (unit_face() * FACE_SIZE + FACE_CENTER).astype(np.float32)


@pytest.fixture(scope="session")
def w300_folder(tmp_path_factory) -> Path:
    return make_300w_folder(tmp_path_factory.mktemp("w300") / "faces")
