"""COFW ``.mat`` files (v5 and v7.3): images, boxes and 29 points with occlusion flags in one file."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .base import Sample, require_file

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

_COFW_KEYS = {"train": ("IsTr", "bboxesTr", "phisTr"), "test": ("IsT", "bboxesT", "phisT")}


def _to_uint8_image(array: np.ndarray, where: str) -> np.ndarray:
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8:
        if image.dtype.kind == "f" and image.size and float(image.max()) <= 1.0:
            image = image * 255.0
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)  # MATLAB stores RGB
    elif image.ndim != 2:
        raise ValueError(f"{where}: image has unsupported shape {image.shape}")
    return np.ascontiguousarray(image)


def _read_cofw_v5(mat_file: Path, keys: tuple[str, str, str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    data = loadmat(str(mat_file), variable_names=list(keys))
    missing = [k for k in keys if k not in data]
    if missing:
        raise KeyError(", ".join(missing))
    images = [np.asarray(cell) for cell in np.asarray(data[keys[0]], dtype=object).ravel()]
    return images, np.asarray(data[keys[1]], np.float64), np.asarray(data[keys[2]], np.float64)


def _read_cofw_v73(mat_file: Path, keys: tuple[str, str, str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise ValueError(f"{mat_file} is a MATLAB v7.3 (HDF5) file; install h5py to read it") from None
    with h5py.File(mat_file, "r") as f:
        missing = [k for k in keys if k not in f]
        if missing:
            raise KeyError(", ".join(missing))
        # HDF5 holds MATLAB's column-major arrays transposed; cells are object references.
        images = []
        for ref in np.asarray(f[keys[0]]).ravel():
            raw = np.asarray(f[ref])
            images.append(raw.T if raw.ndim == 2 else raw.transpose(2, 1, 0))
        return images, np.asarray(f[keys[1]], np.float64).T, np.asarray(f[keys[2]], np.float64).T


def read_cofw(mat_file: str | Path, split: str = "train") -> list[Sample]:
    """Read COFW from its ``.mat`` (``IsTr/bboxesTr/phisTr`` or ``IsT/bboxesT/phisT``).

    Rows of ``phis``: 29 x, 29 y, 29 occlusion flags (1 = occluded, so ``visible = flag == 0``); boxes are
    x, y, w, h. Coordinates are kept as stored. Images live in the file and come back in ``Sample.image``
    (BGR or gray uint8) with ``image_path = "<mat>#<split>/<index>"``. Both MATLAB v5 (scipy) and v7.3
    (HDF5, needs h5py) files are read.
    """
    if split not in _COFW_KEYS:
        raise ValueError(f"COFW split must be 'train' or 'test', got {split!r}")
    mat_file = require_file(mat_file, "COFW .mat")
    keys = _COFW_KEYS[split]
    with open(mat_file, "rb") as f:
        head = f.read(520)
    # MATLAB v7.3 files are HDF5 behind a 512-byte user block; plain HDF5 starts with the signature.
    is_hdf5 = _HDF5_SIGNATURE in (head[:8], head[512:520])
    try:
        images, boxes, phis = (_read_cofw_v73 if is_hdf5 else _read_cofw_v5)(mat_file, keys)
    except KeyError as exc:
        other = "test" if split == "train" else "train"
        raise ValueError(f"{mat_file} has no COFW {split} split (missing {exc.args[0]}); try split={other!r}") from None
    except (OSError, ValueError, NotImplementedError, TypeError) as exc:
        if isinstance(exc, ValueError) and "h5py" in str(exc):
            raise
        raise ValueError(f"cannot read COFW .mat {mat_file}: {exc}") from None
    n = len(images)
    if phis.ndim != 2 or phis.shape[1] % 3 != 0:
        raise ValueError(f"{mat_file}: {keys[2]} must be (N, 3 * points), got {phis.shape}")
    if phis.shape[0] != n or boxes.shape != (n, 4):
        raise ValueError(f"{mat_file}: {n} images but {keys[2]} {phis.shape} and {keys[1]} {boxes.shape}")
    if n == 0:
        raise ValueError(f"{mat_file}: COFW {split} split is empty")
    k = phis.shape[1] // 3
    samples = []
    for i in range(n):
        label = f"{mat_file}#{split}/{i}"
        samples.append(
            Sample(
                image_path=label,
                points=np.stack([phis[i, :k], phis[i, k : 2 * k]], axis=1),
                box=boxes[i],
                visible=phis[i, 2 * k :] == 0,
                occluded=phis[i, 2 * k :] != 0,
                group=label,
                image=_to_uint8_image(images[i], label),
            )
        )
    return samples

