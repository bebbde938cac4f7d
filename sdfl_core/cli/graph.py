"""`sdfl graph`: mine and plot the top-k landmark graph of a dataset."""
from __future__ import annotations

import numpy as np

from ..datasets import load_samples
from ..graph import edge_list, mine_adjacency, normalize_shapes, plot_graph, save_graph


def run(args) -> int:
    samples = load_samples(args.data, args.format)
    shapes = np.stack([s.points for s in samples])
    mask = mine_adjacency(shapes, k=args.k)
    mean_shape = normalize_shapes(shapes).mean(axis=0)
    save_graph(args.out, mask, mean_shape, args.k)
    if args.plot:
        plot_graph(args.plot, mean_shape, mask, f"{len(samples)} shapes, k={args.k}")
    print(f"{len(samples)} shapes, {shapes.shape[1]} points, {len(edge_list(mask))} edges -> {args.out}")
    return 0
