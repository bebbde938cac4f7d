"""Crop pixels -> network input."""
import numpy as np
import pytest

from sdfl_core.preprocess import to_input


def test_to_input_swaps_to_rgb_and_normalises_each_channel():
    crop = np.zeros((2, 4, 5, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 255, 51, 0  # B, G, R
    crop[1, 0, 0] = (0, 0, 255)
    x = to_input(crop, mean=(0.5, 0.2, 0.1), std=(0.5, 0.25, 0.1))
    assert x.shape == (2, 3, 4, 5) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    # Channel 0 is R (0 -> (0 - 0.5) / 0.5), 1 is G (0.2 -> 0), 2 is B (1 -> (1 - 0.1) / 0.1).
    np.testing.assert_allclose(x[0, :, 1, 1], [-1.0, 0.0, 9.0], atol=1e-5)
    np.testing.assert_allclose(x[1, :, 0, 0], [1.0, -0.8, -1.0], atol=1e-5)


def test_to_input_matches_the_plain_formula_on_random_crops():
    crops = np.random.default_rng(0).integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ref = (crops[..., ::-1] / 255.0 - np.asarray(mean)) / np.asarray(std)
    np.testing.assert_allclose(to_input(crops, mean, std), ref.transpose(0, 3, 1, 2), atol=1e-5)
    np.testing.assert_allclose(to_input(crops[0], mean, std), to_input(crops[:1], mean, std))  # one crop = batch of 1


@pytest.mark.parametrize("bad", [np.zeros((1, 8, 8, 4), np.uint8), np.zeros((1, 8, 8, 3), np.float32), np.zeros((8, 8), np.uint8)])
def test_to_input_rejects_what_is_not_uint8_bgr_crops(bad):
    with pytest.raises(ValueError, match="crops must be"):
        to_input(bad, (0.5,) * 3, (0.5,) * 3)
