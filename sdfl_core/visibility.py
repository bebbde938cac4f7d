"""Scoring the per-point visibility output: its AUROC against a known cover, and what the
visibility-weighted Kalman filter makes of an occluded face (``sdfl occlusion``, ``sdfl eval``)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .metrics import auroc
from .smoothing import KalmanSmoother

SETTLE_FRAMES = 20
"""Frames of the clean prediction a track sees before the occluder arrives: enough for the filter's
velocity to settle near zero (its first frames trust every measurement almost fully)."""
OCCLUDED_FRAMES = 10
"""Frames the occluder then stays (a third of a second at 30 fps) before the points are scored."""


def visibility_auroc(scores: Sequence[np.ndarray], visible: Sequence[np.ndarray]) -> float:
    """AUROC of the predicted visibility ``scores`` against the true ``visible`` flags (visible = the
    positive class), pooled over all points of all faces. NaN when there are no scores (a model without
    the output) or when every point is visible (or every one covered)."""
    scores = [np.ravel(s) for s in scores]
    if not scores or any(s.size == 0 for s in scores):
        return float("nan")
    return auroc(np.concatenate(scores), np.concatenate([np.ravel(v) for v in visible]))


def track_through_occlusion(clean: np.ndarray, clean_visibility: np.ndarray, occluded: np.ndarray,
                            occluded_visibility: np.ndarray, scale: float, smoothing: float = 0.5) -> np.ndarray:
    """The smoothed (N, 2) points of a still face whose track is seeded from the clean frame and then covered.

    A visibility-weighted ``KalmanSmoother`` sees the ``clean`` prediction for ``SETTLE_FRAMES`` frames,
    then the ``occluded`` one (and its visibility) for ``OCCLUDED_FRAMES`` frames; its output is what
    a tracked video would report by then. ``scale`` is the face size in pixels (the filter's noise unit).
    """
    smoother = KalmanSmoother(smoothing)
    for _ in range(SETTLE_FRAMES):
        smoother.update(clean, scale, clean_visibility)
    out = clean
    for _ in range(OCCLUDED_FRAMES):
        out = smoother.update(occluded, scale, occluded_visibility)
    return np.asarray(out, np.float32)
