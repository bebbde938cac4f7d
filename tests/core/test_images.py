import cv2
import numpy as np
import pytest

from sdfl_core.images import (
    IMAGE_EXTENSIONS,
    is_image_path,
    read_image,
    to_bgr_uint8,
    to_rgb_uint8,
)


def test_one_sixteen_bit_rule_for_frames_and_files(tmp_path):
    gray16 = np.array([[0, 257, 32896, 65535]], np.uint16)
    np.testing.assert_array_equal(to_bgr_uint8(gray16)[0, :, 0], [0, 1, 128, 255])
    cv2.imwrite(str(tmp_path / "g.png"), gray16)
    as_stored = read_image(tmp_path / "g.png")
    assert as_stored.dtype == np.uint16
    turned = read_image(tmp_path / "g.png", exif_orientation=True)
    np.testing.assert_array_equal(to_bgr_uint8(turned), to_bgr_uint8(as_stored))


def test_channel_layouts():
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 2] = 200
    assert to_bgr_uint8(bgra).shape == (2, 3, 3) and to_bgr_uint8(bgra)[0, 0].tolist() == [0, 0, 200]
    assert to_rgb_uint8(bgra)[0, 0].tolist() == [200, 0, 0]
    with pytest.raises(ValueError, match="dtype"):
        to_bgr_uint8(np.zeros((2, 2), np.float32))


def test_extensions():
    assert ".png" in IMAGE_EXTENSIONS and ".tiff" in IMAGE_EXTENSIONS
    assert is_image_path("A.JPG") and not is_image_path("clip.mp4")
