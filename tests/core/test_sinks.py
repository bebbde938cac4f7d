import cv2
import numpy as np
import pandas as pd
import pytest

from sdfl_core.sinks import CsvSink, ImageFolderSink, VideoSink, csv_columns, letterbox
from sdfl_core.types import Detection, FrameResult, Landmarks, Track


def make_track(track_id: int, n: int, offset: float = 0.0) -> Track:
    raw = np.stack([np.arange(n) * 1.5 + offset, np.arange(n) * 2.25 + 7.0], axis=1)
    lm = Landmarks(points=raw, edge_weights=np.zeros((n, 0)))
    det = Detection(box=[10.5 + offset, 20.25, 100.0, 120.0], score=0.875)
    return Track(track_id=track_id, detection=det, raw=lm, smoothed=raw + 0.123, age=3, hits=2)


def test_csv_columns_exact():
    assert csv_columns(2) == [
        "source", "frame", "time_ms", "face_id", "score", "box_x", "box_y", "box_w", "box_h",
        "x_0", "x_1", "y_0", "y_1", "raw_x_0", "raw_x_1", "raw_y_0", "raw_y_1",
    ]
    assert csv_columns(2, include_raw=False)[-4:] == ["x_0", "x_1", "y_0", "y_1"]
    assert len(csv_columns(68)) == 9 + 4 * 68


def test_csv_round_trip_and_flush_per_frame(tmp_path):
    path = tmp_path / "out.csv"
    n = 3
    path.write_text("the previous run's CSV\n")
    with CsvSink(path, n) as sink:
        partial = sink.partial_path
        assert partial.parent == tmp_path and partial != path
        header = pd.read_csv(partial)
        assert list(header.columns) == csv_columns(n) and len(header) == 0
        sink.write(FrameResult(index=0, timestamp_ms=0.0, tracks=(make_track(0, n), make_track(1, n, 50.0))), "a.jpg")
        # Readable while the sink is still open: rows are flushed after every frame.
        assert len(pd.read_csv(partial)) == 2
        sink.write(FrameResult(index=1, timestamp_ms=33.333, tracks=()), "b.jpg")
        sink.write(FrameResult(index=2, timestamp_ms=66.667, tracks=(make_track(1, n, 50.0),)), "c.jpg")
        assert len(pd.read_csv(partial)) == 3
        assert sink.rows_written == 3
        # The target keeps the previous file until the sink closes.
        assert path.read_text() == "the previous run's CSV\n"
    assert not partial.exists() and list(tmp_path.iterdir()) == [path]

    df = pd.read_csv(path)
    assert df["source"].tolist() == ["a.jpg", "a.jpg", "c.jpg"]
    assert df["frame"].tolist() == [0, 0, 2]
    assert df["face_id"].tolist() == [0, 1, 1]
    assert df["time_ms"].tolist() == pytest.approx([0.0, 0.0, 66.667])
    t = make_track(1, n, 50.0)
    row = df.iloc[2]
    np.testing.assert_allclose(row[["box_x", "box_y", "box_w", "box_h"]].to_numpy(float), t.detection.box, atol=0.005)
    assert row["score"] == pytest.approx(0.875)
    np.testing.assert_allclose(row[[f"x_{i}" for i in range(n)]].to_numpy(float), t.smoothed[:, 0], atol=0.005)
    np.testing.assert_allclose(row[[f"y_{i}" for i in range(n)]].to_numpy(float), t.smoothed[:, 1], atol=0.005)
    np.testing.assert_allclose(row[[f"raw_x_{i}" for i in range(n)]].to_numpy(float), t.raw.points[:, 0], atol=0.005)
    np.testing.assert_allclose(row[[f"raw_y_{i}" for i in range(n)]].to_numpy(float), t.raw.points[:, 1], atol=0.005)
    assert path.read_text().splitlines()[1].split(",")[9] == "0.12"  # x_0 = 0.123 written with 2 decimals


def test_csv_without_raw(tmp_path):
    path = tmp_path / "out.csv"
    with CsvSink(path, 2, include_raw=False) as sink:
        sink.write(FrameResult(index=5, timestamp_ms=1.0, tracks=(make_track(0, 2),)))
    df = pd.read_csv(path)
    assert list(df.columns) == csv_columns(2, include_raw=False) and len(df) == 1


def test_csv_point_count_mismatch(tmp_path):
    with CsvSink(tmp_path / "out.csv", 68) as sink:
        with pytest.raises(ValueError, match="expects 68 points, track 0 in frame 4 has 3"):
            sink.write(FrameResult(index=4, timestamp_ms=0.0, tracks=(make_track(0, 3),)))


def test_csv_unwritable_path(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(OSError, match="cannot write CSV to .*file/x.csv"):
        with CsvSink(tmp_path / "file" / "x.csv", 3):
            pass


def test_csv_creates_missing_folders(tmp_path):
    path = tmp_path / "new" / "dir" / "x.csv"
    with CsvSink(path, 3):
        pass
    assert pd.read_csv(path).columns.tolist() == csv_columns(3)


def test_sinks_left_by_an_error_leave_the_target_as_it_was(tmp_path):
    csv_path, video_path = tmp_path / "x.csv", tmp_path / "x.mp4"
    csv_path.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with CsvSink(csv_path, 3) as sink, VideoSink(video_path, 30.0, (64, 48)) as video:
            sink.write(FrameResult(index=0, timestamp_ms=0.0, tracks=(make_track(0, 3),)))
            video.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert csv_path.read_text() == "old\n" and not video_path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]
    # An interrupt keeps what was written.
    with pytest.raises(KeyboardInterrupt):
        with CsvSink(csv_path, 3) as sink:
            sink.write(FrameResult(index=0, timestamp_ms=0.0, tracks=(make_track(0, 3),)))
            raise KeyboardInterrupt
    assert len(pd.read_csv(csv_path)) == 1


def test_csv_write_requires_open(tmp_path):
    sink = CsvSink(tmp_path / "out.csv", 3)
    with pytest.raises(ValueError, match="not open"):
        sink.write(FrameResult(index=0, timestamp_ms=0.0))


def test_video_sink_round_trip(tmp_path):
    path = tmp_path / "out.mp4"
    w, h = 64, 48
    with VideoSink(path, fps=10.0, frame_size=(w, h)) as sink:
        for i in range(7):
            frame = np.full((h, w, 3), i * 30, np.uint8)
            sink.write(frame)
        sink.write(np.zeros((96, 128, 3), np.uint8))  # other size: resized
        sink.write(np.zeros((h, w), np.uint8))  # grey: converted
        assert sink.frames_written == 9
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened()
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    assert len(frames) == 9
    assert all(f.shape == (h, w, 3) for f in frames)
    assert abs(float(frames[4].mean()) - 120.0) < 10.0


@pytest.mark.parametrize(("shape", "size", "fit"), [
    ((100, 200, 3), (100, 100), (50, 100)),  # wide: bars above and below
    ((200, 100, 3), (100, 100), (100, 50)),  # tall: bars left and right
    ((30, 40, 3), (80, 60), (60, 80)),  # same aspect, smaller: scaled up, no bars
])
def test_letterbox_keeps_the_aspect_on_black(shape, size, fit):
    image = np.full(shape, 200, np.uint8)
    out = letterbox(image, size)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    rows, cols = np.nonzero(out[..., 0])
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == fit
    # Centred: the bars on either side differ by at most one pixel.
    assert abs(rows.min() - (size[1] - 1 - rows.max())) <= 1 and abs(cols.min() - (size[0] - 1 - cols.max())) <= 1
    assert (out[rows.min():rows.max() + 1, cols.min():cols.max() + 1] == 200).all()


def test_video_sink_fits_other_sizes_without_stretching(tmp_path):
    path = tmp_path / "photos.mp4"
    with VideoSink(path, fps=10.0, frame_size=(64, 64)) as sink:
        sink.write(np.full((32, 128, 3), 255, np.uint8))  # 4:1 into 1:1: a 64 x 16 band
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (64, 64, 3)
    grey = frame.mean(axis=(1, 2))
    assert grey[:20].max() < 30 and grey[-20:].max() < 30  # black bars (mp4v is lossy)
    assert grey[28:36].min() > 200  # the band in the middle


def test_image_folder_sink_names_and_sizes(tmp_path):
    sink = ImageFolderSink(tmp_path / "out" / "annotated")  # missing folders are created
    photo = np.full((30, 50, 3), 90, np.uint8)
    assert sink.write(photo, 0, "portrait.jpg") == tmp_path / "out" / "annotated" / "portrait.jpg"
    assert sink.write(photo[:, :20], 7, "scan.png").name == "scan.png"
    assert sink.write(photo, 12, "clip.mp4").name == "000012.png"  # a video's frame: by index
    assert sink.write(photo, 13, "").name == "000013.png"
    assert sink.images_written == 4
    folder = tmp_path / "out" / "annotated"
    assert sorted(p.name for p in folder.iterdir()) == ["000012.png", "000013.png", "portrait.jpg", "scan.png"]
    np.testing.assert_array_equal(cv2.imread(str(folder / "scan.png")), photo[:, :20])  # lossless, own size
    assert cv2.imread(str(folder / "portrait.jpg")).shape == (30, 50, 3)


def test_image_folder_sink_failure_leaves_the_old_image(tmp_path):
    old = np.full((10, 10, 3), 7, np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), old)
    sink = ImageFolderSink(tmp_path)
    with pytest.raises(OSError, match="cannot write image to .*face.png"):
        sink.write(np.zeros((0, 10, 3), np.uint8), 0, "face.png")  # nothing to encode
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "face.png")), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png"]  # no partial file left behind
    assert sink.images_written == 0


def test_video_sink_errors(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(OSError, match="cannot write video to .*file/x.mp4"):
        with VideoSink(tmp_path / "file" / "x.mp4", 30.0, (64, 48)):
            pass
    with pytest.raises(ValueError, match="fps must be positive"):
        VideoSink(tmp_path / "x.mp4", 0.0, (64, 48))
    with pytest.raises(ValueError, match="frame_size"):
        VideoSink(tmp_path / "x.mp4", 30.0, (0, 48))
    with VideoSink(tmp_path / "x.mp4", 30.0, (64, 48)) as sink:
        with pytest.raises(ValueError, match="uint8"):
            sink.write(np.zeros((48, 64, 3), np.float32))
        with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
            sink.write(np.zeros((48, 64, 2), np.uint8))


def _track_with_visibility(track_id: int, n: int, visibility: np.ndarray) -> Track:
    base = make_track(track_id, n)
    raw = Landmarks(base.raw.points, base.raw.edge_weights, visibility)
    return Track(track_id=track_id, detection=base.detection, raw=raw, smoothed=base.smoothed, age=3, hits=2)


@pytest.mark.parametrize("include_raw", [True, False])
def test_visibility_columns_follow_the_raw_ones_in_range(tmp_path, include_raw):
    n = 3
    assert csv_columns(n, include_raw, visibility=True)[-n:] == ["vis_0", "vis_1", "vis_2"]
    assert csv_columns(n, include_raw, visibility=True)[:-n] == csv_columns(n, include_raw)
    path = tmp_path / "vis.csv"
    vis = np.array([0.0, 0.12345, 1.0], np.float32)
    with CsvSink(path, n, include_raw=include_raw, visibility=True) as sink:
        sink.write(FrameResult(index=0, timestamp_ms=0.0, tracks=(_track_with_visibility(0, n, vis),)), "a.jpg")
    text = path.read_text().splitlines()
    assert text[1].endswith(",0.000,0.123,1.000")
    df = pd.read_csv(path)
    values = df[[f"vis_{i}" for i in range(n)]].to_numpy()
    assert ((values >= 0) & (values <= 1)).all()


def test_visibility_columns_absent_without_the_output(tmp_path):
    path = tmp_path / "plain.csv"
    with CsvSink(path, 3) as sink:
        sink.write(FrameResult(index=0, timestamp_ms=0.0, tracks=(make_track(0, 3),)), "a.jpg")
    assert not any(c.startswith("vis_") for c in pd.read_csv(path).columns)
    # A sink that writes visibility refuses a track without it rather than writing empty cells.
    with pytest.raises(ValueError, match="has none"):
        with CsvSink(tmp_path / "vis.csv", 3, visibility=True) as sink:
            sink.write(FrameResult(index=0, timestamp_ms=0.0, tracks=(make_track(0, 3),)), "a.jpg")
    assert not (tmp_path / "vis.csv").exists()


def test_landmarks_visibility_is_checked():
    pts = np.zeros((3, 2))
    assert Landmarks(pts, np.zeros((3, 0))).visibility.shape == (0,)
    with pytest.raises(ValueError, match=r"visibility must be \(N,\) or \(0,\)"):
        Landmarks(pts, np.zeros((3, 0)), np.ones(2))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        Landmarks(pts, np.zeros((3, 0)), np.array([0.5, 1.5, 0.2]))
