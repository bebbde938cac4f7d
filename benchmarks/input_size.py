"""What would a smaller input or a shallower backbone buy the landmark stage? The shipped model against the same
weights run at smaller crops (``model.head_side`` resamples the smaller stride-16 map to the side the head was
sized for, so no weight changes) or without some residual backbone blocks (``model.skip_blocks``), and optionally
against models fine-tuned that way, speed and validation accuracy in one run.
It also times the backbone alone (the model cut where the heads start), to show how much of the model an
input size can touch at all.

    python benchmarks/input_size.py [--weights assets/models/sdfl_68.pt] [--sizes 112 96]
        [--skip-blocks 3.1 3.2 4.1 4.2] [--tuned runs/sdfl_68_helen7_112/best.pt] [--config training/configs/sdfl_68_helen5_shapes.yaml]

Speed: the model alone on one crop, ONNX Runtime, one thread, the variants in alternating rounds; the median
over rounds, as a ratio to the shipped model's. Accuracy: ``training.validate`` on the config's validation
split (and its Helen faces), ground-truth landmark boxes. Not a test, and not shipped: it needs the train
extra. The result is in docs/benchmarks/input_size.txt.
"""
from __future__ import annotations

from preamble import REPO, setup_logging  # isort: skip  (first: paths, logs, native import order)

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from quantize import time_models


def redescribed(loaded, out: Path, **changes) -> Path:
    """A loaded checkpoint's (model, info) under a model config with ``changes``, every tensor the changed model
    still has loaded, saved to ``out``."""
    from sdfl_core.checkpoint import save_checkpoint
    from sdfl_core.model import SDFLModel

    model, info = loaded
    config = replace(info.config, **changes)
    changed = SDFLModel(config, info.mask, info.mean_shape)
    state = model.state_dict()
    changed.load_state_dict({key: state[key] for key in changed.state_dict()})
    save_checkpoint(out, changed.eval(), replace(info, config=config))
    return out


def at_size(loaded, size: int, out: Path) -> Path:
    """A loaded checkpoint re-described for ``size`` px crops, the map read at the side the head was sized for."""
    return redescribed(loaded, out, input_size=size, head_side=loaded[0].feature_side)


def backbone_only(onnx_path: Path, out: Path) -> Path:
    """The exported model cut where the heads start: every backbone tensor that a head node reads."""
    import onnx
    from onnx.utils import extract_model

    graph = onnx.load(onnx_path).graph
    made_by_backbone = {o for node in graph.node if node.name.startswith("/backbone/") for o in node.output}
    read_by_heads = [i for node in graph.node if not node.name.startswith("/backbone/") for i in node.input
                     if i in made_by_backbone]
    extract_model(str(onnx_path), str(out), ["image"], list(dict.fromkeys(read_by_heads)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO / "assets" / "models" / "sdfl_68.pt")
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 96], help="smaller input sizes to try, px")
    parser.add_argument("--skip-blocks", nargs="+", default=[], metavar="S.B",
                        help="also the same weights without these residual backbone blocks (model.skip_blocks)")
    parser.add_argument("--tuned", type=Path, action="append", default=[],
                        help="a checkpoint fine-tuned at another size or depth, timed and scored too (repeat)")
    parser.add_argument("--config", type=Path, default=REPO / "training" / "configs" / "sdfl_68_helen5_shapes.yaml",
                        help="the training config whose validation split scores the variants")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=100, help="model runs per variant per round")
    args = parser.parse_args()
    setup_logging()

    from sdfl_core.checkpoint import load_checkpoint
    from sdfl_core.onnx_export import export_onnx
    from training.validate import validation_table

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        loaded = load_checkpoint(args.weights)
        checkpoints = {f"shipped ({loaded[1].config.input_size} px)": args.weights}
        for size in args.sizes:
            checkpoints[f"same weights at {size} px"] = at_size(loaded, size, tmp / f"at{size}.pt")
        if args.skip_blocks:
            checkpoints[f"same weights without blocks {','.join(args.skip_blocks)}"] = redescribed(
                loaded, tmp / "skipped.pt", skip_blocks=tuple(args.skip_blocks))
        for path in args.tuned:
            checkpoints[f"fine-tuned: {path.parent.name}"] = path
        onnx_paths, sizes = {}, {}
        for i, (name, path) in enumerate(checkpoints.items()):
            model, info = load_checkpoint(path)
            onnx_paths[name] = export_onnx(model, info, tmp / f"model{i}.onnx")
            sizes[name] = info.config.input_size
        shipped = next(iter(onnx_paths))
        backbone = "backbone alone (shipped)"
        runs = {**onnx_paths, backbone: backbone_only(onnx_paths[shipped], tmp / "backbone.onnx")}
        ms = time_models(runs, {**sizes, backbone: sizes[shipped]}, args.rounds, args.runs)
        reports = validation_table(args.config, list(checkpoints.values()), by_source=True)

    print(f"# python benchmarks/input_size.py --weights {args.weights.name}   (speed: model alone, 1 thread, "
          f"median of {args.rounds} alternating rounds; accuracy: {args.config.name}'s validation split)")
    print(f"{'model':44s} {'px':>4s} {'ms':>6s} {'x shipped':>10s} {'val NME %':>10s} {'Helen NME %':>12s}")
    for (name, _), report in zip(checkpoints.items(), reports.values()):
        helen = report.get("sources", {}).get("helen_trainset", {}).get("nme_io", float("nan"))
        print(f"{name:44s} {sizes[name]:4d} {ms[name]:6.2f} {ms[name] / ms[shipped]:10.3f} "
              f"{report['nme_io'] * 100:10.2f} {helen * 100:12.2f}")
    print(f"{backbone:44s} {sizes[shipped]:4d} {ms[backbone]:6.2f} {ms[backbone] / ms[shipped]:10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
