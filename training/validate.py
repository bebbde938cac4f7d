"""Accuracy on a training config's validation split, for choosing between recipes and runs: the per-epoch
validation of training (on its crops) and the table that scores finished models.

The dev test set (AFW) stays unseen: every choice of the recipe is made with this table.

    python -m training.validate --config training/configs/sdfl_68.yaml --weights runs/sdfl_68/best.pt \\
        --weights runs/fc_68/best.pt [--out runs/validation.json]
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from sdfl_core.crops import CROPS_PER_FACE, PASSES
from sdfl_core.evaluate import evaluate
from sdfl_core.landmarker import ENGINES, load_landmarker
from sdfl_core.metrics import auroc, nme_io
from sdfl_core.model import SDFLModel
from sdfl_core.schemas import get_schema

from .config import load_config
from .data import split_samples, val_sources

SOURCE = "source:"
"""Attribute-name prefix that marks a validation face's data entry for ``--by-source``."""


def weights_name(path: str | Path) -> str:
    """A model's name in reports: the run's folder for a run's ``best.pt`` / ``last.pt``, else the file's stem."""
    path = Path(path)
    return path.parent.name if path.stem in ("best", "last") else path.stem


@torch.no_grad()
def validate_errors(model: SDFLModel, loader: DataLoader, schema, device) -> np.ndarray:
    """Per-face inter-ocular NME on un-augmented crops (NME is scale-free, so crop units suffice)."""
    model.eval()
    errors = []
    for x, y, _ in loader:
        pred = model(x.to(device).contiguous(memory_format=torch.channels_last))[0]
        errors.append(nme_io(pred.float().cpu().numpy(), y.numpy(), schema))
    model.train()
    return np.concatenate(errors)


@torch.no_grad()
def validate_visibility(model: SDFLModel, loader: DataLoader, device) -> float:
    """AUROC of the visibility output against the occluder cover of the validation crops."""
    model.eval()
    scores, labels = [], []
    for x, _, occluded in loader:
        vis = model.forward_with_visibility(x.to(device).contiguous(memory_format=torch.channels_last))[2]
        scores.append(torch.sigmoid(vis.float()).cpu().numpy().ravel())
        labels.append(1 - occluded.numpy().ravel())
    return auroc(np.concatenate(scores), np.concatenate(labels))


def add_engine_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="onnxruntime", choices=[name for name in ENGINES if name != "torch"],
                        help="the runtime to score on (default onnxruntime, float32, as every figure in the README; "
                             "openvino: bfloat16 where the CPU has it; auto: as sdfl's --engine)")


def validation_table(config_path: str | Path, weights: list[str | Path], by_source: bool = False,
                     crops_per_face: int = 1, boxes: str = "gt", passes: int = 1, mirror: bool = False,
                     engine: str = "onnxruntime") -> dict[str, dict]:
    """{model: evaluate()'s report (nme_io, fr_10, auc_10, ...)} on the config's validation faces, cropped
    from their ground-truth landmark boxes (the standard protocol), or with ``boxes='detector'`` from
    MediaPipe's boxes through each model's calibration; ``passes``: landmark passes per face; ``mirror``: each crop
    also seen mirrored (``Landmarker.mirror``); ``engine``: the runtime (``landmarker.ENGINES``; ONNX Runtime by default,
    so that figures stay comparable across machines and installs). ``by_source`` adds ``sources``: count, NME,
    FR and AUC of the faces of each data entry (hand-labelled 300-W and machine-labelled YouTube-Faces),
    from the same predictions."""
    config = load_config(config_path)
    _, val = split_samples(config)
    names: list[str] = []
    if by_source:
        # Each face's entry as an attribute, so one pass of the model reports every entry (evaluate's subsets).
        names, owner = val_sources(val, config["data"], get_schema(config["data"]["schema"]).num_points)
        val = [replace(s, attributes={**s.attributes, SOURCE + names[o]: 1}) for s, o in zip(val, owner)]
    reports = {}
    for path in weights:
        path = Path(path)
        name = weights_name(path)
        if name in reports:
            name = str(path)
        landmarker = load_landmarker(path, device="cpu", engine=engine, crops_per_face=crops_per_face, passes=passes,
                                     mirror=mirror)
        report, _ = evaluate(landmarker, val, boxes)
        if by_source:
            subsets = report.pop("subsets", {})
            report["sources"] = {source: subsets.pop(SOURCE + source) for source in dict.fromkeys(names) if SOURCE + source in subsets}
            if subsets:  # the data's own attributes
                report["subsets"] = subsets
        reports[name] = report
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the training config whose validation split to use")
    parser.add_argument("--weights", action="append", required=True, help="a model to score (repeat)")
    parser.add_argument("--out", type=Path, help="also write the reports as JSON here")
    parser.add_argument("--by-source", action="store_true", help="also a row per data entry (e.g. Helen / YouTube-Faces)")
    parser.add_argument("--crops-per-face", type=int, default=1, choices=CROPS_PER_FACE,
                        help="test-time crops per face, averaged (default 1: one crop)")
    parser.add_argument("--boxes", default="gt", choices=("gt", "detector"),
                        help="crop from the ground-truth landmark boxes (default, the standard protocol) or MediaPipe's")
    parser.add_argument("--passes", type=int, default=1, choices=PASSES,
                        help="landmark passes per face: each after the first crops from the landmarks before (default 1)")
    parser.add_argument("--mirror", action="store_true",
                        help="also run each crop's mirror image and average (twice the work)")
    add_engine_arg(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    reports = validation_table(args.config, args.weights, args.by_source, args.crops_per_face, args.boxes, args.passes,
                               args.mirror, args.engine)
    print("| model | faces | val faces | NME io % | FR@0.1 % | AUC@0.1 | worst face % |")
    print("|---|---|---|---|---|---|---|")
    for name, r in reports.items():
        for part, row in [("all", r), *r.get("sources", {}).items()]:
            print(f"| {name} | {part} | {row['count']} | {row['nme_io'] * 100:.2f} | {row['fr_10'] * 100:.2f} | "
                  f"{row['auc_10']:.4f} | {row['worst_io'] * 100:.1f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
