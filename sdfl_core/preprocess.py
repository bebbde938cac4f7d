"""Crop pixels -> network input. Shared by training and both inference engines."""
from __future__ import annotations

import numpy as np


def to_input(crops_bgr: np.ndarray, mean, std) -> np.ndarray:
    """(B, S, S, 3) uint8 BGR crops -> (B, 3, S, S) float32 RGB, normalised with the checkpoint's mean/std."""
    crops_bgr = np.asarray(crops_bgr)
    if crops_bgr.ndim == 3:
        crops_bgr = crops_bgr[None]
    if crops_bgr.ndim != 4 or crops_bgr.shape[-1] != 3 or crops_bgr.dtype != np.uint8:
        raise ValueError(f"crops must be (B, S, S, 3) uint8 BGR, got {crops_bgr.shape} {crops_bgr.dtype}")
    x = crops_bgr[..., ::-1].astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
