"""The sdfl metadata of an ONNX model, read and written without torch or the onnx package.

An exported model carries two metadata entries: ``sdfl_model_info`` (the checkpoint's ``ModelInfo`` as
JSON, so inference never re-declares its constants) and ``sdfl_source_sha256`` (the sha256 of the
``.pt`` file it was exported from). A ``.onnx`` beside a ``.pt`` is that checkpoint's export only while
the hash matches; file times say nothing after a clone or a copy.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, ModelInfo

META_KEY = "sdfl_model_info"
SOURCE_KEY = "sdfl_source_sha256"
VISIBILITY_OUTPUT = "visibility"
"""The optional third output of an export: (B, N) probability that each point is visible."""
BATCH_AXIS = "batch"
"""The name of the first (dynamic) axis of an export's input and of every output."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def info_to_json(info: ModelInfo) -> str:
    payload = info.to_payload()
    payload["mask"] = np.asarray(info.mask, bool).astype(int).tolist()
    payload["mean_shape"] = np.asarray(info.mean_shape, np.float32).tolist()
    payload["train_config"] = {}  # the checkpoint keeps it; the ONNX file only needs to run
    return json.dumps(payload)


def info_from_json(text: str) -> ModelInfo:
    """The ``ModelInfo`` of an ONNX model's metadata. Keys this version does not know (a newer sdfl's
    export) are ignored: the network itself is in the file."""
    try:
        payload = json.loads(text)
        payload["mask"] = np.asarray(payload["mask"], bool)
        payload["mean_shape"] = np.asarray(payload["mean_shape"], np.float32)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"ONNX model carries malformed sdfl metadata: {exc}") from exc
    return ModelInfo.from_payload(payload, strict=False)


def _session(path: str | Path):
    import onnxruntime as ort

    from .errors import first_line

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise CheckpointError(f"{path} is not a loadable ONNX model: {first_line(exc)}") from exc


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """The custom metadata map of an ONNX model (read with ONNX Runtime)."""
    return dict(_session(path).get_modelmeta().custom_metadata_map)


def source_sha256(path: str | Path) -> str:
    """The sha256 of the checkpoint an ONNX model was exported from ('' when it does not say)."""
    return onnx_metadata(path).get(SOURCE_KEY, "")


def is_export_of(path: str | Path, digest: str) -> bool:
    """Whether the ONNX model at ``path`` is a current export of the checkpoint with sha256 ``digest``: its
    recorded source is that checkpoint, and a model with visibility has the output (an export made
    before the output existed lacks it and is made again)."""
    session = _session(path)
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get(SOURCE_KEY, "") != digest:
        return False
    try:
        wants_visibility = bool(json.loads(meta[META_KEY])["config"].get("visibility", False))
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError):
        return False
    return not wants_visibility or VISIBILITY_OUTPUT in {o.name for o in session.get_outputs()}
