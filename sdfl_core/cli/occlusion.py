"""`sdfl occlusion --weights A [--weights B ...] --data PATH --format F --out DIR`: occlusion robustness.

Writes DIR/occlusion.csv, DIR/occlusion.json, DIR/occlusion.png (NME vs occluded %) and DIR/examples.png.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..baselines import DlibModel, dlib_available
from ..datasets import load_samples
from ..extras import require
from ..landmarker import load_landmarker
from ..occlusion import OcclusionOptions, evaluate_occlusion
from ..occlusion_plots import plot_curves, plot_examples
from ..occlusion_report import report_json, write_csv
from ..registry import default_weights
from ..schemas import get_schema

log = logging.getLogger(__name__)


def parse_levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--levels must be comma-separated integer percentages, got {text!r}") from None
    if not levels:
        raise ValueError("--levels is empty")
    return levels


def unique_names(names: list[str]) -> list[str]:
    """Keep names, suffixing repeats with -2, -3, ... so every model has its own column and key."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        candidate = name if seen[name] == 1 else f"{name}-{seen[name]}"
        while candidate in out:
            seen[name] += 1
            candidate = f"{name}-{seen[name]}"
        out.append(candidate)
    return out


def run(args) -> int:
    options = OcclusionOptions(levels=parse_levels(args.levels), parts=bool(args.parts), seed=int(args.seed))
    require("matplotlib", "sdfl occlusion (occlusion.png, examples.png)")
    weights = [Path(w) for w in args.weights] or [default_weights("sdfl"), default_weights("fc")]
    for w in weights:
        if not w.is_file():
            raise FileNotFoundError(f"model file not found: {w}")
    # 300W folders may hold any point count; the check against the models below names the mismatch.
    read_options = {"num_points": None} if args.format == "300w" else {}
    samples = load_samples(args.data, args.format, **read_options)
    if args.limit and args.limit > 0:
        samples = samples[: args.limit]
    n = samples[0].num_points
    schema = get_schema(n)

    landmarkers = [load_landmarker(w, device=args.device, engine=args.engine, crops_per_face=args.crops_per_face) for w in weights]
    names = unique_names([lm.info.name or w.stem for lm, w in zip(landmarkers, weights)])
    for landmarker, name in zip(landmarkers, names):
        landmarker.name = name
    models: list = list(landmarkers)
    for m, w in zip(models, weights):
        if m.num_points != n:
            raise ValueError(f"{w} predicts {m.num_points} points but {args.data} has {n} points per face")
    if n == 68 and not args.no_dlib:
        if dlib_available():
            models.append(DlibModel())
            models[-1].name = unique_names(names + ["dlib"])[-1]
        else:
            log.info("dlib baseline skipped: dlib or face_recognition_models is not installed")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(samples), unit="face", desc="occlusion", dynamic_ncols=True) as bar:
        report = evaluate_occlusion(models, samples, schema, options, progress=bar)
    write_csv(out / "occlusion.csv", report.rows)
    (out / "occlusion.json").write_text(json.dumps(report_json(report.rows), indent=2), encoding="utf-8")
    plot_curves(out / "occlusion.png", report.rows)
    plot_examples(out / "examples.png", report.examples)

    print(format_table(report.rows))
    print(f"{report.rows[0].count} faces, {len(models)} models -> {out}")
    return 0


def format_table(rows) -> str:
    """The printed table of ``sdfl occlusion``: one line per row, NMEs and FR in percent."""
    header = (f"{'model':<20} {'kind':<11} {'level':>5} {'n':>4} {'cover%':>6} {'vis%':>6} {'occ%':>6} {'all%':>6} "
              f"{'FR%':>5} {'edge v->o':>9} {'clean':>6} {'visAUROC':>8} {'occ-trk%':>8}")
    lines = [header]
    for r in rows:
        occ = f"{100 * r.nme_occluded:6.2f}" if r.occluded_count else f"{'-':>6}"
        edges = (f"{r.edge_occluded:9.3f} {r.edge_clean:6.3f}" if np.isfinite(r.edge_occluded) else f"{'-':>9} {'-':>6}")
        vis = f"{r.vis_auroc:8.3f}" if np.isfinite(r.vis_auroc) else f"{'-':>8}"
        tracked = f"{100 * r.nme_occluded_tracked:8.2f}" if np.isfinite(r.nme_occluded_tracked) else f"{'-':>8}"
        lines.append(f"{r.model:<20} {r.kind:<11} {r.level:>5} {r.count:>4} {100 * r.coverage:6.1f} "
                     f"{100 * r.nme_visible:6.2f} {occ} {100 * r.nme_all:6.2f} {100 * r.fr_10:5.1f} {edges} {vis} {tracked}")
    lines.append("edge v->o: mean weight of the graph edges from visible to occluded landmarks; clean: the same "
                 "edges on the unoccluded image")
    lines.append("visAUROC: the visibility output against the occluder's cover; occ-trk: occluded points' NME from the "
                 "visibility-weighted Kalman filter, seeded on the clean frame, after 10 covered frames")
    return "\n".join(lines)
