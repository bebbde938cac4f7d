"""`sdfl eval`: NME / FR / AUC of a model on a labelled dataset -> report JSON (and a CED plot)."""
from __future__ import annotations

import json
from pathlib import Path

from ..crops import default_crops_per_face, default_passes
from ..datasets import load_samples
from ..evaluate import evaluate, plot_ced
from ..extras import require
from ..landmarker import load_landmarker
from ..registry import resolve_weights


def run(args) -> int:
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        raise FileNotFoundError(f"output folder does not exist: {out.parent}")
    if args.plot:
        require("matplotlib", "--plot")
    weights = resolve_weights(args.weights)
    # Detector boxes are how photos are cropped, so they get the passes and crops photos get; ground-truth
    # boxes already are the training crop, and the standard protocol scores the model alone.
    mode = "image" if args.boxes == "detector" else "video"
    passes = args.passes or default_passes(mode)
    crops_per_face = args.crops_per_face or default_crops_per_face(mode)
    landmarker = load_landmarker(weights, device=args.device, engine=args.engine, crops_per_face=crops_per_face, passes=passes,
                                 mirror=args.mirror, upright=args.upright)
    samples = load_samples(args.data, args.format)
    report, errors = evaluate(landmarker, samples, args.boxes, args.batch_size)
    report = {**report, "model": str(weights), "data": str(args.data), "format": args.format, "boxes": args.boxes,
              "engine": landmarker.engine, "crops_per_face": crops_per_face, "passes": passes,
              "mirror": args.mirror, "upright": args.upright}
    out.write_text(json.dumps(report, indent=2))
    if args.plot:
        plot_ced(args.plot, {landmarker.info.name or Path(weights).stem: errors})
    print(f"{report['count']} faces: NME(io) {report['nme_io'] * 100:.2f}%  NME(ip) {report['nme_ip'] * 100:.2f}%  "
          f"FR@0.1 {report['fr_10'] * 100:.2f}%  AUC@0.1 {report['auc_10']:.4f}  worst face {report['worst_io'] * 100:.1f}%  -> {out}")
    return 0
