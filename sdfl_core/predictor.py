"""Old names kept for code that still imports them (``onnx_export``, ``training/ship.py``): the runtimes
are ``runners.OnnxRunner`` / ``runners.TorchRunner``, the shipped models ``registry``, and the thing to use
is ``landmarker.load_landmarker``."""
from __future__ import annotations

from .landmarker import load_runner as load_predictor
from .landmarker import onnx_cache_dir, onnx_for_checkpoint
from .registry import MODEL_FORMATS, default_weights
from .runners import OnnxRunner as OnnxPredictor
from .runners import TorchRunner as TorchPredictor

__all__ = ["MODEL_FORMATS", "OnnxPredictor", "TorchPredictor", "default_weights", "load_predictor",
           "onnx_cache_dir", "onnx_for_checkpoint"]
