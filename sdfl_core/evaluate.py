"""What `sdfl eval` measures: NME (inter-ocular, inter-pupil), FR@0.1, AUC@0.1, per-subset numbers and a CED plot."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import crops
from .datasets import Sample, readable_images
from .landmarker import as_landmarker, detection_to_crop
from .metrics import ced, finite_or_none, nme_io, summarize
from .types import Detection
from .visibility import visibility_auroc

log = logging.getLogger(__name__)


def best_detection(detections: list[Detection], points: np.ndarray) -> Detection | None:
    """The detection that overlaps the ground-truth landmark box most (IoU), if any overlaps."""
    from .tracker import iou_matrix

    if not detections:
        return None
    x, y, w, h = crops.landmark_box(points)
    ious = iou_matrix(np.array([[x, y, x + w, y + h]]), np.stack([d.xyxy for d in detections]))[0]
    best = int(np.argmax(ious))
    return detections[best] if ious[best] > 0.1 else None


def predict_samples(landmarker, samples: list[Sample], boxes: str = "gt", batch_size: int = 32
                    ) -> tuple[np.ndarray, np.ndarray, list[Sample], int, np.ndarray]:
    """Predictions (M, N, 2) in image pixels, ground truth, the samples kept, missed detections, and the
    predicted visibility (M, N) ((M, 0) for a model without a visibility output).

    Unreadable images are skipped with a warning. With ``boxes='detector'`` a face the detector misses
    falls back to the ground-truth box and is counted in the returned number.
    """
    landmarker = as_landmarker(landmarker)
    info = landmarker.info
    size = landmarker.input_size
    detector = None
    if boxes == "detector":
        from .detector import DetectorOptions, FaceDetector

        if "full" not in info.detector_box:
            # A training run's checkpoint has none until training.ship measures it: its crops then sit
            # where the raw box puts them, and its scores are not comparable with a shipped model's.
            log.warning("%s has no calibration for the full-range detector's box (training.ship adds it): "
                        "its crops are the raw box times the crop scale", landmarker.name)
        detector = FaceDetector(DetectorOptions(model="full", min_confidence=0.3))
    elif boxes != "gt":
        raise ValueError(f"boxes must be gt or detector, got {boxes!r}")
    preds, gts, kept, missed, visibility = [], [], [], 0, []
    batch_images, batch_affines = [], []

    def flush() -> None:
        if batch_images:
            points, _, vis = landmarker.predict_faces(batch_images, batch_affines)
            preds.extend(points)
            visibility.extend(vis)
            batch_images.clear()
            batch_affines.clear()

    try:
        for sample, image in readable_images(samples):
            affine = None
            if detector is not None:
                det = best_detection(detector.detect(image), sample.points)
                if det is None:
                    missed += 1
                else:
                    affine = detection_to_crop(det, info, "full", landmarker.upright)
            if affine is None:
                affine = crops.landmark_crop_affine(sample.points, info.crop_scale, size)
            batch_images.append(image)
            batch_affines.append(affine)
            gts.append(sample.points)
            kept.append(sample)
            if len(batch_images) >= batch_size:
                flush()
        flush()
    finally:
        if detector is not None:
            detector.close()
    if not kept:
        raise ValueError("no readable images to evaluate")
    return np.stack(preds), np.stack(gts).astype(np.float32), kept, missed, np.stack(visibility)


def evaluate(landmarker, samples: list[Sample], boxes: str = "gt", batch_size: int = 32) -> tuple[dict, np.ndarray]:
    """The report dict (fractions) and the per-image inter-ocular NMEs of a :class:`Landmarker`."""
    landmarker = as_landmarker(landmarker)
    schema = landmarker.schema
    n = landmarker.num_points
    bad = [s for s in samples if s.points.shape[0] != n]
    if bad:
        raise ValueError(f"the data has {bad[0].points.shape[0]} points per face but the model predicts {n} ({schema.name})")
    pred, gt, kept, missed, visibility = predict_samples(landmarker, samples, boxes, batch_size)
    report = summarize(pred, gt, schema)
    if visibility.shape[1] and kept and all(s.occluded is not None for s in kept):
        # The visibility output against the annotators' occlusion flags (visible = the positive class).
        report["visibility_auroc"] = finite_or_none(visibility_auroc(visibility, [~s.occluded for s in kept]))
    errors = nme_io(pred, gt, schema)
    attributes = sorted({k for s in kept for k in s.attributes})
    if attributes:
        report["subsets"] = {}
        for name in attributes:
            sel = np.array([bool(s.attributes.get(name)) for s in kept])
            if sel.any():
                report["subsets"][name] = summarize(pred[sel], gt[sel], schema)
    if boxes == "detector":
        report["missed_detections"] = missed
    return report, errors


def plot_ced(path: str | Path, curves: dict[str, np.ndarray], threshold: float = 0.1) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for label, errors in curves.items():
        xs, ys = ced(errors, threshold)
        ax.plot(xs * 100, ys, label=label)
    ax.set_xlabel("NME (inter-ocular, %)")
    ax.set_ylabel("fraction of faces")
    ax.set_xlim(0, threshold * 100)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Cumulative error distribution")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
