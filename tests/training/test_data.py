"""Pre-crop cache, the training Dataset and pose-based data balancing."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from synthetic_faces import make_300w_folder

from sdfl_core.checkpoint import IMAGENET_MEAN, IMAGENET_STD
from sdfl_core.datasets import Sample
from sdfl_core.preprocess import to_input
from sdfl_core.schemas import W300
from training.augment import AugmentConfig
from training.data import (
    PRECROP_MARGIN,
    LandmarkDataset,
    gather,
    load_cached,
    pose_balance_weights,
    precrop,
    source_index,
    source_weights,
)

BLOBS = (0, 19, 31, 36, 48, 54)


def blob_image(points, size=300, sigma=1.5):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = sum(np.exp(-((xx - points[i, 0]) ** 2 + (yy - points[i, 1]) ** 2) / (2 * sigma ** 2)) for i in BLOBS)
    return np.repeat(np.clip(img * 255, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_precrop_keeps_points_on_their_pixels(unit_face_shape):
    face = (unit_face_shape * 100 + [170, 140]).astype(np.float32)
    image = blob_image(face)
    crop, pts = precrop(image, face, 128)
    assert crop.shape == (128, 128, 3) and pts.shape == (68, 2)
    # The landmark box is centred and PRECROP_MARGIN times smaller than the pre-crop.
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    np.testing.assert_allclose((lo + hi) / 2, [63.5, 63.5], atol=1e-3)
    assert (hi - lo).max() == pytest.approx(128 / PRECROP_MARGIN, rel=1e-4)
    gray = crop[..., 0].astype(np.float64)
    for i in BLOBS:
        cx, cy = np.round(pts[i]).astype(int)
        win = gray[cy - 3:cy + 4, cx - 3:cx + 4]
        yy, xx = np.mgrid[cy - 3:cy + 4, cx - 3:cx + 4]
        assert win.max() > 60, f"no blob at point {i}"
        centroid = np.array([(win * xx).sum(), (win * yy).sum()]) / win.sum()
        assert np.linalg.norm(centroid - pts[i]) < 1.0


@pytest.fixture
def image_samples(tmp_path, face_shape):
    rng = np.random.default_rng(0)
    samples = []
    for i in range(4):
        img = rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), img)
        samples.append(Sample(str(path), face_shape + rng.uniform(-3, 3, size=(68, 2))))
    return samples


def test_load_cached_skips_an_unreadable_image_and_names_it(tmp_path, image_samples, caplog):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"this is not a jpeg at all")
    samples = image_samples[:2] + [Sample(str(bad), image_samples[0].points)] + image_samples[2:]
    with caplog.at_level(logging.WARNING, logger="training.data"):
        images, points, kept = load_cached(samples, 96, W300)
    assert len(images) == len(points) == len(kept) == 4
    assert all(s.image_path != str(bad) for s in kept)
    assert images[0].shape == (96, 96, 3) and points[0].shape == (68, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "corrupt.jpg" in warnings[0]


def test_load_cached_rejects_a_point_count_that_does_not_fit_the_schema(image_samples):
    odd = Sample(image_samples[0].image_path, np.zeros((29, 2)) + 50)
    with pytest.raises(ValueError, match="29 points.*300w needs 68"):
        load_cached(image_samples + [odd], 96, W300)


def test_load_cached_raises_when_nothing_is_readable(tmp_path, face_shape):
    samples = []
    for i in range(2):
        bad = tmp_path / f"bad{i}.png"
        bad.write_bytes(b"\x00" * 10)
        samples.append(Sample(str(bad), face_shape))
    with pytest.raises(ValueError, match="no readable"):
        load_cached(samples, 96, W300)


@pytest.fixture
def cached(image_samples):
    images, points, _ = load_cached(image_samples, 128, W300)
    return images, points


DEFAULT_AUGMENT = AugmentConfig()


def make_dataset(cached, cfg=DEFAULT_AUGMENT, seed=0, size=64):
    images, points = cached
    return LandmarkDataset(images, points, W300, size, 1.4, IMAGENET_MEAN, IMAGENET_STD, cfg, seed)


def test_dataset_items_are_normalised_tensors_with_unit_targets(cached):
    ds = make_dataset(cached)
    assert len(ds) == 4
    for i in range(len(ds)):
        x, y, occluded = ds[i]
        assert x.shape == (3, 64, 64) and x.dtype == torch.float32
        assert occluded.shape == (68,) and set(occluded.unique().tolist()) <= {0.0, 1.0}
        assert y.shape == (68, 2) and y.dtype == torch.float32
        assert y.min() > -0.1 and y.max() < 1.1
        # Normalised with the ImageNet mean/std: uint8 [0, 255] maps to about [-2.1, 2.6].
        assert x.min() >= -2.2 and x.max() <= 2.7 and x.min() < -0.5
        crop, units, flags = ds.crop_with_occlusion(i)
        np.testing.assert_allclose(x.numpy(), to_input(crop, IMAGENET_MEAN, IMAGENET_STD)[0], atol=1e-6)
        np.testing.assert_allclose(y.numpy(), units, atol=1e-6)
        np.testing.assert_array_equal(occluded.numpy(), flags.astype(np.float32))


def test_dataset_plain_crops_centre_the_landmark_box(cached):
    ds = make_dataset(cached, cfg=None)
    _, y, occluded = ds[0]
    assert not occluded.any()
    lo, hi = y.min(0).values.numpy(), y.max(0).values.numpy()
    np.testing.assert_allclose((lo + hi) / 2, [0.5, 0.5], atol=1e-4)


def test_dataset_is_deterministic_per_seed_epoch_and_index(cached):
    a, b = make_dataset(cached), make_dataset(cached)
    x0, y0, _ = a[1]
    torch.testing.assert_close(a[1][0], x0)
    torch.testing.assert_close(b[1][0], x0)
    torch.testing.assert_close(b[1][1], y0)
    assert not torch.equal(a[2][1], y0), "different indices should get different augmentations"
    b.set_epoch(1)
    assert not torch.equal(b[1][1], y0), "a new epoch should draw new augmentations"
    b.set_epoch(0)
    torch.testing.assert_close(b[1][1], y0)
    assert not torch.equal(make_dataset(cached, seed=7)[1][1], y0)


def test_set_epoch_applies_the_augmentation_ramp(cached):
    cfg = AugmentConfig(rotation=40, occlusion=0.5, ramp_epochs=4)
    ds = make_dataset(cached, cfg)
    ds.set_epoch(0)
    assert ds.augment_cfg.rotation < 40 and ds.augment_cfg.occlusion < 0.5
    ds.set_epoch(4)
    assert ds.augment_cfg == cfg


def yawed(shape: np.ndarray, degrees: float) -> np.ndarray:
    """Turn a frontal unit face about the vertical axis (depth from a half-ellipsoid, nose in front)."""
    x, y = shape[:, 0], shape[:, 1]
    z = 0.5 * np.sqrt(np.clip(1 - (2 * x) ** 2, 0, None))
    z[27:36] += 0.15
    a = np.radians(degrees)
    return np.stack([x * np.cos(a) + z * np.sin(a), y], 1)


def test_pose_balance_weights_favour_rare_poses(unit_face_shape):
    rng = np.random.default_rng(0)
    frontal = [unit_face_shape + rng.normal(0, 0.004, size=(68, 2)) for _ in range(40)]
    rare = [yawed(unit_face_shape, d) + rng.normal(0, 0.004, size=(68, 2)) for d in (-45, -40, 40, 45)]
    # Scale, position and in-plane rotation are not pose: the weights must ignore them.
    shapes = []
    for s in frontal + rare:
        a = np.radians(rng.uniform(-20, 20))
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        shapes.append(s @ rot.T * rng.uniform(50, 150) + rng.uniform(0, 300, size=2))
    weights = pose_balance_weights(np.stack(shapes).astype(np.float32))
    assert weights.shape == (44,)
    assert weights.sum() == pytest.approx(1.0)
    assert (weights > 0).all()
    assert weights[40:].min() > 3 * weights[:40].max()



def test_dataset_labels_the_flagged_landmarks_of_flagged_images(cached):
    images, points = cached
    flags = np.zeros(68, bool)
    flags[48:68] = True  # mouth flagged occluded in the first image only
    ds = LandmarkDataset(images, points, W300, 64, 1.4, IMAGENET_MEAN, IMAGENET_STD, None,
                         occluded=[flags] + [None] * (len(images) - 1))
    np.testing.assert_array_equal(ds[0][2].numpy(), flags.astype(np.float32))
    assert not ds[1][2].numpy().any()
    with pytest.raises(ValueError, match="1 occlusion flag arrays for 4 images"):
        LandmarkDataset(images, points, W300, 64, 1.4, IMAGENET_MEAN, IMAGENET_STD, None, occluded=[flags])


def test_source_weights_follow_each_face_to_its_entry(tmp_path):
    first = make_300w_folder(tmp_path / "a", count=3, seed=0)
    second = make_300w_folder(tmp_path / "b", count=4, seed=1)
    entries = [{"path": str(first), "format": "300w", "weight": 3}, {"path": str(second), "format": "300w", "weight": 0}]
    samples = gather(entries, 68)[::-1]  # the order of the samples does not matter
    np.testing.assert_array_equal(source_index(samples, entries, 68), [1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(source_weights(samples, entries, 68), [0, 0, 0, 0, 3, 3, 3])
    assert source_weights(samples, [{**e, "weight": 1} for e in entries], 68) is None  # all default: no weighting


def test_source_index_names_a_face_from_no_entry(tmp_path):
    first = make_300w_folder(tmp_path / "a", count=2)
    other = gather([{"path": str(make_300w_folder(tmp_path / "b", count=1)), "format": "300w"}], 68)
    with pytest.raises(ValueError, match="face00.jpg: not read from any of the data entries"):
        source_index(other, [{"path": str(first), "format": "300w"}], 68)


def test_clean_copy_is_the_crop_before_its_occluder_and_changes_nothing_else(cached):
    images, points = cached
    quiet = dict(flip=0.5, color=0.4, blur=0.2, gray=0.1, noise=0.2)
    for occlusion, shapes in ((1.0, 0.0), (1.0, 1.0), (0.0, 0.0)):
        cfg = AugmentConfig(occlusion=occlusion, occlusion_shapes=shapes, **quiet)
        plain = LandmarkDataset(images, points, W300, 64, 1.4, IMAGENET_MEAN, IMAGENET_STD, cfg, 3)
        paired = LandmarkDataset(images, points, W300, 64, 1.4, IMAGENET_MEAN, IMAGENET_STD, cfg, 3, with_clean=True)
        for i in range(len(plain)):
            x, y, occluded = plain[i]
            px, py, pocc, clean = paired[i]
            # The same random stream: the occluded crop, targets and flags are those of the plain dataset.
            assert torch.equal(x, px) and torch.equal(y, py) and torch.equal(occluded, pocc)
            assert clean.shape == x.shape and clean.dtype == x.dtype
            differs = (clean != x).any(dim=0)
            if occlusion:
                # The occluder painted part of the crop; the rest is the same pixels.
                assert 0 < differs.float().mean() < 0.9
                # Landmarks flagged as covered sit on painted pixels (the pixel under each point).
                pix = np.clip(np.floor(y.numpy() * 64).astype(int), 0, 63)
                hit = differs.numpy()[pix[:, 1], pix[:, 0]]
                assert not (occluded.numpy().astype(bool) & ~hit).any()
            else:
                assert not differs.any()
