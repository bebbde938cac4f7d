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
from .onnx_meta import BATCH_AXIS, META_KEY, SOURCE_KEY, VISIBILITY_OUTPUT, file_sha256, info_from_json, info_to_json

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


class ShiftedDepthwise(torch.nn.Module):
    """A grouped convolution (G groups of c -> c channels, stride 1) and the eval-mode BatchNorm after it, as
    the sum of c depthwise convolutions over the input with its channels rotated within each group: output
    channel g*c + o reads input channel g*c + (o + s) % c through the s-th of them. The same numbers (up to
    float rounding): ONNX Runtime's CPU kernels run depthwise convolutions much faster than grouped ones with
    a few channels per group (the node embedding's 3x3 conv: benchmarks/export_graph.py)."""

    def __init__(self, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> None:
        super().__init__()
        groups, channels = conv.groups, conv.out_channels
        per = channels // groups
        if conv.in_channels != channels or per < 2 or conv.stride != (1, 1) or conv.dilation != (1, 1):
            raise ValueError(f"not a stride-1 grouped convolution with equal in and out channels: {conv}")
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        weight = conv.weight.detach() * scale[:, None, None, None]  # (C, per, k, k)
        out = torch.arange(channels)
        group_start, within = out - out % per, out % per
        self.convs = torch.nn.ModuleList()
        for shift in range(per):
            source = (within + shift) % per  # the input channel, within its group, that each output reads
            depthwise = torch.nn.Conv2d(channels, channels, conv.kernel_size, padding=conv.padding,
                                        groups=channels, bias=shift == 0)
            depthwise.weight.data = weight[out, source][:, None].clone()
            if shift == 0:
                bias = conv.bias.detach() * scale if conv.bias is not None else 0.0
                depthwise.bias.data = (bn.bias - bn.running_mean * scale).detach() + bias
            self.convs.append(depthwise)
            self.register_buffer(f"channels_{shift}", group_start + source, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)  # shift 0 reads each channel itself
        for shift in range(1, len(self.convs)):
            out = out + self.convs[shift](x[:, getattr(self, f"channels_{shift}")])
        return out


def _depthwise_node_embedding(model: SDFLModel) -> None:
    """The graph head's grouped 3x3 conv and its BatchNorm as a :class:`ShiftedDepthwise`, in place (an
    inference copy only: the BatchNorm's statistics are folded in)."""
    embed = getattr(model, "embed", None)
    if embed is None:
        return
    for i, (conv, bn) in enumerate(zip(embed[:-1], embed[1:])):
        if (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)
                and 1 < conv.groups < conv.in_channels):
            embed[i], embed[i + 1] = ShiftedDepthwise(conv, bn), torch.nn.Identity()


HALF_MIN_ELEMENTS = 1024
"""Smaller weights stay float32: a Cast node costs more than their bytes save."""


def store_exact_halves(proto: onnx.ModelProto, min_elements: int = HALF_MIN_ELEMENTS) -> int:
    """Store each float32 weight whose every value is a float16 number (a checkpoint shipped in float16 holds
    mostly such weights; the BatchNorm folds make the rest) as float16, with a Cast back to float32 in front
    of its readers: the file shrinks and the network computes exactly what it did, since the runtimes fold
    the Cast into the weight when they load the model. Returns the bytes saved."""
    from onnx import TensorProto, helper, numpy_helper

    saved, casts = 0, []
    for index, tensor in enumerate(proto.graph.initializer):
        if tensor.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(tensor)
        if values.size < min_elements:
            continue
        half = values.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), values):
            continue
        stored = numpy_helper.from_array(half, f"{tensor.name}.f16")
        casts.append(helper.make_node("Cast", [stored.name], [tensor.name], name=f"{tensor.name}.to_f32",
                                      to=TensorProto.FLOAT))
        proto.graph.initializer[index].CopyFrom(stored)
        saved += values.nbytes - half.nbytes
    for node in reversed(casts):  # in front of every reader, in the initializers' order
        proto.graph.node.insert(0, node)
    return saved


def export_onnx(model: SDFLModel, info: ModelInfo, out: str | Path, opset: int = 17,
                source: str | Path | None = None, depthwise_embedding: bool = True) -> Path:
    """Export ``model`` with its ``info`` as metadata. ``source`` is the checkpoint file the model was
    loaded from: its sha256 goes into the metadata, which is how inference knows a ``.onnx`` beside a
    ``.pt`` is still that checkpoint's export. ``depthwise_embedding`` exports the node embedding's grouped
    conv as a :class:`ShiftedDepthwise` (off only to measure what that gains)."""
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
    if depthwise_embedding:
        _depthwise_node_embedding(model)
    graph = _WithVisibility(model) if info.config.visibility else model
    # Written beside the target and renamed: an interrupted export never leaves a half file that the
    # runtime would later trust.
    with replacing(out, suffix=".onnx.tmp") as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter about the input shape check
            torch.onnx.export(graph, (dummy,), tmp, input_names=["image"], output_names=names,
                              dynamic_axes={name: {0: BATCH_AXIS} for name in ["image", *names]},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(tmp)
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, info_to_json(info)
        if source is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = SOURCE_KEY, file_sha256(source)
        store_exact_halves(proto)
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
