"""How much each model's refinement stage gains on the visible points, clean and under occlusion.

    python benchmarks/refine_gain.py --config training/configs/sdfl_68_helen5_shapes.yaml \\
        --weights runs/sdfl_68_helen7_ctx32_occ/best.pt --weights runs/fc_68_helen7_ctx32_occ/best.pt

Runs on the config's validation split (``training.train.split_samples``), with the random occluders of
``sdfl occlusion`` (same seed, same draws; one ground-truth crop per face, eager torch). For each level it prints
the visible-point NME (% of the inter-ocular distance) of the first stage's points and of the refined points
(``forward_train``), and the refinement's gain. An analysis, not a test.
"""
from __future__ import annotations

from preamble import setup_logging  # isort: skip  (first: paths, logs, native import order)


import numpy as np
import torch
import val_occlusion

from sdfl_core import crops
from sdfl_core.metrics import nme_io
from sdfl_core.preprocess import to_input
from sdfl_core.schemas import get_schema
from training.validate import weights_name


def main() -> int:
    args = val_occlusion.parser(__doc__, "a checkpoint with model.refine (repeat)", "0,30,50").parse_args()
    setup_logging()
    val, levels, pool = val_occlusion.validation(args)
    schema = get_schema("300w")
    for weights, model, info in val_occlusion.models(args.weights, lambda config: config.refine, "no refinement stage"):
        size = info.config.input_size
        errors: dict[tuple[int, str], list[float]] = {}
        for _, sample, _, affine, level, occ, crop in val_occlusion.occluded_crops(
                val, pool, levels, args.seed, info.crop_scale, size):
            with torch.inference_mode():
                refined, _, _, first = model.forward_train(
                    torch.from_numpy(to_input(crop[None], info.norm_mean, info.norm_std)), with_visibility=False)
            for name, coords in (("first", first), ("refined", refined)):
                pred = crops.units_to_image(coords.numpy(), affine, size)
                err = nme_io(pred, sample.points[None], schema, point_mask=occ.visible[None])[0]
                errors.setdefault((level, name), []).append(float(err))
        print(f"\n{weights_name(weights)} ({info.config.head} head): visible-point NME %, {len(val)} validation faces of {args.config}")
        print(f"{'level':>5}  {'first stage':>11}  {'refined':>7}  {'gain':>5}")
        for level in levels:
            first, refined = (100 * float(np.mean(errors[(level, n)])) for n in ("first", "refined"))
            print(f"{level:>5}  {first:>11.2f}  {refined:>7.2f}  {first - refined:>5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
