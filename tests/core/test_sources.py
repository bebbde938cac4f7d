import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from phone_photos import phone_photo
from slide_video import synthetic_frame as slide_frame
from slide_video import write_slide

from sdfl_core.sources import (
    CameraSource,
    DemoSource,
    FolderSource,
    ImageSource,
    VideoSource,
    open_source,
    read_image,
)

NUM_FRAMES, FPS, SIZE = 12, 25.0, (320, 240)


def synthetic_frame(i: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    return slide_frame(i, num_frames)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_slide(tmp_path_factory.mktemp("video") / "slide.mp4", NUM_FRAMES)


def test_video_frames_fps_and_timestamps(video):
    with open_source(video) as source:
        assert isinstance(source, VideoSource)
        assert source.fps == pytest.approx(FPS)
        assert source.num_frames == NUM_FRAMES
        frames = list(source)
    assert [f.index for f in frames] == list(range(NUM_FRAMES))
    np.testing.assert_allclose([f.timestamp_ms for f in frames], np.arange(NUM_FRAMES) * 1000.0 / FPS)
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    # The content is the slide that was written (mp4v is lossy, so compare loosely).
    assert np.abs(frames[5].image.astype(int) - synthetic_frame(5)).mean() < 8


def test_video_seek(video):
    with open_source(video) as source:
        sequential = [f.image for f in source]
        source.seek(7)
        after = list(source)
        source.seek(1000)  # clamped to the last frame
        last = list(source)
    assert [f.index for f in after] == list(range(7, NUM_FRAMES))
    assert np.abs(after[0].image.astype(int) - sequential[7]).mean() < 2
    assert after[0].timestamp_ms == pytest.approx(7 * 1000.0 / FPS)
    assert [f.index for f in last] == [NUM_FRAMES - 1]


def test_image_source(tmp_path):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), synthetic_frame(0))
    with open_source(path) as source:
        assert isinstance(source, ImageSource) and source.num_frames == 1
        frames = list(source)
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].timestamp_ms == 0.0
    np.testing.assert_array_equal(frames[0].image, synthetic_frame(0))


def test_photos_are_read_as_their_exif_orientation_shows_them(tmp_path):
    upright = synthetic_frame(0)
    path = phone_photo(tmp_path / "portrait.jpg", upright)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape[:2] == (320, 240)  # stored sideways
    with open_source(path) as source:
        [frame] = list(source)
    assert frame.image.shape == upright.shape
    assert np.abs(frame.image.astype(int) - upright).mean() < 3  # JPEG: close, not equal
    folder = tmp_path / "photos"
    folder.mkdir()
    phone_photo(folder / "a.jpg", upright)
    with open_source(folder) as source:
        assert [f.image.shape for f in source] == [upright.shape]


def test_read_image_keeps_depth_and_channels(tmp_path):
    gray16 = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20)
    cv2.imwrite(str(tmp_path / "g.png"), gray16)
    bgra = np.dstack([synthetic_frame(0), np.full((240, 320), 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), gray16)
    assert read_image(tmp_path / "a.png").shape == (240, 320, 4)


def test_folder_source_sorted_and_seekable(tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"img_{i:02d}.png"), synthetic_frame(i, 4))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(tmp_path) as source:
        assert isinstance(source, FolderSource) and source.num_frames == 4
        frames = list(source)
        source.seek(2)
        tail = [f.index for f in source]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    np.testing.assert_array_equal(frames[3].image, synthetic_frame(3, 4))
    np.testing.assert_allclose([f.timestamp_ms for f in frames], np.arange(4) * 1000.0 / source.fps)
    assert tail == [2, 3]


def test_folder_skips_corrupt_image_with_warning(tmp_path, caplog):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img_{i}.png"), synthetic_frame(i, 3))
    (tmp_path / "img_1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage, not a png body")
    with caplog.at_level(logging.WARNING), FolderSource(tmp_path) as source:
        frames = list(source)
    assert [f.index for f in frames] == [0, 2]
    assert "img_1.png" in caplog.text and "corrupt" in caplog.text


def test_folder_without_images(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        open_source(tmp_path)


def test_demo_source_deterministic():
    with open_source("demo") as a, DemoSource() as b:
        assert isinstance(a, DemoSource)
        assert a.num_frames == 240 and a.fps == 30.0
        fa = [f for _, f in zip(range(3), a)]
        b.seek(1)
        fb = next(iter(b))
    assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 for f in fa)
    assert [f.index for f in fa] == [0, 1, 2]
    np.testing.assert_array_equal(fb.image, fa[1].image)
    assert not np.array_equal(fa[0].image, fa[2].image)  # the face moves
    small = DemoSource(num_frames=5, size=(160, 120))
    assert [f.image.shape for f in small] == [(120, 160, 3)] * 5


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="not found"):
        open_source("/nonexistent/clip.mp4")


def test_empty_video_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        open_source(path)


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "fake.mp4"
    path.write_text("this is not a video\n" * 100)
    with pytest.raises(ValueError, match="fake.mp4"):
        open_source(path)


def test_corrupt_image_file(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="corrupt or not an image"):
        open_source(path)


def test_truncated_video_gives_frames_or_clear_error(video, tmp_path):
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        source = open_source(cut)
    except ValueError as exc:
        assert "cut.mp4" in str(exc)
        return
    with source:
        frames = list(source)
    assert len(frames) <= NUM_FRAMES
    assert all(f.image.shape == (240, 320, 3) for f in frames)


def test_camera_not_available():
    with pytest.raises(ValueError, match="not available"):
        open_source("camera:99")


@pytest.mark.parametrize("spec", ["camera:x", "camera:", "camera:1.5"])
def test_camera_bad_spec(spec):
    with pytest.raises(ValueError, match="camera:N"):
        open_source(spec)


def test_camera_cannot_seek():
    source = CameraSource.__new__(CameraSource)
    source.name = "camera:0"
    with pytest.raises(ValueError, match="cannot seek"):
        source.seek(3)


def test_prefetch_keeps_order_and_raises_source_errors_in_the_consumer():
    import threading

    from sdfl_core.sources import Frame, prefetch

    def frames(fail_at=None):
        for i in range(20):
            if i == fail_at:
                raise ValueError("camera:0 stopped delivering frames (unplugged?)")
            yield Frame(i, float(i), np.zeros((2, 2, 3), np.uint8))

    assert [f.index for f in prefetch(frames())] == list(range(20))
    got = []
    with pytest.raises(ValueError, match="unplugged"):
        for f in prefetch(frames(fail_at=7)):
            got.append(f.index)
    assert got == list(range(7))
    stream = prefetch(frames())
    assert next(stream).index == 0
    stream.close()  # an early stop ends the reader thread
    assert not any(t.name == "sdfl-prefetch" and t.is_alive() for t in threading.enumerate())
