"""Fit the map from MediaPipe face boxes to the landmark boxes a model was trained on.

The model learns crops around landmark boxes; at run time it gets detector boxes, which sit higher
(forehead) and have another size. The median offset and size ratio over labelled training images let
the pipeline turn one into the other (stored in the checkpoint as ``crop.detector_box``).
"""
from __future__ import annotations

import logging

import numpy as np

from sdfl_core import crops
from sdfl_core.datasets import Sample, readable_images
from sdfl_core.detector import DetectorOptions, FaceDetector
from sdfl_core.evaluate import best_detection

log = logging.getLogger(__name__)


def calibrate_detector_box(samples: list[Sample], model: str = "short", min_confidence: float = 0.5) -> dict:
    """Median (dx, dy) centre shift in detector-box widths/heights and the size ratio, with counts."""
    dxs, dys, scales = [], [], []
    with FaceDetector(DetectorOptions(model=model, min_confidence=min_confidence)) as detector:
        for sample, image in readable_images(samples):
            det = best_detection(detector.detect(image), sample.points)
            if det is None:
                continue
            x, y, w, h = det.box
            lx, ly, lw, lh = crops.landmark_box(sample.points)
            dxs.append((lx + lw / 2 - (x + w / 2)) / w)
            dys.append((ly + lh / 2 - (y + h / 2)) / h)
            scales.append(max(lw, lh) / max(w, h))
    if len(scales) < 10:
        raise ValueError(f"only {len(scales)} faces detected; cannot calibrate the detector box")
    return {"dx": float(np.median(dxs)), "dy": float(np.median(dys)), "scale": float(np.median(scales)),
            "faces": len(scales), "of": len(samples), "detector": model,
            "scale_iqr": float(np.subtract(*np.percentile(scales, [75, 25])))}
