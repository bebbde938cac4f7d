"""Training-time augmentation (paper IV-B) on top of the shared crop geometry of ``sdfl_core.crops``.

Geometry (rotation, translation, scale, face-box jitter, flip) is one affine warp, so pixels and points
always move together; photometric changes and occlusion never touch the points.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from sdfl_core import crops
from sdfl_core.occluders import occlude_random, paint, random_patch
from sdfl_core.schemas import Schema


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 40.0
    """Max |angle| in degrees; drawn uniformly with probability ``rotation_prob``, else within +-10."""
    rotation_prob: float = 0.5
    translation: float = 0.08
    """Max centre shift as a fraction of the crop side (the paper's +-30 px of 256 is 0.12 of the image)."""
    scale: float = 0.1
    aspect: float = 0.08
    """Face-box jitter: independent width/height change so detector boxes of other shapes are covered."""
    flip: float = 0.5
    occlusion: float = 0.5
    occlusion_area: float = 0.2
    occlusion_shapes: float = 0.0
    """Share of the occluded crops whose occluder is drawn as ``sdfl occlusion`` draws it (a rectangle or a
    blob, colour or texture, covering ``occlusion_levels`` percent of the landmark box) instead of the crop
    rectangle of ``occlusion_area``."""
    occlusion_levels: tuple[float, float] = (5.0, 50.0)
    """Range of the landmark-box cover (percent, drawn uniformly) of those occluders."""
    texture_side: tuple[float, float] = (0.0, 0.0)
    """For those occluders: the longer side, in pixels (drawn uniformly in this range), that the texture image
    (another training face's pre-crop) is resized to before the occluder's patch is cut from it; (0, 0) keeps it
    as it is. ``sdfl occlusion`` cuts its patches from images of at most 256 px and enlarges one that is smaller
    than the occluder, so a large occluder there often holds a whole other face; a small side here does the same."""
    color: float = 0.4
    blur: float = 0.2
    gray: float = 0.1
    noise: float = 0.2
    ramp_epochs: int = 0
    """Curriculum: rotation and occlusion grow linearly to full strength over this many epochs
    (regression from scratch stalls at the mean shape when it starts on the hardest crops)."""

    def __post_init__(self) -> None:
        levels = tuple(self.occlusion_levels)
        if len(levels) != 2 or not all(isinstance(v, (int, float)) for v in levels) or not 0 < levels[0] <= levels[1] <= 100:
            raise ValueError(f"augment.occlusion_levels must be [low, high] percentages with 0 < low <= high <= 100, "
                             f"got {list(self.occlusion_levels)}")
        if not 0.0 <= self.occlusion_shapes <= 1.0:
            raise ValueError(f"augment.occlusion_shapes must be in [0, 1], got {self.occlusion_shapes}")
        object.__setattr__(self, "occlusion_levels", tuple(float(v) for v in levels))
        side = tuple(self.texture_side)
        if len(side) != 2 or not all(isinstance(v, (int, float)) for v in side) or not (
                side == (0, 0) or 0 < side[0] <= side[1]):
            raise ValueError(f"augment.texture_side must be [0, 0] (off) or [low, high] pixels with 0 < low <= high, "
                             f"got {list(self.texture_side)}")
        object.__setattr__(self, "texture_side", tuple(float(v) for v in side))

    def at_epoch(self, epoch: int) -> AugmentConfig:
        if self.ramp_epochs <= 0 or epoch >= self.ramp_epochs:
            return self
        t = (epoch + 1) / (self.ramp_epochs + 1)
        # Small rotations (up to 10 deg) from the start, but never more than the configured maximum.
        rotation = min(self.rotation, max(10.0, self.rotation * t))
        return replace(self, rotation=rotation, occlusion=self.occlusion * t,
                       translation=self.translation * max(0.5, t), ramp_epochs=0)


def sample_crop(points: np.ndarray, crop_scale: float, out_size: int, cfg: AugmentConfig | None,
                rng: np.random.Generator) -> np.ndarray:
    """The affine (image -> crop pixels) of a jittered crop around the landmarks; no jitter when cfg is None."""
    box = crops.landmark_box(points)
    center, side = crops.square_from_box(box, crop_scale)
    angle = 0.0
    if cfg is not None:
        w, h = box[2], box[3]
        w *= 1 + rng.uniform(-cfg.aspect, cfg.aspect)
        h *= 1 + rng.uniform(-cfg.aspect, cfg.aspect)
        side = crop_scale * max(w, h) * (1 + rng.uniform(-cfg.scale, cfg.scale))
        center = center + rng.uniform(-cfg.translation, cfg.translation, size=2) * side
        limit = cfg.rotation if rng.random() < cfg.rotation_prob else min(10.0, cfg.rotation)
        angle = rng.uniform(-limit, limit)
    return crops.crop_affine(center, side, out_size, angle)


def flip_crop(crop: np.ndarray, units: np.ndarray, schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a crop and its points (crop units) with the schema's mirror map."""
    return np.ascontiguousarray(crop[:, ::-1]), crops.mirror_units(units, schema.mirror)


def occlude(crop: np.ndarray, area: float, rng: np.random.Generator, texture: np.ndarray | None = None) -> np.ndarray:
    """Paint a rectangle of about ``area`` of the crop with a random colour or a texture patch.

    Returns the (H, W) boolean mask of covered pixels.
    """
    patch = random_patch(crop.shape[0], area, rng)
    rh, rw = int(patch.h), int(patch.w)
    if texture is not None and texture.shape[0] >= rh and texture.shape[1] >= rw:
        ty = int(rng.integers(0, texture.shape[0] - rh + 1))
        tx = int(rng.integers(0, texture.shape[1] - rw + 1))
        paint(crop, [patch], texture[ty:ty + rh, tx:tx + rw])
    else:
        paint(crop, [patch], rng.integers(0, 256, size=3, dtype=np.uint8))
    return patch.mask(crop.shape[:2])


def photometric(crop: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    img = crop.astype(np.float32)
    if rng.random() < cfg.color:
        alpha = rng.uniform(0.6, 1.4)  # contrast
        beta = rng.uniform(-40, 40)  # brightness
        img = (img - img.mean()) * alpha + img.mean() + beta
        gain = rng.uniform(0.85, 1.15, size=3)  # white balance
        img = img * gain
    if rng.random() < cfg.gray:
        g = img @ np.array([0.114, 0.587, 0.299], np.float32)
        img = np.repeat(g[..., None], 3, axis=2)
    if rng.random() < cfg.blur:
        k = int(rng.choice([3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.random() < cfg.noise:
        img = img + rng.normal(0, rng.uniform(2, 10), size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def augment(image: np.ndarray, points: np.ndarray, schema: Schema, crop_scale: float, out_size: int,
            cfg: AugmentConfig | None, rng: np.random.Generator, texture: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """One training crop (out_size x out_size BGR uint8) and its points in crop units (N, 2)."""
    crop, units, _ = augment_with_occlusion(image, points, schema, crop_scale, out_size, cfg, rng, texture)
    return crop, units


def augment_with_occlusion(image: np.ndarray, points: np.ndarray, schema: Schema, crop_scale: float, out_size: int,
                           cfg: AugmentConfig | None, rng: np.random.Generator, texture: np.ndarray | None = None,
                           occluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``augment`` plus an (N,) bool array: True where the landmark is occluded, by the random occluder or,
    given the dataset's own flags (``occluded``, e.g. COFW's), by what the annotators marked (mirrored
    with the points when the crop is flipped)."""
    crop, _, units, occluded = augment_pair(image, points, schema, crop_scale, out_size, cfg, rng, texture, occluded)
    return crop, units, occluded


def augment_pair(image: np.ndarray, points: np.ndarray, schema: Schema, crop_scale: float, out_size: int,
                 cfg: AugmentConfig | None, rng: np.random.Generator, texture: np.ndarray | None = None,
                 occluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`augment_with_occlusion` as (crop, clean crop, units, occluded): the clean crop is the same crop
    before the random occluder was drawn (the crop itself when none was), for ``distill.clean``. It draws
    the same random numbers, so both functions give the same crops for the same generator."""
    affine = sample_crop(points, crop_scale, out_size, cfg, rng)
    fill = tuple(int(v) for v in rng.integers(0, 256, size=3)) if cfg is not None else (0, 0, 0)
    crop = crops.warp(image, affine, out_size, border_value=fill)
    units = crops.image_to_units(points, affine, out_size)
    occluded = np.zeros(len(units), bool) if occluded is None else np.asarray(occluded, bool).copy()
    if occluded.shape != (len(units),):
        raise ValueError(f"occlusion flags must be {len(units)} booleans, got shape {occluded.shape}")
    if cfg is None:
        return crop, crop, units, occluded
    if rng.random() < cfg.flip:
        crop, units = flip_crop(crop, units, schema)
        occluded = occluded[list(schema.mirror)]
    crop = photometric(crop, cfg, rng)
    if rng.random() < cfg.occlusion:
        clean = crop.copy()
        # The extra draw only when the option is on, so configs without it see the same random stream.
        if cfg.occlusion_shapes > 0 and rng.random() < cfg.occlusion_shapes:
            # Crop units to pixel-centre coordinates: the pixel of a point is floor(units * size).
            level = rng.uniform(*cfg.occlusion_levels)
            if texture is not None and cfg.texture_side[1] > 0:  # the extra draw only when the option is on
                scale = rng.uniform(*cfg.texture_side) / max(texture.shape[:2])
                texture = cv2.resize(texture, None, fx=scale, fy=scale,
                                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            shaped = occlude_random(crop, units * out_size - 0.5, level, rng, () if texture is None else (texture,))
            return shaped.image, clean, units, occluded | ~shaped.visible
        mask = occlude(crop, cfg.occlusion_area, rng, texture)
        return crop, clean, units, occluded | points_in_mask(units, mask)
    return crop, crop, units, occluded


def points_in_mask(units: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) bool: the crop pixel under each point (crop units) is set in ``mask``; points off the crop are False."""
    size = mask.shape[0]
    pix = np.floor(units * size).astype(int)
    inside = ((pix >= 0) & (pix < size)).all(axis=1)
    hit = np.zeros(len(units), bool)
    hit[inside] = mask[pix[inside, 1], pix[inside, 0]]
    return hit
