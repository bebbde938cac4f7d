"""The rows of ``sdfl occlusion`` as CSV and JSON (columns and keys are a contract)."""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .metrics import finite_or_none
from .occlusion import Row

CSV_COLUMNS = ("model", "level", "kind", "count", "nme_visible", "nme_occluded", "nme_all", "fr_10",
               "edge_occluded", "edge_clean", "vis_auroc", "nme_occluded_tracked")



def write_csv(path: str | Path, rows: Sequence[Row]) -> None:
    """One line per row; NMEs and FR as fractions, an empty cell where there is nothing to average."""

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
            "nme_visible": finite_or_none(r.nme_visible), "nme_occluded": finite_or_none(r.nme_occluded),
            "nme_all": finite_or_none(r.nme_all), "fr_10": r.fr_10,
            "edge_occluded": finite_or_none(r.edge_occluded), "edge_clean": finite_or_none(r.edge_clean),
            "vis_auroc": finite_or_none(r.vis_auroc), "nme_occluded_tracked": finite_or_none(r.nme_occluded_tracked),
        })
    return out
