import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from sdfl_core.datasets import (
    FORMATS,
    Sample,
    load_image,
    load_samples,
    read_300w,
    read_coco,
    read_cofw,
    read_landmark_csv,
    read_pts,
    read_wflw,
    split_by_group,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")


def write_image(path: Path, h: int = 24, w: int = 32, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((h, w, 3), value, np.uint8)
    image[0, 0] = (255, 0, 0)  # blue in BGR: lets tests see the channel order
    assert cv2.imwrite(str(path), image)
    return path


def write_pts(path: Path, points: np.ndarray, declared: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(points) if declared is None else declared
    rows = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    path.write_text(f"version: 1\nn_points:  {n}\n{{\n{rows}\n}}\n")
    return path


def grid_points(n: int, offset: float = 0.0) -> np.ndarray:
    return np.stack([np.arange(n) + 1.5 + offset, np.arange(n) * 0.5 + 3.25], axis=1).astype(np.float32)


# ------------------------------------------------------------------------------------------------ Sample


def test_sample_validates_shapes():
    s = Sample("a.jpg", np.zeros((5, 2)), box=[1, 2, 3, 4], visible=[1, 0, 1, 1, 1], group="g")
    assert s.points.dtype == np.float32 and s.box.dtype == np.float32 and s.visible.dtype == bool
    assert s.num_points == 5 and s.attributes == {} and s.image is None
    with pytest.raises(ValueError, match="points must have shape"):
        Sample("a.jpg", np.zeros((5, 3)))
    with pytest.raises(ValueError, match="box must have shape"):
        Sample("a.jpg", np.zeros((5, 2)), box=[1, 2, 3])
    with pytest.raises(ValueError, match="visible must have shape"):
        Sample("a.jpg", np.zeros((5, 2)), visible=[True] * 4)
    with pytest.raises(ValueError, match="image must be uint8"):
        Sample("a.jpg", np.zeros((5, 2)), image=np.zeros((4, 4), np.float32))


# ------------------------------------------------------------------------------------------------ 300W


def test_read_300w_recursive_shifts_to_zero_based(tmp_path):
    pts_a1, pts_a2, pts_b = grid_points(68), grid_points(68, 10), grid_points(68, 20)
    write_image(tmp_path / "afw" / "111_1.jpg")
    write_pts(tmp_path / "afw" / "111_1.pts", pts_a1)
    write_image(tmp_path / "afw" / "111_2.jpg")
    write_pts(tmp_path / "afw" / "111_2.pts", pts_a2)
    write_image(tmp_path / "helen" / "deep" / "222_1.png")
    write_pts(tmp_path / "helen" / "deep" / "222_1.pts", pts_b)
    write_image(tmp_path / "afw" / "no_annotation.jpg")  # images without .pts are ignored

    samples = read_300w(tmp_path)
    assert [Path(s.image_path).name for s in samples] == ["111_1.jpg", "111_2.jpg", "222_1.png"]
    assert all(Path(s.image_path).is_absolute() for s in samples)
    np.testing.assert_allclose(samples[0].points, pts_a1 - 1.0, atol=1e-3)
    np.testing.assert_allclose(samples[2].points, pts_b - 1.0, atol=1e-3)
    assert [s.group for s in samples] == ["111", "111", "222"]
    assert all(s.box is None and s.visible is None and s.attributes == {} for s in samples)


def test_read_300w_300vw_layout_and_broken_frames(tmp_path):
    for video, frames in (("001", (1, 2)), ("401", (7, 8))):
        for f in frames:
            write_pts(tmp_path / video / "annot" / f"{f:06d}.pts", grid_points(68, f))
            write_image(tmp_path / video / "imgs" / f"{f:06d}.jpg")
    np.save(tmp_path / "broken_frames.npy", {"401": [8, 99]}, allow_pickle=True)

    samples = read_300w(tmp_path)
    assert [(s.group, Path(s.image_path).name) for s in samples] == [
        ("001", "000001.jpg"), ("001", "000002.jpg"), ("401", "000007.jpg")
    ]
    assert Path(samples[0].image_path).parent.name == "imgs"
    np.testing.assert_allclose(samples[2].points, grid_points(68, 7) - 1.0, atol=1e-3)
    assert len(read_300w(tmp_path, skip_broken=False)) == 4


def test_read_300w_errors(tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="300W folder not found"):
        read_300w(tmp_path / "nope")
    with pytest.raises(ValueError, match="no .pts files found"):
        read_300w(tmp_path)

    write_pts(tmp_path / "lonely_1.pts", grid_points(68))
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="has a matching image"):
        read_300w(tmp_path)
    assert "have no image" in caplog.text

    write_image(tmp_path / "lonely_1.jpg")
    write_image(tmp_path / "short_1.jpg")
    write_pts(tmp_path / "short_1.pts", grid_points(30))
    with pytest.raises(ValueError, match="point-count mismatch.*short_1.jpg has 30 points, expected 68"):
        read_300w(tmp_path)


def test_read_pts_header_mismatch_and_malformed_row(tmp_path):
    with pytest.raises(ValueError, match="header says 68 points, file has 67"):
        read_pts(write_pts(tmp_path / "a.pts", grid_points(67), declared=68))
    bad = tmp_path / "b.pts"
    bad.write_text("version: 1\nn_points: 2\n{\n1.0 2.0\n3.0 oops\n}\n")
    with pytest.raises(ValueError, match=r"b.pts:5: malformed point row"):
        read_pts(bad)
    no_block = tmp_path / "c.pts"
    no_block.write_text("1 2\n3 4\n")
    with pytest.raises(ValueError, match="not an iBUG .pts file"):
        read_pts(no_block)


# ------------------------------------------------------------------------------------------------ WFLW


def wflw_line(points: np.ndarray, box, flags, rel: str) -> str:
    values = [f"{v:.6f}" for v in points.ravel()] + [str(b) for b in box] + [str(f) for f in flags] + [rel]
    return " ".join(values)


def make_wflw(tmp_path: Path) -> tuple[Path, np.ndarray]:
    points = grid_points(98)
    images = tmp_path / "WFLW_images"
    write_image(images / "51--Dresses" / "51_img_1.jpg")
    write_image(images / "7--Cheering" / "7_img_2.jpg")
    list_dir = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    list_dir.mkdir(parents=True)
    lines = [
        wflw_line(points, (10, 20, 110, 140), (1, 0, 0, 1, 0, 1), "51--Dresses/51_img_1.jpg"),
        wflw_line(points + 5, (11, 21, 61, 91), (0, 1, 1, 0, 1, 0), "51--Dresses/51_img_1.jpg"),
        wflw_line(points + 9, (0, 0, 50, 50), (0, 0, 0, 0, 0, 0), "7--Cheering/7_img_2.jpg"),
    ]
    list_file = list_dir / "list_98pt_rect_attr_train.txt"
    list_file.write_text("\n".join(lines) + "\n")
    return list_file, points


def test_read_wflw(tmp_path):
    list_file, points = make_wflw(tmp_path)
    samples = read_wflw(list_file)
    assert len(samples) == 3
    assert samples[0].image_path == str(tmp_path / "WFLW_images" / "51--Dresses" / "51_img_1.jpg")
    np.testing.assert_allclose(samples[0].points, points, atol=1e-5)  # already 0-based: no shift
    np.testing.assert_allclose(samples[1].points, points + 5, atol=1e-5)
    np.testing.assert_array_equal(samples[0].box, [10, 20, 100, 120])
    np.testing.assert_array_equal(samples[1].box, [11, 21, 50, 70])
    assert samples[0].attributes == {"pose": 1, "expression": 0, "illumination": 0, "make-up": 1, "occlusion": 0, "blur": 1}
    assert samples[1].attributes["occlusion"] == 1
    assert samples[0].group == samples[1].group != samples[2].group
    assert samples[0].visible is None
    same = read_wflw(list_file, image_root=tmp_path / "WFLW_images")
    assert [s.image_path for s in same] == [s.image_path for s in samples]


def test_read_wflw_errors(tmp_path):
    list_file, points = make_wflw(tmp_path)
    with pytest.raises(FileNotFoundError, match="WFLW list file not found"):
        read_wflw(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="no annotation lines"):
        read_wflw(empty)
    short = tmp_path / "short.txt"
    short.write_text(wflw_line(points[:97], (0, 0, 1, 1), (0,) * 6, "x.jpg") + "\n")
    with pytest.raises(ValueError, match=r"short.txt:1: expected 207 fields"):
        read_wflw(short)
    with pytest.raises(FileNotFoundError, match="3 of 3 images .* are missing"):
        read_wflw(list_file, image_root=tmp_path)


# ------------------------------------------------------------------------------------------------ COFW


def cofw_arrays(n: int = 3):
    rng = np.random.default_rng(0)
    images = np.empty((n, 1), dtype=object)
    for i in range(n):
        if i % 2:
            rgb = np.zeros((20 + i, 30, 3), np.uint8)
            rgb[..., 0] = 200  # red in RGB
            images[i, 0] = rgb
        else:
            images[i, 0] = np.full((25, 18 + i), 40 + i, np.uint8)
    xs, ys = rng.uniform(0, 30, (n, 29)), rng.uniform(0, 20, (n, 29))
    occluded = (rng.uniform(size=(n, 29)) > 0.7).astype(np.float64)
    phis = np.concatenate([xs, ys, occluded], axis=1)
    boxes = rng.uniform(1, 10, (n, 4))
    return images, boxes, phis


def check_cofw(samples, mat, split, images, boxes, phis):
    assert len(samples) == len(images)
    for i, s in enumerate(samples):
        assert s.image_path == f"{mat.resolve()}#{split}/{i}"
        np.testing.assert_allclose(s.points[:, 0], phis[i, :29], atol=1e-4)
        np.testing.assert_allclose(s.points[:, 1], phis[i, 29:58], atol=1e-4)
        np.testing.assert_array_equal(s.visible, phis[i, 58:] == 0)
        np.testing.assert_array_equal(s.occluded, phis[i, 58:] != 0)  # real occlusion flags
        np.testing.assert_allclose(s.box, boxes[i], atol=1e-4)
    assert samples[0].image.ndim == 2 and samples[0].image[0, 0] == 40
    color = samples[1].image
    assert color.shape == (21, 30, 3) and color[0, 0].tolist() == [0, 0, 200]  # RGB -> BGR
    assert load_image(samples[0]).shape == (25, 18, 3)
    assert len({s.group for s in samples}) == len(samples)


def test_read_cofw_v5(tmp_path):
    images, boxes, phis = cofw_arrays()
    mat = tmp_path / "COFW_train_color.mat"
    savemat(mat, {"IsTr": images, "bboxesTr": boxes, "phisTr": phis})
    check_cofw(read_cofw(mat, "train"), mat, "train", images, boxes, phis)

    test_mat = tmp_path / "COFW_test_color.mat"
    savemat(test_mat, {"IsT": images, "bboxesT": boxes, "phisT": phis})
    check_cofw(load_samples(test_mat, "cofw", split="test"), test_mat, "test", images, boxes, phis)
    with pytest.raises(ValueError, match="has no COFW train split .*try split='test'"):
        read_cofw(test_mat)


def test_read_cofw_v73_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    images, boxes, phis = cofw_arrays()
    mat = tmp_path / "COFW_train_v73.mat"
    with h5py.File(mat, "w") as f:
        refs = f.create_group("#refs#")
        handles = []
        for i, image in enumerate(images[:, 0]):
            stored = image.T if image.ndim == 2 else image.transpose(2, 1, 0)  # MATLAB column-major
            handles.append(refs.create_dataset(f"img{i}", data=stored).ref)
        f.create_dataset("IsTr", data=np.array([handles], dtype=h5py.ref_dtype))
        f.create_dataset("bboxesTr", data=boxes.T)
        f.create_dataset("phisTr", data=phis.T)
    check_cofw(read_cofw(mat), mat, "train", images, boxes, phis)


def test_read_cofw_errors(tmp_path):
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        read_cofw(tmp_path / "x.mat", split="val")
    with pytest.raises(FileNotFoundError, match="COFW .mat file not found"):
        read_cofw(tmp_path / "x.mat")
    images, boxes, phis = cofw_arrays()
    mat = tmp_path / "bad.mat"
    savemat(mat, {"IsTr": images, "bboxesTr": boxes[:2], "phisTr": phis})
    with pytest.raises(ValueError, match="3 images but phisTr"):
        read_cofw(mat)
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(ValueError, match="cannot read COFW .mat"):
        read_cofw(junk)


# ------------------------------------------------------------------------------------------- CSV (YTF)


def make_ytf_csv(tmp_path: Path, n_points: int = 68) -> tuple[Path, dict[str, np.ndarray]]:
    names = ["Luis_Fonsi_21.jpg", "Luis_Fonsi_40.jpg", "Abdel_Aziz_Al-Hakim_00.jpg"]
    header = "," + ",".join(str(i) for i in range(2 * n_points))
    rows, truth = [header], {}
    for k, name in enumerate(names):
        write_image(tmp_path / "training" / name)
        pts = grid_points(n_points, 3 * k)
        truth[name] = pts
        rows.append(name + "," + ",".join(f"{v:.2f}" for v in pts.ravel()))
    csv_file = tmp_path / "training_frames_keypoints.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    return csv_file, truth


def test_read_landmark_csv(tmp_path):
    csv_file, truth = make_ytf_csv(tmp_path)
    samples = read_landmark_csv(csv_file)
    assert len(samples) == 3  # header row skipped
    for s in samples:
        assert Path(s.image_path).parent == tmp_path / "training"
        np.testing.assert_allclose(s.points, truth[Path(s.image_path).name], atol=1e-2)  # 0-based: no shift
        assert s.box is None and s.visible is None
    assert [s.group for s in samples] == ["Luis_Fonsi", "Luis_Fonsi", "Abdel_Aziz_Al-Hakim"]
    assert len(load_samples(csv_file, "csv", image_root=tmp_path / "training")) == 3


def test_read_landmark_csv_errors(tmp_path):
    csv_file, _ = make_ytf_csv(tmp_path)
    with pytest.raises(FileNotFoundError, match="landmark CSV file not found"):
        read_landmark_csv(tmp_path / "none.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("," + ",".join(str(i) for i in range(136)) + "\n")
    with pytest.raises(ValueError, match="no data rows"):
        read_landmark_csv(empty)
    odd = tmp_path / "odd.csv"
    odd.write_text("a_01.jpg,1,2,3\n")
    with pytest.raises(ValueError, match=r"odd.csv:1: expected name followed by x,y pairs"):
        read_landmark_csv(odd)
    text = tmp_path / "text.csv"
    text.write_text("a_01.jpg,1,2\nb_01.jpg,1,x\n")
    with pytest.raises(ValueError, match=r"text.csv:2: non-numeric"):
        read_landmark_csv(text)
    with pytest.raises(ValueError, match="point-count mismatch.*has 68 points, expected 98"):
        read_landmark_csv(csv_file, num_points=98)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("a_01.jpg,1,2,3,4\nb_01.jpg,1,2\n")
    with pytest.raises(ValueError, match="point-count mismatch.*b_01.jpg has 1 points, expected 2"):
        read_landmark_csv(mixed)
    (tmp_path / "training" / "Luis_Fonsi_40.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 3 images .* missing, first: .*Luis_Fonsi_40.jpg"):
        read_landmark_csv(csv_file)


# ------------------------------------------------------------------------------------------------ COCO


def test_read_coco(tmp_path):
    write_image(tmp_path / "face_a.jpg")
    write_image(tmp_path / "001" / "imgs" / "000006.jpg")
    kps_a = np.array([[1.5, 2.5, 2], [3.0, 4.0, 1], [5.0, 6.0, 0]])
    kps_b = np.array([[7.0, 8.0, 2], [9.0, 10.0, 2], [11.0, 12.0, 2]])
    data = {
        "images": [{"id": 5, "file_name": "face_a.jpg"}, {"id": 6, "file_name": "001/imgs/000006.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 5, "keypoints": kps_a.ravel().tolist(), "bbox": [1, 2, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 6, "keypoints": kps_b.ravel().tolist()},
        ],
        "categories": [{"id": 1, "name": "face"}],
    }
    json_file = tmp_path / "test_faces.json"
    json_file.write_text(json.dumps(data))
    a, b = read_coco(json_file)  # images resolve relative to the JSON's folder
    assert a.image_path == str(tmp_path / "face_a.jpg")
    np.testing.assert_allclose(a.points, kps_a[:, :2])
    np.testing.assert_array_equal(a.visible, [True, True, False])
    assert a.occluded is None  # COCO's v says "labelled", not "occluded"
    np.testing.assert_array_equal(a.box, [1, 2, 30, 40])
    assert b.box is None and b.group == "001" and a.group == "face_a"
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    with pytest.raises(FileNotFoundError, match="2 of 2 images"):
        read_coco(json_file, image_root=elsewhere)

    data["annotations"][1]["image_id"] = 99
    json_file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="annotation 2 refers to unknown image_id 99"):
        read_coco(json_file)
    data["annotations"][1]["image_id"] = 6
    data["annotations"][1]["keypoints"] = [1.0, 2.0]
    json_file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="flat x,y,v list, got 2 values"):
        read_coco(json_file)
    json_file.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_coco(json_file)


# ------------------------------------------------------------------------------------- dispatch, split


def test_load_samples_dispatch_and_unknown_format(tmp_path):
    write_image(tmp_path / "x_1.jpg")
    write_pts(tmp_path / "x_1.pts", grid_points(68))
    assert len(load_samples(tmp_path, "300W")) == 1
    with pytest.raises(ValueError, match="unknown dataset format 'ibug' \\(valid: 300w, wflw, cofw, csv, coco\\)"):
        load_samples(tmp_path, "ibug")
    assert FORMATS == ("300w", "wflw", "cofw", "csv", "coco")


def make_grouped(n_groups: int = 20) -> list[Sample]:
    rng = np.random.default_rng(1)
    samples = []
    for g in range(n_groups):
        for k in range(int(rng.integers(1, 6))):
            samples.append(Sample(f"/img/{g}_{k}.jpg", np.zeros((3, 2)), group=f"id{g}"))
    return samples


def test_split_by_group_no_overlap_and_deterministic():
    samples = make_grouped()
    train, val = split_by_group(samples, 0.25, seed=3)
    assert len(train) + len(val) == len(samples) and train and val
    assert not {s.group for s in train} & {s.group for s in val}
    assert abs(len(val) / len(samples) - 0.25) < 0.1
    again = split_by_group(samples, 0.25, seed=3)
    assert [s.image_path for s in again[1]] == [s.image_path for s in val]
    splits = {tuple(sorted({s.group for s in split_by_group(samples, 0.25, seed=k)[1]})) for k in range(5)}
    assert len(splits) > 1  # the seed matters
    # order within each side follows the input
    assert [samples.index(s) for s in train] == sorted(samples.index(s) for s in train)


def test_split_by_group_edge_cases():
    samples = make_grouped()
    train, val = split_by_group(samples, 0.0, seed=0)
    assert len(train) == len(samples) and val == []
    train, val = split_by_group(samples, 0.99, seed=0)
    assert train and val  # train keeps at least one group
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        split_by_group(samples, 1.0, seed=0)
    one = [Sample("/a.jpg", np.zeros((3, 2)), group="same"), Sample("/b.jpg", np.zeros((3, 2)), group="same")]
    with pytest.raises(ValueError, match="all belong to one group 'same'"):
        split_by_group(one, 0.5, seed=0)


# ----------------------------------------------------------------------------------------------- image


def test_load_image_converts_to_bgr_uint8(tmp_path):
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.full((6, 7), 90, np.uint8))
    rgba = tmp_path / "rgba.png"
    bgra = np.zeros((6, 7, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 250, 10
    cv2.imwrite(str(rgba), bgra)
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), np.full((6, 7, 3), 65535, np.uint16))
    color = write_image(tmp_path / "c.jpg", 8, 9)
    for path, pixel in ((gray, [90, 90, 90]), (rgba, [0, 0, 250]), (deep, [255, 255, 255])):
        image = load_image(Sample(str(path), np.zeros((1, 2))))
        assert image.dtype == np.uint8 and image.shape == (6, 7, 3)
        assert image[3, 3].tolist() == pixel
    assert load_image(Sample(str(color), np.zeros((1, 2)))).shape == (8, 9, 3)
    in_memory = Sample("x.mat#train/0", np.zeros((1, 2)), image=np.full((4, 5), 7, np.uint8))
    assert load_image(in_memory).shape == (4, 5, 3) and load_image(in_memory)[0, 0].tolist() == [7, 7, 7]


def test_load_image_corrupt_and_missing(tmp_path):
    corrupt = tmp_path / "bad.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(ValueError, match="cannot read image .*bad.jpg"):
        load_image(Sample(str(corrupt), np.zeros((1, 2))))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot read image"):
        load_image(Sample(str(empty), np.zeros((1, 2))))
    with pytest.raises(FileNotFoundError, match="image not found"):
        load_image(Sample(str(tmp_path / "gone.jpg"), np.zeros((1, 2))))


# ------------------------------------------------------------------------------------ real shared data


@pytest.mark.data
@needs_data
def test_real_300w_afw():
    samples = read_300w(DATA / "300w" / "afw")
    assert len(samples) == 337
    assert all(s.num_points == 68 for s in samples)
    first = samples[0]
    assert Path(first.image_path).name == "1051618982_1.jpg" and first.group == "1051618982"
    np.testing.assert_allclose(first.points[0], [96.137239 - 1, 130.899101 - 1], atol=1e-4)
    h, w = load_image(first).shape[:2]
    assert (first.points >= -1).all() and (first.points[:, 0] < w).all() and (first.points[:, 1] < h).all()


@pytest.mark.data
@needs_data
def test_real_ytf68_training_csv():
    samples = read_landmark_csv(DATA / "ytf68" / "training_frames_keypoints.csv")
    assert len(samples) == 3462
    assert all(s.num_points == 68 for s in samples)
    assert samples[0].group == "Luis_Fonsi"
    np.testing.assert_allclose(samples[0].points[0], [45.0, 98.0])
    train, val = split_by_group(samples, 0.2, seed=0)
    assert not {s.group for s in train} & {s.group for s in val}


@pytest.mark.data
@needs_data
@pytest.mark.parametrize("name, n_points", [("wflw", 98), ("cofw", 29)])
def test_real_mmpose_coco(name, n_points):
    samples = read_coco(DATA / "samples" / "mmpose" / name / f"test_{name}.json")
    assert samples and all(s.num_points == n_points for s in samples)
    assert all(s.box is not None and s.visible is not None for s in samples)
    image = load_image(samples[0])
    assert image.ndim == 3 and image.shape[2] == 3


@pytest.mark.data
@needs_data
def test_real_mmpose_300vw_skips_broken_frame():
    samples = read_300w(DATA / "samples" / "mmpose" / "300vw")
    assert [s.group for s in samples] == ["001", "001", "401"]  # 401/000731 is in broken_frames.npy
