"""Old names kept for the two modules that still import them (``onnx_export``, ``training/ship.py``; see the
follow-ups): the runtimes are ``runners.OnnxRunner`` / ``runners.TorchRunner`` and the shipped models are in
``registry``. A landmark model is loaded with ``landmarker.load_landmarker``. Nothing here imports
``landmarker``, so that ``landmarker -> onnx_export -> predictor`` closes no cycle."""
from __future__ import annotations

from .registry import default_weights
from .runners import OnnxRunner as OnnxPredictor
from .runners import TorchRunner as TorchPredictor

__all__ = ["OnnxPredictor", "TorchPredictor", "default_weights"]
