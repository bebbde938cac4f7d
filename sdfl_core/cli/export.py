"""`sdfl export`: export a checkpoint to ONNX and check it against torch."""
from __future__ import annotations

from ..checkpoint import load_checkpoint
from ..onnx_export import compare, export_onnx
from ..registry import default_weights


def run(args) -> int:
    weights = args.weights or default_weights("sdfl", "pt")
    model, info = load_checkpoint(weights)
    out = export_onnx(model, info, args.out, args.opset, source=weights)
    print(f"exported {weights} -> {out}")
    if not args.no_check:
        diff = compare(model, out)
        print(f"max |torch - onnxruntime| = {diff:.2e}")
        if diff > 1e-4:
            raise ValueError(f"ONNX Runtime output differs from torch by {diff:.2e} (> 1e-4)")
    return 0
