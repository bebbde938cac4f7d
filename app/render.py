"""Turns a ``FrameBundle`` into the picture the window shows (and records): sdfl_core.draw does the drawing."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from sdfl_core.draw import (
    DrawOptions,
    annotate,
    draw_box,
    draw_graph,
    draw_landmarks,
    draw_visibility_check,
    track_color,
)

from .messages import FrameBundle, Inspection, ModelSummary

DROPPED_EDGE_COLOR = (40, 40, 255)
CLEAN_COLOR = (255, 255, 255)
SHIFT_COLOR = (0, 220, 255)


@dataclass(frozen=True)
class ViewOptions:
    draw: DrawOptions = field(default_factory=lambda: DrawOptions(graph=False))
    compare: bool = False
    """Show the comparison model beside the main one (needs compare results in the bundle)."""


def _label(img: np.ndarray, text: str, color=(255, 255, 255)) -> None:
    """A caption on a dark strip at the top-left corner."""
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
    overlay = img[0:th + 14, 0:tw + 16]
    overlay[:] = (overlay * 0.35).astype(np.uint8)
    cv2.putText(img, text, (8, th + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 1, cv2.LINE_AA)


def _draw_inspection(img: np.ndarray, inspection: Inspection, model: ModelSummary, opts: DrawOptions) -> str:
    """Clean points (white), occluded prediction, displacement segments and weakened edges (red); for a
    model with visibility, its verdict per point against the occluders' true cover."""
    lines = []
    for k, det in enumerate(inspection.detections):
        clean, occluded = inspection.clean[k], inspection.occluded[k]
        if opts.graph or opts.weights:
            weights = occluded.edge_weights if opts.weights and occluded.edge_weights.shape[1] else None
            draw_graph(img, occluded.points, model.mask, weights)
        for i, j in inspection.dropped_edges[k]:
            p, q = occluded.points[i], occluded.points[j]
            cv2.line(img, (int(round(p[0])), int(round(p[1]))), (int(round(q[0])), int(round(q[1]))),
                     DROPPED_EDGE_COLOR, 2, cv2.LINE_AA)
        if opts.boxes:
            draw_box(img, det, None, color=track_color(k), label=False)
        for p, q in zip(clean.points, occluded.points):
            cv2.line(img, (int(round(p[0])), int(round(p[1]))), (int(round(q[0])), int(round(q[1]))),
                     SHIFT_COLOR, 1, cv2.LINE_AA)
        draw_landmarks(img, clean.points, color=CLEAN_COLOR, radius=1)
        said_covered = occluded.occluded(opts.visibility_threshold)
        draw_landmarks(img, occluded.points, model.schema if opts.landmarks else None, indices=opts.indices,
                       hollow=said_covered)
        shift = inspection.displacement[k]
        size = float(np.sqrt(det.box[2] * det.box[3]))
        line = (f"face {k}: mean shift {shift.mean():.1f}px ({100 * shift.mean() / size:.1f}% of box), "
                f"max {shift.max():.1f}px, {len(inspection.dropped_edges[k])} weaker edges")
        if occluded.has_visibility:
            covered = inspection.covered[k]
            draw_visibility_check(img, occluded.points, occluded.visibility, covered, opts.visibility_threshold)
            line += (f"; covered points judged covered {int((said_covered & covered).sum())}/{int(covered.sum())}, "
                     f"visible judged covered {int((said_covered & ~covered).sum())}/{int((~covered).sum())}")
        lines.append(line)
    return "; ".join(lines)


def _draw_compare(img: np.ndarray, bundle: FrameBundle, model: ModelSummary, opts: DrawOptions) -> None:
    for track, marks in zip(bundle.result.tracks, bundle.compare):
        if opts.boxes:
            draw_box(img, track.detection, track.track_id if opts.ids else None,
                     color=track_color(track.track_id), label=opts.ids)
        if opts.raw or opts.landmarks:
            draw_landmarks(img, marks.points, model.schema if opts.landmarks else None, indices=opts.indices)


def render(bundle: FrameBundle, model: ModelSummary | None, options: ViewOptions = ViewOptions()) -> tuple[np.ndarray, str]:
    """The annotated BGR picture (two panes side by side in compare mode) and a one-line caption."""
    img = np.ascontiguousarray(bundle.model_input).copy()
    caption = ""
    if model is None:
        return img, caption
    opts = options.draw
    if bundle.inspection.active:
        caption = _draw_inspection(img, bundle.inspection, model, opts)
    else:
        result = bundle.result
        if options.compare and bundle.compare:
            # Side by side both panes show the models' own output on the same frame, not the smoothed track.
            result = replace(result, tracks=tuple(replace(t, smoothed=t.raw.points) for t in result.tracks))
        annotate(img, result, model.schema, model.mask if model.has_graph else None, opts)
    if options.compare and bundle.compare:
        right = np.ascontiguousarray(bundle.model_input).copy()
        _draw_compare(right, bundle, model, opts)
        _label(img, model.name)
        _label(right, model.compare_name or "comparison")
        divider = np.full((img.shape[0], 4, 3), 40, np.uint8)
        img = np.ascontiguousarray(np.hstack([img, divider, right]))
    return img, caption
