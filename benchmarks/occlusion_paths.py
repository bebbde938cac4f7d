"""Which way does an occluder reach the visible landmarks of a graph model: their own node features, or
messages from occluded nodes along the graph?

    python benchmarks/occlusion_paths.py --config training/configs/sdfl_68_s16.yaml --weights W [--weights W2]

Runs on the config's validation split (``training.train.split_samples``), with the random occluders of
``sdfl occlusion`` (same seed, same draws). For each level the graph head is fed, per face:
- ``clean`` / ``occluded``: the clean or occluded image, as usual;
- ``own features``: visible nodes keep the occluded image's node features, occluded nodes get the clean
  image's, so the occluder can reach a visible landmark only through that landmark's own features;
- ``graph messages``: the reverse; the occluder reaches visible landmarks only through the graph;
- ``cut edges``: the occluded image, with every edge from an occluded node into a visible
  one cut (oracle visibility, rows renormalised);
- ``uniform adj``: the occluded image with the edge weights replaced by the mask's uniform rows.
It prints the NME of the visible points (% of the inter-ocular distance) and the share of the rise from
``clean`` to ``occluded`` each path carries. An analysis, not a test.
"""
from __future__ import annotations

from preamble import setup_logging  # isort: skip  (first: paths, logs, native import order)


import numpy as np
import torch
import val_occlusion

from sdfl_core import crops
from sdfl_core.metrics import nme_io
from sdfl_core.preprocess import to_input
from sdfl_core.schemas import get_schema
from training.validate import weights_name

VARIANTS = ("clean", "occluded", "own features", "graph messages", "cut edges", "uniform adj")


def run_variants(model, h_occ: torch.Tensor, h_clean: torch.Tensor, visible: np.ndarray,
                 ctx_occ: torch.Tensor | None = None, ctx_clean: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Coordinates (1, N, 2) of each variant for one face, from its two map-to-node outputs (and, under
    ``model.global_context``, its two node contexts: every variant but "clean" reads the occluded one)."""
    e = model.config.expansion
    vis = torch.from_numpy(visible)
    chan = vis.repeat_interleave(e)[None, :, None, None]
    adj = model.edge_weights(h_occ)
    cut = adj.clone()
    cut[0][vis[:, None] & ~vis[None, :]] = 0
    cut = cut / cut.sum(-1, keepdim=True)
    mask = model.mask.float()
    uniform = (mask / mask.sum(-1, keepdim=True))[None]
    return {
        "clean": model.graph_regress(h_clean, model.edge_weights(h_clean), ctx_clean),
        "occluded": model.graph_regress(h_occ, adj, ctx_occ),
        "own features": model.graph_regress(torch.where(chan, h_occ, h_clean), adj, ctx_occ),
        "graph messages": model.graph_regress(torch.where(chan, h_clean, h_occ), adj, ctx_occ),
        "cut edges": model.graph_regress(h_occ, cut, ctx_occ),
        "uniform adj": model.graph_regress(h_occ, uniform, ctx_occ),
    }


def main() -> int:
    args = val_occlusion.parser(__doc__, "a graph-head checkpoint (repeat)", "10,30,50").parse_args()
    setup_logging()
    val, levels, pool = val_occlusion.validation(args)
    schema = get_schema("300w")
    for weights, model, info in val_occlusion.models(args.weights, lambda config: config.head == "graph",
                                                     "not a graph model"):
        size = info.config.input_size
        errors: dict[tuple[int, str], list[float]] = {}
        for _, sample, image, affine, level, occ, crop in val_occlusion.occluded_crops(
                val, pool, levels, args.seed, info.crop_scale, size):
            batch = np.stack([crop, crops.warp(image, affine, size)])
            with torch.inference_mode():
                feats = model.backbone(torch.from_numpy(to_input(batch, info.norm_mean, info.norm_std)))[-1]
                h, ctx = model.embed(feats), model.node_context(feats)
                outs = run_variants(model, h[:1], h[1:], occ.visible, *((ctx[:1], ctx[1:]) if ctx is not None else ()))
            for name, coords in outs.items():
                pred = crops.units_to_image(coords.numpy(), affine, size)
                err = nme_io(pred, sample.points[None], schema, point_mask=occ.visible[None])[0]
                errors.setdefault((level, name), []).append(float(err))
        print(f"\n{weights_name(weights)}: "
              f"visible-point NME %, {len(val)} validation faces of {args.config}")
        print(f"{'level':>5}  " + "  ".join(f"{v:>14}" for v in VARIANTS) + "   own share  graph share")
        for level in levels:
            m = {v: 100 * float(np.mean(errors[(level, v)])) for v in VARIANTS}
            rise = m["occluded"] - m["clean"]
            own = (m["own features"] - m["clean"]) / rise if rise > 0 else float("nan")
            graph = (m["graph messages"] - m["clean"]) / rise if rise > 0 else float("nan")
            print(f"{level:>5}  " + "  ".join(f"{m[v]:>14.2f}" for v in VARIANTS) + f"   {own:>9.0%}  {graph:>11.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
