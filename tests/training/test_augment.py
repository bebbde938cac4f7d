"""Training augmentation: geometry moves pixels and points together; the rest never touches points."""
from __future__ import annotations

import numpy as np
import pytest

from sdfl_core.schemas import W300
from training.augment import (
    AugmentConfig,
    augment,
    augment_with_occlusion,
    flip_crop,
    occlude,
    points_in_mask,
)

SIZE = 96
# Points drawn as blobs; none is the mirror partner of another, so a wrong reorder after a flip shows.
BLOBS = (0, 19, 31, 36, 48)
GEOMETRY_ONLY = dict(color=0.0, blur=0.0, gray=0.0, noise=0.0, occlusion=0.0)


def blob_image(points: np.ndarray, indices=BLOBS, size: int = 256, sigma: float = 1.5) -> np.ndarray:
    """Black BGR image with a bright Gaussian blob centred (sub-pixel) on each chosen point."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.zeros((size, size))
    for i in indices:
        x, y = points[i]
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    img = np.clip(img * 255, 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def blob_centroid(crop: np.ndarray, at: np.ndarray, radius: int = 3) -> tuple[np.ndarray, float]:
    """Intensity centroid (pixels) and peak in a window around ``at``."""
    gray = crop[..., 1].astype(np.float64)
    cx, cy = int(round(at[0])), int(round(at[1]))
    y0, x0 = max(0, cy - radius), max(0, cx - radius)
    win = gray[y0:cy + radius + 1, x0:cx + radius + 1]
    yy, xx = np.mgrid[y0:y0 + win.shape[0], x0:x0 + win.shape[1]]
    total = win.sum()
    if total == 0:
        return np.array([np.nan, np.nan]), 0.0
    return np.array([(win * xx).sum() / total, (win * yy).sum() / total]), float(win.max())


@pytest.fixture(scope="module")
def face(unit_face_shape) -> np.ndarray:
    return (unit_face_shape * 90 + 128).astype(np.float32)


def test_unit_face_is_mirror_symmetric(face):
    # The blob tests rely on it: flipping the image and reordering the points gives the same shape.
    np.testing.assert_allclose(W300.flip_points(face, 257), face, atol=1e-4)


def check_blobs(crop: np.ndarray, units: np.ndarray, expected_at) -> None:
    for i in expected_at:
        at = units[i] * SIZE - 0.5
        centroid, peak = blob_centroid(crop, at)
        assert peak > 60, f"no blob at point {i} ({at})"
        assert np.linalg.norm(centroid - at) < 1.0, f"point {i}: blob at {centroid}, point at {at}"


def test_plain_crop_keeps_points_on_pixels_and_centres_the_landmark_box(face):
    crop, units = augment(blob_image(face), face, W300, 1.4, SIZE, None, np.random.default_rng(0))
    assert crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8
    assert units.shape == (68, 2)
    lo, hi = units.min(axis=0), units.max(axis=0)
    np.testing.assert_allclose((lo + hi) / 2, [0.5, 0.5], atol=1e-4)
    # crop side = 1.4 x the larger landmark-box side.
    assert (hi - lo).max() == pytest.approx(1 / 1.4, abs=1e-4)
    check_blobs(crop, units, BLOBS)


@pytest.mark.parametrize("seed", range(6))
def test_geometric_augmentation_moves_pixels_with_points(face, seed):
    cfg = AugmentConfig(rotation=35, rotation_prob=1.0, translation=0.08, scale=0.15, flip=0.0, **GEOMETRY_ONLY)
    image = blob_image(face)
    crop, units = augment(image, face, W300, 1.4, SIZE, cfg, np.random.default_rng(seed))
    check_blobs(crop, units, BLOBS)
    plain = augment(image, face, W300, 1.4, SIZE, None, np.random.default_rng(seed))[1]
    assert np.abs(units - plain).max() > 0.01, "the jitter did not move the crop"


@pytest.mark.parametrize("seed", range(6))
def test_flip_reorders_points_with_the_schema_mirror(face, seed):
    cfg = AugmentConfig(rotation=25, rotation_prob=1.0, flip=1.0, **GEOMETRY_ONLY)
    crop, units = augment(blob_image(face), face, W300, 1.4, SIZE, cfg, np.random.default_rng(seed))
    # The blob of point i is now point mirror[i] (e.g. the right eye corner 36 became the left one, 45) ...
    check_blobs(crop, units, [W300.mirror[i] for i in BLOBS])
    # ... and the index that was drawn points at a dark spot.
    for i in BLOBS:
        _, peak = blob_centroid(crop, units[i] * SIZE - 0.5, radius=1)
        assert peak < 30, f"point {i} still sits on a blob after the flip"


def test_flip_twice_is_identity(face):
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    units = rng.uniform(0, 1, size=(68, 2)).astype(np.float32)
    once = flip_crop(crop, units, W300)
    twice = flip_crop(*once, W300)
    assert not np.array_equal(once[0], crop)
    np.testing.assert_array_equal(twice[0], crop)
    np.testing.assert_allclose(twice[1], units, atol=1e-6)
    # Crop units mirror about 0.5: pixel column c becomes S - 1 - c.
    np.testing.assert_allclose(once[1][W300.mirror[36], 0], 1 - units[36, 0], atol=1e-6)
    np.testing.assert_array_equal(once[0][:, 0], crop[:, -1])


def eye_angle(units: np.ndarray) -> float:
    d = units[45] - units[36]
    return float(np.degrees(np.arctan2(d[1], d[0])))


@pytest.mark.parametrize("prob, limit", [(1.0, 20.0), (0.0, 10.0)])
def test_rotation_stays_in_range(face, prob, limit):
    cfg = AugmentConfig(rotation=20, rotation_prob=prob, flip=0.0, **GEOMETRY_ONLY)
    image = np.zeros((256, 256, 3), np.uint8)
    angles = np.array([eye_angle(augment(image, face, W300, 1.4, 64, cfg, np.random.default_rng(s))[1])
                       for s in range(150)])
    assert np.abs(angles).max() <= limit + 1e-3
    assert np.abs(angles).max() > 0.8 * limit, "rotations never use the configured range"
    assert (angles > 0).any() and (angles < 0).any()


def test_no_augmentation_means_no_rotation(face):
    units = augment(np.zeros((256, 256, 3), np.uint8), face, W300, 1.4, 64, None, np.random.default_rng(0))[1]
    assert eye_angle(units) == pytest.approx(0.0, abs=1e-3)


def test_occlusion_covers_about_the_configured_area():
    fractions = []
    for seed in range(300):
        crop = np.zeros((128, 128, 3), np.uint8)
        mask = occlude(crop, 0.2, np.random.default_rng(seed))
        assert mask.shape == (128, 128) and mask.dtype == bool
        # Only the masked rectangle is painted, with one colour.
        assert not crop[~mask].any()
        assert len(np.unique(crop[mask].reshape(-1, 3), axis=0)) == 1
        fractions.append(mask.mean())
    assert 0.16 < np.mean(fractions) < 0.24
    assert min(fractions) > 0.05 and max(fractions) < 0.45


def test_occlusion_with_texture_pastes_a_patch_of_it():
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)
    crop = np.zeros((64, 64, 3), np.uint8)
    mask = occlude(crop, 0.2, np.random.default_rng(1), texture)
    ys, xs = np.where(mask)
    patch = crop[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = patch.shape[:2]
    found = any(np.array_equal(texture[ty:ty + h, tx:tx + w], patch)
                for ty in range(200 - h + 1) for tx in range(200 - w + 1))
    assert found


def test_occlusion_in_augment_leaves_points_and_hides_part_of_the_crop(face):
    image = np.full((256, 256, 3), 128, np.uint8)
    on = AugmentConfig(occlusion=1.0, occlusion_area=0.2, flip=0.0, color=0.0, blur=0.0, gray=0.0, noise=0.0)
    off = AugmentConfig(occlusion=0.0, occlusion_area=0.2, flip=0.0, color=0.0, blur=0.0, gray=0.0, noise=0.0)
    changed = []
    for seed in range(20):
        crop_on, units_on = augment(image, face, W300, 1.4, 64, on, np.random.default_rng(seed))
        crop_off, units_off = augment(image, face, W300, 1.4, 64, off, np.random.default_rng(seed))
        np.testing.assert_array_equal(units_on, units_off)
        changed.append((crop_on != crop_off).any(axis=2).mean())
    assert 0.1 < np.mean(changed) < 0.3


def test_photometric_changes_pixels_not_points(face):
    image = blob_image(face)
    # Noise comes after the gray conversion, so it stays off here to keep the channels equal.
    photo = AugmentConfig(color=1.0, blur=1.0, gray=1.0, noise=0.0, occlusion=0.0, flip=0.0)
    crop, units = augment(image, face, W300, 1.4, SIZE, photo, np.random.default_rng(5))
    geo = AugmentConfig(color=0.0, blur=0.0, gray=0.0, noise=0.0, occlusion=0.0, flip=0.0)
    crop_geo, units_geo = augment(image, face, W300, 1.4, SIZE, geo, np.random.default_rng(5))
    np.testing.assert_array_equal(units, units_geo)
    assert not np.array_equal(crop, crop_geo)
    assert np.array_equal(crop[..., 0], crop[..., 2]), "gray=1 should give equal channels"


def test_at_epoch_ramps_rotation_and_occlusion_up_to_the_full_config():
    full = AugmentConfig(rotation=40, occlusion=0.5, translation=0.08, ramp_epochs=4)
    steps = [full.at_epoch(e) for e in range(4)]
    rotations = [c.rotation for c in steps]
    occlusions = [c.occlusion for c in steps]
    assert rotations == sorted(rotations) and rotations[-1] < 40 and rotations[0] >= 10
    assert occlusions == sorted(occlusions) and 0 < occlusions[0] < occlusions[-1] < 0.5
    assert all(c.ramp_epochs == 0 for c in steps)
    assert all(c.color == full.color and c.flip == full.flip for c in steps)
    assert full.at_epoch(4) == full and full.at_epoch(10) == full
    no_ramp = AugmentConfig(ramp_epochs=0)
    assert no_ramp.at_epoch(0) is no_ramp


def test_at_epoch_never_exceeds_the_configured_rotation():
    gentle = AugmentConfig(rotation=5.0, ramp_epochs=3)
    assert all(gentle.at_epoch(e).rotation <= 5.0 for e in range(5))
    assert AugmentConfig(rotation=0.0, ramp_epochs=3).at_epoch(0).rotation == 0.0


def test_points_in_mask_reads_the_pixel_under_each_point():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 6:9] = True  # rows 2-4, columns 6-8
    units = np.array([[0.65, 0.25], [0.95, 0.25], [0.65, 0.55], [-0.1, 0.3], [1.2, 0.3], [0.85, 0.45]])
    assert points_in_mask(units, mask).tolist() == [True, False, False, False, False, True]


def test_occlusion_flags_mark_exactly_the_points_under_the_occluder(face):
    # A flat grey image big enough that the crop never leaves it: only the occluder differs from grey.
    image = np.full((512, 512, 3), 90, np.uint8)
    shifted = face + 128
    cfg = AugmentConfig(**{**GEOMETRY_ONLY, "occlusion": 1.0, "occlusion_area": 0.3})
    flagged = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        crop, units, occluded = augment_with_occlusion(image, shifted, W300, 1.4, SIZE, cfg, rng)
        # Same draws as augment(): the flags describe the crop that augment() returns.
        plain_crop, plain_units = augment(image, shifted, W300, 1.4, SIZE, cfg, np.random.default_rng(seed))
        np.testing.assert_array_equal(crop, plain_crop)
        np.testing.assert_array_equal(units, plain_units)
        painted = (crop != 90).any(axis=2)
        pix = np.floor(units * SIZE).astype(int)
        on_crop = ((pix >= 0) & (pix < SIZE)).all(axis=1)
        assert on_crop.all()
        np.testing.assert_array_equal(occluded, painted[pix[:, 1], pix[:, 0]])
        flagged += int(occluded.sum())
    assert flagged > 20  # 30 % occluders over 20 crops cover plenty of landmarks


def test_no_occlusion_means_no_flags(face):
    image = np.full((256, 256, 3), 90, np.uint8)
    _, _, none_cfg = augment_with_occlusion(image, face, W300, 1.4, SIZE, None, np.random.default_rng(0))
    cfg = AugmentConfig(**{**GEOMETRY_ONLY, "occlusion": 0.0})
    _, _, off = augment_with_occlusion(image, face, W300, 1.4, SIZE, cfg, np.random.default_rng(0))
    assert not none_cfg.any() and not off.any()


def test_shaped_occluders_label_the_landmarks_whose_pixels_they_paint(face):
    from sdfl_core import crops

    image = np.full((256, 256, 3), 128, np.uint8)
    base = dict(flip=0.0, color=0.0, blur=0.0, gray=0.0, noise=0.0, occlusion=1.0)
    shaped = AugmentConfig(occlusion_shapes=1.0, occlusion_levels=(20.0, 40.0), **base)
    clean = AugmentConfig(occlusion=0.0, **{k: v for k, v in base.items() if k != "occlusion"})
    covers, hidden = [], []
    for seed in range(30):
        crop, units, occluded = augment_with_occlusion(image, face, W300, 1.4, 64, shaped, np.random.default_rng(seed))
        plain, units_plain, none = augment_with_occlusion(image, face, W300, 1.4, 64, clean, np.random.default_rng(seed))
        np.testing.assert_array_equal(units, units_plain)
        assert not none.any()
        painted = (crop != plain).any(axis=2)
        pix = np.floor(units * 64).astype(int)
        # A landmark is labelled covered exactly when its pixel was painted (with a random colour fill).
        np.testing.assert_array_equal(occluded, painted[pix[:, 1], pix[:, 0]])
        box = crops.landmark_box(units * 64 - 0.5)
        x0, y0 = int(np.ceil(box[0])), int(np.ceil(box[1]))
        x1, y1 = int(np.floor(box[0] + box[2])), int(np.floor(box[1] + box[3]))
        covers.append(painted[y0:y1 + 1, x0:x1 + 1].mean())
        hidden.append(occluded.mean())
    # Each occluder covers 20-40 % of the landmark box (a pixel row or so of slack at 64 px).
    assert 0.15 < min(covers) and max(covers) < 0.45
    assert 0.0 < np.mean(hidden) < 0.6


def test_shaped_occluder_settings_are_checked():
    with pytest.raises(ValueError, match="occlusion_levels must be"):
        AugmentConfig(occlusion_levels=(40.0, 20.0))
    with pytest.raises(ValueError, match="occlusion_shapes must be in"):
        AugmentConfig(occlusion_shapes=1.5)
    assert AugmentConfig(occlusion_levels=[10, 30]).occlusion_levels == (10.0, 30.0)



def test_texture_side_resizes_the_texture_before_the_occluder_patch_is_cut(face, monkeypatch):
    import training.augment as augment_module

    seen = []
    draw = augment_module.occlude_random

    def spy(crop, points, level, rng, textures=()):
        seen.append([t.shape for t in textures])
        return draw(crop, points, level, rng, textures)

    monkeypatch.setattr(augment_module, "occlude_random", spy)
    image = np.full((256, 256, 3), 128, np.uint8)
    texture = np.random.default_rng(1).integers(0, 256, (200, 100, 3), dtype=np.uint8)
    base = dict(flip=0.0, color=0.0, blur=0.0, gray=0.0, noise=0.0, occlusion=1.0, occlusion_shapes=1.0)
    for seed in range(6):
        augment_with_occlusion(image, face, W300, 1.4, 64, AugmentConfig(texture_side=(20, 40), **base),
                               np.random.default_rng(seed), texture)
    # The longer side drawn in [20, 40], the aspect kept; the texture given is left as it was.
    assert len(seen) == 6 and all(len(shapes) == 1 and 20 <= shapes[0][0] <= 40 and shapes[0][2] == 3
                                  and abs(shapes[0][0] / shapes[0][1] - 2) < 0.1 for shapes in seen)
    assert len({shapes[0] for shapes in seen}) > 1 and texture.shape == (200, 100, 3)
    seen.clear()
    augment_with_occlusion(image, face, W300, 1.4, 64, AugmentConfig(**base), np.random.default_rng(0), texture)
    assert seen == [[(200, 100, 3)]]  # off by default: the texture as it is
    with pytest.raises(ValueError, match=r"texture_side must be \[0, 0\] \(off\) or \[low, high\]"):
        AugmentConfig(texture_side=(40, 20))
    with pytest.raises(ValueError, match="texture_side must be"):
        AugmentConfig(texture_side=(0, 20))
    assert AugmentConfig(texture_side=[10, 30]).texture_side == (10.0, 30.0)


def test_dataset_occlusion_flags_are_kept_mirrored_and_joined_with_the_occluder(face):
    image = np.full((256, 256, 3), 128, np.uint8)
    flags = np.zeros(len(face), bool)
    flags[36:42] = True  # the image-left eye, as an annotator would flag it
    quiet = dict(color=0.0, blur=0.0, gray=0.0, noise=0.0)
    plain = augment_with_occlusion(image, face, W300, 1.4, 64, None, np.random.default_rng(0), occluded=flags)[2]
    np.testing.assert_array_equal(plain, flags)  # no augmentation: the flags as given
    flipped = augment_with_occlusion(image, face, W300, 1.4, 64, AugmentConfig(flip=1.0, occlusion=0.0, **quiet),
                                     np.random.default_rng(0), occluded=flags)[2]
    np.testing.assert_array_equal(flipped, flags[list(W300.mirror)])  # the flagged eye is now the other one
    assert flipped[42:48].all() and not flipped[36:42].any()
    for seed in range(10):
        cfg = AugmentConfig(flip=0.0, occlusion=1.0, **quiet)
        both = augment_with_occlusion(image, face, W300, 1.4, 64, cfg, np.random.default_rng(seed), occluded=flags)[2]
        cover = augment_with_occlusion(image, face, W300, 1.4, 64, cfg, np.random.default_rng(seed))[2]
        np.testing.assert_array_equal(both, flags | cover)
    with pytest.raises(ValueError, match="occlusion flags must be 68 booleans"):
        augment_with_occlusion(image, face, W300, 1.4, 64, None, np.random.default_rng(0), occluded=flags[:10])
