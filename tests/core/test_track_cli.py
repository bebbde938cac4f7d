from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from sdfl_core.cli import main

from slide_video import FIXTURE, write_slide  # noqa: E402  (tests/core is on sys.path)
from slide_video import synthetic_frame as slide_frame  # noqa: E402

NUM_FRAMES, FPS, SIZE = 8, 25.0, (320, 240)
META = ["frame", "time_ms", "face_id", "score", "box_x", "box_y", "box_w", "box_h"]
POINTS = [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
RAW = [f"raw_x_{i}" for i in range(68)] + [f"raw_y_{i}" for i in range(68)]


def synthetic_frame(i: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    return slide_frame(i, num_frames)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_slide(tmp_path_factory.mktemp("video") / "slide.mp4", NUM_FRAMES)


def track(*args) -> int:
    return main(["track", *map(str, args)])


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("sdfl track: error:")]
    assert len(errors) == 1, err
    assert not any("Traceback" in line for line in err)
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_csv_columns_and_rows(video, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "marks.csv"
    assert track(video, "--csv", out, "--weights", tiny_checkpoint, "--device", "cpu") == 0
    df = pd.read_csv(out)
    assert list(df.columns) == META + POINTS + RAW
    assert len(df) == NUM_FRAMES  # one face in every frame, one row each
    assert df["frame"].tolist() == list(range(NUM_FRAMES))
    np.testing.assert_allclose(df["time_ms"], np.arange(NUM_FRAMES) * 1000.0 / FPS, atol=1e-3)
    assert set(df["face_id"]) == {0}
    assert df["score"].between(0.5, 1.0).all()
    # The points lie around their face box (a random model, so only roughly), in image pixels.
    cx = df["box_x"] + df["box_w"] / 2
    assert (df[[f"x_{i}" for i in range(68)]].mean(axis=1) - cx).abs().max() < df["box_w"].max()
    assert df["box_x"].iloc[-1] - df["box_x"].iloc[0] == pytest.approx(100, abs=10)
    assert f"{NUM_FRAMES} frames" in capsys.readouterr().out


def test_no_raw_no_smooth_and_frames(video, tiny_checkpoint, tmp_path):
    out = tmp_path / "marks.csv"
    assert track(video, "--csv", out, "--weights", tiny_checkpoint, "--no-raw", "--no-smooth", "--frames", 3) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == META + POINTS
    assert df["frame"].tolist() == [0, 1, 2]


def test_smoothing_changes_the_points(video, tiny_checkpoint, tmp_path):
    out = tmp_path / "marks.csv"
    assert track(video, "--csv", out, "--weights", tiny_checkpoint, "--smoothing", 0.9) == 0
    df = pd.read_csv(out)
    smoothed, raw = df[POINTS].to_numpy(), df[RAW].to_numpy()
    np.testing.assert_allclose(smoothed[0], raw[0], atol=0.01)  # a new track starts at the measurement
    assert np.abs(smoothed[1:] - raw[1:]).max() > 0.5  # then lags the moving face


def test_video_output(video, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "annotated.mp4"
    assert track(video, "--video", out, "--weights", tiny_checkpoint) == 0
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened()
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    assert len(frames) == NUM_FRAMES
    assert frames[0].shape == (240, 320, 3)
    # Annotation drew on the frame: it differs from the plain input.
    assert np.abs(frames[0].astype(int) - synthetic_frame(0)).max() > 100
    assert "video:" in capsys.readouterr().out


def test_interrupt_keeps_rows_written(video, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    from sdfl_core.pipeline import Pipeline

    # Ctrl-C lands in the main thread, which runs the landmark and tracking step of every frame.
    finish, calls, k = Pipeline._finish, [], 3

    def interrupting(self, *args, **kwargs):
        if len(calls) == k:
            raise KeyboardInterrupt
        calls.append(1)
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_finish", interrupting)
    out = tmp_path / "marks.csv"
    assert track(video, "--csv", out, "--weights", tiny_checkpoint) == 130
    assert "interrupted" in capsys.readouterr().err
    df = pd.read_csv(out)
    assert df["frame"].tolist() == list(range(k))
    assert list(df.columns) == META + POINTS + RAW
    assert df[POINTS + RAW].notna().all().all()


def test_missing_source(capsys):
    assert track("/nonexistent/clip.mp4") == 2
    _one_line_error(capsys, "not found", "clip.mp4")


def test_non_video_file(tmp_path, capsys):
    path = tmp_path / "notes.mp4"
    path.write_text("plain text, not a video\n" * 50)
    assert track(path) == 2
    _one_line_error(capsys, "notes.mp4")


def test_empty_video(tmp_path, capsys):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert track(path) == 2
    _one_line_error(capsys, "empty", "empty.mp4")


def test_unwritable_csv_dir(video, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "dir" / "marks.csv"
    assert track(video, "--csv", out, "--weights", tiny_checkpoint) == 2
    _one_line_error(capsys, "cannot write CSV", "marks.csv")
    assert not out.exists()


def test_missing_weights(video, tmp_path, capsys):
    assert track(video, "--weights", tmp_path / "nope.pt") == 2
    _one_line_error(capsys, "not found", "nope.pt")


def test_corrupt_weights(video, tmp_path, capsys):
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert track(video, "--weights", path) == 2
    _one_line_error(capsys, "random.pt")


def test_cuda_without_cuda(video, tiny_checkpoint, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert track(video, "--weights", tiny_checkpoint, "--device", "cuda") == 2
    _one_line_error(capsys, "CUDA")


def test_camera_not_available(capsys):
    assert track("camera:5") == 2
    _one_line_error(capsys, "camera 5", "not available")


def test_bad_smoothing(video, capsys):
    assert track(video, "--smoothing", 2) == 2
    _one_line_error(capsys, "smoothing")
