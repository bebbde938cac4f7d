"""What the ONNX graph's inference-only rewrites buy: the shipped checkpoint exported with and without the
node embedding's grouped conv as depthwise convs (``onnx_export.ShiftedDepthwise``), each run in the
general (any batch) session and in the batch-of-one session ``runners.OnnxRunner`` uses for one face.

    python benchmarks/export_graph.py [--weights assets/models/sdfl_68.pt] [--rounds 10] [--runs 100]

The model alone on one crop, ONNX Runtime with 1 and with 2 threads, the four variants in alternating rounds
so that the machine's drift hits them alike; medians over rounds, as ratios to the plain export in the
general session (the runtime before these rewrites). Also the largest difference of any output between the
variants on the same input. Not a test: it needs torch to export. The result is in
docs/benchmarks/export_graph.txt.
"""
from __future__ import annotations

from preamble import REPO, setup_logging, time_calls  # isort: skip  (first: paths, logs, native import order)

import argparse
import tempfile
from functools import partial
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO / "assets" / "models" / "sdfl_68.pt")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    setup_logging()

    from sdfl_core.checkpoint import load_checkpoint
    from sdfl_core.onnx_export import export_onnx
    from sdfl_core.runners import OnnxRunner

    model, info = load_checkpoint(args.weights)
    size = info.config.input_size
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    print(f"# python benchmarks/export_graph.py --weights {args.weights.name}   (model alone, one crop, median ms "
          f"of {args.rounds} alternating rounds of {args.runs} runs)")
    with tempfile.TemporaryDirectory() as tmp:
        plain = export_onnx(model, info, Path(tmp) / "plain.onnx", depthwise_embedding=False)
        rewritten = export_onnx(model, info, Path(tmp) / "depthwise.onnx")
        for threads in (1, 2):
            runners = {"plain": OnnxRunner(plain, threads), "depthwise": OnnxRunner(rewritten, threads)}
            sessions = {}
            for name, runner in runners.items():
                sessions[f"{name} export, any batch"] = runner.session
                sessions[f"{name} export, batch of one"] = runner.session_for(1)
            outputs = {name: session.run(None, {"image": x}) for name, session in sessions.items()}
            reference = next(iter(outputs.values()))
            times = time_calls({name: partial(session.run, None, {"image": x}) for name, session in sessions.items()},
                               args.rounds, args.runs)
            base = next(iter(times.values()))
            print(f"{threads} thread(s)                         ms   x plain  max |diff|")
            for name, ms in times.items():
                diff = max(float(np.abs(a - b).max()) for a, b in zip(outputs[name], reference))
                print(f"  {name:30s} {ms:6.3f}   {ms / base:6.3f}  {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
