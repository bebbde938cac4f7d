"""Occlusion inspection: the engine on a clean and an occluded frame with the same boxes, compared.

No model math here: both predictions come from ``Landmarker.predict_boxes``; this module only
compares their outputs.
"""
from __future__ import annotations

import numpy as np

from sdfl_core.landmarker import Landmarker
from sdfl_core.types import Detection

from .messages import Inspection

WEIGHT_DROP = 0.25
"""An edge counts as weakened when its weight falls by more than this fraction of its clean value."""


def dropped_edges(clean_weights: np.ndarray, occluded_weights: np.ndarray, mask: np.ndarray,
                  drop: float = WEIGHT_DROP) -> np.ndarray:
    """(E, 2) pairs i < j of the mask whose symmetric weight max(w_ij, w_ji) fell by more than ``drop``."""
    n = clean_weights.shape[0]
    if clean_weights.shape != (n, n) or occluded_weights.shape != (n, n):
        return np.zeros((0, 2), np.int64)
    adj = np.asarray(mask, bool)
    adj = np.triu((adj | adj.T) & ~np.eye(n, dtype=bool), k=1)
    ii, jj = np.nonzero(adj)
    before = np.maximum(clean_weights[ii, jj], clean_weights[jj, ii])
    after = np.maximum(occluded_weights[ii, jj], occluded_weights[jj, ii])
    weak = (before > 0) & (after < before * (1.0 - drop))
    return np.stack([ii[weak], jj[weak]], axis=1)


def inspect(engine: Landmarker, clean_bgr: np.ndarray, occluded_bgr: np.ndarray,
            detections: list[Detection], occluders=()) -> Inspection:
    """Both predictions for the same boxes, per-point displacement, the weakened edges and which clean
    points the ``occluders`` (``sdfl_core.occluders.Occluder``) cover."""
    if not detections:
        return Inspection()
    clean = engine.predict_boxes(clean_bgr, detections)
    occluded = engine.predict_boxes(occluded_bgr, detections)
    displacement = tuple(np.linalg.norm(o.points - c.points, axis=1) for c, o in zip(clean, occluded))
    mask = engine.info.mask
    dropped = tuple(dropped_edges(c.edge_weights, o.edge_weights, mask) for c, o in zip(clean, occluded))
    covered = tuple(np.any([occ.contains(c.points) for occ in occluders], axis=0) if occluders
                    else np.zeros(c.num_points, bool) for c in clean)
    return Inspection(tuple(detections), tuple(clean), tuple(occluded), displacement, dropped, covered)
