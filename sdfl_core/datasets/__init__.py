"""Dataset readers: every annotation format becomes a list of one common :class:`Sample`.

``load_samples(path, fmt)`` picks the reader; the readers live in one module per format family. The
names below load on first use, so that ``FORMATS`` costs the CLI no OpenCV import.
"""
from __future__ import annotations

import importlib
from pathlib import Path

FORMATS = ("300w", "wflw", "cofw", "csv", "coco")

_READERS = {"300w": ("pts", "read_300w"), "wflw": ("wflw", "read_wflw"), "cofw": ("cofw", "read_cofw"),
            "csv": ("tables", "read_landmark_csv"), "coco": ("tables", "read_coco")}
_EXPORTS = {
    "Sample": "base", "load_image": "base", "readable_images": "base",
    "read_pts": "pts", "read_300w": "pts", "read_wflw": "wflw", "WFLW_ATTRIBUTES": "wflw", "read_cofw": "cofw",
    "read_landmark_csv": "tables", "read_coco": "tables", "split_by_group": "splits",
}
__all__ = ["FORMATS", "load_samples", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_samples(path: str | Path, fmt: str, **options) -> list:
    """Read ``path`` with the reader for ``fmt`` (one of :data:`FORMATS`); ``options`` go to the reader."""
    key = str(fmt).lower()
    if key not in _READERS:
        raise ValueError(f"unknown dataset format {fmt!r} (valid: {', '.join(FORMATS)})")
    module, reader = _READERS[key]
    return getattr(importlib.import_module(f"{__name__}.{module}"), reader)(path, **options)
