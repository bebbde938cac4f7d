"""The network on a batch of crops, on one of three runtimes: ONNX Runtime or OpenVINO on the CPU (both run
the ONNX export), torch on CUDA.

``predict(crops)`` takes (B, S, S, 3) uint8 BGR crops and returns ``(units, edge_weights, visibility)``:
(B, N, 2) points in crop units, (B, N, N) edge weights ((B, N, 0) for the FC head) and the (B, N)
probability that each point is visible ((B, 0) for a model without a visibility output).
``has_visibility`` says which. :class:`landmarker.Landmarker` wraps a runner with the crops.
"""
from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, ModelInfo
from .errors import first_line
from .onnx_meta import BATCH_AXIS, META_KEY, VISIBILITY_OUTPUT, info_from_json, onnx_metadata
from .preprocess import to_input


class CropRunner:
    """What every runner shares: ``predict`` normalises the crops as the model was trained (``self.info``) and
    hands the tensor to the subclass's ``run_tensor``."""

    info: ModelInfo

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.run_tensor(to_input(crops, self.info.norm_mean, self.info.norm_std))


class TorchRunner(CropRunner):
    engine = "torch"
    precision = "f32"  # float16 autocast on CUDA: see run_tensor

    def __init__(self, model, info: ModelInfo, device: str = "cpu") -> None:
        import torch

        self.info = info
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.precision = "f16 autocast"
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.has_visibility = bool(model.config.visibility)

    def run_tensor(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device)
            if self.device.type == "cpu":
                t = t.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type="cuda", enabled=self.device.type == "cuda"):
                if self.has_visibility:
                    pts, weights, logits = self.model.forward_with_visibility(t)
                    vis = torch.sigmoid(logits.float())
                else:
                    pts, weights = self.model(t)
                    vis = pts.new_zeros((pts.shape[0], 0))
            return pts.float().cpu().numpy(), weights.float().cpu().numpy(), vis.float().cpu().numpy()


def export_info(path: Path, meta) -> ModelInfo:
    """The ``ModelInfo`` in an ONNX model's metadata map, or a one-line error for an ONNX model that is no sdfl
    export."""
    if META_KEY not in meta:
        raise CheckpointError(f"{path} is an ONNX model but not an sdfl export (no {META_KEY} metadata)")
    return info_from_json(meta[META_KEY])


def split_outputs(out: list[np.ndarray], has_visibility: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An export's outputs, asked for as ``landmarks, edge_weights[, visibility]``, as a runner returns them."""
    vis = out[2] if has_visibility else np.zeros((out[0].shape[0], 0), np.float32)
    return out[0], out[1], vis


class OnnxRunner(CropRunner):
    engine = "onnxruntime"
    precision = "f32"

    def __init__(self, path: str | Path, num_threads: int | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        self._num_threads = num_threads
        try:
            self.session = self._new_session(path)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise CheckpointError(f"{path} is not a loadable ONNX model: {first_line(exc)}") from exc
        self._single = None  # the batch-of-one session, made on the first batch of one
        self.info = export_info(path, self.session.get_modelmeta().custom_metadata_map)
        self.path = path
        # The file's outputs, not its metadata, say whether it has visibility: an export made before the
        # output existed has two outputs whatever its config says.
        self.has_visibility = VISIBILITY_OUTPUT in {o.name for o in self.session.get_outputs()}
        self._outputs = ["landmarks", "edge_weights"] + ([VISIBILITY_OUTPUT] if self.has_visibility else [])

    def _new_session(self, path: Path, batch: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self._num_threads:
            opts.intra_op_num_threads = self._num_threads
        opts.log_severity_level = 3
        if batch is not None:
            opts.add_free_dimension_override_by_name(BATCH_AXIS, batch)
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def session_for(self, batch: int):
        """The session for a batch of ``batch`` crops. One face (a video's usual case) runs in a session
        made for batches of one: with the batch size fixed, ONNX Runtime folds the graph's shape arithmetic
        away (``benchmarks/export_graph.py``); any other batch runs in the general session."""
        if batch != 1:
            return self.session
        if self._single is None:
            self._single = self._new_session(self.path, batch=1)
        return self._single

    def run_tensor(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Outputs by name: a model with more outputs (a newer export's) still runs.
        x = np.ascontiguousarray(x, np.float32)
        return split_outputs(self.session_for(x.shape[0]).run(self._outputs, {"image": x}), self.has_visibility)


PRECISIONS = ("auto", "f32", "bf16")


def openvino_precision(core, precision: str = "auto") -> str:
    """The OpenVINO inference precision for ``precision``: 'auto' is bfloat16 where the CPU computes it
    natively (OpenVINO's CPU plugin lists BF16 among its optimization capabilities: AVX512-BF16 or AMX),
    else float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"


@functools.lru_cache(maxsize=1)
def openvino_bf16_native() -> bool:
    """Whether OpenVINO is installed and computes bfloat16 natively on this CPU ('auto' precision is then
    bfloat16)."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        return False
    import openvino as ov

    return openvino_precision(ov.Core()) == "bf16"


class OpenVinoRunner(CropRunner):
    """The ONNX export on OpenVINO's CPU plugin (the optional ``sdfl[openvino]``), with the outputs of
    :class:`OnnxRunner`. Where the CPU has bfloat16 instructions it runs the model in bfloat16, faster than ONNX
    Runtime at the same validation NME (``docs/benchmarks/engines.txt``). Like ONNX Runtime's
    batch-of-one session, a batch of one runs in a model compiled for that size (at construction); any other
    batch runs in one compiled for any batch (on its first use). One inference at a time (a lock), since a
    compiled model's request is not shared between threads."""

    engine = "openvino"

    def __init__(self, path: str | Path, num_threads: int | None = None, precision: str = "auto") -> None:
        import openvino as ov

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        core = ov.Core()
        self.precision = openvino_precision(core, precision)
        self._core = core
        try:
            self._model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises its own exception types
            raise CheckpointError(f"{path} is not a loadable ONNX model: {first_line(exc)}") from exc
        self.path = path
        self.info = export_info(path, self._metadata())
        names = {name for port in self._model.outputs for name in port.get_names()}
        self.has_visibility = VISIBILITY_OUTPUT in names
        self._outputs = ["landmarks", "edge_weights"] + ([VISIBILITY_OUTPUT] if self.has_visibility else [])
        # No pinning: OpenVINO would pin the calling thread to a core, and the pipeline's detector thread and
        # the GUI share those cores with it (pinning made no difference to the model's time here).
        self._config = {"INFERENCE_PRECISION_HINT": self.precision, "PERFORMANCE_HINT": "LATENCY",
                        "ENABLE_CPU_PINNING": False}
        if num_threads:
            self._config["INFERENCE_NUM_THREADS"] = int(num_threads)
        self._requests: dict[bool, object] = {}  # batch of one or not -> its compiled model's request
        self._lock = threading.Lock()
        try:  # the batch-of-one model (a video's), now: a model OpenVINO cannot compile fails here, not mid-run
            self.request_for(1)
        except Exception as exc:  # OpenVINO raises its own exception types
            raise CheckpointError(f"OpenVINO cannot compile {path}: {first_line(exc)}") from exc

    def _metadata(self) -> dict[str, str]:
        """The file's ONNX metadata, as OpenVINO's reader keeps it (its 'framework' runtime info); read with
        ONNX Runtime where a release keeps it elsewhere."""
        info = self._model.get_rt_info()
        if "framework" not in info:
            return onnx_metadata(self.path)
        return {key: self._model.get_rt_info(["framework", key]).astype(str) for key in info["framework"].keys()}

    def request_for(self, batch: int):
        """The infer request for a batch of ``batch`` crops, its model compiled on first use."""
        single = batch == 1
        if single not in self._requests:
            model = self._model
            if single:
                model = model.clone()
                size = self.info.config.input_size
                model.reshape({model.input(0): [1, 3, size, size]})
            self._requests[single] = self._core.compile_model(model, "CPU", self._config).create_infer_request()
        return self._requests[single]

    def run_tensor(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(x, np.float32)
        with self._lock:
            request = self.request_for(x.shape[0])
            request.infer({0: x}, share_inputs=True)  # x is ours until infer returns
            # Copies: the request's output tensors are overwritten by its next inference.
            out = [np.array(request.get_tensor(name).data, np.float32) for name in self._outputs]
        return split_outputs(out, self.has_visibility)
