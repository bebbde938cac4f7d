"""Turn a run's best checkpoint into a shipped model: detector calibration, dev-test metrics, ONNX.

    python -m training.ship --run runs/sdfl_68 --out assets/models/sdfl_68.pt
"""
from __future__ import annotations

import argparse
import json
import logging
import random
from dataclasses import replace
from pathlib import Path

import yaml

from sdfl_core.checkpoint import load_checkpoint, save_checkpoint
from sdfl_core.evaluate import evaluate, plot_ced
from sdfl_core.onnx_export import compare, export_onnx
from sdfl_core.predictor import OnnxPredictor

from .calibrate import calibrate_detector_box
from .train import gather

log = logging.getLogger(__name__)


def ship(run_dir: Path, out: Path, calibration_faces: int = 400) -> dict:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    model, info = load_checkpoint(run_dir / "best.pt")
    # Calibrate on training images only (300W-style folders: their faces are framed like a webcam's).
    train = [s for entry in config["data"]["train"] if entry.get("format") == "300w" for s in gather([entry])]
    random.Random(0).shuffle(train)
    boxes = {name: calibrate_detector_box(train[:calibration_faces], name) for name in ("short", "full")}
    info = replace(info, detector_box={k: {key: v[key] for key in ("dx", "dy", "scale")} for k, v in boxes.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model, info, half=True)
    # Evaluate what users get: the half-precision weights, through the ONNX Runtime engine.
    model, info = load_checkpoint(out)
    onnx_path = export_onnx(model, info, out.with_suffix(".onnx"))
    diff = compare(model, onnx_path)
    predictor = OnnxPredictor(onnx_path)
    metrics = {"calibration": boxes, "onnx_max_abs_diff": diff}
    curves = {}
    for entry in config["data"]["test"]:
        samples = gather([entry])
        for protocol in ("gt", "detector"):
            report, errors = evaluate(predictor, samples, protocol)
            metrics[f"{Path(entry['path']).name}/{protocol}"] = report
            if protocol == "gt":
                curves[f"{info.name} on {Path(entry['path']).name}"] = errors
    metrics["val_nme_io"] = info.metrics.get("val_nme_io")
    metrics["epoch"] = info.metrics.get("epoch")
    # The checkpoint carries its own metrics; the ONNX file is re-exported so both stay in step.
    info = replace(info, metrics={**info.metrics, "dev_test": {k: v for k, v in metrics.items() if "/" in k}})
    save_checkpoint(out, model, info, half=True)
    export_onnx(model, info, onnx_path)
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2))
    if curves:
        plot_ced(out.with_name(out.stem + "_ced.png"), curves)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    metrics = ship(args.run, args.out)
    print(json.dumps({k: v for k, v in metrics.items() if k != "calibration"}, indent=2))


if __name__ == "__main__":
    main()
