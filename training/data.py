"""One Dataset over the common Sample type, with images cached as face-centred pre-crops."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sdfl_core import crops
from sdfl_core.datasets import Sample, load_image, load_samples, split_by_group
from sdfl_core.preprocess import to_input
from sdfl_core.schemas import Schema, get_schema

from .augment import AugmentConfig, augment_pair

log = logging.getLogger(__name__)

PRECROP_MARGIN = 2.6
"""Pre-crop side / landmark-box side: leaves room for +-40 deg rotation, scale and shift jitter."""


def precrop(image: np.ndarray, points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A face-centred square of PRECROP_MARGIN x the landmark box, resized to ``size`` (points follow)."""
    center, side = crops.square_from_box(crops.landmark_box(points), PRECROP_MARGIN)
    affine = crops.crop_affine(center, side, size)
    return crops.warp(image, affine, size), crops.transform_points(points, affine)


def load_cached(samples: list[Sample], size: int, schema: Schema) -> tuple[list[np.ndarray], list[np.ndarray], list[Sample]]:
    """Decode and pre-crop every sample once; unreadable images are skipped with a warning naming them."""
    images, points, kept = [], [], []
    for sample in samples:
        if sample.points.shape != (schema.num_points, 2):
            raise ValueError(f"{sample.image_path}: has {sample.points.shape[0]} points, schema {schema.name} needs {schema.num_points}")
        try:
            image = load_image(sample)
        except ValueError as exc:
            log.warning("skipping %s", exc)
            continue
        img, pts = precrop(image, sample.points, size)
        images.append(img)
        points.append(pts)
        kept.append(sample)
    if not kept:
        raise ValueError("no readable training images")
    return images, points, kept


class LandmarkDataset(Dataset):
    """Yields (input (3, S, S), target (N, 2) in crop units, occluded (N,) float: 1 under the random occluder
    or where the dataset's own flags mark the landmark occluded), and with ``with_clean`` a fourth tensor: the
    input before the random occluder was drawn (``distill.clean``).

    ``augment=None`` gives plain crops (nothing occluded but what the flags mark). ``occluded`` holds each
    image's (N,) bool flags, or None for an image without them (300W, YouTube-Faces)."""

    def __init__(self, images: list[np.ndarray], points: list[np.ndarray], schema: Schema, input_size: int,
                 crop_scale: float, norm_mean, norm_std, augment_cfg: AugmentConfig | None, seed: int = 0,
                 occluded: list[np.ndarray | None] | None = None, with_clean: bool = False) -> None:
        self.images, self.points = images, points
        self.with_clean = with_clean
        self.occluded = list(occluded) if occluded is not None else [None] * len(images)
        if len(self.occluded) != len(images):
            raise ValueError(f"{len(self.occluded)} occlusion flag arrays for {len(images)} images")
        self.schema, self.input_size, self.crop_scale = schema, input_size, crop_scale
        self.norm_mean, self.norm_std = norm_mean, norm_std
        self.augment_cfg = augment_cfg
        self.base_augment = augment_cfg
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.base_augment is not None:
            self.augment_cfg = self.base_augment.at_epoch(epoch)

    def crop(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        crop, units, _ = self.crop_with_occlusion(index)
        return crop, units

    def crop_with_occlusion(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        crop, _, units, occluded = self.crop_pair(index)
        return crop, units, occluded

    def crop_pair(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(crop, the crop before its random occluder, units, occluded): :func:`training.augment.augment_pair`."""
        rng = np.random.default_rng((self.seed, self.epoch, index))
        texture = None
        if self.augment_cfg is not None and len(self.images) > 1:
            texture = self.images[int(rng.integers(len(self.images)))]
        return augment_pair(self.images[index], self.points[index], self.schema, self.crop_scale,
                            self.input_size, self.augment_cfg, rng, texture, self.occluded[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        crop, clean, units, occluded = self.crop_pair(index)
        x = to_input(crop, self.norm_mean, self.norm_std)[0]
        item = (torch.from_numpy(x), torch.from_numpy(units.astype(np.float32)), torch.from_numpy(occluded.astype(np.float32)))
        if self.with_clean:
            item += (torch.from_numpy(to_input(clean, self.norm_mean, self.norm_std)[0]),)
        return item


def pose_balance_weights(shapes: np.ndarray, bins: int = 9) -> np.ndarray:
    """Pose-based Data Balancing (Feng et al.; 9 bins in the paper): weights inverse to the population of
    each bin along the first principal component of the Procrustes-aligned shapes. Sums to 1."""
    from scipy.linalg import orthogonal_procrustes

    from sdfl_core.graph import normalize_shapes

    shapes = normalize_shapes(shapes)
    shapes = shapes - shapes.mean(axis=1, keepdims=True)
    reference = shapes.mean(axis=0)
    aligned = np.empty_like(shapes)
    for i, shape in enumerate(shapes):
        rot, _ = orthogonal_procrustes(shape, reference)
        aligned[i] = shape @ rot
    flat = aligned.reshape(len(aligned), -1)
    flat = flat - flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    proj = flat @ vt[0]
    edges = np.linspace(proj.min(), proj.max(), bins + 1)
    which = np.clip(np.digitize(proj, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.float64)
    weights = 1.0 / counts[which]
    return weights / weights.sum()


def gather(entries: list[dict], num_points: int) -> list:
    samples = []
    for entry in entries:
        fmt = str(entry.get("format", "300w")).lower()
        # The readers that take a point count check it against the schema's (300W's defaults to 68).
        options = {"num_points": num_points} if fmt in ("300w", "csv") else {}
        samples.extend(load_samples(entry["path"], fmt, **options))
    return samples


def source_index(samples: list, entries: list[dict], num_points: int) -> np.ndarray:
    """(len(samples),) int: the index of the ``data.train`` / ``data.val`` entry each sample was read from,
    matched by image path (the first entry wins if two list the same image)."""
    owner: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for sample in gather([entry], num_points):
            owner.setdefault(sample.image_path, i)
    missing = [s.image_path for s in samples if s.image_path not in owner]
    if missing:
        raise ValueError(f"{missing[0]}: not read from any of the data entries")
    return np.array([owner[s.image_path] for s in samples], dtype=np.int64)


def val_sources(val_samples: list, data_cfg: dict, num_points: int) -> tuple[list[str], np.ndarray]:
    """The data entries of the validation faces (``data.val`` when given, else ``data.train``): each
    entry's name (its file or folder name without suffix, e.g. ``helen_trainset``) and, per face, the
    index of the entry it was read from."""
    entries = data_cfg["val"] or data_cfg["train"]
    return [Path(entry["path"]).stem for entry in entries], source_index(val_samples, entries, num_points)


def source_weights(samples: list, entries: list[dict], num_points: int) -> np.ndarray | None:
    """Per-sample sampling weights from each entry's ``weight`` (default 1), or None when every entry has
    the default. A weight scales how often each face of that entry is drawn, relative to the others."""
    values = [float(entry.get("weight", 1.0)) for entry in entries]
    if all(v == 1.0 for v in values):
        return None
    return np.asarray(values)[source_index(samples, entries, num_points)]


def split_samples(config: dict) -> tuple[list, list]:
    """The (train, val) samples of a resolved config: ``data.val`` when given, else a split of
    ``data.train`` by group (identity / image), the same for every run with that data and seed."""
    data_cfg = config["data"]
    num_points = get_schema(data_cfg["schema"]).num_points
    if not data_cfg["train"]:
        raise ValueError("config has no training data (data.train is empty)")
    train_samples = gather(data_cfg["train"], num_points)
    if data_cfg["val"]:
        val_samples = gather(data_cfg["val"], num_points)
    else:
        train_samples, val_samples = split_by_group(train_samples, data_cfg["val_fraction"], config["seed"])
    if data_cfg["limit"]:
        train_samples, val_samples = train_samples[: data_cfg["limit"]], val_samples[: max(2, data_cfg["limit"] // 4)]
    if not val_samples:
        raise ValueError("validation split is empty: add data.val or raise data.val_fraction")
    return train_samples, val_samples
