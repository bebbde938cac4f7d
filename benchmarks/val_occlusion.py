"""What the validation-split occlusion analyses share (``occlusion_paths``, ``occlusion_faces``, ``refine_gain``):
their command-line arguments, the split and ``sdfl occlusion``'s texture pool, and the occluded crops, drawn
as ``sdfl occlusion`` draws them (same seed, same draws). Import it after ``preamble``."""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

import numpy as np

from sdfl_core import crops
from sdfl_core.checkpoint import load_checkpoint
from sdfl_core.datasets import load_image
from sdfl_core.occluders import case_rng, occlude_random
from sdfl_core.occlusion import OcclusionOptions, texture_pool
from training.config import load_config
from training.data import split_samples


def parser(doc: str, weights_help: str, levels: str) -> argparse.ArgumentParser:
    """The arguments every analysis takes: --config, --weights (repeat), --levels, --limit, --seed."""
    out = argparse.ArgumentParser(description=doc.splitlines()[0])
    out.add_argument("--config", required=True, help="training config whose validation split to use")
    out.add_argument("--weights", action="append", required=True, help=weights_help)
    out.add_argument("--levels", default=levels)
    out.add_argument("--limit", type=int, default=0, help="first N validation faces only (0: all)")
    out.add_argument("--seed", type=int, default=0)
    return out


def validation(args: argparse.Namespace) -> tuple[list, list[int], list]:
    """(the config's validation samples, the levels, sdfl occlusion's texture pool for them)."""
    _, val = split_samples(load_config(args.config))
    if args.limit:
        val = val[: args.limit]
    pool = texture_pool(val, OcclusionOptions().texture_pool, np.random.default_rng([args.seed, 1 << 20]))
    return val, [int(v) for v in args.levels.split(",")], pool


def occluded_crops(val: list, pool: list, levels: list[int], seed: int, crop_scale: float, size: int) -> Iterator:
    """Per face and level: (face index, sample, image, crop affine, level, the occlusion, the occluded crop)."""
    for index, sample in enumerate(val):
        image = load_image(sample)
        textures = [t for i, t in pool if i != index]
        affine = crops.landmark_crop_affine(sample.points, crop_scale, size)
        for level in levels:
            occ = occlude_random(image, sample.points, level, case_rng(seed, index, "random"), textures)
            yield index, sample, image, affine, level, occ, crops.warp(occ.image, affine, size)


def models(paths: list[str], keep: Callable, skipped: str) -> Iterator:
    """(path, eval-mode model, info) for each checkpoint whose model config ``keep`` accepts; a line for the others."""
    for path in paths:
        model, info = load_checkpoint(path)
        if not keep(info.config):
            print(f"{path}: {skipped}, skipped")
            continue
        yield path, model.eval(), info
