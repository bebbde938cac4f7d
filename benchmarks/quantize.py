"""Would int8 weights buy the landmark stage its speed goal? Static int8 quantization of the shipped ONNX
model (ONNX Runtime's ``quantize_static``, QDQ, per-channel weights, calibrated on training crops) against
the float model, speed and validation accuracy measured in the same run.

    python benchmarks/quantize.py [--weights assets/models/sdfl_68.onnx] [--config training/configs/sdfl_68_helen.yaml]
                                  [--threads 1,2]

Variants: every convolution; the backbone's convolutions; the backbone's pointwise (1x1) convolutions only; those
and the head's linear layers (its MatMul and Gemm nodes with constant weights).
Calibration: 256 crops of the config's training split (never its validation split or AFW), cut from the
ground-truth landmark box as inference cuts them. Accuracy: ``training.validate`` on the config's validation
split (and its Helen faces). Speed: the model alone on one crop, ONNX Runtime, with each ``--threads`` count
(default one and two), the variants in alternating rounds; the median over rounds, as a ratio to the float
model's.

Not a test, and not shipped: it needs the train extra (the config's data split). The result is in
docs/benchmarks/quantize.txt.
"""
from __future__ import annotations

from preamble import REPO, setup_logging, time_calls  # isort: skip  (first: paths, logs, native import order)

import argparse
import tempfile
from functools import partial
from pathlib import Path

import numpy as np


def calibration_batch(config_path: Path, info, count: int, seed: int = 0) -> np.ndarray:
    from sdfl_core import crops
    from sdfl_core.datasets import load_image
    from sdfl_core.preprocess import to_input
    from training.config import load_config
    from training.data import split_samples

    train, _ = split_samples(load_config(config_path))
    pick = np.random.default_rng(seed).choice(len(train), min(count, len(train)), replace=False)
    size = info.config.input_size
    batch = []
    for i in pick:
        affine = crops.landmark_crop_affine(train[i].points, info.crop_scale, size)
        batch.append(crops.warp(load_image(train[i]), affine, size))
    return to_input(np.stack(batch), info.norm_mean, info.norm_std)


def quantize(source: Path, out: Path, batch: np.ndarray, exclude: list[str], metadata_from: Path,
             op_types: tuple[str, ...] = ("Conv",)) -> None:
    """``source`` with its ``op_types`` nodes (less ``exclude``) in int8, the sdfl metadata of ``metadata_from``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.chunks = iter(np.array_split(batch, max(1, len(batch) // 8)))

        def get_next(self):
            chunk = next(self.chunks, None)
            return None if chunk is None else {"image": chunk}

    quantize_static(str(source), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(op_types), nodes_to_exclude=exclude)
    model = onnx.load(out)
    del model.metadata_props[:]
    model.metadata_props.extend(onnx.load(metadata_from).metadata_props)
    onnx.save(model, out)


def time_models(paths: dict[str, Path], size: int | dict[str, int], rounds: int, runs: int,
                threads: int = 1) -> dict[str, float]:
    """Median ms per run of each model on one crop (``size`` px, or each model's own from a dict), ONNX Runtime
    with ``threads`` threads, the models in alternating rounds so that the machine's drift hits them alike."""
    import onnxruntime as ort

    sessions = {}
    for name, path in paths.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    sizes = size if isinstance(size, dict) else dict.fromkeys(paths, size)
    rng = np.random.default_rng(0)
    feeds = {name: {"image": rng.random((1, 3, sizes[name], sizes[name]), dtype=np.float32)} for name in sessions}
    return time_calls({name: partial(session.run, None, feeds[name]) for name, session in sessions.items()},
                      rounds, runs)


def thread_counts(text: str) -> list[int]:
    """``--threads``: comma-separated positive thread counts."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated thread counts such as 1,2, got {text!r}")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO / "assets" / "models" / "sdfl_68.onnx")
    parser.add_argument("--config", type=Path, default=REPO / "training" / "configs" / "sdfl_68_helen.yaml")
    parser.add_argument("--calibration", type=int, default=256, help="training crops to calibrate on")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=100, help="model runs per variant per round")
    parser.add_argument("--threads", type=thread_counts, default=[1, 2],
                        help="ONNX Runtime thread counts to time, comma-separated (default 1,2)")
    args = parser.parse_args()
    setup_logging()
    threads = args.threads

    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from sdfl_core.runners import OnnxRunner
    from training.validate import validation_table

    info = OnnxRunner(args.weights).info
    batch = calibration_batch(args.config, info, args.calibration)
    tmp = tempfile.TemporaryDirectory()
    prepared = Path(tmp.name) / "prepared.onnx"  # shapes inferred, graph optimised: what quantize_static expects
    quant_pre_process(str(args.weights), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(prepared).graph
    constants = {tensor.name for tensor in graph.initializer}
    convs = [n.name for n in graph.node if n.op_type == "Conv"]
    backbone = [name for name in convs if name.startswith("/backbone/")]
    pointwise = [name for name in backbone if "conv_pw" in name or "conv_pwl" in name or "conv_head" in name]
    # The head's linear layers: MatMul / Gemm nodes with a constant weight (not the edge-weight products).
    linears = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in constants]
    everything = convs + linears
    variants = {  # name: (nodes in int8, op types)
        "int8 every conv": (convs, ("Conv",)),
        "int8 backbone convs": (backbone, ("Conv",)),
        "int8 backbone 1x1 convs": (pointwise, ("Conv",)),
        "int8 1x1 convs + linears": (pointwise + linears, ("Conv", "MatMul", "Gemm")),
    }
    with tmp:
        paths = {"float (shipped)": args.weights}
        for i, (name, (chosen, op_types)) in enumerate(variants.items()):
            paths[name] = Path(tmp.name) / f"variant{i}.onnx"
            exclude = [node for node in everything if node not in chosen]
            quantize(prepared, paths[name], batch, exclude, args.weights, op_types)
        speed = {n: time_models(paths, info.config.input_size, args.rounds, args.runs, n) for n in threads}
        reports = validation_table(args.config, list(paths.values()), by_source=True)
    print(f"# python benchmarks/quantize.py --weights {args.weights.name} --threads {','.join(map(str, threads))}   (calibration: "
          f"{len(batch)} training crops; speed: model alone, ONNX Runtime, median of {args.rounds} rounds)")
    timing = "".join(f" {f'ms {n}t':>7s} {'x float':>8s}" for n in threads)
    print(f"{'model':26s}{timing} {'val NME %':>10s} {'Helen NME %':>12s} {'x float':>8s}")
    base_nme = None
    for (name, _), report in zip(paths.items(), reports.values()):
        helen = report.get("sources", {}).get("helen_trainset", {}).get("nme_io", float("nan"))
        base_nme = base_nme or report["nme_io"]
        timing = "".join(f" {speed[n][name]:7.2f} {speed[n][name] / speed[n]['float (shipped)']:8.2f}"
                         for n in threads)
        print(f"{name:26s}{timing} {report['nme_io'] * 100:10.2f} {helen * 100:12.2f} "
              f"{report['nme_io'] / base_nme:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
