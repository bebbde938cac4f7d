"""Crop pixels -> network input. Shared by training and both inference engines."""
from __future__ import annotations

import cv2
import numpy as np


def to_input(crops_bgr: np.ndarray, mean, std) -> np.ndarray:
    """(B, S, S, 3) uint8 BGR crops -> (B, 3, S, S) float32 RGB, normalised with the checkpoint's mean/std."""
    crops_bgr = np.asarray(crops_bgr)
    if crops_bgr.ndim == 3:
        crops_bgr = crops_bgr[None]
    if crops_bgr.ndim != 4 or crops_bgr.shape[-1] != 3 or crops_bgr.dtype != np.uint8:
        raise ValueError(f"crops must be (B, S, S, 3) uint8 BGR, got {crops_bgr.shape} {crops_bgr.dtype}")
    # OpenCV's blob maker does the channel swap, scaling and layout change in one pass (several times
    # faster than the same steps in NumPy, which took a tenth of a face's landmark time).
    params = cv2.dnn.Image2BlobParams()
    params.scalefactor = tuple(1.0 / (255.0 * float(s)) for s in std)  # on RGB, after the swap
    params.mean = tuple(255.0 * float(m) for m in mean)
    params.swapRB = True
    params.ddepth = cv2.CV_32F
    return cv2.dnn.blobFromImagesWithParams(list(crops_bgr), params)
