"""Landmark predictors with one interface: ONNX Runtime on the CPU (default), torch on CUDA.

``predict(crops)`` takes (B, S, S, 3) uint8 BGR crops and returns ``(units, edge_weights, visibility)``:
(B, N, 2) points in crop units, (B, N, N) edge weights ((B, N, 0) for the FC head) and the (B, N)
probability that each point is visible ((B, 0) for a model without a visibility output, e.g. any model
trained before it existed). ``has_visibility`` says which.

The default weights are the shipped ``.onnx`` files, so tracking never imports torch. torch is imported
only for a ``.pt`` checkpoint that has no current ``.onnx`` export, or to run on CUDA.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from .assets import asset_path
from .checkpoint import CheckpointError, ModelInfo, load_checkpoint
from .extras import install_hint
from .onnx_meta import META_KEY, VISIBILITY_OUTPUT, file_sha256, info_from_json, is_export_of
from .preprocess import to_input

log = logging.getLogger(__name__)

DEFAULT_MODELS = {"sdfl": "sdfl_68", "fc": "fc_68"}
MODEL_FORMATS = ("onnx", "pt")


def default_weights(kind: str = "sdfl", fmt: str = "onnx") -> Path:
    """The shipped model ('sdfl' or its FC twin 'fc'): its ONNX export (what inference runs), or with
    ``fmt='pt'`` the checkpoint it was exported from (for export and training)."""
    if kind not in DEFAULT_MODELS:
        raise ValueError(f"unknown shipped model {kind!r} (known: {', '.join(DEFAULT_MODELS)})")
    if fmt not in MODEL_FORMATS:
        raise ValueError(f"model format must be one of {MODEL_FORMATS}, got {fmt!r}")
    try:
        return asset_path("models", f"{DEFAULT_MODELS[kind]}.{fmt}")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"shipped model missing: {exc} (reinstall sdfl, or pass --weights)") from None


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _resolve_device(device: str) -> str:
    if device == "cpu" or (device == "auto" and not _torch_installed()):
        return "cpu"  # the base install has no torch, hence no CUDA engine: ONNX Runtime on the CPU
    if device == "cuda" and not _torch_installed():
        raise ValueError(f"--device cuda runs the model with torch, which the base install leaves out: {install_hint('torch')}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but CUDA is not available on this machine")
    return device


class TorchPredictor:
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


class OnnxPredictor:
    engine = "onnxruntime"

    def __init__(self, path: str | Path, num_threads: int | None = None) -> None:
        import onnxruntime as ort

        from .checkpoint import CheckpointError, first_line

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            opts.intra_op_num_threads = num_threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise CheckpointError(f"{path} is not a loadable ONNX model: {first_line(exc)}") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in meta:
            raise CheckpointError(f"{path} is an ONNX model but not an sdfl export (no {META_KEY} metadata)")
        self.info = info_from_json(meta[META_KEY])
        self.path = path
        # The file's outputs, not its metadata, say whether it has visibility: an export made before the
        # output existed has two outputs whatever its config says.
        self.has_visibility = VISIBILITY_OUTPUT in {o.name for o in self.session.get_outputs()}
        self._outputs = ["landmarks", "edge_weights"] + ([VISIBILITY_OUTPUT] if self.has_visibility else [])

    def run_tensor(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Outputs by name: a model with more outputs (a newer export's) still runs.
        out = self.session.run(self._outputs, {"image": np.ascontiguousarray(x, np.float32)})
        vis = out[2] if self.has_visibility else np.zeros((out[0].shape[0], 0), np.float32)
        return out[0], out[1], vis

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.run_tensor(to_input(crops, self.info.norm_mean, self.info.norm_std))


def onnx_cache_dir() -> Path:
    return Path(os.environ.get("SDFL_CACHE", Path.home() / ".cache" / "sdfl"))


def onnx_for_checkpoint(weights: Path) -> Path:
    """The ONNX export of a ``.pt`` checkpoint: the ``.onnx`` beside it when its recorded source hash is
    the checkpoint's, else one in the per-user cache, exported now (needs torch) if not there yet."""
    digest = file_sha256(weights)
    beside = weights.with_suffix(".onnx")
    if beside.is_file() and is_export_of(beside, digest):
        return beside
    target = onnx_cache_dir() / f"{weights.stem}-{digest[:16]}.onnx"
    if target.is_file() and is_export_of(target, digest):
        return target
    if not _torch_installed():
        raise ImportError(f"{weights} has no current ONNX export beside it, and exporting one needs torch: "
                          f"pass a .onnx model, or {install_hint('torch')}")
    log.info("exporting %s to ONNX for the CPU engine (%s)", weights, target)
    if "mediapipe" in sys.modules and "torch._dynamo" not in sys.modules:
        # Loading torch's stack after mediapipe's native library segfaults (see detector._mediapipe):
        # a process that already detects faces (the GUI loading a .pt) exports in a child process.
        _export_in_child(weights, target)
    else:
        from .onnx_export import export_onnx

        model, info = load_checkpoint(weights)
        export_onnx(model, info, target, source=weights)
    return target


def _export_in_child(weights: Path, target: Path) -> None:
    command = [sys.executable, "-m", "sdfl_core.cli", "export", "--weights", str(weights), "--out", str(target)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        raise CheckpointError(f"exporting {weights} to ONNX failed: {lines[-1]}")


def load_predictor(weights: str | Path | None = None, device: str = "auto", engine: str = "auto",
                   num_threads: int | None = None):
    """A predictor for a checkpoint (.pt) or ONNX export (.onnx); None means the shipped SDFL model.

    engine 'auto' runs ONNX Runtime on the CPU (2-5x faster than eager torch here) and torch on CUDA.
    A ``.pt`` on the CPU runs through its ONNX export (``onnx_for_checkpoint``).
    """
    weights = Path(weights) if weights else default_weights("sdfl")
    if not weights.is_file():
        raise FileNotFoundError(f"model file not found: {weights}")
    if engine not in ("auto", "torch", "onnxruntime"):
        raise ValueError(f"engine must be auto, torch or onnxruntime, got {engine!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if weights.suffix == ".onnx":
        if engine == "torch" or device == "cuda":
            raise ValueError("an .onnx model runs on ONNX Runtime on the CPU only; pass a .pt checkpoint for torch/CUDA")
        return OnnxPredictor(weights, num_threads)
    device = _resolve_device(device)
    if engine == "auto":
        engine = "torch" if device == "cuda" else "onnxruntime"
    if engine == "onnxruntime":
        return OnnxPredictor(onnx_for_checkpoint(weights), num_threads)
    model, info = load_checkpoint(weights)
    return TorchPredictor(model, info, device)
