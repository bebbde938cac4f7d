"""`sdfl export`: checkpoint -> self-describing ONNX model, dynamic batch.

Outputs: ``landmarks`` (B, N, 2) in crop units, ``edge_weights`` (B, N, N) or (B, N, 0), and for a model
with ``config.visibility`` a third, ``visibility`` (B, N): the probability that each point is visible
(the sigmoid is in the graph, so a runtime never sees logits)."""
from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import numpy as np

from .checkpoint import ModelInfo
from .extras import require
from .files import replacing
from .onnx_meta import META_KEY, SOURCE_KEY, VISIBILITY_OUTPUT, file_sha256, info_from_json, info_to_json

require("torch", "ONNX export")
require("onnx", "ONNX export")
import onnx  # noqa: E402
import torch  # noqa: E402

from .model import GraphConv, ModelConfig, SDFLModel  # noqa: E402

log = logging.getLogger(__name__)


class _WithVisibility(torch.nn.Module):
    """The exported graph of a model with visibility: landmarks, edge weights and sigmoid(visibility logits)."""

    def __init__(self, model: SDFLModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        coords, weights, logits = self.model.forward_with_visibility(x)
        return coords, weights, torch.sigmoid(logits)


def output_names(config: ModelConfig) -> list[str]:
    return ["landmarks", "edge_weights"] + ([VISIBILITY_OUTPUT] if config.visibility else [])


def _static_same_padding(model: torch.nn.Module, dummy: torch.Tensor) -> None:
    """Fix the TF-"same" padding of timm's ``Conv2dSame`` layers (the ``tf_`` backbones) for the model's one
    input size, in place. Computed at run time it exports as a chain of shape ops and a Pad fed by them,
    which ONNX Runtime cannot fold into the convolution; timm's own export layer, run once, pads with
    constants, which it can."""
    from timm.layers.conv2d_same import Conv2dSame, Conv2dSameExport

    for module in model.modules():
        if type(module) is Conv2dSame:
            module.__class__ = Conv2dSameExport
            module.pad, module.pad_input_size = None, (0, 0)
    with torch.no_grad():
        model(dummy)  # each layer sets its padding from the size it sees


def export_onnx(model: SDFLModel, info: ModelInfo, out: str | Path, opset: int = 17,
                source: str | Path | None = None) -> Path:
    """Export ``model`` with its ``info`` as metadata. ``source`` is the checkpoint file the model was
    loaded from: its sha256 goes into the metadata, which is how inference knows a ``.onnx`` beside a
    ``.pt`` is still that checkpoint's export."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Export a copy: .float()/.eval()/.cpu() work in place and would change the caller's (training) model.
    model = copy.deepcopy(model).float().eval().to(memory_format=torch.contiguous_format).cpu()
    size = info.config.input_size
    dummy = torch.zeros(2, 3, size, size)
    names = output_names(info.config)
    _static_same_padding(model, dummy)
    for module in model.modules():
        if isinstance(module, GraphConv):
            module.fold_batchnorm()
    graph = _WithVisibility(model) if info.config.visibility else model
    # Written beside the target and renamed: an interrupted export never leaves a half file that the
    # runtime would later trust.
    with replacing(out, suffix=".onnx.tmp") as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter about the input shape check
            torch.onnx.export(graph, (dummy,), tmp, input_names=["image"], output_names=names,
                              dynamic_axes={name: {0: "batch"} for name in ["image", *names]},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(tmp)
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, info_to_json(info)
        if source is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = SOURCE_KEY, file_sha256(source)
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
    return out


def compare(model: SDFLModel, onnx_path: str | Path, batch: int = 3, seed: int = 0) -> float:
    """Max absolute difference of every output (visibility as a probability) between torch and ONNX
    Runtime on random input."""
    from .runners import OnnxRunner, TorchRunner

    size = model.config.input_size
    x = np.random.default_rng(seed).normal(size=(batch, 3, size, size)).astype(np.float32)
    session = OnnxRunner(onnx_path)
    ref = TorchRunner(copy.deepcopy(model).float().eval().cpu(), session.info, "cpu").run_tensor(x)
    got = session.run_tensor(x)
    if ref[2].shape != got[2].shape:
        raise ValueError(f"{onnx_path} has visibility output shape {got[2].shape[1:]}, the model {ref[2].shape[1:]}")
    return max(float(np.abs(a - b).max()) if a.size else 0.0 for a, b in zip(ref, got))


__all__ = ["export_onnx", "compare", "info_from_json", "info_to_json", "META_KEY", "SOURCE_KEY", "ModelConfig"]
