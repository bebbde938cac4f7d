"""Photos stored as phones store them, for the tests of EXIF orientation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def phone_photo(path: Path, upright: np.ndarray) -> Path:
    """A JPEG as a phone stores a portrait: the pixels turned a quarter left, with EXIF orientation 6 ("turn
    90 deg clockwise to show")."""
    image_module = pytest.importorskip("PIL.Image")
    stored = np.ascontiguousarray(np.rot90(upright[:, :, ::-1], k=1))  # RGB, a quarter turn anticlockwise
    exif = image_module.Exif()
    exif[0x0112] = 6
    image_module.fromarray(stored).save(path, quality=95, exif=exif)
    return path
