"""Where one model's lead over another under occlusion comes from: every face, or a few of them; which parts.

    python benchmarks/occlusion_faces.py --config training/configs/sdfl_68_helen5_shapes.yaml \\
        --weights runs/sdfl_68_helen7_ctx32_occ/best.pt --weights runs/fc_68_helen7_ctx32_occ/best.pt

Runs two models on the config's validation split with the random occluders of ``sdfl occlusion`` (same seed,
same draws; one ground-truth crop per face, eager torch). Per level it prints, for the visible points (% of the
inter-ocular distance): each model's mean and median face, the mean and median per-face difference A - B, the share
of faces where A is worse, what the 10 faces with the largest A - B add to the mean difference, both means over the
faces whose occluder was filled with a texture (a patch of another image of the split, so often part of another
face) and over those filled with a plain colour, and each part's mean point error (the schema's drawing groups). An analysis, not a test.
"""
from __future__ import annotations

from preamble import setup_logging  # isort: skip  (first: paths, logs, native import order)


import numpy as np
import torch
import val_occlusion

from sdfl_core import crops
from sdfl_core.metrics import nme_io
from sdfl_core.occluders import case_rng, occlude_random
from sdfl_core.preprocess import to_input
from sdfl_core.schemas import get_schema
from training.validate import weights_name

TOP = 10


def point_errors(model, info, val: list, levels: list[int], seed: int, pool: list
                 ) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per level: (faces, points) errors as a fraction of the inter-ocular distance, the visible mask, and per face
    whether the occluder was filled with a texture (a patch of another image of the split) or a plain colour."""
    size, schema = info.config.input_size, get_schema("300w")
    out: dict[int, tuple[list, list, list]] = {level: ([], [], []) for level in levels}
    for index, sample, image, affine, level, occ, crop in val_occlusion.occluded_crops(
            val, pool, levels, seed, info.crop_scale, size):
        with torch.inference_mode():
            coords = model(torch.from_numpy(to_input(crop[None], info.norm_mean, info.norm_std)))[0]
        pred = crops.units_to_image(coords.numpy(), affine, size)[0]
        ocular = np.linalg.norm(sample.points[schema.ocular[0]] - sample.points[schema.ocular[1]])
        out[level][0].append(np.linalg.norm(pred - sample.points, axis=1) / ocular)
        out[level][1].append(occ.visible)
        # The same draw without textures paints the same shape in its colour: a texture fill differs from it.
        plain = occlude_random(image, sample.points, level, case_rng(seed, index, "random"), ())
        out[level][2].append(not np.array_equal(occ.image, plain.image))
        # The per-point errors agree with the project's metric (the mean over visible points is nme_io).
        assert np.isclose(out[level][0][-1][occ.visible].mean(),
                          nme_io(pred[None], sample.points[None], schema, point_mask=occ.visible[None])[0])
    return {level: (np.stack(e), np.stack(v), np.array(t)) for level, (e, v, t) in out.items()}


def main() -> int:
    parser = val_occlusion.parser(__doc__, "model A, then model B", "0,30,50")
    args = parser.parse_args()
    setup_logging()
    if len(args.weights) != 2:
        parser.error("give two models: --weights A --weights B")
    val, levels, pool = val_occlusion.validation(args)
    names = [weights_name(w) for w in args.weights]
    a, b = (point_errors(model, info, val, levels, args.seed, pool)
            for _, model, info in val_occlusion.models(args.weights, lambda config: True, ""))
    groups = get_schema("300w").groups
    print(f"A = {names[0]}, B = {names[1]}: visible points, % of the inter-ocular distance, {len(val)} validation "
          f"faces of {args.config}")
    for level in levels:
        (ea, visible, textured), (eb, _, _) = a[level], b[level]
        keep = visible.any(axis=1)
        textured = textured[keep]
        fa = np.array([e[v].mean() for e, v in zip(ea[keep], visible[keep])]) * 100
        fb = np.array([e[v].mean() for e, v in zip(eb[keep], visible[keep])]) * 100
        diff = fa - fb
        top = np.sort(diff)[-TOP:].sum() / len(diff)
        print(f"\nlevel {level} %: mean A {fa.mean():.2f} B {fb.mean():.2f}; median face A {np.median(fa):.2f} "
              f"B {np.median(fb):.2f}; mean A - B {diff.mean():+.3f}, median {np.median(diff):+.3f}; A worse on "
              f"{(diff > 0).mean():.0%} of faces; the {TOP} faces with the largest A - B add {top:+.3f} to the mean")
        for name, faces in (("texture", textured), ("colour", ~textured)):
            if level and faces.any():  # level 0 draws no occluder
                print(f"  {name} fills, {faces.sum()} faces: A {fa[faces].mean():.2f} B {fb[faces].mean():.2f} "
                      f"A - B {diff[faces].mean():+.3f}")
        for name, points in groups.items():
            mask = visible[:, list(points)]
            if mask.any():
                pa, pb = (100 * e[:, list(points)][mask].mean() for e in (ea, eb))
                print(f"  {name:<12} {mask.sum():>6} visible points: A {pa:.2f} B {pb:.2f} A - B {pa - pb:+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
