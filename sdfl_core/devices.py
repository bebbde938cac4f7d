"""torch, when it is there: finding it, choosing the device, and the one native import-order rule.

torch._dynamo (which timm and torchvision pull in) loads triton's native library, and loading it after
mediapipe's segfaults the process (mediapipe 1.2.2, triton of torch 2.14). Every place that loads
mediapipe or torch next to the other goes through :func:`load_torch_native_first`.
"""
from __future__ import annotations

import importlib.util
import sys

from .extras import install_hint, require

DEVICES = ("auto", "cpu", "cuda")


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def import_torch(purpose: str):
    """torch, or an ImportError that says in one line what to install (the base install has no torch)."""
    require("torch", purpose)
    import torch

    return torch


def load_torch_native_first(always: bool = False) -> None:
    """Load torch._dynamo's native libraries now, before mediapipe's: when torch is already imported
    (or with ``always``, whenever torch is installed)."""
    if "torch" in sys.modules or (always and torch_installed()):
        import torch._dynamo  # noqa: F401


def torch_loadable_here() -> bool:
    """False once mediapipe is loaded without torch._dynamo before it: torch's stack would then crash
    this process, and work that needs torch runs in a child process."""
    return "mediapipe" not in sys.modules or "torch._dynamo" in sys.modules


def resolve_device(device: str) -> str:
    """'auto' / 'cpu' / 'cuda' -> 'cpu' or 'cuda'. Without torch (the base install) there is no CUDA
    engine: 'auto' is the CPU and 'cuda' a ValueError saying what to install."""
    if device not in DEVICES:
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cpu" or (device == "auto" and not torch_installed()):
        return "cpu"
    if device == "cuda" and not torch_installed():
        raise ValueError(f"--device cuda runs the model with torch, which the base install leaves out: {install_hint('torch')}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but CUDA is not available on this machine")
    return device
