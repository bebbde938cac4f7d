"""The figures of ``sdfl occlusion``, drawn on ``matplotlib.figure.Figure`` (no global backend)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .draw import draw_landmarks
from .occlusion import Row


def plot_curves(path: str | Path, rows: Sequence[Row]) -> None:
    """NME (%) vs occluded %: one colour per model, visible points solid, occluded points dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.5))
    ax = fig.subplots()
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


def plot_examples(path: str | Path, examples: dict) -> None:
    """Fig. 2 style grid: rows = levels, columns = models, one face; predicted points green where the
    ground-truth point is visible and red where it is occluded."""
    from matplotlib.figure import Figure

    levels = sorted(examples["crops"])
    models = list(examples["points"])
    if not levels or not models:
        raise ValueError("no example face to draw")
    fig = Figure(figsize=(2.2 * len(models), 2.2 * len(levels)))
    axes = fig.subplots(len(levels), len(models), squeeze=False)
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
