"""NME (inter-ocular, inter-pupil), failure rate, AUC and CED curves, the standard way."""
from __future__ import annotations

import numpy as np
from scipy.integrate import (
    trapezoid,  # np.trapezoid needs numpy 2; the project allows 1.26
)

from .schemas import Schema


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"predictions and ground truth must both be (M, N, 2), got {pred.shape} and {gt.shape}")
    return pred, gt


def nme(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray, point_mask: np.ndarray | None = None) -> np.ndarray:
    """Per-image mean point-to-point error divided by ``norm`` (M,).

    ``point_mask`` (M, N) restricts the mean to some points (e.g. only visible ones); an image with no
    selected point gets NaN.
    """
    pred, gt = _check(pred, gt)
    norm = np.asarray(norm, np.float64)
    if norm.shape != pred.shape[:1]:
        raise ValueError(f"norm must be ({pred.shape[0]},), got {norm.shape}")
    if (norm <= 0).any():
        raise ValueError("normalising distance must be positive for every image")
    err = np.linalg.norm(pred - gt, axis=-1)
    if point_mask is None:
        return err.mean(axis=1) / norm
    sel = np.asarray(point_mask, bool)
    count = sel.sum(axis=1)
    total = np.where(sel, err, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1) / norm, np.nan)


def nme_io(pred: np.ndarray, gt: np.ndarray, schema: Schema, point_mask=None) -> np.ndarray:
    return nme(pred, gt, schema.ocular_distance(np.asarray(gt, np.float64)), point_mask)


def nme_ip(pred: np.ndarray, gt: np.ndarray, schema: Schema, point_mask=None) -> np.ndarray:
    return nme(pred, gt, schema.pupil_distance(np.asarray(gt, np.float64)), point_mask)


def failure_rate(errors: np.ndarray, threshold: float = 0.1) -> float:
    errors = np.asarray(errors, np.float64)
    if errors.size == 0:
        raise ValueError("no errors to compute a failure rate from")
    return float((errors > threshold).mean())


def ced(errors: np.ndarray, threshold: float = 0.1, steps: int = 10001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: thresholds x in [0, threshold] and fraction of images with error <= x."""
    errors = np.sort(np.asarray(errors, np.float64))
    xs = np.linspace(0.0, threshold, steps)
    return xs, np.searchsorted(errors, xs, side="right") / errors.size


def auc(errors: np.ndarray, threshold: float = 0.1, steps: int = 10001) -> float:
    """Area under the CED curve up to ``threshold``, divided by the threshold (in [0, 1])."""
    errors = np.asarray(errors, np.float64)
    if errors.size == 0:
        raise ValueError("no errors to compute an AUC from")
    xs, ys = ced(errors, threshold, steps)
    return float(trapezoid(ys, xs) / threshold)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive): the probability that a
    random positive scores above a random negative, ties counting half (Mann-Whitney U). NaN when one
    class is absent."""
    from scipy.stats import mannwhitneyu

    scores, labels = np.asarray(scores, np.float64).ravel(), np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in size: {scores.size} and {labels.size}")
    pos, neg = scores[labels], scores[~labels]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    return float(mannwhitneyu(pos, neg, alternative="two-sided").statistic / (pos.size * neg.size))


def summarize(pred: np.ndarray, gt: np.ndarray, schema: Schema, threshold: float = 0.1) -> dict:
    """The report's keys, as fractions: count, nme_io, nme_ip, fr_10, auc_10 and worst_io (the largest
    face's NME, so one face thrown off the image shows as itself and not only through the mean)."""
    io = nme_io(pred, gt, schema)
    return {"count": int(io.size), "nme_io": float(io.mean()), "nme_ip": float(nme_ip(pred, gt, schema).mean()),
            **summarize_errors(io, threshold), "worst_io": float(io.max()) if io.size else float("nan")}


def summarize_errors(errors: np.ndarray, threshold: float = 0.1) -> dict:
    """FR and AUC at ``threshold`` of per-face NMEs: the keys ``fr_10`` and ``auc_10`` of a report."""
    return {"fr_10": failure_rate(errors, threshold), "auc_10": auc(errors, threshold)}


def finite_or_none(value: float) -> float | None:
    """A float for a JSON report, None (null) for NaN or infinity."""
    return float(value) if np.isfinite(value) else None
