"""Self-describing checkpoints: one file carries the weights and everything needed to run them.

``ModelInfo`` is torch-free (ONNX inference reads it from a model's metadata); torch is imported only to
read or write ``.pt`` files.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .devices import import_torch
from .errors import first_line, strip_ansi
from .files import replacing
from .model_config import ModelConfig
from .schemas import Schema, get_schema

if TYPE_CHECKING:
    from .model import SDFLModel

log = logging.getLogger(__name__)

FORMAT = "sdfl-checkpoint"
VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)




class CheckpointError(ValueError):
    """A file that is not, or not a compatible, sdfl checkpoint."""


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs besides the weights. Inference never re-declares these constants."""

    config: ModelConfig
    schema: Schema
    """The landmark schema (a schema name is accepted and looked up)."""
    k: int
    mask: np.ndarray
    mean_shape: np.ndarray
    norm_mean: tuple[float, float, float] = IMAGENET_MEAN
    norm_std: tuple[float, float, float] = IMAGENET_STD
    crop_scale: float = 1.4
    """Crop side = crop_scale x the larger side of the landmark box."""
    detector_box: dict = field(default_factory=dict)
    """Per detector model ('short', 'full'): {dx, dy, scale} mapping its face box to the landmark box
    the model was trained on (centre shift in box widths/heights, size ratio); calibrated on training
    images by training/calibrate.py. Empty = use the detector box as the landmark box."""
    train_config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    name: str = ""
    provenance: dict = field(default_factory=dict)
    """Where the weights came from: the ImageNet source of the backbone (with its file's sha256), the
    sha256 of the resolved training config and of the checkpoint it was warm-started from."""

    def __post_init__(self) -> None:
        if isinstance(self.schema, str):
            object.__setattr__(self, "schema", get_schema(self.schema))

    def to_payload(self) -> dict:
        """The checkpoint form: arrays as numpy (``torch.save`` needs them as tensors, see ``save_checkpoint``)."""
        return {
            "config": self.config.to_dict(),
            "schema": self.schema.name,
            "k": int(self.k),
            "mask": np.asarray(self.mask, bool),
            "mean_shape": np.asarray(self.mean_shape, np.float32),
            "normalization": {"mean": list(self.norm_mean), "std": list(self.norm_std)},
            "crop": {"scale": float(self.crop_scale), "detector_box": {k: dict(v) for k, v in self.detector_box.items()}},
            "train_config": self.train_config,
            "metrics": self.metrics,
            "name": self.name,
            "provenance": self.provenance,
        }

    @classmethod
    def from_payload(cls, payload: dict, strict: bool = True) -> ModelInfo:
        """``payload`` arrays may be tensors or numpy arrays. ``strict=False`` (ONNX models, whose graph
        is in the file) ignores model config keys this version does not know; keys of the payload
        itself that it does not know are always ignored."""
        try:
            config = ModelConfig.from_dict(dict(payload["config"]), strict=strict)
            info = cls(
                config=config,
                schema=str(payload["schema"]),
                k=int(payload["k"]),
                mask=np.asarray(payload["mask"]).astype(bool),
                mean_shape=np.asarray(payload["mean_shape"]).astype(np.float32),
                norm_mean=tuple(payload["normalization"]["mean"]),
                norm_std=tuple(payload["normalization"]["std"]),
                crop_scale=float(payload["crop"]["scale"]),
                detector_box={str(k): dict(v) for k, v in payload["crop"].get("detector_box", {}).items() if isinstance(v, dict)},
                train_config=dict(payload.get("train_config", {})),
                metrics=dict(payload.get("metrics", {})),
                name=str(payload.get("name", "")),
                provenance=dict(payload.get("provenance", {})),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"checkpoint metadata is incomplete or malformed ({exc!r})") from exc
        schema = info.schema
        if schema.num_points != config.num_points:
            raise CheckpointError(f"checkpoint schema {schema.name} has {schema.num_points} points but the model has {config.num_points}")
        return info



def _half(tensor):
    """``tensor`` in float16, or unchanged where float16 would overflow it to infinity."""
    torch = import_torch("saving a checkpoint")
    halved = tensor.half()
    return halved if bool(torch.isfinite(halved).all()) or not bool(torch.isfinite(tensor).all()) else tensor


def round_half(model) -> None:
    """Round ``model``'s floating tensors (weights and buffers) to float16 and back, in place: what a file
    saved with ``half=True`` gives on load."""
    torch = import_torch("rounding a model")
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(_half(tensor).to(tensor.dtype))


def save_checkpoint(path: str | Path, model: SDFLModel, info: ModelInfo, extra: dict | None = None,
                    half: bool = False) -> None:
    """Write atomically (temp file + rename) so an interrupted save never destroys the previous file.

    ``half`` stores floating weights as float16 (for shipping; they are cast back on load), except a tensor
    that float16 cannot hold (e.g. a BatchNorm running variance above 65504), which stays as it is.
    """
    torch = import_torch("saving a checkpoint")
    path = Path(path)
    state = {k: (_half(v) if half and v.is_floating_point() else v).detach().cpu().clone() for k, v in model.state_dict().items()}
    info_payload = info.to_payload()
    info_payload["mask"] = torch.as_tensor(info_payload["mask"])
    info_payload["mean_shape"] = torch.as_tensor(info_payload["mean_shape"])
    payload = {"format": FORMAT, "version": VERSION, "info": info_payload, "state_dict": state}
    if extra:
        payload["extra"] = extra
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def _load_error(path: Path, exc: Exception) -> CheckpointError:
    """A one-line error for a file ``torch.load(weights_only=True)`` refused. torch's own message is
    paragraphs long, has terminal colour codes and suggests ``weights_only=False``, i.e. running code
    from the file: keep only the reason."""
    text = strip_ansi(str(exc))
    unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsupported:
        return CheckpointError(f"{path} is not an sdfl checkpoint: it holds a Python object ({unsupported.group(1)}), "
                               f"and sdfl loads tensors and plain data only")
    detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    reason = detail.group(1).strip() if detail else first_line(exc)
    return CheckpointError(f"{path} is not a readable checkpoint (corrupt or not a torch file): {reason}")


def read_checkpoint(path: str | Path) -> dict:
    """The raw payload, loaded with ``weights_only=True``; clear errors for missing/corrupt/foreign files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    torch = import_torch(f"reading the checkpoint {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage reaches torch's legacy unpickler, which can raise KeyError, IndexError, ...
        raise _load_error(path, exc) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an sdfl checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}, this sdfl reads version {VERSION}")
    return payload


def load_checkpoint(path: str | Path, expect_points: int | None = None) -> tuple[SDFLModel, ModelInfo]:
    """Rebuild the model from a checkpoint, in eval mode on the CPU."""
    payload = read_checkpoint(path)
    from .model import SDFLModel

    info = ModelInfo.from_payload(payload["info"])
    if expect_points is not None and info.config.num_points != expect_points:
        raise CheckpointError(f"{path} predicts {info.config.num_points} points ({info.schema.name}) but {expect_points} are needed")
    model = SDFLModel(info.config, info.mask, info.mean_shape)
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    try:
        if "hidden_bound" in state:  # set by training.ship; the model starts without one
            model.set_hidden_bound(state["hidden_bound"])
        model.load_state_dict(state)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: weights do not match the model they describe: {first_line(exc)}") from exc
    model.eval()
    return model, info
