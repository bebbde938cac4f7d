"""Data-driven landmark graph (paper Eq. 1, 2) and its uniform Laplacian (Eq. 7)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _check_shapes(shapes: np.ndarray) -> np.ndarray:
    shapes = np.asarray(shapes, dtype=np.float64)
    if shapes.ndim != 3 or shapes.shape[2] != 2:
        raise ValueError(f"training shapes must be an (M, N, 2) array, got shape {shapes.shape}")
    if shapes.shape[0] < 3:
        raise ValueError(f"need at least 3 training shapes to mine correlations, got {shapes.shape[0]}")
    if not np.isfinite(shapes).all():
        raise ValueError("training shapes contain NaN or infinite coordinates")
    return shapes


def normalize_shapes(shapes: np.ndarray) -> np.ndarray:
    """Remove each shape's translation and scale (centroid and RMS distance to it).

    Raw dataset coordinates mix in where each face happens to sit in its image, which makes every
    landmark correlate with every other; the paper's shapes come from centred, equally sized crops.
    The landmark box is not used for this: it pins the extreme points (e.g. the leftmost jaw point's x
    is always -0.5 whenever the box is wider than tall), which fakes constant landmarks.
    """
    shapes = _check_shapes(shapes)
    centred = shapes - shapes.mean(axis=1, keepdims=True)
    size = np.sqrt((centred ** 2).sum(axis=2).mean(axis=1))[:, None, None]
    if (size <= 1e-12).any():
        raise ValueError("a training shape has all its points at one location")
    return centred / size


def correlation_matrix(shapes: np.ndarray) -> np.ndarray:
    """C = (|Cx| + |Cy|) / 2 from Pearson correlations of x and y across the M shapes (Eq. 1)."""
    shapes = _check_shapes(shapes)
    std = shapes.std(axis=0)
    constant = np.where((std < 1e-12).any(axis=1))[0]
    if constant.size:
        raise ValueError(f"landmarks {constant.tolist()} never move across the training shapes; correlation is undefined")
    cx = np.corrcoef(shapes[:, :, 0], rowvar=False)
    cy = np.corrcoef(shapes[:, :, 1], rowvar=False)
    return (np.abs(cx) + np.abs(cy)) / 2


def topk_mask(corr: np.ndarray, k: int) -> np.ndarray:
    """Binary mask keeping the top k+1 entries of each row (self included, Eq. 2)."""
    corr = np.asarray(corr, dtype=np.float64)
    n = corr.shape[0]
    if corr.shape != (n, n):
        raise ValueError(f"correlation matrix must be square, got {corr.shape}")
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, N-1] = [1, {n - 1}], got {k}")
    # Self-correlation is 1 and always kept; ties are broken by index so the result is deterministic.
    scores = corr.copy()
    np.fill_diagonal(scores, np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, : k + 1]
    mask = np.zeros((n, n), dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def mine_adjacency(shapes: np.ndarray, k: int = 3, normalize: bool = True) -> np.ndarray:
    """(N, N) boolean adjacency M with self-loops from (M, N, 2) training shapes."""
    shapes = normalize_shapes(shapes) if normalize else _check_shapes(shapes)
    return topk_mask(correlation_matrix(shapes), k)


def uniform_laplacian(mask: np.ndarray) -> np.ndarray:
    """L with 1 on the diagonal and -1/|N_i| on each neighbour j != i of M (Eq. 7)."""
    mask = np.asarray(mask, dtype=bool)
    n = mask.shape[0]
    if mask.shape != (n, n):
        raise ValueError(f"adjacency mask must be square, got {mask.shape}")
    neighbours = mask & ~np.eye(n, dtype=bool)
    counts = neighbours.sum(axis=1)
    if (counts == 0).any():
        raise ValueError(f"landmarks {np.where(counts == 0)[0].tolist()} have no neighbour in the mask")
    lap = -neighbours.astype(np.float64) / counts[:, None]
    np.fill_diagonal(lap, 1.0)
    return lap.astype(np.float32)


def edge_list(mask: np.ndarray) -> np.ndarray:
    """(E, 2) undirected edges of M without self-loops, i < j."""
    mask = np.asarray(mask, dtype=bool)
    sym = (mask | mask.T) & ~np.eye(mask.shape[0], dtype=bool)
    i, j = np.nonzero(np.triu(sym))
    return np.stack([i, j], axis=1)


def save_graph(path: str | Path, mask: np.ndarray, mean_shape: np.ndarray, k: int) -> None:
    np.savez(path, mask=np.asarray(mask, bool), mean_shape=np.asarray(mean_shape, np.float32), k=np.int64(k))


def load_graph(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"graph file not found: {path}")
    try:
        with np.load(path) as data:
            return data["mask"].astype(bool), data["mean_shape"].astype(np.float32), int(data["k"])
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path} is not an sdfl graph file: {exc}") from exc


def plot_graph(path: str | Path, mean_shape: np.ndarray, mask: np.ndarray, title: str = "") -> None:
    """Draw the mean shape with the edges of M (image y axis points down)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    for i, j in edge_list(mask):
        ax.plot(mean_shape[[i, j], 0], mean_shape[[i, j], 1], color="tab:blue", lw=1, alpha=0.7)
    ax.scatter(mean_shape[:, 0], mean_shape[:, 1], s=12, color="tab:red", zorder=3)
    for idx, (x, y) in enumerate(mean_shape):
        ax.annotate(str(idx), (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title(title or f"top-k landmark graph ({len(edge_list(mask))} edges)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
