"""Accuracy of the shipped SDFL model, its FC twin and dlib's 68-point predictor on the same faces.

    python benchmarks/accuracy.py [--data ../shared/data/300w/afw] [--format 300w] [--weights A --weights B]
        [--crops-per-face 1,5] [--passes 1,2] [--crops upright,axis]

Two protocols, each printed as one table with ratios against dlib measured in the same run:
- gt: every model gets the ground-truth landmark box (the standard protocol; dlib's box is the same
  landmark box, which is tighter than the HOG boxes dlib was trained on);
- detector: every model finds the face with its own detector (sdfl: MediaPipe full-range through the
  checkpoint's box calibration; dlib: its HOG detector). A missed face falls back to the gt box and is
  counted.
AFW is sdfl's dev test set (never trained on); dlib's model was trained on all of iBUG 300-W, AFW
included, so on AFW dlib is scored on its own training faces.

Each model is scored once per ``--crops-per-face`` count: 1 is the network alone (what video tracking
runs), 5 the mean over the crop and four copies shifted by 5 % of its side (``--crops-per-face 5`` of
``sdfl eval``/``track``/``batch``/``occlusion``), at five times the network's work. And once per ``--passes``
count: 2 cuts each face again from the first pass's landmarks (``--passes 2`` of ``sdfl eval``/``track``/``batch``), at
twice the work; it is meant for detector boxes (a ground-truth box is already the training crop).
And once per ``--crops`` choice: ``upright`` (sdfl's default: a tilted face cut turned by its eyes' roll,
from the detector's eye keypoints and, in a second pass, from the first pass's eyes) and ``axis`` (axis-aligned
crops, ``--no-upright``; rows marked "axis").
"""
from __future__ import annotations

from preamble import AFW, add_engine_arg, setup_logging  # isort: skip  (first: paths, logs, native import order)

import argparse
import sys
from pathlib import Path

import numpy as np


def dlib_predictions(samples, protocol: str) -> tuple[np.ndarray, int]:
    import dlib

    from sdfl_core import crops
    from sdfl_core.baselines import dlib_model_path
    from sdfl_core.datasets import load_image
    from sdfl_core.tracker import iou_matrix

    predictor = dlib.shape_predictor(str(dlib_model_path()))
    detector = dlib.get_frontal_face_detector() if protocol == "detector" else None
    out, missed = [], 0
    for sample in samples:
        image = load_image(sample)
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        x, y, w, h = crops.landmark_box(sample.points)
        rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        if detector is not None:
            dets = list(detector(rgb, 1))
            if dets:
                boxes = np.array([[d.left(), d.top(), d.right(), d.bottom()] for d in dets], np.float32)
                ious = iou_matrix(np.array([[x, y, x + w, y + h]], np.float32), boxes)[0]
                if ious.max() > 0.1:
                    rect = dets[int(np.argmax(ious))]
                else:
                    missed += 1
            else:
                missed += 1
        shape = predictor(rgb, rect)
        out.append([(p.x, p.y) for p in shape.parts()])
    return np.asarray(out, np.float32), missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(AFW))
    parser.add_argument("--format", default="300w")
    parser.add_argument("--weights", action="append", default=[], help="models to compare (default: shipped SDFL and FC twin)")
    parser.add_argument("--protocols", default="gt,detector")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--no-dlib", action="store_true")
    parser.add_argument("--crops-per-face", default="1,5", help="test-time crop counts to score each model with (default 1,5)")
    parser.add_argument("--passes", default="1,2", help="landmark pass counts to score each model with (default 1,2)")
    parser.add_argument("--crops", default="upright", help="crop orientations to score each model with: upright, axis "
                                                          "or both, comma-separated (default upright)")
    add_engine_arg(parser)
    args = parser.parse_args()
    setup_logging()

    from sdfl_core.baselines import dlib_available
    from sdfl_core.datasets import load_samples
    from sdfl_core.evaluate import predict_samples
    from sdfl_core.landmarker import load_landmarker
    from sdfl_core.metrics import summarize
    from sdfl_core.registry import default_weights
    from sdfl_core.schemas import W300

    weights = args.weights or [str(default_weights("sdfl")), str(default_weights("fc"))]
    counts = [int(c) for c in args.crops_per_face.split(",")]
    passes = [int(c) for c in args.passes.split(",")]
    orientations = args.crops.split(",")
    if not orientations or set(orientations) - {"upright", "axis"}:
        parser.error(f"--crops must be upright, axis or both, comma-separated, got {args.crops!r}")
    samples = load_samples(args.data, args.format)
    if args.limit:
        samples = samples[: args.limit]
    use_dlib = not args.no_dlib and dlib_available() and samples[0].points.shape[0] == 68
    engine = load_landmarker(weights[0], engine=args.engine).engine_label
    print(f"{len(samples)} faces from {args.data}, engine {engine}" + ("" if use_dlib else " (dlib baseline not available)"))
    for protocol in args.protocols.split(","):
        rows = []
        for w in weights:
            for count, times, crop in ((c, p, o) for o in orientations for c in counts for p in passes):
                predictor = load_landmarker(w, engine=args.engine, crops_per_face=count, passes=times,
                                            upright=crop == "upright")
                pred, gt, kept, missed, _ = predict_samples(predictor, samples, protocol)
                name = (predictor.info.name or Path(w).stem) + (f" x{count}" if count > 1 else "") + (f" p{times}" if times > 1 else "")
                name += " axis" if crop == "axis" else ""
                rows.append((name, summarize(pred, gt, predictor.info.schema), missed))
        if use_dlib:
            pred, missed = dlib_predictions(samples, protocol)
            gt = np.stack([s.points for s in samples])
            rows.append(("dlib 68", summarize(pred, gt, W300), missed))
        base = rows[-1][1]["nme_io"] if use_dlib else None
        print(f"\nprotocol: {protocol} boxes")
        print(f"{'model':<19} {'faces':>5} {'NME io %':>9} {'NME ip %':>9} {'FR@0.1 %':>9} {'AUC@0.1':>8} {'worst %':>8} "
              f"{'missed':>6} {'NME/dlib':>8}")
        for name, r, missed in rows:
            ratio = f"{r['nme_io'] / base:.2f}" if base else "-"
            print(f"{name:<19} {r['count']:>5} {r['nme_io'] * 100:>9.2f} {r['nme_ip'] * 100:>9.2f} {r['fr_10'] * 100:>9.2f} "
                  f"{r['auc_10']:>8.4f} {r['worst_io'] * 100:>8.1f} {missed:>6} {ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
