"""The occlusion robustness evaluation behind ``sdfl occlusion`` (the occluders are ``sdfl_core.occluders.shapes``).

Every model sees the same occluded pixels of each face (see ``occluders``); rows report NME on the visible
and the covered points, the graph's edge weights into covered points, and for a model with a visibility
output its AUROC against the true cover and what the visibility-weighted tracker makes of the covered points.

A model is anything with ``name``, ``num_points`` and ``predict_face(images, points_gt)``: a
:class:`landmarker.Landmarker`, or a baseline of ``baselines``. Writers are ``occlusion_report``,
figures ``occlusion_plots``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from . import crops
from .datasets import Sample, load_image
from .metrics import failure_rate, nme_io
from .occluders import DEFAULT_LEVELS, available_parts, case_rng, occlude_part, occlude_random
from .schemas import Schema
from .visibility import track_through_occlusion, visibility_auroc

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class OcclusionOptions:
    levels: tuple[int, ...] = DEFAULT_LEVELS
    """Random-occluder coverage levels, percent of the landmark box."""
    parts: bool = False
    """Also run the part occluders (eyes, mouth, left/right half)."""
    seed: int = 0
    texture_pool: int = 8
    """How many other dataset images (downscaled) supply texture fills."""
    example_index: int = 0
    """Which face (index into the kept samples) the example grid shows."""
    example_size: int = 160

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("at least one occlusion level is needed")
        if any(not 0 <= lv <= 100 for lv in self.levels):
            raise ValueError(f"occlusion levels must be percentages in [0, 100], got {list(self.levels)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class Row:
    """One (model, kind, level) result; NMEs are fractions of the inter-ocular distance (NaN when empty)."""

    model: str
    level: int
    kind: str
    count: int
    nme_visible: float
    nme_occluded: float
    nme_all: float
    fr_10: float
    coverage: float
    """Mean achieved coverage of the landmark box, fraction."""
    occluded_count: int
    """Images with at least one occluded point (the ones in the occluded mean)."""
    edge_occluded: float = float("nan")
    """Mean weight of the graph edges from a visible landmark to an occluded neighbour (self-loops left out),
    in the occluded image; NaN for a model without a graph or when no such edge exists."""
    edge_clean: float = float("nan")
    """The same edges' mean weight in the unoccluded image. ``edge_occluded < edge_clean`` means the model
    moves weight away from occluded neighbours; equal means the edge weighting ignores the occlusion."""
    vis_auroc: float = float("nan")
    """AUROC of the model's visibility output against the occluder's true cover (visible = positive), over
    all points of all faces; NaN for a model without the output, or when no point is covered."""
    nme_occluded_tracked: float = float("nan")
    """NME of the occluded points as the visibility-weighted Kalman filter reports them for a still face
    tracked on its clean prediction, then covered for a few frames (``visibility.track_through_occlusion``);
    compare with ``nme_occluded``, the single frame's. NaN without a visibility output."""


@dataclass(frozen=True, eq=False)
class OcclusionReport:
    rows: tuple[Row, ...]
    examples: dict
    """'crops': {level: display crop}, 'points': {model: {level: (N, 2) display-crop points}}, 'visible': {level: (N,)}."""


def texture_pool(samples: Sequence[Sample], count: int, rng: np.random.Generator, side: int = 256) -> list[tuple[int, np.ndarray]]:
    pool = []
    for i in rng.permutation(len(samples))[:count]:
        try:
            img = load_image(samples[int(i)])
        except (ValueError, FileNotFoundError):
            continue
        scale = side / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        pool.append((int(i), img))
    return pool


def visible_to_occluded_edges(mask: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N, N) bool: the edges i -> j of ``mask`` with i visible and j occluded, self-loops left out."""
    mask = np.asarray(mask, bool)
    visible = np.asarray(visible, bool)
    return mask & ~np.eye(len(visible), dtype=bool) & visible[:, None] & ~visible[None, :]


def _summarize(model: str, kind: str, level: int, pred, gt, visible, coverage, schema: Schema,
               edges: tuple[list, list] = ((), ()), scores: Sequence[np.ndarray] = (),
               tracked: Sequence[np.ndarray] = ()) -> Row:
    occluded_w = np.concatenate([np.ravel(v) for v in edges[0]] or [np.zeros(0)])
    clean_w = np.concatenate([np.ravel(v) for v in edges[1]] or [np.zeros(0)])
    pred, gt, visible = np.stack(pred), np.stack(gt), np.stack(visible)
    all_ = nme_io(pred, gt, schema)
    vis = nme_io(pred, gt, schema, point_mask=visible)
    occ = nme_io(pred, gt, schema, point_mask=~visible)
    has_occ = np.isfinite(occ)
    tracked_occ = nme_io(np.stack(tracked), gt, schema, point_mask=~visible) if len(tracked) else np.full(len(gt), np.nan)
    return Row(
        model=model, level=int(level), kind=kind, count=int(len(all_)),
        nme_visible=float(np.nanmean(vis)) if np.isfinite(vis).any() else float("nan"),
        nme_occluded=float(occ[has_occ].mean()) if has_occ.any() else float("nan"),
        nme_all=float(all_.mean()), fr_10=failure_rate(all_, 0.1),
        coverage=float(np.mean(coverage)), occluded_count=int(has_occ.sum()),
        edge_occluded=float(occluded_w.mean()) if occluded_w.size else float("nan"),
        edge_clean=float(clean_w.mean()) if clean_w.size else float("nan"),
        vis_auroc=visibility_auroc(scores, visible) if len(scores) else float("nan"),
        nme_occluded_tracked=float(tracked_occ[has_occ].mean()) if has_occ.any() and len(tracked) else float("nan"),
    )


def evaluate_occlusion(models: Sequence, samples: Sequence[Sample], schema: Schema,
                       options: OcclusionOptions = OcclusionOptions(), progress=None) -> OcclusionReport:
    """Run every model on every face under every occlusion; one :class:`Row` per model, kind and level.

    Each face's occluded images are made once and given to all models. Unreadable images are skipped
    with a warning. ``progress`` (e.g. a tqdm bar) gets ``update(1)`` per face.
    """
    if not models:
        raise ValueError("no models to evaluate")
    if not samples:
        raise ValueError("no samples to evaluate")
    n = samples[0].num_points
    if schema.num_points != n:
        raise ValueError(f"schema {schema.name} has {schema.num_points} points but the data has {n}")
    for m in models:
        if m.num_points != n:
            raise ValueError(f"model {m.name} predicts {m.num_points} points but the data has {n} points per face")
    kinds: list[tuple[str, int | None]] = [("random", int(lv)) for lv in options.levels]
    if options.parts:
        kinds += [(p, None) for p in available_parts(schema)]
    pool = texture_pool(samples, options.texture_pool, np.random.default_rng([options.seed, 1 << 20]))
    results: dict[tuple[str, str, int | None], dict[str, list]] = {}
    examples: dict = {"crops": {}, "points": {m.name: {} for m in models}, "visible": {}}
    kept = 0
    for index, sample in enumerate(samples):
        try:
            image = load_image(sample)
        except (ValueError, FileNotFoundError) as exc:
            log.warning("skipping %s", exc)
            if progress is not None:
                progress.update(1)
            continue
        textures = [img for i, img in pool if i != index]
        box = crops.landmark_box(sample.points)
        scale = float(np.sqrt(box[2] * box[3]))  # the face size the tracker's noise is measured in
        occlusions = []
        for kind, level in kinds:
            rng = case_rng(options.seed, index, kind)
            if kind == "random":
                occlusions.append(occlude_random(image, sample.points, level, rng, textures))
            else:
                occlusions.append(occlude_part(image, sample.points, kind, schema, rng, textures))
        is_example = kept == options.example_index
        if is_example:
            size = options.example_size
            affine = crops.landmark_crop_affine(sample.points, 1.3, size)
        for m in models:
            # The clean image goes last in the batch: its edge weights are the reference for each occlusion's.
            pred, weights, visibility = m.predict_face([o.image for o in occlusions] + [image], sample.points)
            clean_edges = weights[-1] > 0 if weights.shape[-1] else None  # None: a model without a graph
            for i, ((kind, level), o, p) in enumerate(zip(kinds, occlusions, pred)):
                bucket = results.setdefault((m.name, kind, level), {"pred": [], "gt": [], "visible": [], "coverage": [],
                                                                    "edges": ([], []), "scores": [], "tracked": []})
                bucket["pred"].append(p)
                if visibility.shape[-1]:
                    bucket["scores"].append(visibility[i])
                    # Only faces with a covered point count in the occluded NME; the others keep their frame.
                    bucket["tracked"].append(track_through_occlusion(pred[-1], visibility[-1], p, visibility[i], scale)
                                             if not o.visible.all() else p)
                bucket["gt"].append(sample.points)
                bucket["visible"].append(o.visible)
                bucket["coverage"].append(o.coverage)
                if clean_edges is not None:
                    sel = visible_to_occluded_edges(clean_edges, o.visible)
                    bucket["edges"][0].append(weights[i][sel])
                    bucket["edges"][1].append(weights[-1][sel])
                if is_example and kind == "random":
                    examples["points"][m.name][level] = crops.transform_points(p, affine)
        if is_example:
            for (kind, level), o in zip(kinds, occlusions):
                if kind == "random":
                    examples["crops"][level] = crops.warp(o.image, affine, size)
                    examples["visible"][level] = o.visible
        kept += 1
        if progress is not None:
            progress.update(1)
    if not kept:
        raise ValueError("none of the images could be read")
    rows = []
    for m in models:
        for kind, level in kinds:
            b = results[(m.name, kind, level)]
            shown_level = level if level is not None else int(round(100 * float(np.mean(b["coverage"]))))
            rows.append(_summarize(m.name, kind, shown_level, b["pred"], b["gt"], b["visible"], b["coverage"], schema,
                                   b["edges"], b["scores"], b["tracked"]))
    return OcclusionReport(tuple(rows), examples)
