"""Tilted heads: the detector path's accuracy on faces turned in the image plane, with upright crops (the
default: each face cut turned by its eyes' roll) against axis-aligned ones, in the same run.

    python benchmarks/roll.py [--config training/configs/sdfl_68_helen5_shapes.yaml] [--weights W ...]
                              [--angles 0,15,30,45,60,90] [--limit N] [--engine E]

Each face of the config's validation split (never AFW, never its training split) is turned by each angle
about its landmarks' centre, on a canvas grown to hold the whole image. MediaPipe's full-range detector
(as ``sdfl eval --boxes detector``) finds it; the detection overlapping the turned landmark box most is
cropped through the model's calibration (``landmarker.detection_to_crop``), and the model runs with the
video defaults (one pass, one crop) and the photo defaults (two passes of five crops), each with
``upright`` on and off. Faces the detector misses at an angle are counted and left out of that angle's
rows (the same faces for both crops). NME is inter-ocular, against the turned ground truth.
Not a test: it needs the train extra (the config's split). The result is in docs/benchmarks/roll.txt.
"""
from __future__ import annotations

from preamble import REPO, add_engine_arg, resolved_engine, setup_logging  # isort: skip  (first: paths, logs, native import order)

import argparse
from pathlib import Path

import cv2
import numpy as np

from sdfl_core import crops
from sdfl_core.datasets import Sample, readable_images
from sdfl_core.detector import DetectorOptions, FaceDetector
from sdfl_core.evaluate import best_detection
from sdfl_core.landmarker import detection_to_crop, load_landmarker
from sdfl_core.metrics import auc, failure_rate, nme_io

MODES = {"video (1 pass, 1 crop)": (1, 1), "photo (2 passes, 5 crops)": (2, 5)}


def turned(sample: Sample, image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by ``angle`` degrees (positive: clockwise on screen) about the landmarks' centre,
    on a canvas that holds all of it, and the landmarks turned with it."""
    h, w = image.shape[:2]
    centre = sample.points.mean(axis=0)
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), -angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    size = (int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin)))
    m[:, 2] += np.array(size) / 2 - np.array([w, h]) / 2
    return cv2.warpAffine(image, m, size), crops.transform_points(sample.points, m)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "training" / "configs" / "sdfl_68_helen5_shapes.yaml")
    parser.add_argument("--weights", action="append", type=Path,
                        help="models to compare (repeat; default: the shipped sdfl_68.onnx)")
    parser.add_argument("--angles", default="0,15,30,45,60,90", help="comma-separated roll angles in degrees")
    parser.add_argument("--limit", type=int, default=0, help="the first N validation faces only (0: all)")
    add_engine_arg(parser)
    args = parser.parse_args()
    setup_logging()
    try:
        angles = [float(a) for a in args.angles.split(",")]
    except ValueError:
        parser.error(f"--angles must be comma-separated numbers, got {args.angles!r}")
    from training.config import load_config
    from training.data import split_samples

    _, val = split_samples(load_config(args.config))
    val = val[: args.limit] if args.limit else val
    weights = args.weights or [REPO / "assets" / "models" / "sdfl_68.onnx"]
    engine = resolved_engine(args)
    models = {w: load_landmarker(w, engine=engine) for w in weights}
    print(f"# python benchmarks/roll.py --config {args.config.name} --angles {args.angles}   ({len(val)} validation faces, "
          f"full-range detector, engine {engine})")
    print(f"{'model':12s} {'mode':26s} {'angle':>5s} {'found':>6s} {'upright NME %':>13s} {'FR %':>5s} {'AUC':>6s} "
          f"{'axis NME %':>10s} {'FR %':>5s} {'AUC':>6s} {'x axis':>7s}")
    with FaceDetector(DetectorOptions(model="full", min_confidence=0.3)) as detector:
        for angle in angles:
            faces = []  # (image, turned truth, detection)
            for sample, image in readable_images(val):
                image, truth = turned(sample, image, angle)
                det = best_detection(detector.detect(image), truth)
                if det is not None:
                    faces.append((image, truth, det))
            truths = np.stack([t for _, t, _ in faces])
            for path, landmarker in models.items():
                for mode, (passes, count) in MODES.items():
                    landmarker.passes, landmarker.crops_per_face = passes, count
                    row = {}
                    for upright in (True, False):
                        landmarker.upright = upright
                        preds = np.stack([landmarker.predict(image, [detection_to_crop(det, landmarker.info, "full", upright)])[0].points
                                          for image, _, det in faces])
                        errors = nme_io(preds, truths, landmarker.schema)
                        row[upright] = (100 * errors.mean(), 100 * failure_rate(errors), auc(errors))
                    (up, up_fr, up_auc), (ax, ax_fr, ax_auc) = row[True], row[False]
                    print(f"{Path(path).stem:12s} {mode:26s} {angle:5.0f} {len(faces):6d} {up:13.2f} {up_fr:5.1f} "
                          f"{up_auc:6.3f} {ax:10.2f} {ax_fr:5.1f} {ax_auc:6.3f} {up / ax:7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
