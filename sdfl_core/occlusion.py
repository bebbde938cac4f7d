"""The occlusion robustness evaluation behind ``sdfl occlusion`` (the occluders are ``sdfl_core.occluders``).

Every model sees the same occluded pixels of each face (see ``occluders``); rows report NME on the visible
and the covered points, the graph's edge weights into covered points, and for a model with a visibility
output its AUROC against the true cover and what the visibility-weighted tracker makes of the covered points.

The dlib baseline (:class:`DlibModel`) is given a ``dlib.rectangle`` of the same ground-truth landmark box.
dlib's 68-point model was trained on boxes from its HOG face detector, which are roughly but not exactly
the landmark box, so its numbers here are slightly pessimistic compared with running it on its own boxes.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

from . import crops
from .datasets import Sample, load_image
from .metrics import failure_rate, nme_io
from .occluders import (  # noqa: F401  (re-exported: callers import the occluders from here too)
    DEFAULT_LEVELS,
    PARTS,
    SHAPES,
    Occlusion,
    available_parts,
    box_coverage,
    box_region,
    case_rng,
    occlude_part,
    occlude_random,
    part_groups,
    part_points,
    point_visibility,
)
from .schemas import Schema
from .visibility import track_through_occlusion, visibility_auroc

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ models


class Landmarker(Protocol):
    name: str
    num_points: int

    def predict(self, images: Sequence[np.ndarray], points_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, N, 2) image-pixel points for B images of one face, located by its ground-truth points, the
        (B, N, N) edge weights the model used ((B, N, 0) for a model without a graph) and the (B, N)
        probability that each point is visible ((B, 0) for a model without that output)."""


class PredictorModel:
    """An sdfl predictor (``predictor.load_predictor``) cropped the standard way from the gt box."""

    def __init__(self, predictor, name: str) -> None:
        self.predictor = predictor
        self.name = name
        self.num_points = int(predictor.info.config.num_points)

    def predict(self, images: Sequence[np.ndarray], points_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        info = self.predictor.info
        size = int(info.config.input_size)
        affine = crops.landmark_crop_affine(points_gt, info.crop_scale, size)
        batch = np.stack([crops.warp(img, affine, size) for img in images])
        units, weights, visibility = self.predictor.predict(batch)
        return crops.units_to_image(units, affine, size), np.asarray(weights), np.asarray(visibility)


def dlib_model_path() -> Path | None:
    """face_recognition_models' 68-point file, found without importing the package (it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return path
    return None


def dlib_available() -> bool:
    return importlib.util.find_spec("dlib") is not None and dlib_model_path() is not None


class DlibModel:
    """dlib's 68-point shape predictor, given the ground-truth landmark box (see the module docstring)."""

    name = "dlib"
    num_points = 68

    def __init__(self, model_path: str | Path | None = None) -> None:
        import dlib

        path = Path(model_path) if model_path else dlib_model_path()
        if path is None or not path.is_file():
            raise FileNotFoundError(f"dlib 68-point model not found: {path or 'face_recognition_models is not installed'}")
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(path))

    def predict(self, images: Sequence[np.ndarray], points_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y, w, h = crops.landmark_box(points_gt)
        rect = self._dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        out = []
        for img in images:
            rgb = np.ascontiguousarray(img[:, :, ::-1])
            shape = self._predictor(rgb, rect)
            out.append([(p.x, p.y) for p in shape.parts()])
        return (np.asarray(out, np.float32), np.zeros((len(out), self.num_points, 0), np.float32),
                np.zeros((len(out), 0), np.float32))


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


def evaluate_occlusion(models: Sequence[Landmarker], samples: Sequence[Sample], schema: Schema,
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
            pred, weights, visibility = m.predict([o.image for o in occlusions] + [image], sample.points)
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


# ------------------------------------------------------------------------------------------ outputs

CSV_COLUMNS = ("model", "level", "kind", "count", "nme_visible", "nme_occluded", "nme_all", "fr_10",
               "edge_occluded", "edge_clean", "vis_auroc", "nme_occluded_tracked")


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def write_csv(path: str | Path, rows: Sequence[Row]) -> None:
    """One line per row; NMEs and FR as fractions, an empty cell where there is nothing to average."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow([r.model, r.level, r.kind, r.count]
                            + ["" if not np.isfinite(v) else f"{v:.6f}"
                               for v in (r.nme_visible, r.nme_occluded, r.nme_all, r.fr_10, r.edge_occluded, r.edge_clean,
                                         r.vis_auroc, r.nme_occluded_tracked)])


def report_json(rows: Sequence[Row]) -> dict:
    """{model: [{level, count, nme_visible, nme_occluded, nme_all, fr_10, edge_occluded, edge_clean,
    vis_auroc, nme_occluded_tracked}, ...]} for the random occluders.

    Values are fractions; a value with nothing to average (no occluded point at level 0, edge weights of
    a model without a graph, visibility of a model without that output or of dlib) is null.
    """
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r.kind != "random":
            continue
        out.setdefault(r.model, []).append({
            "level": int(r.level), "count": r.count,
            "nme_visible": _finite_or_none(r.nme_visible), "nme_occluded": _finite_or_none(r.nme_occluded),
            "nme_all": _finite_or_none(r.nme_all), "fr_10": r.fr_10,
            "edge_occluded": _finite_or_none(r.edge_occluded), "edge_clean": _finite_or_none(r.edge_clean),
            "vis_auroc": _finite_or_none(r.vis_auroc), "nme_occluded_tracked": _finite_or_none(r.nme_occluded_tracked),
        })
    return out


def plot_curves(path: str | Path, rows: Sequence[Row]) -> None:
    """NME (%) vs occluded %: one colour per model, visible points solid, occluded points dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.5))
    models = list(dict.fromkeys(r.model for r in rows))
    for i, model in enumerate(models):
        sel = sorted((r for r in rows if r.model == model and r.kind == "random"), key=lambda r: r.level)
        color = f"C{i}"
        levels = [r.level for r in sel]
        ax.plot(levels, [100 * r.nme_visible for r in sel], "-o", color=color, label=f"{model} visible")
        occ = [(r.level, 100 * r.nme_occluded) for r in sel if np.isfinite(r.nme_occluded)]
        if occ:
            ax.plot(*zip(*occ), "--s", color=color, label=f"{model} occluded")
    ax.set_xlabel("occluded area of the face box (%)")
    ax.set_ylabel("NME (% of inter-ocular distance)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_examples(path: str | Path, examples: dict) -> None:
    """Fig. 2 style grid: rows = levels, columns = models, one face; predicted points green where the
    ground-truth point is visible and red where it is occluded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .draw import draw_landmarks

    levels = sorted(examples["crops"])
    models = list(examples["points"])
    if not levels or not models:
        raise ValueError("no example face to draw")
    fig, axes = plt.subplots(len(levels), len(models), figsize=(2.2 * len(models), 2.2 * len(levels)), squeeze=False)
    for r, level in enumerate(levels):
        visible = examples["visible"][level]
        for c, model in enumerate(models):
            img = np.ascontiguousarray(examples["crops"][level].copy())
            pts = examples["points"][model][level]
            draw_landmarks(img, pts[visible], color=(0, 255, 0), radius=1)
            draw_landmarks(img, pts[~visible], color=(0, 0, 255), radius=1)
            ax = axes[r, c]
            ax.imshow(img[:, :, ::-1])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(model, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{level}%", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
