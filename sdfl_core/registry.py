"""The shipped landmark models by name, and the way from a user's model choice to a file.

A choice is ``"sdfl"`` (the shipped SDFL model), ``"fc"`` (its FC twin, the same recipe with a fully
connected head) or a path to a checkpoint (``.pt``) or ONNX export (``.onnx``).
"""
from __future__ import annotations

from pathlib import Path

from .assets import asset_path

SHIPPED_MODELS = {"sdfl": "sdfl_68", "fc": "fc_68"}
MODEL_CHOICES = tuple(SHIPPED_MODELS)
MODEL_LABELS = {"sdfl": "Shipped SDFL model", "fc": "Shipped FC twin"}
"""How a program names the shipped models to a person (the GUI's model menu)."""
MODEL_FORMATS = ("onnx", "pt")


def default_weights(kind: str = "sdfl", fmt: str = "onnx") -> Path:
    """The shipped model ('sdfl' or its FC twin 'fc'): its ONNX export (what inference runs), or with
    ``fmt='pt'`` the checkpoint it was exported from (for export and training)."""
    if kind not in SHIPPED_MODELS:
        raise ValueError(f"unknown shipped model {kind!r} (known: {', '.join(SHIPPED_MODELS)})")
    if fmt not in MODEL_FORMATS:
        raise ValueError(f"model format must be one of {MODEL_FORMATS}, got {fmt!r}")
    try:
        return asset_path("models", f"{SHIPPED_MODELS[kind]}.{fmt}")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"shipped model missing: {exc} (reinstall sdfl, or pass --weights)") from None


def resolve_weights(choice: str | Path | None = None) -> Path:
    """The model file for a choice: None or 'sdfl' is the shipped SDFL model, 'fc' its twin, anything
    else a path."""
    if choice is None or str(choice) == "":
        return default_weights("sdfl")
    if isinstance(choice, str) and choice in SHIPPED_MODELS:
        return default_weights(choice)
    return Path(choice)


def fc_twin(choice: str | Path) -> str:
    """The FC twin of a model choice: 'fc' for the shipped SDFL model; for a file, the first path part
    that starts with ``sdfl`` renamed to ``fc`` (``runs/sdfl_68/best.pt`` -> ``runs/fc_68/best.pt``, as
    training names its runs) when that file exists; else the shipped twin 'fc'."""
    if str(choice) == "sdfl":
        return "fc"
    path = Path(choice)
    for part in path.parts:
        if part.startswith("sdfl"):
            twin = Path(*[p.replace("sdfl", "fc", 1) if p == part else p for p in path.parts])
            if twin.is_file():
                return str(twin)
    return "fc"


def require_model_file(choice: str | Path) -> Path:
    """``resolve_weights``, and a clear error unless the result is an existing .pt or .onnx file."""
    path = resolve_weights(choice)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix.lower() not in (".pt", ".onnx"):
        raise ValueError(f"{path.name} is not a model file (expected a .pt checkpoint or an .onnx export)")
    return path
