"""Occlusion robustness on a training config's validation split, for choosing between models.

``sdfl occlusion`` on the dev test set is the evidence; choices (a loss weight, one run or another) are
made here, on faces the models validated on but never trained on, so the dev test stays unseen:

    python -m training.occlusion_val --config training/configs/sdfl_68_s3.yaml \\
        --weights runs/sdfl_68_s3/best.pt --weights runs/sdfl_68_s3_edge/best.pt --out runs/occlusion_val
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from tqdm import tqdm

from sdfl_core.cli.occlusion import format_table, parse_levels, unique_names
from sdfl_core.crops import CROPS_PER_FACE
from sdfl_core.landmarker import load_landmarker
from sdfl_core.occlusion import OcclusionOptions, evaluate_occlusion
from sdfl_core.occlusion_report import report_json, write_csv
from sdfl_core.schemas import get_schema

from .config import load_config
from .data import split_samples
from .validate import add_engine_arg, weights_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the training config whose validation split to use")
    parser.add_argument("--weights", action="append", required=True, help="a model to compare (repeat)")
    parser.add_argument("--out", required=True, type=Path, help="folder for occlusion.csv and occlusion.json")
    parser.add_argument("--levels", default="0,10,20,30,40,50")
    parser.add_argument("--parts", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crops-per-face", type=int, default=1, choices=CROPS_PER_FACE,
                        help="test-time crops per face, averaged, as sdfl occlusion's option (default 1: one crop)")
    add_engine_arg(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    _, val = split_samples(config)
    schema = get_schema(config["data"]["schema"])
    names = unique_names([weights_name(w) for w in args.weights])
    models = [load_landmarker(w, device="cpu", engine=args.engine, name=n, crops_per_face=args.crops_per_face)
              for w, n in zip(args.weights, names)]
    options = OcclusionOptions(levels=parse_levels(args.levels), parts=args.parts, seed=args.seed)
    with tqdm(total=len(val), unit="face", desc="occlusion (val)", dynamic_ncols=True) as bar:
        report = evaluate_occlusion(models, val, schema, options, progress=bar)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "occlusion.csv", report.rows)
    (args.out / "occlusion.json").write_text(json.dumps(report_json(report.rows), indent=2), encoding="utf-8")
    print(format_table(report.rows))
    print(f"{report.rows[0].count} validation faces of {args.config} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
