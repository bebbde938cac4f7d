"""The two CPU engines on the same ONNX export: ONNX Runtime against OpenVINO in float32 and, where the CPU has
it, bfloat16. Speed and validation accuracy in one run.

    python benchmarks/engines.py [--weights assets/models/sdfl_68.onnx ...] [--threads 1,2]
        [--config training/configs/sdfl_68_helen5_shapes.yaml | --no-val]

Speed: the model alone on one crop (the runners' batch-of-one models, the input already made), each engine with
the same thread count, in alternating rounds so that the machine's drift hits them alike; the median over
rounds and its ratio to ONNX Runtime's. Accuracy: ``training.validate`` on the config's validation split
(ground-truth landmark boxes, one crop) through ONNX Runtime and through OpenVINO at its default precision.
Not a test; the validation part needs the train extra. The result is in docs/benchmarks/engines.txt.
"""
from __future__ import annotations

from preamble import ASTRONAUT, REPO, cpu_name, setup_logging, time_calls  # isort: skip  (first: paths, logs, native import order)

import argparse
import importlib.util
import os
import sys
from functools import partial
from pathlib import Path

import cv2


def runners_for(path: Path, threads: int) -> dict:
    """{label: runner} for ``path``: ONNX Runtime, OpenVINO float32, and OpenVINO bfloat16 where it is native."""
    from sdfl_core.runners import OnnxRunner, OpenVinoRunner, openvino_bf16_native

    runners = {"onnxruntime": OnnxRunner(path, threads), "openvino f32": OpenVinoRunner(path, threads, "f32")}
    if openvino_bf16_native():
        runners["openvino bf16"] = OpenVinoRunner(path, threads, "bf16")
    return runners


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = REPO / "assets" / "models"
    parser.add_argument("--weights", type=Path, action="append", default=[],
                        help="ONNX exports to time (repeat; default: the shipped sdfl_68 and fc_68)")
    parser.add_argument("--threads", default="1,2", help="thread counts to time with (default 1,2)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100, help="model runs per engine per round")
    parser.add_argument("--config", type=Path, default=REPO / "training" / "configs" / "sdfl_68_helen5_shapes.yaml",
                        help="the training config whose validation split scores each engine")
    parser.add_argument("--no-val", action="store_true", help="speed only")
    args = parser.parse_args(argv)
    setup_logging()
    if importlib.util.find_spec("openvino") is None:
        print("benchmarks/engines.py: needs OpenVINO: pip install 'sdfl[openvino]'", file=sys.stderr)
        return 2
    weights = args.weights or [models / "sdfl_68.onnx", models / "fc_68.onnx"]
    for path in weights:
        if path.suffix != ".onnx" or not path.is_file():
            print(f"benchmarks/engines.py: not an .onnx file: {path}", file=sys.stderr)
            return 2
    threads = [int(t) for t in args.threads.split(",")]

    from sdfl_core.preprocess import to_input

    print(f"cpu: {cpu_name()}, {os.cpu_count()} cores   speed: the model alone, one crop, median ms over "
          f"{args.rounds} alternating rounds of {args.runs} runs")
    print(f"{'model':<14} {'threads':>7} {'engine':<15} {'ms':>7} {'x onnxruntime':>14}")
    crop = cv2.resize(cv2.imread(str(ASTRONAUT)), (128, 128), interpolation=cv2.INTER_AREA)[None]
    for path in weights:
        for count in threads:
            runners = runners_for(path, count)
            info = next(iter(runners.values())).info
            x = to_input(crop if info.config.input_size == 128 else
                         cv2.resize(crop[0], (info.config.input_size,) * 2)[None], info.norm_mean, info.norm_std)
            # time_calls's warm-up compiles OpenVINO's batch-of-one model before the first timed call.
            ms = time_calls({name: partial(runner.run_tensor, x) for name, runner in runners.items()},
                            args.rounds, args.runs)
            for name, value in ms.items():
                print(f"{path.stem:<14} {count:>7} {name:<15} {value:>7.3f} {value / ms['onnxruntime']:>14.3f}")
    if args.no_val:
        return 0

    from sdfl_core.runners import openvino_bf16_native
    from training.validate import validation_table

    print(f"\nvalidation: {args.config.name}'s split, ground-truth boxes, one crop")
    print(f"{'model':<14} {'engine':<15} {'NME io %':>9} {'FR@0.1 %':>9} {'AUC@0.1':>8}")
    for path in weights:
        for engine in ("onnxruntime", "openvino"):
            report = next(iter(validation_table(args.config, [path], engine=engine).values()))
            label = engine if engine == "onnxruntime" else f"openvino {'bf16' if openvino_bf16_native() else 'f32'}"
            print(f"{path.stem:<14} {label:<15} {report['nme_io'] * 100:>9.2f} {report['fr_10'] * 100:>9.2f} "
                  f"{report['auc_10']:>8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
