"""`sdfl export`: checkpoint -> self-describing ONNX model (landmarks, edge_weights), dynamic batch."""
from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from .checkpoint import CheckpointError, ModelInfo, _umask, load_checkpoint
from .model import ModelConfig, SDFLModel

log = logging.getLogger(__name__)

META_KEY = "sdfl_model_info"


def info_to_json(info: ModelInfo) -> str:
    payload = info.to_payload()
    payload["mask"] = np.asarray(info.mask, bool).astype(int).tolist()
    payload["mean_shape"] = np.asarray(info.mean_shape, np.float32).tolist()
    payload["train_config"] = {}  # the checkpoint keeps it; the ONNX file only needs to run
    return json.dumps(payload)


def info_from_json(text: str) -> ModelInfo:
    try:
        payload = json.loads(text)
        payload["mask"] = torch.as_tensor(np.asarray(payload["mask"], bool))
        payload["mean_shape"] = torch.as_tensor(np.asarray(payload["mean_shape"], np.float32))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"ONNX model carries malformed sdfl metadata: {exc}") from exc
    return ModelInfo.from_payload(payload)


def export_onnx(model: SDFLModel, info: ModelInfo, out: str | Path, opset: int = 17) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Export a copy: .float()/.eval()/.cpu() work in place and would change the caller's (training) model.
    model = copy.deepcopy(model).float().eval().to(memory_format=torch.contiguous_format).cpu()
    size = info.config.input_size
    dummy = torch.zeros(2, 3, size, size)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter about the input shape check
            torch.onnx.export(model, (dummy,), tmp, input_names=["image"], output_names=["landmarks", "edge_weights"],
                              dynamic_axes={"image": {0: "batch"}, "landmarks": {0: "batch"}, "edge_weights": {0: "batch"}},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(tmp)
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, info_to_json(info)
        onnx.checker.check_model(proto)
        # Write beside the target and rename: an interrupted export never leaves a half file that the
        # predictor cache would later trust.
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def compare(model: SDFLModel, onnx_path: str | Path, batch: int = 3, seed: int = 0) -> float:
    """Max absolute difference of both outputs between torch and ONNX Runtime on random input."""
    from .predictor import OnnxPredictor

    size = model.config.input_size
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(batch, 3, size, size)).astype(np.float32))
    model = copy.deepcopy(model).float().eval().cpu()
    with torch.no_grad():
        ref = [t.numpy() for t in model(x)]
    got = OnnxPredictor(onnx_path).run_tensor(x.numpy())
    return max(float(np.abs(a - b).max()) if a.size else 0.0 for a, b in zip(ref, got))


def run(args) -> int:
    from .predictor import default_weights

    weights = args.weights or default_weights("sdfl")
    model, info = load_checkpoint(weights)
    out = export_onnx(model, info, args.out, args.opset)
    print(f"exported {weights} -> {out}")
    if not args.no_check:
        diff = compare(model, out)
        print(f"max |torch - onnxruntime| = {diff:.2e}")
        if diff > 1e-4:
            raise ValueError(f"ONNX Runtime output differs from torch by {diff:.2e} (> 1e-4)")
    return 0


__all__ = ["export_onnx", "compare", "info_from_json", "info_to_json", "META_KEY", "ModelConfig"]
