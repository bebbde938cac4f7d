"""The network on a batch of crops, on one of two runtimes: ONNX Runtime on the CPU, torch on CUDA.

``predict(crops)`` takes (B, S, S, 3) uint8 BGR crops and returns ``(units, edge_weights, visibility)``:
(B, N, 2) points in crop units, (B, N, N) edge weights ((B, N, 0) for the FC head) and the (B, N)
probability that each point is visible ((B, 0) for a model without a visibility output).
``has_visibility`` says which. :class:`landmarker.Landmarker` wraps a runner with the crops.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, ModelInfo
from .errors import first_line
from .onnx_meta import BATCH_AXIS, META_KEY, VISIBILITY_OUTPUT, info_from_json
from .preprocess import to_input


class TorchRunner:
    engine = "torch"

    def __init__(self, model, info: ModelInfo, device: str = "cpu") -> None:
        import torch

        self.info = info
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
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

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.run_tensor(to_input(crops, self.info.norm_mean, self.info.norm_std))


class OnnxRunner:
    engine = "onnxruntime"

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
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in meta:
            raise CheckpointError(f"{path} is an ONNX model but not an sdfl export (no {META_KEY} metadata)")
        self.info = info_from_json(meta[META_KEY])
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
        out = self.session_for(x.shape[0]).run(self._outputs, {"image": x})
        vis = out[2] if self.has_visibility else np.zeros((out[0].shape[0], 0), np.float32)
        return out[0], out[1], vis

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.run_tensor(to_input(crops, self.info.norm_mean, self.info.norm_std))
